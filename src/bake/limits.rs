//! Limits that keep hostile or mistaken bake files from exhausting the machine.
//! Exceeding one is an error that names the limit.

/// Most instances one `matrix` may expand to.
pub const MAX_MATRIX_INSTANCES: usize = 10_000;
/// Most expression evaluation steps for one invocation (each evaluated sub-expression
/// counts one): bounds runaway nested for-expressions.
pub const MAX_EVAL_STEPS: u64 = 20_000_000;
