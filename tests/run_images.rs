//! Images whose RUN steps kiln executed (amd64 natively, arm64 under QEMU) are loaded into
//! the test Docker engine with `--load` and run with `docker run`: they print what their RUN
//! steps prepared. Docker, not kiln, reads and runs the result.

mod common;

use assert_cmd::Command;
use common::TestEnv;

const DOCKERFILE: &str = "ARG BASE
FROM ${BASE} AS build
RUN mkdir -p /out && uname -m > /out/built-on && echo 'prepared by RUN' > /out/message
FROM ${BASE}
COPY --from=build /out/ /srv/
RUN adduser -D -u 1000 app 2>/dev/null || echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd
USER 1000
RUN echo \"user $(id -u) ran here\" > /tmp/by-user
CMD [\"sh\", \"-c\", \"cat /srv/message /srv/built-on /tmp/by-user; uname -m\"]
";

#[test]
fn loaded_images_print_what_their_run_steps_prepared() {
    let env = TestEnv::get();
    let home = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), DOCKERFILE).unwrap();
    for (platform, arch) in [("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")] {
        let tag = format!("kiln-test-run:{}", arch.replace('_', "-"));
        let out = Command::cargo_bin("kiln")
            .expect("kiln binary")
            .env("KILN_HOME", home.path())
            .env("DOCKER_HOST", &env.docker_host)
            .current_dir(ctx.path())
            .args(["build", "--progress=plain", "--platform", platform])
            .arg("--build-arg")
            .arg(format!("BASE={}", env.base_image))
            .args(["-t", &tag, "--load", "."])
            .output()
            .expect("kiln runs");
        assert!(
            out.status.success(),
            "{platform}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let run = std::process::Command::new("/usr/bin/docker")
            .env("DOCKER_HOST", &env.docker_host)
            .args(["run", "--rm", "--platform", platform, &tag])
            .output()
            .expect("docker runs");
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "{platform}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines,
            vec!["prepared by RUN", arch, "user 1000 ran here", arch],
            "{platform}: the RUN steps ran for {arch} and docker runs the image as {arch}"
        );
        let _ = std::process::Command::new("/usr/bin/docker")
            .env("DOCKER_HOST", &env.docker_host)
            .args(["rmi", "-f", &tag])
            .output();
    }
}
