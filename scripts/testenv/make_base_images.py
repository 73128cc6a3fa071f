#!/usr/bin/env python3
"""Write a multi-platform busybox base image as an OCI image layout.

Used by scripts/test-env.sh. Standard library only. The output is
deterministic: the same busybox binaries give the same digests.

    make_base_images.py --out DIR --tag latest \
        --busybox linux/amd64=/bin/busybox --busybox linux/arm64=/path/busybox ...

Each platform becomes one image with a single gzip layer holding a small
rootfs (busybox plus applet symlinks, /etc/passwd, /etc/group, /tmp, /root).
The layout's index.json holds one entry, tagged TAG, pointing at an image
index that lists the per-platform manifests. On success the digest of that
image index is printed on stdout.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
EPOCH = "1970-01-01T00:00:00Z"

# Applets linked into /bin. Every one of them exists in Debian's busybox-static.
APPLETS = sorted(
    {
        "[", "ash", "awk", "basename", "cat", "chmod", "chown", "cp", "cut",
        "date", "dd", "df", "diff", "dirname", "du", "echo", "env", "expr",
        "false", "find", "grep", "gunzip", "gzip", "head", "hostname", "id",
        "kill", "ln", "ls", "md5sum", "mkdir", "mktemp", "mv", "printf", "ps",
        "pwd", "readlink", "realpath", "rm", "rmdir", "sed", "seq", "sh",
        "sha1sum", "sha256sum", "sha512sum", "sleep", "sort", "stat", "tail",
        "tar", "tee", "test", "touch", "tr", "true", "uname", "uniq", "wc",
        "which", "whoami", "xargs", "zcat",
    }
)

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "app:x:1000:1000:app:/home/app:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n"

# (path, mode, uid, gid); all other entries belong to root.
DIRS = [
    ("bin", 0o755, 0, 0),
    ("dev", 0o755, 0, 0),
    ("etc", 0o755, 0, 0),
    ("home", 0o755, 0, 0),
    ("home/app", 0o755, 1000, 1000),
    ("proc", 0o555, 0, 0),
    ("root", 0o700, 0, 0),
    ("sbin", 0o755, 0, 0),
    ("sys", 0o555, 0, 0),
    ("tmp", 0o1777, 0, 0),
    ("usr", 0o755, 0, 0),
    ("usr/bin", 0o755, 0, 0),
    ("usr/local", 0o755, 0, 0),
    ("usr/local/bin", 0o755, 0, 0),
    ("usr/local/sbin", 0o755, 0, 0),
    ("usr/sbin", 0o755, 0, 0),
    ("var", 0o755, 0, 0),
    ("var/tmp", 0o1777, 0, 0),
]


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def parse_platform(text):
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise SystemExit(f"bad platform {text!r}: want os/arch[/variant]")
    plat = {"os": parts[0], "architecture": parts[1]}
    if len(parts) == 3:
        plat["variant"] = parts[2]
    return plat


def rootfs_layer(busybox_bytes):
    """Return (uncompressed tar bytes, gzip bytes) of the rootfs layer."""
    entries = []  # (path, TarInfo, data or None)

    def add(path, kind, mode, uid=0, gid=0, data=None, link=None):
        info = tarfile.TarInfo(path)
        info.type = kind
        info.mode = mode
        info.uid, info.gid = uid, gid
        info.uname = info.gname = ""
        info.mtime = 0
        if data is not None:
            info.size = len(data)
        if link is not None:
            info.linkname = link
        entries.append((path, info, data))

    for path, mode, uid, gid in DIRS:
        add(path, tarfile.DIRTYPE, mode, uid, gid)
    add("bin/busybox", tarfile.REGTYPE, 0o755, data=busybox_bytes)
    for applet in APPLETS:
        add(f"bin/{applet}", tarfile.SYMTYPE, 0o777, link="busybox")
    # For "#!/usr/bin/env sh" scripts.
    add("usr/bin/env", tarfile.SYMTYPE, 0o777, link="../../bin/busybox")
    add("etc/passwd", tarfile.REGTYPE, 0o644, data=PASSWD.encode())
    add("etc/group", tarfile.REGTYPE, 0o644, data=GROUP.encode())

    # Sorted by path: a parent directory always precedes what it contains.
    entries.sort(key=lambda e: e[0])
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for _, info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    tar_bytes = raw.getvalue()

    gz = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=gz, mode="wb", compresslevel=6, mtime=0) as f:
        f.write(tar_bytes)
    return tar_bytes, gz.getvalue()


class Layout:
    def __init__(self, root):
        self.root = root
        os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)

    def put(self, data, media_type):
        digest = sha256(data)
        path = os.path.join(self.root, "blobs", "sha256", digest.split(":", 1)[1])
        with open(path, "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}


def build(out, tag, busyboxes, note):
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".busybox-oci.", dir=parent)
    try:
        layout = Layout(tmp)
        manifests = []
        for platform_text, binary in busyboxes:
            plat = parse_platform(platform_text)
            with open(binary, "rb") as f:
                busybox_bytes = f.read()
            tar_bytes, gz_bytes = rootfs_layer(busybox_bytes)
            layer = layout.put(gz_bytes, MT_LAYER)
            config = dict(plat)
            config.update(
                {
                    "created": EPOCH,
                    "config": {"Env": [PATH_ENV], "Cmd": ["sh"]},
                    "rootfs": {"type": "layers", "diff_ids": [sha256(tar_bytes)]},
                    "history": [{"created": EPOCH, "created_by": note}],
                }
            )
            config_desc = layout.put(canonical_json(config), MT_CONFIG)
            manifest = {
                "schemaVersion": 2,
                "mediaType": MT_MANIFEST,
                "config": config_desc,
                "layers": [layer],
            }
            desc = layout.put(canonical_json(manifest), MT_MANIFEST)
            desc["platform"] = plat
            manifests.append(desc)

        index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": manifests}
        index_desc = layout.put(canonical_json(index), MT_INDEX)
        index_desc["annotations"] = {"org.opencontainers.image.ref.name": tag}
        top = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [index_desc]}
        with open(os.path.join(tmp, "index.json"), "wb") as f:
            f.write(canonical_json(top))
        with open(os.path.join(tmp, "oci-layout"), "wb") as f:
            f.write(canonical_json({"imageLayoutVersion": "1.0.0"}))

        if os.path.exists(out):
            shutil.rmtree(out)
        os.rename(tmp, out)
        return index_desc["digest"]
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="OCI layout directory to (re)write")
    ap.add_argument("--tag", default="latest")
    ap.add_argument(
        "--busybox",
        action="append",
        required=True,
        metavar="PLATFORM=PATH",
        help="a static busybox binary for PLATFORM (os/arch[/variant]); repeatable",
    )
    ap.add_argument("--note", default="kiln test-env busybox rootfs")
    args = ap.parse_args(argv)

    busyboxes = []
    for item in args.busybox:
        platform_text, sep, path = item.partition("=")
        if not sep or not path:
            ap.error(f"--busybox wants PLATFORM=PATH, got {item!r}")
        if not os.path.isfile(path):
            ap.error(f"busybox binary for {platform_text} not found: {path}")
        busyboxes.append((platform_text, path))
    print(build(args.out, args.tag, busyboxes, args.note))


if __name__ == "__main__":
    main(sys.argv[1:])
