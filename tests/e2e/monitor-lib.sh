# Shared by tests/e2e/test_1*_monitor_*.sh (sourced). They run where /dev/kvm can boot Linux:
# inside the parent instance (`cloister parent-instance run -- bash tests/e2e/test_10_...sh`)
# or on a host with hardware KVM. Each test prints PASS/FAIL lines and exits non-zero on failure.
set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${CLOISTER_BUILD_DIR:-$top/build}
monitor=$build/src/vmm/cloister-monitor
cloister=$build/src/cli/cloister
work=$build/e2e-monitor
mkdir -p "$work"

failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
finish() {
	if [ "$failures" -eq 0 ]; then
		echo "PASS: $(basename "$0")"
		exit 0
	fi
	echo "FAIL: $(basename "$0") ($failures failed)"
	exit 1
}

enclave_kernel() {
	local dir
	dir=$("$top/scripts/fetch-kernel.sh" enclave) || return 1
	ls "$dir"/boot/vmlinuz-* | head -1
}

# The test init (monitor-init.c) in a one-file newc initramfs: $work/initrd.cpio
build_initrd() {
	[ -f "$work/initrd.cpio" ] && [ "$work/initrd.cpio" -nt "$top/tests/e2e/monitor-init.c" ] &&
		[ "$work/initrd.cpio" -nt "$top/include/cloister/boot_timer.h" ] && return 0
	rm -rf "$work/root" && mkdir -p "$work/root" || return 1
	gcc -static -Os -s -I"$top/include" -o "$work/root/init" "$top/tests/e2e/monitor-init.c" ||
		return 1
	(cd "$work/root" && echo init | cpio -o -H newc --quiet >"$work/initrd.cpio.tmp") &&
		mv "$work/initrd.cpio.tmp" "$work/initrd.cpio"
}

# build_vsock_initrd DIR KERNEL: the vsock test init (tests/e2e/vsock-init.c: heartbeat, echo on
# 5000, control on 5001) with KERNEL's vsock modules, as DIR/initrd.cpio (DIR/root is scratch).
build_vsock_initrd() {
	local dir=$1 kernel=$2 root=$1/root moddir m f
	moddir=$(dirname "$(dirname "$kernel")")/lib/modules/${kernel##*/vmlinuz-}
	rm -rf "$root" && mkdir -p "$root/modules" || return 1
	gcc -static -Os -s -I"$top/include" -o "$root/init" "$top/tests/e2e/vsock-init.c" || return 1
	for m in virtio_mmio vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport; do
		f=$(find "$moddir" -name "$m.ko.xz" | head -1)
		[ -n "$f" ] || return 1
		xz -dc "$f" >"$root/modules/$m.ko" || return 1
		echo "$m" >>"$root/modules/order"
	done
	(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet >"$dir/initrd.cpio")
}

have_build_eif() {
	"$cloister" build-eif --help >/dev/null 2>&1
}

# make_eif OUT CMDLINE KERNEL [RAMDISK...]: an EIF from the project's own builder.
make_eif() {
	local out=$1 cmdline=$2 kernel=$3
	shift 3
	local rd=() r
	for r in "$@"; do rd+=(--ramdisk "$r"); done
	"$cloister" build-eif --kernel "$kernel" --cmdline "$cmdline" "${rd[@]}" \
		--output "$out" >/dev/null
}

# image_args CMDLINE KERNEL RAMDISK: the monitor arguments that boot these, from an EIF when
# `cloister build-eif` exists, else directly (development path). Sets the array IMAGE_ARGS.
image_args() {
	local cmdline=$1 kernel=$2 ramdisk=$3 eif
	if have_build_eif; then
		# Keyed by content, not names: tests rebuild their initramfs in place.
		eif=$work/$( (echo "$cmdline"; cat "$kernel" "$ramdisk") | md5sum | cut -c1-12).eif
		[ -f "$eif" ] || make_eif "$eif" "$cmdline" "$kernel" "$ramdisk" || return 1
		IMAGE_ARGS=(--eif "$eif")
	else
		echo "note: cloister build-eif not available yet; booting kernel + initrd directly"
		IMAGE_ARGS=(--kernel "$kernel" --initrd "$ramdisk" --cmdline "$cmdline")
	fi
}

# Make sure at least MiB of 2 MiB hugepages are free (root in the parent instance).
ensure_hugepages() {
	local want=$(($1 / 2)) free total
	free=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages)
	total=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)
	if [ "$free" -lt "$want" ]; then
		echo $((total + want - free)) >/proc/sys/vm/nr_hugepages 2>/dev/null || true
	fi
}

free_hugepages() {
	cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages
}

# run_monitor OUTFILE ERRFILE TIMEOUT ARGS...: run the monitor, return its exit status.
run_monitor() {
	local out=$1 err=$2 t=$3
	shift 3
	timeout -k 5 "$t" "$monitor" "$@" >"$out" 2>"$err"
}

# blob_setup_header: the first 1024 + 0x200 bytes of a bzImage-shaped file whose 64-bit entry is
# the next byte. Setup header per Documentation/arch/x86/boot.rst: 1 setup sector, boot flag,
# "HdrS", protocol 2.15, XLF_KERNEL_64; protected-mode code at file offset 1024 (loaded at
# 1 MiB), entry at +0x200.
blob_setup_header() {
	head -c $((0x1f1)) /dev/zero
	printf '\x01'                  # 0x1f1 setup_sects
	head -c $((0x1fe - 0x1f2)) /dev/zero
	printf '\x55\xaa'              # 0x1fe boot_flag
	printf '\xeb\x66'              # 0x200 jump: header ends at 0x268
	printf 'HdrS'                  # 0x202
	printf '\x0f\x02'              # 0x206 version 2.15
	head -c $((0x22c - 0x208)) /dev/zero
	printf '\xff\xff\xff\x7f'      # 0x22c initrd_addr_max
	printf '\x00\x00\x20\x00'      # 0x230 kernel_alignment
	printf '\x00\x00'              # 0x234
	printf '\x01\x00'              # 0x236 xloadflags: XLF_KERNEL_64
	printf '\xff\x07\x00\x00'      # 0x238 cmdline_size
	head -c $((0x260 - 0x23c)) /dev/zero
	printf '\x00\x00\x10\x00'      # 0x260 init_size
	head -c $((1024 - 0x264)) /dev/zero
	head -c $((0x200)) /dev/zero   # 32-bit entry area (unused)
}

# make_blob_kernel OUT CODE: a bzImage-shaped file whose 64-bit entry runs CODE (a printf
# format of \x escapes).
make_blob_kernel() {
	{
		blob_setup_header
		printf "$2"
		head -c 4096 /dev/zero
	} >"$1"
}

# make_blob_kernel_file OUT BIN: the same around a flat binary linked to run at the entry
# (1 MiB + 0x200), e.g. build/tests/e2e/hostile-guest.bin.
make_blob_kernel_file() {
	{
		blob_setup_header
		cat "$2"
		head -c 4096 /dev/zero
	} >"$1"
}

# allowed_cpus: the CPUs this shell may run on, one per line, ascending (Cpus_allowed_list
# expanded: "0-2,5" → 0 1 2 5).
allowed_cpus() {
	local list r
	list=$(awk '$1 == "Cpus_allowed_list:" { print $2 }' /proc/self/status)
	for r in ${list//,/ }; do
		seq "${r%-*}" "${r#*-}"
	done
}

# ram_mapping PID MiB: the smaps fields of PID's mappings of exactly MiB, one line each:
# "KernelPageSize_kB Private_Hugetlb_kB Shared_Hugetlb_kB Locked_kB VmFlags...".
ram_mapping() {
	awk -v want=$(($2 * 1024)) '
		function flush() { if (size == want) print kps, ph, sh, lk, flags }
		/^[0-9a-f]+-[0-9a-f]+ / { flush(); size = kps = ph = sh = lk = 0; flags = ""; next }
		$1 == "Size:" { size = $2 }
		$1 == "KernelPageSize:" { kps = $2 }
		$1 == "Private_Hugetlb:" { ph = $2 }
		$1 == "Shared_Hugetlb:" { sh = $2 }
		$1 == "Locked:" { lk = $2 }
		$1 == "VmFlags:" { $1 = ""; flags = substr($0, 2) }
		END { flush() }' "/proc/$1/smaps"
}

# check_guest_ram PID MiB: the monitor's guest RAM is one hugetlb mapping of MiB whose every
# page is present (docs/design.md "Guest memory": hugetlbfs-backed, pre-faulted, locked).
# "Locked" cannot be read back: mlock() on a hugetlb mapping is a no-op in the kernel's
# accounting (mm/mlock.c, mlock_fixup: "don't set VM_LOCKED ... and don't count"), so VmLck,
# smaps' Locked: and the "lo" flag stay 0 for it whatever the monitor does. What makes the
# memory unswappable is that it is hugetlb, which the kernel never swaps or reclaims; so
# "hugetlb + every page present" is the whole property, and that is what this checks.
check_guest_ram() {
	local pid=$1 mib=$2 maps kps ph sh lk flags
	maps=$(ram_mapping "$pid" "$mib")
	if [ "$(wc -l <<<"$maps")" -ne 1 ] || [ -z "$maps" ]; then
		fail "guest RAM: want one mapping of $mib MiB in /proc/$pid/smaps, found: ${maps:-none}"
		return
	fi
	read -r kps ph sh lk flags <<<"$maps"
	if [ "$kps" -ge 2048 ] && [[ " $flags " == *" ht "* ]]; then
		pass "guest RAM: one hugetlb mapping of $mib MiB (KernelPageSize $kps kB, VmFlags $flags)"
	else
		fail "guest RAM of $mib MiB is not hugetlb: KernelPageSize $kps kB, VmFlags $flags"
	fi
	if [ $((ph + sh)) -eq $((mib * 1024)) ]; then
		pass "guest RAM: all $mib MiB present (Private_Hugetlb $ph kB + Shared_Hugetlb $sh kB)"
	else
		fail "guest RAM: only $((ph + sh)) of $((mib * 1024)) kB present (not pre-faulted)"
	fi
	echo "note: VmLck $(awk '$1 == "VmLck:" { print $2, $3 }' "/proc/$pid/status"), smaps Locked: $lk kB (hugetlb is not counted as locked)"
}

# check_vcpu_pinning PID CPU...: PID has one thread named vcpuI per CPU given, and vcpuI may
# run on the I-th CPU only. --ready-fd can come before the vCPU threads have got that far; a
# thread names itself right after pinning itself (vcpu.c), so wait for the names.
check_vcpu_pinning() {
	local pid=$1 i=0 cpu task got found
	shift
	for _ in $(seq 1 60); do
		[ -d "/proc/$pid" ] || break
		[ "$(cat /proc/"$pid"/task/*/comm 2>/dev/null | grep -c '^vcpu')" -ge $# ] && break
		sleep 0.5
	done
	for cpu in "$@"; do
		found=""
		for task in /proc/"$pid"/task/*; do
			[ "$(cat "$task/comm" 2>/dev/null)" = "vcpu$i" ] || continue
			[ -z "$found" ] || { fail "two threads named vcpu$i"; return; }
			found=$task
		done
		if [ -z "$found" ]; then
			fail "no thread named vcpu$i in /proc/$pid/task (threads: $(cat /proc/"$pid"/task/*/comm | tr '\n' ' '))"
		else
			got=$(awk '$1 == "Cpus_allowed_list:" { print $2 }' "$found/status")
			[ "$got" = "$cpu" ] && pass "vcpu$i (tid ${found##*/}) is pinned to CPU $cpu" ||
				fail "vcpu$i (tid ${found##*/}) may run on CPUs $got, want only $cpu"
		fi
		i=$((i + 1))
	done
	got=$(cat /proc/"$pid"/task/*/comm | grep -c '^vcpu')
	[ "$got" -eq $# ] || fail "$got threads named vcpu*, want $#"
	# The other threads (devices, memory) stay off the enclave's CPUs when there are others.
	# Not KVM's own workers in the process (kvm-nx-lpage-recovery, started by the first KVM_RUN
	# with that vCPU's affinity; it sleeps unless the host mitigates iTLB multihit).
	local others=0 bad="" list r c
	for task in /proc/"$pid"/task/*; do
		case "$(cat "$task/comm" 2>/dev/null)" in vcpu* | kvm-*) continue ;; esac
		others=$((others + 1))
		list=$(awk '$1 == "Cpus_allowed_list:" { print $2 }' "$task/status" 2>/dev/null)
		for r in ${list//,/ }; do
			for c in $(seq "${r%-*}" "${r#*-}"); do
				for cpu in "$@"; do
					[ "$c" = "$cpu" ] && bad="$bad $(cat "$task/comm" 2>/dev/null)(${task##*/}):$list"
				done
			done
		done
	done
	if [ "$(allowed_cpus | wc -l)" -le $# ]; then
		echo "note: no CPU outside the enclave's here; not checking the other threads"
	elif [ -z "$bad" ]; then
		pass "the monitor's $others other thread(s) stay off the enclave's CPUs ($*)"
	else
		fail "monitor threads may run on the enclave's CPUs ($*):$bad"
	fi
}

# ---- fault audits (tests/e2e/test_37_faults.sh; docs/security.md "Faults") -----------------
# audit_snapshot, with the pool configured and no enclave running, records the clean state;
# audit_released LABEL then checks, against it, that everything an enclave took is back:
#   - free 2 MiB hugepages as many as in the snapshot;
#   - no file left in <state>/enclaves (a grant, or a grant's temp file);
#   - no socket left in <state> (a control <slot>.sock, an <EnclaveID>.vsock);
#   - no process running the cloister binaries that was not there at the snapshot (cloister,
#     cloister-enclave, which run-enclave's enclave process execs, cloister-monitor, and
#     cloister-nsmd, which ends a second after its last enclave's session);
#   - `nitro-cli describe-enclaves` prints [];
#   - the pool record (pool.conf: CPUs, memory, hugepages reserved) unchanged, so with no
#     grant every pool CPU is free.
# The state directory is $NITRO_CLI_SOCKETS_PATH. An enclave process still ending gets up to
# AUDIT_SETTLE_S (default 20) seconds to exit; then each check runs once, the files before
# describe-enclaves (which would clean up after a dead enclave process and hide a leak), and
# every check that failed is named.

# Pids of processes whose executable is cloister (nitro-cli is a link to it), the enclave
# process run-enclave execs (cloister-enclave, next to cloister) or the monitor.
audit_cloister_pids() {
	local p e want1 want2 want3 want4
	want1=$(readlink -f "$cloister")
	want2=$(readlink -f "$monitor")
	want3=$(readlink -f "$(dirname "$cloister")/cloister-enclave")
	want4=$(readlink -f "$build/src/nsmd/cloister-nsmd")
	for p in /proc/[0-9]*; do
		e=$(readlink "$p/exe" 2>/dev/null) || continue
		[ "$e" = "$want1" ] || [ "$e" = "$want2" ] || [ "$e" = "$want3" ] || [ "$e" = "$want4" ] || continue
		echo "${p#/proc/}"
	done
}

audit_snapshot() {
	AUDIT_T=$SECONDS
	AUDIT_HP=$(free_hugepages)
	AUDIT_PIDS=" $(audit_cloister_pids | tr '\n' ' ') "
	AUDIT_POOL=$(cat "$NITRO_CLI_SOCKETS_PATH/pool.conf" 2>/dev/null)
}

# audit_new_pids: cloister processes that were not there at the snapshot, as "pid(cmdline)".
audit_new_pids() {
	local p
	for p in $(audit_cloister_pids); do
		[[ "$AUDIT_PIDS" == *" $p "* ]] && continue
		printf ' %s(%s)' "$p" "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-60)"
	done
}

# audit_problems: the failed checks, one per line (nothing when all is released).
audit_problems() {
	local state=$NITRO_CLI_SOCKETS_PATH hp left socks extra d
	extra=$(audit_new_pids)
	[ -z "$extra" ] || echo "cloister processes left:$extra"
	hp=$(free_hugepages)
	[ "$hp" = "$AUDIT_HP" ] || echo "hugepages: $hp free, want $AUDIT_HP"
	left=$(ls -A "$state/enclaves" 2>/dev/null | tr '\n' ' ')
	[ -z "$left" ] || echo "left in $state/enclaves: $left"
	socks=$(find "$state" -maxdepth 1 \( -type s -o -name '*.sock' -o -name '*.vsock' \) \
		-printf '%f ' 2>/dev/null)
	[ -z "$socks" ] || echo "sockets left in $state: $socks"
	[ "$(cat "$state/pool.conf" 2>/dev/null)" = "$AUDIT_POOL" ] ||
		echo "pool record $state/pool.conf changed or gone"
	d=$("$build/src/cli/nitro-cli" describe-enclaves 2>&1 | tr -d ' \n')
	[ "$d" = "[]" ] || echo "describe-enclaves: $(echo "$d" | cut -c1-200)"
}

audit_released() {
	local label=$1 problems
	for _ in $(seq $((${AUDIT_SETTLE_S:-20} * 2))); do
		[ -z "$(audit_new_pids)" ] && break
		sleep 0.5
	done
	problems=$(audit_problems)
	# How long the case took, audit included: the time since the snapshot or the last audit.
	echo "note: $label: $((SECONDS - ${AUDIT_T:-0})) s since the last audit"
	AUDIT_T=$SECONDS
	if [ -z "$problems" ]; then
		pass "AUDIT $label: $AUDIT_HP hugepages free, no grant, no socket, no enclave process, describe-enclaves [], pool record intact"
	else
		fail "AUDIT $label: $(echo "$problems" | paste -sd ';' -)"
	fi
}

# e2e_nitro_dir NAME: a fresh w=$work/NAME holding nitro-cli's sockets and logs and a CA of its
# own (NITRO_CLI_SOCKETS_PATH, NITRO_CLI_LOGS_PATH, CLOISTER_CA_DIR exported).
e2e_nitro_dir() {
	w=$work/$1
	rm -rf "$w" && mkdir -p "$w" || exit 1
	export NITRO_CLI_SOCKETS_PATH=$w/run NITRO_CLI_LOGS_PATH=$w/log CLOISTER_CA_DIR=$w/ca
	"$cloister" ca init >/dev/null || { fail "cloister ca init"; finish; }
}

# demo_monitor_start DIR EIF ENCLAVE_ID CID [MONITOR ARGS...]: cloister-monitor with an NSM
# boots a demo image (scripts/build-demo-image.sh), its vsock at DIR/enclave.vsock and its
# output in DIR/monitor.{out,err}; waits for the heartbeat and for the app on vsock port 5000
# (scripts/demo-lib.sh's forwarder). Non-zero, after a FAIL line, if either never comes.
# DEMO_MON_PID is the monitor; demo_monitor_stop ends it and the forwarder.
DEMO_MON_PID=
demo_monitor_start() {
	local dir=$1 img=$2 id=$3 cid=$4
	shift 4
	rm -f "$dir/booted"
	"$monitor" --eif "$img" --memory 256 --cpu-count 1 --cid "$cid" \
		--vsock-uds "$dir/enclave.vsock" --heartbeat-timeout 180 --booted-fd 3 \
		--enclave-id "$id" "$@" 3>"$dir/booted" >"$dir/monitor.out" 2>"$dir/monitor.err" &
	DEMO_MON_PID=$!
	for _ in $(seq 1800); do
		grep -q booted "$dir/booted" 2>/dev/null && break
		kill -0 "$DEMO_MON_PID" 2>/dev/null || break
		sleep 0.1
	done
	if ! grep -q booted "$dir/booted" 2>/dev/null; then
		fail "enclave $id did not boot: $(tail -3 "$dir/monitor.err")"
		return 1
	fi
	DEMO_FWD_LOG=$dir/forward.err
	demo_forward_start --uds "$dir/enclave.vsock" || { fail "cloister vsock-forward"; return 1; }
	if ! demo_wait 120 >/dev/null; then
		fail "the demo app never answered on vsock port 5000"
		tail -20 "$dir/console.log" 2>/dev/null
		return 1
	fi
}

demo_monitor_stop() {
	demo_forward_stop
	[ -n "$DEMO_MON_PID" ] || return 0
	kill "$DEMO_MON_PID" 2>/dev/null
	wait "$DEMO_MON_PID" 2>/dev/null
	DEMO_MON_PID=
}
