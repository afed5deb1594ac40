/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "cloister/attest.h"
#include "lib/nsm/enclave.h"

enum nsm_error nsm_enclave_new(const struct nsm_enclave_config *cfg, struct nsm_state **out,
                               struct cl_diag *d)
{
	struct attest_ca *ca = NULL;
	struct attest_leaf leaf;
	struct nsm_config nc;
	enum attest_error ae;
	enum nsm_error err = NSM_ERR_CONFIG;

	*out = NULL;
	memset(&leaf, 0, sizeof(leaf));
	if (!cfg->meas) {
		cl_diag_set(d, "the NSM needs the EIF's measurements (parse it with "
		               "EIF_PARSE_MEASURE)");
		return NSM_ERR_CONFIG;
	}
	ae = attest_ca_ensure(attest_ca_dir(cfg->ca_dir), &ca, d);
	if (ae) {
		cl_diag_prefix(d, "attestation CA in %s", attest_ca_dir(cfg->ca_dir));
		return ae == ATTEST_ERR_NOMEM ? NSM_ERR_NOMEM : NSM_ERR_CONFIG;
	}
	ae = attest_leaf_mint(ca, cfg->module_id, &leaf, d);
	if (ae) {
		err = ae == ATTEST_ERR_NOMEM ? NSM_ERR_NOMEM : NSM_ERR_CONFIG;
		goto out;
	}
	memset(&nc, 0, sizeof(nc));
	nc.module_id = cfg->module_id;
	memcpy(nc.pcr0, cfg->meas->pcr0, NSM_PCR_LEN);
	memcpy(nc.pcr1, cfg->meas->pcr1, NSM_PCR_LEN);
	memcpy(nc.pcr2, cfg->meas->pcr2, NSM_PCR_LEN);
	nc.has_pcr8 = cfg->meas->has_pcr8;
	memcpy(nc.pcr8, cfg->meas->pcr8, NSM_PCR_LEN);
	nc.parent_role = cfg->parent_role;
	nc.parent_id = cfg->parent_id;
	nc.debug_mode = cfg->debug_mode;
	nc.signing_key = leaf.key;
	nc.certificate = leaf.cert_der;
	nc.certificate_len = leaf.cert_len;
	nc.cabundle = leaf.chain;
	nc.cabundle_lens = leaf.chain_lens;
	nc.cabundle_count = leaf.chain_count;
	/* The state takes its own key reference and copies the certificates. */
	err = nsm_state_new(&nc, out, d);
out:
	attest_leaf_free(&leaf);
	attest_ca_free(ca);
	return err;
}
