//! The conformance corpus (`../shared/conformance/dockerfile`): every case BuildKit
//! built successfully is planned with a resolver serving the corpus base image, and the
//! final image config and layer count are compared with what BuildKit produced.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{plan, BaseImage, BaseResolver, BuildRequest, NamedContext, PlanError};
use crate::dockerfile::parse_dockerfile;
use crate::oci::image::{Image, ImageIndex, ImageManifest};
use crate::oci::Platform;

pub(crate) const BASE_REF: &str = "127.0.0.1:5098/base/busybox:latest";

pub(crate) fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/dockerfile");
    dir.join("cases").is_dir().then_some(dir)
}

/// Serves the corpus base layout for any reference.
pub(crate) struct LayoutResolver {
    dir: PathBuf,
}

impl LayoutResolver {
    pub(crate) fn new(dir: &Path) -> Self {
        LayoutResolver {
            dir: dir.join("base"),
        }
    }

    fn blob(&self, digest: &str) -> Result<Vec<u8>, String> {
        let hex = digest.strip_prefix("sha256:").ok_or("bad digest")?;
        std::fs::read(self.dir.join("blobs/sha256").join(hex)).map_err(|e| e.to_string())
    }

    fn json<T: serde::de::DeserializeOwned>(&self, digest: &str) -> Result<T, String> {
        serde_json::from_slice(&self.blob(digest)?).map_err(|e| e.to_string())
    }
}

impl BaseResolver for LayoutResolver {
    fn resolve(&mut self, reference: &str, platform: &Platform) -> Result<BaseImage, PlanError> {
        let err = |message: String| PlanError::Resolve {
            reference: reference.to_string(),
            message,
        };
        let top: ImageIndex = serde_json::from_slice(
            &std::fs::read(self.dir.join("index.json")).map_err(|e| err(e.to_string()))?,
        )
        .map_err(|e| err(e.to_string()))?;
        let first = top
            .manifests
            .first()
            .ok_or_else(|| err("empty layout".into()))?;
        let index: ImageIndex = self.json(&first.digest.to_string()).map_err(err)?;
        let Some(desc) = index.select(platform) else {
            return Err(PlanError::PlatformMissing {
                reference: reference.to_string(),
                platform: platform.to_string(),
                available: index
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                    .collect(),
            });
        };
        let manifest: ImageManifest = self.json(&desc.digest.to_string()).map_err(err)?;
        let config: Image = self
            .json(&manifest.config.digest.to_string())
            .map_err(err)?;
        Ok(BaseImage {
            reference: BASE_REF.to_string(),
            digest: desc.digest.to_string(),
            config,
            layers: manifest.layers,
        })
    }
}

/// POSIX-shell-like splitting of the `cmd` file (quotes, no expansion).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

fn kv(s: &str) -> (String, String) {
    let (k, v) = s.split_once('=').unwrap_or((s, ""));
    (k.to_string(), v.to_string())
}

/// The requests a case's `cmd` asks for (one per platform).
pub(crate) fn requests(cmd: &str) -> Result<Vec<BuildRequest>, String> {
    let host = Platform::new("linux", "amd64", "");
    let mut req = BuildRequest::new(host);
    req.build_args.insert("BASE".into(), BASE_REF.into());
    let mut platforms: Vec<Platform> = Vec::new();
    let w = words(cmd);
    let mut i = 0;
    while i < w.len() {
        let flag = w[i].as_str();
        let value = w
            .get(i + 1)
            .cloned()
            .ok_or(format!("{flag} needs a value"))?;
        match flag {
            "--platform" => {
                for p in value.split(',') {
                    platforms.push(Platform::parse(p).map_err(|e| e.to_string())?);
                }
            }
            "--build-arg" => {
                let (k, v) = kv(&value);
                req.build_args.insert(k, v);
            }
            "--target" => req.target = Some(value),
            "--label" => {
                let (k, v) = kv(&value);
                req.labels.insert(k, v);
            }
            "--build-context" => {
                let (k, v) = kv(&value);
                req.named_contexts.insert(k, NamedContext::parse(&v));
            }
            "--secret" => {}
            other => return Err(format!("unknown flag {other}")),
        }
        i += 2;
    }
    if platforms.is_empty() {
        return Ok(vec![req]);
    }
    Ok(platforms
        .into_iter()
        .map(|p| req.clone().for_platform(p))
        .collect())
}

const CONFIG_FIELDS: &[&str] = &[
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "Labels",
    "ExposedPorts",
    "Volumes",
    "StopSignal",
    "Healthcheck",
    "OnBuild",
    "Shell",
];

/// The compared part of a config, nulls dropped (serde_json maps are sorted).
pub(crate) fn summary(config: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for k in ["architecture", "os", "variant"] {
        if let Some(v) = config.get(k).filter(|v| !v.is_null() && *v != "") {
            out.insert(k.into(), v.clone());
        }
    }
    let mut c = serde_json::Map::new();
    if let Some(cfg) = config.get("config") {
        for k in CONFIG_FIELDS {
            if let Some(v) = cfg.get(*k).filter(|v| !v.is_null()) {
                c.insert(k.to_string(), v.clone());
            }
        }
    }
    out.insert("config".into(), Value::Object(c));
    // Round-trip so that object keys come out sorted however they were built.
    let sorted: BTreeMap<String, Value> = out.into_iter().collect();
    serde_json::to_value(sorted).unwrap_or(Value::Null)
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let s: BTreeMap<String, Value> =
                m.iter().map(|(k, v)| (k.clone(), sorted(v))).collect();
            serde_json::to_value(s).unwrap_or(Value::Null)
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn check_case(dir: &Path, case: &Path) -> Result<(), String> {
    let src = std::fs::read_to_string(case.join("Dockerfile")).map_err(|e| e.to_string())?;
    let cmd = std::fs::read_to_string(case.join("cmd")).unwrap_or_default();
    let df = parse_dockerfile(&src, "Dockerfile").map_err(|e| e.to_string())?;
    let reqs = requests(cmd.trim())?;
    let multi = reqs.len() > 1;
    for req in reqs {
        let mut resolver = LayoutResolver::new(dir);
        let p = plan(&df, &req, &mut resolver).map_err(|e| e.to_string())?;
        let img = &p.image;
        let expected_dir = if multi {
            let mut name = format!("{}_{}", img.os, img.architecture);
            if !img.variant.is_empty() {
                name = format!("{name}_{}", img.variant);
            }
            case.join("expected").join(name)
        } else {
            case.join("expected")
        };
        let want: Value = serde_json::from_str(
            &std::fs::read_to_string(expected_dir.join("config.json"))
                .map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        let got = summary(&serde_json::to_value(img).map_err(|e| e.to_string())?);
        let want = sorted(&summary(&want));
        let got = sorted(&got);
        if got != want {
            return Err(format!("config differs:\n got: {got}\nwant: {want}"));
        }
        let layers =
            std::fs::read_to_string(expected_dir.join("layers.txt")).map_err(|e| e.to_string())?;
        let n: usize = layers
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or("bad layers.txt")?;
        if p.layer_count() != n {
            return Err(format!(
                "{} layers planned, BuildKit made {n}",
                p.layer_count()
            ));
        }
        let want_history =
            std::fs::read_to_string(expected_dir.join("history.txt")).unwrap_or_default();
        let got_history: String = img
            .history
            .iter()
            .map(|h| {
                let cb = h.created_by.replace('\\', "\\\\").replace('\n', "\\n");
                let kind = if h.empty_layer { "empty" } else { "layer" };
                format!("{kind}\t{cb}\n")
            })
            .collect();
        if got_history != want_history {
            return Err(format!(
                "history differs:\n got:\n{got_history}want:\n{want_history}"
            ));
        }
    }
    Ok(())
}

#[test]
fn corpus_configs_and_layer_counts() {
    let Some(dir) = corpus_dir() else {
        eprintln!("note: conformance corpus not found next to the package; skipped");
        return;
    };
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir.join("cases"))
        .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    cases.sort();
    let (mut passed, mut failed) = (0, Vec::new());
    for case in cases {
        let meta: Value = match std::fs::read_to_string(case.join("meta.json"))
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
        {
            Some(m) => m,
            None => continue,
        };
        if meta.get("expect_error").and_then(Value::as_bool) != Some(false) {
            continue;
        }
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        match check_case(&dir, &case) {
            Ok(()) => passed += 1,
            Err(e) => failed.push(format!("FAIL {name}: {e}")),
        }
    }
    for f in &failed {
        eprintln!("{f}");
    }
    eprintln!("corpus plan: {passed} passed, {} failed", failed.len());
    assert!(failed.is_empty(), "{} corpus cases failed", failed.len());
}

/// The failing cases whose error BuildKit reports before running anything must fail in
/// parsing or planning; the others (missing context files, failing RUNs) must plan.
#[test]
fn corpus_errors_found_before_execution() {
    let Some(dir) = corpus_dir() else {
        eprintln!("note: conformance corpus not found next to the package; skipped");
        return;
    };
    let before_execution = [
        "err_empty_dockerfile",
        "err_from_expansion",
        "err_missing_target",
        "err_no_from",
        "err_platform_missing",
        "err_stage_cycle",
        "err_unknown_instruction",
    ];
    let Ok(entries) = std::fs::read_dir(dir.join("cases")) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let case = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if !name.starts_with("err_") {
            continue;
        }
        let src = std::fs::read_to_string(case.join("Dockerfile")).unwrap_or_default();
        let cmd = std::fs::read_to_string(case.join("cmd")).unwrap_or_default();
        let result: Result<(), String> = parse_dockerfile(&src, "Dockerfile")
            .map_err(|e| e.to_string())
            .and_then(|df| {
                for req in requests(cmd.trim())? {
                    plan(&df, &req, &mut LayoutResolver::new(&dir)).map_err(|e| e.to_string())?;
                }
                Ok(())
            });
        if before_execution.contains(&name.as_str()) {
            assert!(result.is_err(), "{name} should fail before execution");
        } else {
            assert!(result.is_ok(), "{name} should plan: {result:?}");
        }
    }
}
