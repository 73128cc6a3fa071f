//! The bake standard library: the functions `docker buildx bake` provides, with go-cty
//! semantics. `try` and `can` are not here: they are lazy and live in the evaluator.
//!
//! Interface used by the evaluator: [`lookup`] a function by name, check its arity with
//! [`Function::accepts`], then call [`Function::call`].

use super::value::Value;

/// An error from a function call. `arg` is the 0-based index of the offending argument,
/// when one is to blame (the evaluator points the diagnostic at it).
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

    pub fn call(&self, args: &[Value]) -> Result<Value, FuncError> {
        (self.imp)(args)
    }
}

/// All functions, sorted by name.
static FUNCTIONS: &[Function] = &[];

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
