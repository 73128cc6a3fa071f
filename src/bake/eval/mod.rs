//! Evaluation of bake definitions: values, functions, variables, targets.

pub mod stdlib;
pub mod value;
