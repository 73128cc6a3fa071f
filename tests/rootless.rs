//! Rootless RUN end to end: the real `kiln` binary run as the unprivileged test users of
//! `scripts/test-env.sh up` (`KILN_TEST_ROOTLESS_USER` with /etc/subuid and /etc/subgid
//! ranges, `KILN_TEST_NOSUBID_USER` without), switched to with `setpriv`. kiln re-executes
//! itself in a user namespace; the image it builds must be byte-identical to the one root
//! builds. Runs as root (to switch users); skips only when the kernel has no user
//! namespaces for unprivileged users.

mod common;

use assert_cmd::Command;
use common::oci::OciArchive;
use common::{env_or_fail, TestEnv};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The Dockerfile both builds run: files created, deleted and renamed across layers, a
/// directory replaced (opaque in the overlay), `chown 1000:1000`, a `USER 1000` RUN, a
/// cache mount, and a COPY from the context.
const DOCKERFILE: &str = r#"FROM {BASE}
COPY hello.txt /data/hello.txt
RUN mkdir -p /data/dir && echo one > /data/a && echo two > /data/b && touch /data/dir/x
RUN rm /data/a && mv /data/b /data/c && rm -r /data/dir && mkdir /data/dir && echo y > /data/dir/y
RUN echo owned > /owned && chown 1000:1000 /owned && id -u > /id-root
USER 1000
RUN id && touch /tmp/by-app
USER 0
RUN --mount=type=cache,target=/cache echo cached >> /cache/log && cp /cache/log /from-cache
"#;

/// Why this machine cannot run the test, if it truly cannot.
fn cannot_run() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("the test switches to the test users and needs root".into());
    }
    let max = std::fs::read_to_string("/proc/sys/user/max_user_namespaces").unwrap_or_default();
    if max.trim() == "0" {
        return Some("user namespaces are disabled (user.max_user_namespaces = 0)".into());
    }
    None
}

macro_rules! skip_unless_possible {
    () => {
        if let Some(why) = cannot_run() {
            eprintln!("SKIP: {why}");
            return;
        }
    };
}

/// uid and gid of a user, from `id`.
fn ids(user: &str) -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = std::process::Command::new("id")
            .args([flag, user])
            .output()
            .expect("id runs");
        assert!(
            out.status.success(),
            "no user {user}: {}; {}",
            String::from_utf8_lossy(&out.stderr),
            common::SETUP_HINT
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("numeric id")
    };
    (id("-u"), id("-g"))
}

/// The first subordinate range of `user` in /etc/subuid.
fn subuid_start(user: &str) -> u32 {
    let text = std::fs::read_to_string("/etc/subuid").expect("/etc/subuid");
    text.lines()
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next() == Some(user)).then(|| f.next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no /etc/subuid entry for {user}; {}", common::SETUP_HINT))
}

/// A scratch tree every test user can read: the kiln binary and the build context, plus
/// one directory owned by each user for its KILN_HOME and outputs.
struct Sandbox {
    dir: tempfile::TempDir,
    kiln: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("kiln-rootless-")
            .tempdir_in("/tmp")
            .expect("tempdir");
        chmod(dir.path(), 0o755);
        // The target dir may not be reachable by other users (e.g. under /root).
        let kiln = dir.path().join("kiln");
        std::fs::copy(env!("CARGO_BIN_EXE_kiln"), &kiln).expect("copy kiln");
        chmod(&kiln, 0o755);
        Sandbox { dir, kiln }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A context dir readable by everyone.
    fn context(&self, name: &str, dockerfile: &str, files: &[(&str, &[u8])]) -> PathBuf {
        let ctx = self.path().join(name);
        std::fs::create_dir(&ctx).expect("mkdir");
        std::fs::write(ctx.join("Dockerfile"), dockerfile).expect("write");
        for (n, data) in files {
            std::fs::write(ctx.join(n), data).expect("write");
            chmod(&ctx.join(n), 0o755);
        }
        chmod(&ctx, 0o755);
        chmod(&ctx.join("Dockerfile"), 0o644);
        ctx
    }

    /// A directory owned by `user` (its KILN_HOME and outputs go there).
    fn home_of(&self, user: &str) -> PathBuf {
        let (uid, gid) = ids(user);
        let home = self.path().join(format!("home-{user}"));
        std::fs::create_dir(&home).expect("mkdir");
        std::os::unix::fs::chown(&home, Some(uid), Some(gid)).expect("chown");
        home
    }

    /// `kiln ARGS` as `user` (setpriv: no extra process in between), with its own store.
    fn kiln_as(&self, user: &str, home: &Path) -> Command {
        self.kiln_as_in(user, home, None)
    }

    /// [`Sandbox::kiln_as`] with `group` as the only supplementary group (instead of the
    /// user's own), e.g. the group of the Docker socket.
    fn kiln_as_in(&self, user: &str, home: &Path, group: Option<u32>) -> Command {
        let (uid, gid) = ids(user);
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg(match group {
                Some(g) => format!("--groups={g}"),
                None => "--init-groups".into(),
            })
            .arg(&self.kiln)
            .current_dir(self.path())
            .env("HOME", home)
            .env("KILN_HOME", home.join("store"))
            .env("NO_COLOR", "1")
            .env("SOURCE_DATE_EPOCH", "0");
        c
    }

    /// `kiln ARGS` as root, with its own store.
    fn kiln_as_root(&self, home: &Path) -> Command {
        let mut c = Command::new(&self.kiln);
        c.current_dir(self.path())
            .env("KILN_HOME", home.join("store"))
            .env("NO_COLOR", "1")
            .env("SOURCE_DATE_EPOCH", "0");
        c
    }
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn output(cmd: &mut Command) -> (Option<i32>, String, String) {
    let out = cmd.output().expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One tar entry of a layer: path, type, uid, gid, mode.
type Member = (String, char, u64, u64, u32);

/// The image of an OCI archive: its manifest digest and each layer's members.
fn image_layers(archive: &Path) -> (String, Vec<Vec<Member>>) {
    let oci = OciArchive::unpack(archive);
    let digest = oci.index()["manifests"][0]["digest"]
        .as_str()
        .expect("manifest digest")
        .to_string();
    let manifest = oci.blob_json(&digest);
    let mut layers = Vec::new();
    for l in manifest["layers"].as_array().expect("layers") {
        let f = std::fs::File::open(oci.blob_path(l["digest"].as_str().expect("digest")))
            .expect("blob");
        let mut a = tar::Archive::new(flate2::read::MultiGzDecoder::new(f));
        let mut members = Vec::new();
        for e in a.entries().expect("entries") {
            let e = e.expect("entry");
            let h = e.header();
            let kind = match h.entry_type() {
                tar::EntryType::Directory => 'd',
                tar::EntryType::Symlink => 'l',
                tar::EntryType::Link => 'h',
                _ => 'f',
            };
            members.push((
                e.path().expect("path").to_string_lossy().into_owned(),
                kind,
                h.uid().expect("uid"),
                h.gid().expect("gid"),
                h.mode().expect("mode"),
            ));
        }
        layers.push(members);
    }
    (digest, layers)
}

fn find<'a>(layers: &'a [Vec<Member>], path: &str) -> Vec<(usize, &'a Member)> {
    layers
        .iter()
        .enumerate()
        .flat_map(|(i, l)| l.iter().map(move |m| (i, m)))
        .filter(|(_, m)| m.0.trim_end_matches('/') == path)
        .collect()
}

/// Every path under `dir` (not following symlinks).
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(items) = std::fs::read_dir(dir) else {
        return;
    };
    for item in items.flatten() {
        let p = item.path();
        out.push(p.clone());
        if item.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&p, out);
        }
    }
}

#[test]
fn rootless_build_is_identical_to_the_root_build() {
    skip_unless_possible!();
    let env = TestEnv::get();
    let user = env_or_fail("KILN_TEST_ROOTLESS_USER");
    let sb = Sandbox::new();
    let df = DOCKERFILE.replace("{BASE}", &env.base_image);
    let ctx = sb.context("ctx", &df, &[("hello.txt", b"hello\n")]);

    let home = sb.home_of(&user);
    let rootless_tar = home.join("rootless.tar");
    let (code, _, err) = output(sb.kiln_as(&user, &home).args([
        "build",
        "--progress=plain",
        "-o",
        &format!("type=oci,dest={}", rootless_tar.display()),
        ctx.to_str().expect("utf-8"),
    ]));
    assert_eq!(code, Some(0), "rootless build failed:\n{err}");
    assert!(
        err.contains("RUN executor: rootless sandbox (user namespace, subordinate ids: uid 0->"),
        "the build names its executor:\n{err}"
    );
    assert!(
        err.contains("uid=1000(app) gid=1000(app)"),
        "USER 1000 RUN:\n{err}"
    );

    let root_home = sb.path().join("home-root");
    std::fs::create_dir(&root_home).expect("mkdir");
    let root_tar = root_home.join("root.tar");
    let (code, _, err) = output(sb.kiln_as_root(&root_home).args([
        "build",
        "--progress=plain",
        "-o",
        &format!("type=oci,dest={}", root_tar.display()),
        ctx.to_str().expect("utf-8"),
    ]));
    assert_eq!(code, Some(0), "root build failed:\n{err}");
    assert!(err.contains("RUN executor: sandbox as root"), "{err}");

    // Same inputs, same image: rootless and root give the same bytes.
    let (rootless_digest, rootless_layers) = image_layers(&rootless_tar);
    let (root_digest, root_layers) = image_layers(&root_tar);
    assert_eq!(
        rootless_layers.len(),
        root_layers.len(),
        "layer counts differ"
    );
    for (i, (a, b)) in rootless_layers.iter().zip(&root_layers).enumerate() {
        let only_rootless: Vec<_> = a.iter().filter(|m| !b.contains(m)).collect();
        let only_root: Vec<_> = b.iter().filter(|m| !a.contains(m)).collect();
        assert!(
            a == b,
            "layer {i} differs: only rootless {only_rootless:?}, only root {only_root:?}"
        );
    }
    assert_eq!(rootless_digest, root_digest);
    assert_eq!(
        std::fs::read(&rootless_tar).expect("read"),
        std::fs::read(&root_tar).expect("read"),
        "the OCI archives differ"
    );

    // What the layers hold (base, COPY, then one per RUN).
    let l = &rootless_layers;
    assert_eq!(l.len(), 7, "{l:#?}");
    let one = |p: &str| -> (usize, Member) {
        let hits = find(l, p);
        assert_eq!(hits.len(), 1, "{p}: {hits:?}");
        (hits[0].0, hits[0].1.clone())
    };
    assert_eq!(one("home/app").1 .2, 1000, "the base image's /home/app");
    let run1 = one("data/a").0;
    let run2 = one("data/.wh.a").0;
    assert_eq!(run2, run1 + 1);
    assert_eq!(one("data/.wh.b").0, run2, "the renamed file's old name");
    assert_eq!(one("data/c").0, run2, "the renamed file's new name");
    assert_eq!(one("data/dir/.wh.x").0, run2, "the replaced directory");
    assert_eq!(one("data/dir/y").0, run2);
    let owned = one("owned");
    assert_eq!((owned.1 .2, owned.1 .3), (1000, 1000), "chown 1000:1000");
    assert_eq!(one("id-root").1 .2, 0);
    let by_app = one("tmp/by-app");
    assert_eq!(
        (by_app.1 .2, by_app.1 .3),
        (1000, 1000),
        "made by USER 1000"
    );
    assert_eq!(one("from-cache").0, 6);

    // The rootless store: the base layer's /home/app is extracted with the owner the user
    // namespace maps uid 1000 to (subordinate id start + 999), whiteouts are 0/0 devices,
    // and the cache mount is the user's.
    let store = home.join("store");
    let mut paths = Vec::new();
    walk(&store.join("layers"), &mut paths);
    let app = paths
        .iter()
        .find(|p| p.ends_with("diff/home/app"))
        .expect("extracted /home/app");
    let meta = std::fs::symlink_metadata(app).expect("stat");
    assert_eq!(meta.uid(), subuid_start(&user) + 999);
    let wh = paths
        .iter()
        .find(|p| {
            p.ends_with("diff/data/a")
                && p.symlink_metadata()
                    .is_ok_and(|m| m.file_type().is_char_device())
        })
        .expect("a whiteout for /data/a in the store");
    assert_eq!(std::fs::symlink_metadata(wh).expect("stat").rdev(), 0);
    let (uid, _) = ids(&user);
    let mut caches = Vec::new();
    walk(&store.join("cache-mounts"), &mut caches);
    let log = caches
        .iter()
        .find(|p| p.ends_with("log"))
        .expect("the cache mount's log");
    assert_eq!(std::fs::read_to_string(log).expect("read"), "cached\n");
    assert_eq!(std::fs::metadata(log).expect("stat").uid(), uid);

    // The re-executed kiln keeps the host network: a rebuild (all cached) pushes to the
    // test registry, and skopeo reads the same manifest back.
    let reference = format!("{}/rootless/app:test", env.registry);
    let (code, _, err) = output(sb.kiln_as(&user, &home).args([
        "build",
        "--progress=plain",
        "--push",
        "-t",
        &reference,
        ctx.to_str().expect("utf-8"),
    ]));
    assert_eq!(code, Some(0), "rootless push failed:\n{err}");
    let inspected = common::skopeo([
        "inspect",
        "--tls-verify=false",
        "--no-creds",
        "--raw",
        &format!("docker://{reference}"),
    ])
    .ok("reading the pushed image");
    assert_eq!(
        common::sha256_digest(inspected.stdout.as_bytes()),
        rootless_digest
    );

    // `--load` too: the user namespace keeps the supplementary groups, here the group of
    // the test engine's socket; the engine runs the image.
    let socket = env.docker_host.trim_start_matches("unix://");
    let socket_gid = std::fs::metadata(socket).expect("docker socket").gid();
    let tag = "kiln-rootless-load:test";
    let (code, _, err) = output(
        sb.kiln_as_in(&user, &home, Some(socket_gid))
            .env("DOCKER_HOST", &env.docker_host)
            .args(["build", "--progress=plain", "--load", "-t", tag])
            .arg(&ctx),
    );
    assert_eq!(code, Some(0), "rootless --load failed:\n{err}");
    let ran = common::docker(&env, ["run", "--rm", tag, "cat", "/owned", "/from-cache"])
        .ok("running the loaded image");
    assert_eq!(ran.stdout, "owned\ncached\n");
    let _ = common::docker(&env, ["rmi", tag]);
}

#[test]
fn single_id_mapping_fails_clearly_when_a_layer_needs_another_uid() {
    skip_unless_possible!();
    let env = TestEnv::get();
    let user = env_or_fail("KILN_TEST_NOSUBID_USER");
    let sb = Sandbox::new();
    let home = sb.home_of(&user);

    // The base image has /home/app owned by 1000: no way to extract it with only uid 0.
    let ctx = sb.context(
        "needs-1000",
        &format!("FROM {}\nRUN echo ran-$((6*7))\n", env.base_image),
        &[],
    );
    let (code, _, err) = output(sb.kiln_as(&user, &home).args([
        "build",
        "--progress=plain",
        ctx.to_str().expect("utf-8"),
    ]));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("single-id mapping"), "{err}");
    assert!(
        err.contains("/home/app in a layer is owned by uid 1000, which this rootless user namespace cannot represent"),
        "{err}"
    );
    assert!(
        err.contains("/etc/subuid") && err.contains("apt-get install uidmap"),
        "{err}"
    );
    assert!(!err.contains("ran-42"), "the RUN did not start:\n{err}");
    // Nothing half-extracted stays in the store.
    let store = home.join("store");
    let mut left = Vec::new();
    walk(&store.join("tmp"), &mut left);
    assert!(left.is_empty(), "left in tmp/: {left:?}");
    let mut layers = Vec::new();
    walk(&store.join("layers"), &mut layers);
    assert!(
        layers
            .iter()
            .all(|p| p.extension().is_some_and(|e| e == "lock") || p.ends_with("sha256")),
        "no extracted layer: {layers:?}"
    );

    // Root-owned content works with the single-id mapping: the sandbox runs (devpts,
    // /sys, setgroups all without the ids it lacks). A static busybox from the host.
    let busybox = std::fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)");
    let ctx = sb.context(
        "root-only",
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox id -u > /uid && /bin/busybox ls /dev/pts >/dev/null\"]\n",
        &[("busybox", &busybox)],
    );
    let out = home.join("out");
    let (code, _, err) = output(sb.kiln_as(&user, &home).args([
        "build",
        "--progress=plain",
        "-o",
        &format!("type=local,dest={}", out.display()),
        ctx.to_str().expect("utf-8"),
    ]));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("RUN executor: rootless sandbox (user namespace, single-id mapping"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("uid")).expect("read"),
        "0\n"
    );
}

#[test]
fn builder_inspect_names_the_run_mode_and_exit_codes_pass_through() {
    skip_unless_possible!();
    let sb = Sandbox::new();
    let full = env_or_fail("KILN_TEST_ROOTLESS_USER");
    let single = env_or_fail("KILN_TEST_NOSUBID_USER");
    let (uid, _) = ids(&full);
    let home = sb.home_of(&full);
    let (code, out, err) = output(sb.kiln_as(&full, &home).args(["builder", "inspect"]));
    assert_eq!(code, Some(0), "{err}");
    let start = subuid_start(&full);
    assert!(
        out.contains(&format!(
            "RUN:           rootless sandbox (user namespace, subordinate ids: uid 0->{uid}, 1-65536->{start}-{}",
            start + 65535
        )),
        "{out}"
    );
    let single_home = sb.home_of(&single);
    let (code, out, _) = output(
        sb.kiln_as(&single, &single_home)
            .args(["builder", "inspect"]),
    );
    assert_eq!(code, Some(0));
    assert!(out.contains("single-id mapping"), "{out}");
    assert!(out.contains(&format!("RUN warning:   rootless with a single-id mapping (no range for {single} in /etc/subuid")), "{out}");
    let (_, out, _) = output(sb.kiln_as_root(sb.path()).args(["builder", "inspect"]));
    assert!(out.contains("RUN:           sandbox as root"), "{out}");

    // The parent passes the child's exit status through: a usage error is 2.
    let (code, _, err) = output(
        sb.kiln_as(&full, &home)
            .args(["build", "/nonexistent-context"]),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not found"), "{err}");
}

/// Whether some process runs `needle` (in its command line).
fn process_running(needle: &str) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    procs.flatten().any(|p| {
        std::fs::read(p.path().join("cmdline"))
            .map(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .contains(needle)
            })
            .unwrap_or(false)
    })
}

#[test]
fn ctrl_c_cancels_a_rootless_build() {
    skip_unless_possible!();
    let env = TestEnv::get();
    let user = env_or_fail("KILN_TEST_ROOTLESS_USER");
    let sb = Sandbox::new();
    let home = sb.home_of(&user);
    let marker = "sleep 4717";
    let ctx = sb.context(
        "slow",
        // `st""arted`: the step's progress line shows the command, which must not match;
        // only the command's own output says "started".
        &format!(
            "FROM {}\nRUN echo st\"\"arted && {marker}\n",
            env.base_image
        ),
        &[],
    );
    let (uid, gid) = ids(&user);
    let mut cmd = std::process::Command::new("setpriv");
    // A test run started in the background (`cmd &` in a script) has SIGINT ignored, and
    // an ignored signal stays ignored across exec: give kiln the default, as a terminal
    // would.
    // SAFETY: signal(2) is async-signal-safe, called between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = cmd
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--init-groups")
        .arg(&sb.kiln)
        .args(["build", "--progress=plain"])
        .arg(&ctx)
        .env("HOME", &home)
        .env("KILN_HOME", home.join("store"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start kiln");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = BufReader::new(stderr);
        let mut all = String::new();
        let mut line = String::new();
        while lines.read_line(&mut line).unwrap_or(0) > 0 {
            if line.contains("started") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            line.clear();
        }
        let mut rest = String::new();
        let _ = lines.read_to_string(&mut rest);
        all + &rest
    });
    if rx.recv_timeout(Duration::from_secs(60)).is_err() {
        let _ = child.kill();
        panic!(
            "the RUN never started:\n{}",
            reader.join().unwrap_or_default()
        );
    }
    // setpriv exec'd kiln: this pid is kiln's (the parent outside the namespace).
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("SIGINT");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("kiln did not stop within 20 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = reader.join().unwrap_or_default();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}\n{err}");
    // The sandbox and everything in it are gone.
    let gone = Instant::now();
    while process_running(marker) && gone.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!process_running(marker), "the RUN's process survived");
}
