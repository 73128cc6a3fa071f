//! The value model of the bake language, close to go-cty: typed nulls, unknowns, numbers,
//! and the four collection kinds (list, set, tuple, map, object) with their distinct rules.
//!
//! Objects and maps keep their keys sorted (as cty does); sets keep their elements in cty's
//! canonical order with duplicates removed (use [`Value::set`] to build one).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

/// A cty type. `Dynamic` is cty's `DynamicPseudoType` ("any").
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    Dynamic,
    Bool,
    Number,
    String,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    Tuple(Vec<Type>),
    Object(BTreeMap<String, Type>),
}

impl fmt::Display for Type {
    /// The type as HCL writes it in a `type =` expression.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Dynamic => f.write_str("any"),
            Type::Bool => f.write_str("bool"),
            Type::Number => f.write_str("number"),
            Type::String => f.write_str("string"),
            Type::List(t) => write!(f, "list({t})"),
            Type::Set(t) => write!(f, "set({t})"),
            Type::Map(t) => write!(f, "map({t})"),
            Type::Tuple(ts) => {
                f.write_str("tuple([")?;
                for (i, t) in ts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str("])")
            }
            Type::Object(attrs) => {
                f.write_str("object({")?;
                for (i, (k, t)) in attrs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}={t}")?;
                }
                f.write_str("})")
            }
        }
    }
}

impl Type {
    /// cty's friendly name, used in error messages ("string", "list of string", "object").
    pub fn friendly_name(&self) -> String {
        match self {
            Type::Dynamic => "dynamic".into(),
            Type::Bool => "bool".into(),
            Type::Number => "number".into(),
            Type::String => "string".into(),
            Type::List(t) => format!("list of {}", t.friendly_name()),
            Type::Set(t) => format!("set of {}", t.friendly_name()),
            Type::Map(t) => format!("map of {}", t.friendly_name()),
            Type::Tuple(_) => "tuple".into(),
            Type::Object(_) => "object".into(),
        }
    }

    pub fn is_primitive(&self) -> bool {
        matches!(self, Type::Bool | Type::Number | Type::String)
    }
}

/// A number. Integers that fit in i64 are kept exactly; everything else is an f64.
#[derive(Debug, Clone, Copy)]
pub enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    pub fn from_f64(f: f64) -> Number {
        if f.fract() == 0.0 && f.is_finite() && f.abs() < 9.0e15 {
            Number::Int(f as i64)
        } else {
            Number::Float(f)
        }
    }

    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }

    /// The value as an integer, if it is one exactly.
    pub fn as_i64(self) -> Option<i64> {
        match self {
            Number::Int(i) => Some(i),
            Number::Float(f) if f.fract() == 0.0 && f.is_finite() && f.abs() < 9.2e18 => {
                Some(f as i64)
            }
            Number::Float(_) => None,
        }
    }

    pub fn is_integer(self) -> bool {
        self.as_i64().is_some()
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Number) -> bool {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => a == b,
            _ => self.as_f64() == other.as_f64(),
        }
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Number) -> Option<Ordering> {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => a.partial_cmp(b),
            _ => self.as_f64().partial_cmp(&other.as_f64()),
        }
    }
}

impl fmt::Display for Number {
    /// Formats like cty's number-to-string conversion: no exponent, no trailing zeros.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Int(i) => write!(f, "{i}"),
            Number::Float(x) if x.is_infinite() => {
                f.write_str(if *x > 0.0 { "+Inf" } else { "-Inf" })
            }
            Number::Float(x) => write!(f, "{x}"),
        }
    }
}

impl From<i64> for Number {
    fn from(i: i64) -> Number {
        Number::Int(i)
    }
}

/// A bake value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A null of the given type (`Type::Dynamic` for an untyped `null`).
    Null(Type),
    /// A value not known yet (of the given type), e.g. during validation of a variable.
    Unknown(Type),
    Bool(bool),
    Number(Number),
    String(String),
    List(Vec<Value>),
    /// Elements are unique and in canonical order; build with [`Value::set`].
    Set(Vec<Value>),
    Tuple(Vec<Value>),
    Map(BTreeMap<String, Value>),
    Object(BTreeMap<String, Value>),
}

impl Value {
    /// An untyped null.
    pub fn null() -> Value {
        Value::Null(Type::Dynamic)
    }

    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    pub fn int(i: i64) -> Value {
        Value::Number(Number::Int(i))
    }

    pub fn float(f: f64) -> Value {
        Value::Number(Number::from_f64(f))
    }

    /// A set from any elements: duplicates removed, canonical order.
    pub fn set(mut elems: Vec<Value>) -> Value {
        elems.sort_by(canonical_cmp);
        elems.dedup();
        Value::Set(elems)
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null(_))
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown(_))
    }

    /// True if this value or anything inside it is unknown.
    pub fn contains_unknown(&self) -> bool {
        match self {
            Value::Unknown(_) => true,
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => {
                v.iter().any(Value::contains_unknown)
            }
            Value::Map(m) | Value::Object(m) => m.values().any(Value::contains_unknown),
            _ => false,
        }
    }

    /// The value's cty type. Element types of lists/sets/maps are taken from the first
    /// element (they are homogeneous by construction).
    pub fn type_of(&self) -> Type {
        match self {
            Value::Null(t) | Value::Unknown(t) => t.clone(),
            Value::Bool(_) => Type::Bool,
            Value::Number(_) => Type::Number,
            Value::String(_) => Type::String,
            Value::List(v) => Type::List(Box::new(elem_type(v.iter()))),
            Value::Set(v) => Type::Set(Box::new(elem_type(v.iter()))),
            Value::Map(m) => Type::Map(Box::new(elem_type(m.values()))),
            Value::Tuple(v) => Type::Tuple(v.iter().map(Value::type_of).collect()),
            Value::Object(m) => {
                Type::Object(m.iter().map(|(k, v)| (k.clone(), v.type_of())).collect())
            }
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Elements of a list, set or tuple.
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => Some(v),
            _ => None,
        }
    }

    /// Entries of a map or object.
    pub fn as_entries(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) | Value::Object(m) => Some(m),
            _ => None,
        }
    }
}

fn elem_type<'a>(mut it: impl Iterator<Item = &'a Value>) -> Type {
    it.next().map(Value::type_of).unwrap_or(Type::Dynamic)
}

/// cty's canonical order for set elements: by kind, then strings lexically, numbers
/// numerically, false before true, collections by their elements.
pub fn canonical_cmp(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            Value::List(_) | Value::Set(_) | Value::Tuple(_) => 4,
            Value::Map(_) | Value::Object(_) => 5,
            Value::Null(_) => 6,
            Value::Unknown(_) => 7,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (x, y) if rank(x) == rank(y) => match (x.as_seq(), y.as_seq()) {
            (Some(xs), Some(ys)) => xs
                .iter()
                .zip(ys)
                .map(|(p, q)| canonical_cmp(p, q))
                .find(|o| o.is_ne())
                .unwrap_or_else(|| xs.len().cmp(&ys.len())),
            _ => match (x.as_entries(), y.as_entries()) {
                (Some(xm), Some(ym)) => xm
                    .iter()
                    .zip(ym)
                    .map(|((ka, va), (kb, vb))| ka.cmp(kb).then_with(|| canonical_cmp(va, vb)))
                    .find(|o| o.is_ne())
                    .unwrap_or_else(|| xm.len().cmp(&ym.len())),
                _ => Ordering::Equal,
            },
        },
        (x, y) => rank(x).cmp(&rank(y)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_like_cty() {
        assert_eq!(Number::from_f64(1.0).to_string(), "1");
        assert_eq!(Number::from_f64(1.5).to_string(), "1.5");
        assert_eq!(Number::from_f64(1e21).to_string(), "1000000000000000000000");
        assert_eq!(Number::Int(-3).to_string(), "-3");
    }

    #[test]
    fn sets_are_sorted_and_unique() {
        let s = Value::set(vec![
            Value::string("b"),
            Value::string("a"),
            Value::string("b"),
        ]);
        assert_eq!(s, Value::Set(vec![Value::string("a"), Value::string("b")]));
    }

    #[test]
    fn type_display_matches_hcl() {
        let t = Type::Object(
            [("a".to_string(), Type::List(Box::new(Type::String)))]
                .into_iter()
                .collect(),
        );
        assert_eq!(t.to_string(), "object({a=list(string)})");
        assert_eq!(t.friendly_name(), "object");
    }
}
