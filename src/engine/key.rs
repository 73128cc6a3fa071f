//! Cache keys: what makes two steps "the same".
//!
//! A key is `sha256:<hex>` over a canonical byte encoding of the step. The encoding is a
//! sequence of fields; every field is written as
//!
//! ```text
//! u64-be(len(name)) name u64-be(len(value)) value
//! ```
//!
//! so no two different field sequences can encode to the same bytes (a value cannot
//! "leak" into the next field). The first field is always `("kiln-key", VERSION)`; bump
//! [`VERSION`] whenever the meaning of a field changes, which invalidates every old key.
//!
//! A step key ([`step_key`]) encodes, in this order: `kind` (`workdir`, `copy`, `add`,
//! `run`), `parent` (the key of the step before it, or of the stage's base), `platform`
//! (`os/arch[/variant]`), then the step's expanded arguments as `arg` fields in the order
//! the planner lists them (`Step::key_fields`). A base key
//! ([`base_key`]) encodes `kind=base`, the base kind (`image`, `scratch`, `context`), the
//! platform, and the manifest digest or context name. Lists are written as one field per
//! item after a `len` field with the item count.
//!
//! Inputs that only the executor knows (the content of the COPY sources after
//! `.dockerignore`, a named context's files) are mixed in afterwards with
//! [`with_inputs`]: `sha256(encode(("kiln-key", VERSION), ("base", key), ("inputs", digest)))`.

use sha2::{Digest as _, Sha256};

/// Version of the encoding; part of every key.
pub const VERSION: &str = "1";

/// Builds one key from fields (see the module docs for the encoding).
#[derive(Clone)]
pub struct KeyBuilder {
    hasher: Sha256,
}

impl Default for KeyBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyBuilder {
    pub fn new() -> Self {
        let mut k = KeyBuilder {
            hasher: Sha256::new(),
        };
        k.field("kiln-key", VERSION);
        k
    }

    /// Adds one `name = value` field.
    pub fn field(&mut self, name: &str, value: &str) -> &mut Self {
        self.raw(name.as_bytes());
        self.raw(value.as_bytes());
        self
    }

    /// Adds a list: a `len` field with the count, then one `name` field per item.
    pub fn list<S: AsRef<str>>(&mut self, name: &str, items: &[S]) -> &mut Self {
        self.field(&format!("{name}.len"), &items.len().to_string());
        for i in items {
            self.field(name, i.as_ref());
        }
        self
    }

    /// An optional value: `name.some` + value, or `name.none`.
    pub fn opt(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        match value {
            Some(v) => self.field(&format!("{name}.some"), v),
            None => self.field(&format!("{name}.none"), ""),
        }
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.hasher.update((bytes.len() as u64).to_be_bytes());
        self.hasher.update(bytes);
    }

    /// `sha256:<hex>`.
    pub fn finish(self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.finalize()))
    }
}

/// The key of a stage's starting point: `kind` is `image` (with the manifest digest),
/// `scratch`, `context` (a named context: its name and what it points to) or `stage`
/// (with the parent stage's final key).
pub fn base_key(kind: &str, platform: &str, identity: &str) -> String {
    let mut k = KeyBuilder::new();
    k.field("kind", "base")
        .field("base", kind)
        .field("platform", platform)
        .field("identity", identity);
    k.finish()
}

/// The key of one step before its inputs are known: the step kind, the parent key, the
/// platform, and the expanded arguments (`args`, in a fixed order).
pub fn step_key(kind: &str, parent: &str, platform: &str, args: &[(String, String)]) -> String {
    let mut k = KeyBuilder::new();
    k.field("kind", kind)
        .field("parent", parent)
        .field("platform", platform)
        .field("args.len", &args.len().to_string());
    for (name, value) in args {
        k.field(name, value);
    }
    k.finish()
}

/// Mixes the content digest of a step's inputs (COPY sources, mounted contexts) into
/// its planned key.
pub fn with_inputs(base_key: &str, input_digest: &str) -> String {
    let mut k = KeyBuilder::new();
    k.field("base", base_key).field("inputs", input_digest);
    k.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn same_inputs_same_key() {
        let a = step_key("run", "p", "linux/amd64", &args(&[("cmd", "true")]));
        let b = step_key("run", "p", "linux/amd64", &args(&[("cmd", "true")]));
        assert_eq!(a, b);
        assert!(a.starts_with("sha256:") && a.len() == 71);
    }

    #[test]
    fn any_change_changes_the_key() {
        let base = step_key("run", "p", "linux/amd64", &args(&[("cmd", "true")]));
        for other in [
            step_key("copy", "p", "linux/amd64", &args(&[("cmd", "true")])),
            step_key("run", "q", "linux/amd64", &args(&[("cmd", "true")])),
            step_key("run", "p", "linux/arm64", &args(&[("cmd", "true")])),
            step_key("run", "p", "linux/amd64", &args(&[("cmd", "false")])),
            step_key("run", "p", "linux/amd64", &args(&[("env", "true")])),
            step_key("run", "p", "linux/amd64", &args(&[])),
        ] {
            assert_ne!(base, other);
        }
        assert_ne!(
            base_key("image", "linux/amd64", "sha256:a"),
            base_key("image", "linux/amd64", "sha256:b")
        );
        assert_ne!(
            with_inputs(&base, "sha256:1"),
            with_inputs(&base, "sha256:2")
        );
    }

    #[test]
    fn fields_do_not_run_into_each_other() {
        let a = step_key("run", "p", "x", &args(&[("a", "bc")]));
        let b = step_key("run", "p", "x", &args(&[("ab", "c")]));
        assert_ne!(a, b);
        let mut l1 = KeyBuilder::new();
        l1.list("x", &["a", "b"]);
        let mut l2 = KeyBuilder::new();
        l2.list("x", &["ab"]);
        assert_ne!(l1.finish(), l2.finish());
    }
}
