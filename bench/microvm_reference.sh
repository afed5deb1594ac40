#!/usr/bin/env bash
# Reference boot time: QEMU microvm + the Debian cloud kernel + tests/e2e/hello-init, launched by
# tests/e2e/lib/microvm.sh (the same launch as tests/e2e/test_00). Prints JSON on stdout; run it
# where KVM works, e.g. `tests/e2e/run --bench bench/microvm_reference.sh [RUNS]`, which writes
# bench/results/microvm_reference.json. Times are on this (the parent's) clock: launch → the
# init's marker on the console, and launch → QEMU exit after power-off.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
microvm=$top/tests/e2e/lib/microvm.sh
kdir=$(bash "$top/scripts/fetch-kernel.sh" enclave)
kernel=$(ls "$kdir"/boot/vmlinuz-* | head -1)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash "$microvm" initramfs --init "$top/build/tests/e2e/hello-init" --out "$tmp/initrd.cpio"

marker_ms=()
exit_ms=()
for i in $(seq "$runs"); do
	start=$(date +%s%N)
	seen=""
	while IFS= read -r line; do
		if [ -z "$seen" ] && [[ $line == *"CLOISTER-E2E-HELLO: init reached"* ]]; then
			seen=$((($(date +%s%N) - start) / 1000000))
		fi
	done < <(timeout 120 bash "$microvm" boot --kernel "$kernel" --initrd "$tmp/initrd.cpio" 2>/dev/null)
	end=$((($(date +%s%N) - start) / 1000000))
	[ -n "$seen" ] || { echo "run $i: no init marker" >&2; exit 1; }
	marker_ms+=("$seen")
	exit_ms+=("$end")
	echo "run $i: init after $seen ms, exit after $end ms" >&2
done

python3 - "$kernel" "$(nproc)" "${CLOISTER_PARENT_INSTANCE:-0}" "${marker_ms[*]}" "${exit_ms[*]}" <<'PY'
import json, statistics, sys
kernel, cpus, in_parent, marker, exited = sys.argv[1:6]
marker = [int(x) for x in marker.split()]
exited = [int(x) for x in exited.split()]
print(json.dumps({
    "bench": "microvm_reference",
    "what": "QEMU microvm (rtc=on, acpi=on, isa-serial) + Debian cloud kernel + static init, 256 MiB, 1 vCPU",
    "kernel": kernel.rsplit("/", 1)[-1],
    "where": "parent-instance" if in_parent == "1" else "direct",
    "host_cpus": int(cpus),
    "runs": len(marker),
    "launch_to_init_ms": {"median": statistics.median(marker), "min": min(marker), "max": max(marker), "all": marker},
    "launch_to_exit_ms": {"median": statistics.median(exited), "min": min(exited), "max": max(exited), "all": exited},
}, indent=2))
PY
