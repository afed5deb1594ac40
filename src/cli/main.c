/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "vmm/sandbox/seccomp.h"

struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
};

/* Keep in the order `cloister --help` should list them. */
static const struct subcommand subcommands[] = {
	{ "build-enclave", cmd_build_enclave,
	  "Build an EIF from an OCI/Docker image archive or a directory (no Docker needed)" },
	{ "build-eif", cmd_build_eif, "Build an Enclave Image File from a kernel and ramdisks" },
	{ "describe-eif", cmd_describe_eif, "Show an EIF's version, measurements and metadata" },
	{ "pcr", cmd_pcr, "Print the PCR of a file or the PCR8 of a signing certificate" },
	{ "sign-eif", cmd_sign_eif, "Sign an EIF (adds or replaces its signature)" },
	{ "parent-instance", cmd_parent_instance,
	  "check this host's KVM; run a command in the parent instance" },
	{ "vsock-forward", cmd_vsock_forward,
	  "Forward a host TCP port to an enclave vsock port, or the reverse" },
	{ "blobs", cmd_blobs, "Assemble the default enclave kernel blobs from a Debian kernel" },
	{ "allocator", cmd_allocator,
	  "Reserve the enclave CPU pool and hugepages (/etc/cloister/allocator.yaml)" },
	{ "run-enclave", cmd_run_enclave, "Start an enclave from an EIF (nitro-cli compatible)" },
	{ "describe-enclaves", cmd_describe_enclaves, "List the running enclaves (JSON)" },
	{ "terminate-enclave", cmd_terminate_enclave,
	  "Terminate an enclave (--enclave-id, --enclave-name or --all)" },
	{ "console", cmd_console, "Stream a debug-mode enclave's console" },
	{ "explain", cmd_explain, "Explain an error code (--error-code Exx)" },
	{ "ca", cmd_ca, "create or show the host's attestation CA (init, show)" },
	{ "verify-attestation", cmd_verify_attestation,
	  "verify an NSM attestation document against a root certificate" },
	{ NULL, NULL, NULL },
};

static const char *prog = "cloister";

static void usage(FILE *out)
{
	fprintf(out,
	        "cloister %s — isolated enclaves on any Linux KVM host, "
	        "compatible with AWS Nitro Enclaves\n\n"
	        "Usage: cloister <SUBCOMMAND> [OPTIONS]\n\nSubcommands:\n",
	        CLOISTER_VERSION);
	for (size_t i = 0; subcommands[i].name; i++)
		fprintf(out, "  %-20s %s\n", subcommands[i].name, subcommands[i].help);
	fprintf(out, "\nRun 'cloister <SUBCOMMAND> --help' for its options.\n");
}

int main(int argc, char **argv)
{
	/* Installed as nitro-cli too (a symlink): the same subcommands, so scripts run unchanged.
	 * Only the program name in messages differs. */
	const char *base = argc > 0 && argv[0] ? argv[0] : "";
	const char *slash = strrchr(base, '/');

	/* The enclave process (run-enclave) sandboxes its vCPU threads: see seccomp.h. */
	sandbox_prepare_process();
	if (slash)
		base = slash + 1;
	if (!strcmp(base, "nitro-cli"))
		prog = "nitro-cli";
	if (argc < 2) {
		usage(stderr);
		return E_MISSING_ARGUMENT;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("cloister %s\n", CLOISTER_VERSION);
		return 0;
	}
	for (size_t i = 0; subcommands[i].name; i++)
		if (!strcmp(argv[1], subcommands[i].name))
			return subcommands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "%s: unknown subcommand '%s'\n\n", prog, argv[1]);
	usage(stderr);
	return E_INVALID_ARGUMENT;
}
