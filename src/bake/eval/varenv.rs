//! Variable values from the environment and `--var`: plain, CSV (lists, sets, tuples,
//! maps) and `NAME_JSON` overrides, typed by the variable's `type` or its default.

use super::convert::convert;
use super::value::{Number, Type, Value};
use crate::bake::csv;

/// Suffix of the environment variable holding a JSON override.
pub const JSON_SUFFIX: &str = "_JSON";

/// The override text for a variable and whether it is JSON.
///
/// A plain `NAME` wins unless the variable is typed (then `NAME_JSON` is preferred);
/// `NAME_JSON` is not consulted when it is itself a declared variable or a built-in
/// (`json_name_free` says whether it is free).
pub fn override_for(
    name: &str,
    favor_json: bool,
    json_name_free: impl Fn(&str) -> bool,
    lookup: impl Fn(&str) -> Option<String>,
) -> Option<(String, bool)> {
    let plain = lookup(name);
    if plain.is_none() || favor_json {
        let json_name = format!("{name}{JSON_SUFFIX}");
        if json_name_free(&json_name) {
            if let Some(j) = lookup(&json_name) {
                return Some((j, true));
            }
        }
    }
    plain.map(|p| (p, false))
}

/// Parses an override as the variable's type (or its default's type) wants.
pub fn parse_override(
    name: &str,
    text: &str,
    json: bool,
    constraint: Option<&Type>,
    default: Option<&Value>,
) -> Result<Value, String> {
    match constraint {
        Some(t) if json => from_json(text, t)
            .map_err(|e| format!("failed to convert variable {name} from JSON: {e}")),
        Some(t @ (Type::List(_) | Type::Set(_) | Type::Tuple(_) | Type::Map(_))) => {
            from_csv(name, text, t)
                .map_err(|e| format!("failed to convert variable {name} from CSV: {e}"))
        }
        Some(t) if t.is_primitive() => primitive(name, text, t),
        Some(Type::Dynamic) => Ok(Value::String(text.to_string())),
        Some(t) => Err(format!(
            "unsupported type {} for variable {name}",
            t.friendly_name()
        )),
        None => match default {
            None => Ok(Value::String(text.to_string())),
            Some(v) if v.is_null() => Ok(Value::String(text.to_string())),
            Some(v) => {
                let t = v.type_of();
                if t.is_primitive() {
                    primitive(name, text, &t)
                } else {
                    Err(format!(
                        "unsupported type {} for variable {name}",
                        t.friendly_name()
                    ))
                }
            }
        },
    }
}

/// Go's strconv.ParseBool.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn primitive(name: &str, text: &str, t: &Type) -> Result<Value, String> {
    match t {
        Type::String => Ok(Value::String(text.to_string())),
        Type::Bool => parse_bool(text).map(Value::Bool).ok_or_else(|| {
            format!("failed to parse {name} as bool: strconv.ParseBool: parsing {text:?}: invalid syntax")
        }),
        Type::Number => {
            let f: Option<f64> = text.parse().ok();
            match f {
                Some(f) if f.is_finite() => Ok(match text.parse::<i64>() {
                    Ok(i) => Value::int(i),
                    Err(_) => Value::Number(Number::from_f64(f)),
                }),
                _ => Err(format!(
                    "failed to parse {name} as number: strconv.ParseFloat: parsing {text:?}: invalid syntax"
                )),
            }
        }
        other => Err(format!(
            "{name} of type {} is not a primitive",
            other.friendly_name()
        )),
    }
}

fn from_csv(name: &str, text: &str, t: &Type) -> Result<Value, String> {
    if text.is_empty() {
        return Err(format!("failed to parse {text} as CSV: EOF"));
    }
    let fields =
        csv::fields(text, ',').map_err(|e| format!("failed to parse {text} as CSV: {e}"))?;
    let unsupported = || {
        format!(
            "unsupported type {} for CSV specification",
            t.friendly_name()
        )
    };
    match t {
        Type::List(e) | Type::Set(e) => {
            if !e.is_primitive() {
                return Err(unsupported());
            }
            let mut items = Vec::new();
            for f in &fields {
                items.push(primitive(name, f, e).map_err(|err| {
                    format!(
                        "failed to parse element of type {}: {err}",
                        t.friendly_name()
                    )
                })?);
            }
            Ok(if matches!(t, Type::Set(_)) {
                Value::set(items)
            } else {
                Value::List(items)
            })
        }
        Type::Tuple(types) => {
            if types.len() != fields.len() {
                return Err(format!(
                    "{} expects {} elements but only {} provided",
                    t.friendly_name(),
                    types.len(),
                    fields.len()
                ));
            }
            let mut items = Vec::new();
            for (f, et) in fields.iter().zip(types) {
                if !et.is_primitive() {
                    return Err(unsupported());
                }
                items.push(primitive(name, f, et)?);
            }
            Ok(Value::Tuple(items))
        }
        Type::Map(e) => {
            if !e.is_primitive() {
                return Err(unsupported());
            }
            let mut m = std::collections::BTreeMap::new();
            for f in &fields {
                let kv = csv::fields(f, ':')?;
                if kv.len() != 2 {
                    return Err(format!(
                        "expected one k/v pair but got {} pieces from {f}",
                        kv.len()
                    ));
                }
                m.insert(kv[0].clone(), primitive(name, &kv[1], e)?);
            }
            Ok(Value::Map(m))
        }
        _ => Err(unsupported()),
    }
}

/// Parses JSON text into a value of type `t`.
pub fn from_json(text: &str, t: &Type) -> Result<Value, String> {
    let j: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let v = json_to_value(&j);
    convert(&v, t).map_err(|e| e.to_string())
}

/// A JSON document as a value (objects become objects, arrays tuples).
pub fn json_to_value(j: &serde_json::Value) -> Value {
    match j {
        serde_json::Value::Null => Value::null(),
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::int(i),
            None => Value::float(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Tuple(a.iter().map(json_to_value).collect()),
        serde_json::Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), json_to_value(v)))
                .collect(),
        ),
    }
}

/// A value as compact JSON, as cty's JSON marshalling writes it.
pub fn to_json(v: &Value) -> String {
    serde_json::to_string(&value_to_json(v)).unwrap_or_default()
}

pub fn value_to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null(_) | Value::Unknown(_) => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Number(Number::Int(i)) => serde_json::Value::from(*i),
        Value::Number(Number::Float(f)) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::List(items) | Value::Set(items) | Value::Tuple(items) => {
            serde_json::Value::Array(items.iter().map(value_to_json).collect())
        }
        Value::Map(m) | Value::Object(m) => serde_json::Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), value_to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_list_from_csv() {
        let t = Type::List(Box::new(Type::Number));
        let v = parse_override("N", "1,2", false, Some(&t), None).unwrap();
        assert_eq!(v, Value::List(vec![Value::int(1), Value::int(2)]));
    }

    #[test]
    fn untyped_follows_default() {
        let v = parse_override("B", "true", false, None, Some(&Value::Bool(false))).unwrap();
        assert_eq!(v, Value::Bool(true));
        assert!(parse_override("B", "maybe", false, None, Some(&Value::Bool(false))).is_err());
    }

    #[test]
    fn json_name_preferred_for_typed() {
        let env = |n: &str| match n {
            "X" => Some("plain".to_string()),
            "X_JSON" => Some("[1]".to_string()),
            _ => None,
        };
        assert_eq!(
            override_for("X", true, |_| true, env),
            Some(("[1]".to_string(), true))
        );
        assert_eq!(
            override_for("X", false, |_| true, env),
            Some(("plain".to_string(), false))
        );
    }
}
