//! A small model of Go values, enough to render `imagetools inspect --format` output the
//! way Go does: `fmt` printing (`{a b}`, `map[k:v]`, `[x y]`, time values) and
//! `encoding/json` (struct field order, `omitempty`, sorted map keys, HTML escaping).

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One field of a Go struct.
#[derive(Debug, Clone)]
pub struct Field {
    /// The Go field name (template access: `.Name`).
    pub name: &'static str,
    /// The JSON key.
    pub json: &'static str,
    pub omitempty: bool,
    /// An embedded struct: its fields are promoted and its JSON keys inlined.
    pub inline: bool,
    pub value: Value,
}

impl Field {
    pub fn new(name: &'static str, json: &'static str, value: Value) -> Field {
        Field {
            name,
            json,
            omitempty: false,
            inline: false,
            value,
        }
    }
    pub fn omit(name: &'static str, json: &'static str, value: Value) -> Field {
        Field {
            name,
            json,
            omitempty: true,
            inline: false,
            value,
        }
    }
    /// A value reached by name in templates but never encoded as JSON (a Go method).
    pub fn method(name: &'static str, value: Value) -> Field {
        Field {
            name,
            json: "",
            omitempty: true,
            inline: false,
            value,
        }
    }
    pub fn inline(name: &'static str, value: Value) -> Field {
        Field {
            name,
            json: "",
            omitempty: false,
            inline: true,
            value,
        }
    }
}

/// A Go value.
#[derive(Debug, Clone)]
pub enum Value {
    /// An invalid (zero) reflect value: printed `<no value>` (missing key of an interface map).
    Invalid,
    /// A nil interface value.
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A `time.Time`, kept as its RFC 3339 text.
    Time(String),
    /// A slice; `None` is a nil slice.
    Slice(Option<Vec<Value>>),
    /// A `map[string]T`; `None` is a nil map. `iface` when T is an interface type.
    Map {
        entries: Option<BTreeMap<String, Value>>,
        iface: bool,
    },
    Struct {
        type_name: &'static str,
        fields: Vec<Field>,
    },
    /// A pointer; `None` is nil.
    Ptr(Option<Box<Value>>),
    /// An `interface{}` holding decoded JSON (`map[string]interface{}`, `[]interface{}`, ...).
    Json(serde_json::Value),
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    pub fn strings(v: &[String]) -> Value {
        if v.is_empty() {
            Value::Slice(None)
        } else {
            Value::Slice(Some(v.iter().map(|s| Value::Str(s.clone())).collect()))
        }
    }

    pub fn string_map(m: &BTreeMap<String, String>) -> Value {
        if m.is_empty() {
            return Value::Map {
                entries: None,
                iface: false,
            };
        }
        Value::Map {
            entries: Some(
                m.iter()
                    .map(|(k, v)| (k.clone(), Value::Str(v.clone())))
                    .collect(),
            ),
            iface: false,
        }
    }

    /// True when `omitempty` drops it.
    fn is_empty_value(&self) -> bool {
        match self {
            Value::Invalid | Value::Nil => true,
            Value::Bool(b) => !b,
            Value::Int(i) => *i == 0,
            Value::Float(f) => *f == 0.0,
            Value::Str(s) => s.is_empty(),
            Value::Time(_) => false,
            Value::Slice(v) => v.as_ref().is_none_or(|v| v.is_empty()),
            Value::Map { entries, .. } => entries.as_ref().is_none_or(|m| m.is_empty()),
            Value::Struct { .. } => false,
            Value::Ptr(p) => p.is_none(),
            Value::Json(j) => j.is_null(),
        }
    }

    /// Truth in `{{if}}`.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Struct { .. } | Value::Time(_) => true,
            Value::Json(j) => match j {
                serde_json::Value::Null => false,
                serde_json::Value::Bool(b) => *b,
                serde_json::Value::Number(n) => n.as_f64() != Some(0.0),
                serde_json::Value::String(s) => !s.is_empty(),
                serde_json::Value::Array(a) => !a.is_empty(),
                serde_json::Value::Object(o) => !o.is_empty(),
            },
            other => !other.is_empty_value(),
        }
    }

    /// Strips pointers (and interfaces holding them), as templates do before printing.
    pub fn indirect(&self) -> &Value {
        match self {
            Value::Ptr(Some(inner)) => inner.indirect(),
            other => other,
        }
    }

    /// `fmt.Sprint(v)` after the template's pointer indirection.
    pub fn print(&self) -> String {
        match self {
            Value::Invalid => "<no value>".to_string(),
            other => {
                let mut s = String::new();
                fmt_value(&mut s, other.indirect(), 0);
                s
            }
        }
    }

    /// `json.MarshalIndent(v, "", "  ")`.
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        json_value(&mut s, self, 0);
        s
    }
}

/// Go's `%v` of a float64 (shortest representation, exponent form for huge/tiny values).
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
        let s = format!("{f:e}");
        // Rust: 1e21 / 1.5e-7 ; Go: 1e+21 / 1.5e-07
        if let Some((m, e)) = s.split_once('e') {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            let digits = if digits.len() < 2 {
                format!("0{digits}")
            } else {
                digits.to_string()
            };
            return format!("{m}e{sign}{digits}");
        }
        return s;
    }
    if f.fract() == 0.0 {
        return format!("{}", f as i128);
    }
    format!("{f}")
}

/// Go's JSON encoding of a float64 (like `%v` but `e-07` style is kept and no `+Inf`).
fn json_float(f: f64) -> String {
    go_float(f)
}

/// `time.Time.String()` for an RFC 3339 timestamp: `2024-01-01 00:00:00 +0000 UTC`.
pub fn go_time_string(rfc3339: &str) -> String {
    let s = rfc3339.trim();
    let Some((date, rest)) = s.split_once(['T', 't']) else {
        return s.to_string();
    };
    let (clock, zone) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, None)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        (&rest[..i], Some(&rest[i..]))
    } else {
        (rest, None)
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((h, f)) => (h, f.trim_end_matches('0')),
        None => (clock, ""),
    };
    let frac = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    match zone {
        None => format!("{date} {hms}{frac} +0000 UTC"),
        Some(z) => {
            let compact = z.replace(':', "");
            format!("{date} {hms}{frac} {compact} {compact}")
        }
    }
}

fn fmt_json(out: &mut String, v: &serde_json::Value) {
    match v {
        serde_json::Value::Null => out.push_str("<nil>"),
        serde_json::Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        serde_json::Value::Number(n) => out.push_str(&go_float(n.as_f64().unwrap_or(0.0))),
        serde_json::Value::String(s) => out.push_str(s),
        serde_json::Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                fmt_json(out, x);
            }
            out.push(']');
        }
        serde_json::Value::Object(o) => {
            out.push_str("map[");
            let sorted: BTreeMap<_, _> = o.iter().collect();
            for (i, (k, x)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                fmt_json(out, x);
            }
            out.push(']');
        }
    }
}

fn fmt_value(out: &mut String, v: &Value, depth: usize) {
    match v {
        Value::Invalid => out.push_str("<invalid reflect.Value>"),
        Value::Nil => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&go_float(*f)),
        Value::Str(s) => out.push_str(s),
        Value::Time(t) => out.push_str(&go_time_string(t)),
        Value::Slice(items) => {
            out.push('[');
            for (i, x) in items.iter().flatten().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                fmt_value(out, x, depth + 1);
            }
            out.push(']');
        }
        Value::Map { entries, .. } => {
            out.push_str("map[");
            for (i, (k, x)) in entries.iter().flatten().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                fmt_value(out, x, depth + 1);
            }
            out.push(']');
        }
        Value::Struct { fields, .. } => {
            out.push('{');
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                fmt_value(out, &f.value, depth + 1);
            }
            out.push('}');
        }
        Value::Ptr(None) => out.push_str("<nil>"),
        Value::Ptr(Some(inner)) => {
            // fmt shows the address of nested pointers; at the top level it prints &{...}
            if depth == 0 {
                out.push('&');
            }
            fmt_value(out, inner, depth + 1);
        }
        Value::Json(j) => fmt_json(out, j),
    }
}

/// A Go JSON string literal with HTML escaping.
pub fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn newline(out: &mut String, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn json_object<'a>(
    out: &mut String,
    entries: impl Iterator<Item = (&'a str, JsonItem<'a>)>,
    depth: usize,
) {
    let entries: Vec<_> = entries.collect();
    if entries.is_empty() {
        out.push_str("{}");
        return;
    }
    out.push('{');
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline(out, depth + 1);
        json_string(out, k);
        out.push_str(": ");
        match v {
            JsonItem::Go(v) => json_value(out, v, depth + 1),
            JsonItem::Raw(v) => json_raw(out, v, depth + 1),
        }
    }
    newline(out, depth);
    out.push('}');
}

enum JsonItem<'a> {
    Go(&'a Value),
    Raw(&'a serde_json::Value),
}

fn struct_entries<'a>(fields: &'a [Field], acc: &mut Vec<(&'a str, JsonItem<'a>)>) {
    for f in fields {
        if f.inline {
            if let Value::Struct { fields, .. } = &f.value {
                struct_entries(fields, acc);
            }
            continue;
        }
        if f.json.is_empty() || (f.omitempty && f.value.is_empty_value()) {
            continue;
        }
        acc.push((f.json, JsonItem::Go(&f.value)));
    }
}

fn json_raw(out: &mut String, v: &serde_json::Value, depth: usize) {
    match v {
        serde_json::Value::Null => out.push_str("null"),
        serde_json::Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        serde_json::Value::Number(n) => out.push_str(&json_float(n.as_f64().unwrap_or(0.0))),
        serde_json::Value::String(s) => json_string(out, s),
        serde_json::Value::Array(a) => json_array(out, a.iter().map(JsonItem::Raw), depth),
        serde_json::Value::Object(o) => {
            let sorted: BTreeMap<&str, &serde_json::Value> =
                o.iter().map(|(k, v)| (k.as_str(), v)).collect();
            json_object(
                out,
                sorted.into_iter().map(|(k, v)| (k, JsonItem::Raw(v))),
                depth,
            )
        }
    }
}

fn json_array<'a>(out: &mut String, items: impl Iterator<Item = JsonItem<'a>>, depth: usize) {
    let items: Vec<_> = items.collect();
    if items.is_empty() {
        out.push_str("[]");
        return;
    }
    out.push('[');
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline(out, depth + 1);
        match v {
            JsonItem::Go(v) => json_value(out, v, depth + 1),
            JsonItem::Raw(v) => json_raw(out, v, depth + 1),
        }
    }
    newline(out, depth);
    out.push(']');
}

fn json_value(out: &mut String, v: &Value, depth: usize) {
    match v {
        Value::Invalid | Value::Nil | Value::Ptr(None) => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&json_float(*f)),
        Value::Str(s) | Value::Time(s) => json_string(out, s),
        Value::Slice(None) => out.push_str("null"),
        Value::Slice(Some(items)) => json_array(out, items.iter().map(JsonItem::Go), depth),
        Value::Map { entries: None, .. } => out.push_str("null"),
        Value::Map {
            entries: Some(m), ..
        } => json_object(
            out,
            m.iter().map(|(k, v)| (k.as_str(), JsonItem::Go(v))),
            depth,
        ),
        Value::Struct { fields, .. } => {
            let mut acc = Vec::new();
            struct_entries(fields, &mut acc);
            json_object(out, acc.into_iter(), depth)
        }
        Value::Ptr(Some(inner)) => json_value(out, inner, depth),
        Value::Json(j) => json_raw(out, j, depth),
    }
}

/// `json.MarshalIndent(v, "", "  ")` of a serde type whose field order follows the Go
/// struct (keys are written in the order serde produces them).
pub fn marshal_indent<T: serde::Serialize>(v: &T) -> Result<String, crate::oci::OciError> {
    let value = serde_json::to_value(v)
        .map_err(|e| crate::oci::OciError::invalid(format!("encoding JSON: {e}")))?;
    let mut out = String::new();
    ordered(&mut out, &value, 0);
    Ok(out)
}

fn ordered(out: &mut String, v: &serde_json::Value, depth: usize) {
    match v {
        serde_json::Value::String(s) => json_string(out, s),
        serde_json::Value::Array(a) if !a.is_empty() => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                ordered(out, x, depth + 1);
            }
            newline(out, depth);
            out.push(']');
        }
        serde_json::Value::Object(o) if !o.is_empty() => {
            out.push('{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                json_string(out, k);
                out.push_str(": ");
                ordered(out, x, depth + 1);
            }
            newline(out, depth);
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_go() {
        let platform = Value::Struct {
            type_name: "v1.Platform",
            fields: vec![
                Field::new("Architecture", "architecture", Value::str("amd64")),
                Field::new("OS", "os", Value::str("linux")),
                Field::omit("OSVersion", "os.version", Value::str("")),
                Field::omit("OSFeatures", "os.features", Value::Slice(None)),
                Field::omit("Variant", "variant", Value::str("")),
            ],
        };
        assert_eq!(
            Value::Ptr(Some(Box::new(platform.clone()))).print(),
            "{amd64 linux  [] }"
        );
        assert_eq!(
            platform.to_json(),
            "{\n  \"architecture\": \"amd64\",\n  \"os\": \"linux\"\n}"
        );
        assert_eq!(
            go_time_string("2024-01-01T00:00:00Z"),
            "2024-01-01 00:00:00 +0000 UTC"
        );
        assert_eq!(
            go_time_string("2024-01-01T00:00:00.5+02:00"),
            "2024-01-01 00:00:00.5 +0200 +0200"
        );
        let mut s = String::new();
        json_string(&mut s, "<b>&amp;</b>");
        assert_eq!(s, r#""\u003cb\u003e\u0026amp;\u003c/b\u003e""#);
        assert_eq!(go_float(30.0), "30");
        assert_eq!(go_float(1e21), "1e+21");
        let j = Value::Json(serde_json::json!({"b": 1, "a": [true, "x"]}));
        assert_eq!(j.print(), "map[a:[true x] b:1]");
        assert_eq!(Value::Json(serde_json::json!({})).to_json(), "{}");
    }
}
