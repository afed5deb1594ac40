/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The NSM itself (nsm_backend.h), as cloister-nsmd runs it for each enclave of the host.
 */
#include "cloister/eif.h"
#include "lib/nsm/device.h"
#include "lib/nsm/enclave.h"
#include "vmm/devices/nsm_backend.h"

static enum nsm_backend_err backend_open(const struct nsm_backend_config *cfg, const uint8_t *eif,
                                         size_t len, void **state, struct eif_image *img,
                                         struct cl_diag *d)
{
	struct nsm_enclave_config nc = {
		.ca_dir = cfg->ca_dir,
		.module_id = cfg->module_id,
		.parent_role = cfg->parent_role,
		.parent_id = cfg->parent_id,
		.debug_mode = cfg->debug_mode,
	};
	struct nsm_state *st = NULL;

	*state = NULL;
	if (eif_parse_buffer(eif, len, EIF_PARSE_MEASURE, img, d) != EIF_OK)
		return NSM_BACKEND_IMAGE;
	/* A signed image's PCR8 names its signer: only if the signature holds for this image
	 * (it signs this PCR0, with the certificate's key, which is valid now). Otherwise anyone
	 * could copy a vendor's signature section onto their own image and attest with the
	 * vendor's PCR8. nitro-cli's run-enclave refuses such an image with E59. */
	if (eif_signature_verify(img, d) != EIF_OK) {
		eif_image_release(img);
		return NSM_BACKEND_SIGNATURE;
	}
	nc.meas = &img->meas;
	if (nsm_enclave_new(&nc, &st, d) != NSM_OK) {
		eif_image_release(img);
		return NSM_BACKEND_SETUP;
	}
	*state = st;
	return NSM_BACKEND_OK;
}

static int backend_handle(void *state, const uint8_t *req, size_t req_len, uint8_t *resp,
                          size_t resp_cap, size_t *resp_len)
{
	return (int)nsm_handle_request(state, req, req_len, resp, resp_cap, resp_len);
}

static const char *backend_strerror(void *state, int err)
{
	(void)state;
	return nsm_strerror((enum nsm_error)err);
}

static void backend_close(void *state)
{
	nsm_state_free(state);
}

const struct nsm_backend cloister_nsm_backend = {
	.abi = NSM_BACKEND_ABI,
	.open = backend_open,
	.handle = backend_handle,
	.strerror = backend_strerror,
	.close = backend_close,
};
