//! RUN flags end to end: `--security=insecure` (with the entitlement) gets every capability
//! and a writable `/sys` where the default sandbox has BuildKit's reduced set, and
//! `--add-host` entries appear in RUN's `/etc/hosts`.

mod common;

use assert_cmd::Command;
use common::TestEnv;
use std::path::Path;

const CAP_SYS_ADMIN: u32 = 21;

fn build(ctx: &Path, home: &Path, base: &str, extra: &[&str]) -> std::process::Output {
    std::fs::create_dir_all(ctx.join("out")).unwrap();
    Command::cargo_bin("kiln")
        .expect("kiln binary")
        .env("KILN_HOME", home)
        .current_dir(ctx)
        .args(["build", "--progress=plain", "--build-arg"])
        .arg(format!("BASE={base}"))
        .args(extra)
        .args(["-o", "type=local,dest=out", "."])
        .output()
        .expect("kiln runs")
}

/// The effective capability set written by `grep CapEff /proc/self/status`.
fn cap_eff(file: &Path) -> u64 {
    let text = std::fs::read_to_string(file).expect("caps file");
    let hex = text.split_whitespace().last().expect("CapEff value");
    u64::from_str_radix(hex, 16).expect("hex")
}

#[test]
fn insecure_runs_get_every_capability_and_a_writable_sys() {
    let env = TestEnv::get();
    let home = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "ARG BASE
FROM ${BASE}
RUN grep CapEff /proc/self/status > /caps-default && (touch /sys/kernel/kiln-probe 2>/dev/null; grep -w /sys /proc/mounts | cut -d' ' -f4 | cut -d, -f1 > /sys-default)
RUN --security=insecure grep CapEff /proc/self/status > /caps-insecure && grep -w /sys /proc/mounts | cut -d' ' -f4 | cut -d, -f1 > /sys-insecure
",
    )
    .unwrap();
    // Without the entitlement the insecure RUN is refused before it runs.
    let out = build(ctx.path(), home.path(), &env.base_image, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("security.insecure"), "{err}");

    let out = build(
        ctx.path(),
        home.path(),
        &env.base_image,
        &["--allow", "security.insecure"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rootfs = ctx.path().join("out");
    let default = cap_eff(&rootfs.join("caps-default"));
    let insecure = cap_eff(&rootfs.join("caps-insecure"));
    assert_eq!(default & (1 << CAP_SYS_ADMIN), 0, "default: {default:x}");
    assert_ne!(insecure & (1 << CAP_SYS_ADMIN), 0, "insecure: {insecure:x}");
    assert_eq!(
        insecure & default,
        default,
        "insecure keeps the default ones too"
    );
    let sys = |f: &str| std::fs::read_to_string(rootfs.join(f)).unwrap();
    assert_eq!(sys("sys-default").trim(), "ro");
    assert_eq!(sys("sys-insecure").trim(), "rw");
}

#[test]
fn add_host_entries_reach_run() {
    let env = TestEnv::get();
    let home = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "ARG BASE\nFROM ${BASE}\nRUN grep -E 'db|v6' /etc/hosts > /hosts-seen\n",
    )
    .unwrap();
    let out = build(
        ctx.path(),
        home.path(),
        &env.base_image,
        &["--add-host", "db:10.1.2.3", "--add-host", "v6=fd00::7"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = std::fs::read_to_string(ctx.path().join("out/hosts-seen")).unwrap();
    let lines: Vec<Vec<&str>> = seen
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(lines.contains(&vec!["10.1.2.3", "db"]), "{seen}");
    assert!(lines.contains(&vec!["fd00::7", "v6"]), "{seen}");
    // Not an address: a usage error.
    let out = build(
        ctx.path(),
        home.path(),
        &env.base_image,
        &["--add-host", "db:nowhere"],
    );
    assert_eq!(out.status.code(), Some(2));
}
