#!/usr/bin/env bash
# Measurements, all from one run on this machine (needs root for the NAT
# lab): time to a direct path and to the first fetch per topology (relayed
# where punching cannot work), recovery after relay and server restarts, how
# soon a dead destination stops being chosen, and bulk throughput direct and
# relayed (clear, dhxcp, tls) against raw TCP and against the QUIC ceiling
# (bench/quicceiling: one bare QUIC connection with the tunnel's settings)
# across the same namespaces, one stream and 8 at once, small HTTP requests
# (wrk) directly, through a tcp tunnel and through an http source and
# destination, and new connections one at a time, beside the same small
# requests and new streams over bare QUIC and over TCP; then the in-process
# loopback benchmark against the ceiling on loopback. CONNET_BENCH_PERF=DIR
# records a perf profile of each tunnel phase into DIR. Scale: 10 000 concurrent
# connections direct and relayed (RSS of clients and server per
# connection), and 200 new connections a second for a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh check lab bench || exit 1
bindir=$(mktemp -d)
trap 'rm -rf "$bindir"' EXIT
go build -o "$bindir/quicceiling" ./bench/quicceiling
echo "== NAT lab"
CONNET_BENCH=1 CONNET_CEILING_BIN="$bindir/quicceiling" go test -count=1 -v \
	-run 'TestTopologies|TestThroughput|TestRequestRate|TestSplitDeploymentAndRelayRestart|TestServerRestartRelayed|TestDeadDestinationNotChosen' \
	./e2e | grep -E 'MEASURE|^(ok|FAIL|---)' | sed -E 's/^ +[a-z_]+_test.go:[0-9]+: MEASURE //'
echo "== scale: 10 000 connections at once, then 200 new a second for a minute"
# Its own run: it takes minutes, more than go test's default timeout leaves
# after the lab measurements above.
CONNET_BENCH=1 go test -count=1 -v -timeout 30m -run '^TestScale$' ./e2e |
	grep -E 'MEASURE|^(ok|FAIL|---)' | sed -E 's/^ +[a-z_]+_test.go:[0-9]+: MEASURE //'
echo "== in-process tunnel over loopback, against the QUIC ceiling over loopback"
# The ceiling before and after the benchmark; the higher counts (see
# TestThroughput).
before=$("$bindir/quicceiling")
bench=$(go test -run '^$' -bench TunnelThroughput -benchtime 3s . | grep -E '^Benchmark')
after=$("$bindir/quicceiling")
echo "$before (before)"
echo "$after (after)"
awk -v a="${before##*MBps=}" -v b="${after##*MBps=}" '{ c = a > b ? a : b; for (i = 1; i < NF; i++) if ($(i+1) == "MB/s") mbps = $i; printf "%s (%.2f of ceiling)\n", $0, mbps / c }' <<<"$bench"
