#!/usr/bin/env bash
# What every later e2e test relies on, checked where the tests run (the parent instance, or a
# host with real KVM): KVM boots guests directly, enclave memory (hugepages) is there, the tree is
# writable at its own path and /tmp is private scratch.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
top=$E2E_TOP
cli=$(e2e_need_built src/cli/cloister)
fail() { e2e_fail "$@"; }

out=$("$cli" parent-instance check) || fail "KVM here cannot boot enclaves: $out"
echo "$out"

hp=$(awk '/^HugePages_Total:/ {print $2}' /proc/meminfo)
[ "${hp:-0}" -gt 0 ] || fail "no hugepages reserved (HugePages_Total=${hp:-?}); enclaves need them"
echo "hugepages: $hp x $(awk '/^Hugepagesize:/ {print $2 $3}' /proc/meminfo)"

[ -c /dev/vhost-vsock ] && echo "vhost-vsock: present" || echo "vhost-vsock: absent (reference heartbeat only)"

probe=$top/build/.e2e-write-probe.$$
echo ok >"$probe" || fail "the project tree $top is not writable here"
rm -f "$probe"
echo "tree writable: $top"

scratch=$(mktemp)
echo ok >"$scratch" && rm -f "$scratch" || fail "cannot write to $(dirname "$scratch")"

if [ "${CLOISTER_PARENT_INSTANCE:-0}" = 1 ]; then
	# Inside, the host's own files must stay untouchable.
	if touch /etc/.cloister-e2e-probe 2>/dev/null; then
		rm -f /etc/.cloister-e2e-probe
		fail "the host root is writable from the parent instance"
	fi
	echo "host root: read-only"
fi
