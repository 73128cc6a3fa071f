//! The bake standard library: the functions `docker buildx bake` provides, with go-cty
//! semantics. `try` and `can` are not here: they are lazy and live in the evaluator.
//!
//! Interface used by the evaluator: [`lookup`] a function by name (or [`call`] by name),
//! check its arity with [`Function::accepts`], then [`Function::call`] it. A failed call
//! gives a [`FuncError`]; [`FuncError::diagnostic`] renders it as HCL does ("Invalid
//! function argument" / "Invalid value for \"str\" parameter: ..." when an argument is to
//! blame, "Error in function call" / "Call to function \"x\" failed: ..." otherwise).
//! [`names`] lists the functions (for "did you mean" hints).
//!
//! Arguments are converted to each parameter's type with cty's rules (`upper(1)` is
//! `"1"`). A null argument is an error ("argument must not be null") unless the function
//! accepts nulls (`coalesce`, `equal`, `format`, `jsonencode`, ...). A call with an
//! unknown argument returns an unknown of [`Function::return_type`]; `coalesce`, `length`
//! and `convert` look inside unknowns themselves.
//!
//! `convert(value, type)`: the evaluator passes the type expression's *source text* as a
//! `Value::String` (e.g. `"list(string)"`, as written in the call), which
//! [`parse_type_expr`] reads; it may equally call [`super::convert::convert`] with a
//! [`Type`] it built itself. `optional(...)` attributes are not supported (the value
//! model's `Type` has no optional attributes).
//!
//! `byteslen`/`bytesslice` take cty's capsule "bytes" type, which no bake expression can
//! produce: like buildx, they always fail with "bytes required, but have ...".
//!
//! Numbers are the value model's i64/f64: results print like cty's (see
//! [`super::convert::format_number`]) except where cty's 512-bit arithmetic carries more
//! digits than an f64 (`1/3`, integers past 2^53).

mod args;
mod cidr;
mod collections;
mod crypto;
mod encoding;
mod format;
mod numeric;
mod regex;
mod rsa;
mod semver;
mod sets;
mod strings;
mod time;
mod typeexpr;

#[cfg(test)]
mod tests;

pub use typeexpr::parse_type_expr;

use super::value::{Type, Value};

/// An error from a function call. `arg` is the 0-based index of the offending argument,
/// when one is to blame (the evaluator points the diagnostic at it).
/// `message` is cty's bare text, without a final period.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct FuncError {
    pub message: String,
    pub arg: Option<usize>,
}

impl FuncError {
    pub fn new(message: impl Into<String>) -> Self {
        FuncError {
            message: message.into(),
            arg: None,
        }
    }

    pub fn arg(arg: usize, message: impl Into<String>) -> Self {
        FuncError {
            message: message.into(),
            arg: Some(arg),
        }
    }

    /// The (summary, detail) pair HCL shows for this error in a call to `func`, e.g.
    /// `("Invalid function argument", "Invalid value for \"value\" parameter: a number is
    /// required.")` or `("Error in function call", "Call to function \"length\" failed:
    /// collection must be a list, a map or a tuple.")`.
    pub fn diagnostic(&self, func: &Function) -> (String, String) {
        match self.arg.and_then(|i| func.param_name(i)) {
            Some(param) => (
                "Invalid function argument".to_string(),
                format!("Invalid value for {param:?} parameter: {}.", self.message),
            ),
            None => (
                "Error in function call".to_string(),
                format!("Call to function {:?} failed: {}.", func.name, self.message),
            ),
        }
    }
}

pub type FuncImpl = fn(&[Value]) -> Result<Value, FuncError>;

/// A function of the stdlib.
pub struct Function {
    pub name: &'static str,
    /// Names of the fixed parameters (for arity and error messages).
    pub params: &'static [&'static str],
    /// Name of the variadic parameter, if the function takes any number of extra arguments.
    pub variadic: Option<&'static str>,
    pub imp: FuncImpl,
}

impl Function {
    pub fn accepts(&self, nargs: usize) -> bool {
        if self.variadic.is_some() {
            nargs >= self.params.len()
        } else {
            nargs == self.params.len()
        }
    }

    /// The name of the parameter that receives argument `i`.
    pub fn param_name(&self, i: usize) -> Option<&'static str> {
        self.params.get(i).copied().or(self.variadic)
    }

    /// The type of the result when it does not depend on the arguments (`any` otherwise);
    /// an unknown result has this type.
    pub fn return_type(&self) -> Type {
        const NUMBER: &[&str] = &[
            "absolute", "add", "byteslen", "ceil", "divide", "floor", "indexof", "int", "length",
            "log", "max", "min", "modulo", "multiply", "negate", "parseint", "pow", "signum",
            "strlen", "subtract",
        ];
        const BOOL: &[&str] = &[
            "and",
            "contains",
            "equal",
            "greaterthan",
            "greaterthanorequalto",
            "hasindex",
            "lessthan",
            "lessthanorequalto",
            "not",
            "notequal",
            "or",
            "semvercmp",
            "sethaselement",
        ];
        const STRING_LIST: &[&str] = &["cidrsubnets", "compact", "formatlist", "sort", "split"];
        const DYNAMIC: &[&str] = &[
            "bytesslice",
            "chunklist",
            "coalesce",
            "coalescelist",
            "concat",
            "convert",
            "csvdecode",
            "distinct",
            "element",
            "flatten",
            "index",
            "jsondecode",
            "keys",
            "lookup",
            "merge",
            "range",
            "regex",
            "regexall",
            "reverselist",
            "setintersection",
            "setproduct",
            "setsubtract",
            "setsymmetricdifference",
            "setunion",
            "slice",
            "unixtimestampparse",
            "values",
            "zipmap",
        ];
        if NUMBER.contains(&self.name) {
            Type::Number
        } else if BOOL.contains(&self.name) {
            Type::Bool
        } else if STRING_LIST.contains(&self.name) {
            Type::List(Box::new(Type::String))
        } else if DYNAMIC.contains(&self.name) {
            Type::Dynamic
        } else {
            Type::String
        }
    }

    /// Calls the function. A wrong number of arguments is an error (not a panic); any
    /// unknown argument gives an unknown result (except for the few functions that look
    /// inside unknown values themselves).
    pub fn call(&self, args: &[Value]) -> Result<Value, FuncError> {
        if !self.accepts(args.len()) {
            return Err(FuncError::new(format!(
                "function {:?} takes {}{} argument(s), but {} were given",
                self.name,
                if self.variadic.is_some() {
                    "at least "
                } else {
                    ""
                },
                self.params.len(),
                args.len()
            )));
        }
        if !UNKNOWN_AWARE.contains(&self.name) && args.iter().any(Value::contains_unknown) {
            return Ok(Value::Unknown(self.return_type()));
        }
        (self.imp)(args)
    }
}

/// Functions that handle unknown arguments themselves.
const UNKNOWN_AWARE: &[&str] = &["coalesce", "convert", "length"];

macro_rules! f {
    ($name:literal, [$($p:literal),*], $imp:path) => {
        Function { name: $name, params: &[$($p),*], variadic: None, imp: $imp }
    };
    ($name:literal, [$($p:literal),*], $var:literal, $imp:path) => {
        Function { name: $name, params: &[$($p),*], variadic: Some($var), imp: $imp }
    };
}

/// All functions, sorted by name.
static FUNCTIONS: &[Function] = &[
    f!("absolute", ["num"], numeric::absolute),
    f!("add", ["a", "b"], numeric::add),
    f!("and", ["a", "b"], numeric::and),
    f!("base64decode", ["str"], encoding::base64decode),
    f!("base64encode", ["str"], encoding::base64encode),
    f!("basename", ["path"], strings::basename),
    f!("bcrypt", ["str"], "cost", crypto::bcrypt),
    f!("byteslen", ["buf"], encoding::byteslen),
    f!(
        "bytesslice",
        ["buf", "offset", "length"],
        encoding::bytesslice
    ),
    f!("ceil", ["num"], numeric::ceil),
    f!("chomp", ["str"], strings::chomp),
    f!("chunklist", ["list", "size"], collections::chunklist),
    f!("cidrhost", ["prefix", "hostnum"], cidr::cidrhost),
    f!("cidrnetmask", ["prefix"], cidr::cidrnetmask),
    f!(
        "cidrsubnet",
        ["prefix", "newbits", "netnum"],
        cidr::cidrsubnet
    ),
    f!("cidrsubnets", ["prefix"], "newbits", cidr::cidrsubnets),
    f!("coalesce", [], "vals", collections::coalesce),
    f!("coalescelist", [], "vals", collections::coalescelist),
    f!("compact", ["list"], collections::compact),
    f!("concat", [], "seqs", collections::concat),
    f!("contains", ["list", "value"], collections::contains),
    f!("convert", ["value", "type"], encoding::convert),
    f!("csvdecode", ["str"], encoding::csvdecode),
    f!("dirname", ["path"], strings::dirname),
    f!("distinct", ["list"], collections::distinct),
    f!("divide", ["a", "b"], numeric::divide),
    f!("element", ["list", "index"], collections::element),
    f!("equal", ["a", "b"], numeric::equal),
    f!("flatten", ["list"], collections::flatten),
    f!("floor", ["num"], numeric::floor),
    f!("format", ["format"], "args", format::format),
    f!("formatdate", ["format", "time"], time::formatdate),
    f!("formatlist", ["format"], "args", format::formatlist),
    f!("formattimestamp", ["format", "time"], time::formattimestamp),
    f!("greaterthan", ["a", "b"], numeric::greaterthan),
    f!(
        "greaterthanorequalto",
        ["a", "b"],
        numeric::greaterthanorequalto
    ),
    f!("hasindex", ["collection", "key"], collections::hasindex),
    f!("homedir", [], strings::homedir),
    f!("indent", ["spaces", "str"], strings::indent),
    f!("index", ["collection", "key"], collections::index),
    f!("indexof", ["list", "value"], collections::indexof),
    f!("int", ["num"], numeric::int),
    f!("join", ["separator"], "lists", strings::join),
    f!("jsondecode", ["str"], encoding::jsondecode),
    f!("jsonencode", ["val"], encoding::jsonencode),
    f!("keys", ["inputMap"], collections::keys),
    f!("length", ["collection"], collections::length),
    f!("lessthan", ["a", "b"], numeric::lessthan),
    f!("lessthanorequalto", ["a", "b"], numeric::lessthanorequalto),
    f!("log", ["num", "base"], numeric::log),
    f!(
        "lookup",
        ["inputMap", "key", "default"],
        collections::lookup
    ),
    f!("lower", ["str"], strings::lower),
    f!("max", [], "numbers", numeric::max),
    f!("md5", ["str"], crypto::md5),
    f!("merge", [], "maps", collections::merge),
    f!("min", [], "numbers", numeric::min),
    f!("modulo", ["a", "b"], numeric::modulo),
    f!("multiply", ["a", "b"], numeric::multiply),
    f!("negate", ["num"], numeric::negate),
    f!("not", ["val"], numeric::not),
    f!("notequal", ["a", "b"], numeric::notequal),
    f!("or", ["a", "b"], numeric::or),
    f!("parseint", ["number", "base"], numeric::parseint),
    f!("pow", ["num", "power"], numeric::pow),
    f!("range", [], "params", collections::range),
    f!("regex", ["pattern", "string"], regex::regex),
    f!(
        "regex_replace",
        ["str", "substr", "replace"],
        regex::regex_replace
    ),
    f!("regexall", ["pattern", "string"], regex::regexall),
    f!("replace", ["str", "substr", "replace"], strings::replace),
    f!("reverse", ["str"], strings::reverse),
    f!("reverselist", ["list"], collections::reverselist),
    f!("rsadecrypt", ["ciphertext", "privatekey"], rsa::rsadecrypt),
    f!("sanitize", ["name"], strings::sanitize),
    f!("semvercmp", ["version", "contraint"], semver::semvercmp),
    f!("sethaselement", ["set", "elem"], sets::sethaselement),
    f!(
        "setintersection",
        ["first_set"],
        "other_sets",
        sets::setintersection
    ),
    f!("setproduct", [], "sets", sets::setproduct),
    f!("setsubtract", ["a", "b"], sets::setsubtract),
    f!(
        "setsymmetricdifference",
        ["first_set"],
        "other_sets",
        sets::setsymmetricdifference
    ),
    f!("setunion", ["first_set"], "other_sets", sets::setunion),
    f!("sha1", ["str"], crypto::sha1),
    f!("sha256", ["str"], crypto::sha256),
    f!("sha512", ["str"], crypto::sha512),
    f!("signum", ["num"], numeric::signum),
    f!(
        "slice",
        ["list", "start_index", "end_index"],
        collections::slice
    ),
    f!("sort", ["list"], collections::sort),
    f!("split", ["separator", "str"], strings::split),
    f!("strlen", ["str"], strings::strlen),
    f!("substr", ["str", "offset", "length"], strings::substr),
    f!("subtract", ["a", "b"], numeric::subtract),
    f!("timeadd", ["timestamp", "duration"], time::timeadd),
    f!("timestamp", [], time::timestamp),
    f!("title", ["str"], strings::title),
    f!("trim", ["str", "cutset"], strings::trim),
    f!("trimprefix", ["str", "prefix"], strings::trimprefix),
    f!("trimspace", ["str"], strings::trimspace),
    f!("trimsuffix", ["str", "suffix"], strings::trimsuffix),
    f!(
        "unixtimestampparse",
        ["unix_timestamp"],
        time::unixtimestampparse
    ),
    f!("upper", ["str"], strings::upper),
    f!("urlencode", ["str"], encoding::urlencode),
    f!("uuidv4", [], crypto::uuidv4),
    f!("uuidv5", ["namespace", "name"], crypto::uuidv5),
    f!("values", ["mapping"], collections::values),
    f!("zipmap", ["keys", "values"], collections::zipmap),
];

/// Finds a function by name.
pub fn lookup(name: &str) -> Option<&'static Function> {
    FUNCTIONS
        .binary_search_by(|f| f.name.cmp(name))
        .ok()
        .map(|i| &FUNCTIONS[i])
}

/// The names of all functions (for "did you mean" hints).
pub fn names() -> impl Iterator<Item = &'static str> {
    FUNCTIONS.iter().map(|f| f.name)
}

/// Calls the function `name` with `args`: `None` if there is no such function.
pub fn call(name: &str, args: &[Value]) -> Option<Result<Value, FuncError>> {
    lookup(name).map(|f| f.call(args))
}
