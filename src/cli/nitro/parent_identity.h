/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_CLI_PARENT_IDENTITY_H
#define CLOISTER_CLI_PARENT_IDENTITY_H

/*
 * The parent's identity, measured into PCR3 and PCR4 (nitro-compat §3.4, docs/attestation.md).
 * On Nitro the hypervisor knows the parent's IAM role and instance id, so nitro-cli's
 * run-enclave has no flags for them; cloister takes them from the host instead. For each value
 * the first source that has it wins:
 *
 *   1. the environment: CLOISTER_PARENT_ROLE, CLOISTER_PARENT_ID;
 *   2. the config file ($CLOISTER_PARENT_CONF, else /etc/cloister/parent.conf): `key = value`
 *      lines with the keys parent_role and parent_id, `#` comments, blank lines;
 *   3. PCR4 only: the EnclaveID prefix (board_asset_tag) when it is an EC2 instance id, which
 *      on EC2 is exactly the value Nitro measures.
 *
 * A variable set to "" or a key with an empty value means "none" and stops the search, so an
 * operator can force a PCR to zero. Without any source the PCR stays zero.
 */

#include <stdbool.h>

#include "cloister/diag.h"
#include "lib/nsm/device.h"

struct parent_identity {
	char role[NSM_PARENT_VALUE_MAX + 1]; /* PCR3 input; "" for none */
	char id[NSM_PARENT_VALUE_MAX + 1]; /* PCR4 input; "" for none */
	/* Where each value came from, for the enclave log: "none", the variable's name,
	 * "board_asset_tag" or the config file's path (as long-lived as that path). */
	const char *role_from;
	const char *id_from;
};

/* $CLOISTER_PARENT_CONF if set and non-empty, else /etc/cloister/parent.conf. */
const char *parent_conf_path(void);

/* Whether @s is an EC2 instance id: "i-" and 8 or 17 lowercase hex digits. */
bool parent_is_instance_id(const char *s);

/*
 * Fill @out from the sources above. @conf is the config file (NULL: parent_conf_path()); a
 * missing file is not an error. @sysroot prefixes /sys for board_asset_tag (NULL:
 * pool_default_sysroot()). Returns 0, or a nitro-cli error code number with @d naming the
 * variable or file line and the fix: 19 (the file exists but cannot be read) or 3 (a malformed
 * line, an unknown or repeated key, a value nsm_parent_value_valid() refuses).
 */
int parent_identity_load(const char *conf, const char *sysroot, struct parent_identity *out,
                         struct cl_diag *d);

/* Point *@role and *@id (the PCR3 and PCR4 inputs of a monitor_config or an
 * nsm_enclave_config) at @pi's values, NULL for none; @pi must outlive every use of them. */
void parent_identity_apply(const struct parent_identity *pi, const char **role, const char **id);

#endif
