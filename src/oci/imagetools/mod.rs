//! `kiln imagetools inspect` and `kiln imagetools create`: the library side. The CLI
//! parses flags, builds a runtime and prints what these functions return.

pub mod create;
pub mod inspect;
pub mod model;
pub mod tabwriter;
pub mod template;
pub mod value;

use super::layout::Layout;
use super::registry::{Client, FetchedManifest};
use super::{Digest, OciError, Reference};

pub use create::{create, CreateOptions};
pub use inspect::{inspect, InspectOptions};

/// Where manifests and blobs are read from: a registry repository or an OCI layout.
pub enum Store<'a> {
    Registry { client: &'a Client, repo: Reference },
    Layout(Layout),
}

impl Store<'_> {
    /// A manifest or index by digest, verified.
    pub async fn manifest(&self, digest: &Digest) -> Result<FetchedManifest, OciError> {
        match self {
            Store::Registry { client, repo } => {
                client.get_manifest(&repo.at_digest(digest.clone())).await
            }
            Store::Layout(l) => l.manifest(digest),
        }
    }

    /// A small blob (config, attestation statement), verified.
    pub async fn blob(&self, digest: &Digest) -> Result<Vec<u8>, OciError> {
        match self {
            Store::Registry { client, repo } => client.get_blob(repo, digest).await,
            Store::Layout(l) => l.read_blob(digest),
        }
    }
}

/// `oci-layout://PATH[:TAG|@DIGEST]` split into path and target.
pub fn parse_layout_ref(s: &str) -> Option<(String, Option<String>, Option<Digest>)> {
    let rest = s.strip_prefix("oci-layout://")?;
    if let Some((path, d)) = rest.rsplit_once('@') {
        return Some((path.to_string(), None, Digest::parse(d).ok()));
    }
    let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    match rest[last_slash..].rfind(':') {
        Some(i) => Some((
            rest[..last_slash + i].to_string(),
            Some(rest[last_slash + i + 1..].to_string()),
            None,
        )),
        None => Some((rest.to_string(), None, None)),
    }
}
