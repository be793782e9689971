#!/usr/bin/env bash
# Local demo: builds connet, then runs a control server, a destination and a
# source on this machine (loopback, a fresh self-signed certificate), serves
# a file behind the destination and fetches it through the source.
#
#   bash scripts/demo.sh            # run and clean up
#   KEEP=1 bash scripts/demo.sh     # leave everything running until Ctrl-C
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/connet-demo.XXXXXX")
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[[ -n "${KEEP_LOGS:-}" ]] || rm -rf "$work"
}
trap cleanup EXIT

# Ports of the demo, all on 127.0.0.1, chosen away from connet's defaults so
# the demo does not collide with a connet already running here.
: "${DEMO_CONTROL_PORT:=29190}" "${DEMO_RELAY_PORT:=29191}" "${DEMO_SERVICE_PORT:=23000}" "${DEMO_SOURCE_PORT:=28000}"

echo "== building connet"
(cd "$root" && go build -o "$work/connet" -ldflags "-X main.version=$(git describe --always --dirty 2>/dev/null || echo dev)" ./cmd/connet)
"$work/connet" version

cd "$work"
echo "== generating a self-signed certificate for localhost/127.0.0.1"
go run "$(go env GOROOT)/src/crypto/tls/generate_cert.go" --host localhost,127.0.0.1 >/dev/null 2>&1

cat >server.toml <<TOML
[server]
tokens = ["client-d-token", "client-s-token"]

[[server.ingress]]
addr = "127.0.0.1:$DEMO_CONTROL_PORT"
cert-file = "cert.pem"
key-file = "key.pem"

[[server.relay-ingress]]
addr = "127.0.0.1:$DEMO_RELAY_PORT"
hostports = ["127.0.0.1:$DEMO_RELAY_PORT"]
TOML
cat >destination.toml <<TOML
[client]
token = "client-d-token"
server-addr = "127.0.0.1:$DEMO_CONTROL_PORT"
server-cas-file = "cert.pem"
direct-addr = "127.0.0.1:0"

[client.destinations.serviceA]
url = "tcp://127.0.0.1:$DEMO_SERVICE_PORT"
TOML
cat >source.toml <<TOML
[client]
token = "client-s-token"
server-addr = "127.0.0.1:$DEMO_CONTROL_PORT"
server-cas-file = "cert.pem"
direct-addr = "127.0.0.1:0"
status-addr = "127.0.0.1:$((DEMO_SOURCE_PORT + 1))"

[client.sources.serviceA]
url = "tcp://127.0.0.1:$DEMO_SOURCE_PORT"
TOML
"$work/connet" check server.toml destination.toml source.toml >/dev/null

# The service behind the destination: a static file server with a 32 MiB
# file of random bytes.
mkdir www && head -c $((32 << 20)) /dev/urandom >www/payload.bin
python3 -m http.server "$DEMO_SERVICE_PORT" --bind 127.0.0.1 --directory www >service.log 2>&1 &
pids+=($!)

echo "== starting server, destination and source"
"$work/connet" server --config server.toml >server.log 2>&1 &
pids+=($!)
"$work/connet" --config destination.toml >destination.log 2>&1 &
pids+=($!)
"$work/connet" --config source.toml >source.log 2>&1 &
pids+=($!)

python3 - "$DEMO_SOURCE_PORT" "$DEMO_SERVICE_PORT" <<'PY'
import hashlib, json, socket, sys, time, urllib.request
port, service_port = int(sys.argv[1]), int(sys.argv[2])
status_url = f"http://127.0.0.1:{port + 1}/"
# The file server behind the destination starts slower than connet.
for _ in range(200):
    try:
        socket.create_connection(("127.0.0.1", service_port), timeout=1).close()
        break
    except OSError:
        time.sleep(0.05)
start = time.monotonic()
# Wait (bounded) until the source has a direct path to the destination.
path = None
while time.monotonic() - start < 20:
    try:
        st = json.load(urllib.request.urlopen(status_url, timeout=1))
        peers = st["sources"][0]["peers"]
        if peers and peers[0]["paths"]:
            path = peers[0]["paths"][0]
            break
    except Exception:
        pass
    time.sleep(0.05)
if path is None:
    sys.exit("demo: no path between source and destination within 20s (see the logs)")
print(f"== path up after {time.monotonic() - start:.2f}s: {path['kind']} to {path['remote']} (rtt {path['rtt_ms']} ms)")
t0 = time.monotonic()
data = urllib.request.urlopen(f"http://127.0.0.1:{port}/payload.bin", timeout=30).read()
dt = time.monotonic() - t0
want = hashlib.sha256(open("www/payload.bin", "rb").read()).hexdigest()
got = hashlib.sha256(data).hexdigest()
if got != want:
    sys.exit(f"demo: fetched {len(data)} bytes with the wrong checksum")
print(f"== fetched {len(data) >> 20} MiB through the tunnel in {dt:.2f}s ({len(data) / dt / 1e6:.0f} MB/s), checksum ok")
PY

echo "== source status"
python3 -c "import json,urllib.request;print(json.dumps(json.load(urllib.request.urlopen('http://127.0.0.1:$((DEMO_SOURCE_PORT + 1))/'))['sources'], indent=2))"

if [[ "${KEEP:-}" == 1 ]]; then
	echo "== running; try: curl http://127.0.0.1:$DEMO_SOURCE_PORT/  (Ctrl-C to stop)"
	wait
fi
echo "== demo done"
