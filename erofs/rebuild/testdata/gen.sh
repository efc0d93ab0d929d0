#!/bin/sh
# Makes the golden images of rebuild_test.go (run as root, for mknod and
# trusted.* xattrs): two layer images by mkfs.erofs 1.9.3 without inline
# tails, and their merged metadata by its rebuild mode with whiteouts
# applied (--ovlfs-strip=1). MKFS names mkfs.erofs.
set -eu
MKFS=${MKFS:-/opt/erofs-1.9.3/bin/mkfs.erofs}
out=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

mkdir -p l1/etc l1/opq/sub l1/gone/deep l1/data
printf 'base\n' > l1/etc/hostname
head -c 9000 /dev/zero | tr '\0' 'p' > l1/etc/passwd
printf 'a' > l1/opq/a
printf 'b' > l1/opq/sub/b
printf 'deep' > l1/gone/deep/f
head -c 5000 /dev/zero | tr '\0' 'x' > l1/data/big
ln l1/data/big l1/data/big.link
ln -s big l1/data/sym
mknod l1/data/null c 1 3
setfattr -n user.tag -v lower l1/data
setfattr -n user.f -v 1 l1/data/big

mkdir -p l2/etc l2/opq l2/data
printf 'top\n' > l2/etc/hostname
mknod l2/gone c 0 0
setfattr -n trusted.overlay.opaque -v y l2/opq
printf 'new' > l2/opq/new
printf 'replaced' > l2/data/big.link
setfattr -n user.tag -v upper l2/data

for d in l1 l2; do
	find $d -exec touch -h -d @1650000000 {} +
done
chmod 0750 l2/data
"$MKFS" -T1650000000 -U 00000000-0000-0000-0000-000000000001 -E noinline_data "$out/layer1.erofs" l1 >/dev/null 2>&1
"$MKFS" -T1650000000 -U 00000000-0000-0000-0000-000000000002 -E noinline_data "$out/layer2.erofs" l2 >/dev/null 2>&1
"$MKFS" -T1650000000 -U 00000000-0000-0000-0000-0000000000ff --ovlfs-strip=1 "$out/merged.erofs" "$out/layer1.erofs" "$out/layer2.erofs" >/dev/null 2>&1

# Tar-index layers (mkfs.erofs --tar=i: 512-byte blocks, the files' data
# in the tar, device 1, which follows the index in the unified address
# space) and their merged metadata.
mkdir -p a/etc b/etc
printf 'hello\n' > a/etc/x
head -c 7000 /dev/zero | tr '\0' 'q' > a/etc/big
printf 'upper\n' > b/etc/x
mknod b/etc/big c 0 0
printf 'new file\n' > b/etc/new
find a b -exec touch -h -d @1650000000 {} +
for d in a b; do
	(cd $d && tar --format=ustar --sort=name --numeric-owner --owner=0 --group=0 -cf "$out/$d.tar" .)
done
"$MKFS" --tar=i -T1650000000 -U 00000000-0000-0000-0000-0000000000a1 "$out/a.erofs" "$out/a.tar" >/dev/null 2>&1
"$MKFS" --tar=i -T1650000000 -U 00000000-0000-0000-0000-0000000000b1 "$out/b.erofs" "$out/b.tar" >/dev/null 2>&1
"$MKFS" -T1650000000 -U 00000000-0000-0000-0000-0000000000ff --ovlfs-strip=1 "$out/merged-tarindex.erofs" "$out/a.erofs" "$out/b.erofs" >/dev/null 2>&1
