#!/usr/bin/env bash
# Checks the packaging: the release build (static, version stamped,
# checksums), the systemd units (systemd-analyze verify and security, and
# that their command lines parse), the Docker image (built with buildah
# and run), and the Nix files (parsed; the vendor hash recomputed).
# scripts/test.sh runs it. Its parts (packaging: the static-binary and
# unit checks; image; nix) need programs that scripts/deps.sh names and
# installs; a missing one fails the check, unless CONNET_TEST_SKIP lists
# its part (see docs/testing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/connet-packaging.XXXXXX")
ctr=""
cleanup() {
	if [[ -n "$ctr" ]]; then buildah rm $ctr >/dev/null 2>&1 || true; fi
	if command -v buildah >/dev/null; then
		buildah rmi -f localhost/connet-check localhost/connet-check-go >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "packaging-check: $*" >&2; exit 1; }
# part NAME WHAT: whether to run part NAME, which does WHAT. CONNET_TEST_SKIP
# leaves it out; otherwise what it needs must be here.
part() {
	if [[ ",${CONNET_TEST_SKIP:-}," == *",$1,"* ]]; then
		echo "$2: skipped (CONNET_TEST_SKIP)"
		return 1
	fi
	bash scripts/deps.sh check "$1" >&2 || fail "$2: what it needs is missing (see above)"
}

version=v0.0.0-packaging-check

echo "== release build"
TARGETS=linux/amd64 VERSION=$version OUT=$work/dist bash scripts/release.sh >/dev/null
bin=$work/dist/connet-$version-linux-amd64
got=$("$bin" version)
[[ "$got" == "$version" ]] || fail "release binary prints version '$got', want '$version'"
(cd "$work/dist" && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS does not match"
if part packaging "the static-binary check"; then
	file "$bin" | grep -q 'statically linked' || fail "release binary is not static: $(file "$bin")"
fi
echo "connet version: $got, static, checksum ok"

echo "== systemd units"
if part packaging "the systemd unit checks"; then
	mkdir "$work/units"
	for unit in packaging/systemd/*.service; do
		copy=$work/units/$(basename "$unit")
		# verify needs ExecStart's binary to exist: the one just built.
		sed "s|/usr/local/bin/connet|$bin|g" "$unit" >"$copy"
		# verify exits 0 on unknown keys and bad values; any output fails.
		out=$(systemd-analyze verify "$copy" 2>&1) || fail "$unit: $out"
		[[ -z "$out" ]] || fail "$unit: systemd-analyze verify: $out"
		score=$(systemd-analyze security --offline=yes "$copy" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
		[[ -n "$score" ]] || fail "$unit: no exposure score"
		awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || fail "$unit: exposure $score, want at most 2.0"
		# The command line parses: the subcommand exists and takes
		# --config, which then names the file it could not read.
		exec_start=$(sed -n 's/^ExecStart=//p' "$copy")
		read -r -a argv <<<"${exec_start//\/etc\/connet\//$work/absent-}"
		if out=$("${argv[@]}" 2>&1); then fail "$unit: ran without its config"; fi
		grep -q "cannot read config file" <<<"$out" || fail "$unit: ExecStart did not reach the config: $out"
		echo "$(basename "$unit"): verify clean, exposure $score"
	done
fi

echo "== Dockerfile"
df=Dockerfile
for want in '^FROM scratch$' '^USER 65532:65532$' 'CGO_ENABLED=0 go build -trimpath' '-X main.version=\$\{VERSION\}' \
	'^ENV CONNET_STATE_DIR=/var/lib/connet CONNET_CACHE_DIR=/var/cache/connet$' '^ENTRYPOINT \["/usr/local/bin/connet"\]$' '^WORKDIR /config$'; do
	grep -Eq -- "$want" "$df" || fail "$df: no line matching $want"
done
if part image "building and running the image"; then
	# No registry but Go's and Debian's is reachable here, so the build
	# stage runs on a local stand-in for the golang image: this machine's
	# Go toolchain with busybox as its shell and the CA bundle.
	goroot=$(go env GOROOT)
	ctr=$(buildah from scratch)
	mnt=$(buildah mount "$ctr")
	mkdir -p "$mnt/usr/local" "$mnt/bin" "$mnt/etc/ssl/certs" "$mnt/tmp" "$mnt/go"
	cp -a "$goroot" "$mnt/usr/local/go"
	cp "$(command -v busybox)" "$mnt/bin/busybox"
	for applet in sh mkdir cp; do ln -s busybox "$mnt/bin/$applet"; done
	cp /etc/ssl/certs/ca-certificates.crt "$mnt/etc/ssl/certs/"
	chmod 1777 "$mnt/tmp"
	buildah umount "$ctr" >/dev/null
	buildah config --env PATH=/usr/local/go/bin:/bin --env GOPATH=/go --env GOCACHE=/gocache \
		--env GOTOOLCHAIN=local --env GOFLAGS=-mod=mod "$ctr"
	buildah commit -q "$ctr" localhost/connet-check-go >/dev/null
	buildah rm "$ctr" >/dev/null
	ctr=""
	# This machine's module and build caches make the build stage quick.
	if ! buildah build -q --isolation chroot --network host \
		-v "$(go env GOMODCACHE):/go/pkg/mod" -v "$(go env GOCACHE):/gocache" \
		--build-arg GO_IMAGE=localhost/connet-check-go --build-arg VERSION=$version \
		-t localhost/connet-check . >"$work/buildah.log" 2>&1; then
		cat "$work/buildah.log"
		fail "buildah build failed"
	fi
	user=$(buildah inspect --format '{{.OCIv1.Config.User}}' localhost/connet-check)
	[[ "$user" == 65532:65532 ]] || fail "image runs as '$user'"
	ctr=$(buildah from localhost/connet-check)
	# buildah 1.28's chroot isolation now and then (about 1 run in 30 here)
	# loses the output of a process this short; only an empty output is
	# tried again.
	for _ in 1 2 3; do
		got=$(buildah run --isolation chroot "$ctr" -- /usr/local/bin/connet version 2>"$work/run.err") ||
			{ cat "$work/run.err"; fail "the image does not run connet version"; }
		[[ -z "$got" ]] || break
	done
	[[ "$got" == "$version" ]] || fail "image's connet version prints '$got', want '$version'"
	mnt=$(buildah mount "$ctr")
	owners=$(cd "$mnt" && stat -c '%n=%u' var/lib var/lib/connet var/cache/connet config | tr '\n' ' ')
	[[ "$owners" == "var/lib=0 var/lib/connet=65532 var/cache/connet=65532 config=65532 " ]] || fail "image's directory owners: $owners"
	file "$mnt/usr/local/bin/connet" | grep -q 'statically linked' || fail "image's binary is not static"
	buildah umount "$ctr" >/dev/null
	buildah rm "$ctr" >/dev/null
	ctr=""
	size=$(buildah images --format '{{.Size}}' localhost/connet-check)
	echo "image built: connet version $got, user $user, size $size"

	# The image at work: a server and a client, each in its own container
	# as docs/operations.md runs them (config mounted at /config, relative paths,
	# state and cache volumes), in a network and PID namespace of their
	# own: loopback only, and every process ends with the namespace.
	run=$work/image-run
	mkdir -p "$run/config" "$run/state" "$run/cache"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
		-addext subjectAltName=DNS:localhost -keyout "$run/config/key.pem" -out "$run/config/cert.pem" 2>/dev/null
	printf '[server]\ntokens = ["t"]\n[[server.ingress]]\naddr = "127.0.0.1:19190"\ncert-file = "cert.pem"\nkey-file = "key.pem"\n[[server.relay-ingress]]\naddr = "127.0.0.1:19191"\n' >"$run/config/server.toml"
	printf '[client]\ntoken = "t"\nserver-addr = "localhost:19190"\nserver-cas-file = "cert.pem"\ndirect-addr = "127.0.0.1:19192"\n' >"$run/config/client.toml"
	chmod 644 "$run/config/"*
	chown 65532:65532 "$run/state" "$run/cache"
	srv=$(buildah from localhost/connet-check)
	cli=$(buildah from localhost/connet-check)
	ctr="$srv $cli"
	if ! unshare --pid --fork --mount-proc --net bash -c '
		set -eu
		run=$1 srv=$2 cli=$3
		ip link set lo up
		buildah run --isolation chroot --network host -v "$run/config:/config:ro" -v "$run/state:/var/lib/connet" \
			"$srv" -- /usr/local/bin/connet server --config server.toml >"$run/server.log" 2>&1 &
		buildah run --isolation chroot --network host -v "$run/config:/config:ro" -v "$run/cache:/var/cache/connet" \
			"$cli" -- /usr/local/bin/connet --config client.toml >"$run/client.log" 2>&1 &
		for _ in $(seq 200); do
			grep -q "connected to control server" "$run/client.log" && exit 0
			sleep 0.1
		done
		exit 1' _ "$run" "$srv" "$cli"; then
		cat "$run/server.log" "$run/client.log"
		fail "the image's client did not connect to the image's server within 20s"
	fi
	[[ -n "$(find "$run/state" -type f -user 65532)" ]] || fail "the server kept nothing in its state volume as uid 65532"
	[[ -n "$(find "$run/cache" -type f -user 65532)" ]] || fail "the client kept no reset key in its cache volume as uid 65532"
	echo "image ran: its client connected to its server; state and cache written as uid 65532"
	buildah rm $ctr >/dev/null
	ctr=""
fi

echo "== Nix"
if part nix "the Nix checks"; then
	for f in flake.nix nix/*.nix; do
		nix-instantiate --parse "$f" >/dev/null 2>"$work/nix.err" || { cat "$work/nix.err"; fail "$f does not parse"; }
	done
	echo "all .nix files parse"
	# nixpkgs cannot be fetched here: the modules are evaluated against a
	# small stand-in of the nixpkgs functions they use.
	bash nix/tests/eval.sh
	# buildGoModule's vendorHash is the NAR hash of `go mod vendor`.
	mkdir "$work/src"
	git ls-files -z | xargs -0 cp --parents -t "$work/src"
	(cd "$work/src" && go mod vendor)
	hex=$(nix-hash --type sha256 "$work/src/vendor" 2>/dev/null)
	want=$(python3 -c "import base64, sys; print(\"sha256-\" + base64.b64encode(bytes.fromhex(sys.argv[1])).decode())" "$hex")
	grep -qF "vendorHash = \"$want\";" nix/package.nix || fail "nix/package.nix: vendorHash is stale: set it to \"$want\""
	echo "vendorHash matches go.mod/go.sum"
fi
echo "packaging ok"
