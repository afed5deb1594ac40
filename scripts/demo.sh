#!/usr/bin/env bash
# The main job (README.md, docs/demo.md): on a fresh Debian 12 machine, set up, build cloister,
# build the demo enclave image without Docker, then boot it, show it, talk to it over vsock,
# verify its attestation document offline, terminate it and print a report.
# Where this host's /dev/kvm cannot boot Linux (`cloister parent-instance check`), the enclave
# part (scripts/demo-inside.sh) runs inside ONE parent instance instead.
# Idempotent: every step reuses what is already there. Exit status 0 only if all worked.
# Environment: DEMO_FORCE_PARENT=1 uses the parent instance even where KVM is direct.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
cli=$top/build/src/cli/cloister

step() { printf '\n=== %s\n' "$*"; }
fail() {
	echo "demo: FAILED: $*" >&2
	exit 1
}

step "1/4 setup: Debian packages (scripts/setup.sh)"
bash scripts/setup.sh || fail "scripts/setup.sh failed (it needs root or sudo for apt)"

step "2/4 build: meson + ninja"
[ -f build/build.ninja ] || meson setup build >/dev/null || fail "meson setup build failed"
ninja -C build >/dev/null || fail "ninja -C build failed (run it by hand to see why)"
echo "cloister built: $("$cli" --version)"

step "3/4 the demo enclave image: build-enclave --rootfs (no Docker)"
# The enclave kernel is fetched here, on the host: the parent instance has no network.
eif=$(bash scripts/build-demo-image.sh build) || fail "building the demo image failed"
sed 's/^/  /' build/demo/demo.json

step "4/4 run it"
set +e
check=$("$cli" parent-instance check 2>&1)
verdict=$?
set -e
echo "$check" | sed 's/^/  kvm check: /'
case $verdict in
0) where=direct ;;
101 | 102) where=parent ;;
*) fail "cloister parent-instance check failed (exit $verdict)" ;;
esac
[ "${DEMO_FORCE_PARENT:-0}" = 1 ] && where=parent

if [ "$where" = direct ]; then
	echo "  this host's KVM boots enclaves: running the demo here"
	sudo=()
	[ "$(id -u)" -eq 0 ] || sudo=(sudo --preserve-env=CLOISTER_CA_DIR,TMPDIR)
	exec "${sudo[@]}" bash scripts/demo-inside.sh "$eif"
fi

echo "  this host's KVM cannot boot enclaves: running the demo inside one parent instance"
bash scripts/fetch-kernel.sh parent >/dev/null || fail "scripts/fetch-kernel.sh parent failed"
set +e
"$cli" parent-instance run --workdir "$top" --timeout 900 -- bash scripts/demo-inside.sh "$eif"
rc=$?
set -e
case $rc in
0) ;;
124) fail "the parent instance timed out (900 s)" ;;
125) fail "the parent instance itself failed (see the console tail above)" ;;
*) fail "the demo inside the parent instance failed (exit $rc)" ;;
esac
