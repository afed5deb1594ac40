#!/usr/bin/env bash
# Run one of the libFuzzer targets in fuzz/ under AFL++ (docs/fuzzing.md).
#
#   bash scripts/fuzz-afl.sh TARGET [SECONDS]     e.g.  bash scripts/fuzz-afl.sh cpulist 60
#
# The harnesses are unchanged: afl-clang-fast compiles them with -fsanitize=fuzzer, which links
# AFL++'s libAFLDriver (persistent mode, LLVMFuzzerInitialize honoured) instead of libFuzzer.
# The build is build-afl/ (ASan + UBSan, -O2); seeds come from tests/data/fuzz/TARGET/; findings
# go to build-afl/afl-TARGET/. Needs Debian's afl++ package (apt-get install afl++). Prints
# AFL's executions, rate and crash count, and exits 1 if it saved a crash.
# On a shared machine run it as `nice -n 19 bash scripts/fuzz-afl.sh ...`.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

target=${1:?usage: fuzz-afl.sh TARGET [SECONDS]}
seconds=${2:-60}
[ -f "fuzz/fuzz_$target.c" ] || { echo "no fuzz target '$target' (fuzz/fuzz_$target.c)" >&2; exit 2; }
command -v afl-fuzz >/dev/null && command -v afl-clang-fast >/dev/null ||
	{ echo "afl-fuzz / afl-clang-fast not found: apt-get install afl++" >&2; exit 2; }

if [ ! -f build-afl/build.ninja ]; then
	CC=afl-clang-fast meson setup build-afl -Dfuzzers=true -Dtests=false \
		-Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized >/dev/null
fi
ninja -C build-afl "fuzz/fuzz-$target" >/dev/null

out=build-afl/afl-$target
rm -rf "$out"
# AFL_NO_AFFINITY: no free core to pin to on a busy machine; the CPU-frequency and core_pattern
# checks are for dedicated fuzzing hosts. UBSan findings must abort to count as crashes.
AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 \
	UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1 \
	afl-fuzz -V "$seconds" -t 10000 -m none -i "tests/data/fuzz/$target" -o "$out" \
	-- "build-afl/fuzz/fuzz-$target" >"$out.log" 2>&1 || { tail -30 "$out.log"; exit 1; }

stats=$out/default/fuzzer_stats
execs=$(awk -F' *: *' '$1 == "execs_done" {print $2}' "$stats")
rate=$(awk -F' *: *' '$1 == "execs_per_sec" {print $2}' "$stats")
crashes=$(awk -F' *: *' '$1 == "saved_crashes" || $1 == "unique_crashes" {print $2}' "$stats")
echo "afl/$target: $execs executions in $seconds s ($rate/s), $crashes crashes (in $out)"
[ "${crashes:-0}" -eq 0 ]
