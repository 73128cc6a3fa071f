//! The client against a scripted HTTP server on loopback: retries, bearer tokens, basic
//! auth, and refusal of bad content.

use super::*;
use crate::oci::auth::Secret;
use std::sync::{Arc, Mutex as StdMutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone)]
struct Req {
    line: String,
    auth: Option<String>,
}

type Handler = Arc<dyn Fn(usize, &Req) -> (u16, Vec<(String, String)>, Vec<u8>) + Send + Sync>;

/// Serves one request per connection with `handler(n, request)`, n counting from 0.
async fn serve(handler: Handler) -> (String, Arc<StdMutex<Vec<Req>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let log = Arc::new(StdMutex::new(Vec::new()));
    let log2 = log.clone();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(k) => buf.extend_from_slice(&chunk[..k]),
                }
            }
            let head = String::from_utf8_lossy(&buf).into_owned();
            let line = head.lines().next().unwrap_or("").to_string();
            let auth = head
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                .map(|l| l["authorization:".len()..].trim().to_string());
            let req = Req { line, auth };
            log2.lock().unwrap().push(req.clone());
            let (status, headers, body) = handler(n, &req);
            n += 1;
            let mut resp = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
            if !headers.iter().any(|(k, _)| k == "Content-Length") {
                resp.push_str(&format!("Content-Length: {}\r\n", body.len()));
            }
            for (k, v) in headers {
                resp.push_str(&format!("{k}: {v}\r\n"));
            }
            resp.push_str("\r\n");
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.write_all(&body).await;
            let _ = sock.shutdown().await;
        }
    });
    (addr, log)
}

fn client() -> Client {
    let cfg = ClientConfig {
        base_delay: Duration::from_millis(1),
        ..ClientConfig::default()
    };
    Client::with_docker_config(cfg, DockerConfig::default()).unwrap()
}

const INDEX: &[u8] =
    br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;

fn ok_manifest() -> (u16, Vec<(String, String)>, Vec<u8>) {
    (
        200,
        vec![("Content-Type".into(), media_type::OCI_INDEX.into())],
        INDEX.to_vec(),
    )
}

#[tokio::test]
async fn retries_server_errors_honouring_retry_after() {
    let (addr, log) = serve(Arc::new(|n, _| match n {
        0 => (503, vec![("Retry-After".into(), "0".into())], vec![]),
        1 => (429, vec![], vec![]),
        _ => ok_manifest(),
    }))
    .await;
    let r = Reference::parse(&format!("{addr}/a/b:1")).unwrap();
    let m = client().get_manifest(&r).await.unwrap();
    assert_eq!(m.media_type, MediaType::OciIndex);
    assert_eq!(m.digest, Digest::sha256(INDEX));
    assert_eq!(log.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn gives_up_after_max_attempts() {
    let (addr, log) = serve(Arc::new(|_, _| (502, vec![], vec![]))).await;
    let r = Reference::parse(&format!("{addr}/a/b:1")).unwrap();
    let err = client().get_manifest(&r).await.unwrap_err();
    assert!(matches!(err, OciError::Status { status: 502, .. }), "{err}");
    assert_eq!(log.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn bearer_token_flow_with_basic_credentials() {
    let realm = Arc::new(StdMutex::new(String::new()));
    let realm2 = realm.clone();
    let (addr, log) = serve(Arc::new(move |_, req| {
        if req.line.starts_with("GET /token") {
            return (200, vec![], br#"{"token":"tok-123"}"#.to_vec());
        }
        if req.auth.as_deref() == Some("Bearer tok-123") {
            return ok_manifest();
        }
        let challenge = format!(r#"Bearer realm="{}",service="reg""#, realm2.lock().unwrap());
        (401, vec![("WWW-Authenticate".into(), challenge)], vec![])
    }))
    .await;
    *realm.lock().unwrap() = format!("http://{addr}/token");
    let c = client();
    c.set_credentials(
        &addr,
        Credential {
            username: "u".into(),
            secret: Secret::new("s3cret"),
            identity_token: false,
        },
    );
    let r = Reference::parse(&format!("{addr}/a/b:1")).unwrap();
    c.get_manifest(&r).await.unwrap();
    let token_req = {
        let log = log.lock().unwrap();
        log.iter()
            .find(|q| q.line.starts_with("GET /token"))
            .cloned()
            .unwrap()
    };
    assert!(
        token_req.line.contains("scope=repository%3Aa%2Fb%3Apull"),
        "{}",
        token_req.line
    );
    assert!(token_req.line.contains("service=reg"));
    assert!(token_req
        .auth
        .as_deref()
        .is_some_and(|a| a.starts_with("Basic ")));
    // the token is cached: one more request, no new token request
    let before = log.lock().unwrap().len();
    c.get_manifest(&r).await.unwrap();
    assert_eq!(log.lock().unwrap().len(), before + 1);
}

#[tokio::test]
async fn refused_credentials_name_registry_and_source_but_not_the_secret() {
    let (addr, _) = serve(Arc::new(|_, _| {
        (
            401,
            vec![("WWW-Authenticate".into(), r#"Basic realm="r""#.into())],
            vec![],
        )
    }))
    .await;
    let c = client();
    c.set_credentials(
        &addr,
        Credential {
            username: "u".into(),
            secret: Secret::new("hunter2"),
            identity_token: false,
        },
    );
    let r = Reference::parse(&format!("{addr}/a/b:1")).unwrap();
    let err = c.get_manifest(&r).await.unwrap_err();
    let msg = format!("{err} {err:?}");
    assert!(matches!(err, OciError::Unauthorized { .. }));
    assert!(msg.contains(&addr) && msg.contains("401"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
}

#[tokio::test]
async fn refuses_bad_content() {
    let (addr, _) = serve(Arc::new(|_, req| {
        if req.line.contains("/manifests/big") {
            (200, vec![], vec![b' '; (MAX_MANIFEST_SIZE + 1) as usize])
        } else if req.line.contains("/manifests/notjson") {
            (200, vec![], b"{nope".to_vec())
        } else if req.line.contains("/manifests/odd") {
            (
                200,
                vec![],
                br#"{"schemaVersion":2,"mediaType":"text/plain"}"#.to_vec(),
            )
        } else if req.line.contains("/manifests/missing") {
            (404, vec![], b"{}".to_vec())
        } else {
            ok_manifest()
        }
    }))
    .await;
    let c = client();
    let get = |t: &str| {
        let r = Reference::parse(&format!("{addr}/a/b{t}")).unwrap();
        let c = &c;
        async move { c.get_manifest(&r).await.unwrap_err() }
    };
    assert!(matches!(get(":big").await, OciError::TooLarge { .. }));
    assert!(matches!(
        get(":notjson").await,
        OciError::InvalidManifest { .. }
    ));
    assert!(matches!(
        get(":odd").await,
        OciError::UnsupportedMediaType { .. }
    ));
    assert!(matches!(get(":missing").await, OciError::NotFound { .. }));
    let wrong = format!("@sha256:{}", "1".repeat(64));
    assert!(matches!(get(&wrong).await, OciError::DigestMismatch { .. }));
}

#[tokio::test]
async fn retries_a_body_cut_short() {
    // the first answer promises more bytes than it sends, then closes
    let (addr, log) = serve(Arc::new(|n, _| {
        if n == 0 {
            (
                200,
                vec![("Content-Length".into(), "999".into())],
                INDEX[..10].to_vec(),
            )
        } else {
            ok_manifest()
        }
    }))
    .await;
    let r = Reference::parse(&format!("{addr}/a/b:1")).unwrap();
    let m = client().get_manifest(&r).await;
    assert!(m.is_ok(), "{m:?}");
    assert_eq!(log.lock().unwrap().len(), 2);
}

fn assert_send<T: Send>(_: &T) {}

#[test]
fn futures_are_send_for_multi_threaded_runtimes() {
    let c = client();
    let r = Reference::parse("127.0.0.1:1/a/b:1").unwrap();
    let d = Digest::sha256(b"");
    let p = std::path::Path::new("/nonexistent");
    assert_send(&c.get_manifest(&r));
    assert_send(&c.head_manifest(&r));
    assert_send(&c.blob_to_file(&r, &d, p));
    assert_send(&c.push_blob_file(&r, &d, p));
    assert_send(&c.mount_blob(&r, &r, &d));
    assert_send(&c.put_manifest(&r, b"{}", "x"));
    let layout = crate::oci::layout::Layout::create(tempfile::tempdir().unwrap().path()).unwrap();
    let desc = crate::oci::Descriptor::new("x", d.clone(), 0);
    assert_send(&crate::oci::transfer::push_from_layout(
        &c,
        &layout,
        &desc,
        &r,
        &[],
    ));
    let platform = crate::oci::Platform::host();
    assert_send(&crate::oci::transfer::pull_to_layout(
        &c, &r, &platform, &layout, None,
    ));
}

#[tokio::test]
async fn a_failed_push_publishes_no_manifest_or_tag() {
    // blobs are missing, uploads start, and every upload PUT fails with 503
    let (addr, log) = serve(Arc::new(|_, req| {
        let l = &req.line;
        if l.starts_with("HEAD ") {
            (404, vec![], vec![])
        } else if l.starts_with("POST ") {
            (
                202,
                vec![("Location".into(), "/v2/a/b/blobs/uploads/u1".into())],
                vec![],
            )
        } else {
            (503, vec![], vec![])
        }
    }))
    .await;
    let (_dir, layout, desc) = small_image();
    let target = Reference::parse(&format!("{addr}/a/b:v1")).unwrap();
    let err = crate::oci::transfer::push_from_layout(&client(), &layout, &desc, &target, &[])
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::Status { status: 503, .. }), "{err}");
    let log = log.lock().unwrap();
    assert!(
        log.iter()
            .filter(|r| r.line.starts_with("PUT /v2/a/b/blobs/"))
            .count()
            >= 4,
        "retried"
    );
    assert!(
        !log.iter()
            .any(|r| r.line.starts_with("PUT ") && r.line.contains("/manifests/")),
        "a manifest was pushed"
    );
}

/// A one-layer image in a fresh layout: (layout dir, layout, its descriptor).
fn small_image() -> (tempfile::TempDir, crate::oci::layout::Layout, Descriptor) {
    let dir = tempfile::tempdir().unwrap();
    let layout = crate::oci::layout::Layout::create(dir.path()).unwrap();
    let layer = layout.write_blob(b"layer").unwrap();
    let cfg = layout.write_blob(b"{}").unwrap();
    let m = crate::oci::image::ImageManifest::new(
        MediaType::OciManifest,
        Descriptor::new(media_type::OCI_CONFIG, cfg, 2),
        vec![Descriptor::new(media_type::OCI_LAYER_GZIP, layer, 5)],
    );
    let bytes = crate::oci::image::to_canonical_json(&m).unwrap();
    let md = layout.write_blob(&bytes).unwrap();
    let desc = Descriptor::new(media_type::OCI_MANIFEST, md, bytes.len() as i64);
    (dir, layout, desc)
}

#[tokio::test]
async fn a_push_to_a_tag_that_already_names_the_manifest_sends_nothing() {
    let (_dir, layout, desc) = small_image();
    let digest = desc.digest.to_string();
    let (addr, log) = serve(Arc::new(move |_, req| {
        if req.line.starts_with("HEAD /v2/a/b/manifests/v1 ") {
            (
                200,
                vec![
                    ("Docker-Content-Digest".into(), digest.clone()),
                    ("Content-Type".into(), media_type::OCI_MANIFEST.into()),
                ],
                vec![],
            )
        } else {
            (500, vec![], vec![])
        }
    }))
    .await;
    let target = Reference::parse(&format!("{addr}/a/b:v1")).unwrap();
    let got = crate::oci::transfer::push_from_layout(&client(), &layout, &desc, &target, &[])
        .await
        .unwrap();
    assert_eq!(got, desc.digest);
    let lines: Vec<String> = log.lock().unwrap().iter().map(|r| r.line.clone()).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
}

#[tokio::test]
async fn a_push_to_a_tag_puts_the_manifest_once_under_the_tag() {
    let (_dir, layout, desc) = small_image();
    let (addr, log) = serve(Arc::new(|_, req| {
        let l = &req.line;
        if l.starts_with("HEAD /v2/a/b/manifests/") {
            (404, vec![], vec![])
        } else if l.starts_with("HEAD /v2/a/b/blobs/") {
            (200, vec![("Content-Length".into(), "2".into())], vec![])
        } else if l.starts_with("PUT /v2/a/b/manifests/v1 ") {
            (201, vec![], vec![])
        } else {
            (500, vec![], vec![])
        }
    }))
    .await;
    let target = Reference::parse(&format!("{addr}/a/b:v1")).unwrap();
    crate::oci::transfer::push_from_layout(&client(), &layout, &desc, &target, &[])
        .await
        .unwrap();
    let puts: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.line.starts_with("PUT "))
        .map(|r| r.line.clone())
        .collect();
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert!(puts[0].starts_with("PUT /v2/a/b/manifests/v1 "), "{puts:?}");
}
