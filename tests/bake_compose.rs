//! Compose files as bake input, as `docker buildx bake` reads them: found by the default
//! lookup, interpolated from the environment and `.env`, merged with bake files, built.

use assert_cmd::Command;
use std::path::Path;

fn kiln(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("kiln").expect("kiln binary");
    c.current_dir(dir)
        .env_remove("BUILDX_BAKE_FILE")
        .env_remove("BUILDKIT_PROGRESS")
        .env_remove("TAG")
        .env("KILN_HOME", dir.join(".kiln-home"))
        .env("NO_COLOR", "1");
    c
}

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

const COMPOSE: &str = r#"
x-common: &common
  args:
    COMMON: "1"
services:
  web:
    image: example/web:${TAG:-dev}
    build:
      context: ./web
      <<: *common
  worker.jobs:
    build: ./worker
  redis:
    image: redis
"#;

#[test]
fn compose_file_is_found_interpolated_and_merged_with_a_bake_file() {
    let t = tempfile::tempdir().expect("tempdir");
    let d = t.path();
    write(d, "compose.yaml", COMPOSE);
    write(d, ".env", "TAG=from-dotenv\n");
    write(
        d,
        "docker-bake.hcl",
        "target \"web\" {\n  args = { EXTRA = \"x\" }\n  platforms = [\"linux/arm64\"]\n}\n",
    );
    let out = kiln(d).args(["bake", "--print"]).output().expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        v["group"]["default"]["targets"],
        serde_json::json!(["web", "worker_jobs"])
    );
    let web = &v["target"]["web"];
    assert_eq!(web["context"], "web");
    assert_eq!(
        web["args"],
        serde_json::json!({"COMMON": "1", "EXTRA": "x"})
    );
    assert_eq!(web["tags"], serde_json::json!(["example/web:from-dotenv"]));
    assert_eq!(web["platforms"], serde_json::json!(["linux/arm64"]));
    assert_eq!(v["target"]["worker_jobs"]["context"], "worker");
    assert!(
        v["target"].get("redis").is_none(),
        "no build section, no target"
    );

    // The environment wins over .env.
    let out = kiln(d)
        .env("TAG", "from-env")
        .args(["bake", "--print", "web"])
        .output()
        .expect("runs");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        v["target"]["web"]["tags"],
        serde_json::json!(["example/web:from-env"])
    );
}

#[test]
fn compose_targets_build_with_the_embedded_engine() {
    let t = tempfile::tempdir().expect("tempdir");
    let d = t.path();
    write(
        d,
        "docker-compose.yml",
        "services:\n  app:\n    build:\n      context: ./app\n      args:\n        GREETING: hello from compose\n",
    );
    write(
        d,
        "app/Dockerfile",
        "FROM scratch\nARG GREETING\nLABEL greeting=$GREETING\nCOPY msg.txt /msg.txt\n",
    );
    write(d, "app/msg.txt", "hi\n");
    let out = kiln(d)
        .args([
            "bake",
            "--progress",
            "plain",
            "--set",
            "app.output=type=oci,dest=app.tar",
            "--metadata-file",
            "meta.json",
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(d.join("app.tar").metadata().expect("archive").len() > 0);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("meta.json")).expect("metadata"))
            .expect("JSON");
    let digest = meta["app"]["containerimage.digest"]
        .as_str()
        .expect("digest");
    assert!(digest.starts_with("sha256:"), "{meta}");
    // The label went through the config: look for it in the archive's blobs.
    let listing = std::process::Command::new("tar")
        .arg("-xOf")
        .arg(d.join("app.tar"))
        .output()
        .expect("tar");
    assert!(
        String::from_utf8_lossy(&listing.stdout).contains("hello from compose"),
        "the build arg reached the image config"
    );
}

#[test]
fn bad_compose_files_fail_with_the_reason() {
    let t = tempfile::tempdir().expect("tempdir");
    let d = t.path();
    let cases = [
        ("services: [a, b\n", "compose.yaml"),
        (
            "services:\n  w:\n    build:\n      context: .\n      foo: bar\n",
            "additional properties 'foo' not allowed",
        ),
        (
            "services:\n  w:\n    build:\n      secrets: [token]\n",
            "undefined secret token",
        ),
        (
            "services:\n  w:\n    build: .\n    image: ${NEED:?set NEED first}\n",
            "set NEED first",
        ),
    ];
    for (text, want) in cases {
        write(d, "compose.yaml", text);
        let out = kiln(d).args(["bake", "--print"]).output().expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text:?} was accepted");
        assert!(err.contains(want), "{text:?}: {err}");
    }
}
