#!/usr/bin/env bash
# The test suite, as CI runs it: formatting, vet, staticcheck, generated
# code, short fuzz runs of every fuzz target, every test with the race
# detector, short benchmark runs with the allocation tests, then a
# one-minute soak (scripts/soak.sh). The NAT lab tests
# need root, nftables and iproute2; without them they skip, except under
# CI=true where they fail.
#
#   bash scripts/test.sh                 # everything
#   FUZZTIME=1m bash scripts/test.sh     # longer fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-10s}

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
if command -v protoc >/dev/null; then
	go generate ./...
	git diff --exit-code -- '*.pb.go'
elif [[ "${CI:-}" == true ]]; then
	echo "protoc is missing" && exit 1
else
	echo "protoc not installed: skipped (apt-get install protobuf-compiler)"
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
go test -race -count=1 -timeout 20m ./...

echo "== benchmarks, 100 iterations each, and the allocation tests"
# Short, so they cannot rot: they must still build and run. The allocation
# tests (0 per op on the data path) run here because the race detector of
# the step above allocates on its own.
go test -count=1 -run 'Allocs$' -bench . -benchtime 100x ./internal/tunnel ./internal/wire ./internal/e2ee
# The whole-tunnel benchmarks in process (BenchmarkIdleConnections, which
# takes seconds per round, stays with scripts/bench.sh's documentation).
go test -count=1 -run '^$' -bench 'TunnelThroughput|NewConnection' -benchtime 20x .

echo "== soak, 1 minute"
bash scripts/soak.sh 1m
