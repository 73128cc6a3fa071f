//! Evaluation of one HCL expression to a [`Value`].
//!
//! Names are looked up in the local scopes (for-expressions, function parameters, matrix
//! values) and then through a [`Resolver`], which resolves variables, block references
//! (`target.app.tags`) and user functions lazily, in dependency order.

use super::stdlib;
use super::value::{Number, Type, Value};
use hcl_edit::expr::{
    BinaryOperator, Expression, ForExpr, ObjectKey, TraversalOperator, UnaryOperator,
};
use hcl_edit::template::{Directive, Element, Strip, Template};
use hcl_edit::Span;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

/// An evaluation error: a summary, a detail, and where (source index and byte span).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{summary}: {detail}")]
pub struct EvalError {
    pub summary: String,
    pub detail: String,
    pub src: Option<usize>,
    pub span: Option<Range<usize>>,
}

impl EvalError {
    pub fn new(summary: impl Into<String>, detail: impl Into<String>) -> Self {
        EvalError {
            summary: summary.into(),
            detail: detail.into(),
            src: None,
            span: None,
        }
    }

    /// Sets the location if none is set yet (the innermost location wins).
    pub fn at(mut self, src: usize, span: Option<Range<usize>>) -> Self {
        if self.src.is_none() {
            self.src = Some(src);
            self.span = span;
        }
        self
    }
}

/// Lazily resolves what an expression refers to.
pub trait Resolver {
    /// A root name: a variable, a global attribute or a built-in. `Ok(None)` if undefined.
    fn variable(&mut self, name: &str) -> Result<Option<Value>>;
    /// Whether `name` is a block type (`target`, `group`) that can be referenced.
    fn is_block_kind(&self, name: &str) -> bool;
    /// Names of all variables (for "did you mean" hints).
    fn names(&self) -> Vec<String>;
    /// Counts one evaluation step; fails when the file has used up its budget.
    fn tick(&mut self) -> Result<()>;
    /// `kind.name` (whole block) or `kind.name.attr`.
    fn block_ref(&mut self, kind: &str, name: &str, attr: Option<&str>) -> Result<Value>;
    /// Calls a user-defined function; `None` if there is no such function.
    fn user_function(&mut self, name: &str, args: &[Value]) -> Option<Result<Value>>;
}

/// Evaluates expressions of one source file.
pub struct Evaluator<'r> {
    resolver: &'r mut dyn Resolver,
    scopes: Vec<HashMap<String, Value>>,
    src: usize,
    /// Where errors point when the expression's own spans are not file positions (JSON and
    /// TOML files: their expressions are parsed from strings).
    anchor: Option<Option<Range<usize>>>,
}

type Result<T> = std::result::Result<T, EvalError>;

impl<'r> Evaluator<'r> {
    pub fn new(resolver: &'r mut dyn Resolver, src: usize) -> Self {
        Evaluator {
            resolver,
            scopes: Vec::new(),
            src,
            anchor: None,
        }
    }

    /// Makes every error point at `span` instead of the sub-expression that failed.
    pub fn anchored(mut self, span: Option<Range<usize>>) -> Self {
        self.anchor = Some(span);
        self
    }

    fn span_of(&self, expr: &impl Span) -> Option<Range<usize>> {
        match &self.anchor {
            Some(a) => a.clone(),
            None => expr.span(),
        }
    }

    /// Adds a scope of local names (matrix values, function parameters).
    pub fn with_scope(mut self, scope: HashMap<String, Value>) -> Self {
        self.scopes.push(scope);
        self
    }

    pub fn eval(&mut self, expr: &Expression) -> Result<Value> {
        let src = self.src;
        let span = self.span_of(expr);
        self.resolver.tick().map_err(|e| e.at(src, span.clone()))?;
        self.eval_inner(expr).map_err(|e| e.at(src, span))
    }

    fn local(&self, name: &str) -> Option<&Value> {
        self.scopes.iter().rev().find_map(|s| s.get(name))
    }

    fn eval_inner(&mut self, expr: &Expression) -> Result<Value> {
        match expr {
            Expression::Null(_) => Ok(Value::null()),
            Expression::Bool(b) => Ok(Value::Bool(**b)),
            Expression::Number(n) => Ok(Value::Number(hcl_number(n))),
            Expression::String(s) => Ok(Value::String(s.to_string())),
            Expression::Array(arr) => {
                let mut out = Vec::with_capacity(arr.len());
                for e in arr.iter() {
                    out.push(self.eval(e)?);
                }
                Ok(Value::Tuple(out))
            }
            Expression::Object(obj) => {
                let mut out = BTreeMap::new();
                for (key, val) in obj.iter() {
                    let k = match key {
                        ObjectKey::Ident(i) => i.as_str().to_string(),
                        ObjectKey::Expression(e) => {
                            let kv = self.eval(e)?;
                            match kv {
                                Value::Unknown(_) => return Ok(Value::Unknown(Type::Dynamic)),
                                other => to_template_string(&other).map_err(|d| {
                                    EvalError::new("Incorrect key type", d)
                                        .at(self.src, self.span_of(e))
                                })?,
                            }
                        }
                    };
                    let v = self.eval(val.expr())?;
                    out.insert(k, v);
                }
                Ok(Value::Object(out))
            }
            Expression::StringTemplate(t) => self.eval_template(t),
            Expression::HeredocTemplate(h) => self.eval_template(&h.template),
            Expression::Parenthesis(p) => self.eval(p.inner()),
            Expression::Variable(v) => self.variable(v.as_str()),
            Expression::Conditional(c) => {
                let cond = self.eval(&c.cond_expr)?;
                match cond {
                    Value::Unknown(_) => Ok(Value::Unknown(Type::Dynamic)),
                    Value::Null(_) => Err(EvalError::new(
                        "Null condition",
                        "The condition value is null. Conditions must either be true or false.",
                    )
                    .at(self.src, self.span_of(&c.cond_expr))),
                    other => match as_bool(&other) {
                        Some(true) => self.eval(&c.true_expr),
                        Some(false) => self.eval(&c.false_expr),
                        None => Err(EvalError::new(
                            "Incorrect condition type",
                            "The condition expression must be of type bool.",
                        )
                        .at(self.src, self.span_of(&c.cond_expr))),
                    },
                }
            }
            Expression::FuncCall(call) => {
                let name = call.name.name.as_str();
                if name == "try" || name == "can" {
                    return self.lazy_call(name, call.args.iter().collect());
                }
                if name == "convert" && call.args.len() == 2 {
                    return self.convert_call(call.args.iter().collect());
                }
                let mut args = Vec::with_capacity(call.args.len());
                for a in call.args.iter() {
                    args.push(self.eval(a)?);
                }
                if call.args.expand_final() {
                    if let Some(last) = args.pop() {
                        match last.as_seq() {
                            Some(items) => args.extend(items.iter().cloned()),
                            None => {
                                return Err(EvalError::new(
                                    "Invalid expanding argument value",
                                    "The expanding argument (indicated by ...) must be of a tuple, list, or set type.",
                                ))
                            }
                        }
                    }
                }
                self.call(name, &args)
            }
            Expression::Traversal(t) => self.traversal(&t.expr, &t.operators),
            Expression::UnaryOp(op) => {
                let v = self.eval(&op.expr)?;
                if v.is_unknown() {
                    return Ok(Value::Unknown(Type::Dynamic));
                }
                match *op.operator.value() {
                    UnaryOperator::Neg => {
                        let n = as_number(&v).ok_or_else(|| {
                            EvalError::new(
                                "Invalid operand",
                                "Unsuitable value for unary operand: a number is required.",
                            )
                        })?;
                        Ok(Value::Number(match n {
                            Number::Int(i) => i
                                .checked_neg()
                                .map(Number::Int)
                                .unwrap_or(Number::Float(-(i as f64))),
                            Number::Float(f) => Number::from_f64(-f),
                        }))
                    }
                    UnaryOperator::Not => {
                        let b = as_bool(&v).ok_or_else(|| {
                            EvalError::new(
                                "Invalid operand",
                                "Unsuitable value for unary operand: bool required.",
                            )
                        })?;
                        Ok(Value::Bool(!b))
                    }
                }
            }
            Expression::BinaryOp(op) => {
                let l = self.eval(&op.lhs_expr)?;
                let r = self.eval(&op.rhs_expr)?;
                binary(*op.operator.value(), &l, &r)
            }
            Expression::ForExpr(f) => self.for_expr(f),
        }
    }

    fn variable(&mut self, name: &str) -> Result<Value> {
        if let Some(v) = self.local(name) {
            return Ok(v.clone());
        }
        if self.resolver.is_block_kind(name) {
            return Err(EvalError::new(
                "Invalid expression",
                format!("cannot access {name} as a variable"),
            ));
        }
        match self.resolver.variable(name)? {
            Some(v) => Ok(v),
            None => {
                let mut detail = format!("There is no variable named \"{name}\".");
                let mut names = self.resolver.names();
                names.extend(self.scopes.iter().flat_map(|s| s.keys().cloned()));
                if let Some(s) =
                    crate::bake::suggest::closest(name, names.iter().map(String::as_str))
                {
                    detail.push_str(&format!(" Did you mean \"{s}\"?"));
                }
                Err(EvalError::new("Unknown variable", detail))
            }
        }
    }

    fn traversal(
        &mut self,
        root: &Expression,
        ops: &[hcl_edit::Decorated<TraversalOperator>],
    ) -> Result<Value> {
        let mut rest = ops;
        let mut value = match root {
            Expression::Variable(v)
                if self.local(v.as_str()).is_none() && self.resolver.is_block_kind(v.as_str()) =>
            {
                let kind = v.as_str().to_string();
                let Some((first, tail)) = ops.split_first() else {
                    return Err(EvalError::new(
                        "Invalid expression",
                        format!("cannot access {kind} as a variable"),
                    ));
                };
                let name = match first.value() {
                    TraversalOperator::GetAttr(a) => a.as_str().to_string(),
                    TraversalOperator::Index(e) => match self.eval(e)? {
                        Value::String(s) => s,
                        _ => {
                            return Err(EvalError::new(
                                "Invalid expression",
                                format!("cannot traverse {kind} without attribute"),
                            ))
                        }
                    },
                    _ => {
                        return Err(EvalError::new(
                            "Invalid expression",
                            format!("cannot traverse {kind} without attribute"),
                        ))
                    }
                };
                match tail.split_first() {
                    Some((second, tail2)) => match second.value() {
                        TraversalOperator::GetAttr(a) => {
                            rest = tail2;
                            self.resolver.block_ref(&kind, &name, Some(a.as_str()))?
                        }
                        _ => {
                            rest = tail;
                            self.resolver.block_ref(&kind, &name, None)?
                        }
                    },
                    None => {
                        rest = tail;
                        self.resolver.block_ref(&kind, &name, None)?
                    }
                }
            }
            other => self.eval(other)?,
        };
        let mut i = 0;
        while i < rest.len() {
            let op = &rest[i];
            match op.value() {
                TraversalOperator::GetAttr(a) => {
                    value = get_attr(&value, a.as_str())
                        .map_err(|e| e.at(self.src, self.span_of(op)))?;
                }
                TraversalOperator::Index(e) => {
                    let key = self.eval(e)?;
                    value = index(&value, &key).map_err(|err| err.at(self.src, self.span_of(e)))?;
                }
                TraversalOperator::LegacyIndex(n) => {
                    value = index(&value, &Value::int(**n as i64))
                        .map_err(|e| e.at(self.src, self.span_of(op)))?;
                }
                TraversalOperator::AttrSplat(_) | TraversalOperator::FullSplat(_) => {
                    let full = matches!(op.value(), TraversalOperator::FullSplat(_));
                    let items: Vec<Value> = match &value {
                        Value::Null(_) => Vec::new(),
                        Value::Unknown(_) => return Ok(Value::Unknown(Type::Dynamic)),
                        v => match v.as_seq() {
                            Some(s) => s.to_vec(),
                            None => vec![v.clone()],
                        },
                    };
                    let was_seq = value.as_seq().is_some() || value.is_null();
                    // Attribute splats apply only the following attribute accesses.
                    let tail = &rest[i + 1..];
                    let take = if full {
                        tail.len()
                    } else {
                        tail.iter()
                            .take_while(|o| matches!(o.value(), TraversalOperator::GetAttr(_)))
                            .count()
                    };
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        let mut v = item;
                        for o in &tail[..take] {
                            v = match o.value() {
                                TraversalOperator::GetAttr(a) => get_attr(&v, a.as_str())?,
                                TraversalOperator::Index(e) => {
                                    let k = self.eval(e)?;
                                    index(&v, &k)?
                                }
                                TraversalOperator::LegacyIndex(n) => {
                                    index(&v, &Value::int(**n as i64))?
                                }
                                _ => v,
                            };
                        }
                        out.push(v);
                    }
                    value = if was_seq {
                        Value::Tuple(out)
                    } else {
                        out.into_iter().next().unwrap_or(Value::null())
                    };
                    i += take;
                }
            }
            i += 1;
        }
        Ok(value)
    }

    fn call(&mut self, name: &str, args: &[Value]) -> Result<Value> {
        if let Some(f) = stdlib::lookup(name) {
            if !f.accepts(args.len()) {
                return Err(arity_error(name, f.params, f.variadic, args.len()));
            }
            return f.call(args).map_err(|e| {
                let detail = match e.arg.and_then(|i| f.params.get(i).or(f.variadic.as_ref())) {
                    Some(p) => format!("Invalid value for \"{p}\" parameter: {}.", e.message),
                    None => format!("Call to function \"{name}\" failed: {}.", e.message),
                };
                let summary = if e.arg.is_some() {
                    "Invalid function argument"
                } else {
                    "Error in function call"
                };
                EvalError::new(summary, detail)
            });
        }
        match self.resolver.user_function(name, args) {
            Some(r) => r,
            None => {
                let mut detail = format!("There is no function named \"{name}\".");
                if let Some(s) = crate::bake::suggest::closest(name, stdlib::names()) {
                    detail.push_str(&format!(" Did you mean \"{s}\"?"));
                }
                Err(EvalError::new("Call to unknown function", detail))
            }
        }
    }

    /// `try(a, b, ...)` returns the first argument that evaluates without error;
    /// `can(x)` tells whether `x` evaluates without error.
    fn lazy_call(&mut self, name: &str, args: Vec<&Expression>) -> Result<Value> {
        if name == "can" {
            if args.len() != 1 {
                return Err(arity_error("can", &["expression"], None, args.len()));
            }
            return Ok(match self.eval(args[0]) {
                Ok(v) if v.contains_unknown() => Value::Unknown(Type::Bool),
                Ok(_) => Value::Bool(true),
                Err(_) => Value::Bool(false),
            });
        }
        if args.is_empty() {
            return Err(EvalError::new(
                "Invalid function argument",
                "Invalid value for \"expressions\" parameter: at least one argument is required.",
            ));
        }
        let mut last_err = None;
        for a in args {
            match self.eval(a) {
                Ok(v) => return Ok(v),
                Err(e) => last_err = Some(e),
            }
        }
        let _ = last_err;
        Err(EvalError::new(
            "Error in function call",
            "Call to function \"try\" failed: no expression succeeded.",
        ))
    }

    /// `convert(value, type)`: the second argument is a type expression, not a value.
    fn convert_call(&mut self, args: Vec<&Expression>) -> Result<Value> {
        let value = self.eval(args[0])?;
        let ty = super::typeexpr::type_of_expr(args[1])
            .map_err(|e| e.at(self.src, self.span_of(args[1])))?
            .unwrap_or(Type::Dynamic);
        super::convert::convert(&value, &ty).map_err(|e| {
            EvalError::new(
                "Invalid function argument",
                format!("Invalid value for \"value\" parameter: {e}."),
            )
            .at(self.src, self.span_of(args[0]))
        })
    }

    fn eval_template(&mut self, t: &Template) -> Result<Value> {
        // A template that is a single interpolation yields the value itself.
        let elems: Vec<&Element> = t.iter().collect();
        if let [Element::Interpolation(i)] = elems.as_slice() {
            return self.eval(&i.expr);
        }
        let mut parts = Parts::default();
        match self.render(t, &mut parts)? {
            true => Ok(Value::Unknown(Type::String)),
            false => Ok(Value::String(parts.finish())),
        }
    }

    /// Renders template elements into `parts`; returns true if something was unknown.
    fn render(&mut self, t: &Template, parts: &mut Parts) -> Result<bool> {
        let mut unknown = false;
        for elem in t.iter() {
            match elem {
                Element::Literal(s) => parts.literal(s.value()),
                Element::Interpolation(i) => {
                    parts.strip_before(i.strip);
                    let v = self.eval(&i.expr)?;
                    if v.contains_unknown() {
                        unknown = true;
                    } else {
                        let s = to_template_string(&v).map_err(|d| {
                            EvalError::new("Invalid template interpolation value", d)
                                .at(self.src, self.span_of(&i.expr))
                        })?;
                        parts.push(s);
                    }
                    parts.strip_after(i.strip);
                }
                Element::Directive(d) => match d.as_ref() {
                    Directive::If(ifd) => {
                        parts.strip_before(ifd.if_expr.strip);
                        let c = self.eval(&ifd.if_expr.cond_expr)?;
                        parts.strip_after(ifd.if_expr.strip);
                        if c.is_unknown() {
                            unknown = true;
                            continue;
                        }
                        let b = as_bool(&c).ok_or_else(|| {
                            EvalError::new(
                                "Invalid template directive",
                                "The condition of an if directive must be a bool.",
                            )
                        })?;
                        if b {
                            unknown |= self.render(&ifd.if_expr.template, parts)?;
                        } else if let Some(e) = &ifd.else_expr {
                            parts.strip_before(e.strip);
                            parts.strip_after(e.strip);
                            unknown |= self.render(&e.template, parts)?;
                        }
                        parts.strip_before(ifd.endif_expr.strip);
                        parts.strip_after(ifd.endif_expr.strip);
                    }
                    Directive::For(ford) => {
                        let fe = &ford.for_expr;
                        parts.strip_before(fe.strip);
                        let coll = self.eval(&fe.collection_expr)?;
                        parts.strip_after(fe.strip);
                        for (k, v) in iterate(&coll)? {
                            let mut scope = HashMap::new();
                            if let Some(kv) = &fe.key_var {
                                scope.insert(kv.as_str().to_string(), k);
                            }
                            scope.insert(fe.value_var.as_str().to_string(), v);
                            self.scopes.push(scope);
                            let r = self.render(&fe.template, parts);
                            self.scopes.pop();
                            unknown |= r?;
                        }
                        parts.strip_before(ford.endfor_expr.strip);
                        parts.strip_after(ford.endfor_expr.strip);
                    }
                },
            }
        }
        Ok(unknown)
    }

    fn for_expr(&mut self, f: &ForExpr) -> Result<Value> {
        let coll = self.eval(&f.intro.collection_expr)?;
        if coll.is_unknown() {
            return Ok(Value::Unknown(Type::Dynamic));
        }
        let items =
            iterate(&coll).map_err(|e| e.at(self.src, self.span_of(&f.intro.collection_expr)))?;
        let mut tuple = Vec::new();
        let mut object: BTreeMap<String, Value> = BTreeMap::new();
        let mut groups: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for (k, v) in items {
            let mut scope = HashMap::new();
            if let Some(kv) = &f.intro.key_var {
                scope.insert(kv.as_str().to_string(), k);
            }
            scope.insert(f.intro.value_var.as_str().to_string(), v);
            self.scopes.push(scope);
            let r = self.for_item(f, &mut tuple, &mut object, &mut groups);
            self.scopes.pop();
            r?;
        }
        if f.key_expr.is_some() {
            if f.grouping {
                Ok(Value::Object(
                    groups
                        .into_iter()
                        .map(|(k, v)| (k, Value::Tuple(v)))
                        .collect(),
                ))
            } else {
                Ok(Value::Object(object))
            }
        } else {
            Ok(Value::Tuple(tuple))
        }
    }

    fn for_item(
        &mut self,
        f: &ForExpr,
        tuple: &mut Vec<Value>,
        object: &mut BTreeMap<String, Value>,
        groups: &mut BTreeMap<String, Vec<Value>>,
    ) -> Result<()> {
        if let Some(cond) = &f.cond {
            let c = self.eval(&cond.expr)?;
            match as_bool(&c) {
                Some(true) => {}
                Some(false) => return Ok(()),
                None => {
                    return Err(EvalError::new(
                        "Invalid 'for' condition",
                        "The 'if' clause value is invalid: bool required.",
                    )
                    .at(self.src, self.span_of(&cond.expr)))
                }
            }
        }
        let value = self.eval(&f.value_expr)?;
        match &f.key_expr {
            None => tuple.push(value),
            Some(ke) => {
                let k = self.eval(ke)?;
                let k = to_template_string(&k).map_err(|d| {
                    EvalError::new("Invalid object key", d).at(self.src, self.span_of(ke))
                })?;
                if f.grouping {
                    groups.entry(k).or_default().push(value);
                } else {
                    match object.entry(k) {
                        std::collections::btree_map::Entry::Occupied(o) => {
                            return Err(EvalError::new(
                                "Duplicate object key",
                                format!("Two different items produced the key {:?} in this 'for' expression. If duplicates are expected, use the ellipsis (...) after the value expression to enable grouping by key.", o.key()),
                            )
                            .at(self.src, self.span_of(ke)));
                        }
                        std::collections::btree_map::Entry::Vacant(v) => {
                            v.insert(value);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Accumulates template output with HCL's whitespace stripping (`~`).
#[derive(Default)]
struct Parts {
    out: String,
    strip_next: bool,
}

impl Parts {
    fn literal(&mut self, s: &str) {
        if self.strip_next {
            self.out.push_str(s.trim_start());
            self.strip_next = false;
        } else {
            self.out.push_str(s);
        }
    }
    fn push(&mut self, s: String) {
        self.strip_next = false;
        self.out.push_str(&s);
    }
    fn strip_before(&mut self, strip: Strip) {
        if matches!(strip, Strip::Start | Strip::Both) {
            let t = self.out.trim_end().len();
            self.out.truncate(t);
        }
    }
    fn strip_after(&mut self, strip: Strip) {
        self.strip_next = matches!(strip, Strip::End | Strip::Both);
    }
    fn finish(self) -> String {
        self.out
    }
}

fn hcl_number(n: &hcl_edit::Number) -> Number {
    if let Some(i) = n.as_i64() {
        Number::Int(i)
    } else {
        Number::from_f64(n.as_f64().unwrap_or(0.0))
    }
}

fn arity_error(name: &str, params: &[&str], variadic: Option<&str>, got: usize) -> EvalError {
    if got < params.len() {
        EvalError::new(
            "Not enough function arguments",
            format!(
                "Function \"{name}\" expects {} argument(s). Missing value for \"{}\".",
                params.len(),
                params[got]
            ),
        )
    } else {
        let _ = variadic;
        EvalError::new(
            "Too many function arguments",
            format!(
                "Function \"{name}\" expects only {} argument(s).",
                params.len()
            ),
        )
    }
}

/// The string a primitive value becomes inside a template.
pub fn to_template_string(v: &Value) -> std::result::Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null(_) => Err(
            "The expression result is null. Cannot include a null value in a string template."
                .into(),
        ),
        Value::Unknown(_) => Err("The expression result is not known yet.".into()),
        other => Err(format!(
            "Cannot include the given value in a string template: string required, but have {}.",
            other.type_of().friendly_name()
        )),
    }
}

pub fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        _ => None,
    }
}

pub fn as_number(v: &Value) -> Option<Number> {
    match v {
        Value::Number(n) => Some(*n),
        Value::String(s) => parse_number(s),
        _ => None,
    }
}

/// Parses a decimal number as cty does when converting a string.
pub fn parse_number(s: &str) -> Option<Number> {
    if let Ok(i) = s.parse::<i64>() {
        return Some(Number::Int(i));
    }
    let f: f64 = s.parse().ok()?;
    f.is_finite().then(|| Number::from_f64(f))
}

fn get_attr(v: &Value, name: &str) -> Result<Value> {
    match v {
        Value::Object(m) => m.get(name).cloned().ok_or_else(|| {
            EvalError::new(
                "Unsupported attribute",
                format!("This object does not have an attribute named \"{name}\"."),
            )
        }),
        Value::Map(m) => m.get(name).cloned().ok_or_else(|| {
            EvalError::new(
                "Missing map element",
                format!("This map does not have an element with the key \"{name}\"."),
            )
        }),
        Value::Unknown(_) => Ok(Value::Unknown(Type::Dynamic)),
        Value::Null(_) => Err(EvalError::new(
            "Attempt to get attribute from null value",
            "This value is null, so it does not have any attributes.",
        )),
        other => Err(EvalError::new(
            "Unsupported attribute",
            format!(
                "Can't access attributes on a primitive-typed value ({}).",
                other.type_of().friendly_name()
            ),
        )),
    }
}

fn index(v: &Value, key: &Value) -> Result<Value> {
    if v.is_unknown() || key.is_unknown() {
        return Ok(Value::Unknown(Type::Dynamic));
    }
    match v {
        Value::List(items) | Value::Tuple(items) => {
            let n = as_number(key).and_then(Number::as_i64).ok_or_else(|| {
                EvalError::new(
                    "Invalid index",
                    "The given key does not identify an element in this collection value: a number is required.",
                )
            })?;
            usize::try_from(n)
                .ok()
                .and_then(|i| items.get(i))
                .cloned()
                .ok_or_else(|| {
                    EvalError::new(
                        "Invalid index",
                        "The given key does not identify an element in this collection value.",
                    )
                })
        }
        Value::Map(m) | Value::Object(m) => {
            let k = to_template_string(key).map_err(|_| {
                EvalError::new(
                    "Invalid index",
                    "The given key does not identify an element in this collection value: string required.",
                )
            })?;
            m.get(&k).cloned().ok_or_else(|| {
                EvalError::new(
                    "Invalid index",
                    "The given key does not identify an element in this collection value.",
                )
            })
        }
        Value::Null(_) => Err(EvalError::new(
            "Attempt to index null value",
            "This value is null, so it does not have any indices.",
        )),
        Value::Set(_) => Err(EvalError::new(
            "Invalid index",
            "Elements of a set are identified only by their value and don't have any separate index or key to select with, so it's only possible to perform operations across all elements of the set.",
        )),
        other => Err(EvalError::new(
            "Invalid index",
            format!(
                "This value does not have any indices ({}).",
                other.type_of().friendly_name()
            ),
        )),
    }
}

/// Key/value pairs of a collection, for `for` expressions and directives.
fn iterate(coll: &Value) -> Result<Vec<(Value, Value)>> {
    match coll {
        Value::List(items) | Value::Tuple(items) | Value::Set(items) => Ok(items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let k = if matches!(coll, Value::Set(_)) {
                    v.clone()
                } else {
                    Value::int(i as i64)
                };
                (k, v.clone())
            })
            .collect()),
        Value::Map(m) | Value::Object(m) => Ok(m
            .iter()
            .map(|(k, v)| (Value::String(k.clone()), v.clone()))
            .collect()),
        Value::Null(_) => Err(EvalError::new(
            "Iteration over null value",
            "A null value cannot be used as the collection in a 'for' expression.",
        )),
        other => Err(EvalError::new(
            "Iteration over non-iterable value",
            format!(
                "A value of type {} cannot be used as the collection in a 'for' expression.",
                other.type_of().friendly_name()
            ),
        )),
    }
}

fn binary(op: BinaryOperator, l: &Value, r: &Value) -> Result<Value> {
    use BinaryOperator::*;
    if matches!(op, Eq | NotEq) {
        if l.contains_unknown() || r.contains_unknown() {
            return Ok(Value::Unknown(Type::Bool));
        }
        let eq = values_equal(l, r);
        return Ok(Value::Bool(if op == Eq { eq } else { !eq }));
    }
    if l.is_unknown() || r.is_unknown() {
        return Ok(Value::Unknown(Type::Dynamic));
    }
    match op {
        And | Or => {
            let (a, b) = match (as_bool(l), as_bool(r)) {
                (Some(a), Some(b)) => (a, b),
                _ => {
                    return Err(EvalError::new(
                        "Invalid operand",
                        "Unsuitable value for logical operand: bool required.",
                    ))
                }
            };
            Ok(Value::Bool(if op == And { a && b } else { a || b }))
        }
        _ => {
            let (a, b) = match (as_number(l), as_number(r)) {
                (Some(a), Some(b)) => (a, b),
                _ => {
                    let which = if as_number(l).is_none() {
                        "left"
                    } else {
                        "right"
                    };
                    let bad = if which == "left" { l } else { r };
                    let _ = bad;
                    let detail =
                        format!("Unsuitable value for {which} operand: a number is required.");
                    return Err(EvalError::new("Invalid operand", detail));
                }
            };
            arith(op, a, b)
        }
    }
}

fn arith(op: BinaryOperator, a: Number, b: Number) -> Result<Value> {
    use BinaryOperator::*;
    let int = |f: fn(i64, i64) -> Option<i64>, g: fn(f64, f64) -> f64| -> Value {
        match (a, b) {
            (Number::Int(x), Number::Int(y)) => match f(x, y) {
                Some(v) => Value::int(v),
                None => Value::Number(Number::Float(g(x as f64, y as f64))),
            },
            _ => Value::float(g(a.as_f64(), b.as_f64())),
        }
    };
    Ok(match op {
        Plus => int(i64::checked_add, |x, y| x + y),
        Minus => int(i64::checked_sub, |x, y| x - y),
        Mul => int(i64::checked_mul, |x, y| x * y),
        Div => {
            if b.as_f64() == 0.0 {
                return Err(EvalError::new(
                    "Operation failed",
                    "Error during operation: can't divide by zero.",
                ));
            }
            Value::float(a.as_f64() / b.as_f64())
        }
        Mod => {
            if b.as_f64() == 0.0 {
                return Err(EvalError::new(
                    "Operation failed",
                    "Error during operation: can't use modulo by zero.",
                ));
            }
            int(i64::checked_rem, |x, y| x % y)
        }
        Less => Value::Bool(a < b),
        Greater => Value::Bool(a > b),
        LessEq => Value::Bool(a <= b),
        GreaterEq => Value::Bool(a >= b),
        Eq | NotEq | And | Or => Value::Bool(false),
    })
}

/// cty equality: same type family and same content.
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null(_), Value::Null(_)) => true,
        (Value::Null(_), _) | (_, Value::Null(_)) => false,
        (Value::Number(x), Value::Number(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::List(x), Value::List(y))
        | (Value::Tuple(x), Value::Tuple(y))
        | (Value::Set(x), Value::Set(y))
        | (Value::List(x), Value::Tuple(y))
        | (Value::Tuple(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| values_equal(p, q))
        }
        (Value::Map(x), Value::Map(y))
        | (Value::Object(x), Value::Object(y))
        | (Value::Map(x), Value::Object(y))
        | (Value::Object(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, va), (kb, vb))| ka == kb && values_equal(va, vb))
        }
        _ => false,
    }
}
