#!/usr/bin/env bash
# The test suite, as CI runs it: formatting, vet, staticcheck, generated
# code, short fuzz runs of every fuzz target, every test with the race
# detector, short benchmark runs with the allocation tests, then a
# one-minute soak (scripts/soak.sh). It first checks that this machine
# has what every part needs (scripts/deps.sh: root for the NAT lab and the
# image, and the programs the tests drive), and stops with the command
# that installs what is missing. Only CONNET_TEST_SKIP leaves parts out,
# and the last line names them (docs/testing.md).
#
#   bash scripts/test.sh                                 # everything
#   FUZZTIME=1m bash scripts/test.sh                     # longer fuzzing
#   CONNET_TEST_SKIP=image,nix bash scripts/test.sh      # all but those parts
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-10s}

# The parts CONNET_TEST_SKIP may leave out (scripts/deps.sh has what each
# needs). lab, programs and browser are Go tests, which skip themselves
# where their programs are missing; the others are steps of this script
# and of scripts/packaging-check.sh.
parts=(lab protoc programs browser packaging image nix)
IFS=', ' read -r -a skip <<<"${CONNET_TEST_SKIP:-}"
skipping() { [[ " ${skip[*]} " == *" $1 "* ]]; }
for part in "${skip[@]}"; do
	[[ " ${parts[*]} " == *" $part "* ]] || { echo "CONNET_TEST_SKIP: no part '$part' (parts: ${parts[*]})"; exit 2; }
done
if ((${#skip[@]})) && [[ "${CI:-}" == true ]]; then
	echo "CONNET_TEST_SKIP=${CONNET_TEST_SKIP} under CI=true: CI runs every part (.ci/run installs them)"
	exit 2
fi
CONNET_TEST_SKIP=$(IFS=,; echo "${skip[*]}")
export CONNET_TEST_SKIP # scripts/packaging-check.sh reads it

echo "== what the tests need"
need=()
for part in "${parts[@]}"; do skipping "$part" || need+=("$part"); done
if ! bash scripts/deps.sh check "${need[@]}"; then
	missing=("${skip[@]}")
	for part in "${need[@]}"; do
		bash scripts/deps.sh check "$part" >/dev/null || missing+=("$part")
	done
	echo "or leave those parts out:  CONNET_TEST_SKIP=$(IFS=,; echo "${missing[*]}") bash scripts/test.sh"
	exit 1
fi
# With every Go test's programs here, a test that skips for a missing one
# is a broken setup: CI=true makes the test helpers (testprog, natlab)
# fail it instead, as on CI.
go_test_env=(CI=true)
for part in lab programs browser; do
	if skipping "$part"; then go_test_env=(); fi
done

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' | grep -v '\.pb\.go$'))
if [[ -n "$unformatted" ]]; then
	echo "gofmt would change:" "$unformatted"
	exit 1
fi

echo "== go vet"
go vet ./...

echo "== staticcheck"
go tool staticcheck ./...

echo "== generated code is up to date"
if skipping protoc; then
	echo "skipped (CONNET_TEST_SKIP)"
else
	go generate ./...
	git diff --exit-code -- '*.pb.go'
fi

echo "== fuzz, $fuzztime per target"
# Every "func FuzzX" in a _test.go file, run in its package.
# go test -fuzz can report "context deadline exceeded" when -fuzztime runs
# out while a worker is busy, on a loaded machine, without any failing
# input; that run is repeated once. A real crash writes its input under
# testdata/fuzz, so the repeat replays it and still fails.
grep -rH --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(' . | while IFS=: read -r file decl; do
	name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]+).*/\1/' <<<"$decl")
	pkg="./$(dirname "${file#./}")"
	for attempt in 1 2; do
		if out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" 2>&1); then
			tail -n 1 <<<"$out"
			break
		fi
		if [[ $attempt == 1 ]] && grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written' <<<"$out"; then
			echo "$name: fuzzing ended on the toolchain's deadline report, without a failing input; running it again"
			continue
		fi
		echo "$out"
		exit 1
	done
done

bash scripts/packaging-check.sh # release build, systemd units, Docker image, Nix

echo "== go test"
env "${go_test_env[@]}" go test -race -count=1 -timeout 20m ./...

echo "== benchmarks, 100 iterations each, and the allocation tests"
# Short, so they cannot rot: they must still build and run. The allocation
# tests (0 per op on the data path) run here because the race detector of
# the step above allocates on its own.
go test -count=1 -run 'Allocs$' -bench . -benchtime 100x ./internal/tunnel ./internal/wire ./internal/e2ee
# The whole-tunnel benchmarks in process (BenchmarkIdleConnections, which
# takes seconds per round, stays with scripts/bench.sh's documentation).
go test -count=1 -run '^$' -bench 'TunnelThroughput|NewConnection' -benchtime 20x .

echo "== soak, 1 minute"
if skipping lab; then
	echo "skipped (CONNET_TEST_SKIP: it runs in the NAT lab)"
else
	bash scripts/soak.sh 1m
fi

if ((${#skip[@]} == 0)); then
	echo "== scripts/test.sh passed, every part run"
else
	# A Go part left out still ran where its programs are installed.
	ran=()
	for part in lab programs browser; do
		if skipping "$part" && bash scripts/deps.sh check "$part" >/dev/null; then ran+=("$part"); fi
	done
	echo "== scripts/test.sh passed; CONNET_TEST_SKIP left out: ${skip[*]}${ran:+ (installed here, so the Go tests of ${ran[*]} ran all the same)}"
fi
