//! Type constraint expressions: `string`, `list(string)`, `object({a=number})`, `any`...

use super::expr::EvalError;
use super::value::Type;
use hcl_edit::expr::{Expression, ObjectKey};
use std::collections::BTreeMap;

/// The type an expression describes; `None` for `null` (no constraint).
pub fn type_of_expr(expr: &Expression) -> Result<Option<Type>, EvalError> {
    if matches!(expr, Expression::Null(_)) {
        return Ok(None);
    }
    parse(expr).map(Some)
}

fn invalid(detail: impl Into<String>) -> EvalError {
    EvalError::new("Invalid type specification", detail)
}

fn parse(expr: &Expression) -> Result<Type, EvalError> {
    match expr {
        Expression::Variable(v) => match v.as_str() {
            "string" => Ok(Type::String),
            "number" => Ok(Type::Number),
            "bool" => Ok(Type::Bool),
            "any" => Ok(Type::Dynamic),
            "list" | "map" | "set" => Err(invalid(format!(
                "The {} type constructor requires one argument specifying the element type.",
                v.as_str()
            ))),
            other => Err(invalid(format!(
                "The keyword \"{other}\" is not a valid type specification."
            ))),
        },
        Expression::Parenthesis(p) => parse(p.inner()),
        Expression::FuncCall(call) => {
            let name = call.name.name.as_str();
            let args: Vec<&Expression> = call.args.iter().collect();
            let one = || -> Result<&Expression, EvalError> {
                match args.as_slice() {
                    [a] => Ok(a),
                    _ => Err(invalid(format!(
                        "The {name} type constructor requires one argument specifying the element type."
                    ))),
                }
            };
            match name {
                "list" => Ok(Type::List(Box::new(parse(one()?)?))),
                "set" => Ok(Type::Set(Box::new(parse(one()?)?))),
                "map" => Ok(Type::Map(Box::new(parse(one()?)?))),
                "tuple" => {
                    let arr = one()?.as_array().ok_or_else(|| {
                        invalid("The tuple type constructor requires a list of element types.")
                    })?;
                    Ok(Type::Tuple(arr.iter().map(parse).collect::<Result<_, _>>()?))
                }
                "object" => {
                    let obj = one()?.as_object().ok_or_else(|| {
                        invalid("The object type constructor requires an object of attribute types.")
                    })?;
                    let mut attrs = BTreeMap::new();
                    for (k, v) in obj.iter() {
                        let key = match k {
                            ObjectKey::Ident(i) => i.as_str().to_string(),
                            ObjectKey::Expression(Expression::String(s)) => s.to_string(),
                            ObjectKey::Expression(Expression::Variable(i)) => i.as_str().to_string(),
                            _ => return Err(invalid("Object constructor map keys must be attribute names.")),
                        };
                        attrs.insert(key, parse_attr(v.expr())?);
                    }
                    Ok(Type::Object(attrs))
                }
                other => Err(invalid(format!(
                    "Keyword \"{other}\" is not a valid type constructor."
                ))),
            }
        }
        _ => Err(invalid("A type specification is either a primitive type keyword (bool, number, string) or a complex type constructor call, like list(string).")),
    }
}

/// Object attributes may be `optional(T)`; the type is T.
fn parse_attr(expr: &Expression) -> Result<Type, EvalError> {
    if let Expression::FuncCall(call) = expr {
        if call.name.name.as_str() == "optional" {
            if let Some(first) = call.args.iter().next() {
                return parse(first);
            }
        }
    }
    parse(expr)
}

/// cty's `FriendlyNameForConstraint`: like the friendly name, with `any` for dynamic.
pub fn constraint_name(t: &Type) -> String {
    match t {
        Type::Dynamic => "any".into(),
        Type::List(e) => format!("list of {}", constraint_name(e)),
        Type::Set(e) => format!("set of {}", constraint_name(e)),
        Type::Map(e) => format!("map of {}", constraint_name(e)),
        other => other.friendly_name(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(s: &str) -> Type {
        let e = hcl_edit::parser::parse_expr(s).expect("expr");
        type_of_expr(&e).expect("type").expect("some")
    }

    #[test]
    fn parses_constructors() {
        assert_eq!(ty("list(string)"), Type::List(Box::new(Type::String)));
        assert_eq!(ty("any"), Type::Dynamic);
        assert_eq!(
            ty("object({a=number, b=optional(bool)})").to_string(),
            "object({a=number, b=bool})"
        );
        assert_eq!(constraint_name(&ty("map(any)")), "map of any");
    }

    #[test]
    fn rejects_garbage() {
        let e = hcl_edit::parser::parse_expr("lst(string)").expect("expr");
        assert!(type_of_expr(&e).is_err());
    }
}
