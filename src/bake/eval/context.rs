//! Lazy, dependency-ordered resolution of a bake document: variables (with types, env
//! overrides and validation), user functions, and blocks (with `matrix` and `name`).
//!
//! Everything is resolved on demand and memoised, so a variable may refer to another
//! declared later, a target may read `target.other.tags`, and cycles are reported with the
//! name that closes them.

use super::convert::convert;
use super::expr::{to_template_string, EvalError, Evaluator, Resolver};
use super::typeexpr::type_of_expr;
use super::value::{Type, Value};
use super::varenv;
use crate::bake::syntax::{Attr, Block, Document};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Where variable values come from besides the files.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Built-in variables (`BAKE_CMD_CONTEXT`, `BAKE_LOCAL_PLATFORM`): always strings.
    pub builtins: BTreeMap<String, String>,
    /// `--var NAME=VALUE`, looked up before the environment.
    pub vars: BTreeMap<String, String>,
    /// The process environment (empty when env lookup is disabled).
    pub env: HashMap<String, String>,
}

impl Inputs {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .or_else(|| self.env.get(name))
            .map(String::as_str)
    }
}

/// One evaluated instance of a block (a matrix block has several).
#[derive(Debug, Clone)]
pub struct Instance {
    pub block: usize,
    pub name: String,
    pub locals: HashMap<String, Value>,
}

/// A variable as `--list variables` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct VariableInfo {
    pub name: String,
    pub description: String,
    pub type_name: Option<String>,
    pub value: Option<String>,
}

/// Block kinds that expressions can refer to (`target.x.y`, `group.x.targets`).
const BLOCK_KINDS: &[&str] = &["target", "group"];

pub struct Context<'d> {
    pub doc: &'d Document,
    inputs: Inputs,
    vars: HashMap<String, &'d Block>,
    var_order: Vec<String>,
    attrs: HashMap<String, &'d Attr>,
    funcs: HashMap<String, &'d Block>,
    values: HashMap<String, Value>,
    constraints: HashMap<String, Type>,
    resolving: Vec<String>,
    calling: Vec<String>,
    /// Instances of each block, by block index, once names are known.
    instances: HashMap<usize, Vec<Instance>>,
    naming: HashSet<usize>,
    /// Evaluated attributes per (block index, instance index).
    attr_values: HashMap<(usize, usize), BTreeMap<String, Value>>,
    attr_progress: HashSet<(usize, usize, String)>,
    steps: u64,
}

type Result<T> = std::result::Result<T, EvalError>;

impl<'d> Context<'d> {
    pub fn new(doc: &'d Document, inputs: Inputs) -> Result<Self> {
        let mut vars = HashMap::new();
        let mut var_order = Vec::new();
        let mut funcs = HashMap::new();
        let reserved = |n: &str| BLOCK_KINDS.contains(&n) || n == "variable" || n == "function";
        for b in &doc.blocks {
            match b.kind.as_str() {
                "variable" => {
                    check_labels(b)?;
                    if reserved(b.name()) || inputs.builtins.contains_key(b.name()) {
                        continue;
                    }
                    if vars.insert(b.name().to_string(), b).is_none() {
                        var_order.push(b.name().to_string());
                    }
                }
                "function" => {
                    check_labels(b)?;
                    if !inputs.builtins.contains_key(b.name()) {
                        funcs.insert(b.name().to_string(), b);
                    }
                }
                "target" | "group" => check_labels(b)?,
                // buildx ignores blocks it does not know (e.g. compose-only ones).
                _ => {}
            }
        }
        let mut attrs = HashMap::new();
        for a in &doc.attrs {
            if reserved(&a.name) || inputs.builtins.contains_key(&a.name) {
                continue;
            }
            attrs.insert(a.name.clone(), a);
        }
        Ok(Context {
            doc,
            inputs,
            vars,
            var_order,
            attrs,
            funcs,
            values: HashMap::new(),
            constraints: HashMap::new(),
            resolving: Vec::new(),
            calling: Vec::new(),
            instances: HashMap::new(),
            naming: HashSet::new(),
            attr_values: HashMap::new(),
            attr_progress: HashSet::new(),
            steps: 0,
        })
    }

    /// Resolves every variable, runs validations and checks every function definition.
    pub fn resolve_globals(&mut self) -> Result<Vec<VariableInfo>> {
        let names: Vec<String> = self.inputs.builtins.keys().cloned().collect();
        for n in names {
            self.resolve_variable(&n)?;
        }
        let mut infos = Vec::new();
        for name in self.var_order.clone() {
            self.resolve_variable(&name)?;
            infos.push(self.variable_info(&name));
        }
        self.validate_variables()?;
        let mut fnames: Vec<String> = self.funcs.keys().cloned().collect();
        fnames.sort();
        for f in fnames {
            self.check_function(&f)?;
        }
        for name in self.attrs.keys().cloned().collect::<Vec<_>>() {
            self.resolve_variable(&name)?;
        }
        Ok(infos)
    }

    fn variable_info(&self, name: &str) -> VariableInfo {
        let block = self.vars.get(name);
        let description = block
            .and_then(|b| b.attr("description"))
            .and_then(|a| a.expr.as_str().map(str::to_string))
            .unwrap_or_default();
        let constraint = self.constraints.get(name);
        let value = self.values.get(name).and_then(|v| {
            if v.is_null() {
                return None;
            }
            match (constraint, v) {
                (Some(Type::String), Value::String(s)) => Some(s.clone()),
                (Some(_), v) => Some(varenv::to_json(v)),
                (None, Value::String(_) | Value::Number(_) | Value::Bool(_)) => {
                    to_template_string(v).ok()
                }
                (None, v) => Some(varenv::to_json(v)),
            }
        });
        VariableInfo {
            name: name.to_string(),
            description,
            type_name: constraint.map(super::typeexpr::constraint_name),
            value,
        }
    }

    /// Resolves a named value: built-in, variable block, or global attribute.
    fn resolve_variable(&mut self, name: &str) -> Result<Option<Value>> {
        if let Some(v) = self.values.get(name) {
            return Ok(Some(v.clone()));
        }
        if let Some(v) = self.inputs.builtins.get(name) {
            let v = Value::String(v.clone());
            self.values.insert(name.to_string(), v.clone());
            return Ok(Some(v));
        }
        let attr = self.attrs.get(name).copied();
        let block = self.vars.get(name).copied();
        if attr.is_none() && block.is_none() {
            return Ok(None);
        }
        if let Some(pos) = self.resolving.iter().position(|n| n == name) {
            let mut path = self.resolving[pos..].to_vec();
            path.push(name.to_string());
            return Err(EvalError::new(
                "Invalid expression",
                format!(
                    "variable cycle not allowed for {name} ({})",
                    path.join(" -> ")
                ),
            ));
        }
        self.resolving.push(name.to_string());
        let result = self.compute_variable(name, attr, block);
        self.resolving.pop();
        let v = result?;
        self.values.insert(name.to_string(), v.clone());
        Ok(Some(v))
    }

    fn compute_variable(
        &mut self,
        name: &str,
        attr: Option<&'d Attr>,
        block: Option<&'d Block>,
    ) -> Result<Value> {
        let (default, constraint) = match (attr, block) {
            (Some(a), _) => (Some(a), None),
            (None, Some(b)) => {
                let constraint = match b.attr("type") {
                    Some(t) => type_of_expr(&t.expr).map_err(|e| e.at(b.src, t.expr_span()))?,
                    None => None,
                };
                (b.attr("default"), constraint)
            }
            (None, None) => (None, None),
        };
        if let Some(c) = &constraint {
            self.constraints.insert(name.to_string(), c.clone());
        }
        let is_var = block.is_some() && attr.is_none();
        let type_specified = constraint.is_some();
        let override_value = if is_var {
            let lookup = |n: &str| self.inputs.lookup(n).map(str::to_string);
            let free =
                |n: &str| !self.inputs.builtins.contains_key(n) && !self.vars.contains_key(n);
            varenv::override_for(name, type_specified, free, lookup)
        } else {
            None
        };

        let mut value = match default {
            None => {
                if override_value.is_none() {
                    return Ok(match &constraint {
                        Some(t) => Value::Null(t.clone()),
                        None => Value::String(String::new()),
                    });
                }
                None
            }
            Some(def) => {
                let v = self.evaluator(def).eval(&def.expr)?;
                let want = constraint.clone().unwrap_or(Type::Dynamic);
                let v = convert(&v, &want).map_err(|e| {
                    EvalError::new(
                        "Invalid value",
                        format!(
                            "invalid type {} for variable {name} default value: {e}",
                            want.friendly_name()
                        ),
                    )
                    .at(def.src, def.expr_span())
                })?;
                Some(v)
            }
        };

        if let Some((ov, json)) = override_value {
            let typed =
                varenv::parse_override(name, &ov, json, constraint.as_ref(), value.as_ref())
                    .map_err(|msg| {
                        let e = EvalError::new("Invalid value", msg);
                        match block {
                            Some(b) => e.at(b.src, b.span.clone()),
                            None => e,
                        }
                    })?;
            value = Some(typed);
        }
        Ok(value.unwrap_or_else(|| Value::String(String::new())))
    }

    fn validate_variables(&mut self) -> Result<()> {
        for name in self.var_order.clone() {
            let Some(block) = self.vars.get(&name).copied() else {
                continue;
            };
            for rule in block.blocks.iter().filter(|b| b.kind == "validation") {
                let Some(cond) = rule.attr("condition") else {
                    return Err(EvalError::new(
                        "Missing required argument",
                        "The argument \"condition\" is required, but no definition was found.",
                    )
                    .at(rule.src, block.span.clone()));
                };
                let result = self.evaluator(cond).eval(&cond.expr)?;
                let ok = match &result {
                    Value::Null(_) => {
                        return Err(EvalError::new(
                            "Invalid condition result",
                            "Condition expression must return either true or false, not null.",
                        )
                        .at(cond.src, cond.expr_span()))
                    }
                    Value::Unknown(_) => true,
                    other => match super::expr::as_bool(other) {
                        Some(b) => b,
                        None => {
                            return Err(EvalError::new(
                                "Invalid condition result",
                                "Invalid condition result value: a bool is required",
                            )
                            .at(cond.src, cond.expr_span()))
                        }
                    },
                };
                if !ok {
                    let message = match rule.attr("error_message") {
                        Some(m) => {
                            let v = self.evaluator(m).eval(&m.expr)?;
                            match v {
                                Value::String(s) => s,
                                Value::Null(_) => {
                                    "This check failed, but has an invalid error message.".into()
                                }
                                other => to_template_string(&other).unwrap_or_default(),
                            }
                        }
                        None => {
                            return Err(EvalError::new(
                                "Missing required argument",
                                "The argument \"error_message\" is required, but no definition was found.",
                            )
                            .at(rule.src, block.span.clone()))
                        }
                    };
                    return Err(
                        EvalError::new("Validation failed", message).at(cond.src, cond.expr_span())
                    );
                }
            }
        }
        Ok(())
    }

    /// Checks a function definition: params and result present, names are identifiers.
    fn check_function(&mut self, name: &str) -> Result<()> {
        let Some(f) = self.funcs.get(name).copied() else {
            return Ok(());
        };
        let err = |msg: String| EvalError::new("Invalid function", msg).at(f.src, f.span.clone());
        if f.attr("params").is_none() {
            return Err(err(format!("empty params not allowed for {name}")));
        }
        if f.attr("result").is_none() {
            return Err(err(format!("empty result not allowed for {name}")));
        }
        function_params(f).map_err(err)?;
        Ok(())
    }

    /// An evaluator for an attribute's expression. In JSON and TOML files errors point at
    /// the attribute's key (the expression's own spans are inside a string).
    fn evaluator(&mut self, a: &Attr) -> Evaluator<'_> {
        let has_spans = self.doc.sources.get(a.src).is_none_or(|s| s.has_spans());
        let src = a.src;
        let key = a.span.clone();
        let ev = Evaluator::new(self, src);
        if has_spans {
            ev
        } else {
            ev.anchored(key)
        }
    }

    // ----- blocks -----

    /// Indices of the document's blocks of a kind, in file order.
    pub fn blocks_of(&self, kind: &str) -> Vec<usize> {
        self.doc
            .blocks
            .iter()
            .enumerate()
            .filter(|(_, b)| b.kind == kind)
            .map(|(i, _)| i)
            .collect()
    }

    /// The instances of a block: one, or one per matrix combination, with their names.
    pub fn instances(&mut self, idx: usize) -> Result<Vec<Instance>> {
        if let Some(v) = self.instances.get(&idx) {
            return Ok(v.clone());
        }
        if !self.naming.insert(idx) {
            let b = &self.doc.blocks[idx];
            return Err(EvalError::new(
                "Invalid name",
                format!("reference cycle not allowed for {}.{}", b.kind, b.name()),
            ));
        }
        let r = self.compute_instances(idx);
        self.naming.remove(&idx);
        let v = r?;
        self.instances.insert(idx, v.clone());
        Ok(v)
    }

    fn compute_instances(&mut self, idx: usize) -> Result<Vec<Instance>> {
        let block = &self.doc.blocks[idx];
        let label_err =
            |msg: String| EvalError::new("Invalid name", msg).at(block.src, block.span.clone());
        validate_label(block.name()).map_err(label_err)?;
        let matrix = block.attr("matrix");
        let name_attr = block.attr("name");
        if block.kind == "group" {
            if matrix.is_some() {
                return Err(label_err("matrix is not supported for groups".into()));
            }
            if name_attr.is_some() {
                return Err(label_err("name is not supported for groups".into()));
            }
        }
        let mut combos: Vec<HashMap<String, Value>> = vec![HashMap::new()];
        if let Some(m) = matrix {
            let v = self.evaluator(m).eval(&m.expr)?;
            let entries = match &v {
                Value::Map(e) | Value::Object(e) => e.clone(),
                _ => {
                    return Err(EvalError::new("Invalid block", "matrix must be a map")
                        .at(m.src, m.expr_span()))
                }
            };
            let limit = crate::bake::limits::MAX_MATRIX_INSTANCES;
            // cty iterates object attributes in key order; later keys vary slowest.
            for (key, vals) in entries {
                let items = match vals.as_seq() {
                    Some(items) => items.to_vec(),
                    None => {
                        return Err(
                            EvalError::new("Invalid block", "matrix values must be a list")
                                .at(m.src, m.expr_span()),
                        )
                    }
                };
                let mut next = Vec::with_capacity(combos.len() * items.len());
                for item in &items {
                    for c in &combos {
                        let mut c2 = c.clone();
                        c2.insert(key.clone(), item.clone());
                        next.push(c2);
                    }
                }
                if next.len() > limit {
                    return Err(EvalError::new(
                        "Invalid block",
                        format!("matrix expands to more than {limit} combinations"),
                    )
                    .at(m.src, m.expr_span()));
                }
                combos = next;
            }
        }
        let mut out = Vec::with_capacity(combos.len());
        let mut seen = HashSet::new();
        for locals in combos {
            let name = match name_attr {
                None => block.name().to_string(),
                Some(n) => {
                    if matrix.is_none() {
                        return Err(label_err("name requires matrix".into()));
                    }
                    let v = self.evaluator(n).with_scope(locals.clone()).eval(&n.expr)?;
                    let s = convert(&v, &Type::String)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .ok_or_else(|| label_err("name must be a string".into()))?;
                    validate_label(&s).map_err(label_err)?;
                    s
                }
            };
            if !seen.insert(name.clone()) {
                return Err(label_err(format!("duplicate name \"{name}\"")));
            }
            out.push(Instance {
                block: idx,
                name,
                locals,
            });
        }
        Ok(out)
    }

    /// Evaluates one attribute of one instance (memoised; cycles reported).
    pub fn instance_attr(
        &mut self,
        inst: &Instance,
        i: usize,
        attr: &str,
    ) -> Result<Option<Value>> {
        let key = (inst.block, i);
        if let Some(v) = self.attr_values.get(&key).and_then(|m| m.get(attr)) {
            return Ok(Some(v.clone()));
        }
        let block = &self.doc.blocks[inst.block];
        let Some(a) = block.attr(attr) else {
            return Ok(None);
        };
        let pkey = (inst.block, i, attr.to_string());
        if !self.attr_progress.insert(pkey.clone()) {
            return Err(EvalError::new(
                "Invalid expression",
                format!(
                    "reference cycle not allowed for {}.{}.{}",
                    block.kind, inst.name, attr
                ),
            )
            .at(a.src, a.span.clone()));
        }
        let r = self
            .evaluator(a)
            .with_scope(inst.locals.clone())
            .eval(&a.expr);
        self.attr_progress.remove(&pkey);
        let v = r?;
        self.attr_values
            .entry(key)
            .or_default()
            .insert(attr.to_string(), v.clone());
        Ok(Some(v))
    }

    /// All instances (with their block-local index) of blocks of `kind` named `name`.
    fn named(&mut self, kind: &str, name: &str) -> Result<Vec<(Instance, usize)>> {
        let mut out = Vec::new();
        for idx in self.blocks_of(kind) {
            for (i, inst) in self.instances(idx)?.into_iter().enumerate() {
                if inst.name == name {
                    out.push((inst, i));
                }
            }
        }
        Ok(out)
    }
}

impl Resolver for Context<'_> {
    fn variable(&mut self, name: &str) -> Result<Option<Value>> {
        self.resolve_variable(name)
    }

    fn is_block_kind(&self, name: &str) -> bool {
        BLOCK_KINDS.contains(&name)
    }

    fn tick(&mut self) -> Result<()> {
        self.steps += 1;
        if self.steps > crate::bake::limits::MAX_EVAL_STEPS {
            return Err(EvalError::new(
                "Evaluation limit exceeded",
                format!(
                    "evaluating the bake files took more than {} steps; look for runaway for-expressions or matrices",
                    crate::bake::limits::MAX_EVAL_STEPS
                ),
            ));
        }
        Ok(())
    }

    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.vars.keys().chain(self.attrs.keys()).cloned().collect();
        v.extend(self.inputs.builtins.keys().cloned());
        v
    }

    fn block_ref(&mut self, kind: &str, name: &str, attr: Option<&str>) -> Result<Value> {
        let insts = self.named(kind, name)?;
        if insts.is_empty() {
            return Err(EvalError::new(
                "Unsupported attribute",
                format!("This object does not have an attribute named \"{name}\"."),
            ));
        }
        let fields = crate::bake::model::fields_of(kind);
        match attr {
            Some("name") => Ok(Value::String(name.to_string())),
            Some(a) => {
                if !fields.contains(&a) {
                    return Err(EvalError::new(
                        "Unsupported attribute",
                        format!("This object does not have an attribute named \"{a}\"."),
                    ));
                }
                let mut out = Value::null();
                for (inst, i) in &insts {
                    if let Some(v) = self.instance_attr(inst, *i, a)? {
                        out = crate::bake::model::field_value(kind, a, v);
                    }
                }
                Ok(out)
            }
            None => {
                let mut obj = BTreeMap::new();
                for f in fields {
                    obj.insert(f.to_string(), Value::null());
                }
                obj.insert("name".into(), Value::String(name.to_string()));
                for (inst, i) in &insts {
                    for f in fields {
                        if let Some(v) = self.instance_attr(inst, *i, f)? {
                            obj.insert(f.to_string(), crate::bake::model::field_value(kind, f, v));
                        }
                    }
                }
                Ok(Value::Object(obj))
            }
        }
    }

    fn user_function(&mut self, name: &str, args: &[Value]) -> Option<Result<Value>> {
        let f = self.funcs.get(name).copied()?;
        Some(self.call_user(name, f, args))
    }
}

impl<'d> Context<'d> {
    fn call_user(&mut self, name: &str, f: &'d Block, args: &[Value]) -> Result<Value> {
        if self.calling.iter().any(|c| c == name) {
            return Err(EvalError::new(
                "Invalid function",
                format!("function cycle not allowed for {name}"),
            ));
        }
        let (params, variadic) = function_params(f)
            .map_err(|m| EvalError::new("Invalid function", m).at(f.src, f.span.clone()))?;
        let Some(result) = f.attr("result") else {
            return Err(EvalError::new(
                "Invalid function",
                format!("empty result not allowed for {name}"),
            ));
        };
        if args.len() < params.len() {
            return Err(EvalError::new(
                "Not enough function arguments",
                format!(
                    "Function \"{name}\" expects {} argument(s). Missing value for \"{}\".",
                    params.len(),
                    params[args.len()]
                ),
            ));
        }
        if args.len() > params.len() && variadic.is_none() {
            return Err(EvalError::new(
                "Too many function arguments",
                format!(
                    "Function \"{name}\" expects only {} argument(s).",
                    params.len()
                ),
            ));
        }
        let mut scope = HashMap::new();
        for (p, a) in params.iter().zip(args) {
            scope.insert(p.clone(), a.clone());
        }
        if let Some(v) = variadic {
            scope.insert(v, Value::Tuple(args[params.len()..].to_vec()));
        }
        self.calling.push(name.to_string());
        let r = self.evaluator(result).with_scope(scope).eval(&result.expr);
        self.calling.pop();
        r
    }
}

/// Parameter names of a function block: `params = [a, b]`, `variadic_params = rest`.
fn function_params(f: &Block) -> std::result::Result<(Vec<String>, Option<String>), String> {
    let keyword = |e: &hcl_edit::expr::Expression| -> Option<String> {
        match e {
            hcl_edit::expr::Expression::Variable(v) => Some(v.as_str().to_string()),
            _ => None,
        }
    };
    let mut params = Vec::new();
    if let Some(p) = f.attr("params") {
        let arr = p
            .expr
            .as_array()
            .ok_or_else(|| "params must be a list of parameter names".to_string())?;
        for e in arr.iter() {
            params.push(keyword(e).ok_or_else(|| {
                "Invalid param element: Each parameter name must be an identifier.".to_string()
            })?);
        }
    }
    let variadic = match f.attr("variadic_params") {
        Some(v) => Some(keyword(&v.expr).ok_or_else(|| {
            "Invalid param element: Each parameter name must be an identifier.".to_string()
        })?),
        None => None,
    };
    Ok((params, variadic))
}

fn check_labels(b: &Block) -> Result<()> {
    if b.labels.len() != 1 {
        return Err(EvalError::new(
            "Invalid block",
            format!("invalid block label: {:?}", b.labels),
        )
        .at(b.src, b.span.clone()));
    }
    Ok(())
}

/// Target and group names: `[a-zA-Z0-9_-]+`.
pub fn validate_label(name: &str) -> std::result::Result<(), String> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Ok(())
    } else {
        Err(format!(
            "only \"[a-zA-Z0-9_-]+\" are allowed (got {name:?})"
        ))
    }
}

impl Attr {
    /// Byte span of the attribute's value expression, when the file has spans.
    pub fn expr_span(&self) -> Option<std::ops::Range<usize>> {
        if self.exact_spans {
            hcl_edit::Span::span(&self.expr).or_else(|| self.span.clone())
        } else {
            self.span.clone()
        }
    }
}
