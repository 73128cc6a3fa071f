//! Blob operations of the registry client: existence checks, streamed downloads and
//! uploads, cross-repository mounts.

use super::{pull_scope, push_scope, read_limited, root_cause, Client, MAX_INLINE_BLOB_SIZE};
use crate::oci::{Digest, OciError, Reference};
use futures_util::StreamExt as _;
use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, StatusCode};
use sha2::Digest as _;
use std::path::Path;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

impl Client {
    fn blob_url(&self, r: &Reference, digest: &Digest) -> String {
        format!(
            "{}{}/blobs/{digest}",
            self.base_url(r.registry()),
            r.repository()
        )
    }

    /// The size of a blob in `r`'s repository, or `None` when it is not there.
    pub async fn blob_exists(
        &self,
        r: &Reference,
        digest: &Digest,
    ) -> Result<Option<i64>, OciError> {
        let url = self.blob_url(r, digest);
        let scopes = [pull_scope(r.repository())];
        let resp = self
            .send(r.registry(), &scopes, Method::HEAD, &url, &|q| q)
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(
                resp.headers()
                    .get(reqwest::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            s => Err(self.status_error(
                r.registry(),
                "HEAD",
                &url,
                s,
                &format!("{}@{digest}", r.name()),
            )),
        }
    }

    async fn blob_response(&self, r: &Reference, digest: &Digest) -> Result<Response, OciError> {
        let url = self.blob_url(r, digest);
        let scopes = [pull_scope(r.repository())];
        let resp = self
            .send(r.registry(), &scopes, Method::GET, &url, &|q| q)
            .await?;
        if !resp.status().is_success() {
            return Err(self.status_error(
                r.registry(),
                "GET",
                &url,
                resp.status(),
                &format!("{}@{digest}", r.name()),
            ));
        }
        Ok(resp)
    }

    /// Reads a small blob (config, attestation) into memory, verifying its digest.
    pub async fn get_blob(&self, r: &Reference, digest: &Digest) -> Result<Vec<u8>, OciError> {
        self.retry_interrupted(|| self.get_blob_once(r, digest))
            .await
    }

    async fn get_blob_once(&self, r: &Reference, digest: &Digest) -> Result<Vec<u8>, OciError> {
        let resp = self.blob_response(r, digest).await?;
        let what = format!("blob {}@{digest}", r.name());
        let bytes = read_limited(resp, MAX_INLINE_BLOB_SIZE, &what, r.registry()).await?;
        digest.verify(&what, &bytes)?;
        Ok(bytes)
    }

    /// Streams a blob into `path` (memory stays flat), verifying the digest; the file is
    /// written under a temporary name and renamed into place only when it is complete.
    /// A broken transfer is retried from the start.
    pub async fn blob_to_file(
        &self,
        r: &Reference,
        digest: &Digest,
        path: &Path,
    ) -> Result<u64, OciError> {
        self.retry_interrupted(|| self.blob_to_file_once(r, digest, path))
            .await
    }

    async fn blob_to_file_once(
        &self,
        r: &Reference,
        digest: &Digest,
        path: &Path,
    ) -> Result<u64, OciError> {
        let resp = self.blob_response(r, digest).await?;
        let tmp = path.with_extension("partial");
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| OciError::io(format!("creating {}", tmp.display()), e))?;
        let mut hasher = sha2::Sha256::new();
        let mut n = 0u64;
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| OciError::Interrupted {
                registry: r.registry().to_string(),
                message: format!("reading blob {digest}: {}", root_cause(&e)),
            })?;
            hasher.update(&chunk);
            n += chunk.len() as u64;
            file.write_all(&chunk)
                .await
                .map_err(|e| OciError::io(format!("writing {}", tmp.display()), e))?;
        }
        file.flush()
            .await
            .map_err(|e| OciError::io(format!("writing {}", tmp.display()), e))?;
        drop(file);
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if digest.algorithm() == "sha256" && actual != digest.to_string() {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(OciError::DigestMismatch {
                what: format!("blob {}@{digest}", r.name()),
                expected: digest.to_string(),
                actual,
            });
        }
        tokio::fs::rename(&tmp, path)
            .await
            .map_err(|e| OciError::io(format!("renaming {}", tmp.display()), e))?;
        Ok(n)
    }

    /// Asks the registry to mount a blob from another repository of the same registry.
    /// Returns false when it did not (the caller then uploads).
    pub async fn mount_blob(
        &self,
        to: &Reference,
        from: &Reference,
        digest: &Digest,
    ) -> Result<bool, OciError> {
        if to.registry() != from.registry() {
            return Ok(false);
        }
        let url = format!(
            "{}{}/blobs/uploads/?mount={digest}&from={}",
            self.base_url(to.registry()),
            to.repository(),
            from.repository()
        );
        let scopes = [push_scope(to.repository()), pull_scope(from.repository())];
        let resp = self
            .send(to.registry(), &scopes, Method::POST, &url, &|q| {
                q.header(reqwest::header::CONTENT_LENGTH, "0")
            })
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                // an upload session was opened instead; close it
                if let Some(loc) = self.location(to.registry(), resp.headers()) {
                    let _ = self
                        .send(to.registry(), &scopes, Method::DELETE, &loc, &|q| q)
                        .await;
                }
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    fn location(&self, registry: &str, headers: &HeaderMap) -> Option<String> {
        let loc = headers.get(LOCATION)?.to_str().ok()?;
        if loc.starts_with("http://") || loc.starts_with("https://") {
            return Some(loc.to_string());
        }
        let base = self.base_url(registry);
        let origin = base.trim_end_matches("/v2/");
        Some(format!(
            "{origin}{}",
            if loc.starts_with('/') {
                loc.to_string()
            } else {
                format!("/{loc}")
            }
        ))
    }

    async fn start_upload(&self, r: &Reference) -> Result<String, OciError> {
        let url = format!(
            "{}{}/blobs/uploads/",
            self.base_url(r.registry()),
            r.repository()
        );
        let scopes = [push_scope(r.repository())];
        let resp = self
            .send(r.registry(), &scopes, Method::POST, &url, &|q| {
                q.header(reqwest::header::CONTENT_LENGTH, "0")
            })
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self.status_error(r.registry(), "POST", &url, resp.status(), &r.name()));
        }
        self.location(r.registry(), resp.headers())
            .ok_or_else(|| OciError::Status {
                registry: r.registry().to_string(),
                method: "POST".into(),
                path: format!("/v2/{}/blobs/uploads/", r.repository()),
                status: 202,
                detail: Some("no Location header".into()),
            })
    }

    fn with_digest_query(loc: &str, digest: &Digest) -> String {
        let sep = if loc.contains('?') { '&' } else { '?' };
        format!("{loc}{sep}digest={digest}")
    }

    /// Uploads a blob held in memory (skipped when the registry already has it).
    pub async fn push_blob(
        &self,
        r: &Reference,
        digest: &Digest,
        bytes: &[u8],
    ) -> Result<(), OciError> {
        digest.verify("blob to upload", bytes)?;
        if self.blob_exists(r, digest).await?.is_some() {
            return Ok(());
        }
        let loc = self.start_upload(r).await?;
        let url = Self::with_digest_query(&loc, digest);
        let scopes = [push_scope(r.repository())];
        let body = bytes.to_vec();
        let resp = self
            .send(r.registry(), &scopes, Method::PUT, &url, &|q| {
                q.header(CONTENT_TYPE, "application/octet-stream")
                    .body(body.clone())
            })
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.status_error(
                r.registry(),
                "PUT",
                &url,
                resp.status(),
                &format!("{}@{digest}", r.name()),
            ));
        }
        Ok(())
    }

    /// Uploads a blob from a file, streaming it (skipped when the registry has it).
    pub async fn push_blob_file(
        &self,
        r: &Reference,
        digest: &Digest,
        path: &Path,
    ) -> Result<(), OciError> {
        if self.blob_exists(r, digest).await?.is_some() {
            return Ok(());
        }
        let loc = self.start_upload(r).await?;
        let url = Self::with_digest_query(&loc, digest);
        let scopes = [push_scope(r.repository())];
        let len = std::fs::metadata(path)
            .map_err(|e| OciError::io(format!("reading {}", path.display()), e))?
            .len();
        let path = path.to_path_buf();
        let resp = self
            .send(r.registry(), &scopes, Method::PUT, &url, &|q| {
                let stream = file_stream(path.clone());
                q.header(CONTENT_TYPE, "application/octet-stream")
                    .header(reqwest::header::CONTENT_LENGTH, len)
                    .body(reqwest::Body::wrap_stream(stream))
            })
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.status_error(
                r.registry(),
                "PUT",
                &url,
                resp.status(),
                &format!("{}@{digest}", r.name()),
            ));
        }
        Ok(())
    }
}

/// A file as a stream of 1 MiB chunks.
fn file_stream(
    path: std::path::PathBuf,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send {
    futures_util::stream::unfold(None::<tokio::fs::File>, move |state| {
        let path = path.clone();
        async move {
            let mut file = match state {
                Some(f) => f,
                None => match tokio::fs::File::open(&path).await {
                    Ok(f) => f,
                    Err(e) => return Some((Err(e), None)),
                },
            };
            let mut buf = vec![0u8; 1 << 20];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(bytes::Bytes::from(buf)), Some(file)))
                }
                Err(e) => Some((Err(e), None)),
            }
        }
    })
}
