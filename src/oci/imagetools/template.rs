//! A subset of Go's `text/template`, enough for `imagetools inspect --format`: text,
//! actions with `{{-`/`-}}` trimming, fields (`.A.B`), variables (`$x`, `$`), literals,
//! parenthesised pipelines, `|` pipes, `if`/`else if`/`else`, `range` (with `$k, $v :=`),
//! `with`, and the functions `json`, `index`, `len`, `print`, `println`, `eq`, `ne`,
//! `not`, `and`, `or`.

use super::value::Value;
use crate::oci::OciError;

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Dot,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Int(i64),
    Bool(bool),
    Nil,
    Func(String),
    Paren(Box<Pipe>, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
struct Pipe {
    decl: Vec<String>,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action { pipe: Pipe, pos: (usize, usize), src: String },
    If { pipe: Pipe, then: Vec<Node>, otherwise: Vec<Node> },
    Range { pipe: Pipe, body: Vec<Node>, otherwise: Vec<Node> },
    With { pipe: Pipe, body: Vec<Node>, otherwise: Vec<Node> },
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

fn err(msg: impl Into<String>) -> OciError {
    OciError::Template { message: msg.into() }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Arg(Arg),
    Ident(String),
    Pipe,
    LParen,
    RParen(Vec<String>),
    Declare,
    Comma,
}

fn ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Reads `.A.B` segments starting at a `.`.
fn read_fields(chars: &[char], i: &mut usize) -> Vec<String> {
    let mut out = Vec::new();
    while *i < chars.len() && chars[*i] == '.' && chars.get(*i + 1).is_some_and(|c| ident_char(*c)) {
        *i += 1;
        let start = *i;
        while *i < chars.len() && ident_char(chars[*i]) {
            *i += 1;
        }
        out.push(chars[start..*i].iter().collect());
    }
    out
}

fn lex_action(src: &str) -> Result<Vec<Tok>, OciError> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '|' => {
                toks.push(Tok::Pipe);
                i += 1
            }
            '(' => {
                toks.push(Tok::LParen);
                i += 1
            }
            ')' => {
                i += 1;
                toks.push(Tok::RParen(read_fields(&chars, &mut i)));
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                toks.push(Tok::Declare);
                i += 2
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(err("unterminated quoted string")),
                        Some('"') => break,
                        Some('\\') => {
                            i += 1;
                            match chars.get(i) {
                                Some('n') => s.push('\n'),
                                Some('t') => s.push('\t'),
                                Some('r') => s.push('\r'),
                                Some('\\') => s.push('\\'),
                                Some('"') => s.push('"'),
                                Some(o) => return Err(err(format!("unknown escape sequence \\{o}"))),
                                None => return Err(err("unterminated quoted string")),
                            }
                        }
                        Some(c) => s.push(*c),
                    }
                    i += 1;
                }
                i += 1;
                toks.push(Tok::Arg(Arg::Str(s)));
            }
            '`' => {
                let start = i + 1;
                let end = chars[start..]
                    .iter()
                    .position(|c| *c == '`')
                    .ok_or_else(|| err("unterminated raw quoted string"))?;
                toks.push(Tok::Arg(Arg::Str(chars[start..start + end].iter().collect())));
                i = start + end + 1;
            }
            '.' => {
                let fields = read_fields(&chars, &mut i);
                if fields.is_empty() {
                    i += 1;
                    toks.push(Tok::Arg(Arg::Dot));
                } else {
                    toks.push(Tok::Arg(Arg::Field(fields)));
                }
            }
            '$' => {
                i += 1;
                let start = i;
                while i < chars.len() && ident_char(chars[i]) {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                toks.push(Tok::Arg(Arg::Var(name, read_fields(&chars, &mut i))));
            }
            c if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) => {
                let start = i;
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                let s: String = chars[start..i].iter().collect();
                let n = s.parse::<i64>().map_err(|_| err(format!("bad number syntax: {s:?}")))?;
                toks.push(Tok::Arg(Arg::Int(n)));
            }
            c if ident_char(c) => {
                let start = i;
                while i < chars.len() && ident_char(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                toks.push(match word.as_str() {
                    "true" => Tok::Arg(Arg::Bool(true)),
                    "false" => Tok::Arg(Arg::Bool(false)),
                    "nil" => Tok::Arg(Arg::Nil),
                    _ => Tok::Ident(word),
                });
            }
            other => return Err(err(format!("unexpected {other:?} in command"))),
        }
    }
    Ok(toks)
}

/// Parses a pipeline from tokens (`$a, $b :=` declarations allowed at the start).
fn parse_pipe(toks: &[Tok]) -> Result<Pipe, OciError> {
    let mut decl = Vec::new();
    let mut rest = toks;
    if let Some(pos) = toks.iter().position(|t| *t == Tok::Declare) {
        for t in &toks[..pos] {
            match t {
                Tok::Arg(Arg::Var(name, f)) if f.is_empty() => decl.push(name.clone()),
                Tok::Comma => {}
                _ => return Err(err("unexpected token in variable declaration")),
            }
        }
        rest = &toks[pos + 1..];
    }
    let mut cmds = Vec::new();
    let mut cur = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        match &rest[i] {
            Tok::Pipe => {
                if cur.is_empty() {
                    return Err(err("missing command before |"));
                }
                cmds.push(std::mem::take(&mut cur));
            }
            Tok::Arg(a) => cur.push(a.clone()),
            Tok::Ident(name) => cur.push(Arg::Func(name.clone())),
            Tok::LParen => {
                let mut depth = 1;
                let start = i + 1;
                let mut j = start;
                while j < rest.len() {
                    match rest[j] {
                        Tok::LParen => depth += 1,
                        Tok::RParen(_) => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                let Some(Tok::RParen(fields)) = rest.get(j) else {
                    return Err(err("unclosed left paren"));
                };
                cur.push(Arg::Paren(Box::new(parse_pipe(&rest[start..j])?), fields.clone()));
                i = j;
            }
            Tok::RParen(_) => return Err(err("unexpected right paren")),
            Tok::Comma | Tok::Declare => return Err(err("unexpected token in command")),
        }
        i += 1;
    }
    if cur.is_empty() {
        return Err(err("missing value for command"));
    }
    cmds.push(cur);
    Ok(Pipe { decl, cmds })
}

enum Item {
    Node(Node),
    Else(Option<Pipe>),
    End,
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, OciError> {
        let mut items = Vec::new();
        let mut rest = src;
        let mut offset = 0;
        let mut trim_next = false;
        while !rest.is_empty() {
            let Some(open) = rest.find("{{") else {
                let text = if trim_next { rest.trim_start() } else { rest };
                items.push(Item::Node(Node::Text(text.to_string())));
                break;
            };
            let mut text = &rest[..open];
            if trim_next {
                text = text.trim_start();
            }
            let after_open = &rest[open + 2..];
            let trim_left = after_open.starts_with("- ") || after_open.starts_with("-\t") || after_open.starts_with("-\n");
            if trim_left {
                text = text.trim_end();
            }
            if !text.is_empty() {
                items.push(Item::Node(Node::Text(text.to_string())));
            }
            let body_start = if trim_left { 1 } else { 0 };
            let close = find_close(after_open).ok_or_else(|| err("unclosed action"))?;
            let mut body = &after_open[body_start..close];
            trim_next = false;
            if body.ends_with(" -") || body.ends_with("\t-") || body.ends_with("\n-") {
                body = &body[..body.len() - 1];
                trim_next = true;
            }
            let abs = offset + open;
            let line = src[..abs].matches('\n').count() + 1;
            let col = abs - src[..abs].rfind('\n').map(|p| p + 1).unwrap_or(0) + 2;
            items.push(parse_action(body.trim(), (line, col))?);
            let consumed = open + 2 + close + 2;
            offset += consumed;
            rest = &rest[consumed..];
        }
        let mut iter = items.into_iter();
        let (nodes, stop) = build(&mut iter)?;
        if stop.is_some() {
            return Err(err(format!("unexpected {{{{{}}}}}", if matches!(stop, Some(Item::End)) { "end" } else { "else" })));
        }
        Ok(Template { nodes })
    }

    /// True when the template is exactly `{{.NAME}}` (spaces inside the braces allowed).
    pub fn is_single_field(&self, name: &str) -> bool {
        matches!(self.nodes.as_slice(), [Node::Action { pipe, .. }]
            if pipe.decl.is_empty() && pipe.cmds == vec![vec![Arg::Field(vec![name.to_string()])]])
    }

    pub fn execute(&self, dot: &Value) -> Result<String, OciError> {
        let mut ex = Exec { vars: vec![("$".to_string(), dot.clone())], out: String::new() };
        ex.walk(&self.nodes, dot)?;
        Ok(ex.out)
    }
}

fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i + 1 < b.len() || (i < b.len() && quote.is_some()) {
        match quote {
            Some(q) => {
                if b[i] == b'\\' && q == b'"' {
                    i += 1;
                } else if b[i] == q {
                    quote = None;
                }
            }
            None => {
                if b[i] == b'"' || b[i] == b'`' {
                    quote = Some(b[i]);
                } else if b[i] == b'}' && b[i + 1] == b'}' {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

fn parse_action(body: &str, pos: (usize, usize)) -> Result<Item, OciError> {
    if body.starts_with("/*") {
        return Ok(Item::Node(Node::Text(String::new())));
    }
    let (word, rest) = match body.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (body, ""),
    };
    let pipe = |s: &str| parse_pipe(&lex_action(s)?);
    Ok(match word {
        "end" => Item::End,
        "else" => {
            if rest.is_empty() {
                Item::Else(None)
            } else if let Some(cond) = rest.strip_prefix("if ") {
                Item::Else(Some(pipe(cond)?))
            } else {
                return Err(err("unexpected tokens after else"));
            }
        }
        "if" => Item::Node(Node::If { pipe: pipe(rest)?, then: vec![], otherwise: vec![] }),
        "range" => Item::Node(Node::Range { pipe: pipe(rest)?, body: vec![], otherwise: vec![] }),
        "with" => Item::Node(Node::With { pipe: pipe(rest)?, body: vec![], otherwise: vec![] }),
        "define" | "template" | "block" | "break" | "continue" => {
            return Err(err(format!("{{{{{word}}}}} is not supported in --format templates")))
        }
        _ => Item::Node(Node::Action { pipe: pipe(body)?, pos, src: body.to_string() }),
    })
}

/// Builds nested nodes until `else`/`end` (returned as the stop item).
fn build(items: &mut impl Iterator<Item = Item>) -> Result<(Vec<Node>, Option<Item>), OciError> {
    let mut nodes = Vec::new();
    while let Some(item) = items.next() {
        match item {
            Item::End | Item::Else(_) => return Ok((nodes, Some(item))),
            Item::Node(node) => nodes.push(match node {
                Node::If { pipe, .. } => {
                    let (then, otherwise) = build_branches(items, true)?;
                    Node::If { pipe, then, otherwise }
                }
                Node::Range { pipe, .. } => {
                    let (body, otherwise) = build_branches(items, false)?;
                    Node::Range { pipe, body, otherwise }
                }
                Node::With { pipe, .. } => {
                    let (body, otherwise) = build_branches(items, false)?;
                    Node::With { pipe, body, otherwise }
                }
                other => other,
            }),
        }
    }
    Ok((nodes, None))
}

fn build_branches(items: &mut impl Iterator<Item = Item>, allow_else_if: bool) -> Result<(Vec<Node>, Vec<Node>), OciError> {
    let (body, stop) = build(items)?;
    match stop {
        Some(Item::End) => Ok((body, vec![])),
        Some(Item::Else(None)) => {
            let (otherwise, stop) = build(items)?;
            match stop {
                Some(Item::End) => Ok((body, otherwise)),
                _ => Err(err("expected {{end}}")),
            }
        }
        Some(Item::Else(Some(pipe))) if allow_else_if => {
            let (then, otherwise) = build_branches(items, true)?;
            Ok((body, vec![Node::If { pipe, then, otherwise }]))
        }
        _ => Err(err("unexpected EOF: missing {{end}}")),
    }
}

struct Exec {
    vars: Vec<(String, Value)>,
    out: String,
}

fn type_name(v: &Value) -> String {
    match v {
        Value::Struct { type_name, .. } => type_name.to_string(),
        Value::Ptr(Some(inner)) => format!("*{}", type_name(inner)),
        Value::Map { .. } => "map[string]interface {}".into(),
        Value::Slice(_) => "[]interface {}".into(),
        Value::Str(_) => "string".into(),
        Value::Json(_) => "interface {}".into(),
        _ => "interface {}".into(),
    }
}

/// `.Name` on a value.
fn field(v: &Value, name: &str) -> Result<Value, String> {
    match v {
        Value::Ptr(Some(inner)) => field(inner, name),
        Value::Ptr(None) => Err(format!("nil pointer evaluating {}.{name}", type_name(v))),
        Value::Struct { fields, .. } => {
            for f in fields {
                if f.name == name && !f.inline {
                    return Ok(f.value.clone());
                }
            }
            for f in fields.iter().filter(|f| f.inline) {
                if let Ok(x) = field(&f.value, name) {
                    return Ok(x);
                }
            }
            Err(format!("can't evaluate field {name} in type {}", type_name(v)))
        }
        Value::Map { entries, iface } => Ok(entries
            .as_ref()
            .and_then(|m| m.get(name).cloned())
            .unwrap_or(if *iface { Value::Invalid } else { Value::Str(String::new()) })),
        Value::Json(serde_json::Value::Object(o)) => Ok(o.get(name).cloned().map(Value::Json).unwrap_or(Value::Invalid)),
        Value::Json(serde_json::Value::Null) | Value::Nil | Value::Invalid => {
            Err(format!("nil pointer evaluating interface {{}}.{name}"))
        }
        _ => Err(format!("can't evaluate field {name} in type {}", type_name(v))),
    }
}

fn index_value(v: &Value, key: &Value) -> Result<Value, String> {
    let key_str = match key.indirect() {
        Value::Str(s) => Some(s.clone()),
        Value::Json(serde_json::Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    let key_int = match key.indirect() {
        Value::Int(i) => Some(*i),
        Value::Json(serde_json::Value::Number(n)) => n.as_i64(),
        _ => None,
    };
    match v.indirect() {
        Value::Map { entries, iface } => {
            let k = key_str.ok_or("value has type int; should be string")?;
            Ok(entries.as_ref().and_then(|m| m.get(&k).cloned()).unwrap_or(if *iface { Value::Invalid } else { Value::Str(String::new()) }))
        }
        Value::Json(serde_json::Value::Object(o)) => {
            let k = key_str.ok_or("value has type int; should be string")?;
            Ok(o.get(&k).cloned().map(Value::Json).unwrap_or(Value::Invalid))
        }
        Value::Slice(items) => {
            let i = key_int.ok_or("cannot index slice/array with type string")?;
            let items = items.as_deref().unwrap_or(&[]);
            usize::try_from(i).ok().and_then(|i| items.get(i).cloned()).ok_or_else(|| format!("index out of range: {i}"))
        }
        Value::Json(serde_json::Value::Array(a)) => {
            let i = key_int.ok_or("cannot index slice/array with type string")?;
            usize::try_from(i).ok().and_then(|i| a.get(i).cloned()).map(Value::Json).ok_or_else(|| format!("index out of range: {i}"))
        }
        Value::Nil | Value::Invalid => Err("index of untyped nil".into()),
        other => Err(format!("can't index item of type {}", type_name(other))),
    }
}

fn length(v: &Value) -> Result<Value, String> {
    let n = match v.indirect() {
        Value::Str(s) => s.len(),
        Value::Slice(items) => items.as_ref().map_or(0, Vec::len),
        Value::Map { entries, .. } => entries.as_ref().map_or(0, |m| m.len()),
        Value::Json(serde_json::Value::Array(a)) => a.len(),
        Value::Json(serde_json::Value::Object(o)) => o.len(),
        Value::Json(serde_json::Value::String(s)) => s.len(),
        other => return Err(format!("len of type {}", type_name(other))),
    };
    Ok(Value::Int(n as i64))
}

fn basic_eq(a: &Value, b: &Value) -> bool {
    fn norm(v: &Value) -> Option<serde_json::Value> {
        Some(match v.indirect() {
            Value::Str(s) | Value::Time(s) => serde_json::Value::String(s.clone()),
            Value::Int(i) => serde_json::json!(*i as f64),
            Value::Float(f) => serde_json::json!(*f),
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Json(j) => match j {
                serde_json::Value::Number(n) => serde_json::json!(n.as_f64().unwrap_or(0.0)),
                other => other.clone(),
            },
            Value::Nil | Value::Invalid => serde_json::Value::Null,
            _ => return None,
        })
    }
    match (norm(a), norm(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

impl Exec {
    fn var(&self, name: &str) -> Result<Value, String> {
        let key = if name.is_empty() { "$".to_string() } else { format!("${name}") };
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| *n == key)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("undefined variable: {key}"))
    }

    fn chain(&self, mut v: Value, fields: &[String]) -> Result<Value, String> {
        for f in fields {
            v = field(&v, f)?;
        }
        Ok(v)
    }

    fn arg(&mut self, a: &Arg, dot: &Value) -> Result<Value, String> {
        match a {
            Arg::Dot => Ok(dot.clone()),
            Arg::Field(f) => self.chain(dot.clone(), f),
            Arg::Var(name, f) => {
                let v = self.var(name)?;
                self.chain(v, f)
            }
            Arg::Str(s) => Ok(Value::Str(s.clone())),
            Arg::Int(i) => Ok(Value::Int(*i)),
            Arg::Bool(b) => Ok(Value::Bool(*b)),
            Arg::Nil => Err("nil is not a command".into()),
            Arg::Func(name) => self.call(name, &[], None, dot),
            Arg::Paren(p, f) => {
                let v = self.pipe(p, dot)?;
                self.chain(v, f)
            }
        }
    }

    fn call(&mut self, name: &str, args: &[Arg], piped: Option<Value>, dot: &Value) -> Result<Value, String> {
        let mut vals = Vec::new();
        for a in args {
            vals.push(self.arg(a, dot)?);
        }
        if let Some(p) = piped {
            vals.push(p);
        }
        let want = |n: usize| {
            if vals.len() == n {
                Ok(())
            } else {
                Err(format!("wrong number of args for {name}: want {n} got {}", vals.len()))
            }
        };
        match name {
            "json" => {
                want(1)?;
                Ok(Value::Str(vals[0].to_json()))
            }
            "index" => {
                let (first, keys) = vals.split_first().ok_or("wrong number of args for index: want at least 1 got 0")?;
                let mut v = first.clone();
                for k in keys {
                    v = index_value(&v, k)?;
                }
                Ok(v)
            }
            "len" => {
                want(1)?;
                length(&vals[0])
            }
            "print" | "println" => {
                let mut s = String::new();
                for (i, v) in vals.iter().enumerate() {
                    let is_str = matches!(v.indirect(), Value::Str(_));
                    let prev_str = i > 0 && matches!(vals[i - 1].indirect(), Value::Str(_));
                    if i > 0 && (name == "println" || (!is_str && !prev_str)) {
                        s.push(' ');
                    }
                    s.push_str(&v.print());
                }
                if name == "println" {
                    s.push('\n');
                }
                Ok(Value::Str(s))
            }
            "eq" | "ne" => {
                if vals.len() < 2 {
                    return Err(format!("missing argument for comparison"));
                }
                let eq = vals[1..].iter().any(|b| basic_eq(&vals[0], b));
                Ok(Value::Bool(if name == "eq" { eq } else { !eq }))
            }
            "not" => {
                want(1)?;
                Ok(Value::Bool(!vals[0].truthy()))
            }
            "and" => Ok(vals.iter().find(|v| !v.truthy()).or(vals.last()).cloned().unwrap_or(Value::Nil)),
            "or" => Ok(vals.iter().find(|v| v.truthy()).or(vals.last()).cloned().unwrap_or(Value::Nil)),
            _ => Err(format!("function {name:?} not defined")),
        }
    }

    fn pipe(&mut self, p: &Pipe, dot: &Value) -> Result<Value, String> {
        let mut acc: Option<Value> = None;
        for cmd in &p.cmds {
            let v = match cmd.as_slice() {
                [Arg::Func(name), rest @ ..] => self.call(name, rest, acc.take(), dot)?,
                [single] => {
                    if acc.is_some() {
                        return Err("can't give argument to non-function".into());
                    }
                    self.arg(single, dot)?
                }
                _ => return Err("can't give argument to non-function".into()),
            };
            acc = Some(v);
        }
        let v = acc.unwrap_or(Value::Nil);
        if let [name] = p.decl.as_slice() {
            self.vars.push((format!("${name}"), v.clone()));
        }
        Ok(v)
    }

    fn walk(&mut self, nodes: &[Node], dot: &Value) -> Result<(), OciError> {
        for n in nodes {
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action { pipe, pos, src } => {
                    let v = self.pipe(pipe, dot).map_err(|m| {
                        err(format!("template: :{}:{}: executing \"\" at <{src}>: {m}", pos.0, pos.1))
                    })?;
                    if pipe.decl.is_empty() {
                        self.out.push_str(&v.print());
                    }
                }
                Node::If { pipe, then, otherwise } => {
                    let v = self.pipe(pipe, dot).map_err(err)?;
                    self.walk(if v.truthy() { then } else { otherwise }, dot)?;
                }
                Node::With { pipe, body, otherwise } => {
                    let v = self.pipe(&Pipe { decl: vec![], cmds: pipe.cmds.clone() }, dot).map_err(err)?;
                    if v.truthy() {
                        self.walk(body, &v)?;
                    } else {
                        self.walk(otherwise, dot)?;
                    }
                }
                Node::Range { pipe, body, otherwise } => {
                    let v = self.pipe(&Pipe { decl: vec![], cmds: pipe.cmds.clone() }, dot).map_err(err)?;
                    let items: Vec<(Value, Value)> = match v.indirect() {
                        Value::Slice(items) => items.iter().flatten().enumerate().map(|(i, x)| (Value::Int(i as i64), x.clone())).collect(),
                        Value::Map { entries, .. } => entries.iter().flatten().map(|(k, x)| (Value::Str(k.clone()), x.clone())).collect(),
                        Value::Json(serde_json::Value::Array(a)) => a.iter().enumerate().map(|(i, x)| (Value::Int(i as i64), Value::Json(x.clone()))).collect(),
                        Value::Json(serde_json::Value::Object(o)) => {
                            let sorted: std::collections::BTreeMap<_, _> = o.iter().collect();
                            sorted.into_iter().map(|(k, x)| (Value::Str(k.clone()), Value::Json(x.clone()))).collect()
                        }
                        Value::Nil | Value::Invalid | Value::Json(serde_json::Value::Null) => vec![],
                        other => return Err(err(format!("range can't iterate over {}", other.print()))),
                    };
                    if items.is_empty() {
                        self.walk(otherwise, dot)?;
                    }
                    for (k, x) in items {
                        let mark = self.vars.len();
                        match pipe.decl.as_slice() {
                            [v] => self.vars.push((format!("${v}"), x.clone())),
                            [kn, vn] => {
                                self.vars.push((format!("${kn}"), k));
                                self.vars.push((format!("${vn}"), x.clone()));
                            }
                            _ => {}
                        }
                        self.walk(body, &x)?;
                        self.vars.truncate(mark);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::value::Field;
    use super::*;

    fn input() -> Value {
        Value::Struct {
            type_name: "imagetools.tplInput",
            fields: vec![
                Field::new("Name", "name", Value::str("r:latest")),
                Field::new("Image", "image", Value::Map {
                    entries: Some([("linux/amd64".to_string(), Value::Json(serde_json::json!({"architecture":"amd64"})))].into()),
                    iface: true,
                }),
            ],
        }
    }

    fn run(t: &str) -> Result<String, OciError> {
        Template::parse(t)?.execute(&input())
    }

    #[test]
    fn executes_the_subset() {
        assert_eq!(run("{{.Name}}").unwrap(), "r:latest");
        assert_eq!(run("{{ .Name }}\n").unwrap(), "r:latest\n");
        assert_eq!(run("{{json .Name}}").unwrap(), "\"r:latest\"");
        assert_eq!(run(r#"{{(index .Image "linux/amd64").architecture}}"#).unwrap(), "amd64");
        assert_eq!(run("{{range $p, $i := .Image}}{{$p}}={{$i.architecture}};{{end}}").unwrap(), "linux/amd64=amd64;");
        assert_eq!(run(r#"{{if .Name}}y{{else}}n{{end}}{{"\n"}}"#).unwrap(), "y\n");
        assert_eq!(run("{{len .Image}} {{.Name | len}}").unwrap(), "1 8");
        assert_eq!(run("  {{- .Name -}}  !").unwrap(), "r:latest!");
        assert!(Template::parse("{{.Name}}").unwrap().is_single_field("Name"));
        assert!(!Template::parse("{{.Name}}x").unwrap().is_single_field("Name"));
    }

    #[test]
    fn reports_errors() {
        let e = run("{{.Nope}}").unwrap_err().to_string();
        assert!(e.contains("can't evaluate field Nope in type imagetools.tplInput"), "{e}");
        assert!(Template::parse("{{if .Name}}").is_err());
        assert!(Template::parse("{{.Name").is_err());
        assert!(run("{{nosuch .Name}}").is_err());
    }
}
