#!/usr/bin/env bash
# Measurements, all from one run on this machine (needs root for the NAT
# lab): time to a direct path and to the first fetch per topology (relayed
# where punching cannot work), recovery after relay and server restarts, how
# soon a dead destination stops being chosen, and bulk throughput direct and
# relayed against raw TCP across the same namespaces, small HTTP requests
# (wrk) directly, through a tcp tunnel and through an http source and
# destination; then the in-process loopback benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== NAT lab"
CONNET_BENCH=1 go test -count=1 -v \
	-run 'TestTopologies|TestThroughput|TestRequestRate|TestSplitDeploymentAndRelayRestart|TestServerRestartRelayed|TestDeadDestinationNotChosen' \
	./e2e | grep -E 'MEASURE|^(ok|FAIL|---)' | sed -E 's/^ +[a-z_]+_test.go:[0-9]+: MEASURE //'
echo "== in-process tunnel over loopback"
go test -run '^$' -bench TunnelThroughput -benchtime 3s . | grep -E '^Benchmark'
