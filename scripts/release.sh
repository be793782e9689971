#!/usr/bin/env bash
# Release binaries: static connet builds for Linux (amd64, arm64) and macOS
# (amd64, arm64), each stamped with the version, plus SHA256SUMS.
#
#   bash scripts/release.sh                 # version from git describe, into dist/
#   VERSION=v1.2.3 OUT=/tmp/rel bash scripts/release.sh
#   TARGETS="linux/amd64" bash scripts/release.sh
#
# The flags are the Dockerfile's: no cgo, no build paths, the version in
# main.version (what `connet version` prints).
set -euo pipefail
cd "$(dirname "$0")/.."

version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
out=${OUT:-dist}
targets=${TARGETS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64}

mkdir -p "$out"
files=()
for target in $targets; do
	goos=${target%/*} goarch=${target#*/}
	name="connet-$version-$goos-$goarch"
	echo "== $name"
	CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go build -trimpath \
		-ldflags "-s -w -X main.version=$version" -o "$out/$name" ./cmd/connet
	files+=("$name")
done
(cd "$out" && sha256sum "${files[@]}" >SHA256SUMS)
echo "== $out/SHA256SUMS"
cat "$out/SHA256SUMS"
