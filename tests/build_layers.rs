//! How the engine stores and exports layers: stages that are not exported keep their
//! layers uncompressed and get them compressed only when an export needs them (the same
//! digests as a build that exported them directly), `compression=` / `force-compression=`
//! as buildx has them, and RUN / COPY --from results that later steps read from the store.

mod common;

use assert_cmd::Command;
use common::build::{build_iid, context, skopeo_raw};
use common::oci::OciArchive;
use common::TestEnv;
use serde_json::Value;
use std::path::Path;

const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// [`common::build::kiln`] with a fixed `SOURCE_DATE_EPOCH`.
fn kiln(home: &Path) -> Command {
    let mut c = common::build::kiln(home);
    c.env("SOURCE_DATE_EPOCH", "1700000000");
    c
}

/// The manifest and config of the single image in an OCI archive.
fn manifest(archive: &Path) -> Value {
    let oci = OciArchive::unpack(archive);
    let m = oci.first_manifest();
    let config = oci.blob_json(m["config"]["digest"].as_str().expect("config digest"));
    serde_json::json!({ "manifest": m, "config": config })
}

fn media_types(m: &Value) -> Vec<String> {
    m["manifest"]["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap_or_default().to_string())
        .collect()
}

const TWO_STAGES: &str = "ARG BASE
FROM ${BASE} AS gen
RUN mkdir -p /out && echo one > /out/a && echo two > /out/b && echo x > /out/gone && rm /bin/true
RUN test ! -e /bin/true && rm /out/gone && test -f /out/a
COPY hello.txt /out/hello.txt
FROM ${BASE}
COPY --from=gen /out/ /app/
RUN cat /app/a /app/b /app/hello.txt > /app/all && test ! -e /app/gone && test -e /bin/true
";

#[test]
fn a_stage_built_as_an_intermediate_exports_like_one_built_as_the_target() {
    let env = TestEnv::get();
    let ctx = context(TWO_STAGES, &[("hello.txt", "hello\n")]);
    let home = tempfile::tempdir().unwrap();
    let (_, _) = build_iid(
        home.path(),
        ctx.path(),
        &env.base_image,
        &["-o", "type=oci,dest=final.tar"],
    );
    let m = manifest(&ctx.path().join("final.tar"));
    assert!(
        media_types(&m).iter().all(|t| t == GZIP),
        "exported layers are gzip: {m}"
    );
    // The final stage's RUN read what COPY --from took out of the other stage.
    let rootfs = ctx.path().join("rootfs");
    build_iid(
        home.path(),
        ctx.path(),
        &env.base_image,
        &["-o", &format!("type=local,dest={}", rootfs.display())],
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("app/all")).expect("app/all"),
        "one\ntwo\nhello\n"
    );

    // `gen` was an intermediate stage above: its layers come from the cache now and are
    // compressed for this export; a fresh store building it as the target must agree.
    let (cached, log) = build_iid(
        home.path(),
        ctx.path(),
        &env.base_image,
        &["--target", "gen", "-o", "type=oci,dest=gen-cached.tar"],
    );
    assert_eq!(log.matches(" CACHED").count(), 3, "{log}");
    let fresh_home = tempfile::tempdir().unwrap();
    let (fresh, _) = build_iid(
        fresh_home.path(),
        ctx.path(),
        &env.base_image,
        &["--target", "gen", "-o", "type=oci,dest=gen-fresh.tar"],
    );
    let a = manifest(&ctx.path().join("gen-cached.tar"));
    let b = manifest(&ctx.path().join("gen-fresh.tar"));
    assert!(media_types(&a).iter().all(|t| t == GZIP), "{a}");
    assert_eq!(a, b, "same layers whichever way the stage was built");
    assert_eq!(cached, fresh);
}

/// Without SOURCE_DATE_EPOCH a RUN's upper dir becomes the extracted layer: later steps
/// (a RUN of the same stage, a COPY --from, a RUN after it) see exactly the layer.
#[test]
fn later_steps_see_what_a_run_left_without_source_date_epoch() {
    let env = TestEnv::get();
    let ctx = context(TWO_STAGES, &[("hello.txt", "hello\n")]);
    let home = tempfile::tempdir().unwrap();
    let rootfs = ctx.path().join("rootfs");
    let out = Command::cargo_bin("kiln")
        .expect("kiln binary")
        .env("KILN_HOME", home.path())
        .env_remove("SOURCE_DATE_EPOCH")
        .current_dir(ctx.path())
        .args(["build", "--progress=plain", "--build-arg"])
        .arg(format!("BASE={}", env.base_image))
        .args(["-o", &format!("type=local,dest={}", rootfs.display()), "."])
        .output()
        .expect("kiln runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("app/all")).expect("app/all"),
        "one\ntwo\nhello\n"
    );
    assert!(!rootfs.join("app/gone").exists());
    // Nothing of the sandbox's mount stubs is left in the image.
    // (the base image has neither file)
    assert!(!rootfs.join("etc/resolv.conf").exists());
    assert!(!rootfs.join("etc/hosts").exists());
}

#[test]
fn compression_applies_to_new_layers_and_force_compression_to_all() {
    let env = TestEnv::get();
    let ctx = context(
        "ARG BASE\nFROM ${BASE}\nCOPY hello.txt /hello.txt\nRUN echo ran > /ran\n",
        &[("hello.txt", "hello\n")],
    );
    let home = tempfile::tempdir().unwrap();
    build_iid(
        home.path(),
        ctx.path(),
        &env.base_image,
        &["-o", "type=oci,dest=gzip.tar"],
    );
    let gz = manifest(&ctx.path().join("gzip.tar"));
    assert!(media_types(&gz).iter().all(|t| t == GZIP), "{gz}");

    // Like BuildKit: cached layers keep their compression unless forced.
    build_iid(
        home.path(),
        ctx.path(),
        &env.base_image,
        &["-o", "type=oci,dest=z.tar,compression=zstd"],
    );
    let z = manifest(&ctx.path().join("z.tar"));
    assert_eq!(media_types(&z), media_types(&gz), "{z}");

    build_iid(
        home.path(),
        ctx.path(),
        &env.base_image,
        &[
            "-o",
            "type=oci,dest=forced.tar,compression=zstd,force-compression=true",
        ],
    );
    let forced = manifest(&ctx.path().join("forced.tar"));
    assert!(
        media_types(&forced).iter().all(|t| t == ZSTD),
        "every layer, the base's too, is zstd: {forced}"
    );
    assert_eq!(
        forced["config"]["rootfs"], gz["config"]["rootfs"],
        "same layer contents (diff_ids)"
    );
    let gz_digests: Vec<&Value> = gz["manifest"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["digest"])
        .collect();
    let z_digests: Vec<&Value> = forced["manifest"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["digest"])
        .collect();
    assert!(gz_digests.iter().zip(&z_digests).all(|(a, b)| a != b));

    // A bad value is a usage error before anything is built.
    let out = kiln(home.path())
        .current_dir(ctx.path())
        .args(["build", "--build-arg"])
        .arg(format!("BASE={}", env.base_image))
        .args(["-o", "type=oci,dest=x.tar,force-compression=maybe", "."])
        .output()
        .expect("kiln runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("force-compression"), "{err}");
    assert!(!ctx.path().join("x.tar").exists());
}

/// A `--platform=$BUILDPLATFORM` stage is the same step for every target platform: one
/// platform builds it, the other takes it from the cache (BuildKit runs it once too).
#[test]
fn a_build_platform_stage_runs_once_for_all_target_platforms() {
    let env = TestEnv::get();
    let ctx = context(
        "ARG BASE
FROM --platform=$BUILDPLATFORM ${BASE} AS gen
RUN echo generated-once > /g && sleep 1
FROM ${BASE}
COPY --from=gen /g /g
",
        &[],
    );
    let home = tempfile::tempdir().unwrap();
    let (_, log) = build_iid(
        home.path(),
        ctx.path(),
        &env.base_image,
        &[
            "--platform",
            "linux/amd64,linux/arm64",
            "-o",
            "type=oci,dest=multi.tar",
        ],
    );
    let ids: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("RUN /bin/sh -c echo generated-once"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(ids.len(), 2, "one gen RUN per platform:\n{log}");
    let cached = ids
        .iter()
        .filter(|id| log.lines().any(|l| l == format!("{id} CACHED")))
        .count();
    assert_eq!(cached, 1, "the second platform's gen RUN is CACHED:\n{log}");
}

/// `oci-mediatypes=false`: Docker's media types for the index (manifest list), manifests,
/// configs and layers, as a registry and skopeo see them.
#[test]
fn oci_mediatypes_false_gives_docker_media_types() {
    let env = TestEnv::get();
    let ctx = context(
        "ARG BASE\nFROM ${BASE}\nCOPY hello.txt /hello.txt\n",
        &[("hello.txt", "hello\n")],
    );
    let home = tempfile::tempdir().unwrap();
    let tag = format!("{}/kiln-test/docker-media-types:1", env.registry);
    build_iid(
        home.path(),
        ctx.path(),
        &env.base_image,
        &[
            "--platform",
            "linux/amd64,linux/arm64",
            "-o",
            &format!("type=registry,name={tag},oci-mediatypes=false"),
        ],
    );
    let list = skopeo_raw(&tag);
    assert_eq!(
        list["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let manifests = list["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), 2);
    let repo = tag.rsplit_once(':').map(|(r, _)| r).unwrap();
    for d in manifests {
        assert_eq!(
            d["mediaType"],
            "application/vnd.docker.distribution.manifest.v2+json"
        );
        let m = skopeo_raw(&format!("{repo}@{}", d["digest"].as_str().unwrap()));
        assert_eq!(
            m["config"]["mediaType"],
            "application/vnd.docker.container.image.v1+json"
        );
        for l in m["layers"].as_array().unwrap() {
            assert_eq!(
                l["mediaType"], "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "{m}"
            );
        }
    }
    // The default stays OCI.
    build_iid(
        home.path(),
        ctx.path(),
        &env.base_image,
        &["-o", "type=oci,dest=oci.tar"],
    );
    let m = manifest(&ctx.path().join("oci.tar"));
    assert_eq!(
        m["manifest"]["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert!(media_types(&m).iter().all(|t| t == GZIP));
}
