/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `cloister parent-instance check|run`: decide whether this host's KVM boots enclaves directly,
 * and run a command inside the parent instance when it does not. docs/parent-instance.md.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/parent/parent.h"
#include "lib/platform/kvm_probe.h"

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: cloister parent-instance check [--device PATH] [--quiet]\n"
	        "       cloister parent-instance run [OPTIONS] -- CMD [ARG...]\n"
	        "\n"
	        "check  Probe the host's KVM (times a tiny ring-0 loop in a throw-away VM) and\n"
	        "       print the verdict and the reason. Exit status: 0 direct (enclaves boot on\n"
	        "       this host's /dev/kvm), %d needs the parent instance (KVM emulates guest\n"
	        "       kernel code), %d no usable KVM; other values are usage errors.\n"
	        "run    Boot the parent instance (QEMU, software emulation, emulated AMD-V) with\n"
	        "       the host's / read-only and the work directory writable, run CMD in the\n"
	        "       current directory, stream its output and exit with its status\n"
	        "       (%d: timed out, %d: the parent instance failed). 'run --help' for "
	        "options.\n",
	        PARENT_CHECK_EXIT_NEEDS_PARENT, PARENT_CHECK_EXIT_NO_KVM, PARENT_EXIT_TIMEOUT,
	        PARENT_EXIT_FAILED);
}

static int cmd_check(int argc, char **argv)
{
	struct kvm_probe_result res;
	struct cl_diag d = { { 0 } };
	const char *device = NULL;
	int quiet = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
			quiet = 1;
		} else if (!strcmp(argv[i], "--device") && i + 1 < argc) {
			device = argv[++i];
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			return cli_fail(E_INVALID_ARGUMENT,
			                "unknown argument '%s' to 'parent-instance check'",
			                argv[i]);
		}
	}
	if (kvm_probe_run(device, &res, &d) != KVM_PROBE_OK)
		return cli_fail(E_UNSPECIFIED, "the KVM probe could not run: %s", d.msg);
	if (!quiet) {
		printf("verdict: %s\n", kvm_probe_verdict_name(res.verdict));
		printf("reason: %s\n", res.reason);
	}
	switch (res.verdict) {
	case KVM_PROBE_DIRECT:
		return 0;
	case KVM_PROBE_NEEDS_PARENT_INSTANCE:
		return PARENT_CHECK_EXIT_NEEDS_PARENT;
	case KVM_PROBE_NO_KVM:
		break;
	}
	return PARENT_CHECK_EXIT_NO_KVM;
}

int cmd_parent_instance(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return E_MISSING_ARGUMENT;
	}
	if (!strcmp(argv[1], "check"))
		return cmd_check(argc - 1, argv + 1);
	if (!strcmp(argv[1], "run"))
		return parent_cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "cloister parent-instance: unknown action '%s'\n\n", argv[1]);
	usage(stderr);
	return E_INVALID_ARGUMENT;
}
