//! Error texts of the conformance oracle (`expected.stderr` of each case).

#![allow(clippy::type_complexity)]

use super::*;
use crate::bake::eval::value::Value;

/// Error texts of the oracle (`expected.stderr`), without HCL's final period.
#[test]
fn errors() {
    let cases: Vec<(&str, &str, Vec<Value>, Option<usize>, &str)> = vec![
        (
            "StdlibErr_cidr_bad",
            "cidrhost",
            vec![s("10.0.0.0/30"), n(8)],
            None,
            "prefix of 30 does not accommodate a host numbered 8",
        ),
        (
            "StdlibErr_coalesce_none",
            "coalesce",
            vec![Value::null(), Value::null()],
            None,
            "no non-null arguments",
        ),
        (
            "StdlibErr_convert_bad",
            "convert",
            vec![s("abc"), s("number")],
            Some(0),
            "a number is required",
        ),
        (
            "StdlibErr_element_empty",
            "element",
            vec![tup(vec![]), n(0)],
            None,
            "cannot use element function with an empty list",
        ),
        (
            "StdlibErr_hasindex_obj",
            "hasindex",
            vec![obj(&[("a", n(1))]), s("b")],
            None,
            "collection must be a list, a map or a tuple",
        ),
        (
            "StdlibErr_length_str",
            "length",
            vec![s("abc")],
            None,
            "collection must be a list, a map or a tuple",
        ),
        (
            "StdlibErr_regex_nomatch",
            "regex",
            vec![s("x"), s("abc")],
            None,
            "pattern did not match any part of the given string",
        ),
        (
            "StdlibErr_signum_frac",
            "signum",
            vec![f(-0.5)],
            None,
            "value must be a whole number, between -9223372036854775808 and 9223372036854775807",
        ),
        (
            "StdlibErr_timeadd_bad",
            "timeadd",
            vec![s("2017-11-22"), s("10m")],
            None,
            "not a valid RFC3339 timestamp: missing required time introducer 'T'",
        ),
        (
            "Stdlib_byteslen",
            "byteslen",
            vec![s("Docker")],
            Some(0),
            "bytes required, but have string",
        ),
        (
            "TestFormatTimestampFunc_err_1",
            "formattimestamp",
            vec![s("YYYY-MM-DD"), f(1.2)],
            Some(1),
            "unix timestamp must be an integer",
        ),
        (
            "TestFormatTimestampFunc_err_2",
            "formattimestamp",
            vec![s("YYYY-MM-DD"), s("0")],
            Some(1),
            "not a valid RFC3339 timestamp: cannot use \"0\" as year",
        ),
        (
            "TestFormatTimestampFunc_err_3",
            "formattimestamp",
            vec![s("X"), s("0")],
            Some(1),
            "timestamp string must be RFC3339",
        ),
        (
            "TestFormatTimestampFunc_err_4",
            "formattimestamp",
            vec![s("X"), b(true)],
            Some(1),
            "must be a string timestamp or a unix timestamp number",
        ),
        (
            "TestIndexOf_empty",
            "indexof",
            vec![tup(vec![]), s("a")],
            None,
            "cannot search an empty list",
        ),
        (
            "TestIndexOf_notfound",
            "indexof",
            vec![tup(vec![s("one"), n(2), n(3), s("four")]), s("3")],
            None,
            "item not found",
        ),
        (
            "TestSemverCmp_err_1",
            "semvercmp",
            vec![s("not-a-version"), s(">= 1.0.0")],
            None,
            "invalid semantic version",
        ),
        (
            "TestSemverCmp_err_2",
            "semvercmp",
            vec![s("1.2.3"), s("not-a-constraint")],
            None,
            "improper constraint: not-a-constraint",
        ),
        (
            "TestSemverCmp_err_3",
            "semvercmp",
            vec![s(""), s(">= 1.0.0")],
            None,
            "invalid semantic version",
        ),
        (
            "TestSemverCmp_err_4",
            "semvercmp",
            vec![s("1.2.3"), s("")],
            None,
            "improper constraint: ",
        ),
        (
            "TestUnixTimestampParseFunc_fractional",
            "unixtimestampparse",
            vec![f(1.2)],
            Some(0),
            "unix timestamp must be an integer",
        ),
        (
            "TestUnixTimestampParseFunc_string",
            "unixtimestampparse",
            vec![s("x0")],
            Some(0),
            "a number is required",
        ),
    ];
    for (case, name, args, arg, want) in cases {
        let got = run(name, args.clone());
        assert_eq!(
            got,
            Err(FuncError {
                message: want.to_string(),
                arg
            }),
            "{case}: {name}({args:?})"
        );
    }
}

/// The oracle's "Unsuitable value: element \"x\": string required, but have ..." errors
/// name the type of a function's result: these checks pin those result types.
#[test]
fn result_types_named_by_the_oracle() {
    let cases: Vec<(&str, &str, Vec<Value>, &str)> = vec![
        (
            "Stdlib_chunklist",
            "chunklist",
            vec![nums(&[1, 2, 3, 4, 5]), n(2)],
            "string required, but have list of list of number",
        ),
        (
            "Stdlib_distinct",
            "distinct",
            vec![nums(&[1, 2, 2, 3, 3, 3])],
            "string required, but have list of number",
        ),
        (
            "Stdlib_formatlist",
            "formatlist",
            vec![s("Hi %s"), strs(&["Alice", "Bob"])],
            "string required, but have list of string",
        ),
        (
            "Stdlib_jsondecode",
            "jsondecode",
            vec![s(r#"{"name":"Docker","stars":5}"#)],
            "string required, but have object",
        ),
        (
            "Stdlib_keys",
            "keys",
            vec![obj(&[("foo", n(1)), ("bar", n(2)), ("baz", n(3))])],
            "string required, but have tuple",
        ),
        (
            "Stdlib_merge",
            "merge",
            vec![
                obj(&[("a", n(1)), ("b", n(2))]),
                obj(&[("b", n(3)), ("c", n(4))]),
            ],
            "string required, but have object",
        ),
        (
            "Stdlib_setunion",
            "setunion",
            vec![strs(&["a", "b"]), strs(&["b", "c"])],
            "string required, but have set of string",
        ),
        (
            "Stdlib_split",
            "split",
            vec![s(","), s("a,b,c")],
            "string required, but have list of string",
        ),
        (
            "Stdlib_values",
            "values",
            vec![obj(&[("a", n(1)), ("c", n(3)), ("b", n(2))])],
            "string required, but have tuple",
        ),
    ];
    for (case, name, args, want) in cases {
        assert_eq!(
            disp(name, args.clone()),
            Err(want.to_string()),
            "{case}: {name}({args:?})"
        );
    }
}
