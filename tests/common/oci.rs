//! OCI archives as `kiln build -o type=oci` writes them, unpacked to be read as a layout.

use std::ops::Deref;
use std::path::Path;

use super::Layout;

/// An OCI archive unpacked (with `tar`) into a temporary directory, removed when dropped.
pub struct OciArchive {
    layout: Layout,
    _dir: tempfile::TempDir,
}

impl OciArchive {
    pub fn unpack(archive: &Path) -> OciArchive {
        let dir = tempfile::tempdir().expect("tempdir");
        let st = std::process::Command::new("tar")
            .arg("-xf")
            .arg(archive)
            .arg("-C")
            .arg(dir.path())
            .status()
            .expect("tar runs");
        assert!(st.success(), "cannot unpack {}", archive.display());
        OciArchive {
            layout: Layout {
                root: dir.path().to_path_buf(),
            },
            _dir: dir,
        }
    }
}

impl Deref for OciArchive {
    type Target = Layout;

    fn deref(&self) -> &Layout {
        &self.layout
    }
}
