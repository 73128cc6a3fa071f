//! go-cty's type conversion rules, for function arguments, typed variables, `convert()` and
//! string templates.
//!
//! * [`convert`] turns a value into a value of the wanted type, or says why it cannot
//!   (`"a number is required"`, `"string required, but have tuple"`, ...).
//! * [`unify`] picks the common type cty uses for a set of types (`[1, "a"]` -> string).
//! * [`to_display_string`] is what `"${v}"` produces (numbers as cty prints them: no
//!   exponent, no trailing zeros; `+Inf`/`-Inf`).
//! * [`format_number`] is cty's number-to-string conversion (also used by `jsonencode`).
//! * [`values_equal`] / [`numbers_equal`] are cty's equality (for `==`, `!=`).
//! * [`mismatch_message`] is cty's text for an impossible conversion.
//! * [`parse_type_expr`] reads an HCL type expression (`list(string)`,
//!   `object({a=number})`, `any`, ...) from its source text (it lives in the stdlib's
//!   `typeexpr` module, next to the `convert` function that needs it).

use std::collections::BTreeMap;

pub use super::stdlib::parse_type_expr;
use super::value::{Number, Type, Value};

/// A conversion failure. `path` says where inside the value it failed
/// (`element 0`, `attribute "a"`), empty at the top level.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{message}", path_prefix(.path))]
pub struct ConvertError {
    pub path: Vec<PathStep>,
    pub message: String,
}

/// One step of a path inside a value.
#[derive(Debug, Clone, PartialEq)]
pub enum PathStep {
    Index(usize),
    Key(String),
    Attr(String),
}

fn path_prefix(path: &[PathStep]) -> String {
    if path.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    for (i, step) in path.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        match step {
            PathStep::Index(n) => out.push_str(&format!("element {n}")),
            PathStep::Key(k) => out.push_str(&format!("element {k:?}")),
            PathStep::Attr(a) => out.push_str(&format!("attribute {a:?}")),
        }
    }
    out.push_str(": ");
    out
}

impl ConvertError {
    pub fn new(message: impl Into<String>) -> Self {
        ConvertError {
            path: Vec::new(),
            message: message.into(),
        }
    }

    fn at(mut self, step: PathStep) -> Self {
        self.path.insert(0, step);
        self
    }
}

/// cty's "friendly name for a constraint": like [`Type::friendly_name`] but `any` reads
/// "any type" (or "any single type" as a collection's element).
pub fn constraint_name(t: &Type) -> String {
    fn elem(e: &Type) -> String {
        if *e == Type::Dynamic {
            "any single type".to_string()
        } else {
            constraint_name(e)
        }
    }
    match t {
        Type::Dynamic => "any type".into(),
        Type::List(e) => format!("list of {}", elem(e)),
        Type::Set(e) => format!("set of {}", elem(e)),
        Type::Map(e) => format!("map of {}", elem(e)),
        other => other.friendly_name(),
    }
}

fn is_collection(t: &Type) -> bool {
    matches!(t, Type::List(_) | Type::Set(_) | Type::Map(_))
}

fn elem_of(t: &Type) -> Option<&Type> {
    match t {
        Type::List(e) | Type::Set(e) | Type::Map(e) => Some(e),
        _ => None,
    }
}

/// cty's message for a value of type `got` where `want` is needed and no conversion exists
/// ("string required, but have tuple", "attribute \"a\" is required", ...).
pub fn mismatch_message(got: &Type, want: &Type) -> String {
    match (got, want) {
        (Type::Object(g), Type::Object(w)) => object_mismatch(g, w),
        (Type::Tuple(_), Type::List(e)) if **e == Type::Dynamic => {
            "all list elements must have the same type".into()
        }
        (Type::Tuple(_), Type::Set(e)) if **e == Type::Dynamic => {
            "all set elements must have the same type".into()
        }
        (Type::Object(_), Type::Map(e)) if **e == Type::Dynamic => {
            "all map elements must have the same type".into()
        }
        (Type::Tuple(_) | Type::Object(_), w) if is_collection(w) => structural_mismatch(got, want),
        (g, w) if is_collection(g) && is_collection(w) => collection_mismatch(got, want),
        _ if !likely_confusing(got, want) => format!(
            "{} required, but have {}",
            want.friendly_name(),
            got.friendly_name()
        ),
        _ => format!("{} required", constraint_name(want)),
    }
}

fn likely_confusing(got: &Type, want: &Type) -> bool {
    if got.is_primitive() != want.is_primitive() || *want == Type::String {
        return false;
    }
    if matches!(
        (got, want),
        (Type::Bool, Type::Number) | (Type::Number, Type::Bool)
    ) {
        return false;
    }
    if let (Some(ge), Some(we)) = (elem_of(got), elem_of(want)) {
        if !has_dynamic(ge) && has_dynamic(we) {
            return false;
        }
    }
    !matches!((got, want), (Type::Tuple(_), Type::Object(_)))
}

fn object_mismatch(got: &BTreeMap<String, Type>, want: &BTreeMap<String, Type>) -> String {
    let missing: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    match missing.as_slice() {
        [] => {}
        [a] => return format!("attribute {a:?} is required"),
        [a, b] => return format!("attributes {a:?} and {b:?} are required"),
        [init @ .., last] => {
            let list: Vec<String> = init.iter().map(|k| format!("{k:?}")).collect();
            return format!("attributes {}, and {last:?} are required", list.join(", "));
        }
    }
    for (name, wt) in want {
        if let Some(gt) = got.get(name) {
            if gt != wt && !type_convertible(gt, wt) {
                return format!("attribute {name:?}: {}", mismatch_message(gt, wt));
            }
        }
    }
    "incorrect object attributes".into()
}

fn structural_mismatch(got: &Type, want: &Type) -> String {
    let required = || format!("{} required", constraint_name(want));
    let Some(we) = elem_of(want) else {
        return required();
    };
    match (got, want) {
        (Type::Tuple(ts), Type::List(_) | Type::Set(_)) => {
            for (i, t) in ts.iter().enumerate() {
                if t != we && !type_convertible(t, we) {
                    return format!("element {i}: {}", mismatch_message(t, we));
                }
            }
        }
        (Type::Object(attrs), Type::Map(_)) => {
            for (name, t) in attrs {
                if t != we && !type_convertible(t, we) {
                    return format!("element {name:?}: {}", mismatch_message(t, we));
                }
            }
        }
        _ => return required(),
    }
    format!("all elements must be {}", constraint_name(we))
}

fn collection_mismatch(got: &Type, want: &Type) -> String {
    let kinds_ok = match want {
        Type::List(_) | Type::Set(_) => matches!(got, Type::List(_) | Type::Set(_)),
        _ => matches!(got, Type::Map(_)),
    };
    if !kinds_ok {
        return format!("{} required", constraint_name(want));
    }
    let noun = match want {
        Type::List(_) => "list element type",
        Type::Set(_) => "set element type",
        _ => "map element type",
    };
    match (elem_of(got), elem_of(want)) {
        (Some(ge), Some(we)) => format!("incorrect {noun}: {}", mismatch_message(ge, we)),
        _ => format!("{} required", constraint_name(want)),
    }
}

/// cty's number-to-string conversion: integers without a fraction, other numbers in plain
/// decimal notation (never an exponent) without trailing zeros. A float within a few units
/// in the last place of a 15-digit decimal prints as that decimal, so that binary noise
/// (`0.1 + 0.2`) prints as cty's exact decimals do.
pub fn format_number(n: Number) -> String {
    match n {
        Number::Int(i) => i.to_string(),
        Number::Float(f) if f.is_nan() => "NaN".to_string(),
        Number::Float(f) if f.is_infinite() => {
            if f > 0.0 {
                "+Inf".to_string()
            } else {
                "-Inf".to_string()
            }
        }
        Number::Float(0.0) => "0".to_string(),
        Number::Float(f) if f.fract() == 0.0 => format!("{f}"),
        Number::Float(f) => {
            // Binary noise of a few units in the last place (0.1 + 0.2) is dropped, as
            // cty's exact decimal arithmetic never has it; real digits are kept.
            let rounded: f64 = format!("{f:.14e}").parse().unwrap_or(f);
            let ulp = f.abs() * f64::EPSILON;
            let shown = if (rounded - f).abs() <= 4.0 * ulp {
                rounded
            } else {
                f
            };
            let s = format!("{shown}");
            if s == "-0" {
                "0".to_string()
            } else {
                s
            }
        }
    }
}

/// Parses a number the way cty's string-to-number conversion does: plain decimal, with an
/// optional sign, fraction and exponent. No whitespace, no `inf`/`nan`, no hex.
pub fn parse_number(s: &str) -> Option<Number> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let ok_chars = !body.is_empty()
        && body.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    if !ok_chars {
        return None;
    }
    if let Ok(i) = s.strip_prefix('+').unwrap_or(s).parse::<i64>() {
        return Some(Number::Int(i));
    }
    let f: f64 = s.parse().ok()?;
    if f.is_finite() {
        Some(Number::from_f64(f))
    } else {
        None
    }
}

/// The string cty produces when the value is interpolated in a template (`"${v}"`).
/// Only primitives can be; null and collections are errors.
pub fn to_display_string(v: &Value) -> Result<String, ConvertError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(format_number(*n)),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null(_) => Err(ConvertError::new("value is null")),
        Value::Unknown(_) => Err(ConvertError::new("value is not known")),
        other => Err(ConvertError::new(mismatch_message(
            &other.type_of(),
            &Type::String,
        ))),
    }
}

/// Whether a value of type `from` can in principle be converted to `to` (ignoring the
/// actual values, e.g. whether a string holds a number).
pub fn type_convertible(from: &Type, to: &Type) -> bool {
    // a sequence of mixed elements converts to list(any)/set(any) only if they unify
    let elems_fit = |ts: &[Type], et: &Type| {
        if has_dynamic(et) {
            unify(ts).is_some_and(|u| type_convertible(&u, et))
        } else {
            ts.iter().all(|t| type_convertible(t, et))
        }
    };
    match (from, to) {
        (_, Type::Dynamic) | (Type::Dynamic, _) => true,
        (a, b) if a == b => true,
        (a, b) if a.is_primitive() && b.is_primitive() => !matches!(
            (a, b),
            (Type::Bool, Type::Number) | (Type::Number, Type::Bool)
        ),
        (Type::List(a) | Type::Set(a), Type::List(b) | Type::Set(b)) => type_convertible(a, b),
        (Type::Tuple(ts), Type::List(b) | Type::Set(b)) => elems_fit(ts, b),
        (Type::Tuple(a), Type::Tuple(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| type_convertible(x, y))
        }
        (Type::Map(a), Type::Map(b)) => type_convertible(a, b),
        (Type::Object(attrs), Type::Map(b)) => {
            let ts: Vec<Type> = attrs.values().cloned().collect();
            elems_fit(&ts, b)
        }
        (Type::Map(a), Type::Object(attrs)) => attrs.values().all(|t| type_convertible(a, t)),
        (Type::Object(a), Type::Object(b)) => b
            .iter()
            .all(|(k, t)| a.get(k).is_some_and(|s| type_convertible(s, t))),
        _ => false,
    }
}

/// True if the type contains `any` somewhere.
pub fn has_dynamic(t: &Type) -> bool {
    match t {
        Type::Dynamic => true,
        Type::List(e) | Type::Set(e) | Type::Map(e) => has_dynamic(e),
        Type::Tuple(ts) => ts.iter().any(has_dynamic),
        Type::Object(attrs) => attrs.values().any(has_dynamic),
        _ => false,
    }
}

/// Converts `v` to type `want` with cty's rules.
pub fn convert(v: &Value, want: &Type) -> Result<Value, ConvertError> {
    if *want == Type::Dynamic {
        return Ok(v.clone());
    }
    match v {
        Value::Null(t) => {
            if type_convertible(t, want) {
                Ok(Value::Null(want.clone()))
            } else {
                Err(ConvertError::new(mismatch_message(t, want)))
            }
        }
        Value::Unknown(t) => {
            if type_convertible(t, want) {
                Ok(Value::Unknown(want.clone()))
            } else {
                Err(ConvertError::new(mismatch_message(t, want)))
            }
        }
        _ if !type_convertible(&v.type_of(), want) => {
            Err(ConvertError::new(mismatch_message(&v.type_of(), want)))
        }
        _ => match want {
            Type::Dynamic => Ok(v.clone()),
            Type::String => convert_to_string(v),
            Type::Number => convert_to_number(v),
            Type::Bool => convert_to_bool(v),
            Type::List(et) => {
                let elems = seq_elems(v, want)?;
                Ok(Value::List(convert_elems(&elems, et)?))
            }
            Type::Set(et) => {
                let elems = seq_elems(v, want)?;
                Ok(Value::set(convert_elems(&elems, et)?))
            }
            Type::Tuple(ets) => {
                let elems = match v {
                    Value::Tuple(e) => e.clone(),
                    other => {
                        return Err(ConvertError::new(mismatch_message(&other.type_of(), want)))
                    }
                };
                if elems.len() != ets.len() {
                    return Err(ConvertError::new(format!(
                        "tuple required with exactly {} elements, but have {}",
                        ets.len(),
                        elems.len()
                    )));
                }
                let mut out = Vec::with_capacity(elems.len());
                for (i, (e, t)) in elems.iter().zip(ets).enumerate() {
                    out.push(convert(e, t).map_err(|err| err.at(PathStep::Index(i)))?);
                }
                Ok(Value::Tuple(out))
            }
            Type::Map(et) => {
                let entries = match v {
                    Value::Map(m) | Value::Object(m) => m,
                    other => {
                        return Err(ConvertError::new(mismatch_message(&other.type_of(), want)))
                    }
                };
                let vals: Vec<Value> = entries.values().cloned().collect();
                let conv = convert_elems(&vals, et).map_err(|mut e| {
                    // re-key the path step with the map key
                    if let Some(PathStep::Index(i)) = e.path.first().cloned() {
                        if let Some(k) = entries.keys().nth(i) {
                            e.path[0] = PathStep::Key(k.clone());
                        }
                    }
                    e
                })?;
                Ok(Value::Map(entries.keys().cloned().zip(conv).collect()))
            }
            Type::Object(attrs) => {
                let entries = match v {
                    Value::Map(m) | Value::Object(m) => m,
                    other => {
                        return Err(ConvertError::new(mismatch_message(&other.type_of(), want)))
                    }
                };
                let mut out = BTreeMap::new();
                for (k, t) in attrs {
                    let Some(e) = entries.get(k) else {
                        return Err(ConvertError::new(format!("attribute {k:?} is required")));
                    };
                    let c = convert(e, t).map_err(|err| err.at(PathStep::Attr(k.clone())))?;
                    out.insert(k.clone(), c);
                }
                Ok(Value::Object(out))
            }
        },
    }
}

fn seq_elems(v: &Value, want: &Type) -> Result<Vec<Value>, ConvertError> {
    match v {
        Value::List(e) | Value::Set(e) | Value::Tuple(e) => Ok(e.clone()),
        other => Err(ConvertError::new(mismatch_message(&other.type_of(), want))),
    }
}

/// Converts every element to `et`; when `et` contains `any`, the elements are first
/// unified to one common type (cty's rule for `list(any)` and friends).
fn convert_elems(elems: &[Value], et: &Type) -> Result<Vec<Value>, ConvertError> {
    let target = if has_dynamic(et) && !elems.is_empty() {
        let types: Vec<Type> = elems
            .iter()
            .map(|e| {
                let t = e.type_of();
                if type_convertible(&t, et) {
                    Ok(t)
                } else {
                    Err(ConvertError::new(mismatch_message(&t, et)))
                }
            })
            .collect::<Result<_, _>>()?;
        match unify(&types) {
            Some(u) => u,
            None => {
                return Err(ConvertError::new(
                    "all elements must have the same type".to_string(),
                ));
            }
        }
    } else {
        et.clone()
    };
    let mut out = Vec::with_capacity(elems.len());
    for (i, e) in elems.iter().enumerate() {
        // a concrete target with `any` inside (e.g. list(any) elements) keeps each element
        out.push(convert(e, &target).map_err(|err| err.at(PathStep::Index(i)))?);
    }
    Ok(out)
}

fn convert_to_string(v: &Value) -> Result<Value, ConvertError> {
    match v {
        Value::String(_) => Ok(v.clone()),
        Value::Number(n) => Ok(Value::String(format_number(*n))),
        Value::Bool(b) => Ok(Value::String(b.to_string())),
        other => Err(ConvertError::new(mismatch_message(
            &other.type_of(),
            &Type::String,
        ))),
    }
}

fn convert_to_number(v: &Value) -> Result<Value, ConvertError> {
    match v {
        Value::Number(_) => Ok(v.clone()),
        Value::String(s) => parse_number(s)
            .map(Value::Number)
            .ok_or_else(|| ConvertError::new("a number is required")),
        other => Err(ConvertError::new(mismatch_message(
            &other.type_of(),
            &Type::Number,
        ))),
    }
}

fn convert_to_bool(v: &Value) -> Result<Value, ConvertError> {
    match v {
        Value::Bool(_) => Ok(v.clone()),
        Value::String(s) => match s.as_str() {
            "true" | "1" => Ok(Value::Bool(true)),
            "false" | "0" => Ok(Value::Bool(false)),
            other => match other.to_ascii_lowercase().as_str() {
                "true" => Err(ConvertError::new(
                    "a bool is required; to convert from string, use lowercase \"true\"",
                )),
                "false" => Err(ConvertError::new(
                    "a bool is required; to convert from string, use lowercase \"false\"",
                )),
                _ => Err(ConvertError::new("a bool is required")),
            },
        },
        other => Err(ConvertError::new(mismatch_message(
            &other.type_of(),
            &Type::Bool,
        ))),
    }
}

/// The common type cty picks for values of the given types, if there is one:
/// equal types stay; `any` wins; primitives unify to string when one is a string (a number
/// and a bool do not unify); lists/sets/maps of one kind unify their elements; objects with
/// the same attributes unify per attribute, otherwise to a map; tuples of the same length
/// per element, otherwise to a list; a mix of tuples and lists gives a list, of objects and
/// maps a map.
pub fn unify(types: &[Type]) -> Option<Type> {
    let first = match types.first() {
        None => return Some(Type::Dynamic),
        Some(t) => t,
    };
    if types.iter().all(|t| t == first) {
        return Some(first.clone());
    }
    if types.contains(&Type::Dynamic) {
        return Some(Type::Dynamic);
    }
    if types.iter().all(Type::is_primitive) {
        if types.contains(&Type::String) {
            return Some(Type::String);
        }
        return None;
    }
    if types.iter().all(|t| matches!(t, Type::Object(_))) {
        let attr_sets: Vec<&BTreeMap<String, Type>> = types
            .iter()
            .filter_map(|t| match t {
                Type::Object(a) => Some(a),
                _ => None,
            })
            .collect();
        let keys: Vec<&String> = attr_sets[0].keys().collect();
        if attr_sets
            .iter()
            .all(|a| a.keys().collect::<Vec<_>>() == keys)
        {
            let mut out = BTreeMap::new();
            for k in keys {
                let ts: Vec<Type> = attr_sets.iter().filter_map(|a| a.get(k).cloned()).collect();
                out.insert(k.clone(), unify(&ts)?);
            }
            return Some(Type::Object(out));
        }
        let all: Vec<Type> = attr_sets.iter().flat_map(|a| a.values().cloned()).collect();
        return Some(Type::Map(Box::new(unify(&all)?)));
    }
    if types.iter().all(|t| matches!(t, Type::Tuple(_))) {
        let tuples: Vec<&Vec<Type>> = types
            .iter()
            .filter_map(|t| match t {
                Type::Tuple(ts) => Some(ts),
                _ => None,
            })
            .collect();
        let n = tuples[0].len();
        if tuples.iter().all(|t| t.len() == n) {
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                let ts: Vec<Type> = tuples.iter().map(|t| t[i].clone()).collect();
                out.push(unify(&ts)?);
            }
            return Some(Type::Tuple(out));
        }
        let all: Vec<Type> = tuples.iter().flat_map(|t| t.iter().cloned()).collect();
        return Some(Type::List(Box::new(unify(&all)?)));
    }
    // collections of one kind (tuples/objects mixed in are folded into their elements)
    let mut elems = Vec::new();
    let mut kind: Option<u8> = None;
    for t in types {
        let (k, es): (u8, Vec<Type>) = match t {
            Type::List(e) => (0, vec![(**e).clone()]),
            Type::Set(e) => (1, vec![(**e).clone()]),
            Type::Tuple(ts) => (0, ts.clone()),
            Type::Map(e) => (2, vec![(**e).clone()]),
            Type::Object(a) => (2, a.values().cloned().collect()),
            _ => return None,
        };
        match (kind, k) {
            (None, _) => kind = Some(k),
            (Some(a), b) if a == b => {}
            // a tuple may become a set too
            (Some(1), 0) if matches!(t, Type::Tuple(_)) => {}
            (Some(0), 1) if types.iter().all(|x| !matches!(x, Type::List(_))) => kind = Some(1),
            _ => return None,
        }
        elems.extend(es);
    }
    let e = Box::new(unify(&elems)?);
    match kind {
        Some(0) => Some(Type::List(e)),
        Some(1) => Some(Type::Set(e)),
        Some(2) => Some(Type::Map(e)),
        _ => None,
    }
}

/// cty's equality of two numbers: equal when they serialize the same (cty compares the
/// JSON form), so `0.1 + 0.2` equals `0.3`.
pub fn numbers_equal(a: Number, b: Number) -> bool {
    match (a, b) {
        (Number::Int(x), Number::Int(y)) => x == y,
        _ => format_number(a) == format_number(b),
    }
}

/// cty's equality (`==`, `equal()`, `contains()`...) of two known values: same kind and
/// same content, numbers as [`numbers_equal`]; two nulls are equal. A list never equals a
/// tuple, nor a map an object (the evaluator compares types before calling this when it
/// needs cty's full type rules).
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null(_), Value::Null(_)) => true,
        (Value::Number(x), Value::Number(y)) => numbers_equal(*x, *y),
        (Value::List(x), Value::List(y))
        | (Value::Set(x), Value::Set(y))
        | (Value::Tuple(x), Value::Tuple(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| values_equal(p, q))
        }
        (Value::Map(x), Value::Map(y)) | (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, va), (kb, vb))| ka == kb && values_equal(va, vb))
        }
        _ => a == b,
    }
}
