#!/usr/bin/env bash
# cloister's test command (the README's, and .ci/run's). On a fresh Debian 12 machine it installs
# what it needs, then runs, counting every test case:
#   1. the cmocka unit tests (strict warnings, -Werror),
#   2. the same unit tests built with ASan + UBSan,
#   3. the clang-format check,
#   4. each libFuzzer target for a few seconds over its seed corpus,
#   5. the end-to-end tests (tests/e2e/) in one parent-instance boot, or directly on a host whose
#      KVM can boot enclaves,
# and ends with the line "N passed, N failed". Exit status 0 only if nothing failed.
#
# Environment: FUZZ_SECONDS (default 5) per fuzz target; CLOISTER_SKIP_E2E=1 skips step 5 and
# says so in the summary (for a quick local loop; CI never sets it).
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
failures=()
skipped_note=""

pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); failures+=("$1"); echo "FAILED: $1"; }

# Run one TAP-speaking test program; count its "ok" / "not ok" lines. A program that exits
# non-zero without a "not ok" line (a crash, a sanitizer report) counts as one failure.
run_tap() {
	local label=$1; shift
	local out rc ok nok
	out=$("$@" 2>&1); rc=$?
	ok=$(grep -cE '^ok [0-9]+' <<<"$out")
	nok=$(grep -cE '^not ok [0-9]+' <<<"$out")
	passed=$((passed + ok))
	if [ "$nok" -gt 0 ] || [ "$rc" -ne 0 ] || [ "$ok" -eq 0 ]; then
		echo "$out" | sed "s|^|  [$label] |"
		[ "$nok" -gt 0 ] || nok=1
		failed=$((failed + nok))
		failures+=("$label")
	fi
	echo "$label: $ok passed, $nok failed"
}

build() {
	local dir=$1; shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; return 1; }
	fi
	ninja -C "$dir" >"$dir.build.log" 2>&1 || { tail -60 "$dir.build.log"; return 1; }
}

echo "== build (gcc, -Werror)"
if build build -Dwerror=true; then
	pass
	echo "== unit tests"
	for t in build/tests/unit/test_*; do
		[ -x "$t" ] && [ -f "$t" ] || continue
		run_tap "unit/$(basename "$t")" env CMOCKA_MESSAGE_OUTPUT=TAP "$t"
	done
else
	fail "build"
fi

echo "== command-line tests"
# Each tests/cli/test_* runs the built `cloister` against real files and sockets and prints TAP.
for t in tests/cli/test_*; do
	[ -x "$t" ] || continue
	run_tap "cli/$(basename "$t")" env CLOISTER="$top/build/src/cli/cloister" timeout 300 "$t"
done

echo "== benchmark helpers"
# bench/lib's smaps accounting and result JSON, which need no KVM (the benchmarks themselves are
# not tests: they run with tests/e2e/run --bench).
if out=$(/usr/bin/python3 bench/lib/test_benchlib.py 2>&1); then
	pass
else
	echo "$out" | sed 's|^|  [bench/lib/test_benchlib.py] |'
	fail "bench/lib/test_benchlib.py"
fi

echo "== unit tests under ASan + UBSan"
if build build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
	-Dbuildtype=debug; then
	pass
	for t in build-asan/tests/unit/test_*; do
		[ -x "$t" ] && [ -f "$t" ] || continue
		run_tap "asan/$(basename "$t")" env CMOCKA_MESSAGE_OUTPUT=TAP \
			ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
			UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$t"
	done
else
	fail "build-asan"
fi

echo "== clang-format"
mapfile -t sources < <(git ls-files -co --exclude-standard -- '*.c' '*.h')
bad=()
for f in "${sources[@]}"; do
	[ -f "$f" ] || continue
	clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -eq 0 ]; then
	pass; echo "clang-format: ${#sources[@]} files clean"
else
	fail "clang-format: ${bad[*]} (run: clang-format -i ${bad[*]})"
fi

echo "== fuzz targets (${FUZZ_SECONDS:-5} s each)"
if CC=clang build build-fuzz -Dfuzzers=true -Dtests=false -Db_sanitize=address,undefined \
	-Db_lundef=false -Dbuildtype=debug; then
	for t in build-fuzz/fuzz/fuzz-*; do
		[ -x "$t" ] && [ -f "$t" ] || continue
		name=${t##*/fuzz-}
		corpus=$(mktemp -d)
		dirs=("$corpus")
		[ -d "tests/data/fuzz/$name" ] && dirs+=("tests/data/fuzz/$name")
		# Seeds and crash reproducers in tests/data/fuzz/<name>/ run first, every time.
		# UBSan only reports unless told to stop; a report must fail the target.
		if UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
			"$t" -max_total_time="${FUZZ_SECONDS:-5}" -print_final_stats=1 \
			-timeout=10 -rss_limit_mb=2048 "${dirs[@]}" >"build-fuzz/$name.log" 2>&1; then
			pass
			echo "fuzz/$name: $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' \
				"build-fuzz/$name.log" | awk '{print $2}') executions, no crash"
		else
			tail -40 "build-fuzz/$name.log"
			fail "fuzz/$name"
		fi
		rm -rf "$corpus"
	done
else
	fail "build-fuzz"
fi

echo "== end-to-end tests"
if [ "${CLOISTER_SKIP_E2E:-0}" = 1 ] && [ "${CI:-}" != true ]; then
	skipped_note=" (e2e skipped: CLOISTER_SKIP_E2E=1)"
	echo "skipped on request"
elif [ -x tests/e2e/run ]; then
	e2e_out=$(mktemp)
	tests/e2e/run 2>&1 | tee "$e2e_out"
	summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$e2e_out" | tail -1)
	if [ -n "$summary" ]; then
		p=$(awk '{print $1}' <<<"$summary"); f=$(awk '{print $3}' <<<"$summary")
		passed=$((passed + p)); failed=$((failed + f))
		[ "$f" -eq 0 ] || failures+=("e2e ($f)")
	else
		fail "e2e runner printed no summary"
	fi
	rm -f "$e2e_out"
else
	fail "tests/e2e/run is missing"
fi

echo
if [ ${#failures[@]} -gt 0 ]; then
	echo "failures: ${failures[*]}"
fi
echo "$passed passed, $failed failed$skipped_note"
[ "$failed" -eq 0 ]
