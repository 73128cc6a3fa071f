//! HCL type expressions (`string`, `list(string)`, `object({a = number})`, `any`, ...)
//! read from their source text: the second argument of `convert()`, and the `type` of a
//! typed variable.

use std::collections::BTreeMap;

use crate::bake::eval::convert::ConvertError;
use crate::bake::eval::value::Type;

/// Reads an HCL type expression from its source text: `string`, `number`, `bool`, `any`,
/// `list(T)`, `set(T)`, `map(T)`, `tuple([T, ...])`, `object({name = T, ...})`.
pub fn parse_type_expr(src: &str) -> Result<Type, ConvertError> {
    let mut p = TypeParser {
        s: src.as_bytes(),
        i: 0,
        depth: 0,
    };
    let t = p.ty()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(ConvertError::new(format!(
            "invalid type expression {src:?}"
        )));
    }
    Ok(t)
}

struct TypeParser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

/// Nesting limit of type expressions (keeps recursion bounded on hostile input).
const MAX_TYPE_DEPTH: usize = 64;

impl TypeParser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && (self.s[self.i] as char).is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn err(&self) -> ConvertError {
        ConvertError::new(format!(
            "invalid type expression {:?}",
            String::from_utf8_lossy(self.s)
        ))
    }

    fn eat(&mut self, c: u8) -> Result<(), ConvertError> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err())
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn ident(&mut self) -> Result<String, ConvertError> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || matches!(self.s[self.i], b'_' | b'-'))
        {
            self.i += 1;
        }
        if start == self.i {
            return Err(self.err());
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn ty(&mut self) -> Result<Type, ConvertError> {
        self.depth += 1;
        if self.depth > MAX_TYPE_DEPTH {
            return Err(ConvertError::new("type expression is nested too deeply"));
        }
        let t = self.ty_inner();
        self.depth -= 1;
        t
    }

    fn ty_inner(&mut self) -> Result<Type, ConvertError> {
        let name = self.ident()?;
        match name.as_str() {
            "string" => Ok(Type::String),
            "number" => Ok(Type::Number),
            "bool" => Ok(Type::Bool),
            "any" => Ok(Type::Dynamic),
            "list" | "set" | "map" => {
                self.eat(b'(')?;
                let e = Box::new(self.ty()?);
                self.eat(b')')?;
                Ok(match name.as_str() {
                    "list" => Type::List(e),
                    "set" => Type::Set(e),
                    _ => Type::Map(e),
                })
            }
            "tuple" => {
                self.eat(b'(')?;
                self.eat(b'[')?;
                let mut ts = Vec::new();
                while self.peek() != Some(b']') {
                    ts.push(self.ty()?);
                    if self.peek() == Some(b',') {
                        self.i += 1;
                    } else {
                        break;
                    }
                }
                self.eat(b']')?;
                self.eat(b')')?;
                Ok(Type::Tuple(ts))
            }
            "object" => {
                self.eat(b'(')?;
                self.eat(b'{')?;
                let mut attrs = BTreeMap::new();
                while self.peek() != Some(b'}') {
                    let k = if self.peek() == Some(b'"') {
                        self.quoted()?
                    } else {
                        self.ident()?
                    };
                    if self.peek() == Some(b':') {
                        self.i += 1;
                    } else {
                        self.eat(b'=')?;
                    }
                    let t = self.ty()?;
                    attrs.insert(k, t);
                    if matches!(self.peek(), Some(b',') | Some(b'\n')) {
                        self.i += 1;
                    }
                }
                self.eat(b'}')?;
                self.eat(b')')?;
                Ok(Type::Object(attrs))
            }
            _ => Err(ConvertError::new(format!(
                "the keyword {name:?} is not a valid type constructor"
            ))),
        }
    }

    fn quoted(&mut self) -> Result<String, ConvertError> {
        self.eat(b'"')?;
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i] != b'"' {
            self.i += 1;
        }
        let k = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        self.eat(b'"')?;
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_expressions() {
        let cases = [
            ("number", "number"),
            ("list(string)", "list(string)"),
            ("map( any )", "map(any)"),
            ("tuple([string, number])", "tuple([string, number])"),
            (
                "object({a=string, b = list(number)})",
                "object({a=string, b=list(number)})",
            ),
        ];
        for (src, want) in cases {
            assert_eq!(
                parse_type_expr(src).map(|t| t.to_string()).as_deref(),
                Ok(want)
            );
        }
        assert!(parse_type_expr("strin").is_err());
        assert!(parse_type_expr("list(").is_err());
        assert!(parse_type_expr("list(string) x").is_err());
    }
}
