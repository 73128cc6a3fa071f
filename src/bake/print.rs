//! `--print` and `--list` output, byte-compatible with `docker buildx bake`.

use super::eval::context::VariableInfo;
use super::resolve::Resolved;
use serde_json::{Map, Value as Json};

/// The JSON document `--print` writes (with a trailing newline).
pub fn print_json(r: &Resolved) -> String {
    let mut root = Map::new();
    if !r.groups.is_empty() {
        root.insert(
            "group".into(),
            Json::Object(
                r.groups
                    .iter()
                    .map(|(k, g)| (k.clone(), g.to_json()))
                    .collect(),
            ),
        );
    }
    root.insert(
        "target".into(),
        Json::Object(
            r.targets
                .iter()
                .map(|(k, t)| (k.clone(), t.to_json()))
                .collect(),
        ),
    );
    let mut s = go_json_indent(&Json::Object(root));
    s.push('\n');
    s
}

/// JSON as Go's `json.MarshalIndent(v, "", "  ")` writes it: HTML-sensitive characters
/// escaped as `\u003c` etc.
pub fn go_json_indent(v: &Json) -> String {
    let s = serde_json::to_string_pretty(v).unwrap_or_default();
    go_escape(&s)
}

/// Go escapes `<`, `>`, `&`, U+2028 and U+2029 in JSON strings.
pub fn go_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// `--list variables` as a table or JSON.
pub fn list_variables(vars: &[VariableInfo], json: bool) -> String {
    let mut vars = vars.to_vec();
    vars.sort_by(|a, b| a.name.cmp(&b.name));
    if json {
        let arr: Vec<Json> = vars
            .iter()
            .map(|v| {
                let mut m = Map::new();
                m.insert("name".into(), Json::String(v.name.clone()));
                if !v.description.is_empty() {
                    m.insert("description".into(), Json::String(v.description.clone()));
                }
                if let Some(t) = &v.type_name {
                    m.insert("type".into(), Json::String(t.clone()));
                }
                if let Some(val) = &v.value {
                    m.insert("value".into(), Json::String(val.clone()));
                }
                Json::Object(m)
            })
            .collect();
        return go_json_indent(&Json::Array(arr)) + "\n";
    }
    let rows: Vec<Vec<String>> = std::iter::once(vec![
        "VARIABLE".to_string(),
        "TYPE".into(),
        "VALUE".into(),
        "DESCRIPTION".into(),
    ])
    .chain(vars.iter().map(|v| {
        vec![
            v.name.clone(),
            v.type_name.clone().unwrap_or_default(),
            v.value.clone().unwrap_or_else(|| "<null>".into()),
            v.description.clone(),
        ]
    }))
    .collect();
    tab_table(&rows)
}

/// One row per target or group for `--list targets`.
pub struct ListEntry {
    pub name: String,
    pub description: String,
    pub group: bool,
}

pub fn list_targets(entries: &[ListEntry], json: bool) -> String {
    if json {
        let arr: Vec<Json> = entries
            .iter()
            .map(|e| {
                let mut m = Map::new();
                m.insert("name".into(), Json::String(e.name.clone()));
                if !e.description.is_empty() {
                    m.insert("description".into(), Json::String(e.description.clone()));
                }
                if e.group {
                    m.insert("group".into(), Json::Bool(true));
                }
                Json::Object(m)
            })
            .collect();
        let v = if arr.is_empty() {
            Json::Null
        } else {
            Json::Array(arr)
        };
        return go_json_indent(&v) + "\n";
    }
    let rows: Vec<Vec<String>> = std::iter::once(vec!["TARGET".to_string(), "DESCRIPTION".into()])
        .chain(
            entries
                .iter()
                .map(|e| vec![e.name.clone(), e.description.clone()]),
        )
        .collect();
    tab_table(&rows)
}

/// Go's tabwriter with minwidth 1, tabwidth 8, padding 1, padchar '\t': each column is
/// padded with tabs to a multiple of 8 after the widest cell plus one.
fn tab_table(rows: &[Vec<String>]) -> String {
    let ncols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; ncols];
    for r in rows {
        for (i, c) in r.iter().enumerate().take(ncols.saturating_sub(1)) {
            widths[i] = widths[i].max(c.chars().count() + 1);
        }
    }
    let mut out = String::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            out.push_str(c);
            if i + 1 < r.len() {
                let w = widths[i].div_ceil(8) * 8;
                let len = c.chars().count();
                let tabs = (w - len).div_ceil(8).max(1);
                out.push_str(&"\t".repeat(tabs));
            }
        }
        out.push('\n');
    }
    out
}
