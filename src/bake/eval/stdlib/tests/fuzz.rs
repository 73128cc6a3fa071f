//! Every function with every combination of awkward arguments: errors are fine, panics
//! are not (the bake file is user input).

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::*;
use crate::bake::eval::value::{Number, Type, Value};

fn pool() -> Vec<Value> {
    vec![
        Value::null(),
        Value::Null(Type::String),
        Value::Unknown(Type::Dynamic),
        s(""),
        s("abc"),
        s("%[2]*d%"),
        s("10.0.0.0/8"),
        s("::/0"),
        s("2017-11-22T00:00:00Z"),
        s("-1"),
        s("1.2.3-rc.1"),
        s("(a)(?P<x>b)"),
        s("💃🏿é\u{0}"),
        n(0),
        n(-1),
        n(2),
        n(i64::MIN),
        n(i64::MAX),
        f(1.5),
        f(-1e300),
        Value::Number(Number::Float(f64::INFINITY)),
        Value::Number(Number::Float(f64::NAN)),
        b(true),
        tup(vec![]),
        tup(vec![n(1), s("a"), b(false), Value::null()]),
        strs(&["a", "b", "a"]),
        Value::List(vec![Value::List(vec![n(1)]), Value::List(vec![])]),
        Value::set(vec![n(3), n(1)]),
        obj(&[("a", n(1)), ("b", tup(vec![s("x")]))]),
        Value::Map([("k".to_string(), s("v"))].into_iter().collect()),
    ]
}

fn small_pool() -> Vec<Value> {
    vec![
        Value::null(),
        s(""),
        s("abc"),
        n(-1),
        n(1),
        n(i64::MAX),
        f(0.5),
        tup(vec![n(1), s("a")]),
        strs(&["x", "y"]),
        obj(&[("a", n(1))]),
    ]
}

static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn try_call(name: &str, args: &[Value]) {
    CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let r = catch_unwind(AssertUnwindSafe(|| call(name, args)));
    assert!(r.is_ok(), "{name}({args:?}) panicked");
}

#[test]
fn no_function_panics_on_awkward_arguments() {
    let big = pool();
    let small = small_pool();
    for func in FUNCTIONS {
        // bcrypt is slow by design; its argument handling is covered elsewhere
        if func.name == "bcrypt" {
            try_call("bcrypt", &[s("x"), n(i64::MAX)]);
            try_call("bcrypt", &[s(&"x".repeat(100))]);
            continue;
        }
        let fixed = func.params.len();
        let arities: Vec<usize> = if func.variadic.is_some() {
            vec![fixed, fixed + 1, fixed + 2]
        } else {
            vec![fixed]
        };
        for arity in arities {
            match arity {
                0 => try_call(func.name, &[]),
                1 => {
                    for a in &big {
                        try_call(func.name, std::slice::from_ref(a));
                    }
                }
                2 => {
                    for a in &big {
                        for b in &big {
                            try_call(func.name, &[a.clone(), b.clone()]);
                        }
                    }
                }
                _ => {
                    for a in &small {
                        for b in &small {
                            for c in &small {
                                let mut args = vec![a.clone(), b.clone(), c.clone()];
                                args.extend(small.iter().take(arity - 3).cloned());
                                try_call(func.name, &args);
                            }
                        }
                    }
                }
            }
        }
        // wrong arity is an error, not a panic
        try_call(func.name, &big);
    }
    let calls = CALLS.load(std::sync::atomic::Ordering::Relaxed);
    assert!(calls > 50_000);
}
