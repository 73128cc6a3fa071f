//! Sync, snapshot and layer on a temp dir standing in for `/` (no command runs here: the
//! end-to-end tests in `tests/run_unprivileged.rs` run real builds in a container).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::ignore::IgnoreList;
use super::layer::{layer_of_changes, LayerInput};
use super::snapshot::Snapshot;
use super::sync::sync_root;
use crate::engine::fs::{EntryKind, FsView, LayerSpec};
use crate::engine::layered_fs::LayeredFs;

fn root_only() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    eprintln!("SKIP: owners, whiteouts and trusted xattrs need root");
    false
}

fn write(p: &Path, content: &str, mode: u32, mtime: i64) {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    std::fs::write(p, content).expect("write");
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    super::sync::set_times(p, mtime, 0, false).expect("times");
}

fn whiteout(p: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        0,
    )
    .expect("whiteout");
}

/// A two-layer stage: a base and a layer deleting /etc/dir/x.
fn stage(dir: &Path) -> LayeredFs {
    let (base, top) = (dir.join("base"), dir.join("top"));
    write(&base.join("bin/sh"), "#!shell", 0o755, 1000);
    write(
        &base.join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\n",
        0o644,
        1000,
    );
    write(&base.join("etc/dir/x"), "x", 0o600, 1000);
    write(&base.join("etc/dir/y"), "y", 0o644, 1000);
    write(&base.join("usr/lib/a"), "a", 0o644, 1000);
    write(&base.join("usr/lib/b"), "b", 0o644, 1000);
    std::os::unix::fs::symlink("etc", base.join("link")).expect("symlink");
    std::fs::create_dir_all(base.join("home/u")).expect("mkdir");
    rustix::fs::chown(
        base.join("home/u"),
        Some(rustix::fs::Uid::from_raw(1000)),
        Some(rustix::fs::Gid::from_raw(1000)),
    )
    .expect("chown");
    std::fs::create_dir_all(top.join("etc/dir")).expect("mkdir");
    whiteout(&top.join("etc/dir/x"));
    LayeredFs::new(vec![top, base])
}

fn ignore() -> IgnoreList {
    IgnoreList::new(&["/mnt/vol".into()], &["/kiln/store".into()])
}

/// Every entry of `root` outside the ignored paths as (path, kind, mode, uid, gid,
/// size, mtime).
fn tree(fs: &dyn FsView, ignore: &IgnoreList) -> Vec<String> {
    crate::engine::rootfs::walk(fs)
        .expect("walk")
        .into_iter()
        .filter(|e| !ignore.is_ignored(&e.path) && !ignore.is_scaffold(&e.path))
        .map(|e| {
            format!(
                "{} {:?} {:o} {}:{} {} {}",
                e.path, e.kind, e.mode, e.uid, e.gid, e.size, e.mtime
            )
        })
        .collect()
}

#[test]
fn sync_makes_the_root_hold_the_stage_and_leaves_ignored_paths() {
    if !root_only() {
        return;
    }
    let layers = tempfile::tempdir().expect("tempdir");
    let view = stage(layers.path());
    let r = tempfile::tempdir().expect("tempdir");
    let root = r.path();
    write(&root.join("junk/deep/file"), "junk", 0o644, 5);
    write(&root.join("etc/passwd"), "other", 0o600, 5);
    write(
        &root.join("bin"),
        "a file where the stage has a directory",
        0o644,
        5,
    );
    write(&root.join("proc/1/status"), "kernel", 0o444, 5);
    write(&root.join("mnt/vol/data"), "volume", 0o644, 5);
    write(&root.join("kiln/store/blob"), "store", 0o644, 5);
    write(&root.join("kiln/other"), "not kiln's", 0o644, 5);
    std::fs::hard_link(root.join("etc/passwd"), root.join("usr-link")).expect("link");
    let ignore = ignore();
    let report = sync_root(&view, root, &ignore).expect("sync");
    assert!(report.written > 0 && report.removed > 0, "{report:?}");
    let synced = LayeredFs::new(vec![root.to_path_buf()]);
    let want = tree(&view, &ignore);
    assert!(want.len() >= 12, "{want:?}");
    assert_eq!(tree(&synced, &ignore), want);
    assert_eq!(
        std::fs::read_to_string(root.join("etc/passwd")).expect("read"),
        "root:x:0:0::/root:/bin/sh\n"
    );
    for kept in ["proc/1/status", "mnt/vol/data", "kiln/store/blob"] {
        assert!(root.join(kept).exists(), "{kept} was removed");
    }
    for gone in ["junk", "kiln/other", "usr-link", "etc/dir/x"] {
        assert!(!root.join(gone).exists(), "{gone} is still there");
    }
    let again = sync_root(&view, root, &ignore).expect("sync");
    assert_eq!((again.written, again.removed), (0, 0), "{again:?}");
}

fn names(l: &LayerSpec) -> Vec<String> {
    l.entries
        .iter()
        .map(|e| match &e.kind {
            EntryKind::Whiteout => format!("-{}", e.path),
            EntryKind::Hardlink(t) => format!("{}=>{t}", e.path),
            _ => e.path.clone(),
        })
        .collect()
}

#[test]
fn changes_become_a_layer_like_the_sandbox_makes() {
    if !root_only() {
        return;
    }
    let layers = tempfile::tempdir().expect("tempdir");
    let view = stage(layers.path());
    let r = tempfile::tempdir().expect("tempdir");
    let root = r.path();
    let ignore = ignore();
    write(&root.join("kiln/store/blob"), "store", 0o644, 5);
    sync_root(&view, root, &ignore).expect("sync");
    let before = Snapshot::take(root, &ignore).expect("snapshot");
    // What a RUN might do: a new file in a new dir, an edit, a chmod to the same mode,
    // a removed file, a removed and re-made directory, a rename, a hard link, a file in
    // the store (ignored), a mount target (excluded), a socket.
    write(&root.join("opt/app/bin"), "new", 0o755, 2000);
    write(
        &root.join("etc/passwd"),
        "root:x:0:0::/root:/bin/ash\n",
        0o644,
        2000,
    );
    std::fs::set_permissions(root.join("bin/sh"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    std::fs::remove_file(root.join("etc/dir/y")).expect("rm");
    std::fs::remove_dir_all(root.join("usr/lib")).expect("rm -r");
    std::fs::create_dir(root.join("usr/lib")).expect("mkdir");
    write(&root.join("usr/lib/a"), "a2", 0o644, 2000);
    std::fs::rename(root.join("home/u"), root.join("home/v")).expect("mv");
    std::fs::hard_link(root.join("opt/app/bin"), root.join("opt/app/bin2")).expect("ln");
    write(&root.join("kiln/store/new"), "x", 0o644, 2000);
    write(&root.join("run/secrets/tok"), "s3cret", 0o400, 2000);
    let _sock = std::os::unix::net::UnixListener::bind(root.join("opt/app/sock")).expect("socket");
    let after = Snapshot::take(root, &ignore).expect("snapshot");
    let changes = before.changes(&after);
    let layer = layer_of_changes(&LayerInput {
        root,
        changes: &changes,
        after: &after,
        lower: &view,
        ignore: &ignore,
        excluded: &["/run/secrets/tok".to_string()],
    })
    .expect("layer");
    assert_eq!(
        names(&layer),
        [
            "/etc",
            "/etc/dir",
            "-/etc/dir/y",
            "/etc/passwd",
            "/home",
            "-/home/u",
            "/home/v",
            "/opt",
            "/opt/app",
            "/opt/app/bin",
            "/opt/app/bin2=>/opt/app/bin",
            "/run",
            "/run/secrets",
            "/usr",
            "/usr/lib",
            "/usr/lib/a",
            "-/usr/lib/b",
        ]
    );
}
