#!/usr/bin/env bash
# The reach table: runs the lab's reach tests (TestReach over every
# natlab topology, and TestNATForgetsMidTransfer) against this tree's
# binary and writes docs/reach.md, beside the "before" numbers kept in
# docs/reach-before.log. Needs root, iproute2, nftables and conntrack.
# Exits non-zero if a topology's outcome differs from its expectation
# (the table is written anyway).
#
#   bash scripts/reach.sh               # after = this tree
#   bash scripts/reach.sh --before REF  # first re-measure "before" with the
#                                       # binary of git revision REF
#   REACH_TESTS='TestReach|TestFoo' bash scripts/reach.sh   # more tests
#                                       # whose MEASURE lines to include
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh check lab || exit 1
tests=${REACH_TESTS:-TestReach|TestNATForgetsMidTransfer}
before_log=docs/reach-before.log
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# measure BIN OUT: run the reach tests with binary BIN (empty: build this
# tree), keep their MEASURE lines in OUT; returns go test's status.
measure() {
	local bin=$1 out=$2 status=0
	CONNET_REACH=1 CONNET_E2E_BIN=$bin go test -count=1 -timeout 20m -v \
		-run "^($tests)\$" ./e2e/ >"$work/run.log" 2>&1 || status=$?
	grep -o 'MEASURE .*' "$work/run.log" >"$out" || true
	if [[ $status -ne 0 ]]; then
		grep -E '^\s*(--- FAIL|FAIL|panic)|_test\.go:[0-9]+: ' "$work/run.log" | grep -v MEASURE | head -40 >&2 || true
	fi
	return $status
}

if [[ ${1:-} == --before ]]; then
	ref=${2:?usage: reach.sh --before REF}
	rev=$(git rev-parse --short "$ref")
	echo "== building $ref ($rev)"
	mkdir "$work/src"
	git archive "$ref" | tar -x -C "$work/src"
	(cd "$work/src" && go build -o "$work/connet-before" ./cmd/connet)
	echo "== measuring before ($rev)"
	measure "$work/connet-before" "$work/before.log" || echo "(some outcomes differ from today's expectations)"
	{ echo "# revision $rev"; cat "$work/before.log"; } >"$before_log"
fi

after_rev="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!docs' || echo '+changes')"
echo "== measuring after ($after_rev)"
status=0
measure "" "$work/after.log" || status=$?
before_rev=$(sed -n 's/^# revision //p' "$before_log" 2>/dev/null | head -1)
go run ./scripts/reachtable -before "$before_log" -after "$work/after.log" \
	-before-rev "${before_rev:-?}" -after-rev "$after_rev" >docs/reach.md
echo "== wrote docs/reach.md"
cat docs/reach.md
if [[ $status -ne 0 ]]; then
	echo "reach: the reach tests failed (see above)" >&2
fi
exit $status
