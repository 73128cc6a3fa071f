//! The host paths a build reads or writes besides the store: the unprivileged RUN
//! executor must never remove or replace them while it rewrites `/`.

use super::BuildOptions;
use crate::engine::plan::NamedContext;
use std::path::{Path, PathBuf};

/// The store, context, Dockerfile, named local contexts and OCI layouts, secret files,
/// SSH agent sockets, the Docker config (registry credentials), TLS roots named by
/// `SSL_CERT_FILE`/`SSL_CERT_DIR` and a `unix://` `DOCKER_HOST` socket.
pub(super) fn build_paths(opts: &BuildOptions, store: &Path) -> Vec<PathBuf> {
    let mut paths = vec![
        store.to_path_buf(),
        opts.context.clone(),
        opts.dockerfile.clone(),
    ];
    for nc in opts.request.named_contexts.values() {
        match nc {
            NamedContext::Local(dir) => paths.push(dir.clone()),
            NamedContext::OciLayout(r) => paths.push(layout_dir(r)),
            NamedContext::Image(_) | NamedContext::Target(_) => {}
        }
    }
    for s in opts.secrets.iter().filter(|s| s.env.is_empty()) {
        paths.push(PathBuf::from(if s.src.is_empty() { &s.id } else { &s.src }));
    }
    for s in &opts.ssh {
        paths.extend(s.paths.iter().map(PathBuf::from));
        if s.paths.is_empty() {
            paths.extend(std::env::var_os("SSH_AUTH_SOCK").map(PathBuf::from));
        }
    }
    paths.extend(client_paths());
    paths.retain(|p| !p.as_os_str().is_empty());
    paths
}

/// The Docker config directory, `SSL_CERT_FILE`/`SSL_CERT_DIR` and a local Docker
/// engine socket.
pub(crate) fn client_paths() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    match std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        Some(dir) => paths.push(PathBuf::from(dir)),
        None => paths.extend(std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker"))),
    }
    // TLS roots for pushes after the build (read by rustls-native-certs).
    for var in ["SSL_CERT_FILE", "SSL_CERT_DIR"] {
        paths.extend(
            std::env::var_os(var)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
        );
    }
    if let Some(sock) = std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
    {
        paths.push(sock);
    }
    paths
}

/// The directory of `oci-layout://DIR[:TAG|@DIGEST]`.
fn layout_dir(reference: &str) -> PathBuf {
    let rest = reference.strip_prefix("oci-layout://").unwrap_or(reference);
    let rest = rest.split_once('@').map_or(rest, |(d, _)| d);
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[last_slash..].find(':') {
        Some(i) => PathBuf::from(&rest[..last_slash + i]),
        None => PathBuf::from(rest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_dirs() {
        assert_eq!(
            layout_dir("oci-layout:///a/b:latest"),
            PathBuf::from("/a/b")
        );
        assert_eq!(
            layout_dir("oci-layout:///a/b@sha256:00"),
            PathBuf::from("/a/b")
        );
        assert_eq!(layout_dir("oci-layout://rel/dir"), PathBuf::from("rel/dir"));
    }
}
