//! Checks against the differential conformance corpus (`shared/conformance/dockerfile`,
//! results recorded from BuildKit): every case BuildKit built must parse, the parse-time
//! failures must fail here too, and ENV/LABEL/WORKDIR values must expand to what
//! BuildKit put in the image config.

use std::path::{Path, PathBuf};

use super::instructions::{parse_dockerfile, Instruction};

fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/dockerfile/cases");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!(
            "note: {} not found; skipping the conformance corpus checks",
            dir.display()
        );
        None
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Cases whose failure BuildKit reports before building anything that kiln's front end
/// should catch too.
const PARSE_TIME_FAILURES: &[&str] = &[
    "err_empty_dockerfile",
    "err_no_from",
    "err_unknown_instruction",
    "err_from_expansion",
];

#[test]
fn corpus_parses_like_buildkit() {
    let Some(dir) = corpus() else { return };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    entries.sort();
    let mut checked = 0;
    let mut failures = Vec::new();
    for case in entries {
        let df = case.join("Dockerfile");
        if !df.is_file() {
            continue;
        }
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let exit = read(&case.join("expected.exit")).trim().to_string();
        let result = parse_dockerfile(&read(&df), &df);
        checked += 1;
        if exit == "0" {
            if let Err(e) = result {
                failures.push(format!(
                    "{name}: BuildKit built it but it does not parse: {e}"
                ));
            }
        } else if PARSE_TIME_FAILURES.contains(&name.as_str()) && result.is_ok() {
            failures.push(format!(
                "{name}: BuildKit rejects it while reading the Dockerfile, we accepted it"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("{checked} corpus Dockerfiles checked");
}

/// Env, labels and workdir after the last stage's ENV/ARG/LABEL/WORKDIR, starting from
/// the corpus base image's config.
type Pairs = Vec<(String, String)>;

fn evaluate(src: &str) -> (Pairs, Pairs, Option<String>) {
    let d = match parse_dockerfile(src, "Dockerfile") {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    let lex = d.lex();
    let mut env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        ("BASE_ENV".into(), "from-base".into()),
    ];
    let mut args: Vec<(String, String)> = Vec::new();
    let mut labels: Vec<(String, String)> = vec![
        ("org.example.base".into(), "busybox".into()),
        ("org.example.shadowed".into(), "base".into()),
    ];
    let mut workdir = None;
    let set = |list: &mut Vec<(String, String)>, k: String, v: String| match list
        .iter_mut()
        .find(|(key, _)| *key == k)
    {
        Some(e) => e.1 = v,
        None => list.push((k, v)),
    };
    let Some(stage) = d.stages.last() else {
        return (env, labels, workdir);
    };
    for c in &stage.commands {
        let scope: Vec<(String, String)> = args.iter().chain(env.iter()).cloned().collect();
        let mut i = c.instruction.clone();
        if let Instruction::Arg(defs) = &i {
            for a in defs {
                let v = a
                    .value
                    .as_deref()
                    .map(|v| lex.process_word(v, &scope))
                    .transpose();
                set(
                    &mut args,
                    a.key.clone(),
                    v.ok().flatten().unwrap_or_default(),
                );
            }
            continue;
        }
        if let Err(e) = i.expand(&lex, &scope) {
            panic!("{e}");
        }
        match i {
            Instruction::Env(kv) => kv.into_iter().for_each(|p| set(&mut env, p.key, p.value)),
            Instruction::Label(kv) => kv
                .into_iter()
                .for_each(|p| set(&mut labels, p.key, p.value)),
            Instruction::Workdir(w) => workdir = Some(w),
            _ => {}
        }
    }
    labels.sort();
    (env, labels, workdir)
}

fn expected_config(case: &Path) -> Option<serde_json::Value> {
    let v: serde_json::Value =
        serde_json::from_str(&read(&case.join("expected/config.json"))).ok()?;
    v.get("config").cloned()
}

#[test]
fn corpus_expansion_matches_buildkit_config() {
    let Some(dir) = corpus() else { return };
    for name in [
        "meta_env_expansion_forms",
        "meta_label_forms",
        "meta_escape_directive",
        "args_env_precedence",
    ] {
        let case = dir.join(name);
        let Some(cfg) = expected_config(&case) else {
            println!("note: {name} has no expected config; skipped");
            continue;
        };
        let mut src = read(&case.join("Dockerfile"));
        // The corpus passes these on the command line; the front end sees them as defaults.
        if name == "args_env_precedence" {
            src = src
                .replace("ARG X=arg-default", "ARG X=cli")
                .replace("ARG Y=y-default", "ARG Y=cli-y");
        }
        let (env, labels, workdir) = evaluate(&src);
        let want_env: Vec<String> = cfg["Env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let got_env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(got_env, want_env, "{name}: Env");
        let mut want_labels: Vec<(String, String)> = cfg["Labels"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        want_labels.sort();
        assert_eq!(labels, want_labels, "{name}: Labels");
        let want_wd = cfg
            .get("WorkingDir")
            .and_then(|v| v.as_str())
            .map(String::from);
        assert_eq!(workdir, want_wd, "{name}: WorkingDir");
    }
}
