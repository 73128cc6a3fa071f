//! `kiln setup qemu` and `kiln builder inspect|ls` on the test machine, where the test
//! environment has registered QEMU for arm64, arm, ppc64le, s390x and riscv64.

mod common;

use assert_cmd::Command;

fn out(args: &[&str]) -> String {
    let o = Command::cargo_bin("kiln")
        .unwrap()
        .args(args)
        .output()
        .expect("runs");
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn setup_qemu_is_idempotent_and_builder_lists_platforms() {
    let _env = common::TestEnv::get();
    let first = out(&["setup", "qemu", "--install", "all"]);
    let second = out(&["setup", "qemu", "--install", "arm64,s390x"]);
    assert!(
        second.contains("arm64: already registered"),
        "{first}\n{second}"
    );
    let inspect = out(&["builder", "inspect"]);
    for p in [
        "linux/amd64*",
        "linux/arm64",
        "linux/arm/v7",
        "linux/ppc64le",
        "linux/s390x",
        "linux/riscv64",
    ] {
        assert!(inspect.contains(p), "{p} missing:\n{inspect}");
    }
    assert!(out(&["builder", "ls"]).contains("embedded"));
    let o = Command::cargo_bin("kiln")
        .unwrap()
        .args(["setup", "qemu", "--install", "vax"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown platform"));
}
