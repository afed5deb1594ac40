# Sourced by the vsock benchmarks (vsock-throughput.sh, memory-overhead.sh, density.sh): the
# image every side boots — the pinned Debian cloud kernel and the tests/e2e/vsock-init
# initramfs (heartbeat, echo on port 5000) — and the hugepages our side needs.

# bench_vsock_image NAME [EXTRA]: sets build, kdir, kernel, cmdline (EXTRA appended) and
# work=$build/bench-NAME (emptied), and builds $work/initrd.cpio and, from it, $work/vsock.eif.
bench_vsock_image() {
	build=$top/build
	kdir=$(bash "$top/scripts/fetch-kernel.sh" enclave)
	kernel=$(ls "$kdir"/boot/vmlinuz-* | head -1)
	work=$build/bench-$1
	rm -rf "$work" && mkdir -p "$work"
	cmdline="console=ttyS0 panic=-1 reboot=k quiet mitigations=off${2:-}"
	bash "$top/tests/e2e/lib/microvm.sh" initramfs --init "$build/tests/e2e/vsock-init" \
		--out "$work/initrd.cpio" --vsock-modules "$kdir" >&2
	"$build/src/cli/cloister" build-eif --kernel "$kernel" --cmdline "$cmdline" \
		--ramdisk "$work/initrd.cpio" --output "$work/vsock.eif" >/dev/null 2>&1
}

# bench_hugepages PAGES: at least PAGES free 2 MiB hugepages, reserving more if needed;
# returns non-zero if the kernel would not give them.
bench_hugepages() {
	local want=$1 free total
	free=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages)
	total=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)
	[ "$free" -ge "$want" ] || echo $((total + want - free)) >/proc/sys/vm/nr_hugepages
	free=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages)
	[ "$free" -ge "$want" ]
}
