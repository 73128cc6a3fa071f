//! Evaluation of bake definitions: values, functions, variables, targets.

pub mod context;
pub mod convert;
pub mod expr;
pub mod stdlib;
pub mod typeexpr;
pub mod value;
pub mod varenv;
