//! Bake files (HCL, JSON, TOML) -> one syntax tree of blocks and attributes.
//!
//! HCL is parsed with hcl-edit, keeping byte spans for diagnostics. JSON and TOML follow
//! HCL's JSON rules: every string is a template (`"${upper(X)}"` works), arrays are tuples,
//! objects are object expressions; the bake schema says which keys are blocks. They are
//! turned into the same hcl-edit expression tree, so one evaluator serves all three formats.

use hcl_edit::expr::{Array, Expression, Object, ObjectKey, ObjectValue};
use hcl_edit::structure::{BlockLabel, Body, Structure};
use hcl_edit::template::StringTemplate;
use hcl_edit::{Decorated, Ident, Span};
use std::ops::Range;

/// The format of a bake file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Hcl,
    Json,
    Toml,
}

/// A bake file's name and text.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: String,
    pub format: Format,
}

impl Source {
    /// Spans of expressions point into `text` only for HCL files (JSON and TOML
    /// expressions are parsed from strings; their attributes carry the key's position).
    pub fn has_spans(&self) -> bool {
        self.format == Format::Hcl
    }
}

/// An attribute: `name = expr`.
#[derive(Debug, Clone)]
pub struct Attr {
    pub name: String,
    pub expr: Expression,
    /// Index of the source file in [`Document::sources`].
    pub src: usize,
    /// Byte range of the attribute name.
    pub span: Option<Range<usize>>,
    /// Whether the expression's spans are positions in the file (HCL) rather than in a
    /// string the expression was parsed from (JSON, TOML).
    pub exact_spans: bool,
}

/// A block: `kind "label" { ... }`.
#[derive(Debug, Clone)]
pub struct Block {
    pub kind: String,
    pub labels: Vec<String>,
    pub attrs: Vec<Attr>,
    pub blocks: Vec<Block>,
    pub src: usize,
    /// Byte range of the first label, or of the block keyword (HCL only).
    pub span: Option<Range<usize>>,
}

impl Block {
    pub fn attr(&self, name: &str) -> Option<&Attr> {
        self.attrs.iter().find(|a| a.name == name)
    }

    pub fn name(&self) -> &str {
        self.labels.first().map(String::as_str).unwrap_or("")
    }
}

/// All bake files merged: their top-level blocks and attributes in file order.
#[derive(Debug, Clone, Default)]
pub struct Document {
    pub sources: Vec<Source>,
    pub blocks: Vec<Block>,
    pub attrs: Vec<Attr>,
}

/// A syntax error in one file.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    pub file: String,
    pub message: String,
    /// 1-based line and column, when known.
    pub line: Option<usize>,
    pub col: Option<usize>,
    pub source_line: Option<String>,
}

/// Block types of the bake schema, with the block types nested in each.
fn nested_block_kinds(kind: &str) -> &'static [&'static str] {
    match kind {
        "variable" => &["validation"],
        _ => &[],
    }
}

const TOP_BLOCKS: &[&str] = &["target", "group", "variable", "function"];

impl Document {
    /// Parses one file and appends its contents.
    pub fn add(&mut self, source: Source) -> Result<(), SyntaxError> {
        let src = self.sources.len();
        match source.format {
            Format::Hcl => self.add_hcl(src, &source)?,
            Format::Json => {
                let value: serde_json::Value =
                    serde_json::from_str(&source.text).map_err(|e| SyntaxError {
                        file: source.name.clone(),
                        message: format!("invalid JSON: {e}"),
                        line: Some(e.line()),
                        col: Some(e.column()),
                        source_line: source
                            .text
                            .lines()
                            .nth(e.line().saturating_sub(1))
                            .map(str::to_string),
                    })?;
                self.add_json(src, &source.name, &value)?;
                locate_keys(&mut self.blocks, &mut self.attrs, src, &source.text);
            }
            Format::Toml => {
                let value: toml::Table = toml::from_str(&source.text).map_err(|e| {
                    let (line, col) = e
                        .span()
                        .map(|s| line_col(&source.text, s.start))
                        .unwrap_or((0, 0));
                    SyntaxError {
                        file: source.name.clone(),
                        message: format!("invalid TOML: {}", e.message()),
                        line: (line > 0).then_some(line),
                        col: (line > 0).then_some(col),
                        source_line: source
                            .text
                            .lines()
                            .nth(line.saturating_sub(1))
                            .map(str::to_string),
                    }
                })?;
                let json = toml_to_json(toml::Value::Table(value));
                self.add_json(src, &source.name, &json)?;
                locate_keys(&mut self.blocks, &mut self.attrs, src, &source.text);
            }
        }
        self.sources.push(source);
        Ok(())
    }

    fn add_hcl(&mut self, src: usize, source: &Source) -> Result<(), SyntaxError> {
        let body = hcl_edit::parser::parse_body(&source.text).map_err(|e| SyntaxError {
            file: source.name.clone(),
            message: e.message().to_string(),
            line: Some(e.location().line()),
            col: Some(e.location().column()),
            source_line: Some(e.line().to_string()),
        })?;
        let (blocks, attrs) = hcl_body(src, &body);
        self.blocks.extend(blocks);
        self.attrs.extend(attrs);
        Ok(())
    }

    fn add_json(
        &mut self,
        src: usize,
        name: &str,
        value: &serde_json::Value,
    ) -> Result<(), SyntaxError> {
        let err = |message: String| SyntaxError {
            file: name.to_string(),
            message,
            line: None,
            col: None,
            source_line: None,
        };
        let obj = value
            .as_object()
            .ok_or_else(|| err("the root of a JSON bake file must be an object".into()))?;
        for (key, val) in obj {
            if key == "//" {
                continue;
            }
            if TOP_BLOCKS.contains(&key.as_str()) {
                for group in json_bodies(val) {
                    let labelled = group.as_object().ok_or_else(|| {
                        err(format!("\"{key}\" must be an object of named {key} blocks"))
                    })?;
                    for (label, bodies) in labelled {
                        for body in json_bodies(bodies) {
                            let block = json_block(src, key, label, body).map_err(&err)?;
                            self.blocks.push(block);
                        }
                    }
                }
            } else {
                self.attrs.push(Attr {
                    name: key.clone(),
                    expr: json_expr(val).map_err(&err)?,
                    src,
                    span: None,
                    exact_spans: false,
                });
            }
        }
        Ok(())
    }
}

/// Gives the blocks and attributes of a JSON or TOML file the position of their key in the
/// text (best effort: the first match of the key path in order).
fn locate_keys(blocks: &mut [Block], attrs: &mut [Attr], src: usize, text: &str) {
    for a in attrs
        .iter_mut()
        .filter(|a| a.src == src && a.span.is_none())
    {
        a.span = locate_key_path(text, &[a.name.as_str()]);
    }
    for b in blocks
        .iter_mut()
        .filter(|b| b.src == src && b.span.is_none())
    {
        let label = b.name().to_string();
        b.span = locate_key_path(text, &[b.kind.as_str(), label.as_str()]);
        for a in &mut b.attrs {
            a.span = locate_key_path(text, &[b.kind.as_str(), label.as_str(), a.name.as_str()]);
        }
        for nested in &mut b.blocks {
            for a in &mut nested.attrs {
                a.span = locate_key_path(
                    text,
                    &[
                        b.kind.as_str(),
                        label.as_str(),
                        nested.kind.as_str(),
                        a.name.as_str(),
                    ],
                );
            }
        }
    }
}

/// Byte range of the last key of `path`, found in order in `text` (quoted or bare).
pub fn locate_key_path(text: &str, path: &[&str]) -> Option<Range<usize>> {
    let mut pos = 0;
    let mut last = None;
    for key in path {
        let (start, len) = find_key(text, pos, key)?;
        pos = start + len;
        last = Some(start..start + len);
    }
    last
}

fn find_key(text: &str, from: usize, key: &str) -> Option<(usize, usize)> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    let mut i = from;
    while let Some(off) = text.get(i..)?.find(key) {
        let start = i + off;
        let end = start + key.len();
        let before = text[..start].chars().next_back();
        let after = text[end..].chars().next();
        let quoted = before == Some('"') && after == Some('"');
        let bare = !before.is_some_and(is_word) && !after.is_some_and(is_word);
        if quoted || bare {
            return Some((start, key.len()));
        }
        i = end;
    }
    None
}

fn hcl_body(src: usize, body: &Body) -> (Vec<Block>, Vec<Attr>) {
    let mut blocks = Vec::new();
    let mut attrs = Vec::new();
    for structure in body.iter() {
        match structure {
            Structure::Attribute(attr) => attrs.push(Attr {
                name: attr.key.as_str().to_string(),
                expr: attr.value.clone(),
                src,
                span: attr.key.span(),
                exact_spans: true,
            }),
            Structure::Block(block) => {
                let labels = block
                    .labels
                    .iter()
                    .map(|l| match l {
                        BlockLabel::Ident(i) => i.as_str().to_string(),
                        BlockLabel::String(s) => s.as_str().to_string(),
                    })
                    .collect();
                let span = block
                    .labels
                    .first()
                    .and_then(|l| l.span())
                    .or_else(|| block.ident.span());
                let (nested, battrs) = hcl_body(src, &block.body);
                blocks.push(Block {
                    kind: block.ident.as_str().to_string(),
                    labels,
                    attrs: battrs,
                    blocks: nested,
                    src,
                    span,
                });
            }
        }
    }
    (blocks, attrs)
}

/// A JSON block value is one body object or an array of them.
fn json_bodies(v: &serde_json::Value) -> Vec<&serde_json::Value> {
    match v {
        serde_json::Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

fn json_block(
    src: usize,
    kind: &str,
    label: &str,
    body: &serde_json::Value,
) -> Result<Block, String> {
    let obj = body
        .as_object()
        .ok_or_else(|| format!("{kind} \"{label}\" must be an object"))?;
    let mut block = Block {
        kind: kind.to_string(),
        labels: vec![label.to_string()],
        attrs: Vec::new(),
        blocks: Vec::new(),
        src,
        span: None,
    };
    let nested = nested_block_kinds(kind);
    for (key, val) in obj {
        if key == "//" {
            continue;
        }
        if nested.contains(&key.as_str()) {
            for b in json_bodies(val) {
                let inner = b.as_object().ok_or_else(|| {
                    format!("{key} block in {kind} \"{label}\" must be an object")
                })?;
                let mut child = Block {
                    kind: key.clone(),
                    labels: Vec::new(),
                    attrs: Vec::new(),
                    blocks: Vec::new(),
                    src,
                    span: None,
                };
                for (k, v) in inner {
                    child.attrs.push(Attr {
                        name: k.clone(),
                        expr: json_expr(v)?,
                        src,
                        span: None,
                        exact_spans: false,
                    });
                }
                block.blocks.push(child);
            }
            continue;
        }
        let expr = match (kind, key.as_str()) {
            // Type constraints and parameter names are expressions written as strings.
            ("variable", "type") | ("function", "variadic_params") => match val {
                serde_json::Value::String(s) => json_keyword_expr(s)?,
                other => json_expr(other)?,
            },
            ("function", "params") => match val {
                serde_json::Value::Array(items) => {
                    let mut arr = Array::new();
                    for item in items {
                        arr.push(match item {
                            serde_json::Value::String(s) => json_keyword_expr(s)?,
                            other => json_expr(other)?,
                        });
                    }
                    Expression::Array(arr)
                }
                other => json_expr(other)?,
            },
            _ => json_expr(val)?,
        };
        block.attrs.push(Attr {
            name: key.clone(),
            expr,
            src,
            span: None,
            exact_spans: false,
        });
    }
    Ok(block)
}

/// A string that stands for an expression (a type, an identifier).
fn json_keyword_expr(s: &str) -> Result<Expression, String> {
    hcl_edit::parser::parse_expr(s)
        .map_err(|e| format!("invalid expression {s:?}: {}", e.message()))
}

/// A JSON value as an expression: strings are templates.
pub fn json_expr(v: &serde_json::Value) -> Result<Expression, String> {
    Ok(match v {
        serde_json::Value::Null => Expression::null(),
        serde_json::Value::Bool(b) => Expression::from(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Expression::from(i)
            } else if let Some(u) = n.as_u64() {
                Expression::from(u)
            } else {
                Expression::from(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => json_template(s)?,
        serde_json::Value::Array(items) => {
            let mut arr = Array::new();
            for item in items {
                arr.push(json_expr(item)?);
            }
            Expression::Array(arr)
        }
        serde_json::Value::Object(map) => {
            let mut obj = Object::new();
            for (k, v) in map {
                let key = if k.contains("${") || k.contains("%{") {
                    ObjectKey::Expression(json_template(k)?)
                } else {
                    match Ident::try_new(k.as_str()) {
                        Ok(ident) => ObjectKey::Ident(Decorated::new(ident)),
                        Err(_) => ObjectKey::Expression(Expression::from(k.as_str())),
                    }
                };
                obj.insert(key, ObjectValue::new(json_expr(v)?));
            }
            Expression::Object(obj)
        }
    })
}

fn json_template(s: &str) -> Result<Expression, String> {
    if !s.contains("${") && !s.contains("%{") {
        return Ok(Expression::from(s));
    }
    let template = hcl_edit::parser::parse_template(s)
        .map_err(|e| format!("invalid template {s:?}: {}", e.message()))?;
    Ok(Expression::StringTemplate(StringTemplate::from(template)))
}

fn toml_to_json(v: toml::Value) -> serde_json::Value {
    match v {
        toml::Value::String(s) => serde_json::Value::String(s),
        toml::Value::Integer(i) => serde_json::Value::from(i),
        toml::Value::Float(f) => serde_json::Value::from(f),
        toml::Value::Boolean(b) => serde_json::Value::Bool(b),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(toml_to_json).collect())
        }
        toml::Value::Table(t) => {
            serde_json::Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str, format: Format, text: &str) -> Document {
        let mut d = Document::default();
        d.add(Source {
            name: name.into(),
            text: text.into(),
            format,
        })
        .expect("parses");
        d
    }

    #[test]
    fn hcl_blocks_and_attrs() {
        let d = doc(
            "docker-bake.hcl",
            Format::Hcl,
            "X = 1\ntarget \"app\" {\n  tags = [\"a\"]\n}\nvariable \"V\" {\n  validation {\n    condition = true\n  }\n}\n",
        );
        assert_eq!(d.attrs.len(), 1);
        assert_eq!(d.blocks.len(), 2);
        assert_eq!(d.blocks[0].name(), "app");
        assert!(d.blocks[0].attr("tags").is_some());
        assert_eq!(d.blocks[1].blocks[0].kind, "validation");
    }

    #[test]
    fn json_and_toml_share_the_shape() {
        let j = doc(
            "docker-bake.json",
            Format::Json,
            r#"{"target": {"app": {"tags": ["x-${V}"]}}, "V": "1"}"#,
        );
        let t = doc(
            "kiln.toml",
            Format::Toml,
            "V = \"1\"\n[target.app]\ntags = [\"x-${V}\"]\n",
        );
        for d in [j, t] {
            assert_eq!(d.blocks.len(), 1);
            assert_eq!(d.blocks[0].kind, "target");
            assert_eq!(d.attrs[0].name, "V");
        }
    }

    #[test]
    fn hcl_syntax_error_has_position() {
        let mut d = Document::default();
        let err = d
            .add(Source {
                name: "docker-bake.hcl".into(),
                text: "target \"a\" {\n  tags = [\n}\n".into(),
                format: Format::Hcl,
            })
            .expect_err("must fail");
        assert!(err.line.is_some());
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é\nx", 3), (2, 1));
    }
}
