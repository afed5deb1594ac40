#!/usr/bin/env bash
# e2e-timeout: 600
# Refusals happen before anything starts, with a message naming the value and the fix:
# too little memory, an image more than a quarter of memory, a bad EIF, hugepages short.
. "$(dirname "$0")/monitor-lib.sh"

kernel=$(enclave_kernel) || { fail "no enclave kernel"; finish; }
build_initrd || { fail "cannot build the test initramfs"; finish; }
ensure_hugepages 512
image_args "console=ttyS0 panic=-1 reboot=k" "$kernel" "$work/initrd.cpio" ||
	{ fail "cannot build the EIF"; finish; }

# expect NAME STATUS PATTERN ARGS...: exit STATUS, stderr matching PATTERN, no console output,
# and every hugepage still free afterwards.
expect() {
	local name=$1 want=$2 pat=$3 before after rc
	shift 3
	before=$(free_hugepages)
	run_monitor "$work/err.out" "$work/err.err" 60 "$@"
	rc=$?
	after=$(free_hugepages)
	if [ "$rc" -eq "$want" ] && grep -qE "$pat" "$work/err.err" && [ ! -s "$work/err.out" ] &&
		[ "$before" = "$after" ]; then
		pass "$name: exit $rc, \"$(head -n 1 "$work/err.err" | cut -c1-150)\""
	else
		fail "$name: exit $rc (want $want), hugepages $before -> $after"
		cat "$work/err.err"
	fi
}

expect "memory below 64 MiB" 2 "below the 64 MiB minimum; use --memory 64" \
	"${IMAGE_ARGS[@]}" --memory 32 --cpu-count 1 --debug-mode
expect "memory not a multiple of 2" 2 "not a multiple of 2 MiB" \
	"${IMAGE_ARGS[@]}" --memory 129 --cpu-count 1 --debug-mode

# An image of more than 16 MiB cannot run in 64 MiB (nitro-cli's 4x rule).
head -c $((20 * 1024 * 1024)) /dev/zero >"$work/pad.bin"
if have_build_eif; then
	make_eif "$work/big.eif" "console=ttyS0" "$kernel" "$work/initrd.cpio" "$work/pad.bin" &&
		expect "image more than memory/4" 2 "less than 4 times .* use --memory [0-9]+" \
			--eif "$work/big.eif" --memory 64 --cpu-count 1 --debug-mode
else
	expect "image more than memory/4" 2 "less than 4 times" --kernel "$kernel" \
		--initrd "$work/pad.bin" --memory 64 --cpu-count 1 --debug-mode
fi

head -c 100000 /dev/urandom >"$work/garbage.eif"
if have_build_eif; then
	expect "bad EIF" 5 "garbage.eif" --eif "$work/garbage.eif" --memory 64 --cpu-count 1 \
		--debug-mode
	cp "$(ls "$work"/*.eif | grep -v -e big -e garbage -e corrupt | head -1)" "$work/corrupt.eif"
	printf 'XXXX' | dd of="$work/corrupt.eif" bs=1 seek=5000 conv=notrunc status=none
	expect "EIF with a bad CRC" 5 "corrupt.eif" --eif "$work/corrupt.eif" --memory 256 \
		--cpu-count 1 --debug-mode
fi
expect "kernel that is not a bzImage" 5 "bzImage" --kernel "$work/garbage.eif" \
	--initrd "$work/initrd.cpio" --memory 64 --cpu-count 1 --debug-mode
expect "missing EIF" 5 "cannot read" --eif "$work/does-not-exist.eif" --memory 64 \
	--cpu-count 1

free=$(free_hugepages)
expect "hugepages short" 4 "need [0-9]+ more 2 MiB hugepages.*nr_hugepages" \
	"${IMAGE_ARGS[@]}" --memory $(((free + 8) * 2)) --cpu-count 1 --debug-mode
expect "CPU outside the grant" 6 "CPU 1000 is not available" \
	"${IMAGE_ARGS[@]}" --memory 128 --cpu-ids 1000 --debug-mode
expect "reserved CID" 2 "not a usable enclave CID" \
	"${IMAGE_ARGS[@]}" --memory 128 --cpu-count 1 --cid 3
finish
