#!/usr/bin/env bash
# `make fuzz`: run every native fuzz target (func FuzzXxx in a fuzz_test.go)
# for a bounded time each. Their seed corpora (f.Add and testdata/fuzz) also
# run in plain `go test`, hence in `make test`.
#   FUZZTIME       time per target, as go test -fuzztime takes it (default 30s)
#   FUZZ_PARALLEL  fuzzing workers per target (default: go's, GOMAXPROCS)
#   FUZZ_MATCH     only targets whose name matches this regexp (default: all)
# A failing input is written under the package's testdata/fuzz/<target>/ and
# the run stops there: commit it with the fix, so it stays a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime="${FUZZTIME:-30s}"
parallel=()
if [ -n "${FUZZ_PARALLEL:-}" ]; then parallel=(-parallel "$FUZZ_PARALLEL"); fi

mapfile -t files < <(find . -name fuzz_test.go -not -path './.git/*' | sort)
count=0
for file in "${files[@]}"; do
	pkg="./$(dirname "${file#./}")"
	for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file"); do
		if [ -n "${FUZZ_MATCH:-}" ] && ! [[ "$target" =~ $FUZZ_MATCH ]]; then continue; fi
		echo "== $pkg $target ($fuzztime)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "${parallel[@]}" "$pkg"
		count=$((count + 1))
	done
done
echo "fuzzed $count targets for $fuzztime each"
