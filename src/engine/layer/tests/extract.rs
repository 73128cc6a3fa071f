use std::path::Path;

use super::*;
use crate::engine::fs::{Content, EntryKind, FsView, LayerSpec};
use crate::engine::layered_fs::LayeredFs;

#[test]
fn extract_to_overlay_format_and_view() {
    if !rustix::process::geteuid().is_root() {
        println!("skipped: extracting devices and owners needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let spec = every_kind(&big_file(tmp.path()));
    let blob = write_layer(&spec, &LayerOptions::default(), tmp.path()).unwrap();
    let dest = tmp.path().join("layer");
    std::fs::create_dir(&dest).unwrap();
    let diff_id = extract_layer_verified(&blob.path, &blob.media_type, &dest).unwrap();
    assert_eq!(diff_id, blob.diff_id);

    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let wh = std::fs::symlink_metadata(dest.join("etc/gone")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    let opq = rustix::fs::lgetxattr(
        dest.join("opq"),
        "trusted.overlay.opaque",
        &mut [0u8; 4][..],
    );
    assert_eq!(opq.unwrap(), 1);
    let owned = std::fs::metadata(dest.join("app/owned")).unwrap();
    let hard = std::fs::metadata(dest.join("app/hard")).unwrap();
    assert_eq!(owned.ino(), hard.ino());

    // The only layer: LayeredFs shows the spec's entries (whiteouts hidden).
    let fs = LayeredFs::new(vec![dest.clone()]);
    for want in &spec.entries {
        let got = fs.lookup(&want.path).unwrap();
        match &want.kind {
            EntryKind::Whiteout => assert_eq!(got, None),
            kind => {
                let got = got.unwrap_or_else(|| panic!("{} missing", want.path));
                let kind = match kind {
                    EntryKind::Hardlink(_) => EntryKind::File,
                    EntryKind::OpaqueDir => EntryKind::Dir,
                    k => k.clone(),
                };
                assert_eq!(got.kind, kind, "{}", want.path);
                let want = if want.path == "/app/hard" {
                    spec.entries
                        .iter()
                        .find(|e| e.path == "/app/owned")
                        .unwrap()
                } else {
                    want
                };
                assert_eq!(
                    (got.mode, got.uid, got.gid, got.mtime),
                    (want.mode, want.uid, want.gid, want.mtime),
                    "{}",
                    want.path
                );
                if kind == EntryKind::File {
                    assert_eq!(got.size, want.size);
                    assert!(matches!(got.content, Some(Content::Path(_))));
                }
                if want.path == "/app/ping" {
                    assert_eq!(got.xattrs, want.xattrs);
                }
            }
        }
    }
    assert_eq!(
        fs.read_dir("/etc").unwrap(),
        Vec::<String>::new(),
        "whiteouts are not children"
    );
    let mut big = String::new();
    if let Some(Content::Path(p)) = fs.lookup("/app/owned").unwrap().unwrap().content {
        big = std::fs::read_to_string(p).unwrap();
    }
    assert_eq!(big, "mine\n");
}

#[test]
fn malicious_symlink_parent_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let spec = LayerSpec {
        entries: vec![
            entry(
                "/evil",
                EntryKind::Symlink(outside.to_string_lossy().into_owned()),
                0o777,
            ),
            file("/evil/x", b"pwned", 0o644),
        ],
    };
    let blob = write_layer(&spec, &LayerOptions::default(), tmp.path()).unwrap();
    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let err = extract_layer(&blob.path, &blob.media_type, &dest).unwrap_err();
    assert!(matches!(err, LayerError::Unsafe { .. }), "{err}");
    assert!(!outside.join("x").exists());
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);

    // A relative escape through `..` in a link target, then a hard link out of it.
    let spec = LayerSpec {
        entries: vec![
            entry("/up", EntryKind::Symlink("../../..".into()), 0o777),
            entry("/h", EntryKind::Hardlink("/up/etc/passwd".into()), 0o644),
        ],
    };
    let blob = write_layer(&spec, &LayerOptions::default(), tmp.path()).unwrap();
    let dest2 = tmp.path().join("dest2");
    std::fs::create_dir(&dest2).unwrap();
    assert!(extract_layer(&blob.path, &blob.media_type, &dest2).is_err());
    assert!(!dest2.join("h").exists());
}

#[test]
fn absolute_and_dotdot_names_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["/etc/passwd", "a/../../escape", "../x"] {
        let blob = raw_tar(tmp.path(), &[name]);
        let dest = tmp.path().join("d");
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::create_dir(&dest).unwrap();
        let err = extract_layer(&blob, MEDIA_TYPE_OCI_TAR, &dest).unwrap_err();
        assert!(matches!(err, LayerError::Unsafe { .. }), "{name}: {err}");
        assert!(read_layer_entries(&blob, MEDIA_TYPE_OCI_TAR).is_err());
    }
    assert!(!tmp.path().join("escape").exists());
}

#[test]
fn a_directory_replaced_by_a_symlink_is_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let spec = LayerSpec {
        entries: vec![
            entry("/a", EntryKind::Dir, 0o755),
            file("/a/one", b"1", 0o644),
            entry(
                "/a",
                EntryKind::Symlink(outside.to_string_lossy().into_owned()),
                0o777,
            ),
            file("/a/two", b"2", 0o644),
        ],
    };
    let blob = write_layer(&spec, &LayerOptions::default(), tmp.path()).unwrap();
    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let err = extract_layer(&blob.path, &blob.media_type, &dest).unwrap_err();
    assert!(matches!(err, LayerError::Unsafe { .. }), "{err}");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

/// Run by `extract_as_an_unprivileged_user` in a child process as nobody.
#[test]
#[ignore = "run as a child process by extract_as_an_unprivileged_user"]
fn nonroot_child() {
    let (Some(blob), Some(dest)) = (
        std::env::var_os("KILN_TEST_NONROOT_BLOB"),
        std::env::var_os("KILN_TEST_NONROOT_DEST"),
    ) else {
        return;
    };
    extract_layer(Path::new(&blob), MEDIA_TYPE_OCI_GZIP, Path::new(&dest)).unwrap();
}

/// Not root: owners stay the current user's, devices are skipped, xattrs the user may not
/// set are dropped, whiteouts are still 0/0 devices, opaque dirs use `user.overlay.opaque`.
#[test]
fn extract_as_an_unprivileged_user() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    if !rustix::process::geteuid().is_root() {
        println!("skipped: needs root to switch to an unprivileged user");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let spec = every_kind(&big_file(tmp.path()));
    let blob = write_layer(&spec, &LayerOptions::default(), tmp.path()).unwrap();
    std::fs::set_permissions(&blob.path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o777)).unwrap();
    let exe = std::env::current_exe().unwrap();
    let out = match std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&exe)
        .args([
            "--exact",
            "engine::layer::tests::extract::nonroot_child",
            "--ignored",
            "--nocapture",
        ])
        .env("KILN_TEST_NONROOT_BLOB", &blob.path)
        .env("KILN_TEST_NONROOT_DEST", &dest)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            println!("skipped: no setpriv ({e})");
            return;
        }
    };
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let owned = std::fs::symlink_metadata(dest.join("app/owned")).unwrap();
    assert_eq!((owned.uid(), owned.mode() & 0o7777), (65534, 0o640));
    let suid = std::fs::symlink_metadata(dest.join("app/suid")).unwrap();
    assert_eq!(suid.mode() & 0o7777, 0o4755);
    assert!(!dest.join("dev/null").exists(), "devices are skipped");
    let wh = std::fs::symlink_metadata(dest.join("etc/gone")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    let mut buf = [0u8; 4];
    let n = rustix::fs::lgetxattr(dest.join("opq"), "user.overlay.opaque", &mut buf[..]);
    assert_eq!(n.ok(), Some(1));
    let fs = LayeredFs::new(vec![dest.clone()]);
    assert_eq!(fs.read_dir("/opq").unwrap(), vec!["new"]);
}
