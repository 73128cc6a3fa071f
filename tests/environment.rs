//! The test environment itself: every piece that `scripts/test-env.sh up` sets up
//! is there and works. These tests fail (never skip) when a piece is missing, and
//! say which one; other integration tests can then take the environment as given.
//!
//! Run: `scripts/test-env.sh up && source ${KILN_TESTENV:-/tmp/kiln-testenv}/env.sh \
//!       && cargo test --test environment`

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{
    docker, http_get, index_platforms, run, skopeo, Layout, Platform, TestEnv, OCI_INDEX,
    OCI_MANIFEST, SETUP_HINT,
};
use serde_json::Value;

/// The platforms the set-up promises, whatever KILN_TEST_PLATFORMS says.
const REQUIRED_PLATFORMS: &[&str] = &[
    "linux/amd64",
    "linux/arm64",
    "linux/arm/v7",
    "linux/ppc64le",
    "linux/s390x",
];

/// binfmt_misc entries the set-up registers (names of /usr/share/binfmts/qemu-*).
const QEMU_ENTRIES: &[&str] = &["aarch64", "arm", "ppc64le", "s390x", "riscv64"];

/// `repo` of `repo:tag`.
fn repository(image: &str) -> &str {
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => image,
    }
}

/// Raw manifest (or index) at a docker:// reference, read anonymously.
fn raw_manifest(reference: &str, what: &str) -> (Value, String) {
    let out = skopeo([
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--no-creds",
        &format!("docker://{reference}"),
    ])
    .ok(what);
    let digest = common::sha256_digest(out.stdout.as_bytes());
    (out.json(), digest)
}

#[test]
fn base_image_is_an_oci_index_of_every_platform() {
    let env = TestEnv::get();
    let (index, _) = raw_manifest(
        &env.base_image,
        &format!(
            "KILN_TEST_BASE_IMAGE {} in the registry without auth",
            env.base_image
        ),
    );
    assert_eq!(
        index["mediaType"], OCI_INDEX,
        "{} is not an OCI image index: {index:#}",
        env.base_image
    );
    let listed = index_platforms(&index);
    let promised: BTreeSet<Platform> = env.platforms.iter().cloned().collect();
    assert_eq!(
        listed, promised,
        "platforms in {} differ from KILN_TEST_PLATFORMS",
        env.base_image
    );
    for p in REQUIRED_PLATFORMS {
        assert!(
            listed.contains(&Platform::parse(p)),
            "{} has no {p} image (architecture/variant); platforms there: {:?}; {SETUP_HINT}",
            env.base_image,
            listed.iter().map(ToString::to_string).collect::<Vec<_>>()
        );
    }
    for d in index["manifests"].as_array().unwrap() {
        assert_eq!(d["mediaType"], OCI_MANIFEST, "not an OCI manifest: {d}");
    }
}

#[test]
fn every_platform_resolves_to_its_own_image() {
    let env = TestEnv::get();
    let repo = repository(&env.base_image);
    let (index, _) = raw_manifest(&env.base_image, "KILN_TEST_BASE_IMAGE");
    for platform in &env.platforms {
        let descriptor = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| Platform::from_json(&d["platform"]) == *platform)
            .unwrap_or_else(|| panic!("{} lists no {platform} image", env.base_image));
        let digest = descriptor["digest"].as_str().unwrap();
        let (manifest, _) = raw_manifest(&format!("{repo}@{digest}"), "a per-platform manifest");
        let want_layers: Vec<&Value> = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| &l["digest"])
            .collect();

        let mut args = vec![
            "--override-os".to_string(),
            platform.os.clone(),
            "--override-arch".to_string(),
            platform.arch.clone(),
        ];
        if let Some(v) = &platform.variant {
            args.extend(["--override-variant".to_string(), v.clone()]);
        }
        args.extend([
            "inspect".to_string(),
            "--tls-verify=false".to_string(),
            "--no-creds".to_string(),
            format!("docker://{}", env.base_image),
        ]);
        let info = skopeo(&args)
            .ok(&format!(
                "skopeo resolving {platform} in {}",
                env.base_image
            ))
            .json();
        assert_eq!(
            info["Architecture"],
            platform.arch.as_str(),
            "{platform}: {info:#}"
        );
        assert_eq!(info["Os"], platform.os.as_str(), "{platform}: {info:#}");
        let got_layers: Vec<&Value> = info["Layers"].as_array().unwrap().iter().collect();
        assert_eq!(
            got_layers, want_layers,
            "{platform} resolved to another platform's image"
        );
    }
}

#[test]
fn layout_matches_the_registry_and_configs_match_their_platforms() {
    let env = TestEnv::get();
    let layout = Layout::open(&env.base_layout);
    let tagged = layout.tagged("latest");
    let (_, registry_digest) = raw_manifest(&env.base_image, "KILN_TEST_BASE_IMAGE");
    assert_eq!(
        tagged["digest"].as_str(),
        Some(registry_digest.as_str()),
        "KILN_TEST_BASE_LAYOUT {} and {} hold different indexes; {SETUP_HINT}",
        env.base_layout.display(),
        env.base_image
    );

    let manifests = layout.platform_manifests("latest");
    assert_eq!(manifests.len(), env.platforms.len());
    for (platform, descriptor) in manifests {
        let manifest = layout.blob_json(descriptor["digest"].as_str().unwrap());
        let config = layout.blob_json(manifest["config"]["digest"].as_str().unwrap());
        let what = format!("config of {platform}");
        assert_eq!(config["architecture"], platform.arch.as_str(), "{what}");
        assert_eq!(config["os"], platform.os.as_str(), "{what}");
        assert_eq!(
            config["variant"].as_str(),
            platform.variant.as_deref(),
            "{what}"
        );
        assert_eq!(config["config"]["Cmd"], serde_json::json!(["sh"]), "{what}");
        assert_eq!(
            config["config"]["Env"],
            serde_json::json!([
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            ]),
            "{what}"
        );
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(
            config["rootfs"]["diff_ids"].as_array().map(Vec::len),
            Some(layers.len()),
            "{what}"
        );
    }
}

#[test]
fn binfmt_has_qemu_entries_with_the_fix_binary_flag() {
    let mut problems = Vec::new();
    for name in QEMU_ENTRIES {
        let path = format!("/proc/sys/fs/binfmt_misc/qemu-{name}");
        let Ok(text) = std::fs::read_to_string(&path) else {
            problems.push(format!("{path} is missing (qemu-{name} not registered)"));
            continue;
        };
        if !text.lines().any(|l| l == "enabled") {
            problems.push(format!("{path} is disabled"));
        }
        let flags = text
            .lines()
            .find_map(|l| l.strip_prefix("flags: "))
            .unwrap_or_default();
        if !flags.contains('F') {
            problems.push(format!(
                "{path} lacks the F (fix binary) flag: flags {flags:?}"
            ));
        }
        match text.lines().find_map(|l| l.strip_prefix("interpreter ")) {
            Some(interp) if Path::new(interp).exists() => {}
            other => problems.push(format!("{path}: interpreter {other:?} does not exist")),
        }
    }
    assert!(
        problems.is_empty(),
        "binfmt_misc is not set up for foreign-arch RUN:\n  {}\n{SETUP_HINT}",
        problems.join("\n  ")
    );
}

#[test]
fn foreign_busybox_runs_through_binfmt() {
    let env = TestEnv::get();
    let layout = Layout::open(&env.base_layout);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut problems = Vec::new();
    for (platform, descriptor) in layout.platform_manifests("latest") {
        let manifest = layout.blob_json(descriptor["digest"].as_str().unwrap());
        let layer = manifest["layers"][0]["digest"].as_str().unwrap();
        let out_dir = dir.path().join(platform.to_string().replace('/', "-"));
        std::fs::create_dir_all(&out_dir).unwrap();
        run(std::process::Command::new("tar")
            .arg("-xzf")
            .arg(layout.blob_path(layer))
            .arg("-C")
            .arg(&out_dir)
            .arg("bin/busybox"))
        .ok(&format!(
            "extracting bin/busybox of {platform} from the layout"
        ));

        let busybox = out_dir.join("bin/busybox");
        let result = std::process::Command::new(&busybox)
            .args(["sh", "-c", "uname -m; echo $((6 * 7))"])
            .output();
        let want = format!("{}\n42\n", platform.uname_machine());
        match result {
            Ok(o) if o.status.success() && String::from_utf8_lossy(&o.stdout) == want => {}
            Ok(o) => problems.push(format!(
                "{platform}: busybox printed {:?} (stderr {:?}, {}), want {want:?}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr),
                o.status
            )),
            Err(e) => problems.push(format!(
                "{platform}: cannot execute its busybox ({e}); is qemu for {} registered in binfmt_misc?",
                platform.arch
            )),
        }
    }
    assert!(
        problems.is_empty(),
        "busybox of the base image does not run on every platform:\n  {}\n{SETUP_HINT}",
        problems.join("\n  ")
    );
}

#[test]
fn registry_without_auth_answers() {
    let env = TestEnv::get();
    let (status, response) = http_get(&env.registry, "/v2/", None);
    assert_eq!(
        status, 200,
        "GET http://{}/v2/ (KILN_TEST_REGISTRY): {response}",
        env.registry
    );
}

#[test]
fn auth_registry_refuses_anonymous_and_accepts_the_test_user() {
    let env = TestEnv::get();
    let addr = &env.auth_registry;

    let (status, response) = http_get(addr, "/v2/", None);
    assert_eq!(
        status, 401,
        "anonymous GET http://{addr}/v2/ (KILN_TEST_AUTH_REGISTRY) must be refused: {response}"
    );
    assert!(
        response
            .to_ascii_lowercase()
            .contains("www-authenticate: basic"),
        "the 401 from {addr} does not ask for Basic auth: {response}"
    );
    let (status, _) = http_get(addr, "/v2/", Some((&env.user, "not-the-password")));
    assert_eq!(status, 401, "{addr} accepts a wrong password");
    let (status, response) = http_get(addr, "/v2/", Some((&env.user, &env.password)));
    assert_eq!(
        status, 200,
        "{addr} refuses KILN_TEST_REGISTRY_USER/KILN_TEST_REGISTRY_PASSWORD: {response}"
    );

    let image = format!("docker://{}", env.private_image);
    let anonymous = skopeo([
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--no-creds",
        &image,
    ]);
    assert!(
        !anonymous.success,
        "{} can be read without credentials: {}",
        env.private_image, anonymous.stdout
    );
    let creds = env.creds();
    let with_creds = skopeo([
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &creds,
        &image,
    ])
    .ok(&format!(
        "KILN_TEST_PRIVATE_IMAGE {} with the test credentials",
        env.private_image
    ));
    let (_, base_digest) = raw_manifest(&env.base_image, "KILN_TEST_BASE_IMAGE");
    assert_eq!(
        common::sha256_digest(with_creds.stdout.as_bytes()),
        base_digest,
        "the private image is not the base image"
    );
}

#[test]
fn docker_engine_answers() {
    let env = TestEnv::get();
    assert!(
        env.docker_host.starts_with("unix://"),
        "KILN_TEST_DOCKER_HOST is not a unix socket: {}",
        env.docker_host
    );
    let out = docker(&env, ["version", "--format", "{{json .Server}}"]).ok(&format!(
        "the docker engine at KILN_TEST_DOCKER_HOST {} (log: $KILN_TESTENV/docker/dockerd.log)",
        env.docker_host
    ));
    let server = out.json();
    let version = server["Version"].as_str().unwrap_or_default();
    assert!(
        !version.is_empty(),
        "no server version from {}: {server:#}",
        env.docker_host
    );
    let components: Vec<&str> = server["Components"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["Name"].as_str())
        .collect();
    assert!(
        components.contains(&"containerd"),
        "the engine at {} reports no containerd: {components:?}",
        env.docker_host
    );
}
