#!/usr/bin/env bash
# e2e-timeout: 600
# The virtio-mmio transport with the real Linux drivers: the cloud kernel's virtio_mmio binds the
# LNRO0005 device from our DSDT, nsm.ko binds the virtio-nsm device (id 33) behind it, and a
# DescribeNSM through /dev/nsm comes back with the enclave id the monitor was given.
. "$(dirname "$0")/monitor-lib.sh"

kernel=$(enclave_kernel) || { fail "no enclave kernel"; finish; }
kdir=$(dirname "$(dirname "$kernel")")
build_initrd || { fail "cannot build the test initramfs"; finish; }
ensure_hugepages 512
have_build_eif || { echo "cloister build-eif is not available"; exit 77; }

# initramfs: the test init plus the two modules, decompressed
root=$work/root-nsm
rm -rf "$root" && mkdir -p "$root/modules" && cp "$work/root/init" "$root/init" || exit 1
for m in virtio_mmio nsm; do
	f=$(find "$kdir"/lib/modules/*/kernel -name "$m.ko*" | head -1)
	[ -n "$f" ] || { fail "module $m not in $kdir"; finish; }
	xz -dc "$f" >"$root/modules/$m.ko" || exit 1
done
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) \
	>"$work/initrd-nsm.cpio"
make_eif "$work/nsm.eif" "console=ttyS0 panic=-1 reboot=k quiet e2e_nsm=1" "$kernel" \
	"$work/initrd-nsm.cpio" || { fail "cannot build the EIF"; finish; }

id=i-0e2e0e2e0e2e0e2e0-enc0123456789abcdef
mkdir -p "$work/ca"
run_monitor "$work/nsm.out" "$work/nsm.err" 180 --eif "$work/nsm.eif" --memory 256 \
	--cpu-count 1 --debug-mode --enclave-id "$id" --ca-dir "$work/ca"
rc=$?
if [ "$rc" -eq 0 ] && grep -q "nsm: DescribeNSM answered.*$id" "$work/nsm.out"; then
	pass "DescribeNSM through /dev/nsm: $(grep -o 'answered, [0-9]* bytes' "$work/nsm.out")"
else
	fail "NSM: exit $rc"
	grep -E "nsm|virtio|LNRO" "$work/nsm.out" | head -n 10
	tail -n 5 "$work/nsm.err"
fi
finish
