//! Collection functions: chunklist, coalesce, coalescelist, compact, concat, contains,
//! distinct, element, flatten, hasindex, index, indexof, keys, length, lookup, merge,
//! range, reverselist, slice, sort, values, zipmap.

use std::collections::BTreeMap;

use super::args::{integer, list_of, number, present, string, values_equal};
use super::FuncError;
use crate::bake::eval::convert::{convert, unify};
use crate::bake::eval::value::{Number, Type, Value};

const COLLECTION: &str = "collection must be a list, a map or a tuple";

/// Builds a list from elements, unifying their types (a list is homogeneous).
fn list_value(elems: Vec<Value>) -> Result<Value, FuncError> {
    let types: Vec<Type> = elems.iter().map(Value::type_of).collect();
    let Some(t) = unify(&types) else {
        return Ok(Value::Tuple(elems));
    };
    let conv = elems
        .iter()
        .map(|e| convert(e, &t))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| FuncError::new(e.message))?;
    Ok(Value::List(conv))
}

pub(super) fn chunklist(a: &[Value]) -> Result<Value, FuncError> {
    let list = list_of(a, 0, &Type::Dynamic)?;
    let size = integer(a, 1).map_err(|e| FuncError::new(format!("invalid size: {e}")))?;
    if size < 0 {
        return Err(FuncError::new("the size argument must be positive"));
    }
    if list.is_empty() {
        return Ok(Value::List(vec![]));
    }
    if size == 0 {
        return Ok(Value::List(vec![Value::List(list)]));
    }
    Ok(Value::List(
        list.chunks(size as usize)
            .map(|c| Value::List(c.to_vec()))
            .collect(),
    ))
}

pub(super) fn coalesce(a: &[Value]) -> Result<Value, FuncError> {
    if a.is_empty() {
        return Err(FuncError::new("at least one argument is required"));
    }
    let types: Vec<Type> = a.iter().map(Value::type_of).collect();
    let t = unify(&types).ok_or_else(|| FuncError::new("all arguments must have the same type"))?;
    for (i, v) in a.iter().enumerate() {
        if v.is_unknown() {
            return Ok(Value::Unknown(t));
        }
        if !v.is_null() {
            return convert(v, &t).map_err(|e| FuncError::arg(i, e.message));
        }
    }
    Err(FuncError::new("no non-null arguments"))
}

pub(super) fn coalescelist(a: &[Value]) -> Result<Value, FuncError> {
    if a.is_empty() {
        return Err(FuncError::new("at least one argument is required"));
    }
    for v in a {
        match v {
            Value::Null(_) => continue,
            Value::List(e) | Value::Tuple(e) => {
                if !e.is_empty() {
                    return Ok(v.clone());
                }
            }
            _ => {
                return Err(FuncError::new(
                    "coalescelist arguments must be lists or tuples",
                ))
            }
        }
    }
    Err(FuncError::new("no non-null arguments"))
}

pub(super) fn compact(a: &[Value]) -> Result<Value, FuncError> {
    let list = list_of(a, 0, &Type::String)?;
    Ok(Value::List(
        list.into_iter()
            .filter(|v| matches!(v, Value::String(s) if !s.is_empty()))
            .collect(),
    ))
}

pub(super) fn concat(a: &[Value]) -> Result<Value, FuncError> {
    if a.is_empty() {
        return Err(FuncError::new("at least one argument is required"));
    }
    let mut all_lists = true;
    let mut out = Vec::new();
    for (i, v) in a.iter().enumerate() {
        match present(a, i)? {
            Value::List(e) => out.extend(e.iter().cloned()),
            Value::Tuple(e) => {
                all_lists = false;
                out.extend(e.iter().cloned());
            }
            _ => {
                return Err(FuncError::arg(
                    i,
                    format!(
                        "all arguments must be lists or tuples; got {}",
                        v.type_of().friendly_name()
                    ),
                ))
            }
        }
    }
    if all_lists {
        list_value(out)
    } else {
        Ok(Value::Tuple(out))
    }
}

fn seq_arg(a: &[Value], i: usize, msg: &str) -> Result<Vec<Value>, FuncError> {
    match present(a, i)? {
        Value::List(e) | Value::Set(e) | Value::Tuple(e) => Ok(e.clone()),
        _ => Err(FuncError::new(msg)),
    }
}

pub(super) fn contains(a: &[Value]) -> Result<Value, FuncError> {
    let list = seq_arg(a, 0, "argument must be list, tuple, or set")?;
    // go-cty 1.17 (the version buildx ships) refuses a null value here
    let v = present(a, 1)?;
    Ok(Value::Bool(list.iter().any(|e| values_equal(e, v))))
}

pub(super) fn distinct(a: &[Value]) -> Result<Value, FuncError> {
    let list = list_of(a, 0, &Type::Dynamic)?;
    let mut out: Vec<Value> = Vec::new();
    for e in list {
        if !out.iter().any(|o| values_equal(o, &e)) {
            out.push(e);
        }
    }
    Ok(Value::List(out))
}

pub(super) fn element(a: &[Value]) -> Result<Value, FuncError> {
    let list = match present(a, 0)? {
        Value::List(e) | Value::Tuple(e) => e.clone(),
        other => {
            return Err(FuncError::new(format!(
                "cannot read elements from {}",
                other.type_of().friendly_name()
            )))
        }
    };
    let idx = integer(a, 1).map_err(|e| FuncError::new(format!("invalid index: {e}")))?;
    if list.is_empty() {
        return Err(FuncError::new(
            "cannot use element function with an empty list",
        ));
    }
    // negative indexes count from the end, like cty
    let i = idx.rem_euclid(list.len() as i64) as usize;
    list.get(i)
        .cloned()
        .ok_or_else(|| FuncError::new("invalid index"))
}

fn flatten_into(v: &Value, out: &mut Vec<Value>) -> Result<(), FuncError> {
    match v {
        Value::List(e) | Value::Set(e) | Value::Tuple(e) => {
            for x in e {
                match x {
                    Value::List(_) | Value::Set(_) | Value::Tuple(_) => flatten_into(x, out)?,
                    other => out.push(other.clone()),
                }
            }
            Ok(())
        }
        _ => Err(FuncError::new("can only flatten lists, sets and tuples")),
    }
}

/// cty's flatten always produces a tuple.
pub(super) fn flatten(a: &[Value]) -> Result<Value, FuncError> {
    let v = present(a, 0)?;
    let mut out = Vec::new();
    flatten_into(v, &mut out)?;
    Ok(Value::Tuple(out))
}

/// Looks `key` up in a list, tuple or map; `Ok(None)` when it is not there.
fn index_of(coll: &Value, key: &Value) -> Result<Option<Value>, FuncError> {
    match coll {
        Value::List(e) | Value::Tuple(e) => {
            let k = convert(key, &Type::Number).map_err(|_| {
                FuncError::new(if matches!(coll, Value::Tuple(_)) {
                    "key for tuple must be number"
                } else {
                    "key for list must be number"
                })
            })?;
            let Value::Number(n) = k else {
                return Ok(None);
            };
            Ok(n.as_i64()
                .filter(|i| *i >= 0)
                .and_then(|i| e.get(i as usize).cloned()))
        }
        Value::Map(m) => {
            let k = convert(key, &Type::String)
                .map_err(|_| FuncError::new("key for map must be string"))?;
            let Value::String(s) = k else {
                return Ok(None);
            };
            Ok(m.get(&s).cloned())
        }
        _ => Err(FuncError::new(COLLECTION)),
    }
}

pub(super) fn hasindex(a: &[Value]) -> Result<Value, FuncError> {
    let coll = present(a, 0)?;
    let key = present(a, 1)?;
    Ok(Value::Bool(index_of(coll, key)?.is_some()))
}

pub(super) fn index(a: &[Value]) -> Result<Value, FuncError> {
    let coll = present(a, 0)?;
    let key = present(a, 1)?;
    index_of(coll, key)?.ok_or_else(|| FuncError::new("invalid index"))
}

pub(super) fn indexof(a: &[Value]) -> Result<Value, FuncError> {
    let list = match present(a, 0)? {
        Value::List(e) | Value::Tuple(e) => e,
        _ => return Err(FuncError::new("argument must be a list or tuple")),
    };
    if list.is_empty() {
        return Err(FuncError::new("cannot search an empty list"));
    }
    let v = present(a, 1)?;
    list.iter()
        .position(|e| values_equal(e, v))
        .map(|i| Value::int(i as i64))
        .ok_or_else(|| FuncError::new("item not found"))
}

pub(super) fn keys(a: &[Value]) -> Result<Value, FuncError> {
    match present(a, 0)? {
        Value::Map(m) => Ok(Value::List(m.keys().cloned().map(Value::String).collect())),
        Value::Object(m) => Ok(Value::Tuple(m.keys().cloned().map(Value::String).collect())),
        _ => Err(FuncError::arg(0, "must have map or object type")),
    }
}

pub(super) fn values(a: &[Value]) -> Result<Value, FuncError> {
    match present(a, 0)? {
        Value::Map(m) => Ok(Value::List(m.values().cloned().collect())),
        Value::Object(m) => Ok(Value::Tuple(m.values().cloned().collect())),
        _ => Err(FuncError::new(
            "values() requires a map as the first argument",
        )),
    }
}

pub(super) fn length(a: &[Value]) -> Result<Value, FuncError> {
    let v = present(a, 0)?;
    match v {
        Value::Unknown(_) => Ok(Value::Unknown(Type::Number)),
        Value::List(e) | Value::Set(e) | Value::Tuple(e) => Ok(Value::int(e.len() as i64)),
        Value::Map(m) | Value::Object(m) => Ok(Value::int(m.len() as i64)),
        _ => Err(FuncError::new(COLLECTION)),
    }
}

pub(super) fn lookup(a: &[Value]) -> Result<Value, FuncError> {
    let key = string(a, 1)?;
    let default = present(a, 2)?;
    match present(a, 0)? {
        Value::Object(m) => Ok(m.get(&key).cloned().unwrap_or_else(|| default.clone())),
        Value::Map(m) => {
            let et = m
                .values()
                .next()
                .map(Value::type_of)
                .unwrap_or(Type::Dynamic);
            let d = convert(default, &et).map_err(|_| {
                FuncError::arg(
                    2,
                    "the default value must have the same type as the map elements",
                )
            })?;
            Ok(m.get(&key).cloned().unwrap_or(d))
        }
        _ => Err(FuncError::arg(
            0,
            "lookup() requires a map as the first argument",
        )),
    }
}

pub(super) fn merge(a: &[Value]) -> Result<Value, FuncError> {
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    let mut all_maps = true;
    let mut any_arg = false;
    for v in a {
        match v {
            Value::Null(_) => continue,
            Value::Map(m) => out.extend(m.iter().map(|(k, v)| (k.clone(), v.clone()))),
            Value::Object(m) => {
                all_maps = false;
                out.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            other => {
                return Err(FuncError::new(format!(
                    "arguments must be maps or objects, got {:?}",
                    other.type_of().friendly_name()
                )))
            }
        }
        any_arg = true;
    }
    if !any_arg || !all_maps {
        return Ok(Value::Object(out));
    }
    let types: Vec<Type> = out.values().map(Value::type_of).collect();
    match unify(&types) {
        Some(t) => {
            let mut conv = BTreeMap::new();
            for (k, v) in out {
                let c = convert(&v, &t).map_err(|e| FuncError::new(e.message))?;
                conv.insert(k, c);
            }
            Ok(Value::Map(conv))
        }
        None => Ok(Value::Object(out)),
    }
}

pub(super) fn range(a: &[Value]) -> Result<Value, FuncError> {
    let (start, end, step) = match a.len() {
        1 => (Number::Int(0), number(a, 0)?, None),
        2 => (number(a, 0)?, number(a, 1)?, None),
        3 => (number(a, 0)?, number(a, 1)?, Some(number(a, 2)?)),
        _ => return Err(FuncError::new("must have one, two, or three arguments")),
    };
    let (s, e) = (start.as_f64(), end.as_f64());
    let st = match step {
        Some(x) => x.as_f64(),
        None if e < s => -1.0,
        None => 1.0,
    };
    if st == 0.0 {
        return Err(FuncError::arg(2, "step must not be zero"));
    }
    if st < 0.0 && e > s {
        return Err(FuncError::arg(
            1,
            "end must be less than start when step is negative",
        ));
    }
    if st > 0.0 && e < s {
        return Err(FuncError::arg(
            1,
            "end must be greater than start when step is positive",
        ));
    }
    let all_int = matches!(
        (start, end, step),
        (Number::Int(_), Number::Int(_), None | Some(Number::Int(_)))
    );
    let mut out = Vec::new();
    let mut i = 0u32;
    loop {
        // multiply rather than accumulate, so 0.25 steps stay exact
        let x = s + st * f64::from(i);
        if (st > 0.0 && x >= e) || (st < 0.0 && x <= e) {
            break;
        }
        if out.len() >= 1024 {
            return Err(FuncError::new("more than 1024 values were generated; either decrease the difference between start and end or use a smaller step"));
        }
        out.push(if all_int {
            Value::int(x as i64)
        } else {
            Value::float(x)
        });
        i += 1;
    }
    Ok(Value::List(out))
}

pub(super) fn reverselist(a: &[Value]) -> Result<Value, FuncError> {
    match present(a, 0)? {
        Value::List(e) => Ok(Value::List(e.iter().rev().cloned().collect())),
        Value::Tuple(e) => Ok(Value::Tuple(e.iter().rev().cloned().collect())),
        Value::Set(e) => Ok(Value::List(e.iter().rev().cloned().collect())),
        other => Err(FuncError::arg(
            0,
            format!(
                "can only reverse list or tuple values, not {}",
                other.type_of().friendly_name()
            ),
        )),
    }
}

pub(super) fn slice(a: &[Value]) -> Result<Value, FuncError> {
    let v = present(a, 0)?;
    let (list, tuple) = match v {
        Value::List(e) => (e, false),
        Value::Tuple(e) => (e, true),
        Value::Set(_) => return Err(FuncError::arg(0, "cannot slice a set, because its elements do not have indices; explicitly convert to a list if the ordering of the result is not important")),
        _ => return Err(FuncError::arg(0, "must be a list or tuple value")),
    };
    let start =
        integer(a, 1).map_err(|e| FuncError::arg(1, format!("invalid start index: {e}")))?;
    let end = integer(a, 2).map_err(|e| FuncError::arg(2, format!("invalid end index: {e}")))?;
    let len = list.len() as i64;
    if start < 0 {
        return Err(FuncError::arg(1, "start index must not be less than zero"));
    }
    if start > len {
        return Err(FuncError::arg(
            1,
            "start index must not be greater than the length of the list",
        ));
    }
    if end < 0 {
        return Err(FuncError::arg(2, "end index must not be less than zero"));
    }
    if end > len {
        return Err(FuncError::arg(
            2,
            "end index must not be greater than the length of the list",
        ));
    }
    if start > end {
        return Err(FuncError::arg(
            1,
            "start index must not be greater than end index",
        ));
    }
    let part = list[start as usize..end as usize].to_vec();
    Ok(if tuple {
        Value::Tuple(part)
    } else {
        Value::List(part)
    })
}

pub(super) fn sort(a: &[Value]) -> Result<Value, FuncError> {
    let list = list_of(a, 0, &Type::String)?;
    let mut strs = Vec::with_capacity(list.len());
    for (i, v) in list.into_iter().enumerate() {
        match v {
            Value::String(s) => strs.push(s),
            _ => {
                return Err(FuncError::arg(
                    0,
                    format!("given list element {i} is null; a null string cannot be sorted"),
                ))
            }
        }
    }
    strs.sort();
    Ok(Value::List(strs.into_iter().map(Value::String).collect()))
}

pub(super) fn zipmap(a: &[Value]) -> Result<Value, FuncError> {
    let keys = list_of(a, 0, &Type::String)?;
    let vals = present(a, 1)?;
    let (elems, tuple) = match vals {
        Value::List(e) => (e.clone(), false),
        Value::Tuple(e) => (e.clone(), true),
        _ => {
            return Err(FuncError::new(
                "values argument must be a list or tuple value",
            ))
        }
    };
    if keys.len() != elems.len() {
        return Err(FuncError::new(format!(
            "number of keys ({}) does not match number of values ({})",
            keys.len(),
            elems.len()
        )));
    }
    let mut out = BTreeMap::new();
    for (i, (k, v)) in keys.into_iter().zip(elems).enumerate() {
        let Value::String(k) = k else {
            return Err(FuncError::new(format!(
                "keys list has null value at index {i}"
            )));
        };
        out.insert(k, v);
    }
    Ok(if tuple {
        Value::Object(out)
    } else {
        Value::Map(out)
    })
}
