use std::io::Read;
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::engine::fs::{Content, Entry, EntryKind, LayerSpec};
use crate::engine::layer::{write_layer, LayerBlob, LayerOptions};

fn store() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::new(tmp.path().join("kiln")).unwrap();
    (tmp, store)
}

fn layer(store: &Store, name: &str, data: &[u8]) -> LayerBlob {
    let mut e = Entry::dir(format!("/{name}"), 0o644, 0, 0);
    e.kind = EntryKind::File;
    e.size = data.len() as u64;
    e.content = Some(Content::Bytes(std::sync::Arc::new(data.to_vec())));
    let spec = LayerSpec {
        entries: vec![Entry::dir("/", 0o755, 0, 0), e],
    };
    let blob = store.write_layer(&spec, &LayerOptions::default()).unwrap();
    assert_eq!(
        blob,
        write_layer(&spec, &LayerOptions::default(), &store.blobs_dir()).unwrap()
    );
    blob
}

fn layer_ref(b: &LayerBlob) -> LayerRef {
    LayerRef {
        digest: b.digest.clone(),
        diff_id: b.diff_id.clone(),
        size: b.size,
        media_type: b.media_type.clone(),
    }
}

const KEY_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const KEY_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const KEY_C: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

#[test]
fn blobs_are_content_addressed_and_verified() {
    let (_tmp, store) = store();
    let d = store.put_bytes(b"hello", None).unwrap();
    assert_eq!(
        d,
        "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    assert!(store.has(&d));
    assert_eq!(std::fs::read(store.path(&d).unwrap()).unwrap(), b"hello");
    let mut s = String::new();
    store.open(&d).unwrap().read_to_string(&mut s).unwrap();
    assert_eq!(s, "hello");

    let wrong = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    assert!(matches!(
        store.put_bytes(b"other", Some(wrong)),
        Err(StoreError::DigestMismatch { .. })
    ));
    assert!(!store.has(wrong));
    assert!(matches!(
        store.open(wrong),
        Err(StoreError::BlobNotFound { .. })
    ));
    assert!(matches!(
        store.path("md5:abc"),
        Err(StoreError::InvalidDigest(_))
    ));
    // Only the blob, no temp files.
    assert_eq!(std::fs::read_dir(store.blobs_dir()).unwrap().count(), 1);

    let src = store.tmp_dir().join("incoming");
    std::fs::write(&src, b"file blob").unwrap();
    let d2 = store.put_file(&src, None).unwrap();
    assert!(store.has(&d2));
    assert!(!src.exists(), "put_file consumes its source");
}

#[test]
fn records_round_trip_and_corrupt_ones_are_misses() {
    let (_tmp, store) = store();
    let b = layer(&store, "a", b"a");
    let mut r = CacheRecord::new(vec![layer_ref(&b)], serde_json::json!({"env": ["A=1"]}));
    r.last_used = 5;
    store.put_record(KEY_A, &r).unwrap();
    assert_eq!(store.get_record(KEY_A), Some(r.clone()));
    store.touch(KEY_A, &r).unwrap();
    let used = store.get_record(KEY_A).unwrap().last_used;
    assert!(used > 5);
    // Touched again at once: the record is not rewritten.
    let path = store
        .keys_dir()
        .join(format!("{}.json", KEY_A.trim_start_matches("sha256:")));
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    store
        .touch(KEY_A, &store.get_record(KEY_A).unwrap())
        .unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        before
    );
    assert_eq!(store.get_record(KEY_A).unwrap().last_used, used);
    assert_eq!(store.get_record(KEY_B), None);
    assert!(matches!(
        store.put_record("../../etc/passwd", &r),
        Err(StoreError::InvalidKey(_))
    ));
    assert_eq!(store.get_record("nonsense"), None);

    let path = store.keys_dir().join(format!("{KEY_B}.json"));
    std::fs::write(&path, b"{ not json").unwrap();
    assert_eq!(store.get_record(KEY_B), None);
    assert!(!path.exists(), "a corrupt record is removed");

    // A record whose blob is gone is a miss.
    std::fs::remove_file(&b.path).unwrap();
    assert_eq!(store.get_record(KEY_A), None);
}

#[test]
fn layers_are_extracted_once_and_verified() {
    let (_tmp, store) = store();
    let b = layer(&store, "hello", b"hi\n");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            let b = b.clone();
            std::thread::spawn(move || store.extracted(&b.digest, &b.diff_id, &b.media_type))
        })
        .collect();
    let dirs: Vec<PathBuf> = threads
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    assert!(dirs.iter().all(|d| d == &dirs[0]));
    assert_eq!(std::fs::read(dirs[0].join("hello")).unwrap(), b"hi\n");
    assert!(store.is_extracted(&b.diff_id));
    assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);

    // A blob whose content does not match the claimed diff_id is never made visible.
    let other = layer(&store, "x", b"x");
    let err = store
        .extracted(
            &other.digest,
            &b.diff_id.replace('a', "b"),
            &other.media_type,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::DigestMismatch { .. } | StoreError::InvalidDigest(_)
        ),
        "{err}"
    );
    let bogus = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    assert!(matches!(
        store.extracted(&other.digest, bogus, &other.media_type),
        Err(StoreError::DigestMismatch { .. })
    ));
    assert!(!store.is_extracted(bogus));
    assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    assert!(matches!(
        store.extracted(bogus, bogus, &other.media_type),
        Err(StoreError::BlobNotFound { .. })
    ));
}

#[test]
fn du_and_prune() {
    let (_tmp, store) = store();
    let a = layer(&store, "a", &[1u8; 5000]);
    let b = layer(&store, "b", &[2u8; 5000]);
    let c = layer(&store, "c", &[3u8; 5000]);
    let orphan = store.put_bytes(b"orphan", None).unwrap();
    let now = now_unix();
    for (key, blob, used) in [
        (KEY_A, &a, now - 7200),
        (KEY_B, &b, now - 60),
        (KEY_C, &c, now),
    ] {
        let mut r = CacheRecord::new(vec![layer_ref(blob)], serde_json::Value::Null);
        r.last_used = used;
        store.put_record(key, &r).unwrap();
    }
    store
        .extracted(&a.digest, &a.diff_id, &a.media_type)
        .unwrap();
    let usage = store.du().unwrap();
    assert_eq!((usage.blobs, usage.layers, usage.records), (4, 1, 3));
    assert_eq!(usage.unreferenced_bytes, 6);
    assert!(usage.layers_bytes >= 5000);

    // Default: only unreferenced things go.
    let r = store.prune(&PruneOptions::default()).unwrap();
    assert_eq!(
        (r.records_removed, r.blobs_removed, r.layers_removed),
        (0, 1, 0)
    );
    assert!(!store.has(&orphan));

    // Older than an hour: the record of `a`, its blob and extracted layer.
    let r = store
        .prune(&PruneOptions {
            until: Some(Duration::from_secs(3600)),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        (r.records_removed, r.blobs_removed, r.layers_removed),
        (1, 1, 1)
    );
    assert!(!store.has(&a.digest) && !store.is_extracted(&a.diff_id));
    assert!(store.get_record(KEY_B).is_some());

    // Keep at most one blob's worth: the least recently used (b) goes.
    let r = store
        .prune(&PruneOptions {
            keep_storage: Some(c.size),
            ..Default::default()
        })
        .unwrap();
    assert_eq!((r.records_removed, r.blobs_removed), (1, 1));
    assert!(store.get_record(KEY_B).is_none());
    assert!(store.get_record(KEY_C).is_some());

    let r = store
        .prune(&PruneOptions {
            all: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!((r.records_removed, r.blobs_removed), (1, 1));
    let usage = store.du().unwrap();
    assert_eq!((usage.blobs, usage.layers, usage.records), (0, 0, 0));
}

/// The conformance corpus' base image (an OCI layout beside the repository, when present):
/// every layer goes through the store and is viewed with LayeredFs.
#[test]
fn base_image_layers_of_the_conformance_corpus() {
    use crate::engine::fs::{resolve_in_root, FsView};
    use crate::engine::layered_fs::LayeredFs;
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/dockerfile/base");
    if !base.join("index.json").is_file() {
        println!("skipped: {} not present", base.display());
        return;
    }
    let (_tmp, store) = store();
    let json = |digest: &str| -> serde_json::Value {
        let hex = digest.trim_start_matches("sha256:");
        serde_json::from_slice(&std::fs::read(base.join("blobs/sha256").join(hex)).unwrap())
            .unwrap()
    };
    let top: serde_json::Value =
        serde_json::from_slice(&std::fs::read(base.join("index.json")).unwrap()).unwrap();
    let index = json(top["manifests"][0]["digest"].as_str().unwrap());
    let mut checked = 0;
    for m in index["manifests"].as_array().unwrap() {
        let manifest = json(m["digest"].as_str().unwrap());
        let config = json(manifest["config"]["digest"].as_str().unwrap());
        let mut dirs = Vec::new();
        for (layer, diff_id) in manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .zip(config["rootfs"]["diff_ids"].as_array().unwrap())
        {
            let digest = layer["digest"].as_str().unwrap();
            let hex = digest.trim_start_matches("sha256:");
            let f = std::fs::File::open(base.join("blobs/sha256").join(hex)).unwrap();
            assert_eq!(store.put_reader(f, Some(digest)).unwrap(), digest);
            let media_type = layer["mediaType"].as_str().unwrap();
            let dir = store
                .extracted(digest, diff_id.as_str().unwrap(), media_type)
                .unwrap();
            dirs.insert(0, dir);
        }
        let fs = LayeredFs::new(dirs);
        let tmp_dir = fs.lookup("/tmp").unwrap().unwrap();
        assert_eq!(tmp_dir.mode, 0o1777);
        let passwd = fs.lookup("/etc/passwd").unwrap().unwrap();
        let Some(crate::engine::fs::Content::Path(p)) = passwd.content else {
            panic!("no content for /etc/passwd");
        };
        assert!(std::fs::read_to_string(p).unwrap().contains(":1000:"));
        assert_eq!(fs.lookup("/home/app").unwrap().unwrap().uid, 1000);
        assert_eq!(resolve_in_root(&fs, "/var/run/x", true).unwrap(), "/run/x");
        assert!(fs.read_dir("/bin").unwrap().iter().any(|n| n == "sh"));
        checked += 1;
    }
    assert!(checked >= 1);
}
