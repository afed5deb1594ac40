# Helpers for tests/e2e/test_*.sh. Source it:  . "$(dirname "$0")/lib/common.sh"
# Tests run where KVM works (inside the parent instance, or on a host with real KVM), from the
# project tree at its real path, with build/ built. /tmp is private scratch.

E2E_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
E2E_BUILD=$E2E_TOP/build
E2E_CLI=$E2E_BUILD/src/cli/cloister

# Fail the test with a reason (the runner prints it as the test's output).
e2e_fail() {
	echo "$*"
	exit 1
}

# Skip explicitly: the runner counts it and prints the reason as "SKIP name: reason".
e2e_skip() {
	echo "$*"
	exit 77
}

# A file that must exist in build/ (built by scripts/test.sh or ninja -C build).
e2e_need_built() {
	[ -e "$E2E_BUILD/$1" ] || e2e_fail "missing build/$1: build the project first (ninja -C build)"
	echo "$E2E_BUILD/$1"
}

# The unpacked Debian cloud kernel package for enclaves (cached on the host by tests/e2e/run).
e2e_enclave_kernel_dir() {
	bash "$E2E_TOP/scripts/fetch-kernel.sh" enclave
}

# Its bzImage.
e2e_enclave_kernel() {
	local d
	d=$(e2e_enclave_kernel_dir) || e2e_fail "scripts/fetch-kernel.sh enclave failed"
	ls "$d"/boot/vmlinuz-* | head -1
}

# Milliseconds on the monotonic-enough wall clock, for "launch → X" timings.
e2e_now_ms() {
	echo $(($(date +%s%N) / 1000000))
}
