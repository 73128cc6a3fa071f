//! Regular expressions (RE2 syntax, which the `regex` crate shares): regex, regexall,
//! regex_replace. Result shapes follow cty: no capture groups -> the matched string;
//! named groups -> an object; unnamed groups -> a tuple (null for groups that did not
//! take part in the match). Named and unnamed groups cannot be mixed.

use std::collections::BTreeMap;

use ::regex::{Captures, Regex};

use super::args::string;
use super::FuncError;
use crate::bake::eval::value::{Type, Value};

const MAX_PATTERN: usize = 1 << 16;

fn compile(pattern: &str, arg: usize) -> Result<Regex, FuncError> {
    if pattern.len() > MAX_PATTERN {
        return Err(FuncError::arg(
            arg,
            "error parsing pattern: pattern too long",
        ));
    }
    ::regex::RegexBuilder::new(&go_syntax(pattern))
        .size_limit(1 << 22)
        .build()
        .map_err(|e| {
            let msg = e.to_string();
            let last = msg.lines().last().unwrap_or("invalid pattern").trim();
            let last = last.strip_prefix("error: ").unwrap_or(last);
            // Go's wording for the usual mistakes
            let go = match last {
                "unclosed group" => format!("missing closing ): `{pattern}`"),
                "unopened group" => format!("unexpected ): `{pattern}`"),
                "unclosed character class" => {
                    let from = pattern.rfind('[').unwrap_or(0);
                    format!("missing closing ]: `{}`", &pattern[from..])
                }
                "repetition operator missing expression" => {
                    "missing argument to repetition operator".to_string()
                }
                other => other.to_string(),
            };
            FuncError::arg(
                arg,
                format!("error parsing pattern: error parsing regexp: {go}"),
            )
        })
}

/// Rewrites the RE2 dialect of Go's `regexp` into the `regex` crate's: Perl classes
/// (`\d \w \s \b`) are ASCII-only in Go, `\Q...\E` quotes, and `[`, `&&`, `~~` are
/// literal inside a character class (the crate reads them as nesting and set operators).
fn go_syntax(p: &str) -> String {
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let Some(&e) = chars.get(i + 1) else {
                out.push(c);
                break;
            };
            i += 2;
            if !in_class && e == 'Q' {
                let mut lit = String::new();
                while i < chars.len() && !(chars[i] == '\\' && chars.get(i + 1) == Some(&'E')) {
                    lit.push(chars[i]);
                    i += 1;
                }
                i += 2;
                out.push_str(&::regex::escape(&lit));
                continue;
            }
            let (inner, negated) = match e {
                'd' | 'D' => ("0-9", e == 'D'),
                'w' | 'W' => ("0-9A-Za-z_", e == 'W'),
                's' | 'S' => ("\\t\\n\\x0C\\r ", e == 'S'),
                'b' | 'B' if !in_class => {
                    out.push_str(if e == 'b' { "(?-u:\\b)" } else { "(?-u:\\B)" });
                    continue;
                }
                _ => {
                    out.push(c);
                    out.push(e);
                    continue;
                }
            };
            match (in_class, negated) {
                (true, false) => out.push_str(inner),
                _ => {
                    out.push('[');
                    if negated {
                        out.push('^');
                    }
                    out.push_str(inner);
                    out.push(']');
                }
            }
            continue;
        }
        if in_class {
            match c {
                ']' => in_class = false,
                '[' if chars.get(i + 1) == Some(&':') => {
                    // a POSIX class such as [:alpha:]: copy it whole
                    let end = (i + 2..chars.len().saturating_sub(1))
                        .find(|&j| chars[j] == ':' && chars[j + 1] == ']');
                    if let Some(end) = end {
                        out.extend(&chars[i..end + 2]);
                        i = end + 2;
                        continue;
                    }
                    out.push_str("\\[");
                    i += 1;
                    continue;
                }
                '[' => {
                    out.push_str("\\[");
                    i += 1;
                    continue;
                }
                '&' | '~' if chars.get(i + 1) == Some(&c) => {
                    out.push('\\');
                    out.push(c);
                    i += 1;
                    continue;
                }
                _ => {}
            }
            out.push(c);
            i += 1;
            continue;
        }
        out.push(c);
        i += 1;
        if c == '[' {
            in_class = true;
            // a leading ^ and a leading ] belong to the class
            if chars.get(i) == Some(&'^') {
                out.push('^');
                i += 1;
            }
            if chars.get(i) == Some(&']') {
                out.push_str("\\]");
                i += 1;
            }
        }
    }
    out
}

enum Shape {
    Whole,
    Named(Vec<(usize, String)>),
    Unnamed(usize),
}

fn shape(re: &Regex) -> Result<Shape, FuncError> {
    let names: Vec<Option<&str>> = re.capture_names().skip(1).collect();
    if names.is_empty() {
        return Ok(Shape::Whole);
    }
    let named = names.iter().filter(|n| n.is_some()).count();
    if named == 0 {
        return Ok(Shape::Unnamed(names.len()));
    }
    if named != names.len() {
        return Err(FuncError::arg(
            0,
            "invalid regexp pattern: cannot mix both named and unnamed capture groups",
        ));
    }
    Ok(Shape::Named(
        names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.map(|n| (i + 1, n.to_string())))
            .collect(),
    ))
}

fn group(c: &Captures, i: usize) -> Value {
    match c.get(i) {
        Some(m) => Value::string(m.as_str()),
        None => Value::Null(Type::String),
    }
}

fn result(shape: &Shape, c: &Captures) -> Value {
    match shape {
        Shape::Whole => group(c, 0),
        Shape::Unnamed(n) => Value::Tuple((1..=*n).map(|i| group(c, i)).collect()),
        Shape::Named(names) => Value::Object(
            names
                .iter()
                .map(|(i, n)| (n.clone(), group(c, *i)))
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

pub(super) fn regex(a: &[Value]) -> Result<Value, FuncError> {
    let pattern = string(a, 0)?;
    let s = string(a, 1)?;
    let re = compile(&pattern, 0)?;
    let sh = shape(&re)?;
    let caps = re
        .captures(&s)
        .ok_or_else(|| FuncError::new("pattern did not match any part of the given string"))?;
    Ok(result(&sh, &caps))
}

pub(super) fn regexall(a: &[Value]) -> Result<Value, FuncError> {
    let pattern = string(a, 0)?;
    let s = string(a, 1)?;
    let re = compile(&pattern, 0)?;
    let sh = shape(&re)?;
    Ok(Value::List(
        re.captures_iter(&s).map(|c| result(&sh, &c)).collect(),
    ))
}

pub(super) fn regex_replace(a: &[Value]) -> Result<Value, FuncError> {
    let s = string(a, 0)?;
    let pattern = string(a, 1)?;
    let replacement = string(a, 2)?;
    let re = compile(&pattern, 1)?;
    Ok(Value::String(
        re.replace_all(&s, replacement.as_str()).into_owned(),
    ))
}
