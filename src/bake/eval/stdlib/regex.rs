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
    ::regex::RegexBuilder::new(pattern)
        .size_limit(1 << 22)
        .build()
        .map_err(|e| {
            let msg = e.to_string();
            let first = msg.lines().last().unwrap_or("invalid pattern").trim();
            FuncError::arg(arg, format!("error parsing pattern: {first}"))
        })
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
