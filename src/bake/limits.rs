//! Limits that keep hostile or mistaken bake files from exhausting the machine.
//! Exceeding one is an error that names the limit.

/// Most instances one `matrix` may expand to.
pub const MAX_MATRIX_INSTANCES: usize = 10_000;
/// Deepest nesting of expressions the evaluator follows.
pub const MAX_EXPR_DEPTH: usize = 200;
