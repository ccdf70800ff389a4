#!/usr/bin/env bash
# Builds libraft (cowsql raft) from Debian's source tarball with the given patches applied, as a
# static library with its headers (raft.h, raft/uv.h, raft/fixture.h), installed into PREFIX.
# Usage: build.sh TARBALL PREFIX [PATCH...]
# cmake/Libraft.cmake runs it once per (tarball, patches, this script, compiler) and links the
# result; it can be run by hand the same way. Environment: STRONGROOM_JOBS (make -j, default 2).
#
# The flags are Debian's defaults for a package build (dpkg-buildflags on bookworm) plus
# --with-pic; configure adds libraft's own hardening and warning flags and -DNDEBUG, as for the
# Debian package. The libuv raft_io and lz4 compression are required (--enable-uv --with-lz4:
# configure fails if libuv1-dev or liblz4-dev is missing), the fixture is built (the tests use
# it), the example and benchmark programs are not.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 TARBALL PREFIX [PATCH...]" >&2
  exit 2
fi
tarball=$(realpath "$1")
prefix=$2
shift 2
patches=()
for p in "$@"; do patches+=("$(realpath "$p")"); done
jobs=${STRONGROOM_JOBS:-2}
case "$prefix" in /*) ;; *) echo "build.sh: PREFIX must be an absolute path" >&2; exit 2 ;; esac
if [ -e "$prefix" ]; then
  echo "build.sh: $prefix exists already" >&2
  exit 1
fi

# A fixed work directory next to PREFIX (the caller serialises builds of one PREFIX), so the
# compiler sees the same paths every time and ccache can hit.
work=$prefix.work
rm -rf "$work"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src"
tar -xzf "$tarball" -C "$work/src" --strip-components=1
for p in ${patches[@]+"${patches[@]}"}; do
  echo "==> patch $(basename "$p")"
  patch -d "$work/src" -p1 --forward --batch --no-backup-if-mismatch -i "$p"
done

cc=gcc
if command -v ccache >/dev/null 2>&1; then cc="ccache gcc"; fi
cd "$work/src"
echo "==> autoreconf"
autoreconf -fi
echo "==> configure"
./configure --prefix="$prefix" --disable-shared --enable-static --with-pic \
  --enable-uv --with-lz4 --enable-fixture --disable-example --disable-benchmark \
  CC="$cc" \
  CFLAGS="-g -O2 -ffile-prefix-map=$work/src=. -fstack-protector-strong -Wformat -Werror=format-security" \
  CPPFLAGS="-Wdate-time -D_FORTIFY_SOURCE=2"
echo "==> make"
make -j"$jobs"
echo "==> install"
make install DESTDIR="$work/stage"
rm -f "$work/stage$prefix/lib/libraft.la"
for f in include/raft.h include/raft/uv.h include/raft/fixture.h lib/libraft.a; do
  [ -f "$work/stage$prefix/$f" ] || { echo "build.sh: $f was not installed" >&2; exit 1; }
done
# One rename: PREFIX either does not exist or holds the whole installation.
mv "$work/stage$prefix" "$prefix"
echo "==> libraft installed in $prefix"
