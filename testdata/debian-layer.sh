#!/usr/bin/env bash
# debian-layer.sh [DIR] makes the Debian layer the end-to-end tests and
# benchmarks use: a Debian bookworm "minbase" root file system from
# debootstrap, packed as DIR/debian-minbase.tar (PAX, xattrs, numeric
# owners, sorted names) and DIR/debian-minbase.tar.gz (gzip -6 without a
# name or time, as registries' layers are). DIR defaults to rafs-bench
# in the user's cache directory (${XDG_CACHE_HOME:-~/.cache}), where the
# tests and benchmarks look for it. Needs root and the network to reach
# the Debian mirror; installs debootstrap when it is missing. Does nothing
# when the layer is already there.
set -euo pipefail
dir=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/rafs-bench}
mkdir -p "$dir"
cd "$dir"
[ -s debian-minbase.tar.gz ] && exit 0
if ! command -v debootstrap >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
if [ ! -d rootfs ]; then
  rm -rf rootfs.tmp
  debootstrap --variant=minbase bookworm rootfs.tmp http://deb.debian.org/debian >debootstrap.log 2>&1
  mv rootfs.tmp rootfs
fi
tar --create --format=pax --xattrs --xattrs-include='*' --numeric-owner --sort=name \
  -C rootfs -f debian-minbase.tar.tmp .
gzip -6 -n -c debian-minbase.tar.tmp >debian-minbase.tar.gz.tmp
mv debian-minbase.tar.tmp debian-minbase.tar
mv debian-minbase.tar.gz.tmp debian-minbase.tar.gz
