//! Argument helpers: fetch argument `i`, refuse null, convert it to the parameter's type
//! with cty's rules, and turn failures into argument errors.

use super::FuncError;
use crate::bake::eval::convert;
pub(super) use crate::bake::eval::convert::values_equal;
use crate::bake::eval::value::{Number, Type, Value};

pub(super) const NULL_ARG: &str = "argument must not be null";

/// Argument `i`, which may be null.
pub(super) fn any(args: &[Value], i: usize) -> Result<&Value, FuncError> {
    args.get(i)
        .ok_or_else(|| FuncError::new(format!("missing argument {}", i + 1)))
}

/// Argument `i`, not null.
pub(super) fn present(args: &[Value], i: usize) -> Result<&Value, FuncError> {
    let v = any(args, i)?;
    if v.is_null() {
        return Err(FuncError::arg(i, NULL_ARG));
    }
    Ok(v)
}

/// Argument `i` converted to `t`, not null. As in HCL, the message of a failed conversion
/// does not name the path inside the value (cty's path errors print their message only).
pub(super) fn typed(args: &[Value], i: usize, t: &Type) -> Result<Value, FuncError> {
    let v = present(args, i)?;
    convert::convert(v, t).map_err(|e| FuncError::arg(i, e.message))
}

pub(super) fn string(args: &[Value], i: usize) -> Result<String, FuncError> {
    match typed(args, i, &Type::String)? {
        Value::String(s) => Ok(s),
        _ => Err(FuncError::arg(i, "string required")),
    }
}

pub(super) fn number(args: &[Value], i: usize) -> Result<Number, FuncError> {
    match typed(args, i, &Type::Number)? {
        Value::Number(n) => Ok(n),
        _ => Err(FuncError::arg(i, "a number is required")),
    }
}

pub(super) fn boolean(args: &[Value], i: usize) -> Result<bool, FuncError> {
    match typed(args, i, &Type::Bool)? {
        Value::Bool(b) => Ok(b),
        _ => Err(FuncError::arg(i, "a bool is required")),
    }
}

/// The message cty gives when a number does not fit a Go int.
pub(super) const WHOLE: &str =
    "value must be a whole number, between -9223372036854775808 and 9223372036854775807";

/// A whole number argument.
pub(super) fn integer(args: &[Value], i: usize) -> Result<i64, FuncError> {
    number(args, i)?
        .as_i64()
        .ok_or_else(|| FuncError::arg(i, WHOLE))
}

/// A sequence argument (list, set or tuple) converted to `list(elem)`; returns elements.
pub(super) fn list_of(args: &[Value], i: usize, elem: &Type) -> Result<Vec<Value>, FuncError> {
    match typed(args, i, &Type::List(Box::new(elem.clone())))? {
        Value::List(v) => Ok(v),
        _ => Err(FuncError::arg(i, "list required")),
    }
}

pub(super) fn strings(v: Vec<String>) -> Value {
    Value::List(v.into_iter().map(Value::String).collect())
}
