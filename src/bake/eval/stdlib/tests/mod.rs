//! Table-driven tests. Expected values come from the conformance oracle (the output of the
//! real `docker buildx bake --print` in shared/conformance/bake/cases/Stdlib*, StdlibX*,
//! StdlibErr*, TestFormatTimestampFunc*, TestUnixTimestampParseFunc*, TestSemverCmp*,
//! TestIndexOf*, TestBasename); the case name is given next to each row.

#![allow(clippy::approx_constant, clippy::type_complexity)]

mod convert;
mod cty;
mod errors;
mod fuzz;
mod oracle;

use std::collections::BTreeMap;

use super::encoding::json_string;
use super::{call, lookup, names, FuncError, FUNCTIONS};
use crate::bake::eval::convert::to_display_string;
use crate::bake::eval::value::Value;

pub(super) fn s(x: &str) -> Value {
    Value::string(x)
}
pub(super) fn n(i: i64) -> Value {
    Value::int(i)
}
pub(super) fn f(x: f64) -> Value {
    Value::float(x)
}
pub(super) fn b(x: bool) -> Value {
    Value::Bool(x)
}
pub(super) fn tup(v: Vec<Value>) -> Value {
    Value::Tuple(v)
}
pub(super) fn strs(v: &[&str]) -> Value {
    Value::Tuple(v.iter().map(|x| s(x)).collect())
}
pub(super) fn nums(v: &[i64]) -> Value {
    Value::Tuple(v.iter().map(|x| n(*x)).collect())
}
pub(super) fn obj(v: &[(&str, Value)]) -> Value {
    Value::Object(
        v.iter()
            .map(|(k, x)| (k.to_string(), x.clone()))
            .collect::<BTreeMap<_, _>>(),
    )
}

pub(super) fn run(name: &str, args: Vec<Value>) -> Result<Value, FuncError> {
    match call(name, &args) {
        Some(r) => r,
        None => panic!("no function {name}"),
    }
}

/// Calls `name` and renders the result as `"${...}"` would.
pub(super) fn disp(name: &str, args: Vec<Value>) -> Result<String, String> {
    let v = run(name, args).map_err(|e| e.message)?;
    to_display_string(&v).map_err(|e| e.to_string())
}

/// Calls `name` and renders the result as `jsonencode(...)` would.
pub(super) fn json(name: &str, args: Vec<Value>) -> Result<String, String> {
    let v = run(name, args).map_err(|e| e.message)?;
    json_string(&v).map_err(|e| e.message)
}

#[test]
fn table_is_sorted_and_complete() {
    let list: Vec<&str> = names().collect();
    let mut sorted = list.clone();
    sorted.sort();
    assert_eq!(list, sorted);
    for name in [
        "absolute",
        "add",
        "and",
        "base64decode",
        "base64encode",
        "basename",
        "bcrypt",
        "byteslen",
        "bytesslice",
        "ceil",
        "chomp",
        "chunklist",
        "cidrhost",
        "cidrnetmask",
        "cidrsubnet",
        "cidrsubnets",
        "coalesce",
        "coalescelist",
        "compact",
        "concat",
        "contains",
        "convert",
        "csvdecode",
        "dirname",
        "distinct",
        "divide",
        "element",
        "equal",
        "flatten",
        "floor",
        "format",
        "formatdate",
        "formatlist",
        "formattimestamp",
        "greaterthan",
        "greaterthanorequalto",
        "hasindex",
        "homedir",
        "indent",
        "index",
        "indexof",
        "int",
        "join",
        "jsondecode",
        "jsonencode",
        "keys",
        "length",
        "lessthan",
        "lessthanorequalto",
        "log",
        "lookup",
        "lower",
        "max",
        "md5",
        "merge",
        "min",
        "modulo",
        "multiply",
        "negate",
        "not",
        "notequal",
        "or",
        "parseint",
        "pow",
        "range",
        "regex",
        "regex_replace",
        "regexall",
        "replace",
        "reverse",
        "reverselist",
        "rsadecrypt",
        "sanitize",
        "semvercmp",
        "sethaselement",
        "setintersection",
        "setproduct",
        "setsubtract",
        "setsymmetricdifference",
        "setunion",
        "sha1",
        "sha256",
        "sha512",
        "signum",
        "slice",
        "sort",
        "split",
        "strlen",
        "substr",
        "subtract",
        "timeadd",
        "timestamp",
        "title",
        "trim",
        "trimprefix",
        "trimspace",
        "trimsuffix",
        "unixtimestampparse",
        "upper",
        "urlencode",
        "uuidv4",
        "uuidv5",
        "values",
        "zipmap",
    ] {
        assert!(lookup(name).is_some(), "missing {name}");
    }
    assert!(lookup("try").is_none() && lookup("can").is_none());
    assert!(lookup("nosuchfunc").is_none());
    // buildx has 106 entries, `try` and `can` are the evaluator's
    assert_eq!(FUNCTIONS.len(), 104);
}

#[test]
fn diagnostics_render_like_hcl() {
    let conv = lookup("convert");
    let e = FuncError::arg(0, "a number is required");
    assert_eq!(
        conv.map(|f| e.diagnostic(f)),
        Some((
            "Invalid function argument".to_string(),
            "Invalid value for \"value\" parameter: a number is required.".to_string()
        ))
    );
    let len = lookup("length");
    let e = FuncError::new("collection must be a list, a map or a tuple");
    assert_eq!(
        len.map(|f| e.diagnostic(f)).map(|d| d.1),
        Some(
            "Call to function \"length\" failed: collection must be a list, a map or a tuple."
                .to_string()
        )
    );
}

#[test]
fn unknowns_nulls_and_arity() {
    use crate::bake::eval::value::Type;
    assert_eq!(
        run("upper", vec![Value::Unknown(Type::String)]),
        Ok(Value::Unknown(Type::String))
    );
    assert_eq!(
        run("add", vec![n(1), Value::Unknown(Type::Number)]),
        Ok(Value::Unknown(Type::Number))
    );
    assert_eq!(
        run("merge", vec![Value::Unknown(Type::Dynamic)]),
        Ok(Value::Unknown(Type::Dynamic))
    );
    assert_eq!(disp("upper", vec![n(1)]).as_deref(), Ok("1"));
    assert_eq!(
        run("upper", vec![Value::null()]),
        Err(FuncError::arg(0, "argument must not be null"))
    );
    assert!(run("upper", vec![]).is_err());
    assert!(run("upper", vec![s("a"), s("b")]).is_err());
    assert_eq!(
        disp("equal", vec![Value::null(), Value::null()]).as_deref(),
        Ok("true")
    );
    assert_eq!(disp("equal", vec![n(1), s("1")]).as_deref(), Ok("false"));
    assert_eq!(
        run("length", vec![tup(vec![Value::Unknown(Type::String)])]),
        Ok(n(1))
    );
}
