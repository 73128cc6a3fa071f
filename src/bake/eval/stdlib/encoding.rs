//! Encodings and conversions: base64decode, base64encode, byteslen, bytesslice, convert,
//! csvdecode, jsondecode, jsonencode, urlencode.

use std::collections::BTreeMap;

use base64::Engine as _;

use super::args::{any, present, string};
use super::FuncError;
use crate::bake::eval::convert::{self, format_number};
use crate::bake::eval::value::{Number, Type, Value};

pub(super) fn base64encode(a: &[Value]) -> Result<Value, FuncError> {
    let s = string(a, 0)?;
    Ok(Value::String(
        base64::engine::general_purpose::STANDARD.encode(s.as_bytes()),
    ))
}

/// Go's `base64.StdEncoding` decoding: padding required, `\r`/`\n` ignored, non-zero
/// trailing bits accepted.
pub(crate) fn go_base64_decode(s: &str) -> Option<Vec<u8>> {
    const ENGINE: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireCanonical),
    );
    let clean: String = s.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    ENGINE.decode(clean.as_bytes()).ok()
}

pub(super) fn base64decode(a: &[Value]) -> Result<Value, FuncError> {
    let s = string(a, 0)?;
    let bytes = go_base64_decode(&s)
        .ok_or_else(|| FuncError::new(format!("failed to decode base64 data '{s}'")))?;
    String::from_utf8(bytes).map(Value::String).map_err(|_| {
        FuncError::new("the result of decoding the the provided string is not valid UTF-8")
    })
}

/// Go's `url.QueryEscape`.
pub(super) fn urlencode(a: &[Value]) -> Result<Value, FuncError> {
    let s = string(a, 0)?;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    Ok(Value::String(out))
}

/// The "bytes" capsule type cannot be written in bake: any argument is a mismatch.
fn bytes_required(a: &[Value]) -> FuncError {
    let got = a.first().map(Value::type_of).unwrap_or(Type::Dynamic);
    FuncError::arg(
        0,
        format!("bytes required, but have {}", got.friendly_name()),
    )
}

pub(super) fn byteslen(a: &[Value]) -> Result<Value, FuncError> {
    Err(bytes_required(a))
}

pub(super) fn bytesslice(a: &[Value]) -> Result<Value, FuncError> {
    Err(bytes_required(a))
}

/// `convert(value, type)`: `type` is the type expression's source text (see the module
/// documentation of `stdlib`).
pub(super) fn convert(a: &[Value]) -> Result<Value, FuncError> {
    let v = any(a, 0)?;
    let ty = match present(a, 1)? {
        Value::String(s) => {
            convert::parse_type_expr(s).map_err(|e| FuncError::arg(1, e.message))?
        }
        _ => return Err(FuncError::arg(1, "a type expression is required")),
    };
    if v.contains_unknown() {
        return Ok(Value::Unknown(ty));
    }
    convert::convert(v, &ty).map_err(|e| FuncError::arg(0, e.message))
}

/// Appends `s` as a JSON string the way Go's encoder writes it (HTML-safe escapes).
pub(crate) fn json_quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// cty's JSON encoding of a known value: objects and maps with sorted keys, numbers as
/// cty prints them, null as `null`.
pub(crate) fn to_json(v: &Value, out: &mut String) -> Result<(), FuncError> {
    match v {
        Value::Null(_) => out.push_str("null"),
        Value::Unknown(_) => return Err(FuncError::new("value is not known")),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if n.as_f64().is_infinite() || n.as_f64().is_nan() {
                return Err(FuncError::new("can't serialize infinity or NaN as JSON"));
            }
            out.push_str(&format_number(*n))
        }
        Value::String(s) => json_quote(s, out),
        Value::List(e) | Value::Set(e) | Value::Tuple(e) => {
            out.push('[');
            for (i, x) in e.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                to_json(x, out)?;
            }
            out.push(']');
        }
        Value::Map(m) | Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_quote(k, out);
                out.push(':');
                to_json(x, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

pub(super) fn jsonencode(a: &[Value]) -> Result<Value, FuncError> {
    let v = any(a, 0)?;
    let mut out = String::new();
    to_json(v, &mut out)?;
    Ok(Value::String(out))
}

fn from_json(j: serde_json::Value) -> Value {
    match j {
        serde_json::Value::Null => Value::null(),
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::int(i),
            None => Value::Number(Number::from_f64(n.as_f64().unwrap_or(f64::NAN))),
        },
        serde_json::Value::String(s) => Value::String(s),
        serde_json::Value::Array(a) => Value::Tuple(a.into_iter().map(from_json).collect()),
        serde_json::Value::Object(m) => {
            Value::Object(m.into_iter().map(|(k, v)| (k, from_json(v))).collect())
        }
    }
}

/// Go's wording for the common JSON syntax errors (cty decodes with Go's tokenizer).
fn json_error(src: &str, e: &serde_json::Error) -> String {
    let msg = e.to_string();
    if e.is_eof() {
        return "unexpected EOF".to_string();
    }
    if msg.starts_with("trailing characters") {
        return "extraneous data after JSON object".to_string();
    }
    // the offending character, from serde's 1-based line/column
    let bad = src
        .lines()
        .nth(e.line().saturating_sub(1))
        .and_then(|l| l.chars().nth(e.column().saturating_sub(1)));
    match bad {
        Some(c) if msg.starts_with("expected value") => {
            format!("invalid character {c:?} looking for beginning of value")
        }
        Some(c) if msg.starts_with("key must be a string") => {
            format!("invalid character {c:?} looking for beginning of object key string")
        }
        _ => msg,
    }
}

pub(super) fn jsondecode(a: &[Value]) -> Result<Value, FuncError> {
    let s = string(a, 0)?;
    if s.trim().is_empty() {
        return Err(FuncError::arg(
            0,
            "syntax error: unexpected end of JSON input",
        ));
    }
    let j: serde_json::Value =
        serde_json::from_str(&s).map_err(|e| FuncError::arg(0, json_error(&s, &e)))?;
    Ok(from_json(j))
}

/// Splits CSV text into records (RFC 4180, like Go's encoding/csv: `""` inside quotes,
/// CRLF as LF, blank lines skipped). Errors carry the 1-based line number.
fn parse_csv(s: &str) -> Result<Vec<Vec<String>>, (usize, String)> {
    let text = s.replace("\r\n", "\n");
    let chars: Vec<char> = text.chars().collect();
    let mut records = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < chars.len() {
        if chars[i] == '\n' {
            // blank line
            i += 1;
            line += 1;
            continue;
        }
        let record_line = line;
        let mut fields = Vec::new();
        loop {
            let mut field = String::new();
            if i < chars.len() && chars[i] == '"' {
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err((
                                record_line,
                                "extraneous or missing \" in quoted-field".into(),
                            ))
                        }
                        Some('"') if chars.get(i + 1) == Some(&'"') => {
                            field.push('"');
                            i += 2;
                        }
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some(c) => {
                            if *c == '\n' {
                                line += 1;
                            }
                            field.push(*c);
                            i += 1;
                        }
                    }
                }
                if !matches!(chars.get(i), None | Some(',') | Some('\n')) {
                    return Err((line, "extraneous or missing \" in quoted-field".into()));
                }
            } else {
                while let Some(&c) = chars.get(i) {
                    if c == ',' || c == '\n' {
                        break;
                    }
                    if c == '"' {
                        return Err((line, "bare \" in non-quoted-field".into()));
                    }
                    field.push(c);
                    i += 1;
                }
            }
            fields.push(field);
            match chars.get(i) {
                Some(',') => i += 1,
                Some('\n') => {
                    i += 1;
                    line += 1;
                    break;
                }
                _ => break,
            }
        }
        records.push(fields);
    }
    Ok(records)
}

pub(super) fn csvdecode(a: &[Value]) -> Result<Value, FuncError> {
    let s = string(a, 0)?;
    let records = parse_csv(&s)
        .map_err(|(line, msg)| FuncError::new(format!("CSV parse error on line {line}: {msg}")))?;
    let mut iter = records.into_iter();
    let Some(header) = iter.next() else {
        return Err(FuncError::new("missing header line"));
    };
    for (i, name) in header.iter().enumerate() {
        if header[..i].contains(name) {
            return Err(FuncError::new(format!("duplicate column name {name:?}")));
        }
    }
    let mut rows = Vec::new();
    for (n, rec) in iter.enumerate() {
        if rec.len() != header.len() {
            return Err(FuncError::new(format!(
                "CSV parse error on line {}: wrong number of fields",
                n + 2
            )));
        }
        let obj: BTreeMap<String, Value> = header
            .iter()
            .cloned()
            .zip(rec.into_iter().map(Value::String))
            .collect();
        rows.push(Value::Object(obj));
    }
    Ok(Value::List(rows))
}

/// Used by `format("%#v")` and friends.
pub(crate) fn json_string(v: &Value) -> Result<String, FuncError> {
    let mut out = String::new();
    to_json(v, &mut out)?;
    Ok(out)
}
