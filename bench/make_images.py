#!/usr/bin/env python3
"""Deterministic test images for bench/registry.sh, as OCI image layouts (stdlib only).

usage: make_images.py big DIR     # (a) one uncompressed layer (application/vnd.oci.image.layer.v1.tar)
                                  #     holding one 1 GiB file of pseudo-random bytes
       make_images.py small DIR   # (b) one gzip layer holding 20,000 small files (~80 MB)

Each layout is tagged "latest" and is a linux/amd64 image manifest (no index). Content comes
from random.Random with a fixed seed, so the same digests come out on every run; the script
does nothing when DIR already holds a complete image made by this version (idempotent).
Size knobs (for quick tests): BIG_MIB (default 1024), SMALL_FILES (default 20000).
"""
import gzip, hashlib, io, json, os, random, shutil, sys, tarfile

EPOCH = 1704067200  # 2024-01-01T00:00:00Z, every mtime
CREATED = "2024-01-01T00:00:00Z"
VERSION = "registry-bench-1"
MIB = 1 << 20


class BlobWriter:
    """Streams bytes into DIR/blobs/sha256/<digest>, hashing as it goes."""

    def __init__(self, blobdir):
        self.blobdir = blobdir
        self.tmp = os.path.join(blobdir, ".tmp-blob")
        self.f = open(self.tmp, "wb")
        self.h = hashlib.sha256()
        self.size = 0

    def write(self, b):
        self.f.write(b)
        self.h.update(b)
        self.size += len(b)
        return len(b)

    def flush(self):
        pass

    def close(self):
        self.f.close()
        digest = self.h.hexdigest()
        os.replace(self.tmp, os.path.join(self.blobdir, digest))
        return "sha256:" + digest, self.size


def put(blobdir, data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobdir, d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)


def tar_header(name, size, mode=0o644, kind=tarfile.REGTYPE):
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime, ti.type = size, mode, EPOCH, kind
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    return ti.tobuf(tarfile.PAX_FORMAT)


def big_layer(blobdir):
    """Uncompressed tar, written straight to the blob: dir data/, file data/random.bin."""
    mib = int(os.environ.get("BIG_MIB", "1024"))
    w = BlobWriter(blobdir)
    w.write(tar_header("data/", 0, 0o755, tarfile.DIRTYPE))
    w.write(tar_header("data/random.bin", mib * MIB))
    rnd = random.Random(0x6b696c6e)  # "kiln"
    for _ in range(mib):
        w.write(rnd.randbytes(MIB))
    w.write(b"\0" * 1024)  # end-of-archive (1 GiB is already a multiple of 512)
    digest, size = w.close()
    return {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": size}, digest


def small_layer(blobdir):
    """20,000 files of 512 B..8 KiB (half base64 of random bytes, half text), gzip level 6."""
    n = int(os.environ.get("SMALL_FILES", "20000"))
    rnd = random.Random(20000)
    raw_hash = hashlib.sha256()
    w = BlobWriter(blobdir)

    class Tee(io.RawIOBase):  # tar bytes -> diff_id hash and gzip stream
        def __init__(self, gz):
            self.gz = gz

        def write(self, b):
            raw_hash.update(b)
            return self.gz.write(b)

    gz = gzip.GzipFile(fileobj=w, mode="wb", compresslevel=6, mtime=0, filename="")
    with tarfile.open(fileobj=Tee(gz), mode="w|", format=tarfile.PAX_FORMAT) as tf:
        def add(name, data=None, mode=0o644):
            ti = tarfile.TarInfo(name)
            ti.mtime, ti.uname, ti.gname = EPOCH, "root", "root"
            if data is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            else:
                ti.size, ti.mode = len(data), mode
                tf.addfile(ti, io.BytesIO(data))
        add("files")
        for d in range(100):
            add(f"files/d{d:03d}")
        words = [b"let", b"fn", b"value", b"return", b"match", b"struct", b"impl", b"self",
                 b"config", b"layer", b"image", b"digest", b"=", b"{", b"}", b"(", b")", b";"]
        for i in range(n):
            size = rnd.randint(512, 8192)
            if i % 2:
                data = (rnd.randbytes(size * 3 // 4).hex().encode())[:size]
            else:
                data = b" ".join(rnd.choice(words) for _ in range(size // 4))[:size]
            add(f"files/d{i % 100:03d}/f{i:05d}.txt", data)
    gz.close()
    digest, size = w.close()
    return ({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size},
            "sha256:" + raw_hash.hexdigest())


def main():
    kind, out = sys.argv[1], sys.argv[2]
    stamp = os.path.join(out, ".complete")
    want = f"{VERSION} {kind} {os.environ.get('BIG_MIB', '1024')} {os.environ.get('SMALL_FILES', '20000')}"
    if os.path.exists(stamp) and open(stamp).read() == want:
        print(f"{out}: up to date")
        return
    shutil.rmtree(out, ignore_errors=True)
    blobdir = os.path.join(out, "blobs", "sha256")
    os.makedirs(blobdir)
    layer, diff_id = {"big": big_layer, "small": small_layer}[kind](blobdir)
    cfg = {"architecture": "amd64", "os": "linux", "created": CREATED,
           "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
           "rootfs": {"type": "layers", "diff_ids": [diff_id]},
           "history": [{"created": CREATED, "created_by": f"bench/make_images.py {kind}"}]}
    cdig, csize = put(blobdir, json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode())
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdig, "size": csize},
           "layers": [layer]}
    mdig, msize = put(blobdir, json.dumps(man, sort_keys=True, separators=(",", ":")).encode())
    idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
           "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdig,
                          "size": msize, "platform": {"architecture": "amd64", "os": "linux"},
                          "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(idx, f)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(stamp, "w") as f:
        f.write(want)
    print(f"{out}: {kind} layer {layer['size']} B ({layer['mediaType']}), manifest {mdig}")


if __name__ == "__main__":
    main()
