/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister terminate-enclave --enclave-id ID | --enclave-name NAME | --all (nitro-compat §2.1,
 * §2.2). The enclave process is asked over its control socket; it checks the caller's uid
 * (SO_PEERCRED: the owner or root) and answers once every resource is back in the pool.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/nitro/enclave.h"
#include "lib/util/json.h"

#define TERMINATE_TIMEOUT_S 60

static void usage(FILE *out)
{
	fprintf(out, "Usage: cloister terminate-enclave (--enclave-id ID | --enclave-name NAME | "
	             "--all)\n");
}

static int terminate_one(const struct enclave_info *e)
{
	struct cl_diag d = { "" };
	struct cl_json j;
	int rc = enclave_terminate(e->socket, TERMINATE_TIMEOUT_S, &d);

	if (rc)
		return cli_fail((enum cli_error)rc, "%s", d.msg);
	fprintf(stderr, "Successfully terminated enclave %s.\n", e->id);
	cl_json_init(&j, true);
	cl_json_begin_object(&j);
	cl_json_key(&j, "EnclaveName");
	cl_json_string(&j, e->name);
	cl_json_key(&j, "EnclaveID");
	cl_json_string(&j, e->id);
	cl_json_key(&j, "Terminated");
	cl_json_bool(&j, true);
	cl_json_end_object(&j);
	return cli_emit_json(&j);
}

int cmd_terminate_enclave(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "enclave-id", required_argument, NULL, 'i' },
		{ "enclave-name", required_argument, NULL, 'n' },
		{ "all", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *id = NULL, *name = NULL;
	struct enclave_info *v = NULL;
	struct cl_diag d = { "" };
	size_t n = 0, found = 0;
	int opt, rc = 0, given = 0;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'i':
			id = optarg;
			given++;
			break;
		case 'n':
			name = optarg;
			given++;
			break;
		case 'a': /* every enclave: the loop below matches all when no filter is set */
			given++;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return cli_fail(E_INVALID_ARGUMENT,
			                "unknown or incomplete option '%s' for "
			                "terminate-enclave",
			                argv[optind - 1]);
		}
	}
	if (optind != argc)
		return cli_fail(E_INVALID_ARGUMENT, "unexpected argument '%s'", argv[optind]);
	if (given == 0)
		return cli_fail(E_MISSING_ARGUMENT,
		                "give one of --enclave-id ID, --enclave-name NAME or --all");
	if (given > 1)
		return cli_fail(E_CONFLICTING_ARGUMENTS,
		                "--enclave-id, --enclave-name and --all exclude each other");
	if (id) {
		uint64_t slot;

		if (pool_enclave_id_parse(id, &slot) != 0)
			return cli_fail(E_INVALID_ARGUMENT,
			                "'%s' is not an enclave ID (<prefix>-enc<hex>)", id);
	}
	rc = enclave_list(&v, &n, &d);
	if (rc)
		return cli_fail((enum cli_error)rc, "%s", d.msg);
	rc = 0;
	for (size_t i = 0; i < n; i++) {
		if ((id && strcmp(v[i].id, id)) || (name && strcmp(v[i].name, name)))
			continue;
		found++;
		int r = terminate_one(&v[i]);

		if (r && !rc)
			rc = r;
	}
	enclave_list_free(v, n);
	if (!found && id)
		rc = cli_fail(E_ENCLAVE_PROCESS_CONNECTION,
		              "no running enclave has the ID %s (describe-enclaves lists them)",
		              id);
	else if (!found && name)
		rc = cli_fail(E_ENCLAVE_NAMING,
		              "no running enclave is named '%s' (describe-enclaves lists them)",
		              name);
	return rc;
}
