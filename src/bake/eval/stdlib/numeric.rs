//! Numbers, comparisons and booleans: absolute, add, subtract, multiply, divide, modulo,
//! negate, ceil, floor, int, log, pow, signum, max, min, parseint, the comparison
//! functions, and, or, not, equal, notequal.

use super::args::{self, any, boolean, integer, number, string};
use super::FuncError;
use crate::bake::eval::value::{Number, Value};

fn binop(
    args: &[Value],
    int_op: fn(i64, i64) -> Option<i64>,
    float_op: fn(f64, f64) -> f64,
) -> Result<Value, FuncError> {
    let a = number(args, 0)?;
    let b = number(args, 1)?;
    if let (Number::Int(x), Number::Int(y)) = (a, b) {
        if let Some(r) = int_op(x, y) {
            return Ok(Value::int(r));
        }
    }
    let r = float_op(a.as_f64(), b.as_f64());
    if r.is_nan() {
        return Err(FuncError::new("can't compute an operation with infinities"));
    }
    Ok(float_value(r))
}

/// A float result, keeping infinities (which `Value::float` also does).
fn float_value(f: f64) -> Value {
    Value::Number(Number::from_f64(f))
}

pub(super) fn add(a: &[Value]) -> Result<Value, FuncError> {
    binop(a, i64::checked_add, |x, y| x + y)
        .map_err(|_| FuncError::new("can't compute sum of opposing infinities"))
}

pub(super) fn subtract(a: &[Value]) -> Result<Value, FuncError> {
    binop(a, i64::checked_sub, |x, y| x - y)
        .map_err(|_| FuncError::new("can't subtract infinity from itself"))
}

pub(super) fn multiply(a: &[Value]) -> Result<Value, FuncError> {
    binop(a, i64::checked_mul, |x, y| x * y)
        .map_err(|_| FuncError::new("can't multiply zero by infinity"))
}

pub(super) fn divide(a: &[Value]) -> Result<Value, FuncError> {
    let x = number(a, 0)?;
    let y = number(a, 1)?;
    let (xf, yf) = (x.as_f64(), y.as_f64());
    if (xf == 0.0 && yf == 0.0) || (xf.is_infinite() && yf.is_infinite()) {
        return Err(FuncError::new(
            "can't divide zero by zero or infinity by infinity",
        ));
    }
    if let (Number::Int(p), Number::Int(q)) = (x, y) {
        if q != 0 && p.checked_rem(q) == Some(0) {
            if let Some(r) = p.checked_div(q) {
                return Ok(Value::int(r));
            }
        }
    }
    if yf == 0.0 {
        let inf = if xf < 0.0 {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
        return Ok(float_value(inf));
    }
    Ok(float_value(xf / yf))
}

pub(super) fn modulo(a: &[Value]) -> Result<Value, FuncError> {
    let x = number(a, 0)?;
    let y = number(a, 1)?;
    let (xf, yf) = (x.as_f64(), y.as_f64());
    if (xf == 0.0 && yf.is_infinite()) || (xf.is_infinite() && yf == 0.0) {
        return Err(FuncError::new("can't use modulo with zero and infinity"));
    }
    if xf.is_infinite() || yf.is_infinite() {
        return Ok(float_value(xf * yf));
    }
    if yf == 0.0 {
        return Ok(Value::Number(x));
    }
    if let (Number::Int(p), Number::Int(q)) = (x, y) {
        if let Some(r) = p.checked_rem(q) {
            return Ok(Value::int(r));
        }
    }
    Ok(float_value(xf - yf * (xf / yf).trunc()))
}

pub(super) fn negate(a: &[Value]) -> Result<Value, FuncError> {
    Ok(match number(a, 0)? {
        Number::Int(i) => match i.checked_neg() {
            Some(n) => Value::int(n),
            None => float_value(-(i as f64)),
        },
        Number::Float(f) => float_value(-f),
    })
}

pub(super) fn absolute(a: &[Value]) -> Result<Value, FuncError> {
    Ok(match number(a, 0)? {
        Number::Int(i) => match i.checked_abs() {
            Some(n) => Value::int(n),
            None => float_value((i as f64).abs()),
        },
        Number::Float(f) => float_value(f.abs()),
    })
}

fn rounding(a: &[Value], op: fn(f64) -> f64) -> Result<Value, FuncError> {
    Ok(match number(a, 0)? {
        Number::Int(i) => Value::int(i),
        Number::Float(f) => float_value(op(f)),
    })
}

pub(super) fn ceil(a: &[Value]) -> Result<Value, FuncError> {
    rounding(a, f64::ceil)
}

pub(super) fn floor(a: &[Value]) -> Result<Value, FuncError> {
    rounding(a, f64::floor)
}

pub(super) fn int(a: &[Value]) -> Result<Value, FuncError> {
    let n = number(a, 0)?;
    if n.as_f64().is_infinite() {
        return Err(FuncError::new("can't truncate infinity to an integer"));
    }
    rounding(a, f64::trunc)
}

pub(super) fn log(a: &[Value]) -> Result<Value, FuncError> {
    let x = number(a, 0)?.as_f64();
    let base = number(a, 1)?.as_f64();
    let r = x.ln() / base.ln();
    // exact results for exact powers (log(8, 2) is 3, not 2.9999999999999996)
    let rounded = r.round();
    if rounded.is_finite() && (base.powf(rounded) - x).abs() <= f64::EPSILON * x.abs() {
        return Ok(float_value(rounded));
    }
    real(r)
}

pub(super) fn pow(a: &[Value]) -> Result<Value, FuncError> {
    let x = number(a, 0)?;
    let p = number(a, 1)?;
    if let (Number::Int(b), Number::Int(e)) = (x, p) {
        if (0..=u32::MAX as i64).contains(&e) {
            if let Some(r) = b.checked_pow(e as u32) {
                return Ok(Value::int(r));
            }
        }
    }
    real(x.as_f64().powf(p.as_f64()))
}

/// A float result that must be a real number (cty numbers cannot be NaN).
fn real(f: f64) -> Result<Value, FuncError> {
    if f.is_nan() {
        return Err(FuncError::new("the result is not a real number"));
    }
    Ok(float_value(f))
}

pub(super) fn signum(a: &[Value]) -> Result<Value, FuncError> {
    let n = integer(a, 0).map_err(|e| FuncError::new(e.message))?;
    Ok(Value::int(n.signum()))
}

fn extreme(a: &[Value], want_max: bool) -> Result<Value, FuncError> {
    if a.is_empty() {
        return Err(FuncError::new("must pass at least one number"));
    }
    let mut best: Option<Number> = None;
    for i in 0..a.len() {
        let n = number(a, i)?;
        best = Some(match best {
            None => n,
            Some(b) if (want_max && n > b) || (!want_max && n < b) => n,
            Some(b) => b,
        });
    }
    best.map(Value::Number)
        .ok_or_else(|| FuncError::new("must pass at least one number"))
}

pub(super) fn max(a: &[Value]) -> Result<Value, FuncError> {
    extreme(a, true)
}

pub(super) fn min(a: &[Value]) -> Result<Value, FuncError> {
    extreme(a, false)
}

/// Value of a digit in bases up to 62: 0-9, then a-z, then A-Z (case-insensitive up to 36).
fn digit_value(c: char, base: u32) -> Option<u32> {
    let d = match c {
        '0'..='9' => c as u32 - '0' as u32,
        'a'..='z' => c as u32 - 'a' as u32 + 10,
        'A'..='Z' if base <= 36 => c as u32 - 'A' as u32 + 10,
        'A'..='Z' => c as u32 - 'A' as u32 + 36,
        _ => return None,
    };
    (d < base).then_some(d)
}

pub(super) fn parseint(a: &[Value]) -> Result<Value, FuncError> {
    let v = args::present(a, 0)?;
    if !matches!(v, Value::String(_)) {
        return Err(FuncError::arg(
            0,
            format!(
                "first argument must be a string, not {}",
                v.type_of().friendly_name()
            ),
        ));
    }
    let s = string(a, 0)?;
    let base = integer(a, 1)?;
    if !(2..=62).contains(&base) {
        return Err(FuncError::arg(
            1,
            "base must be a whole number between 2 and 62 inclusive",
        ));
    }
    let base = base as u32;
    let bad = || FuncError::arg(0, format!("cannot parse {s:?} as a base {base} integer"));
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(&s)),
    };
    if digits.is_empty() {
        return Err(bad());
    }
    let mut acc: i128 = 0;
    let mut as_float: f64 = 0.0;
    let mut overflow = false;
    for c in digits.chars() {
        let d = digit_value(c, base).ok_or_else(bad)?;
        as_float = as_float * base as f64 + d as f64;
        if !overflow {
            match acc
                .checked_mul(base as i128)
                .and_then(|x| x.checked_add(d as i128))
            {
                Some(x) if x <= i64::MAX as i128 + 1 => acc = x,
                _ => overflow = true,
            }
        }
    }
    if neg {
        acc = -acc;
        as_float = -as_float;
    }
    match i64::try_from(acc) {
        Ok(i) if !overflow => Ok(Value::int(i)),
        _ => Ok(float_value(as_float)),
    }
}

fn compare(a: &[Value], pred: fn(Number, Number) -> bool) -> Result<Value, FuncError> {
    let x = number(a, 0)?;
    let y = number(a, 1)?;
    Ok(Value::Bool(pred(x, y)))
}

pub(super) fn greaterthan(a: &[Value]) -> Result<Value, FuncError> {
    compare(a, |x, y| x > y)
}

pub(super) fn greaterthanorequalto(a: &[Value]) -> Result<Value, FuncError> {
    compare(a, |x, y| x >= y)
}

pub(super) fn lessthan(a: &[Value]) -> Result<Value, FuncError> {
    compare(a, |x, y| x < y)
}

pub(super) fn lessthanorequalto(a: &[Value]) -> Result<Value, FuncError> {
    compare(a, |x, y| x <= y)
}

pub(super) fn and(a: &[Value]) -> Result<Value, FuncError> {
    let x = boolean(a, 0)?;
    let y = boolean(a, 1)?;
    Ok(Value::Bool(x && y))
}

pub(super) fn or(a: &[Value]) -> Result<Value, FuncError> {
    let x = boolean(a, 0)?;
    let y = boolean(a, 1)?;
    Ok(Value::Bool(x || y))
}

pub(super) fn not(a: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::Bool(!boolean(a, 0)?))
}

/// equal/notequal accept nulls and any types; values of different types are unequal.
fn eq(a: &[Value]) -> Result<bool, FuncError> {
    let x = any(a, 0)?;
    let y = any(a, 1)?;
    if x.is_null() || y.is_null() {
        return Ok(x.is_null() && y.is_null());
    }
    // cty compares structurally; a list and a tuple (or a map and an object) are never equal
    if std::mem::discriminant(x) != std::mem::discriminant(y) {
        return Ok(false);
    }
    Ok(args::values_equal(x, y))
}

pub(super) fn equal(a: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::Bool(eq(a)?))
}

pub(super) fn notequal(a: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::Bool(!eq(a)?))
}
