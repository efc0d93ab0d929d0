#!/usr/bin/env python3
"""Makes the golden mkfs.erofs --tar=i images of convert/tarindex_golden_test.go.

Usage: python3 mkgolden.py PATH-TO/mkfs.erofs   (erofs-utils 1.9.3)

Writes layer.tar.gz (a deterministic PAX tar) and index.erofs.gz
(mkfs.erofs --tar=i of it) next to this script. Run it once, by hand; the
tests never run mkfs.erofs.
"""
import gzip
import io
import os
import subprocess
import sys
import tarfile
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def content(seed, n):
    """Deterministic bytes: a linear congruential generator."""
    x = seed
    out = bytearray(n)
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = (x >> 16) & 0xFF
    return bytes(out)


def build_tar():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        def add(name, typ, mode=0o644, data=b"", link="", uid=0, gid=0, mtime=1700000000, pax=None):
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = typ, mode, uid, gid, mtime
            ti.linkname = link
            if pax:
                ti.pax_headers = pax
            if typ == tarfile.REGTYPE:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            else:
                tf.addfile(ti)

        add(".", tarfile.DIRTYPE, 0o755)
        add("dir", tarfile.DIRTYPE, 0o755)
        for i, n in enumerate([0, 1, 511, 512, 513, 4096, 5000, 70000]):
            data = content(i + 1, n) if n < 65536 else (b"golden line\n" * (n // 10))[:n]
            add("dir/f%d" % n, tarfile.REGTYPE, data=data, uid=1000 + i, gid=100)
        add("dir/link", tarfile.LNKTYPE, link="dir/f5000")
        add("dir/sym", tarfile.SYMTYPE, 0o777, link="f512")
        add("dir/sub", tarfile.DIRTYPE, 0o700, mtime=1600000000)
        add("dir/sub/x", tarfile.REGTYPE, data=b"xattr file\n", pax={"SCHILY.xattr.user.golden": "yes"})
        add("dir/sub/big-ids", tarfile.REGTYPE, 0o600, data=content(99, 3000), uid=70000, gid=70001)
        add("fifo", tarfile.FIFOTYPE, 0o600)
        add("chr", tarfile.CHRTYPE, 0o600)
        add("top", tarfile.REGTYPE, 0o755, data=content(7, 1234))
    return buf.getvalue()


def main():
    mkfs = sys.argv[1]
    data = build_tar()
    with tempfile.TemporaryDirectory() as tmp:
        tarpath = os.path.join(tmp, "layer.tar")
        img = os.path.join(tmp, "index.erofs")
        with open(tarpath, "wb") as f:
            f.write(data)
        subprocess.run([mkfs, "--quiet", "--tar=i", "-T1700000000", "--mkfs-time",
                        "-U0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", img, tarpath], check=True)
        with open(img, "rb") as f:
            image = f.read()
    for name, b in (("layer.tar.gz", data), ("index.erofs.gz", image)):
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(gzip.compress(b, mtime=0))


if __name__ == "__main__":
    main()
