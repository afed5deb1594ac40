/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister console --enclave-id ID | --enclave-name NAME [--disconnect-timeout S]
 * (nitro-compat §2.6). Debug-mode enclaves only (E44 otherwise): the enclave process writes
 * ttyS0 to <logs dir>/<EnclaveID>.console and this streams that file live until the enclave
 * ends. Beyond nitro-cli: the console of an enclave that has ended stays readable by ID.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/nitro/enclave.h"

static void usage(FILE *out)
{
	fprintf(out, "Usage: cloister console (--enclave-id ID | --enclave-name NAME) "
	             "[--disconnect-timeout SECONDS]\n");
}

int cmd_console(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "enclave-id", required_argument, NULL, 'i' },
		{ "enclave-name", required_argument, NULL, 'n' },
		{ "disconnect-timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *id = NULL, *name = NULL;
	struct enclave_info *v = NULL, *e = NULL;
	struct cl_diag d = { "" };
	unsigned long timeout = 0;
	char path[PATH_MAX];
	size_t n = 0;
	int opt, rc;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'i':
			id = optarg;
			break;
		case 'n':
			name = optarg;
			break;
		case 't': {
			char *end;

			errno = 0;
			timeout = strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg || *optarg == '-' || timeout == 0 ||
			    timeout > UINT32_MAX)
				return cli_fail(
				        E_INVALID_ARGUMENT,
				        "--disconnect-timeout '%s' is not a number of seconds "
				        "(1 or more)",
				        optarg);
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			return cli_fail(E_INVALID_ARGUMENT,
			                "unknown or incomplete option '%s' for console",
			                argv[optind - 1]);
		}
	}
	if (optind != argc)
		return cli_fail(E_INVALID_ARGUMENT, "unexpected argument '%s'", argv[optind]);
	if (!id && !name)
		return cli_fail(E_MISSING_ARGUMENT, "give --enclave-id ID or --enclave-name NAME");
	if (id && name)
		return cli_fail(E_CONFLICTING_ARGUMENTS,
		                "--enclave-id and --enclave-name exclude each other");
	if (id) {
		uint64_t slot;

		if (pool_enclave_id_parse(id, &slot) != 0 || strchr(id, '/'))
			return cli_fail(E_INVALID_ARGUMENT,
			                "'%s' is not an enclave ID (<prefix>-enc<hex>)", id);
	}
	rc = enclave_list(&v, &n, &d);
	if (rc)
		return cli_fail((enum cli_error)rc, "%s", d.msg);
	for (size_t i = 0; i < n && !e; i++)
		if ((id && !strcmp(v[i].id, id)) || (name && !strcmp(v[i].name, name)))
			e = &v[i];
	if (!e) {
		enclave_list_free(v, n);
		if (name)
			return cli_fail(E_ENCLAVE_NAMING, "no running enclave is named '%s'", name);
		/* ended: its console log is still there (beyond nitro-cli) */
		enclave_console_path(id, path, sizeof(path));
		if (access(path, R_OK) != 0)
			return cli_fail(E_ENCLAVE_CONSOLE_CONNECTION,
			                "no running enclave has the ID %s and there is no console "
			                "log %s",
			                id, path);
		return enclave_console_stream(id, NULL, 0);
	}
	if (!e->debug_mode) {
		rc = cli_fail(E_ENCLAVE_CONSOLE_CONNECTION,
		              "Failed to connect to the console of enclave %s: it was not started "
		              "in debug mode; to use the console, run the enclave with "
		              "'--debug-mode' included",
		              e->id);
		enclave_list_free(v, n);
		return rc;
	}
	printf("Connecting to the console for enclave %" PRIu64 "...\n", e->cid);
	printf("Successfully connected to the console.\n");
	fflush(stdout);
	snprintf(path, sizeof(path), "%s", e->id);
	{
		char sock[PATH_MAX];

		snprintf(sock, sizeof(sock), "%s", e->socket);
		enclave_list_free(v, n);
		return enclave_console_stream(path, sock, (unsigned)timeout);
	}
}
