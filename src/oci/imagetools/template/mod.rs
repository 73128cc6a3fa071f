//! A subset of Go's `text/template`, enough for `imagetools inspect --format`: text,
//! actions with `{{-`/`-}}` trimming, fields (`.A.B`), variables (`$x`, `$`), literals,
//! parenthesised pipelines, `|` pipes, `if`/`else if`/`else`, `range` (with `$k, $v :=`),
//! `with`, and the functions `json`, `index`, `len`, `print`, `println`, `eq`, `ne`,
//! `not`, `and`, `or`.

use super::value::Value;

mod exec;
use crate::oci::OciError;
use exec::Exec;

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
    Action {
        pipe: Pipe,
        pos: (usize, usize),
        src: String,
    },
    If {
        pipe: Pipe,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
    Range {
        pipe: Pipe,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    With {
        pipe: Pipe,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

fn err(msg: impl Into<String>) -> OciError {
    OciError::Template {
        message: msg.into(),
    }
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
    while *i < chars.len() && chars[*i] == '.' && chars.get(*i + 1).is_some_and(|c| ident_char(*c))
    {
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
                                Some(o) => {
                                    return Err(err(format!("unknown escape sequence \\{o}")))
                                }
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
                toks.push(Tok::Arg(Arg::Str(
                    chars[start..start + end].iter().collect(),
                )));
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
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                let s: String = chars[start..i].iter().collect();
                let n = s
                    .parse::<i64>()
                    .map_err(|_| err(format!("bad number syntax: {s:?}")))?;
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
                cur.push(Arg::Paren(
                    Box::new(parse_pipe(&rest[start..j])?),
                    fields.clone(),
                ));
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
            let trim_left = after_open.starts_with("- ")
                || after_open.starts_with("-\t")
                || after_open.starts_with("-\n");
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
            return Err(err(format!(
                "unexpected {{{{{}}}}}",
                if matches!(stop, Some(Item::End)) {
                    "end"
                } else {
                    "else"
                }
            )));
        }
        Ok(Template { nodes })
    }

    /// True when the template is exactly `{{.NAME}}` (spaces inside the braces allowed).
    pub fn is_single_field(&self, name: &str) -> bool {
        matches!(self.nodes.as_slice(), [Node::Action { pipe, .. }]
            if pipe.decl.is_empty() && pipe.cmds == vec![vec![Arg::Field(vec![name.to_string()])]])
    }

    pub fn execute(&self, dot: &Value) -> Result<String, OciError> {
        let mut ex = Exec::new(dot);
        ex.walk(&self.nodes, dot)?;
        Ok(ex.into_output())
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
        "if" => Item::Node(Node::If {
            pipe: pipe(rest)?,
            then: vec![],
            otherwise: vec![],
        }),
        "range" => Item::Node(Node::Range {
            pipe: pipe(rest)?,
            body: vec![],
            otherwise: vec![],
        }),
        "with" => Item::Node(Node::With {
            pipe: pipe(rest)?,
            body: vec![],
            otherwise: vec![],
        }),
        "define" | "template" | "block" | "break" | "continue" => {
            return Err(err(format!(
                "{{{{{word}}}}} is not supported in --format templates"
            )))
        }
        _ => Item::Node(Node::Action {
            pipe: pipe(body)?,
            pos,
            src: body.to_string(),
        }),
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
                    Node::If {
                        pipe,
                        then,
                        otherwise,
                    }
                }
                Node::Range { pipe, .. } => {
                    let (body, otherwise) = build_branches(items, false)?;
                    Node::Range {
                        pipe,
                        body,
                        otherwise,
                    }
                }
                Node::With { pipe, .. } => {
                    let (body, otherwise) = build_branches(items, false)?;
                    Node::With {
                        pipe,
                        body,
                        otherwise,
                    }
                }
                other => other,
            }),
        }
    }
    Ok((nodes, None))
}

fn build_branches(
    items: &mut impl Iterator<Item = Item>,
    allow_else_if: bool,
) -> Result<(Vec<Node>, Vec<Node>), OciError> {
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
            Ok((
                body,
                vec![Node::If {
                    pipe,
                    then,
                    otherwise,
                }],
            ))
        }
        _ => Err(err("unexpected EOF: missing {{end}}")),
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
                Field::new(
                    "Image",
                    "image",
                    Value::Map {
                        entries: Some(
                            [(
                                "linux/amd64".to_string(),
                                Value::Json(serde_json::json!({"architecture":"amd64"})),
                            )]
                            .into(),
                        ),
                        iface: true,
                    },
                ),
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
        assert_eq!(
            run(r#"{{(index .Image "linux/amd64").architecture}}"#).unwrap(),
            "amd64"
        );
        assert_eq!(
            run("{{range $p, $i := .Image}}{{$p}}={{$i.architecture}};{{end}}").unwrap(),
            "linux/amd64=amd64;"
        );
        assert_eq!(
            run(r#"{{if .Name}}y{{else}}n{{end}}{{"\n"}}"#).unwrap(),
            "y\n"
        );
        assert_eq!(run("{{len .Image}} {{.Name | len}}").unwrap(), "1 8");
        assert_eq!(run("  {{- .Name -}}  !").unwrap(), "r:latest!");
        assert!(Template::parse("{{.Name}}")
            .unwrap()
            .is_single_field("Name"));
        assert!(!Template::parse("{{.Name}}x")
            .unwrap()
            .is_single_field("Name"));
    }

    #[test]
    fn reports_errors() {
        let e = run("{{.Nope}}").unwrap_err().to_string();
        assert!(
            e.contains("can't evaluate field Nope in type imagetools.tplInput"),
            "{e}"
        );
        assert!(Template::parse("{{if .Name}}").is_err());
        assert!(Template::parse("{{.Name").is_err());
        assert!(run("{{nosuch .Name}}").is_err());
    }
}
