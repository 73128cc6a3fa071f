//! `kiln bake` end to end: the real binary on real files. `--print` output, the TOML
//! twin of HCL files, `--list`, and the diagnostics users see for bad input.

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn kiln() -> Command {
    let mut c = Command::cargo_bin("kiln").expect("kiln binary");
    c.env_remove("BUILDX_BAKE_FILE")
        .env_remove("BUILDKIT_PROGRESS")
        .env("NO_COLOR", "1");
    c
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn stdout_of(dir: &Path, args: &[&str]) -> String {
    let out = kiln().current_dir(dir).args(args).output().expect("runs");
    assert!(
        out.status.success(),
        "kiln {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Runs a failing bake and returns its stderr; stdout must be empty.
fn failure(file: &str, target: &str) -> String {
    let out = kiln()
        .current_dir(root())
        .args(["bake", "-f", file, "--print", target])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "exit status for {file}");
    assert!(out.stdout.is_empty(), "nothing on stdout for {file}");
    String::from_utf8(out.stderr).expect("utf-8")
}

#[test]
fn quickstart_print_is_stable() {
    let dir = root().join("examples/quickstart");
    insta::assert_snapshot!("quickstart_print", stdout_of(&dir, &["bake", "--print"]));
}

#[test]
fn toml_twin_prints_the_same_json() {
    let hcl = stdout_of(&root().join("examples/quickstart"), &["bake", "--print"]);
    let toml = stdout_of(
        &root().join("examples/quickstart-toml"),
        &["bake", "--print"],
    );
    assert_eq!(hcl, toml);
    let toml_targets = stdout_of(
        &root().join("examples/quickstart-toml"),
        &["bake", "--print", "tools"],
    );
    assert!(toml_targets.contains("\"tools-lint\""), "{toml_targets}");
}

#[test]
fn toml_strings_are_templates_and_types_parse() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("kiln.toml"),
        r#"
[variable.N]
type = "number"
default = 2

[target.app]
args = { DOUBLE = "${N * 2}", UP = "${upper(\"x\")}" }
platforms = ["linux/amd64"]
"#,
    )
    .expect("write");
    let out = stdout_of(dir.path(), &["bake", "--print", "app"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["target"]["app"]["args"]["DOUBLE"], "4");
    assert_eq!(v["target"]["app"]["args"]["UP"], "X");
    let out = kiln()
        .current_dir(dir.path())
        .env("N", "5")
        .args(["bake", "--print", "app"])
        .output()
        .expect("runs");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["target"]["app"]["args"]["DOUBLE"], "10");
}

#[test]
fn list_targets_and_variables() {
    let dir = root().join("examples/quickstart");
    insta::assert_snapshot!(
        "quickstart_list_targets",
        stdout_of(&dir, &["bake", "--list", "targets"])
    );
    insta::assert_snapshot!(
        "quickstart_list_variables_json",
        stdout_of(&dir, &["bake", "--list", "type=variables,format=json"])
    );
}

#[test]
fn set_and_var_override() {
    let dir = root().join("examples/quickstart");
    let out = stdout_of(
        &dir,
        &[
            "bake",
            "--print",
            "--var",
            "VERSION=2.0.0",
            "--set",
            "app.platform=linux/riscv64",
            "--set",
            "app.tags+=extra:1",
            "app",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let app = &v["target"]["app"];
    assert_eq!(app["platforms"], serde_json::json!(["linux/riscv64"]));
    assert_eq!(app["args"]["VERSION"], "2.0.0");
    assert_eq!(
        app["tags"].as_array().map(Vec::len),
        Some(3),
        "two from the function, one appended: {app}"
    );
}

#[test]
fn bake_file_from_environment() {
    let dir = root().join("examples/quickstart");
    let out = kiln()
        .current_dir(root())
        .env("BUILDX_BAKE_FILE", dir.join("docker-bake.hcl"))
        .args(["bake", "--print", "base"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"base\""));
}

macro_rules! error_snapshot {
    ($name:ident, $file:expr, $target:expr) => {
        #[test]
        fn $name() {
            let stderr = failure(concat!("tests/fixtures/bake-errors/", $file), $target);
            insta::assert_snapshot!(stringify!($name), stderr);
        }
    };
}

error_snapshot!(error_unknown_attribute, "unknown_attr.hcl", "app");
error_snapshot!(error_undefined_variable, "undefined_var.hcl", "app");
error_snapshot!(error_wrong_type, "wrong_type.hcl", "app");
error_snapshot!(error_function_arity, "arity.hcl", "app");
error_snapshot!(error_variable_cycle, "var_cycle.hcl", "app");
error_snapshot!(error_attribute_cycle, "attr_cycle.hcl", "a");
error_snapshot!(error_context_cycle, "context_cycle.hcl", "a");
error_snapshot!(error_syntax, "syntax.hcl", "app");
error_snapshot!(error_unknown_function, "unknown_func.hcl", "app");

#[test]
fn error_invalid_set_key() {
    let out = kiln()
        .current_dir(root().join("examples/quickstart"))
        .args(["bake", "--print", "--set", "app.tag=x", "app"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    insta::assert_snapshot!(
        "error_invalid_set_key",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn huge_matrix_is_refused_not_exploded() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("docker-bake.hcl"),
        r#"
target "m" {
  name = "m-${a}-${b}-${c}"
  matrix = {
    a = range(100)
    b = range(100)
    c = range(100)
  }
}
"#,
    )
    .expect("write");
    let out = kiln()
        .current_dir(dir.path())
        .args(["bake", "--print", "m"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("matrix expands to more than"));
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    std::fs::write(
        dir.path().join("docker-bake.hcl"),
        format!("target \"a\" {{\n  args = {{ X = {deep} }}\n}}\n"),
    )
    .expect("write");
    let out = kiln()
        .current_dir(dir.path())
        .args(["bake", "--print", "a"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{:?}", out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nest"));
}

error_snapshot!(error_json_location, "json_unknown_var.json", "app");
error_snapshot!(error_toml_location, "toml_unknown_func.toml", "app");
