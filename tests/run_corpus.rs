//! The RUN executor and differ against BuildKit's results in the conformance corpus
//! (`../shared/conformance/dockerfile/cases`): for the cases made only of `FROM $BASE`,
//! `RUN` and `USER`, each RUN runs in the sandbox over the layers before it, and its layer
//! must hold exactly the paths BuildKit's did (`layers.txt`); every file, link and dir
//! it writes must match the final tree (`tree.txt`: mode, owner, size, content).
//!
//! Needs root and overlayfs (skips with a reason otherwise); arm64 cases need
//! binfmt_misc's qemu-aarch64 (skipped with a note when missing).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::sandbox::{corpus, extract_base_layer, shell_spec, HELPER, PATH};
use kiln::engine::fs::{Content, Entry, EntryKind, FsView};
use kiln::engine::layer::{extract_layer, write_layer, LayerOptions};
use kiln::engine::layered_fs::LayeredFs;
use kiln::engine::run::{self, diff_upper, run_with_helper, MountSpec, NetworkMode, RunSpec};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn read_json(path: &Path) -> Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).expect("json")
}

/// One RUN of a case.
struct Run {
    script: String,
    user: String,
    network: NetworkMode,
    /// `--mount` options, as key/value pairs (`type` defaults to bind).
    mounts: Vec<BTreeMap<String, String>>,
}

/// The RUN steps of a case, or None when it uses anything else.
fn parse_case(dockerfile: &str) -> Option<Vec<Run>> {
    let joined = dockerfile.replace("\\\n", "");
    let mut user = String::new();
    let mut runs = Vec::new();
    for line in joined.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line == "ARG BASE" || line == "FROM $BASE" {
            continue;
        }
        if let Some(u) = line.strip_prefix("USER ") {
            user = u.trim().to_string();
            continue;
        }
        let mut rest = line.strip_prefix("RUN ")?.trim().to_string();
        let mut network = NetworkMode::Default;
        let mut mounts = Vec::new();
        while let Some(flag) = rest.strip_prefix("--") {
            let (flag, after) = flag.split_once(' ')?;
            match flag {
                "network=none" => network = NetworkMode::None,
                f if f.starts_with("mount=") => {
                    let mut kv = BTreeMap::new();
                    for part in f["mount=".len()..].split(',') {
                        let (k, v) = part.split_once('=').unwrap_or((part, "true"));
                        kv.insert(k.to_string(), v.to_string());
                    }
                    kv.entry("type".into()).or_insert_with(|| "bind".into());
                    if kv.contains_key("from") {
                        return None;
                    }
                    mounts.push(kv);
                }
                _ => return None,
            }
            rest = after.trim().to_string();
        }
        if rest.starts_with('[') || rest.contains("<<") {
            return None;
        }
        runs.push(Run {
            script: rest,
            user: user.clone(),
            network,
            mounts,
        });
    }
    Some(runs)
}

fn num(kv: &BTreeMap<String, String>, key: &str, default: u32, radix: u32) -> u32 {
    kv.get(key)
        .and_then(|v| u32::from_str_radix(v, radix).ok())
        .unwrap_or(default)
}

/// What the build executor does for `--mount`: cache dirs kept per id for the case,
/// secrets from `--secret`, a throw-away copy of the context for `rw` binds.
fn mount_specs(
    raw: &[BTreeMap<String, String>],
    context: &Path,
    work: &Path,
    secrets: &BTreeMap<String, PathBuf>,
) -> Result<Vec<MountSpec>, String> {
    let mut out = Vec::new();
    for (i, kv) in raw.iter().enumerate() {
        let target = kv.get("target").or_else(|| kv.get("dst")).cloned();
        match kv["type"].as_str() {
            "tmpfs" => out.push(MountSpec::Tmpfs {
                target: target.ok_or("tmpfs without target")?,
                size: None,
            }),
            "cache" => {
                let id = kv.get("id").cloned().or(target.clone()).unwrap_or_default();
                let source = work
                    .parent()
                    .ok_or("work dir")?
                    .join("caches")
                    .join(id.replace('/', "_"));
                if !source.exists() {
                    std::fs::create_dir_all(&source).map_err(|e| e.to_string())?;
                    rustix::fs::chown(
                        &source,
                        Some(rustix::fs::Uid::from_raw(num(kv, "uid", 0, 10))),
                        Some(rustix::fs::Gid::from_raw(num(kv, "gid", 0, 10))),
                    )
                    .map_err(|e| e.to_string())?;
                    rustix::fs::chmod(
                        &source,
                        rustix::fs::Mode::from_raw_mode(num(kv, "mode", 0o755, 8)),
                    )
                    .map_err(|e| e.to_string())?;
                }
                out.push(MountSpec::Cache {
                    source,
                    target: target.ok_or("cache without target")?,
                    readonly: kv.contains_key("ro") || kv.contains_key("readonly"),
                });
            }
            "secret" => {
                let id = kv.get("id").cloned().unwrap_or_default();
                let Some(source) = secrets.get(&id) else {
                    continue; // not required and not provided: no mount
                };
                out.push(MountSpec::Secret {
                    source: source.clone(),
                    target: target.unwrap_or_else(|| format!("/run/secrets/{id}")),
                    mode: num(kv, "mode", 0o400, 8),
                    uid: num(kv, "uid", 0, 10),
                    gid: num(kv, "gid", 0, 10),
                });
            }
            "bind" => {
                let sub = kv.get("source").map(String::as_str).unwrap_or(".");
                let mut source = context.join(sub);
                if kv.contains_key("rw") || kv.contains_key("readwrite") {
                    let copy = work.join(format!("bind{i}"));
                    std::fs::create_dir_all(work).map_err(|e| e.to_string())?;
                    let st = std::process::Command::new("cp")
                        .arg("-a")
                        .arg(&source)
                        .arg(&copy)
                        .status()
                        .map_err(|e| e.to_string())?;
                    if !st.success() {
                        return Err("cp -a failed".into());
                    }
                    source = copy;
                }
                out.push(MountSpec::Bind {
                    source,
                    target: target.ok_or("bind without target")?,
                    readonly: !(kv.contains_key("rw") || kv.contains_key("readwrite")),
                });
            }
            other => return Err(format!("mount type {other}")),
        }
    }
    Ok(out)
}

fn esc(s: &str) -> String {
    s.bytes()
        .map(|c| {
            if c.is_ascii_alphanumeric() || b"._+@:,=~/[]-".contains(&c) {
                (c as char).to_string()
            } else {
                format!("%{c:02X}")
            }
        })
        .collect()
}

fn tar_path(e: &Entry) -> String {
    match e.kind {
        EntryKind::Whiteout => {
            let (dir, base) = e.path.rsplit_once('/').unwrap_or(("", &e.path));
            format!("{dir}/.wh.{base}")
        }
        _ => e.path.clone(),
    }
}

fn tree_line(e: &Entry, layer: &[Entry]) -> Option<String> {
    let p = esc(&e.path);
    let head = |t: &str| format!("{p} {t} {:04o} {} {}", e.mode, e.uid, e.gid);
    Some(match &e.kind {
        EntryKind::Dir => head("d"),
        EntryKind::File | EntryKind::Hardlink(_) => {
            let src = match &e.kind {
                EntryKind::Hardlink(t) => layer.iter().find(|x| &x.path == t)?,
                _ => e,
            };
            let bytes = match &src.content {
                Some(Content::Path(p)) => std::fs::read(p).ok()?,
                Some(Content::Bytes(b)) => b.to_vec(),
                None => Vec::new(),
            };
            let sum = hex(&Sha256::digest(&bytes));
            format!("{} {} {sum}", head("f"), bytes.len())
        }
        EntryKind::Symlink(t) => format!("{p} l 0777 {} {} - {}", e.uid, e.gid, esc(t)),
        EntryKind::CharDevice { major, minor } => format!("{} - {major},{minor}", head("c")),
        EntryKind::BlockDevice { major, minor } => format!("{} - {major},{minor}", head("b")),
        EntryKind::Fifo => head("p"),
        EntryKind::Whiteout | EntryKind::OpaqueDir => return None,
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Runs one case; gives the mismatches.
fn check_case(name: &str, dir: &Path, work: &Path) -> Result<Vec<String>, String> {
    let dockerfile = std::fs::read_to_string(dir.join("Dockerfile")).map_err(|e| e.to_string())?;
    let Some(runs) = parse_case(&dockerfile) else {
        return Err("not a RUN-only case".into());
    };
    let cmd = std::fs::read_to_string(dir.join("cmd")).unwrap_or_default();
    let mut arch = "amd64";
    let mut secrets: BTreeMap<String, PathBuf> = BTreeMap::new();
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let mut i = 0;
    while i < words.len() {
        match (words[i], words.get(i + 1)) {
            ("--platform", Some(&"linux/arm64")) => arch = "arm64",
            ("--secret", Some(v)) => {
                let kv: BTreeMap<&str, &str> =
                    v.split(',').filter_map(|p| p.split_once('=')).collect();
                let (Some(id), Some(src)) = (kv.get("id"), kv.get("src")) else {
                    return Err("secret flag".into());
                };
                secrets.insert(id.to_string(), dir.join(src));
            }
            _ => return Err("flags".into()),
        }
        i += 2;
    }
    if run::qemu::can_run(arch).is_err() {
        return Err(format!("cannot run {arch} here"));
    }
    let expected =
        std::fs::read_to_string(dir.join("expected/layers.txt")).map_err(|e| e.to_string())?;
    let mut expected_layers: Vec<Vec<String>> = Vec::new();
    for line in expected.lines().skip(1) {
        if line.starts_with("--- layer") {
            expected_layers.push(Vec::new());
        } else if let Some(l) = expected_layers.last_mut() {
            l.push(line.to_string());
        }
    }
    let tree: BTreeMap<String, String> = std::fs::read_to_string(dir.join("expected/tree.txt"))
        .map_err(|e| e.to_string())?
        .lines()
        .map(|l| {
            (
                l.split(' ').next().unwrap_or_default().to_string(),
                l.to_string(),
            )
        })
        .collect();
    let case_dir = work.join(name);
    std::fs::create_dir_all(&case_dir).map_err(|e| e.to_string())?;
    let base = case_dir.join("base");
    std::fs::create_dir(&base).map_err(|e| e.to_string())?;
    extract_base_layer(arch, &base);
    let mut lower = vec![base];
    let mut problems = Vec::new();
    // Later layers override earlier tree checks: remember the last writer of each path.
    let mut last_lines: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (i, r) in runs.iter().enumerate() {
        let view = LayeredFs::new(lower.clone());
        let user =
            kiln::engine::users::resolve_run_user(&view, &r.user).map_err(|e| e.to_string())?;
        let spec = RunSpec {
            uid: user.uid,
            gid: user.gid,
            additional_gids: user.additional_gids.clone(),
            network: r.network,
            mounts: mount_specs(&r.mounts, dir, &case_dir.join(format!("m{i}")), &secrets)?,
            platform_arch: arch.into(),
            ..shell_spec(&r.script, &[PATH, &format!("HOME={}", user.home)])
        };
        let scratch = case_dir.join(format!("run{i}"));
        std::fs::create_dir(&scratch).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        let outcome = run_with_helper(Path::new(HELPER), &lower, &spec, &scratch, &mut |b| {
            out.extend_from_slice(b)
        })
        .map_err(|e| e.to_string())?;
        if outcome.exit_code != 0 {
            problems.push(format!(
                "RUN {i} exited {}: {}",
                outcome.exit_code,
                String::from_utf8_lossy(&out)
            ));
            return Ok(problems);
        }
        let targets: Vec<String> = spec
            .mounts
            .iter()
            .filter_map(|m| m.target().map(str::to_string))
            .collect();
        let layer = diff_upper(&outcome.upper, &view, &targets).map_err(|e| e.to_string())?;
        let mut got: Vec<String> = layer.entries.iter().map(tar_path).collect();
        got.sort();
        let got: Vec<String> = got.iter().map(|p| esc(p)).collect();
        let want = expected_layers.get(i + 1).cloned().unwrap_or_default();
        if got != want {
            problems.push(format!("layer {}: got {got:?}, want {want:?}", i + 2));
        }
        for e in &layer.entries {
            last_lines.insert(esc(&e.path), tree_line(e, &layer.entries));
        }
        // The next RUN sees this layer.
        let blobs = case_dir.join(format!("blob{i}"));
        std::fs::create_dir(&blobs).map_err(|e| e.to_string())?;
        let written =
            write_layer(&layer, &LayerOptions::default(), &blobs).map_err(|e| e.to_string())?;
        let extracted = case_dir.join(format!("layer{i}"));
        std::fs::create_dir(&extracted).map_err(|e| e.to_string())?;
        extract_layer(&written.path, &written.media_type, &extracted).map_err(|e| e.to_string())?;
        lower.insert(0, extracted);
    }
    for (path, line) in last_lines {
        let Some(line) = line else { continue };
        match tree.get(&path) {
            Some(want) if *want == line => {}
            Some(want) => problems.push(format!("tree: got {line:?}, want {want:?}")),
            None => {}
        }
    }
    // Sanity: the final view has every path of tree.txt.
    let view = LayeredFs::new(lower);
    for path in tree.keys() {
        if !path.contains('%') && view.lookup(path).ok().flatten().is_none() {
            problems.push(format!("tree: {path} missing"));
        }
    }
    Ok(problems)
}

#[test]
fn run_cases_match_buildkit_layers() {
    if !rustix::process::geteuid().is_root()
        || !std::fs::read_to_string("/proc/filesystems")
            .unwrap_or_default()
            .contains("overlay")
    {
        eprintln!("SKIP: the RUN sandbox needs root and overlayfs");
        return;
    }
    let cases = corpus().join("cases");
    let Ok(entries) = std::fs::read_dir(&cases) else {
        eprintln!("SKIP: no corpus at {}", cases.display());
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("kiln-run-corpus-")
        .tempdir()
        .expect("tempdir");
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut checked = 0;
    let mut failures = Vec::new();
    for name in names {
        let dir = cases.join(&name);
        let meta = read_json(&dir.join("meta.json"));
        if meta["uses_run"] != true || meta["expect_error"] == true {
            continue;
        }
        match check_case(&name, &dir, work.path()) {
            Err(reason) => eprintln!("not checked: {name}: {reason}"),
            Ok(problems) => {
                checked += 1;
                for p in problems {
                    failures.push(format!("{name}: {p}"));
                }
            }
        }
    }
    eprintln!("{checked} corpus cases checked");
    assert!(checked >= 20, "only {checked} cases checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
