/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>

#include "cli/eif/eif_common.h"
#include "lib/util/hex.h"

void cli_eif_json_measurements(struct cl_json *j, const struct eif_measurements *m)
{
	char hex[2 * EIF_PCR_SIZE + 1];

	cl_json_begin_object(j);
	/* nitro-cli prints the Debug form of its Sha384 hasher object */
	cl_json_key(j, "HashAlgorithm");
	cl_json_string(j, "Sha384 { ... }");
	cl_hex_encode(m->pcr0, EIF_PCR_SIZE, hex);
	cl_json_key(j, "PCR0");
	cl_json_string(j, hex);
	cl_hex_encode(m->pcr1, EIF_PCR_SIZE, hex);
	cl_json_key(j, "PCR1");
	cl_json_string(j, hex);
	cl_hex_encode(m->pcr2, EIF_PCR_SIZE, hex);
	cl_json_key(j, "PCR2");
	cl_json_string(j, hex);
	if (m->has_pcr8) {
		cl_hex_encode(m->pcr8, EIF_PCR_SIZE, hex);
		cl_json_key(j, "PCR8");
		cl_json_string(j, hex);
	}
	cl_json_end_object(j);
}

int cli_eif_print_measurements(const struct eif_measurements *m)
{
	struct cl_json j;

	cl_json_init(&j, true);
	cl_json_begin_object(&j);
	cl_json_key(&j, "Measurements");
	cli_eif_json_measurements(&j, m);
	cl_json_end_object(&j);
	return cli_emit_json(&j);
}

enum cli_error cli_eif_error_code(enum eif_error err, enum cli_error fallback)
{
	switch (err) {
	case EIF_ERR_IO:
		return E_FILE_OPERATION;
	case EIF_ERR_INVALID_ARG:
		return E_INVALID_ARGUMENT;
	default:
		return fallback;
	}
}
