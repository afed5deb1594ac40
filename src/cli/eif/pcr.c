/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister pcr --input F | --signing-certificate C: the PCR a file would extend
 * ({"PCR": ...}) or the PCR8 of a signing certificate ({"PCR8": ...}), as nitro-cli prints them.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/eif/eif_common.h"
#include "lib/util/file.h"
#include "lib/util/hex.h"

int cmd_pcr(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "input", required_argument, NULL, 'i' },
		{ "signing-certificate", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *input = NULL, *cert = NULL;
	char hex[2 * EIF_PCR_SIZE + 1];
	uint8_t pcr[EIF_PCR_SIZE];
	struct cl_diag d = { { 0 } };
	enum eif_error err;
	struct cl_json j;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			input = optarg;
			break;
		case 'c':
			cert = optarg;
			break;
		case 'h':
			printf("Usage: cloister pcr --input FILE | --signing-certificate "
			       "CERT.pem\n");
			return 0;
		default:
			return cli_fail(E_INVALID_ARGUMENT, "unknown or incomplete option '%s'",
			                argv[optind - 1]);
		}
	}
	if (input && cert)
		return cli_fail(E_CONFLICTING_ARGUMENTS,
		                "--input and --signing-certificate cannot be used together");
	if (!input && !cert)
		return cli_fail(E_MISSING_ARGUMENT,
		                "give --input FILE or --signing-certificate FILE");
	if (input) {
		err = eif_pcr_of_file(input, pcr, &d);
		if (err)
			return cli_fail(err == EIF_ERR_IO ? E_FILE_OPERATION : E_HASHER, "%s",
			                d.msg);
	} else {
		uint8_t *pem = NULL;
		size_t len = 0;

		if (cl_file_read_all(cert, 1u << 20, &pem, &len, &d) < 0)
			return cli_fail(E_FILE_OPERATION, "%s", d.msg);
		err = eif_pcr8_of_pem(pem, len, pcr, &d);
		free(pem);
		if (err)
			return cli_fail(E_HASHER, "Failed to deserialize .pem: %s", d.msg);
	}
	cl_hex_encode(pcr, EIF_PCR_SIZE, hex);
	cl_json_init(&j, true);
	cl_json_begin_object(&j);
	cl_json_key(&j, input ? "PCR" : "PCR8");
	cl_json_string(&j, hex);
	cl_json_end_object(&j);
	return cli_emit_json(&j);
}
