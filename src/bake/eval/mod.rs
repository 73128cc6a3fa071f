//! Evaluation of bake definitions: values, functions, variables, targets.

pub mod convert;
pub mod stdlib;
pub mod value;
