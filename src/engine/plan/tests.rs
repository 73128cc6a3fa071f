//! Planner unit tests with an in-memory resolver.

use std::collections::BTreeMap;

use super::*;
use crate::dockerfile::instructions::{MountType, Network};
use crate::dockerfile::parse_dockerfile;
use crate::error::ToDiagnostic;
use crate::oci::image::Image;
use crate::oci::Platform;

/// Serves one config for every reference, on amd64 and arm64 only.
struct Fake {
    config: Image,
    calls: Vec<(String, String)>,
}

impl Fake {
    fn new() -> Fake {
        let mut config = Image {
            architecture: "amd64".into(),
            os: "linux".into(),
            ..Image::default()
        };
        config.config.env = vec!["PATH=/usr/bin:/bin".into(), "BASE_ENV=from-base".into()];
        config.config.cmd = vec!["sh".into()];
        Fake {
            config,
            calls: Vec::new(),
        }
    }
}

impl BaseResolver for Fake {
    fn resolve(&mut self, reference: &str, platform: &Platform) -> Result<BaseImage, PlanError> {
        self.calls
            .push((reference.to_string(), platform.to_string()));
        if !["amd64", "arm64"].contains(&platform.architecture.as_str()) {
            return Err(PlanError::PlatformMissing {
                reference: reference.into(),
                platform: platform.to_string(),
                available: vec!["linux/amd64".into(), "linux/arm64/v8".into()],
            });
        }
        let mut config = self.config.clone();
        config.architecture = platform.architecture.clone();
        if platform.architecture == "arm64" {
            config.variant = "v8".into();
        }
        Ok(BaseImage {
            reference: format!("docker.io/library/{reference}"),
            digest: format!("sha256:{:064}", platform.architecture.len()),
            config,
            layers: Vec::new(),
        })
    }
}

fn amd64() -> Platform {
    Platform::new("linux", "amd64", "")
}

fn req() -> BuildRequest {
    BuildRequest::new(amd64())
}

fn plan_src(src: &str, req: &BuildRequest) -> Result<Plan, PlanError> {
    let df = parse_dockerfile(src, "Dockerfile").expect("parses");
    plan(&df, req, &mut Fake::new())
}

fn ok(src: &str) -> Plan {
    plan_src(src, &req()).expect("plans")
}

fn env(p: &Plan) -> Vec<String> {
    p.image.config.env.clone()
}

fn labels(p: &Plan) -> BTreeMap<String, String> {
    p.image.config.labels.clone()
}

#[test]
fn env_uses_values_from_before_the_instruction() {
    let p = ok("FROM img\nENV a=1\nENV a=2 b=$a\n");
    assert!(env(&p).contains(&"b=1".to_string()));
    assert!(env(&p).contains(&"a=2".to_string()));
}

#[test]
fn arg_scoping() {
    let src = "ARG G=global\nARG V=1\nFROM img\nLABEL a=\"[$G]\"\nARG G\nLABEL b=$G\nARG V=2\nLABEL v=$V\n";
    let p = ok(src);
    let l = labels(&p);
    assert_eq!(l["a"], "[]");
    assert_eq!(l["b"], "global");
    assert_eq!(l["v"], "2");
    let mut r = req();
    r.build_args.insert("V".into(), "cli".into());
    r.build_args.insert("G".into(), "cli-g".into());
    let l = labels(&plan_src(src, &r).expect("plans"));
    assert_eq!(l["b"], "cli-g");
    assert_eq!(l["v"], "cli");
}

#[test]
fn platform_args_only_when_declared() {
    let src = "FROM --platform=$BUILDPLATFORM img AS b\nARG TARGETARCH\nLABEL t=$TARGETARCH u=\"[$BUILDARCH]\"\n";
    let r = req().for_platform(Platform::new("linux", "arm64", ""));
    let p = plan_src(src, &r).expect("plans");
    assert_eq!(labels(&p)["t"], "arm64");
    assert_eq!(labels(&p)["u"], "[]");
    // the stage runs on the build platform...
    assert_eq!(p.stages[0].platform.architecture, "amd64");
    // ...but the final image is stamped with the requested one.
    assert_eq!(p.image.architecture, "arm64");
    assert_eq!(p.image.variant, "");
}

#[test]
fn entrypoint_resets_inherited_cmd_only() {
    let p = ok("FROM img\nENTRYPOINT [\"/e\"]\n");
    assert!(p.image.config.cmd.is_empty());
    let p = ok("FROM img\nCMD [\"x\"]\nENTRYPOINT [\"/e\"]\n");
    assert_eq!(p.image.config.cmd, vec!["x"]);
    let p = ok("FROM img AS a\nCMD [\"x\"]\nFROM a\nENTRYPOINT /e\n");
    assert!(p.image.config.cmd.is_empty());
    assert_eq!(p.image.config.entrypoint, vec!["/bin/sh", "-c", "/e"]);
}

#[test]
fn metadata_instructions() {
    let src = "FROM img\nEXPOSE 80 53/udp\nUSER app\nVOLUME /data\nSTOPSIGNAL SIGTERM\nSHELL [\"/bin/bash\", \"-c\"]\nCMD echo hi\nHEALTHCHECK --interval=30s CMD [\"/check\"]\nMAINTAINER me\nONBUILD RUN x\n";
    let p = ok(src);
    let c = &p.image.config;
    assert!(c.exposed_ports.contains_key("80/tcp") && c.exposed_ports.contains_key("53/udp"));
    assert_eq!(c.user, "app");
    assert!(c.volumes.contains_key("/data"));
    assert_eq!(c.stop_signal, "SIGTERM");
    assert_eq!(c.cmd, vec!["/bin/bash", "-c", "echo hi"]);
    let hc = c.healthcheck.clone().expect("healthcheck");
    assert_eq!(hc["Interval"], 30_000_000_000i64);
    assert_eq!(p.image.author, "me");
    assert_eq!(c.on_build.clone().unwrap_or_default(), vec!["RUN x"]);
    assert!(p.stages[0].steps.is_empty());
    let last = p.image.history.last().expect("history");
    assert_eq!(last.created_by, "MAINTAINER me");
    assert!(last.empty_layer);
}

#[test]
fn workdir_is_a_step_and_relative() {
    let p = ok("FROM img\nUSER app\nWORKDIR /a\nWORKDIR b/../c\nWORKDIR /\n");
    let steps = &p.stages[0].steps;
    assert_eq!(steps.len(), 2);
    match &steps[1].kind {
        StepKind::Workdir { path, user } => {
            assert_eq!(path, "/a/c");
            assert_eq!(user.as_deref(), Some("app"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.image.config.working_dir, "/");
    assert_eq!(steps[1].line, 4);
}

#[test]
fn copy_steps() {
    let src = "FROM img AS build\nRUN make\nFROM scratch\nWORKDIR /app\nCOPY --from=build --chown=app:app /out/ bin/\nCOPY --from=0 /x .\nCOPY <<EOF /etc/f\nhi $HOME\nEOF\nADD --checksum=sha256:abc https://example.com/a.tgz /a\n";
    let p = ok(src);
    assert_eq!(p.stages.len(), 2);
    let steps = &p.stages[1].steps;
    let StepKind::Copy(c) = &steps[1].kind else {
        panic!("copy expected")
    };
    assert_eq!(c.dest, "/app/bin/");
    assert_eq!(c.from, CopySource::Stage(0));
    assert_eq!(c.chown.as_deref(), Some("app:app"));
    assert_eq!(
        steps[1].created_by,
        "COPY --chown=app:app /out/ bin/ # buildkit"
    );
    let StepKind::Copy(c) = &steps[2].kind else {
        panic!("copy expected")
    };
    assert_eq!(c.dest, "/app/");
    let StepKind::Copy(c) = &steps[3].kind else {
        panic!("copy expected")
    };
    assert_eq!(
        c.heredocs,
        vec![("EOF".to_string(), "hi \n".to_string(), true)]
    );
    let StepKind::Add(a) = &steps[4].kind else {
        panic!("add expected")
    };
    assert_eq!(a.checksum.as_deref(), Some("sha256:abc"));
}

#[test]
fn copy_from_an_image_and_run_mounts() {
    let src = "FROM img AS tools\nFROM img\nARG X=1\nRUN --mount=type=bind,from=tools,target=/t --mount=type=cache,target=/c --network=none echo $X\nCOPY --from=other/image:1 /a /b\n";
    let p = ok(src);
    let steps = &p.stages[1].steps;
    let StepKind::Run(r) = &steps[0].kind else {
        panic!("run expected")
    };
    assert_eq!(r.args, vec!["/bin/sh", "-c", "echo $X"]);
    assert_eq!(r.mounts[0].from, CopySource::Stage(0));
    assert_eq!(r.mounts[1].mount.kind, MountType::Cache);
    assert_eq!(r.network, Network::None);
    assert!(r.env.contains(&"X=1".to_string()));
    assert_eq!(
        steps[0].created_by,
        "RUN |1 X=1 /bin/sh -c echo $X # buildkit"
    );
    let StepKind::Copy(c) = &steps[1].kind else {
        panic!("copy expected")
    };
    assert!(matches!(&c.from, CopySource::Image(b) if b.reference.ends_with("other/image:1")));
}

#[test]
fn unreferenced_stages_are_not_planned() {
    let p = ok("FROM img AS a\nCOPY nope /\nFROM img AS b\nFROM b\nCOPY x /\n");
    let idx: Vec<usize> = p.stages.iter().map(|s| s.index).collect();
    assert_eq!(idx, vec![1, 2]);
    assert_eq!(p.target_stage().map(|s| s.index), Some(2));
}

#[test]
fn onbuild_triggers_fire_once() {
    let src = "FROM img AS gp\nONBUILD RUN echo gp\nFROM gp AS p\nONBUILD RUN echo p\nFROM p\nRUN echo c\n";
    let p = ok(src);
    let last = p.target_stage().expect("target");
    assert_eq!(last.steps.len(), 1 + 1);
    assert!(last.steps[0].on_build);
    assert_eq!(last.steps[0].line, 5);
    assert!(p.image.config.on_build.is_none());
    assert_eq!(p.layer_count(), 3);
}

#[test]
fn target_selection_and_errors() {
    let src = "FROM img AS build\nFROM img AS final\n";
    let mut r = req();
    r.target = Some("BUILD".into());
    assert_eq!(plan_src(src, &r).expect("plans").stages.len(), 1);
    r.target = Some("buidl".into());
    let e = plan_src(src, &r).expect_err("missing target");
    let PlanError::MissingTarget {
        available,
        suggestion,
        ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(
        available,
        &vec![("build".to_string(), 1), ("final".to_string(), 2)]
    );
    assert_eq!(suggestion.as_deref(), Some("build"));
    let d = e.to_diagnostic();
    assert!(d.hint.unwrap_or_default().contains("build (Dockerfile:1)"));
}

#[test]
fn cycles_and_bad_references() {
    let e = plan_src(
        "FROM img AS a\nCOPY --from=b /x /x\nFROM img AS b\nCOPY --from=a /y /y\n",
        &req(),
    )
    .expect_err("cycle");
    let s = e.to_string();
    assert!(
        s.contains("circular dependency detected on stage: a"),
        "{s}"
    );
    assert!(s.starts_with("Dockerfile:4:"), "{s}");
    let e = plan_src("FROM img\nCOPY --from=7 /x /x\n", &req()).expect_err("index");
    assert!(e.to_string().contains("invalid stage index 7"));
    let e = plan_src(
        "FROM img AS a\nCOPY --from=b /x /x\nFROM img AS b\n",
        &req().clone(),
    )
    .map(|_| ())
    .err();
    assert!(
        e.is_none(),
        "b is only needed by a, which is not the target"
    );
    let mut r = req();
    r.target = Some("a".into());
    let e = plan_src("FROM img AS a\nCOPY --from=b /x /x\nFROM img AS b\n", &r).expect_err("order");
    assert!(e
        .to_string()
        .contains("needs to be defined before current stage"));
    let e = plan_src("FROM img\nCOPY --from=Bad:Ref /x /x\n", &req()).expect_err("bad ref");
    assert!(e.to_string().contains("neither a stage"), "{e}");
}

#[test]
fn platform_errors() {
    let r = req().for_platform(Platform::new("linux", "s390x", ""));
    let e = plan_src("FROM img\n", &r).expect_err("missing platform");
    let s = e.to_string();
    assert!(s.starts_with("Dockerfile:1:") && s.contains("s390x"), "{s}");
    let e = plan_src("FROM --platform=linux/amd64/v2/x img\n", &req()).expect_err("bad platform");
    assert!(e.to_string().contains("failed to parse platform"));
    let e = plan_src("ARG P\nFROM --platform=$P img\n", &req()).expect_err("empty platform");
    assert!(e.to_string().contains("empty platform value"));
    let e = plan_src("ARG B\nFROM $B\n", &req()).expect_err("blank base");
    assert!(e.to_string().contains("should not be blank"));
}

#[test]
fn named_contexts() {
    let mut r = req();
    r.named_contexts.insert(
        "alpine".into(),
        NamedContext::parse("docker-image://reg/x:1"),
    );
    r.named_contexts
        .insert("src".into(), NamedContext::parse("./dir"));
    r.named_contexts
        .insert("gen".into(), NamedContext::parse("target:gen"));
    let src = "FROM alpine:latest\nCOPY --from=src / /src\nCOPY --from=gen / /gen\n";
    let df = parse_dockerfile(src, "Dockerfile").expect("parses");
    let mut fake = Fake::new();
    let p = plan(&df, &r, &mut fake).expect("plans");
    assert_eq!(fake.calls[0].0, "reg/x:1");
    let steps = &p.stages[0].steps;
    let StepKind::Copy(c) = &steps[0].kind else {
        panic!("copy")
    };
    assert_eq!(c.from, CopySource::NamedContext("src".into()));
    // a stage named like a context is replaced by it
    let p = plan_src(
        "FROM img AS gen\nRUN never\nFROM img\nCOPY --from=gen / /\n",
        &r,
    )
    .expect("plans");
    assert_eq!(p.stages[0].base, StageBase::Context("gen".into()));
    assert!(p.stages[0].steps.is_empty());
}

#[test]
fn labels_and_no_cache_filter() {
    let mut r = req();
    r.labels.insert("org.x".into(), "1".into());
    r.no_cache_filter.push("b".into());
    let p = plan_src("FROM scratch AS b\nFROM b\n", &r).expect("plans");
    assert_eq!(labels(&p)["org.x"], "1");
    assert!(p.stages[0].no_cache && !p.stages[1].no_cache);
    assert_eq!(p.image.config.working_dir, "/");
}

#[test]
fn cache_keys_are_stable_and_sensitive() {
    let a = ok("FROM img\nENV A=1\nRUN x\n");
    let b = ok("FROM img\nENV A=1\nRUN x\n");
    assert_eq!(a.stages[0].key, b.stages[0].key);
    for other in [
        "FROM img\nENV A=2\nRUN x\n",
        "FROM img\nENV A=1\nRUN y\n",
        "FROM img\nENV A=1\nUSER u\nRUN x\n",
        "FROM img\nENV A=1\nWORKDIR /w\nRUN x\n",
    ] {
        assert_ne!(a.stages[0].key, ok(other).stages[0].key, "{other}");
    }
    let arm = plan_src(
        "FROM img\nENV A=1\nRUN x\n",
        &req().for_platform(Platform::new("linux", "arm64", "")),
    )
    .expect("plans");
    assert_ne!(a.stages[0].key, arm.stages[0].key);
    // metadata-only instructions do not change the key of the layers
    let c = ok("FROM img\nLABEL x=y\nRUN x\n");
    let d = ok("FROM img\nRUN x\n");
    assert_eq!(c.stages[0].key, d.stages[0].key);
    let s = &a.stages[0].steps[0];
    assert_eq!(
        s.key_with_parent(&a.stages[0].base_key, &a.stages[0].platform),
        s.cache_key_base
    );
}

#[test]
fn run_env_order_and_arg_shadowing() {
    let p = ok("FROM img\nENV A=1 B=2\nARG A=arg\nENV A=3\nRUN env\n");
    let StepKind::Run(r) = &p.stages[0].steps[0].kind else {
        panic!("run expected")
    };
    let tail: Vec<&str> = r.env.iter().rev().take(2).map(String::as_str).collect();
    assert_eq!(tail, vec!["A=3", "B=2"]);
    assert_eq!(
        p.stages[0].steps[0].created_by,
        "RUN |1 A=3 /bin/sh -c env # buildkit"
    );
}

#[test]
fn source_date_epoch_and_proxies() {
    let mut r = req();
    r.build_args
        .insert("SOURCE_DATE_EPOCH".into(), "1700000000".into());
    r.build_args
        .insert("HTTPS_PROXY".into(), "http://proxy:3128".into());
    let p = plan_src("FROM img\nENV A=1\nRUN true\n", &r).expect("plans");
    assert_eq!(p.epoch, Some(1_700_000_000));
    for h in &p.image.history {
        assert_eq!(h.created.as_deref(), Some("2023-11-14T22:13:20Z"));
    }
    let StepKind::Run(run) = &p.stages[0].steps[0].kind else {
        panic!("run expected")
    };
    assert_eq!(
        run.proxy_env,
        vec![
            "HTTPS_PROXY=http://proxy:3128",
            "https_proxy=http://proxy:3128"
        ]
    );
    assert!(!p.stages[0].steps[0].created_by.contains("proxy"));
    let p = ok("ARG SOURCE_DATE_EPOCH=86400\nFROM img\nENV A=1\n");
    assert_eq!(p.epoch, Some(86_400));
    assert_eq!(ok("FROM img\n").epoch, None);
}

#[test]
fn multi_platform() {
    let df = parse_dockerfile(
        "FROM img\nARG TARGETARCH\nLABEL a=$TARGETARCH\n",
        "Dockerfile",
    )
    .expect("parses");
    let ps = [
        Platform::new("linux", "amd64", ""),
        Platform::new("linux", "arm64", ""),
    ];
    let plans = plan_each(&df, &req(), &ps, &mut Fake::new()).expect("plans");
    let archs: Vec<&str> = plans.iter().map(|p| labels_ref(p, "a")).collect();
    assert_eq!(archs, vec!["amd64", "arm64"]);
    assert_eq!(plans[1].image.architecture, "arm64");
}

fn labels_ref<'p>(p: &'p Plan, k: &str) -> &'p str {
    p.image.config.labels.get(k).map_or("", String::as_str)
}

#[test]
fn image_onbuild_triggers_run_and_are_cleared() {
    let df = parse_dockerfile("FROM img\nLABEL x=1\n", "Dockerfile").expect("parses");
    let mut fake = Fake::new();
    fake.config.config.on_build = Some(vec!["COPY . /app/".into(), "ENV FROM_ONBUILD=1".into()]);
    let p = plan(&df, &req(), &mut fake).expect("plans");
    assert!(p.image.config.on_build.is_none());
    assert!(env(&p).contains(&"FROM_ONBUILD=1".to_string()));
    let steps = &p.stages[0].steps;
    assert_eq!(steps.len(), 1);
    assert!(steps[0].on_build);
    assert_eq!(steps[0].line, 1);
    let StepKind::Copy(c) = &steps[0].kind else {
        panic!("copy expected")
    };
    assert_eq!(c.dest, "/app/");
}
