#!/usr/bin/env bash
# Monitor memory overhead (issue 9, P4): what the VMM process holds in host memory beyond the
# guest's RAM, idle and under vsock load; cloister-monitor vs QEMU `microvm` + vhost-vsock
# booting the same kernel and initramfs (tests/e2e/vsock-init: heartbeat, echo on port 5000)
# with the same memory and vCPUs, both up at once in the same parent instance. Goal ≤ 4 MiB.
# A third series, ours_nitro_cli, is the same enclave started with `cloister run-enclave` (a
# one-CPU pool from `cloister allocator`): its enclave process, cloister-enclave, with the NSM —
# what nitro-cli users run. It starts first, so the libraries every side maps are warm in the
# page cache, as on a host already running enclaves: Rss of shared-library pages grows with the
# cache's warmth (the kernel maps cached pages around each fault), so the order matters.
#
# What is counted (per process, from /proc/PID/smaps, summed over every mapping):
#   overhead = Σ Rss − Rss of the guest-RAM mapping
# * Ours: guest RAM is MAP_HUGETLB (src/vmm/kvm/vm.c). Linux never counts hugetlb pages in
#   Rss: not in /proc/PID/status VmRSS, not in smaps' Rss, not in smaps_rollup's Rss; they show
#   up only as HugetlbPages (status) and Private_Hugetlb/Shared_Hugetlb (smaps). So our Σ Rss
#   is already "RSS minus guest RAM"; the guest-RAM mapping's Rss is 0. The JSON keeps the
#   hugetlb total beside it to show the whole guest RAM is there (pre-faulted and mlock'd).
# * QEMU: guest RAM is an ordinary anonymous mapping (rw-p, no path) of the guest's size (a few
#   KiB more for alignment), of which only the pages the guest touched are resident, and those
#   *are* in VmRSS. Subtracting the nominal guest size from VmRSS would be wrong (it can go
#   negative); we subtract that mapping's own Rss. The script refuses to report a number if it
#   cannot find exactly such a mapping.
# Both sides count shared-library pages (Rss is not Pss); detail.* has Pss and the anon/file
# split too. Kernel memory (KVM's structures, vhost's and the sockets' buffers, page tables) is
# in neither process's Rss, for either side.
#
# Idle: after the heartbeat and 2 s of quiet, the largest of 5 samples. Under load: sampled
# every 0.1 s while the parent sends SIZE MiB to the echo server and reads it back (the same
# transfer as bench/vsock-throughput.sh); the peak. RUNS rounds, the sides alternating who
# goes first; ours/theirs = median of the per-round peaks under load (load ≥ idle; the idle
# medians are in "idle").
#
# Run where KVM works:  tests/e2e/run --bench bench/memory-overhead.sh [RUNS] [SIZE_MIB]
# (defaults 3 and 32). Prints one JSON object (bench/results/memory-overhead.json through the
# runner).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
size=${2:-32}
mem=256
. "$top/bench/lib/vsock-image.sh"
bench_vsock_image memory

bench_hugepages $((mem / 2)) || true # the monitor says what is missing; the pool adds its own

exec /usr/bin/python3 "$top/bench/lib/memory_overhead.py" --runs "$runs" --size "$size" \
	--memory "$mem" --work "$work" --kernel "$kernel" --cmdline "$cmdline" \
	--monitor "$build/src/vmm/cloister-monitor" --microvm "$top/tests/e2e/lib/microvm.sh" \
	--cli "$build/src/cli/cloister"
