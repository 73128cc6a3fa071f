//! Loading images into a Docker engine (`--load`): a docker-archive tar sent to
//! `POST /images/load` over the engine's unix socket (`$DOCKER_HOST`, default
//! `/var/run/docker.sock`), streamed from disk.

use super::OciError;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

pub const ENV_DOCKER_HOST: &str = "DOCKER_HOST";
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// The engine's socket from `$DOCKER_HOST` (only `unix://` is supported).
pub fn socket_path() -> Result<PathBuf, OciError> {
    match std::env::var(ENV_DOCKER_HOST) {
        Ok(h) if !h.is_empty() => match h.strip_prefix("unix://") {
            Some(p) => Ok(PathBuf::from(p)),
            None => Err(OciError::Invalid {
                message: format!("${ENV_DOCKER_HOST}={h} is not supported for --load"),
                hint: Some(
                    "use a unix:// socket (ssh:// and tcp:// engines are not supported yet)".into(),
                ),
            }),
        },
        _ => Ok(PathBuf::from(DEFAULT_SOCKET)),
    }
}

/// Decodes an HTTP/1.1 chunked body (tolerates a missing final chunk).
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = body.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&body[..pos]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        body = &body[pos + 2..];
        if size == 0 || size > body.len() {
            break;
        }
        out.extend_from_slice(&body[..size]);
        body = body.get(size + 2..).unwrap_or(&[]);
    }
    out
}

/// Sends the docker-archive at `archive` to the engine at `socket`; returns the engine's
/// messages (`Loaded image: ...`).
pub async fn load_archive(socket: &Path, archive: &Path) -> Result<String, OciError> {
    let engine = socket.display().to_string();
    let fail = |m: String| OciError::Transport {
        registry: format!("docker engine at {engine}"),
        message: m,
    };
    let mut file = tokio::fs::File::open(archive)
        .await
        .map_err(|e| OciError::io(format!("reading {}", archive.display()), e))?;
    let len = file
        .metadata()
        .await
        .map_err(|e| OciError::io(format!("reading {}", archive.display()), e))?
        .len();
    let mut stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| fail(format!("cannot connect: {e}")))?;
    let head = format!(
        "POST /images/load?quiet=1 HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| fail(e.to_string()))?;
    tokio::io::copy(&mut file, &mut stream)
        .await
        .map_err(|e| fail(format!("sending the archive: {e}")))?;
    stream.flush().await.map_err(|e| fail(e.to_string()))?;
    let mut resp = Vec::new();
    stream
        .read_to_end(&mut resp)
        .await
        .map_err(|e| fail(format!("reading the answer: {e}")))?;
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| fail("malformed HTTP answer".into()))?;
    let header = String::from_utf8_lossy(&resp[..split]).to_string();
    let raw_body = &resp[split + 4..];
    let body = if header
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(raw_body)
    } else {
        raw_body.to_vec()
    };
    let status: u16 = header
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let text = String::from_utf8_lossy(&body).to_string();
    let mut messages = String::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) => {
                if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
                    return Err(fail(format!("load refused: {e}")));
                }
                if let Some(s) = v.get("stream").and_then(|s| s.as_str()) {
                    messages.push_str(s);
                }
            }
            Err(_) if status >= 400 => {
                return Err(fail(format!("load refused ({status}): {}", line.trim())))
            }
            Err(_) => {}
        }
    }
    if !(200..300).contains(&status) {
        return Err(fail(format!(
            "load refused with status {status}: {}",
            text.trim()
        )));
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunks() {
        assert_eq!(
            dechunk(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            b"hello world"
        );
        assert_eq!(dechunk(b"zz\r\n"), b"");
    }
}
