//! go-cty semantics beyond the oracle cases: documented behaviour of the functions
//! (format verbs, formatdate letters, cidr for IPv6, semver constraints, edge cases).

#![allow(clippy::type_complexity)]

use super::*;
use crate::bake::eval::value::{Type, Value};

fn check_disp(cases: Vec<(&str, Vec<Value>, Result<&str, &str>)>) {
    for (name, args, want) in cases {
        let got = disp(name, args.clone());
        assert_eq!(
            got.as_deref(),
            want.map_err(str::to_string).as_deref(),
            "{name}({args:?})"
        );
    }
}

#[test]
fn format_verbs() {
    let fm = |f: &str, a: Vec<Value>| {
        let mut v = vec![s(f)];
        v.extend(a);
        v
    };
    check_disp(vec![
        ("format", fm("", vec![]), Ok("")),
        (
            "format",
            fm("100%% successful", vec![]),
            Ok("100% successful"),
        ),
        (
            "format",
            fm("string %#v", vec![s("hello")]),
            Ok("string \"hello\""),
        ),
        ("format", fm("number %#v", vec![n(2)]), Ok("number 2")),
        ("format", fm("bool %v", vec![b(true)]), Ok("bool true")),
        ("format", fm("object %v", vec![obj(&[])]), Ok("object {}")),
        ("format", fm("tuple %v", vec![tup(vec![])]), Ok("tuple []")),
        ("format", fm("%%%v", vec![b(false)]), Ok("%false")),
        ("format", fm("%v", vec![Value::null()]), Ok("null")),
        (
            "format",
            fm("This statement is %q", vec![b(false)]),
            Ok("This statement is \"false\""),
        ),
        ("format", fm("%4s", vec![s("💃🏿")]), Ok("   💃🏿")),
        ("format", fm("%-6q", vec![s("💃🏿")]), Ok("\"💃🏿\"   ")),
        (
            "format",
            fm("%.5s", vec![s("日本語日本語")]),
            Ok("日本語日本"),
        ),
        ("format", fm("%6.2q", vec![s("hello")]), Ok("  \"he\"")),
        ("format", fm("%-4.2s", vec![s("hello")]), Ok("he  ")),
        (
            "format",
            fm("%q", vec![s("Hello\nWorld")]),
            Ok("\"Hello\\nWorld\""),
        ),
        ("format", fm("%t", vec![s("false")]), Ok("false")),
        ("format", fm("%+d", vec![n(10)]), Ok("+10")),
        ("format", fm("% d", vec![n(10)]), Ok(" 10")),
        (
            "format",
            fm("%5d|%-5d|", vec![n(10), n(10)]),
            Ok("   10|10   |"),
        ),
        (
            "format",
            fm("%b %o %x %X", vec![n(5), n(9), n(254), n(254)]),
            Ok("101 11 fe FE"),
        ),
        ("format", fm("%f", vec![n(10)]), Ok("10.000000")),
        (
            "format",
            fm("%+f|% f", vec![n(10), n(-10)]),
            Ok("+10.000000|-10.000000"),
        ),
        ("format", fm("%.1f", vec![s("1.06")]), Ok("1.1")),
        (
            "format",
            fm("%e|%E", vec![n(1000), n(1000)]),
            Ok("1.000000e+03|1.000000E+03"),
        ),
        (
            "format",
            fm("%g|%G", vec![n(1000), n(1000)]),
            Ok("1000|1000"),
        ),
        (
            "format",
            fm("%g", vec![s("0.00000000000000000000001")]),
            Ok("1e-23"),
        ),
        ("format", fm("%v", vec![n(1234567)]), Ok("1.234567e+06")),
        ("format", fm("%v", vec![n(100000)]), Ok("100000")),
        ("format", fm("%08.3f", vec![f(-3.14159)]), Ok("-003.142")),
        ("format", fm("%#x %#o", vec![n(255), n(8)]), Ok("0xff 010")),
        (
            "format",
            fm("%s is not in the args list", vec![]),
            Err("not enough arguments for \"%s\" at 0: need index 1 but have 0 total"),
        ),
        (
            "format",
            fm("%[3]s x", vec![b(true), b(true)]),
            Err("not enough arguments for \"%[3]s\" at 0: need index 3 but have 2 total"),
        ),
        (
            "format",
            fm("%[0]s", vec![b(true)]),
            Err("unrecognized format character '0' at offset 2"),
        ),
        (
            "format",
            fm("%z is not valid", vec![n(10)]),
            Err("unsupported format verb 'z' in \"%z\" at offset 0"),
        ),
        (
            "format",
            fm("%☠ is not valid", vec![n(10)]),
            Err("unrecognized format character '☠' at offset 1"),
        ),
        (
            "format",
            fm("no verbs", vec![n(10)]),
            Err("too many arguments; no verbs in format string"),
        ),
        (
            "format",
            fm("one verb %d", vec![n(10), n(11)]),
            Err("too many arguments; only 1 used by format string"),
        ),
        (
            "format",
            fm("%d", vec![f(1.5)]),
            Err("unsupported value for \"%d\" at 0: an integer is required"),
        ),
        (
            "format",
            fm("%s", vec![Value::null()]),
            Err("unsupported value for \"%s\" at 0: null value cannot be formatted"),
        ),
        (
            "formatlist",
            fm("%s", vec![strs(&["a"]), strs(&["b", "c"])]),
            Err("argument 2 has length 2, which is inconsistent with argument 1 of length 1"),
        ),
    ]);
    assert_eq!(
        json("formatlist", vec![s("%s=%s"), s("k"), strs(&["a", "b"])]).as_deref(),
        Ok(r#"["k=a","k=b"]"#)
    );
    assert_eq!(
        json("formatlist", vec![s("%s"), tup(vec![])]).as_deref(),
        Ok("[]")
    );
}

#[test]
fn dates() {
    let ts = "2017-03-04T05:06:07Z";
    let fd = |f: &str| ("formatdate", vec![s(f), s(ts)]);
    let cases = vec![
        (fd("DD MMM YYYY hh:mm ZZZ"), Ok("04 Mar 2017 05:06 UTC")),
        (fd("EEEE, MMMM D, YY"), Ok("Saturday, March 4, 17")),
        (fd("H:m:s AA aa"), Ok("5:6:7 AM am")),
        (fd("HH:mm ZZZZ ZZZZZ Z"), Ok("05:06 +0000 +00:00 Z")),
        (fd("'hh' '' 'it''s'"), Ok("hh ' it's")),
        (
            fd("YYY"),
            Err("invalid date format verb \"YYY\": year must either be \"YY\" or \"YYYY\""),
        ),
        (fd("q"), Err("invalid date format verb \"q\"")),
        (fd("'open"), Err("unterminated literal '")),
    ];
    for ((name, args), want) in cases {
        assert_eq!(
            disp(name, args.clone()).as_deref(),
            want.map_err(str::to_string).as_deref(),
            "{args:?}"
        );
    }
    check_disp(vec![
        (
            "formatdate",
            vec![s("hh:mm ZZZZZ"), s("2017-03-04T17:06:07+05:30")],
            Ok("17:06 +05:30"),
        ),
        (
            "formatdate",
            vec![s("HH AA"), s("2017-03-04T00:06:07Z")],
            Ok("12 AM"),
        ),
        (
            "formatdate",
            vec![s("YYYY"), s("2017-02-30T00:00:00Z")],
            Err("not a valid RFC3339 timestamp: day out of range"),
        ),
        (
            "formatdate",
            vec![s("YYYY"), s("2017-01-01T00:00:00")],
            Err("not a valid RFC3339 timestamp: end of string before UTC offset"),
        ),
        (
            "timeadd",
            vec![s("2017-13-22T00:00:00Z"), s("1h")],
            Err("not a valid RFC3339 timestamp: cannot use \"-22T00:00:00Z\" as month"),
        ),
        (
            "timeadd",
            vec![s("2017-11-22T24:00:00Z"), s("1h")],
            Err("not a valid RFC3339 timestamp: hour must be between 0 and 23 inclusive"),
        ),
        (
            "timeadd",
            vec![s("2017-11-22T10:60:00Z"), s("1h")],
            Err("not a valid RFC3339 timestamp: minute must have exactly two digits"),
        ),
        (
            "timeadd",
            vec![s("2017-11-22T10:00:61Z"), s("1h")],
            Err("not a valid RFC3339 timestamp: cannot use \"Z\" as second"),
        ),
        (
            "timeadd",
            vec![s("2017-11-22T10:00Z"), s("1h")],
            Err("not a valid RFC3339 timestamp: found \"Z\" where \":\" is expected"),
        ),
        (
            "timeadd",
            vec![s("2017-02-30T10:00:00Z"), s("1h")],
            Err("not a valid RFC3339 timestamp: day out of range"),
        ),
        (
            "timeadd",
            vec![s("2017-11-22T00:00:00Z"), s("-1.5h")],
            Ok("2017-11-21T22:30:00Z"),
        ),
        (
            "timeadd",
            vec![s("2017-11-22T00:00:00+01:00"), s("24h")],
            Ok("2017-11-23T00:00:00+01:00"),
        ),
        (
            "timeadd",
            vec![s("2017-11-22T00:00:00.5Z"), s("500ms")],
            Ok("2017-11-22T00:00:01Z"),
        ),
        (
            "timeadd",
            vec![s("2017-11-22T00:00:00Z"), s("1d")],
            Err("time: unknown unit \"d\" in duration \"1d\""),
        ),
        (
            "timeadd",
            vec![s("2017-11-22T00:00:00Z"), s("10")],
            Err("time: missing unit in duration \"10\""),
        ),
        (
            "formattimestamp",
            vec![s("X"), s("2018-01-02T23:12:01-08:00")],
            Ok("1514963521"),
        ),
    ]);
    // ISO weeks around new year: 2021-01-03 is in week 53 of 2020
    let t = run("unixtimestampparse", vec![n(1609632000)]).ok();
    let e = t.as_ref().and_then(|v| v.as_entries());
    assert_eq!(e.and_then(|m| m.get("iso_year")), Some(&n(2020)));
    assert_eq!(e.and_then(|m| m.get("iso_week")), Some(&n(53)));
}

#[test]
fn networks() {
    check_disp(vec![
        (
            "cidrhost",
            vec![s("192.168.1.0/24"), n(-1)],
            Ok("192.168.1.255"),
        ),
        (
            "cidrhost",
            vec![s("fd00:fd12:3456:7890::/56"), n(16)],
            Ok("fd00:fd12:3456:7800::10"),
        ),
        ("cidrnetmask", vec![s("172.16.0.0/12")], Ok("255.240.0.0")),
        (
            "cidrsubnet",
            vec![s("172.16.0.0/12"), n(4), n(2)],
            Ok("172.18.0.0/16"),
        ),
        (
            "cidrsubnet",
            vec![s("10.1.2.0/24"), n(4), n(15)],
            Ok("10.1.2.240/28"),
        ),
        (
            "cidrsubnet",
            vec![s("fd00:fd12:3456:7890::/56"), n(16), n(162)],
            Ok("fd00:fd12:3456:7800:a200::/72"),
        ),
        (
            "cidrsubnet",
            vec![s("10.0.0.0/30"), n(4), n(0)],
            Err("insufficient address space to extend prefix of 30 by 4"),
        ),
        (
            "cidrsubnet",
            vec![s("10.0.0.0/16"), n(4), n(16)],
            Err("prefix extension of 4 does not accommodate a subnet numbered 16"),
        ),
        (
            "cidrhost",
            vec![s("not-a-cidr"), n(1)],
            Err("invalid CIDR expression: invalid CIDR address: not-a-cidr"),
        ),
    ]);
    assert_eq!(
        json(
            "cidrsubnets",
            vec![s("10.1.0.0/16"), n(4), n(4), n(8), n(4)]
        )
        .as_deref(),
        Ok(r#"["10.1.0.0/20","10.1.16.0/20","10.1.32.0/24","10.1.48.0/20"]"#)
    );
    assert_eq!(
        json(
            "cidrsubnets",
            vec![s("fd00:fd12:3456:7890::/56"), n(16), n(16), n(16), n(32)]
        )
        .as_deref(),
        Ok(
            r#"["fd00:fd12:3456:7800::/72","fd00:fd12:3456:7800:100::/72","fd00:fd12:3456:7800:200::/72","fd00:fd12:3456:7800:300::/88"]"#
        )
    );
    assert!(run("cidrsubnets", vec![s("10.0.0.0/30"), n(1), n(1), n(1)]).is_err());
}

#[test]
fn semver_constraints() {
    let cases = [
        ("1.2.3", ">= 1.2.0, < 2.0.0", true),
        ("1.2.3", "~1.2", true),
        ("1.3.0", "~1.2", false),
        ("1.3.0", "^1.2", true),
        ("2.0.0", "^1.2", false),
        ("0.2.5", "^0.2.3", true),
        ("0.3.0", "^0.2.3", false),
        ("1.2.3", "1.2.x", true),
        ("1.2.3", "1.2", true),
        ("1.3.0", "1.2", false),
        ("1.2.3", "!= 1.2.3", false),
        ("1.2.3", "< 1.0 || >= 1.2", true),
        ("1.5.0", "1.2 - 1.6", true),
        ("1.7.0", "1.2 - 1.6", false),
        ("v3.23", ">= 3.20", true),
        ("3.19", ">= 3.20", false),
        ("1.2.3-beta", ">= 1.0.0", false),
        ("1.2.3-beta", ">= 1.2.3-alpha", true),
        ("1.2.3", "*", true),
        ("1.2.3", "> 1.2", false),
        ("1.3.0", "> 1.2", true),
        ("1.2.9", "<= 1.2", true),
        ("1.2.3", ">=1.0,<2", true),
        ("1.2.3", ">= 1.0 < 1.2", false),
        ("1.2.3", "1.0 - 1.3 !=1.2.2", true),
        ("1.2.3-rc.1", ">= 1.2.3-rc.0, < 1.3", true),
        ("1.2.3-rc.1", "< 1.3 || >= 1.2.3-rc.0", true),
        ("1.2.3", "!= 1.2", false),
        ("1.3.0", "!= 1.2", true),
        ("0.0.5", "~0.0.0", true),
        ("2.0.0", "~1", false),
        ("1.9.0", "~1", true),
    ];
    for (v, c, want) in cases {
        assert_eq!(
            run("semvercmp", vec![s(v), s(c)]),
            Ok(b(want)),
            "semvercmp({v:?}, {c:?})"
        );
    }
}

#[test]
fn strings_and_collections() {
    check_disp(vec![
        (
            "title",
            vec![s("hello world-foo_bar")],
            Ok("Hello World-Foo_bar"),
        ),
        ("upper", vec![s("héllo ß")], Ok("HÉLLO ß")),
        ("lower", vec![s("HÉLLO")], Ok("héllo")),
        ("strlen", vec![s("💃🏿e\u{301}")], Ok("2")),
        ("reverse", vec![s("e\u{301}x")], Ok("xe\u{301}")),
        ("substr", vec![s("hello world"), n(-5), n(-1)], Ok("world")),
        ("substr", vec![s("hello"), n(1), n(-1)], Ok("ello")),
        ("substr", vec![s("hello"), n(10), n(2)], Ok("")),
        ("indent", vec![n(2), s("a\nb\n")], Ok("a\n  b\n  ")),
        (
            "join",
            vec![s(", "), strs(&["a", "b"]), strs(&["c"])],
            Ok("a, b, c"),
        ),
        ("chomp", vec![s("x\r\n\n")], Ok("x")),
        ("trimspace", vec![s("\n\t x \u{3000}")], Ok("x")),
        ("sanitize", vec![s("my.target/name")], Ok("my_target_name")),
        ("dirname", vec![s("/foo/bar/baz.txt")], Ok("/foo/bar")),
        ("dirname", vec![s("foo")], Ok(".")),
        ("dirname", vec![s("/")], Ok("/")),
        ("replace", vec![s("abc"), s(""), s("-")], Ok("-a-b-c-")),
        ("element", vec![strs(&["a", "b", "c"]), n(4)], Ok("b")),
        ("element", vec![strs(&["a", "b", "c"]), n(-1)], Ok("c")),
        ("index", vec![strs(&["a", "b"]), n(1)], Ok("b")),
        ("length", vec![obj(&[("a", n(1))])], Ok("1")),
        ("coalesce", vec![Value::null(), n(1), s("x")], Ok("1")),
        ("lookup", vec![obj(&[("a", n(1))]), s("b"), s("d")], Ok("d")),
        ("parseint", vec![s("zZ"), n(62)], Ok("2231")),
        (
            "parseint",
            vec![s("12"), n(2)],
            Err("cannot parse \"12\" as a base 2 integer"),
        ),
        (
            "parseint",
            vec![s("1"), n(63)],
            Err("base must be a whole number between 2 and 62 inclusive"),
        ),
        ("urlencode", vec![s("ü~-_.")], Ok("%C3%BC~-_.")),
        ("base64decode", vec![s("aGVs\nbG8=")], Ok("hello")),
        // Go's RE2: ASCII Perl classes, \Q..\E, literal [ in a class
        ("regex", vec![s("\\d+"), s("x\u{661}\u{662}3")], Ok("3")),
        ("regex", vec![s("[\\w-]+"), s("a-b_c d")], Ok("a-b_c")),
        ("regex", vec![s("[^\\s]+"), s("  ab cd")], Ok("ab")),
        ("regex", vec![s("\\bfoo\\b"), s("a foo b")], Ok("foo")),
        ("regex", vec![s("[[]"), s("a[b")], Ok("[")),
        ("regex", vec![s("[[:alpha:]]+"), s("12ab3")], Ok("ab")),
        ("regex", vec![s("[a&&b]+"), s("x&&a")], Ok("&&a")),
        ("regex", vec![s("\\Qa.b\\E"), s("xa.b")], Ok("a.b")),
        (
            "regex",
            vec![s("\\Qa.b\\E"), s("axb")],
            Err("pattern did not match any part of the given string"),
        ),
        ("base64decode", vec![s("aGVsbG9=")], Ok("hello")),
        (
            "base64decode",
            vec![s("aGVsbG8")],
            Err("failed to decode base64 data 'aGVsbG8'"),
        ),
        ("cidrhost", vec![s("::ffff:0:0/96"), n(5)], Ok("0.0.0.5")),
        ("jsonencode", vec![s("\u{2028}\t")], Ok(r#""\u2028\t""#)),
        (
            "convert",
            vec![tup(vec![n(1), s("a")]), s("list(string)")],
            Err("string required, but have list of string"),
        ),
    ]);
    assert_eq!(
        json(
            "regex",
            vec![s("(?P<y>\\d{4})-(?P<m>\\d{2})"), s("on 2024-05")]
        )
        .as_deref(),
        Ok(r#"{"m":"05","y":"2024"}"#)
    );
    assert_eq!(
        json("regex", vec![s("(\\d+)-(x)?"), s("12-")]).as_deref(),
        Ok(r#"["12",null]"#)
    );
    assert_eq!(
        json("regexall", vec![s("(\\w)(\\d)"), s("a1 b2")]).as_deref(),
        Ok(r#"[["a","1"],["b","2"]]"#)
    );
    assert_eq!(
        disp("regex_replace", vec![s("a1b22"), s("(\\d+)"), s("<$1>")]).as_deref(),
        Ok("a<1>b<22>")
    );
    assert_eq!(
        json("convert", vec![tup(vec![n(1), s("a")]), s("list(string)")]).as_deref(),
        Ok(r#"["1","a"]"#)
    );
    assert_eq!(
        run("convert", vec![Value::Unknown(Type::Dynamic), s("string")]),
        Ok(Value::Unknown(Type::String))
    );
    assert_eq!(
        json("concat", vec![strs(&["a"]), tup(vec![n(1)])]).as_deref(),
        Ok(r#"["a",1]"#)
    );
    assert_eq!(
        json("compact", vec![strs(&["a", "", "b"])]).as_deref(),
        Ok(r#"["a","b"]"#)
    );
    assert_eq!(
        json(
            "merge",
            vec![obj(&[("a", n(1))]), Value::null(), obj(&[("b", s("x"))])]
        )
        .as_deref(),
        Ok(r#"{"a":1,"b":"x"}"#)
    );
    assert_eq!(
        json("setunion", vec![strs(&["a"]), nums(&[1])]).as_deref(),
        Ok(r#"["1","a"]"#)
    );
    assert_eq!(
        run("setunion", vec![strs(&["a"]), tup(vec![n(1), b(true)])]),
        Err(FuncError::arg(
            1,
            "all set elements must have the same type"
        ))
    );
    assert_eq!(
        run("setunion", vec![strs(&["a"]), tup(vec![nums(&[1])])]),
        Err(FuncError::new(
            "given sets must all have compatible element types"
        ))
    );
    assert_eq!(
        run("lookup", vec![obj(&[("a", n(1))]), s("a"), Value::null()]),
        Err(FuncError::arg(2, "argument must not be null"))
    );
    assert_eq!(
        run(
            "join",
            vec![
                s(","),
                strs(&["a"]),
                Value::List(vec![s("b"), Value::Null(Type::String)])
            ]
        ),
        Err(FuncError::arg(
            2,
            "element 1 of list 2 is null; cannot concatenate null values"
        ))
    );
    assert_eq!(json("range", vec![n(3)]).as_deref(), Ok("[0,1,2]"));
    assert_eq!(json("range", vec![n(0)]).as_deref(), Ok("[]"));
    assert!(run("range", vec![n(0), n(10000)]).is_err());
    assert_eq!(
        json("chunklist", vec![nums(&[1, 2]), n(0)]).as_deref(),
        Ok("[[1,2]]")
    );
    assert_eq!(
        json("csvdecode", vec![s("a,b\n\"x,\"\"y\",2\n")]).as_deref(),
        Ok(r#"[{"a":"x,\"y","b":"2"}]"#)
    );
    assert_eq!(
        run("csvdecode", vec![s("a,b\n1\n")]).map_err(|e| e.message),
        Err("CSV parse error on line 2: wrong number of fields".to_string())
    );
    assert_eq!(
        run("csvdecode", vec![s("a,a\n1,2\n")]).map_err(|e| e.message),
        Err("duplicate column name \"a\"".to_string())
    );
    assert_eq!(
        json("setproduct", vec![strs(&["a"]), nums(&[1, 2])]).as_deref(),
        Ok(r#"[["a",1],["a",2]]"#)
    );
    assert_eq!(disp("jsondecode", vec![s("1.5e1")]).as_deref(), Ok("15"));
    let jd = |x: &str| run("jsondecode", vec![s(x)]).map_err(|e| e.message);
    assert_eq!(jd("{"), Err("unexpected EOF".to_string()));
    assert_eq!(
        jd("x"),
        Err("invalid character 'x' looking for beginning of value".to_string())
    );
    assert_eq!(
        jd("{1:2}"),
        Err("invalid character '1' looking for beginning of object key string".to_string())
    );
    assert_eq!(
        jd("1 2"),
        Err("extraneous data after JSON object".to_string())
    );
    assert_eq!(
        disp("log", vec![n(-1), n(10)]),
        Err("the result is not a real number".to_string())
    );
}

#[test]
fn hostile_inputs_are_errors_not_panics() {
    let deep = format!("{}string{}", "list(".repeat(200), ")".repeat(200));
    assert!(run("convert", vec![s("x"), s(&deep)]).is_err());
    assert!(run("format", vec![s("%99999999999999999999d"), n(1)]).is_err());
    assert!(run("format", vec![s("%"), n(1)]).is_err());
    assert!(run("format", vec![s("%[1"), n(1)]).is_err());
    assert!(run("formatdate", vec![s("Y"), s("9999-12-31T23:59:59-23:59")]).is_err());
    assert!(run("unixtimestampparse", vec![f(1e300)]).is_err());
    assert!(run("substr", vec![s("abc"), n(i64::MIN), n(i64::MAX)]).is_ok());
    assert_eq!(
        run("element", vec![strs(&["a", "b"]), n(i64::MIN)]),
        Ok(s("a"))
    );
    assert!(run("cidrhost", vec![s("::/0"), n(i64::MIN)]).is_ok());
    assert!(run("cidrsubnet", vec![s("::/0"), n(-5), n(1)]).is_err());
    assert!(run("pow", vec![n(i64::MAX), n(i64::MAX)]).is_ok());
    assert!(run("negate", vec![n(i64::MIN)]).is_ok());
    assert!(run("modulo", vec![n(i64::MIN), n(-1)]).is_ok());
    assert_eq!(
        run("regex", vec![s("a("), s("x")]),
        Err(FuncError::arg(
            0,
            "error parsing pattern: error parsing regexp: missing closing ): `a(`"
        ))
    );
    assert_eq!(
        run("regex", vec![s("x[ab"), s("x")]).map_err(|e| e.message),
        Err("error parsing pattern: error parsing regexp: missing closing ]: `[ab`".to_string())
    );
    assert!(run(
        "timeadd",
        vec![s("2017-11-22T00:00:00Z"), s("99999999999h")]
    )
    .is_err());
    assert!(run("timeadd", vec![s("2017-11-22T00:00:00Z"), s("-")]).is_err());
    assert!(run("timeadd", vec![s("2017-11-22T00:00:00Z"), s(".h")]).is_err());
    let many: Vec<Value> = (0..30).map(|_| nums(&[1, 2])).collect();
    assert!(run("setproduct", many).is_err());
    let big = "x".repeat(1 << 16);
    assert!(run("replace", vec![s(&big), s(""), s(&big)]).is_err());
    assert!(run("semvercmp", vec![s("99999999999999999999999.0.0"), s(">1")]).is_err());
    assert_eq!(
        run("semvercmp", vec![s("1.0.0-01"), s(">1")]).map_err(|e| e.message),
        Err("version segment starts with 0".to_string())
    );
    assert_eq!(
        run("semvercmp", vec![s("1.0.0"), s(">1 || bad!")]).map_err(|e| e.message),
        Err("improper constraint:  bad!".to_string())
    );
}
