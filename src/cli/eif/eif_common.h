/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_CLI_EIF_COMMON_H
#define CLOISTER_CLI_EIF_COMMON_H

/* Helpers shared by the EIF subcommands (build-eif, describe-eif, pcr, sign-eif). */

#include <stdbool.h>

#include "cli/cli.h"
#include "cloister/eif.h"
#include "lib/util/json.h"

/* Write nitro-cli's measurements map: {"HashAlgorithm": "Sha384 { ... }", "PCR0": ...}
 * (a BTreeMap there, so the keys are in sorted order). */
void cli_eif_json_measurements(struct cl_json *j, const struct eif_measurements *m);

/* Print {"Measurements": {...}} pretty on stdout, as build-enclave and sign-eif do. Returns 0,
 * or E_UNSPECIFIED if memory ran out. */
int cli_eif_print_measurements(const struct eif_measurements *m);

/* Write "ImageName", "ImageVersion" and "Metadata" from a parsed metadata section (nitro-cli's
 * EifIdentityInfo, as describe-eif and describe-enclaves --metadata show it). @root must pass
 * cli_eif_metadata_complete(). */
struct json_object;
void cli_eif_json_metadata(struct cl_json *j, struct json_object *root);

/* Whether @root has every field of nitro-cli's EifIdentityInfo (ImageName, ImageVersion,
 * BuildMetadata's five strings, DockerInfo; CustomMetadata an object or absent). */
bool cli_eif_metadata_complete(struct json_object *root);

/* The nitro-cli error code for a library error while building / parsing / signing. */
enum cli_error cli_eif_error_code(enum eif_error err, enum cli_error fallback);

#endif
