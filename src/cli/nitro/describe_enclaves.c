/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister describe-enclaves [--metadata] (nitro-compat §2.2): a JSON array of the running
 * enclaves, `[]` when there are none. Each enclave process answers for itself over its control
 * socket; the measurements are the EIF's as built, not zeroed in debug mode (nitro-cli does the
 * same, issue #695, although the NSM then reports zero PCR0-2).
 */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/eif/eif_common.h"
#include "cli/nitro/enclave.h"

static void usage(FILE *out)
{
	fprintf(out, "Usage: cloister describe-enclaves [--metadata]\n\n"
	             "Prints every running enclave as nitro-cli does (JSON array).\n"
	             "  --metadata   add ImageName, ImageVersion and Metadata from the EIF\n");
}

/* The EIF metadata section as a JSON object with all of nitro-cli's identity fields, or NULL
 * (then the enclave is listed without them). Anything less would make cli_eif_json_metadata
 * write a missing field: the metadata comes from whatever EIF was run. */
static struct json_object *metadata_object(const struct enclave_info *e)
{
	struct json_object *root;

	if (!e->metadata)
		return NULL;
	root = json_tokener_parse(e->metadata);
	if (!root || !cli_eif_metadata_complete(root)) {
		json_object_put(root);
		return NULL;
	}
	return root;
}

int cmd_describe_enclaves(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "metadata", no_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct enclave_info *v = NULL;
	struct cl_diag d = { "" };
	struct cl_json j;
	bool metadata = false;
	size_t n = 0;
	int opt, rc;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			metadata = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return cli_fail(E_INVALID_ARGUMENT,
			                "unknown option '%s' for describe-enclaves",
			                argv[optind - 1]);
		}
	}
	if (optind != argc)
		return cli_fail(E_INVALID_ARGUMENT, "unexpected argument '%s'", argv[optind]);
	rc = enclave_list(&v, &n, &d);
	if (rc)
		return cli_fail((enum cli_error)rc, "%s", d.msg);

	cl_json_init(&j, true);
	cl_json_begin_array(&j);
	for (size_t i = 0; i < n; i++) {
		const struct enclave_info *e = &v[i];

		cl_json_begin_object(&j);
		cl_json_key(&j, "EnclaveName");
		cl_json_string(&j, e->name);
		cl_json_key(&j, "EnclaveID");
		cl_json_string(&j, e->id);
		cl_json_key(&j, "ProcessID");
		cl_json_uint(&j, (uint64_t)e->pid);
		cl_json_key(&j, "EnclaveCID");
		cl_json_uint(&j, e->cid);
		cl_json_key(&j, "NumberOfCPUs");
		cl_json_uint(&j, e->ncpus);
		cl_json_key(&j, "CPUIDs");
		cl_json_begin_array(&j);
		for (size_t c = 0; c < e->ncpus; c++)
			cl_json_uint(&j, e->cpus[c]);
		cl_json_end_array(&j);
		cl_json_key(&j, "MemoryMiB");
		cl_json_uint(&j, e->memory_mib);
		cl_json_key(&j, "State");
		cl_json_string(&j, e->terminating ? "TERMINATING" : "RUNNING");
		cl_json_key(&j, "Flags");
		cl_json_string(&j, e->debug_mode ? "DEBUG_MODE" : "NONE");
		cl_json_key(&j, "Measurements");
		cli_eif_json_measurements(&j, &e->meas);
		if (metadata) {
			struct json_object *meta = metadata_object(e);

			if (meta)
				cli_eif_json_metadata(&j, meta);
			json_object_put(meta);
		}
		cl_json_end_object(&j);
	}
	cl_json_end_array(&j);
	enclave_list_free(v, n);
	return cli_emit_json(&j);
}
