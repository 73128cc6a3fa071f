//! Docker image references: parsing, validation and normalisation.
//!
//! `alpine` -> `docker.io/library/alpine:latest`, `localhost:5000/a/b`, `host/r@sha256:...`,
//! `host/r:tag@sha256:...`. The grammar is the one of the Docker distribution reference
//! package: lower-case path components separated by `/`, an optional registry host with
//! port, a tag of up to 128 word characters, an optional digest.

use super::{Digest, OciError};
use std::fmt;

pub const DEFAULT_REGISTRY: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";
const LEGACY_REGISTRY: &str = "index.docker.io";
const MAX_NAME_LEN: usize = 255;

/// A fully qualified reference: registry, repository, optional tag and digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

fn invalid(input: &str, reason: &str) -> OciError {
    OciError::InvalidReference {
        input: input.to_string(),
        reason: reason.to_string(),
    }
}

fn is_alnum_lower(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(s: &str) -> bool {
    let b: Vec<char> = s.chars().collect();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        // a separator run
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep: String = b[start..i].iter().collect();
        let ok = sep == "." || sep == "_" || sep == "__" || sep.chars().all(|c| c == '-');
        if !ok {
            return false;
        }
    }
    true
}

/// A registry host: DNS-ish labels or an IPv4 address or `[ipv6]`, optional `:port`.
fn valid_domain(s: &str) -> bool {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, after)) => {
                if v6.is_empty() || !v6.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
                    return false;
                }
                match after {
                    "" => return true,
                    p => match p.strip_prefix(':') {
                        Some(port) => {
                            return !port.is_empty() && port.chars().all(|c| c.is_ascii_digit())
                        }
                        None => return false,
                    },
                }
            }
            None => return false,
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn valid_tag(t: &str) -> bool {
    let mut chars = t.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() || c == '_' => {}
        _ => return false,
    }
    t.len() <= 128 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

impl Reference {
    /// Parses and normalises a reference as the Docker CLI does (`ParseNormalizedNamed`).
    pub fn parse(input: &str) -> Result<Reference, OciError> {
        if input.is_empty() {
            return Err(invalid(input, "empty reference"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => {
                let digest = Digest::parse(d).map_err(|e| match e {
                    OciError::InvalidDigest { reason, .. } => invalid(input, &reason),
                    other => other,
                })?;
                (r, Some(digest))
            }
            None => (input, None),
        };
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                let tag = &rest[at + 1..];
                if !valid_tag(tag) {
                    return Err(invalid(input, &format!("invalid tag {tag:?}")));
                }
                (&rest[..at], Some(tag.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(invalid(input, "missing repository name"));
        }
        let (registry, remote) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                if !valid_domain(first) {
                    return Err(invalid(input, &format!("invalid registry host {first:?}")));
                }
                (first.to_string(), remainder.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        let registry = if registry == LEGACY_REGISTRY {
            DEFAULT_REGISTRY.to_string()
        } else {
            registry
        };
        let repository = if registry == DEFAULT_REGISTRY && !remote.contains('/') {
            format!("library/{remote}")
        } else {
            remote
        };
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(invalid(input, "repository name must be lowercase"));
        }
        for comp in repository.split('/') {
            if !valid_component(comp) {
                return Err(invalid(
                    input,
                    &format!("invalid repository path component {comp:?}"),
                ));
            }
        }
        if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(invalid(
                input,
                "repository name must not be more than 255 characters",
            ));
        }
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// A reference to `registry/repository` with neither tag nor digest (inputs validated
    /// by the caller, e.g. from another reference).
    pub fn repo(registry: &str, repository: &str) -> Reference {
        Reference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag: None,
            digest: None,
        }
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// Adds `:latest` when there is neither tag nor digest (Docker's `TagNameOnly`).
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// The same name and tag with `digest`.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same repository with only `digest` (no tag).
    pub fn at_digest(&self, digest: Digest) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// Docker's short form (`FamiliarString`): without `docker.io/` and `library/`.
    pub fn familiar(&self) -> String {
        let full = self.to_string();
        let short = full.strip_prefix("docker.io/").unwrap_or(&full);
        short.strip_prefix("library/").unwrap_or(short).to_string()
    }

    /// What to ask the registry for: the digest if there is one, else the tag (`latest`).
    pub fn target(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Reference {
    type Err = OciError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse(s).unwrap().with_default_tag().to_string()
    }

    #[test]
    fn familiar_form() {
        let f = |s: &str| Reference::parse(s).unwrap().with_default_tag().familiar();
        assert_eq!(f("alpine"), "alpine:latest");
        assert_eq!(f("user/app"), "user/app:latest");
        assert_eq!(f("docker.io/library/alpine:3"), "alpine:3");
        assert_eq!(f("127.0.0.1:5000/x/y:1"), "127.0.0.1:5000/x/y:1");
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(norm("alpine"), "docker.io/library/alpine:latest");
        assert_eq!(norm("user/app:1"), "docker.io/user/app:1");
        assert_eq!(
            norm("index.docker.io/alpine"),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(norm("localhost/a"), "localhost/a:latest");
        assert_eq!(norm("localhost:5000/a/b:v1.2"), "localhost:5000/a/b:v1.2");
        assert_eq!(norm("127.0.0.1:5077/itc/x"), "127.0.0.1:5077/itc/x:latest");
        assert_eq!(norm("[::1]:5000/x"), "[::1]:5000/x:latest");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(norm(&format!("r.io/x@{d}")), format!("r.io/x@{d}"));
        assert_eq!(norm(&format!("r.io/x:t@{d}")), format!("r.io/x:t@{d}"));
        let r = Reference::parse(&format!("r.io/x:t@{d}")).unwrap();
        assert_eq!(r.target(), d);
        assert_eq!(r.tag(), Some("t"));
        assert_eq!(r.registry(), "r.io");
        assert_eq!(
            Reference::parse("a.b/c__d-e/f.g").unwrap().repository(),
            "c__d-e/f.g"
        );
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "r.io/a//b",
            "r.io/a:bad tag",
            "r.io/a@sha256:abc",
            "r.io/a@md5:d41d8cd98f00b204e9800998ecf8427e",
            "Upper",
            "r.io/Upper",
            "a/-b",
            "a:",
            ":tag",
            "r.io/a_.b",
            "a/b/",
            "bad host!/a",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Reference::parse(&"a".repeat(300)).is_err());
    }
}
