/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister sign-eif --eif-path F --signing-certificate C --private-key K: add or replace the
 * image's signature in place (docs/eif.md, nitro-compat §1.5), then print the measurements.
 */
#include <getopt.h>
#include <stdio.h>

#include "cli/eif/eif_common.h"

int cmd_sign_eif(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "eif-path", required_argument, NULL, 'e' },
		{ "signing-certificate", required_argument, NULL, 'c' },
		{ "private-key", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL, *cert = NULL, *key = NULL;
	struct cl_diag d = { { 0 } };
	struct eif_measurements m;
	enum eif_error err;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			path = optarg;
			break;
		case 'c':
			cert = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'h':
			printf("Usage: cloister sign-eif --eif-path FILE --signing-certificate "
			       "CERT.pem --private-key KEY.pem\n");
			return 0;
		default:
			return cli_fail(E_INVALID_ARGUMENT, "unknown or incomplete option '%s'",
			                argv[optind - 1]);
		}
	}
	if (!path || !cert || !key)
		return cli_fail(E_MISSING_ARGUMENT, "missing %s",
		                !path   ? "--eif-path"
		                : !cert ? "--signing-certificate"
		                        : "--private-key");
	err = eif_sign_file(path, cert, key, &m, &d);
	if (err) {
		enum cli_error code = E_EIF_SIGNING;

		if (err == EIF_ERR_IO)
			code = E_FILE_OPERATION;
		return cli_fail(code, "Failed to sign image: %s", d.msg);
	}
	fprintf(stderr, "Enclave Image successfully signed.\n");
	return cli_eif_print_measurements(&m);
}
