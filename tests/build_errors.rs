//! Bad Dockerfiles and bad build input: a clear error naming Dockerfile:line, a non-zero
//! exit, nothing exported and nothing added to the cache. Base images come from the test
//! environment's OCI layout (no registry needed).

mod common;

use assert_cmd::Command;
use common::TestEnv;

struct Case {
    name: &'static str,
    dockerfile: &'static str,
    extra: &'static [&'static str],
    /// Text the error must contain.
    expect: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "unknown_instruction",
        dockerfile: "FROM base\nCOPPY a /\n",
        extra: &[],
        expect: &["Dockerfile:2", "COPPY", "COPY"],
    },
    Case {
        name: "bad_flag",
        dockerfile: "FROM base\nCOPY --chmown=1 a /\n",
        extra: &[],
        expect: &["Dockerfile:2", "chmown"],
    },
    Case {
        name: "missing_target",
        dockerfile: "FROM base AS build\nCOPY a /\n",
        extra: &["--target", "relase"],
        expect: &["relase", "build"],
    },
    Case {
        name: "missing_stage_in_copy_from",
        dockerfile: "FROM base\nCOPY --from=nowhere /x /\n",
        extra: &[],
        expect: &["nowhere"],
    },
    Case {
        name: "copy_source_not_found",
        dockerfile: "FROM base\nCOPY nope.txt /\n",
        extra: &[],
        expect: &["Dockerfile:2", "nope.txt"],
    },
    Case {
        name: "unknown_chown_user",
        dockerfile: "FROM base\nCOPY --chown=nobodyatall a /\n",
        extra: &[],
        expect: &["Dockerfile:2", "nobodyatall"],
    },
    Case {
        name: "platform_missing_from_base",
        dockerfile: "FROM base\nCOPY a /\n",
        extra: &["--platform", "linux/mips64le"],
        expect: &["mips64"],
    },
    Case {
        name: "invalid_check_directive",
        dockerfile: "# check=error=maybe\nFROM base\nCOPY a /\n",
        extra: &[],
        expect: &["Dockerfile:1", "failed to parse check options"],
    },
    Case {
        name: "mount_target_root",
        dockerfile: "FROM base\nRUN --mount=type=cache,target=. true\n",
        extra: &[],
        expect: &["Dockerfile:2", "invalid mount target \"/\""],
    },
    Case {
        name: "wildcard_in_missing_dir",
        dockerfile: "FROM base\nCOPY nodir/*.txt /x/\n",
        extra: &[],
        expect: &["Dockerfile:2", "/nodir"],
    },
    Case {
        name: "workdir_onto_a_file",
        dockerfile: "FROM base\nWORKDIR /etc/passwd\n",
        extra: &[],
        expect: &["Dockerfile:2", "/etc/passwd", "not a directory"],
    },
    Case {
        name: "empty_dockerfile",
        dockerfile: "# nothing here\n",
        extra: &[],
        expect: &["no"],
    },
];

#[test]
fn bad_input_fails_cleanly() {
    let env = TestEnv::get();
    let base = format!("base=oci-layout://{}:latest", env.base_layout.display());
    for case in CASES {
        let home = tempfile::tempdir().unwrap();
        let ctx = tempfile::tempdir().unwrap();
        std::fs::write(ctx.path().join("Dockerfile"), case.dockerfile).unwrap();
        std::fs::write(ctx.path().join("a"), "a\n").unwrap();
        let out = Command::cargo_bin("kiln")
            .unwrap()
            .current_dir(ctx.path())
            .env("KILN_HOME", home.path())
            .args(["build", "--progress=quiet", "--build-context", &base])
            .args(case.extra)
            .args(["-o", "type=oci,dest=out.tar", "."])
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {err}", case.name);
        assert!(out.stdout.is_empty(), "{}: nothing on stdout", case.name);
        for e in case.expect {
            assert!(
                err.contains(e),
                "{}: error should mention {e:?}:\n{err}",
                case.name
            );
        }
        assert!(
            !ctx.path().join("out.tar").exists(),
            "{}: nothing exported",
            case.name
        );
        let records = home.path().join("keys");
        let n = std::fs::read_dir(&records).map(|d| d.count()).unwrap_or(0);
        assert_eq!(n, 0, "{}: no cache records for a failed build", case.name);
    }
}
