#!/usr/bin/env bash
# A soak in the NAT lab (needs root): for DURATION (default 5m), workers
# echo random data through a direct and a relayed source while the relay,
# the control server and the destination client restart in turn. It fails
# on any corrupted transfer, or if a client's goroutines, open files or RSS
# do not come back near their warmed-up figures; it prints the figures.
#
#   bash scripts/soak.sh        # 5 minutes
#   bash scripts/soak.sh 30m
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-5m}
CONNET_SOAK=$duration go test -count=1 -v -timeout 0 -run '^TestSoak$' ./e2e |
	grep -E 'MEASURE|^(ok|FAIL|---)|soak_test' | sed -E 's/^ +[a-z_]+_test.go:[0-9]+: MEASURE //'
