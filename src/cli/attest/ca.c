/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `cloister ca init [--dir D] [--force]` and `cloister ca show [--dir D]`: the host's
 * attestation authority (docs/attestation.md). Prints a JSON summary with the root certificate
 * path and its SHA-256 fingerprint, which is what a verifier should pin.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "cli/cli.h"
#include "cloister/attest.h"
#include "lib/util/hex.h"

static void ca_usage(FILE *out)
{
	fprintf(out,
	        "Usage: cloister ca init [--dir DIR] [--force]\n"
	        "       cloister ca show [--dir DIR]\n\n"
	        "Create (init) or describe (show) the attestation CA: a P-384 root and a per-host\n"
	        "intermediate that signs each enclave's leaf certificate. Give verifiers "
	        "root.pem.\n\n"
	        "  --dir DIR   CA directory (default $CLOISTER_CA_DIR, else %s)\n"
	        "  --force     init: replace an existing CA (old documents stop verifying)\n",
	        ATTEST_CA_DEFAULT_DIR);
}

static int print_summary(const char *dir)
{
	struct attest_ca *ca = NULL;
	struct cl_diag d = { "" };
	unsigned char fp[32];
	char hex[65], path[PATH_MAX];
	const uint8_t *der;
	size_t der_len;
	json_object *o;

	if (attest_ca_load(dir, &ca, &d) != ATTEST_OK)
		return cli_fail(E_FILE_OPERATION, "%s", d.msg);
	der = attest_ca_root_der(ca, &der_len);
	EVP_Digest(der, der_len, fp, NULL, EVP_sha256(), NULL);
	cl_hex_encode(fp, sizeof(fp), hex);
	o = json_object_new_object();
	json_object_object_add(o, "CADirectory", json_object_new_string(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, ATTEST_ROOT_CERT);
	json_object_object_add(o, "RootCertificate", json_object_new_string(path));
	snprintf(path, sizeof(path), "%s/%s", dir, ATTEST_INTERMEDIATE_CERT);
	json_object_object_add(o, "IntermediateCertificate", json_object_new_string(path));
	json_object_object_add(o, "RootSHA256", json_object_new_string(hex));
	cli_print_json(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
	                                                         JSON_C_TO_STRING_SPACED |
	                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	attest_ca_free(ca);
	return 0;
}

int cmd_ca(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir_opt = NULL, *action, *dir;
	struct cl_diag d = { "" };
	bool force = false;
	enum attest_error err;
	int c;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		ca_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? E_MISSING_ARGUMENT : 0;
	}
	action = argv[1];
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir_opt = optarg;
			break;
		case 'f':
			force = true;
			break;
		case 'h':
			ca_usage(stdout);
			return 0;
		default:
			ca_usage(stderr);
			return E_INVALID_ARGUMENT;
		}
	}
	if (optind < argc - 1)
		return cli_fail(E_INVALID_ARGUMENT, "unexpected argument '%s'", argv[optind + 1]);
	dir = attest_ca_dir(dir_opt);
	if (!strcmp(action, "init")) {
		err = attest_ca_init(dir, force, &d);
		if (err == ATTEST_ERR_EXISTS)
			return cli_fail(E_FILE_OPERATION, "%s", d.msg);
		if (err)
			return cli_fail(E_FILE_OPERATION, "ca init: %s: %s", attest_strerror(err),
			                d.msg);
		return print_summary(dir);
	}
	if (!strcmp(action, "show"))
		return print_summary(dir);
	ca_usage(stderr);
	return cli_fail(E_INVALID_ARGUMENT, "unknown ca action '%s' (use init or show)", action);
}
