#!/bin/sh
# test_install.sh BUILD_DIR CONSUMER_SRC_DIR CC
# Installs the build into a temporary prefix, then builds and runs a program
# against it three ways: CMake find_package (shared and static) and pkg-config.
set -eu
build=$1 src=$2 cc=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(ls -d "$prefix"/lib* | head -n 1)
test -e "$libdir/libringmpsc.so.1"
test -e "$libdir/libringmpsc.a"
test -e "$prefix/include/ringmpsc.h"
test -e "$prefix/include/ringmpsc/ring.h"

echo "== find_package(ringmpsc CONFIG)"
cmake -S "$src" -B "$tmp/cm" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" >/dev/null
cmake --build "$tmp/cm" >/dev/null
"$tmp/cm/consumer_shared"
"$tmp/cm/consumer_static"
# The shared build really uses the shared library, the static one does not.
ldd "$tmp/cm/consumer_shared" | grep -q 'libringmpsc\.so\.1'
! ldd "$tmp/cm/consumer_static" | grep -q 'libringmpsc'

echo "== pkg-config ringmpsc"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
flags=$(pkg-config --cflags --libs ringmpsc)
# shellcheck disable=SC2086
"$cc" -Wall -Wextra -Werror "$src/consumer.c" $flags -Wl,-rpath,"$libdir" -o "$tmp/pc"
"$tmp/pc"
ldd "$tmp/pc" | grep -q "$libdir/libringmpsc\.so\.1"
echo "install test passed"
