//! Set functions: sethaselement, setintersection, setproduct, setsubtract,
//! setsymmetricdifference, setunion. Lists and tuples are accepted and converted to sets;
//! all element types are unified first (so `setunion(["a"], [1])` is a set of strings).

use super::args::{present, typed, values_equal};
use super::FuncError;
use crate::bake::eval::convert::{convert, unify};
use crate::bake::eval::value::{Type, Value};

/// The arguments `from..` as sets of one unified element type: each is converted to
/// `set(any)` (an argument error if its own elements do not unify), then all element
/// types are unified (a call error if they cannot be).
fn set_args(a: &[Value], from: usize) -> Result<Vec<Vec<Value>>, FuncError> {
    let any_set = Type::Set(Box::new(Type::Dynamic));
    let mut sets = Vec::new();
    let mut types = Vec::new();
    for i in from..a.len() {
        match typed(a, i, &any_set)? {
            Value::Set(e) => {
                if let Some(first) = e.first() {
                    types.push(first.type_of());
                }
                sets.push(e);
            }
            _ => return Err(FuncError::arg(i, "a set is required")),
        }
    }
    let t = unify(&types)
        .ok_or_else(|| FuncError::new("given sets must all have compatible element types"))?;
    let mut out = Vec::with_capacity(sets.len());
    for (n, elems) in sets.into_iter().enumerate() {
        let conv = elems
            .iter()
            .map(|e| convert(e, &t))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| FuncError::arg(from + n, e.message))?;
        match Value::set(conv) {
            Value::Set(s) => out.push(s),
            _ => return Err(FuncError::new("internal error building a set")),
        }
    }
    Ok(out)
}

fn has(set: &[Value], v: &Value) -> bool {
    set.iter().any(|e| values_equal(e, v))
}

pub(super) fn sethaselement(a: &[Value]) -> Result<Value, FuncError> {
    let sets = set_args(&a[..1.min(a.len())], 0)?;
    let elem = present(a, 1)?;
    Ok(Value::Bool(sets.first().is_some_and(|s| has(s, elem))))
}

pub(super) fn setunion(a: &[Value]) -> Result<Value, FuncError> {
    let sets = set_args(a, 0)?;
    Ok(Value::set(sets.into_iter().flatten().collect()))
}

pub(super) fn setintersection(a: &[Value]) -> Result<Value, FuncError> {
    let sets = set_args(a, 0)?;
    let mut iter = sets.into_iter();
    let first = iter.next().unwrap_or_default();
    let rest: Vec<Vec<Value>> = iter.collect();
    Ok(Value::set(
        first
            .into_iter()
            .filter(|e| rest.iter().all(|s| has(s, e)))
            .collect(),
    ))
}

pub(super) fn setsubtract(a: &[Value]) -> Result<Value, FuncError> {
    let sets = set_args(a, 0)?;
    let (Some(x), Some(y)) = (sets.first(), sets.get(1)) else {
        return Err(FuncError::new("two sets are required"));
    };
    Ok(Value::set(
        x.iter().filter(|e| !has(y, e)).cloned().collect(),
    ))
}

pub(super) fn setsymmetricdifference(a: &[Value]) -> Result<Value, FuncError> {
    let sets = set_args(a, 0)?;
    let mut out = Vec::new();
    let all: Vec<Value> = sets.iter().flatten().cloned().collect();
    for e in Value::set(all).as_seq().unwrap_or(&[]) {
        let count = sets.iter().filter(|s| has(s, e)).count();
        if count % 2 == 1 {
            out.push(e.clone());
        }
    }
    Ok(Value::set(out))
}

/// Bounds the size of a cartesian product (a hostile file cannot exhaust memory).
const MAX_PRODUCT: usize = 1 << 16;

pub(super) fn setproduct(a: &[Value]) -> Result<Value, FuncError> {
    if a.len() < 2 {
        return Err(FuncError::new("at least two arguments are required"));
    }
    let all_sets = a.iter().all(|v| matches!(v, Value::Set(_)));
    // each argument keeps its own element type; convert each separately
    let mut factors = Vec::with_capacity(a.len());
    for i in 0..a.len() {
        let elems = match present(a, i)? {
            Value::Set(e) => e.clone(),
            Value::List(e) | Value::Tuple(e) => {
                let types: Vec<Type> = e.iter().map(Value::type_of).collect();
                let t = unify(&types)
                    .ok_or_else(|| FuncError::arg(i, "all elements must be of the same type"))?;
                let conv = e
                    .iter()
                    .map(|x| convert(x, &t))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|err| FuncError::arg(i, err.message))?;
                conv
            }
            _ => return Err(FuncError::arg(i, "a set or a list is required")),
        };
        factors.push(elems);
    }
    let mut product: Vec<Vec<Value>> = vec![vec![]];
    for f in &factors {
        if product.len().saturating_mul(f.len()) > MAX_PRODUCT {
            return Err(FuncError::new("the product has too many elements"));
        }
        let mut next = Vec::with_capacity(product.len() * f.len());
        for p in &product {
            for e in f {
                let mut t = p.clone();
                t.push(e.clone());
                next.push(t);
            }
        }
        product = next;
    }
    let tuples: Vec<Value> = product.into_iter().map(Value::Tuple).collect();
    Ok(if all_sets {
        Value::set(tuples)
    } else {
        Value::List(tuples)
    })
}
