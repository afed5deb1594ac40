/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_VMM_DEVICES_NSM_BACKEND_H
#define CLOISTER_VMM_DEVICES_NSM_BACKEND_H

/*
 * The NSM behind virtio-nsm, in a module the monitor loads only when it gives the enclave an
 * NSM: cloister-nsm.so holds the measuring EIF reader, the attestation CA, the NSM device state
 * and with them OpenSSL and libcbor. A monitor without an NSM never maps libcrypto, which costs
 * 1.6 MiB of resident memory at start before doing anything (Debian builds it BIND_NOW;
 * docs/benchmarks.md, P4). The table is all the monitor knows of it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/diag.h"
#include "cloister/eif.h"

#define NSM_BACKEND_ABI 1
#define NSM_BACKEND_SYMBOL "cloister_nsm_backend"
#define NSM_BACKEND_FILE "cloister-nsm.so"

struct nsm_backend_config {
	const char *ca_dir; /* NULL: $CLOISTER_CA_DIR, else /etc/cloister/ca */
	const char *module_id;
	const char *parent_role; /* PCR3 input, or NULL */
	const char *parent_id; /* PCR4 input, or NULL */
	bool debug_mode;
};

enum nsm_backend_err {
	NSM_BACKEND_OK = 0,
	NSM_BACKEND_IMAGE, /* the EIF does not parse with its measurements */
	NSM_BACKEND_SIGNATURE, /* a signed EIF whose signature does not hold for it */
	NSM_BACKEND_SETUP, /* the CA, the leaf key or the device state could not be made */
};

struct nsm_backend {
	unsigned abi; /* NSM_BACKEND_ABI */
	/*
	 * Parse and measure the EIF at @eif (@len bytes: the copy in guest memory, before any
	 * vCPU runs) into *@img (release with eif_image_release()), check a signed image's
	 * signature, mint the enclave's leaf key from the CA and build the device state
	 * (*@state). The monitor lays the boot out from the same parse; *@img->meas holds the
	 * raw measurements.
	 */
	enum nsm_backend_err (*open)(const struct nsm_backend_config *cfg, const uint8_t *eif,
	                             size_t len, void **state, struct eif_image *img,
	                             struct cl_diag *d);
	/* nsm_handle_request() on the state: 0 or a host-side error, named by strerror. */
	int (*handle)(void *state, const uint8_t *req, size_t req_len, uint8_t *resp,
	              size_t resp_cap, size_t *resp_len);
	const char *(*strerror)(int err);
	void (*close)(void *state);
};

/* The module's table (nsm_module.c); the unit tests link it in directly. */
extern const struct nsm_backend cloister_nsm_backend;

/*
 * Load cloister-nsm.so (once per process; later calls return the same table): next to the
 * running executable's build directory in a build tree, else from the install directory.
 * NULL with @d saying where it looked.
 */
const struct nsm_backend *nsm_backend_load(struct cl_diag *d);

#endif
