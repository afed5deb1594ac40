/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister-enclave: the enclave process as its own program (enclave.h). run-enclave execs it in
 * its detached grandchild, stdout and stderr already on the enclave's log, with the command
 * line enclave_argv_build() made. Not meant to be run by hand.
 */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/nitro/enclave.h"
#include "vmm/sandbox/seccomp.h"

int main(int argc, char **argv)
{
	struct run_args a;
	struct parent_identity parent;
	struct cl_diag d = { "" };
	uint64_t eif_size = 0;
	int report_fd = -1, rc;

	sandbox_prepare_process();
	rc = enclave_argv_parse(argc, argv, &a, &parent, &eif_size, &report_fd, &d);
	if (rc) {
		fprintf(stderr,
		        "%s: %s\n(this is cloister's enclave process, started by `cloister "
		        "run-enclave`; run that instead)\n",
		        ENCLAVE_EXE, d.msg);
		return rc;
	}
	return enclave_process_main(&a, &parent, eif_size, report_fd);
}
