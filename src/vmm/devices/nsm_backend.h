/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_VMM_DEVICES_NSM_BACKEND_H
#define CLOISTER_VMM_DEVICES_NSM_BACKEND_H

/*
 * The NSM behind virtio-nsm, as a table of five entries. The monitor's is a client of
 * cloister-nsmd (nsm_backend.c), the host's NSM daemon, which runs the in-process table
 * (nsm_module.c: the measuring EIF reader, the attestation CA, the NSM device state, and with
 * them OpenSSL and libcbor) for every enclave of the host. So the keys are not in the process
 * that parses the guest's virtqueues (docs/security.md), and the monitor maps no libcrypto,
 * which costs 1.4 MiB resident before doing anything (docs/benchmarks.md, P4).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/diag.h"
#include "cloister/eif.h"

#define NSM_BACKEND_ABI 2
#define NSMD_FILE "cloister-nsmd"
/* How long the monitor waits for the daemon's answer before it ends the enclave. */
#define NSMD_TIMEOUT_S 120

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
	const char *(*strerror)(void *state, int err);
	void (*close)(void *state);
};

/* The NSM itself (nsm_module.c), as cloister-nsmd runs it; the unit tests link it directly. */
extern const struct nsm_backend cloister_nsm_backend;

/*
 * The monitor's table: a client of cloister-nsmd, which its open() starts when none runs for
 * this user and nitro-cli state directory (built beside the running executable in a build
 * tree, else installed in the libexec directory).
 */
const struct nsm_backend *nsm_backend_load(struct cl_diag *d);

#endif
