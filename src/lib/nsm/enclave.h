/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_NSM_ENCLAVE_H
#define CLOISTER_NSM_ENCLAVE_H

/*
 * One call for the monitor: everything an enclave's NSM needs at start (docs/attestation.md).
 * Loads (or, on first use, creates) the host CA, mints this enclave's leaf key and certificate,
 * and builds the device state with the EIF's measurements. The leaf key ends up referenced only
 * by the returned state, i.e. by the monitor process; it is never placed in guest memory.
 */

#include <stdbool.h>

#include "cloister/diag.h"
#include "cloister/eif.h"
#include "lib/nsm/device.h"

struct nsm_enclave_config {
	const char *ca_dir; /* NULL: $CLOISTER_CA_DIR, else /etc/cloister/ca */
	const char *module_id; /* the enclave id, "i-…-enc<16 hex>" */
	const struct eif_measurements *meas; /* from eif_read_file(..., EIF_PARSE_MEASURE) */
	const char *parent_role; /* PCR3 input, or NULL */
	const char *parent_id; /* PCR4 input, or NULL */
	bool debug_mode; /* PCR0-2 read as zeros */
};

/*
 * Create the NSM state for one enclave start. Needs read access to the CA's intermediate key
 * (root-owned, 0600), so call it before dropping privileges. Returns NSM_OK and *out (free with
 * nsm_state_free), or NSM_ERR_CONFIG with @d saying what failed (CA unreadable, bad id, …).
 */
enum nsm_error nsm_enclave_new(const struct nsm_enclave_config *cfg, struct nsm_state **out,
                               struct cl_diag *d);

#endif
