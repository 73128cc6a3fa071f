//! Execution of parsed templates: field access, functions, control flow, printing.

use super::{err, Arg, Node, Pipe};
use crate::oci::imagetools::value::Value;
use crate::oci::OciError;

pub(super) struct Exec {
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
                if f.name == name {
                    return Ok(f.value.clone());
                }
            }
            for f in fields.iter().filter(|f| f.inline) {
                if let Ok(x) = field(&f.value, name) {
                    return Ok(x);
                }
            }
            Err(format!(
                "can't evaluate field {name} in type {}",
                type_name(v)
            ))
        }
        Value::Map { entries, iface } => Ok(entries
            .as_ref()
            .and_then(|m| m.get(name).cloned())
            .unwrap_or(if *iface {
                Value::Invalid
            } else {
                Value::Str(String::new())
            })),
        Value::Json(serde_json::Value::Object(o)) => Ok(o
            .get(name)
            .cloned()
            .map(Value::Json)
            .unwrap_or(Value::Invalid)),
        Value::Json(serde_json::Value::Null) | Value::Nil | Value::Invalid => {
            Err(format!("nil pointer evaluating interface {{}}.{name}"))
        }
        _ => Err(format!(
            "can't evaluate field {name} in type {}",
            type_name(v)
        )),
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
            Ok(entries
                .as_ref()
                .and_then(|m| m.get(&k).cloned())
                // `index` gives the zero value of the element type
                .unwrap_or(if *iface {
                    Value::Nil
                } else {
                    Value::Str(String::new())
                }))
        }
        Value::Json(serde_json::Value::Object(o)) => {
            let k = key_str.ok_or("value has type int; should be string")?;
            Ok(o.get(&k).cloned().map(Value::Json).unwrap_or(Value::Nil))
        }
        Value::Slice(items) => {
            let i = key_int.ok_or("cannot index slice/array with type string")?;
            let items = items.as_deref().unwrap_or(&[]);
            usize::try_from(i)
                .ok()
                .and_then(|i| items.get(i).cloned())
                .ok_or_else(|| format!("index out of range: {i}"))
        }
        Value::Json(serde_json::Value::Array(a)) => {
            let i = key_int.ok_or("cannot index slice/array with type string")?;
            usize::try_from(i)
                .ok()
                .and_then(|i| a.get(i).cloned())
                .map(Value::Json)
                .ok_or_else(|| format!("index out of range: {i}"))
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

/// Go's `fmt.Sprintf` for the verbs templates use: %s %v %d %q %t %%.
fn sprintf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(verb) => match args.next() {
                Some(v) => match verb {
                    'q' => {
                        let mut q = String::new();
                        crate::oci::imagetools::value::json_string(&mut q, &v.print());
                        out.push_str(&q);
                    }
                    's' | 'v' | 'd' | 't' => out.push_str(&v.print()),
                    other => out.push_str(&format!("%!{other}({})", v.print())),
                },
                None => out.push_str(&format!("%!{verb}(MISSING)")),
            },
            None => out.push_str("%!(NOVERB)"),
        }
    }
    let extra: Vec<String> = args.map(|v| v.print()).collect();
    if !extra.is_empty() {
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

impl Exec {
    pub(super) fn new(dot: &Value) -> Exec {
        Exec {
            vars: vec![("$".to_string(), dot.clone())],
            out: String::new(),
        }
    }

    pub(super) fn into_output(self) -> String {
        self.out
    }

    fn var(&self, name: &str) -> Result<Value, String> {
        let key = if name.is_empty() {
            "$".to_string()
        } else {
            format!("${name}")
        };
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

    fn call(
        &mut self,
        name: &str,
        args: &[Arg],
        piped: Option<Value>,
        dot: &Value,
    ) -> Result<Value, String> {
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
                Err(format!(
                    "wrong number of args for {name}: want {n} got {}",
                    vals.len()
                ))
            }
        };
        match name {
            "json" => {
                want(1)?;
                Ok(Value::Str(vals[0].to_json()))
            }
            "index" => {
                let (first, keys) = vals
                    .split_first()
                    .ok_or("wrong number of args for index: want at least 1 got 0")?;
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
            "printf" => {
                let (fmt, rest) = vals
                    .split_first()
                    .ok_or("wrong number of args for printf: want at least 1 got 0")?;
                let Value::Str(fmt) = fmt.indirect() else {
                    return Err("printf: format is not a string".into());
                };
                Ok(Value::Str(sprintf(fmt, rest)))
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
                    return Err("missing argument for comparison".to_string());
                }
                let eq = vals[1..].iter().any(|b| basic_eq(&vals[0], b));
                Ok(Value::Bool(if name == "eq" { eq } else { !eq }))
            }
            "not" => {
                want(1)?;
                Ok(Value::Bool(!vals[0].truthy()))
            }
            "and" => Ok(vals
                .iter()
                .find(|v| !v.truthy())
                .or(vals.last())
                .cloned()
                .unwrap_or(Value::Nil)),
            "or" => Ok(vals
                .iter()
                .find(|v| v.truthy())
                .or(vals.last())
                .cloned()
                .unwrap_or(Value::Nil)),
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

    pub(super) fn walk(&mut self, nodes: &[Node], dot: &Value) -> Result<(), OciError> {
        for n in nodes {
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action { pipe, pos, src } => {
                    let v = self.pipe(pipe, dot).map_err(|m| {
                        err(format!(
                            "template: :{}:{}: executing \"\" at <{src}>: {m}",
                            pos.0, pos.1
                        ))
                    })?;
                    if pipe.decl.is_empty() {
                        self.out.push_str(&v.print());
                    }
                }
                Node::If {
                    pipe,
                    then,
                    otherwise,
                } => {
                    let v = self.pipe(pipe, dot).map_err(err)?;
                    self.walk(if v.truthy() { then } else { otherwise }, dot)?;
                }
                Node::With {
                    pipe,
                    body,
                    otherwise,
                } => {
                    let v = self
                        .pipe(
                            &Pipe {
                                decl: vec![],
                                cmds: pipe.cmds.clone(),
                            },
                            dot,
                        )
                        .map_err(err)?;
                    if v.truthy() {
                        self.walk(body, &v)?;
                    } else {
                        self.walk(otherwise, dot)?;
                    }
                }
                Node::Range {
                    pipe,
                    body,
                    otherwise,
                } => {
                    let v = self
                        .pipe(
                            &Pipe {
                                decl: vec![],
                                cmds: pipe.cmds.clone(),
                            },
                            dot,
                        )
                        .map_err(err)?;
                    let items: Vec<(Value, Value)> = match v.indirect() {
                        Value::Slice(items) => items
                            .iter()
                            .flatten()
                            .enumerate()
                            .map(|(i, x)| (Value::Int(i as i64), x.clone()))
                            .collect(),
                        Value::Map { entries, .. } => entries
                            .iter()
                            .flatten()
                            .map(|(k, x)| (Value::Str(k.clone()), x.clone()))
                            .collect(),
                        Value::Json(serde_json::Value::Array(a)) => a
                            .iter()
                            .enumerate()
                            .map(|(i, x)| (Value::Int(i as i64), Value::Json(x.clone())))
                            .collect(),
                        Value::Json(serde_json::Value::Object(o)) => {
                            let sorted: std::collections::BTreeMap<_, _> = o.iter().collect();
                            sorted
                                .into_iter()
                                .map(|(k, x)| (Value::Str(k.clone()), Value::Json(x.clone())))
                                .collect()
                        }
                        Value::Nil | Value::Invalid | Value::Json(serde_json::Value::Null) => {
                            vec![]
                        }
                        other => {
                            return Err(err(format!("range can't iterate over {}", other.print())))
                        }
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
