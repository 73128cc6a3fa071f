//! `ADD <git ref>` end to end, offline: a real repository (files, a subdir, an executable,
//! a symlink, commits with fixed dates, a lightweight and an annotated tag, a branch)
//! served on loopback by `git daemon` (git://) and by a static file server (dumb HTTP,
//! which refuses shallow fetches, so kiln's full-fetch fallback runs). Builds are
//! exported with `-o type=tar` and read back with the `tar` crate.
//!
//! Docker 20.10's embedded BuildKit cannot be compared here: its built-in Dockerfile
//! frontend predates `ADD <git ref>` (it treats `git://…` as a context path), and a
//! newer frontend (`# syntax=docker/dockerfile:1`) would have to be pulled from the
//! internet.

mod common;

use common::build::{kiln, write};
use common::free_port;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

const T1: i64 = 1_700_000_000;
const T2: i64 = 1_700_000_100;
const T3: i64 = 1_700_000_200;
const T4: i64 = 1_700_000_300;

/// Runs git in `dir` with a fixed identity and commit date; panics on failure.
fn git(dir: &Path, date: i64, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=kiln", "-c", "user.email=kiln@test"])
        .args(["-c", "init.defaultBranch=main", "-c", "tag.gpgSign=false"])
        .args(["-c", "commit.gpgSign=false"])
        .args(args)
        .env("GIT_AUTHOR_DATE", format!("@{date} +0000"))
        .env("GIT_COMMITTER_DATE", format!("@{date} +0000"))
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs (install git: apt-get install git)");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A repository served by `git daemon` (git://) and as static files (dumb HTTP).
struct Server {
    base: tempfile::TempDir,
    daemon: Child,
    port: u16,
    http: String,
    /// Commits: first (tag v1 and annotated v1a), second (main), on branch dev.
    one: String,
    two: String,
    dev: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

impl Server {
    fn start() -> Server {
        let base = tempfile::tempdir().expect("tempdir");
        let repo = base.path().join("repo");
        std::fs::create_dir_all(&repo).expect("mkdir");
        git(&repo, T1, &["init", "-q"]);
        write(&repo, "a.txt", "hello\n");
        write(&repo, "sub/deep/d.txt", "deep\n");
        write(&repo, "run.sh", "#!/bin/sh\necho hi\n");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(repo.join("run.sh"), std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
        std::os::unix::fs::symlink("a.txt", repo.join("link")).expect("symlink");
        git(&repo, T1, &["add", "-A"]);
        git(&repo, T1, &["commit", "-qm", "one"]);
        git(&repo, T1, &["tag", "v1"]);
        git(&repo, T1, &["tag", "-a", "v1a", "-m", "annotated"]);
        let one = git(&repo, T1, &["rev-parse", "HEAD"]);
        write(&repo, "b.txt", "two\n");
        git(&repo, T2, &["add", "-A"]);
        git(&repo, T2, &["commit", "-qm", "two"]);
        let two = git(&repo, T2, &["rev-parse", "HEAD"]);
        git(&repo, T3, &["checkout", "-qb", "dev"]);
        write(&repo, "sub/devonly.txt", "dev\n");
        git(&repo, T3, &["add", "-A"]);
        git(&repo, T3, &["commit", "-qm", "dev"]);
        let dev = git(&repo, T3, &["rev-parse", "HEAD"]);
        git(&repo, T3, &["checkout", "-q", "main"]);
        Server::publish_http(base.path());

        let port = free_port();
        let daemon = std::process::Command::new("git")
            .arg("daemon")
            .arg("--reuseaddr")
            .arg(format!("--base-path={}", base.path().display()))
            .args(["--export-all", "--listen=127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(base.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon runs (Debian's git package ships it)");
        let http = serve_dir(base.path().to_path_buf());
        let s = Server {
            base,
            daemon,
            port,
            http,
            one,
            two,
            dev,
        };
        // Wait until the daemon answers.
        for _ in 0..100 {
            let ok = std::process::Command::new("git")
                .args(["ls-remote", &s.url("repo")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|st| st.success());
            if ok {
                return s;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("git daemon did not start on port {port}");
    }

    /// A bare copy `repo.git` with the files dumb HTTP needs.
    fn publish_http(base: &Path) {
        let _ = std::fs::remove_dir_all(base.join("repo.git"));
        git(base, T1, &["clone", "-q", "--bare", "repo", "repo.git"]);
        git(&base.join("repo.git"), T1, &["update-server-info"]);
    }

    fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }

    fn repo(&self) -> PathBuf {
        self.base.path().join("repo")
    }
}

/// Serves files under `root` over HTTP/1.0 (one connection at a time, no keep-alive).
fn serve_dir(root: PathBuf) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut s = stream;
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&req);
            let path = text
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .split('?')
                .next()
                .unwrap_or("/")
                .to_string();
            let file = root.join(path.trim_start_matches('/'));
            let body = if path.contains("..") {
                None
            } else {
                std::fs::read(&file).ok()
            };
            let _ = match body {
                Some(b) => write!(
                    s,
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                    b.len()
                )
                .and_then(|_| s.write_all(&b)),
                None => write!(
                    s,
                    "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                ),
            };
        }
    });
    format!("http://{addr}")
}

/// One entry of an exported root filesystem.
#[derive(Debug, Clone, PartialEq)]
struct Item {
    kind: char,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    link: String,
    content: String,
}

fn read_tar(path: &Path) -> BTreeMap<String, Item> {
    let f = std::fs::File::open(path).expect("exported tar");
    let mut ar = tar::Archive::new(f);
    let mut out = BTreeMap::new();
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let h = e.header().clone();
        let name = e
            .path()
            .expect("path")
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let kind = match h.entry_type() {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Regular => 'f',
            other => panic!("{name}: unexpected {other:?}"),
        };
        let mut bytes = Vec::new();
        if kind == 'f' {
            e.read_to_end(&mut bytes).expect("read");
        }
        let content = String::from_utf8_lossy(&bytes).into_owned();
        out.insert(
            name,
            Item {
                kind,
                mode: h.mode().expect("mode") & 0o7777,
                uid: h.uid().expect("uid"),
                gid: h.gid().expect("gid"),
                mtime: h.mtime().expect("mtime"),
                link: h
                    .link_name()
                    .ok()
                    .flatten()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                content,
            },
        );
    }
    out
}

struct Build {
    ok: bool,
    code: Option<i32>,
    stderr: String,
    out: PathBuf,
}

fn build(home: &Path, ctx: &Path, dockerfile: &str) -> Build {
    std::fs::write(ctx.join("Dockerfile"), dockerfile).expect("Dockerfile");
    let out = ctx.join("out.tar");
    let _ = std::fs::remove_file(&out);
    let o = kiln(home)
        .current_dir(ctx)
        .args([
            "build",
            "--progress=plain",
            "-o",
            "type=tar,dest=out.tar",
            ".",
        ])
        .output()
        .expect("kiln runs");
    Build {
        ok: o.status.success(),
        code: o.status.code(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        out,
    }
}

fn keys(home: &Path) -> usize {
    std::fs::read_dir(home.join("keys")).map_or(0, |d| d.count())
}

#[test]
fn refs_subdirs_modes_and_mtimes() {
    let srv = Server::start();
    let (home, ctx) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let u = srv.url("repo");
    let df = format!(
        "FROM scratch\nADD {u} /src\nADD {u}#v1 /tag\nADD {u}#v1a /ann/\nADD --checksum={dev} {u}#dev:sub /dev\nADD {u}#{one} /sha\nADD --chown=1000:1000 --chmod=700 {u}#main:sub/deep opt\n",
        one = srv.one,
        dev = srv.dev
    );
    let b = build(home.path(), ctx.path(), &df);
    assert!(b.ok, "{}", b.stderr);
    let t = read_tar(&b.out);
    let get = |p: &str| {
        t.get(p)
            .unwrap_or_else(|| panic!("{p} missing: {:?}", t.keys()))
    };
    // Default branch (main): the second commit, no .git.
    assert_eq!(get("src/a.txt").content, "hello\n");
    assert_eq!(get("src/b.txt").content, "two\n");
    assert!(!t.contains_key("src/.git"), "{:?}", t.keys());
    assert!(!t.contains_key("src/sub/devonly.txt"));
    let f = get("src/a.txt");
    assert_eq!((f.mode, f.uid, f.gid, f.mtime), (0o644, 0, 0, T2 as u64));
    assert_eq!(get("src/run.sh").mode, 0o755);
    let l = get("src/link");
    assert_eq!((l.kind, l.link.as_str()), ('l', "a.txt"));
    assert_eq!(l.mtime, T2 as u64);
    let d = get("src/sub/deep");
    assert_eq!((d.kind, d.mode, d.mtime), ('d', 0o755, T2 as u64));
    // Tags (lightweight and annotated) and a commit sha: the first commit.
    for dir in ["tag", "ann", "sha"] {
        assert_eq!(get(&format!("{dir}/a.txt")).content, "hello\n");
        assert!(!t.contains_key(&format!("{dir}/b.txt")), "{dir}");
        assert_eq!(get(&format!("{dir}/a.txt")).mtime, T1 as u64);
    }
    // A branch's subdir becomes the destination's contents.
    assert_eq!(get("dev/devonly.txt").content, "dev\n");
    assert_eq!(get("dev/deep/d.txt").content, "deep\n");
    assert!(!t.contains_key("dev/a.txt"));
    assert_eq!(get("dev/devonly.txt").mtime, T3 as u64);
    // --chown/--chmod, relative destination.
    let o = get("opt/d.txt");
    assert_eq!((o.mode, o.uid, o.gid), (0o700, 1000, 1000));
    assert_eq!(o.content, "deep\n");
}

#[test]
fn keep_git_dir_and_checksum() {
    let srv = Server::start();
    let (home, ctx) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let u = srv.url("repo");
    let df = format!(
        "FROM scratch\nADD --keep-git-dir=true --checksum={two} {u}#main /k\nADD --keep-git-dir=false --checksum={short} {u}#v1a /n\n",
        two = srv.two,
        short = &srv.one[..12]
    );
    let b = build(home.path(), ctx.path(), &df);
    assert!(b.ok, "{}", b.stderr);
    let t = read_tar(&b.out);
    let head = t.get("k/.git/HEAD").expect("k/.git kept");
    assert_eq!(
        head.content.trim(),
        srv.two,
        "a detached HEAD at the commit"
    );
    let config = &t.get("k/.git/config").expect("config").content;
    assert!(config.contains(&u), "origin is the remote: {config}");
    assert!(!t.contains_key("k/.git/FETCH_HEAD"));
    assert_eq!(t.get("k/b.txt").map(|i| i.content.as_str()), Some("two\n"));
    assert!(!t.contains_key("n/.git"));
    assert!(t.contains_key("n/a.txt"));

    // A wrong checksum: the error names the line and both commits; nothing exported,
    // no cache record written.
    let before = keys(home.path());
    let bad = build(
        home.path(),
        ctx.path(),
        &format!(
            "FROM scratch\nADD --checksum={one} {u}#main /k\n",
            one = srv.one
        ),
    );
    assert!(!bad.ok);
    assert_eq!(bad.code, Some(1));
    assert!(
        bad.stderr.contains("git checksum mismatch"),
        "{}",
        bad.stderr
    );
    assert!(bad.stderr.contains(&srv.two), "{}", bad.stderr);
    assert!(bad.stderr.contains("Dockerfile:2"), "{}", bad.stderr);
    assert!(!bad.out.exists());
    assert_eq!(keys(home.path()), before);
    let malformed = build(
        home.path(),
        ctx.path(),
        &format!("FROM scratch\nADD --checksum=sha256:abc {u} /k\n"),
    );
    assert!(!malformed.ok);
    assert!(
        malformed.stderr.contains("invalid --checksum"),
        "{}",
        malformed.stderr
    );
}

#[test]
fn cached_until_the_branch_moves() {
    let srv = Server::start();
    let (home, ctx) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let u = srv.url("repo");
    let df = format!("FROM scratch\nADD {u}#main /m\nADD {u}#v1 /t\n");
    let first = build(home.path(), ctx.path(), &df);
    assert!(first.ok, "{}", first.stderr);
    let again = build(home.path(), ctx.path(), &df);
    assert!(again.ok, "{}", again.stderr);
    assert_eq!(
        again.stderr.matches("CACHED").count(),
        2,
        "both ADDs hit the cache: {}",
        again.stderr
    );
    assert_eq!(
        std::fs::read(&first.out).unwrap(),
        std::fs::read(&again.out).unwrap()
    );
    // A new commit on main: `git ls-remote` sees it, so the first ADD runs again (and
    // the second, which is built on top of it).
    write(&srv.repo(), "c.txt", "three\n");
    git(&srv.repo(), T4, &["add", "-A"]);
    git(&srv.repo(), T4, &["commit", "-qm", "three"]);
    let moved = build(home.path(), ctx.path(), &df);
    assert!(moved.ok, "{}", moved.stderr);
    assert!(
        !moved.stderr.contains("#1 CACHED"),
        "the moved branch rebuilds: {}",
        moved.stderr
    );
    let t = read_tar(&moved.out);
    assert_eq!(
        t.get("m/c.txt").map(|i| i.content.as_str()),
        Some("three\n")
    );
    assert_eq!(t.get("m/c.txt").map(|i| i.mtime), Some(T4 as u64));
    assert!(!t.contains_key("t/c.txt"));
    // The tag alone, in its own stage: still cached from the first build.
    let tag_only = build(
        home.path(),
        ctx.path(),
        &format!("FROM scratch\nADD {u}#v1 /t\n"),
    );
    assert!(tag_only.ok, "{}", tag_only.stderr);
    let again = build(
        home.path(),
        ctx.path(),
        &format!("FROM scratch\nADD {u}#v1 /t\n"),
    );
    assert!(again.stderr.contains("#1 CACHED"), "{}", again.stderr);
}

#[test]
fn bad_refs_and_repos_fail_with_the_line() {
    let srv = Server::start();
    let (home, ctx) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let u = srv.url("repo");
    let cases = [
        (format!("{u}#nope"), "git ref \"nope\" not found"),
        (
            format!("{u}#main:nosuch"),
            "subdirectory \"nosuch\" not found",
        ),
        (
            format!("{u}#main:a.txt"),
            "subdirectory \"a.txt\" not found",
        ),
        (srv.url("missing"), "failed to read git repository"),
        (format!("{u}#{}", "0".repeat(40)), "not found"),
    ];
    for (src, want) in cases {
        let b = build(
            home.path(),
            ctx.path(),
            &format!("FROM scratch\nADD {src} /x\n"),
        );
        assert!(!b.ok, "{src}");
        assert_eq!(b.code, Some(1), "{src}: {}", b.stderr);
        assert!(b.stderr.contains(want), "{src}: {}", b.stderr);
        assert!(b.stderr.contains("Dockerfile:2"), "{src}: {}", b.stderr);
        assert!(!b.out.exists(), "{src}: nothing exported");
    }
    assert_eq!(keys(home.path()), 0, "no cache record for failed steps");
    // A password in the URL is never printed.
    let port = free_port();
    let b = build(
        home.path(),
        ctx.path(),
        &format!("FROM scratch\nADD http://kiln:s3cret-pw@127.0.0.1:{port}/r.git /x\n"),
    );
    assert!(!b.ok);
    assert!(b.stderr.contains("kiln:xxxxx@"), "{}", b.stderr);
    assert!(!b.stderr.contains("s3cret-pw"), "{}", b.stderr);
    // COPY refuses git sources; a git source is ADD's only source.
    let b = build(
        home.path(),
        ctx.path(),
        &format!("FROM scratch\nCOPY {u} /x\n"),
    );
    assert!(
        b.stderr.contains("source can't be a git ref for COPY"),
        "{}",
        b.stderr
    );
    std::fs::write(ctx.path().join("f"), "x").unwrap();
    let b = build(
        home.path(),
        ctx.path(),
        &format!("FROM scratch\nADD f {u} /x/\n"),
    );
    assert!(b.stderr.contains("only source"), "{}", b.stderr);
}

#[test]
fn dumb_http_falls_back_to_a_full_fetch() {
    let srv = Server::start();
    let (home, ctx) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let h = format!("{}/repo.git", srv.http);
    let df = format!(
        "FROM scratch\nADD {h} /h\nADD {h}#dev:sub /d\nADD {h}#{one} /s\n",
        one = srv.one
    );
    let b = build(home.path(), ctx.path(), &df);
    assert!(b.ok, "{}", b.stderr);
    let t = read_tar(&b.out);
    assert_eq!(t.get("h/b.txt").map(|i| i.content.as_str()), Some("two\n"));
    assert_eq!(
        t.get("d/devonly.txt").map(|i| i.content.as_str()),
        Some("dev\n")
    );
    assert!(t.contains_key("s/a.txt") && !t.contains_key("s/b.txt"));
    // The same tree over git:// and over dumb HTTP.
    let g = build(
        home.path(),
        ctx.path(),
        &format!("FROM scratch\nADD {} /h\n", srv.url("repo")),
    );
    assert!(g.ok, "{}", g.stderr);
    let over_git: BTreeMap<_, _> = read_tar(&g.out)
        .into_iter()
        .filter(|(k, _)| k.starts_with("h"))
        .collect();
    let over_http: BTreeMap<_, _> = t.into_iter().filter(|(k, _)| k.starts_with("h")).collect();
    assert_eq!(over_git, over_http);
}

/// A repository with Dockerfiles, served by the test's git daemon as `ctx`.
fn context_repo(srv: &Server) -> String {
    let repo = srv.base.path().join("ctx");
    std::fs::create_dir_all(&repo).expect("mkdir");
    git(&repo, T1, &["init", "-q"]);
    write(&repo, "app/Dockerfile", "FROM scratch\nCOPY . /src\n");
    write(
        &repo,
        "app/Other.Dockerfile",
        "FROM scratch\nCOPY hello.txt /other.txt\n",
    );
    write(&repo, "app/hello.txt", "hello from git\n");
    write(&repo, "README", "top\n");
    git(&repo, T1, &["add", "-A"]);
    git(&repo, T1, &["commit", "-qm", "ctx"]);
    srv.url("ctx")
}

#[test]
fn git_repositories_as_build_contexts() {
    let srv = Server::start();
    let url = context_repo(&srv);
    let (home, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let run = |args: &[&str]| {
        let o = kiln(home.path())
            .current_dir(dir.path())
            .arg("build")
            .arg("--progress=plain")
            .args(args)
            .output()
            .expect("kiln runs");
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    // The context: a branch and a subdirectory of the repository; its Dockerfile.
    let (ok, err) = run(&["-o", "type=tar,dest=a.tar", &format!("{url}#main:app")]);
    assert!(ok, "{err}");
    let t = read_tar(&dir.path().join("a.tar"));
    assert_eq!(t["src/hello.txt"].content, "hello from git\n");
    assert!(t.contains_key("src/Dockerfile"));
    assert!(!t.contains_key("src/README") && !t.contains_key("src/.git"));
    // -f names a file of the checkout.
    let (ok, err) = run(&[
        "-f",
        "Other.Dockerfile",
        "-o",
        "type=tar,dest=b.tar",
        &format!("{url}#main:app"),
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        read_tar(&dir.path().join("b.tar"))["other.txt"].content,
        "hello from git\n"
    );
    // A named context from git, the main context local.
    write(
        dir.path(),
        "Dockerfile",
        "FROM scratch\nCOPY --from=src hello.txt /named.txt\n",
    );
    let (ok, err) = run(&[
        "--build-context",
        &format!("src={url}#main:app"),
        "-o",
        "type=tar,dest=c.tar",
        ".",
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        read_tar(&dir.path().join("c.tar"))["named.txt"].content,
        "hello from git\n"
    );
    // bake: a target's context is a git URL.
    write(
        dir.path(),
        "docker-bake.hcl",
        &format!(
            "target \"app\" {{\n  context = \"{url}#main:app\"\n  output = [\"type=tar,dest=d.tar\"]\n}}\n"
        ),
    );
    let o = kiln(home.path())
        .current_dir(dir.path())
        .args(["bake", "--progress=plain", "app"])
        .output()
        .expect("kiln runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        read_tar(&dir.path().join("d.tar"))["src/hello.txt"].content,
        "hello from git\n"
    );
    // A ref that does not exist, and a tarball URL: clear errors, nothing written.
    let (ok, err) = run(&["-o", "type=tar,dest=e.tar", &format!("{url}#nope")]);
    assert!(!ok && err.contains("nope"), "{err}");
    let (ok, err) = run(&[
        "-o",
        "type=tar,dest=e.tar",
        "https://127.0.0.1:9/ctx.tar.gz",
    ]);
    assert!(!ok && err.contains("not available yet"), "{err}");
    assert!(!dir.path().join("e.tar").exists());
}
