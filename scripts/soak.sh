#!/usr/bin/env bash
# scripts/soak.sh N: runs every fault scenario of e2e/ N times, each run a
# fresh test process, and prints how many runs of each ended identical: the
# test passed, so the run exited 0 and the target holds the source's rows
# exactly once (per-table md5 of the sorted row text, and the ledger).
# Faults are races; one green run proves little, N of N proves more.
# Not part of `make test`.
#
#   scripts/soak.sh 20
#   SOAK_TESTS="TestLoaderKilledMidRun TestBrokerKilledMidRun" scripts/soak.sh 50
#
# CARAVAN_TEST_PG_URL names the PostgreSQL server; without it a throwaway
# cluster is started for the whole soak. TestLoaderCutOffByNetwork needs
# root (it creates a network namespace) and counts as skipped otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

n="${1:-}"
if ! [[ "$n" =~ ^[1-9][0-9]*$ ]]; then
	echo "usage: scripts/soak.sh N   (N runs of each fault scenario)" >&2
	exit 2
fi
if [[ -z "${CARAVAN_TEST_PG_URL:-}" ]]; then
	exec go run ./internal/cmd/withpg -- "$0" "$@"
fi

read -r -a tests <<<"${SOAK_TESTS:-TestLoaderKilledMidRun TestExtractorKilledMidRun TestValidatorKilledMidRun \
TestBrokerKilledMidRun TestBrokerClusterLosesStreamLeader TestCoordinatorKilledKeylessMidLoad \
TestResumeAfterCoordinatorKilled TestTargetCrashMidRun TestTaskRedeliveredWhileExtracting TestLoaderCutOffByNetwork}"

work="$(mktemp -d "${TMPDIR:-/tmp}/caravan-soak-XXXXXX")"
echo "== building the e2e tests (logs in $work)"
go test -c -o "$work/e2e.test" ./e2e

declare -A identical failed skipped
for t in "${tests[@]}"; do identical[$t]=0 failed[$t]=0 skipped[$t]=0; done

for ((i = 1; i <= n; i++)); do
	for t in "${tests[@]}"; do
		log="$work/$t.$i.log"
		start=$SECONDS
		if (cd e2e && "$work/e2e.test" -test.run "^$t\$" -test.count=1 -test.v -test.timeout 10m) >"$log" 2>&1; then
			if grep -q -- "--- SKIP: $t" "$log"; then
				skipped[$t]=$((skipped[$t] + 1))
				echo "run $i $t: skipped ($(grep -m1 -A1 -- "--- SKIP: $t" "$log" | tail -1 | sed 's/^ *//'))"
			else
				identical[$t]=$((identical[$t] + 1))
				echo "run $i $t: identical ($((SECONDS - start))s)"
			fi
		else
			failed[$t]=$((failed[$t] + 1))
			echo "run $i $t: FAILED ($((SECONDS - start))s, log $log)"
			# The test's own failure lines, not the processes' logs it prints.
			grep -E '^ +[a-z_]+_test\.go:[0-9]+: ' "$log" | grep -v ' log:$' | head -5 | sed 's/^ */    /' || true
		fi
	done
done

echo
echo "== soak: $n runs of each scenario"
bad=0
for t in "${tests[@]}"; do
	printf '%-40s identical %d/%d' "$t" "${identical[$t]}" "$n"
	[[ ${failed[$t]} -gt 0 ]] && printf ', failed %d' "${failed[$t]}"
	[[ ${skipped[$t]} -gt 0 ]] && printf ', skipped %d' "${skipped[$t]}"
	echo
	bad=$((bad + failed[$t]))
done
[[ $bad -eq 0 ]]
