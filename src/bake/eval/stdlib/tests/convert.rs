//! The conversion rules of `convert.rs` (cty's convert package): primitive and structural
//! conversions, unification, display strings, equality, mismatch messages.

use crate::bake::eval::convert::*;
use crate::bake::eval::value::{Number, Type, Value};

fn s(x: &str) -> Value {
    Value::string(x)
}

#[test]
fn primitives() {
    let cases: Vec<(Value, Type, Result<Value, &str>)> = vec![
        (s("42"), Type::Number, Ok(Value::int(42))),
        (s("1.5"), Type::Number, Ok(Value::float(1.5))),
        (s("1e3"), Type::Number, Ok(Value::int(1000))),
        (s("abc"), Type::Number, Err("a number is required")),
        (s(" 1"), Type::Number, Err("a number is required")),
        (s("inf"), Type::Number, Err("a number is required")),
        (Value::int(42), Type::String, Ok(s("42"))),
        (Value::float(1.5), Type::String, Ok(s("1.5"))),
        (Value::Bool(true), Type::String, Ok(s("true"))),
        (s("false"), Type::Bool, Ok(Value::Bool(false))),
        (s("1"), Type::Bool, Ok(Value::Bool(true))),
        (s("yes"), Type::Bool, Err("a bool is required")),
        (
            Value::Bool(true),
            Type::Number,
            Err("number required, but have bool"),
        ),
        (
            Value::Tuple(vec![s("a")]),
            Type::String,
            Err("string required, but have tuple"),
        ),
    ];
    for (v, t, want) in cases {
        let got = convert(&v, &t).map_err(|e| e.to_string());
        assert_eq!(got, want.map_err(str::to_string), "convert({v:?}, {t})");
    }
}

#[test]
fn collections() {
    let tup = Value::Tuple(vec![Value::int(1), s("a")]);
    assert_eq!(
        convert(&tup, &Type::List(Box::new(Type::Dynamic))),
        Ok(Value::List(vec![s("1"), s("a")]))
    );
    assert_eq!(
        convert(&tup, &Type::Set(Box::new(Type::String))),
        Ok(Value::Set(vec![s("1"), s("a")]))
    );
    let bad = Value::Tuple(vec![Value::int(1), Value::Bool(true)]);
    assert!(convert(&bad, &Type::List(Box::new(Type::Dynamic))).is_err());
    let err = convert(
        &Value::Tuple(vec![s("x")]),
        &Type::List(Box::new(Type::Number)),
    )
    .map_err(|e| e.to_string());
    assert_eq!(err, Err("element 0: a number is required".to_string()));

    let obj = Value::Object(
        [("a".to_string(), Value::int(1)), ("b".to_string(), s("x"))]
            .into_iter()
            .collect(),
    );
    let m = convert(&obj, &Type::Map(Box::new(Type::String)));
    assert_eq!(
        m,
        Ok(Value::Map(
            [("a".to_string(), s("1")), ("b".to_string(), s("x"))]
                .into_iter()
                .collect()
        ))
    );
    let want = Type::Object([("c".to_string(), Type::String)].into_iter().collect());
    assert_eq!(
        convert(&obj, &want).map_err(|e| e.to_string()),
        Err("attribute \"c\" is required".to_string())
    );
    let want = Type::Object([("a".to_string(), Type::String)].into_iter().collect());
    assert_eq!(
        convert(&obj, &want),
        Ok(Value::Object(
            [("a".to_string(), s("1"))].into_iter().collect()
        ))
    );
    assert_eq!(
        convert(&Value::null(), &Type::String),
        Ok(Value::Null(Type::String))
    );
}

#[test]
fn unification() {
    assert_eq!(unify(&[Type::Number, Type::String]), Some(Type::String));
    assert_eq!(unify(&[Type::Number, Type::Bool]), None);
    assert_eq!(unify(&[Type::Number, Type::Number]), Some(Type::Number));
    assert_eq!(unify(&[]), Some(Type::Dynamic));
    let o1 = Type::Object([("a".to_string(), Type::Number)].into_iter().collect());
    let o2 = Type::Object([("b".to_string(), Type::String)].into_iter().collect());
    assert_eq!(unify(&[o1, o2]), Some(Type::Map(Box::new(Type::String))));
    let t1 = Type::Tuple(vec![Type::Number]);
    let t2 = Type::Tuple(vec![Type::String, Type::String]);
    assert_eq!(unify(&[t1, t2]), Some(Type::List(Box::new(Type::String))));
}

#[test]
fn display_strings() {
    let cases = [
        (Value::float(1.5), "1.5"),
        (Value::int(42), "42"),
        (Value::float(0.1 + 0.2), "0.3"),
        (Value::float(10.0 / 4.0), "2.5"),
        (Value::Number(Number::Float(f64::INFINITY)), "+Inf"),
        (Value::Number(Number::Float(f64::NEG_INFINITY)), "-Inf"),
        (Value::float(1e21), "1000000000000000000000"),
        (Value::float(1e-7), "0.0000001"),
        (Value::Bool(false), "false"),
    ];
    for (v, want) in cases {
        assert_eq!(to_display_string(&v).as_deref(), Ok(want), "{v:?}");
    }
    assert!(to_display_string(&Value::null()).is_err());
    assert!(to_display_string(&Value::List(vec![])).is_err());
}

#[test]
fn equality_follows_serialization() {
    assert!(numbers_equal(Number::Float(0.1 + 0.2), Number::Float(0.3)));
    assert!(numbers_equal(Number::Int(2), Number::Float(2.0)));
    assert!(!numbers_equal(Number::Float(0.1), Number::Float(0.2)));
    assert!(values_equal(
        &Value::Tuple(vec![Value::float(0.1 + 0.2)]),
        &Value::Tuple(vec![Value::float(0.3)])
    ));
    assert!(!values_equal(
        &Value::List(vec![Value::int(1)]),
        &Value::Tuple(vec![Value::int(1)])
    ));
    assert!(!values_equal(&Value::int(1), &Value::string("1")));
    assert!(values_equal(&Value::null(), &Value::Null(Type::String)));
}

#[test]
fn mismatch_messages_like_cty() {
    let list = |t: Type| Type::List(Box::new(t));
    let obj =
        |ks: &[&str]| Type::Object(ks.iter().map(|k| (k.to_string(), Type::String)).collect());
    let ov =
        |ks: &[&str]| Value::Object(ks.iter().map(|k| (k.to_string(), Value::int(1))).collect());
    let cases: Vec<(Value, Type, &str)> = vec![
        (
            Value::Tuple(vec![Value::int(1), Value::Bool(true)]),
            list(Type::Dynamic),
            "all list elements must have the same type",
        ),
        (ov(&["a"]), obj(&["b"]), "attribute \"b\" is required"),
        (
            ov(&[]),
            obj(&["a", "b"]),
            "attributes \"a\" and \"b\" are required",
        ),
        (
            ov(&[]),
            obj(&["a", "b", "c"]),
            "attributes \"a\", \"b\", and \"c\" are required",
        ),
        (
            Value::Tuple(vec![Value::Tuple(vec![Value::int(1)])]),
            list(Type::String),
            "element 0: string required, but have tuple",
        ),
        (
            Value::Map(
                [("a".to_string(), Value::string("x"))]
                    .into_iter()
                    .collect(),
            ),
            list(Type::String),
            "list of string required",
        ),
        (
            Value::List(vec![Value::List(vec![Value::int(1)])]),
            list(Type::String),
            "incorrect list element type: string required, but have list of number",
        ),
        (
            Value::int(1),
            list(Type::String),
            "list of string required, but have number",
        ),
        (
            Value::Bool(true),
            Type::Number,
            "number required, but have bool",
        ),
        (
            Value::List(vec![Value::int(1)]),
            Type::Tuple(vec![Type::Number]),
            "tuple required",
        ),
    ];
    for (v, t, want) in cases {
        assert_eq!(
            convert(&v, &t).map_err(|e| e.to_string()),
            Err(want.to_string()),
            "convert({v:?}, {t})"
        );
    }
    assert_eq!(
        constraint_name(&list(Type::Dynamic)),
        "list of any single type"
    );
    assert_eq!(constraint_name(&Type::Dynamic), "any type");
}
