#!/usr/bin/env bash
# Runs every fuzz target in the module for a short time each (FUZZTIME,
# default 2000x: a count, not a duration, because a duration that ends while
# the engine minimises an input fails the run with "context deadline
# exceeded" and no crasher), beyond the seed corpus that `go test` replays.
# New crashers land in the package's testdata/fuzz/ as usual; a crash fails
# the run. Usage: bash hack/fuzz.sh [packages...]  (default ./...)
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-2000x}
pkgs=$(go list "${@:-./...}")
n=0; failed=()
for pkg in $pkgs; do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  targets=$(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)\(' "$dir"/*_test.go 2>/dev/null | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/' | sort -u) || true
  for t in $targets; do
    n=$((n+1))
    printf 'fuzz: %s %s (%s)\n' "$pkg" "$t" "$FUZZTIME"
    if ! go test "$pkg" -run '^$' -fuzz "^${t}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 100x >/tmp/bulwark-fuzz.$$.log 2>&1; then
      cat /tmp/bulwark-fuzz.$$.log; failed+=("$pkg.$t")
    fi
  done
done
rm -f /tmp/bulwark-fuzz.$$.log
echo "fuzz: $n targets run, ${#failed[@]} failed ${failed[*]:-}"
((${#failed[@]} == 0))
