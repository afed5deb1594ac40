#!/usr/bin/env bash
# Density (issue 9, P6): N enclaves launched at once in one parent instance, each small (MEM MiB,
# 1 vCPU) — all must boot (send the Nitro heartbeat), all must terminate, and everything they
# held must come back: hugepages, host sockets, CIDs, processes. The same N QEMU `microvm` +
# vhost-vsock guests (the same kernel and tests/e2e/vsock-init initramfs) are the comparison:
# ours/theirs = seconds from the first launch until the last heartbeat. RUNS rounds, the sides
# alternating who goes first in each; the median of the rounds is reported.
#
# CPUs — a deliberate oversubscription. The enclave pool (cloister allocator, nitro-cli
# run-enclave) gives each vCPU a CPU of its own and never CPU 0 (docs/resources.md), so a
# parent instance with 3 CPUs holds 2 enclaves, and a third run-enclave fails with E22 (test_35).
# Density beyond the pool's CPUs is only possible by sharing, so this runs the raw
# cloister-monitor (which pins each vCPU to the --cpu-ids CPU it is given but does not keep a
# pool): enclave i gets CPU 1 + (i mod (ncpu − 1)), i.e. 8 enclaves on CPUs 1–2 of a 3-CPU
# parent instance take 4 each. Every process of both sides (our monitors and QEMU) is confined
# to the same CPUs 1..ncpu−1 with taskset, so CPU 0 stays with the parent and both sides compete
# for the same CPUs. With one CPU only, everything shares CPU 0.
#
# Memory: ours needs N × MEM MiB of 2 MiB hugepages (reserved here); QEMU's guests take ordinary
# pages as they touch them. The defaults (8 × 128 MiB = 1 GiB of hugepages) need a parent
# instance of 2 GiB or more: E2E_MEMORY=3072 leaves room for the QEMU side as well.
#
# Run where KVM works:
#   E2E_MEMORY=3072 tests/e2e/run --bench bench/density.sh [N] [MEM_MIB] [RUNS]
# (defaults 8, 128, 3). Prints one JSON object (bench/results/density.json through the runner).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-8}
mem=${2:-128}
runs=${3:-3}
. "$top/bench/lib/vsock-image.sh"
bench_vsock_image density

want=$((n * mem / 2))
bench_hugepages "$want" || {
	echo "density: need $want free 2 MiB hugepages for $n x $mem MiB, have" \
		"$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages) (raise E2E_MEMORY)" >&2
	exit 1
}

exec /usr/bin/python3 "$top/bench/lib/density.py" --n "$n" --memory "$mem" --runs "$runs" \
	--work "$work" --kernel "$kernel" --cmdline "$cmdline" \
	--monitor "$build/src/vmm/cloister-monitor" --microvm "$top/tests/e2e/lib/microvm.sh"
