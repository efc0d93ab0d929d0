#!/usr/bin/env python3
"""Builds the source trees of the golden EROFS images and runs mkfs.erofs.

Run as root on Linux (mknod, trusted.* xattrs, chown) with the acl tools
installed (setfacl):

    python3 mkgolden.py [PATH-TO-mkfs.erofs-1.9.3 [IMAGE-NAME-PREFIX...]]

It writes *.erofs.gz (and blob.img.gz) next to itself; given name
prefixes, only the compressed images whose names start with one of them. The trees are built
under erofs-golden in the system's temporary directory. The expectations in ../reader_test.go are written
against exactly what this script creates; keep the two in sync.
"""
import gzip, os, shutil, socket, subprocess, sys, tempfile

T = 1700000000            # -T build time (epoch); most mtimes equal it
UUID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(tempfile.gettempdir(), "erofs-golden")


def content(seed, n):
    """Deterministic file contents; the Go tests have the same function."""
    return bytes(((i * 7) + (i >> 9) * 13 + seed) % 251 for i in range(n))


def lcg(x):
    return (x * 1103515245 + 12345) & 0xFFFFFFFF


def rnd(seed, n):
    """Deterministic incompressible bytes; the Go tests have the same function."""
    x, out = seed, bytearray(n)
    for i in range(n):
        x = lcg(x)
        out[i] = x >> 24
    return bytes(out)


WORDS = ["alpha", "beta", "gamma", "delta", "mount", "inode", "block", "extent"]


def text(seed, n):
    """Deterministic log-like text; the Go tests have the same function."""
    x, out, total, line = seed, [], 0, 0
    while total < n:
        x = lcg(x)
        s = "line %d: the %s %s is ok\n" % (line, WORDS[(x >> 16) % 8], WORDS[(x >> 20) % 8])
        line += 1
        out.append(s)
        total += len(s)
    return "".join(out).encode()[:n]


def wfile(path, data, mode=0o644, uid=0, gid=0):
    with open(path, "wb") as f:
        f.write(data)
    os.chown(path, uid, gid)
    os.chmod(path, mode)


def setx(path, name, value):
    os.setxattr(path, name, value, follow_symlinks=False)


def main_tree(root):
    """The tree of plain.erofs, b512.erofs and chunk8k.erofs."""
    os.makedirs(root)
    os.chmod(root, 0o755)
    wfile(f"{root}/empty", b"")
    wfile(f"{root}/one", content(1, 1))
    wfile(f"{root}/f4095", content(2, 4095))
    wfile(f"{root}/f4096", content(3, 4096))
    wfile(f"{root}/f4097", content(4, 4097), mode=0o600, uid=1000, gid=1000)
    wfile(f"{root}/f10000", content(5, 10000))
    wfile(f"{root}/owned", content(6, 3), uid=70000, gid=80000)
    wfile(f"{root}/u1001", content(8, 5), uid=1001, gid=1002)
    wfile(f"{root}/suid", b"", mode=0o4755)
    # 20000 bytes whose second 8 KiB chunk is all zeros (a hole with 8 KiB chunks)
    z = bytearray(content(9, 20000))
    z[8192:16384] = bytes(8192)
    wfile(f"{root}/zeros", bytes(z))
    # the same 8 KiB twice (deduplicated chunks with 8 KiB chunks)
    wfile(f"{root}/dup", content(10, 8192) * 2)
    os.mkdir(f"{root}/sgid"); os.chmod(f"{root}/sgid", 0o2775)
    os.mkdir(f"{root}/sticky"); os.chmod(f"{root}/sticky", 0o1777)

    os.mkdir(f"{root}/dir1")
    wfile(f"{root}/dir1/inner", content(7, 100))
    os.mkdir(f"{root}/dir1/sub")
    os.symlink("../../one", f"{root}/dir1/sub/up")
    # hard links: f10000, hard10000, dir1/hard10000b share an inode (nlink 3)
    os.link(f"{root}/f10000", f"{root}/hard10000")
    os.link(f"{root}/f10000", f"{root}/dir1/hard10000b")

    os.symlink("f10000", f"{root}/sym_short")
    long_target = "./dir1/" + "../dir1/" * 36 + "inner"
    assert len(long_target) == 300
    os.symlink(long_target, f"{root}/sym_long")
    os.symlink("dir1", f"{root}/sym_dir")
    os.symlink("/dir1/inner", f"{root}/sym_abs")
    os.symlink("nonexistent", f"{root}/sym_dangling")
    os.symlink("loop2", f"{root}/loop1")
    os.symlink("loop1", f"{root}/loop2")

    os.mkfifo(f"{root}/fifo", 0o644); os.chmod(f"{root}/fifo", 0o644)
    os.mknod(f"{root}/chr", 0o666 | 0o020000, os.makedev(1, 3)); os.chmod(f"{root}/chr", 0o666)
    os.mknod(f"{root}/blk", 0o660 | 0o060000, os.makedev(8, 1)); os.chmod(f"{root}/blk", 0o660)
    os.mknod(f"{root}/chrbig", 0o600 | 0o020000, os.makedev(300, 70000)); os.chmod(f"{root}/chrbig", 0o600)
    os.mknod(f"{root}/whiteout", 0o020000, os.makedev(0, 0)); os.chmod(f"{root}/whiteout", 0)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(f"{root}/sock"); s.close()
    os.chmod(f"{root}/sock", 0o755)

    # a directory spanning several blocks: 600 entries with varied name
    # lengths; every 100th one is a subdirectory
    os.mkdir(f"{root}/bigdir")
    for i in range(600):
        name = f"{root}/bigdir/entry-{i:03d}-" + "x" * (i % 20)
        if i % 100 == 0:
            os.mkdir(name)
        else:
            wfile(name, b"")

    # xattrs: user.shared, trusted.shared and security.shared on 4 files
    # (> 2, so mkfs shares them); unique ones inline
    for k in range(1, 5):
        p = f"{root}/xa{k}"
        wfile(p, content(10 + k, k))
        setx(p, "user.shared", b"common value")
        setx(p, "trusted.shared", b"tv")
        setx(p, "security.shared", b"sv")
        setx(p, "user.unique", f"xa{k}".encode())
    setx(f"{root}/xa1", "user.big", content(20, 1000))
    setx(f"{root}/xa2", "user.empty", b"")
    os.mkdir(f"{root}/opaque")
    setx(f"{root}/opaque", "trusted.overlay.opaque", b"y")
    # POSIX ACLs
    wfile(f"{root}/acl", b"acl\n")
    subprocess.check_call(["setfacl", "-m", "u:1000:rwx", f"{root}/acl"])
    os.mkdir(f"{root}/acldir")
    subprocess.check_call(["setfacl", "-d", "-m", "u:1000:r-x", f"{root}/acldir"])

    # times: everything at T, then a few exceptions (extended inodes)
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            os.utime(os.path.join(dirpath, n), ns=(T * 10**9, T * 10**9), follow_symlinks=False)
    os.utime(f"{root}/f4097", ns=(0, 1234567890 * 10**9 + 123456789))
    os.utime(f"{root}/sym_short", ns=(0, 1600000000 * 10**9 + 500000000), follow_symlinks=False)
    os.utime(f"{root}/dir1/sub", ns=(0, (T + 3600) * 10**9))
    os.utime(f"{root}/dir1", ns=(0, T * 10**9))
    os.utime(root, ns=(0, T * 10**9))


def blob_tree(root):
    """The tree of blobdev.erofs (+ blob.img)."""
    os.makedirs(root)
    os.chmod(root, 0o755)
    wfile(f"{root}/empty", b"")
    wfile(f"{root}/one", content(1, 1))
    wfile(f"{root}/f4096", content(3, 4096))
    wfile(f"{root}/f5000", content(4, 5000))
    setx(f"{root}/f5000", "user.x", b"1")  # chunk indexes after a 20-byte xattr body
    z = bytearray(content(5, 12288))
    z[4096:8192] = bytes(4096)
    wfile(f"{root}/zeros", bytes(z))
    wfile(f"{root}/dup", content(6, 4096) * 3)
    os.mkdir(f"{root}/d")
    wfile(f"{root}/d/f", content(7, 9000))
    os.symlink("../f5000", f"{root}/d/link")
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            os.utime(os.path.join(dirpath, n), ns=(T * 10**9, T * 10**9), follow_symlinks=False)
    os.utime(root, ns=(0, T * 10**9))


def prefix_tree(root):
    """The tree of prefix.erofs (long xattr name prefixes)."""
    os.makedirs(root)
    os.chmod(root, 0o755)
    for k in range(1, 4):
        p = f"{root}/p{k}"
        wfile(p, b"")
        setx(p, "user.foo.shared", b"shared-by-3")
        setx(p, f"user.foo.n{k}", f"v{k}".encode())
        setx(p, "user.other", b"o")
        setx(p, "trusted.overlay.opaque", b"y")
    wfile(f"{root}/q", b"")
    setx(f"{root}/q", "user.foo.", b"empty suffix")
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            os.utime(os.path.join(dirpath, n), ns=(T * 10**9, T * 10**9), follow_symlinks=False)
    os.utime(root, ns=(0, T * 10**9))


def small_tree(root):
    """A small tree for fuzz seeds: small512.erofs and smallchunk.erofs."""
    os.makedirs(root)
    os.chmod(root, 0o755)
    for i in range(36):
        wfile(f"{root}/n{i:02d}", content(i, i * 3))
    wfile(f"{root}/big", content(50, 1100))
    os.link(f"{root}/big", f"{root}/big2")
    os.symlink("n01", f"{root}/sym")
    os.symlink("d/" + "x" * 600, f"{root}/symlong")
    os.mkfifo(f"{root}/fifo")
    os.mknod(f"{root}/chr", 0o644 | 0o020000, os.makedev(4, 5))
    os.makedirs(f"{root}/d/e")
    wfile(f"{root}/d/e/f", content(51, 700))
    os.symlink("/n01", f"{root}/d/e/abs")
    with open(f"{root}/d/".encode() + b"not-utf8-\xff\xfe", "wb") as f:  # names are bytes
        f.write(b"raw name\n")
    for k in range(3):
        p = f"{root}/n{k:02d}"
        setx(p, "user.s", b"shared")
        setx(p, "trusted.t", b"x" * k)
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            os.utime(os.path.join(dirpath, n), ns=(T * 10**9, T * 10**9), follow_symlinks=False)
    os.utime(f"{root}/n05", ns=(0, 5 * 10**9 + 5))
    os.utime(root, ns=(0, T * 10**9))


def ztime(root):
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            os.utime(os.path.join(dirpath, n), ns=(T * 10**9, T * 10**9), follow_symlinks=False)
    os.utime(root, ns=(0, T * 10**9))


def zsmall_tree(root):
    """The tree of the compressed z-*.erofs images: edge-case sizes."""
    os.makedirs(root)
    os.chmod(root, 0o755)
    wfile(f"{root}/empty", b"")
    wfile(f"{root}/one", content(1, 1))
    for n in (4095, 4096, 4097, 65535, 65536, 65537):
        wfile(f"{root}/f{n}", content(n % 251, n))
    wfile(f"{root}/r4096", rnd(1, 4096))
    wfile(f"{root}/r4097", rnd(2, 4097))
    wfile(f"{root}/zeros", bytes(100000))
    wfile(f"{root}/text", text(1, 16000))
    wfile(f"{root}/mixed", text(2, 6000) + rnd(3, 3000) + bytes(20000) + content(4, 10000) + rnd(5, 1000))
    os.link(f"{root}/text", f"{root}/hard")
    os.symlink("text", f"{root}/sym")
    os.symlink("d/" + "x" * 298, f"{root}/symlong")
    os.mkdir(f"{root}/d")
    wfile(f"{root}/d/small", content(6, 100))
    a = text(7, 16000)
    wfile(f"{root}/d/dupA", a)
    wfile(f"{root}/d/dupB", a[:8000] + content(8, 100) + a[8000:])
    ztime(root)


def zbig_tree(root):
    """The tree of the zbig-*.erofs images: many pclusters."""
    os.makedirs(root)
    os.chmod(root, 0o755)
    wfile(f"{root}/text", text(1, 128 * 1024))
    segs = []
    for k in range(48):
        m = k % 4
        if m == 0:
            segs.append(text(100 + k, 8192) + bytes(65536 - 8192))
        elif m == 1:
            segs.append(bytes(65536))
        elif m == 2:
            segs.append(content(k, 65536))
        else:
            segs.append(rnd(k, 1024) + content(k, 65536 - 1024))
    wfile(f"{root}/big", b"".join(segs))
    os.link(f"{root}/big", f"{root}/big2")
    wfile(f"{root}/tail", rnd(9, 100) + text(10, 5000))
    ztime(root)


def zseed_tree(root):
    """A tiny tree for the compressed fuzz seeds (zseed-*.erofs)."""
    os.makedirs(root)
    os.chmod(root, 0o755)
    wfile(f"{root}/text", text(11, 3000))
    wfile(f"{root}/pat", content(12, 1500))
    wfile(f"{root}/rnd", rnd(13, 600) + text(14, 700))
    wfile(f"{root}/zeros", bytes(5000))
    wfile(f"{root}/small", b"tiny\n")
    os.symlink("text", f"{root}/sym")
    ztime(root)


def zshare_tree(root):
    """The tree of the zs-*.erofs images: data that fragments, fragment
    dedupe and compressed data dedupe share."""
    os.makedirs(root)
    os.chmod(root, 0o755)
    # identical small files: whole-file fragments stored once
    os.mkdir(f"{root}/same")
    for k in range(5):
        wfile(f"{root}/same/s{k}", text(20, 1500))
    # the same 3 KiB tail after distinct heads: "a" is small (a whole-file
    # fragment ending with the tail), t0/t1 have one incompressible block
    # before it (a PLAIN pcluster and a tail fragment), u has a head that
    # does not end at a pcluster boundary
    tail = text(21, 3072)
    os.mkdir(f"{root}/tail")
    wfile(f"{root}/tail/a", text(22, 1000) + tail)
    for k in range(2):
        wfile(f"{root}/tail/t{k}", rnd(30 + k, 4096) + tail)
    wfile(f"{root}/tail/u", rnd(33, 1000) + text(34, 3000) + tail)
    # a file, and the same with 100 bytes inserted in the middle:
    # shared pclusters and partially referenced ones (-Ededupe)
    a = b"".join(text(40 + k, 2560) + rnd(60 + k, 256) for k in range(8))
    wfile(f"{root}/dupA", a)
    wfile(f"{root}/dupB", a[:len(a) // 2] + content(9, 100) + a[len(a) // 2:])
    a = text(80, 16000)
    wfile(f"{root}/textA", a)
    wfile(f"{root}/textB", a[:8000] + content(10, 100) + a[8000:])
    # a 6 KiB random block 4 times: shared uncompressed pclusters
    wfile(f"{root}/rep", rnd(70, 6144) * 4)
    wfile(f"{root}/small", b"tiny\n")
    wfile(f"{root}/empty", b"")
    os.symlink("dupA", f"{root}/sym")
    ztime(root)


def zseedshare_tree(root):
    """A tiny tree for the fuzz seeds with fragments and dedupe
    (zseed-*-share.erofs): identical files, a shared tail, a file with 100
    bytes inserted, a repeated random block."""
    os.makedirs(root)
    os.chmod(root, 0o755)
    for k in range(3):
        wfile(f"{root}/s{k}", text(90, 300))
    tail = text(91, 700)
    wfile(f"{root}/ta", text(92, 200) + tail)
    wfile(f"{root}/tb", rnd(93, 512) + tail)
    a = text(94, 1200) + rnd(95, 100) + text(96, 1200)
    wfile(f"{root}/dupA", a)
    wfile(f"{root}/dupB", a[:1250] + content(11, 100) + a[1250:])
    wfile(f"{root}/rep", rnd(97, 700) * 3)
    ztime(root)


# Compressed images: (image, tree, options).
ZIMAGES = []
for alg in ("lz4", "lz4hc", "lzma", "deflate", "zstd"):
    for pc, pcopt in (("", []), ("-64k", ["-C65536"])):
        for zt, ztopt in (("", []), ("-zt", ["-Eztailpacking"])):
            ZIMAGES.append((f"z-{alg}{pc}{zt}.erofs", "zsmall", [f"-z{alg}", *pcopt, *ztopt]))
ZIMAGES += [
    ("z-lz4-legacy.erofs", "zsmall", ["-zlz4", "-Elegacy-compress"]),
    ("z-lzma-64k-legacy.erofs", "zsmall", ["-zlzma", "-C65536", "-Elegacy-compress", "-Eztailpacking"]),
    ("z-lz4hc-frag.erofs", "zsmall", ["-zlz4hc", "-Efragments"]),
    ("z-zstd-allfrag.erofs", "zsmall", ["-zzstd", "-Eall-fragments"]),
    ("z-deflate-frag-zt.erofs", "zsmall", ["-zdeflate", "-Efragments", "-Eztailpacking"]),
    ("z-lz4-dedupe.erofs", "zsmall", ["-zlz4", "-Ededupe"]),
    ("z-zstd-dedupe.erofs", "zsmall", ["-zzstd", "-C16384", "-Ededupe"]),
    ("z-lz4-b512.erofs", "zsmall", ["-zlz4", "-b512"]),
    ("z-lzma-b1024.erofs", "zsmall", ["-zlzma", "-b1024", "-C8192", "-Eztailpacking"]),
    ("z-zstd-b512-zt.erofs", "zsmall", ["-zzstd", "-b512", "-C4096", "-Eztailpacking"]),
    ("zseed-lz4.erofs", "zseed", ["-zlz4", "-b512", "-Eztailpacking"]),
    ("zseed-lzma.erofs", "zseed", ["-zlzma", "-b512", "-C1024", "-Efragments"]),
    ("zseed-zstd.erofs", "zseed", ["-zzstd", "-b512", "-C2048", "-Elegacy-compress"]),
    ("zseed-deflate.erofs", "zseed", ["-zdeflate", "-b1024", "-C4096", "-Ededupe"]),
    ("zbig-lz4.erofs", "zbig", ["-zlz4"]),
    ("zbig-lz4hc.erofs", "zbig", ["-zlz4hc", "-C65536", "-Eztailpacking"]),
    ("zbig-lzma.erofs", "zbig", ["-zlzma", "-C131072"]),
    ("zbig-deflate.erofs", "zbig", ["-zdeflate", "-Eztailpacking"]),
    ("zbig-zstd.erofs", "zbig", ["-zzstd", "-C65536"]),
]
# Fragments, fragment dedupe and compressed data dedupe (zshare).
for alg in ("lz4", "lzma", "deflate", "zstd"):
    for sfx, opts in (("frag", ["-Efragments"]),
                      ("frag-zt", ["-Efragments,ztailpacking"]),
                      ("frag-nofd", ["-Efragments,^fragdedupe"]),
                      ("allfrag", ["-Eall-fragments"]),
                      ("allfrag-fdi", ["-Eall-fragments,fragdedupe=inode"]),
                      ("dedupe", ["-Ededupe"]),
                      ("dedupe-frag", ["-Ededupe,fragments"]),
                      ("dedupe-zt", ["-Ededupe,ztailpacking"]),
                      ("64k-dedupe", ["-C65536", "-Ededupe"]),
                      ("1m-dedupe", ["-C1048576", "-Ededupe"]),
                      ("1m-allfrag-dedupe-zt", ["-C1048576", "-Eztailpacking,all-fragments,dedupe"])):
        ZIMAGES.append((f"zs-{alg}-{sfx}.erofs", "zshare", [f"-z{alg}", *opts]))
for alg in ("lz4", "lzma", "deflate", "zstd"):
    ZIMAGES.append((f"zseed-{alg}-share.erofs", "zseedshare", [f"-z{alg}", "-b512", "-Ededupe,fragments"]))
ZIMAGES.append(("zseed-lzma-dedupe.erofs", "zseedshare", ["-zlzma", "-b512", "-C1024", "-Ededupe"]))
for sfx, opts in (("frag", ["-Efragments"]), ("allfrag", ["-Eall-fragments"]),
                  ("dedupe", ["-Ededupe"]), ("dedupe-frag", ["-Ededupe,fragments"])):
    ZIMAGES.append((f"zs-lz4hc-{sfx}.erofs", "zshare", ["-zlz4hc", *opts]))


def kernel_check(image, tree):
    """Mounts image (read-only) and compares every file with tree."""
    mnt = tempfile.mkdtemp(prefix="erofs-golden-")
    subprocess.check_call(["mount", "-t", "erofs", "-o", "ro,loop", image, mnt])
    try:
        for dirpath, dirnames, filenames in os.walk(tree):
            rel = os.path.relpath(dirpath, tree)
            for n in filenames:
                src, got = os.path.join(dirpath, n), os.path.join(mnt, rel, n)
                if os.path.islink(src):
                    assert os.readlink(src) == os.readlink(got), got
                    continue
                with open(src, "rb") as a, open(got, "rb") as b:
                    assert a.read() == b.read(), f"{image}: {rel}/{n} differs when mounted"
    finally:
        subprocess.check_call(["umount", mnt])
        os.rmdir(mnt)


def mkfs(mkfs_bin, out, src, *opts):
    cmd = [mkfs_bin, "--quiet", f"-T{T}", "--mkfs-time", f"-U{UUID}", *opts, out, src]
    print(" ".join(cmd))
    subprocess.check_call(cmd)


def gz(path):
    with open(path, "rb") as f:
        data = f.read()
    dst = os.path.join(HERE, os.path.basename(path) + ".gz")
    with open(dst, "wb") as f:
        f.write(gzip.compress(data, 9, mtime=0))
    print(f"{dst}: {len(data)} -> {os.path.getsize(dst)} bytes")


def main():
    mkfs_bin = sys.argv[1] if len(sys.argv) > 1 else "mkfs.erofs"
    only = sys.argv[2:]  # name prefixes: make only these compressed images
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    os.umask(0o022)
    os.chdir(WORK)
    if not only:
        main_tree(f"{WORK}/tree")
        blob_tree(f"{WORK}/blobtree")
        prefix_tree(f"{WORK}/prefixtree")
        small_tree(f"{WORK}/smalltree")
        mkfs(mkfs_bin, "plain.erofs", "tree", "-Lgolden")
        mkfs(mkfs_bin, "b512.erofs", "tree", "-b512")
        mkfs(mkfs_bin, "chunk8k.erofs", "tree", "--chunksize=8192")
        mkfs(mkfs_bin, "blobdev.erofs", "blobtree", "--chunksize=4096", "--blobdev=blob.img")
        mkfs(mkfs_bin, "prefix.erofs", "prefixtree", "--xattr-prefix=user.foo.", "--xattr-prefix=trusted.overlay.")
        mkfs(mkfs_bin, "small512.erofs", "smalltree", "-b512")
        mkfs(mkfs_bin, "smallchunk.erofs", "smalltree", "-b512", "--chunksize=1024")
        for n in ["plain.erofs", "b512.erofs", "chunk8k.erofs", "blobdev.erofs", "blob.img", "prefix.erofs",
                  "small512.erofs", "smallchunk.erofs"]:
            gz(n)
    zsmall_tree(f"{WORK}/zsmall")
    zbig_tree(f"{WORK}/zbig")
    zseed_tree(f"{WORK}/zseed")
    zshare_tree(f"{WORK}/zshare")
    zseedshare_tree(f"{WORK}/zseedshare")
    for img, tree, opts in ZIMAGES:
        if only and not any(img.startswith(p) for p in only):
            continue
        mkfs(mkfs_bin, img, tree, *opts)
        kernel_check(img, tree)
        gz(img)


if __name__ == "__main__":
    main()
