//! Drivers run resolved bake targets. `embedded` builds them in-process with kiln's own
//! engine; a BuildKit driver for remote nodes will take the same targets.

pub mod embedded;
