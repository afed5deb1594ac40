/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_NSM_DEVICE_H
#define CLOISTER_NSM_DEVICE_H

/*
 * The Nitro Secure Module, device side: the PCR bank and the request/response codec behind the
 * virtio-nsm queue (docs/attestation.md; nitro-compat §3 and §4).
 *
 * The transport hands each request (the guest's out-buffer) to nsm_handle_request() as plain
 * bytes and copies the response into the guest's 0x3000-byte in-buffer. Nothing here knows
 * about virtqueues, so the codec is fuzzed and unit-tested without KVM.
 *
 * Requests are decoded tolerantly (any key order, any integer width, definite or indefinite
 * containers, byte or text strings for data); responses are encoded byte-for-byte as
 * serde_cbor writes them for the AWS NSM (shortest integers, definite lengths, text keys).
 *
 * A struct nsm_state is not thread-safe: the monitor serialises requests (one queue, and the
 * Linux driver holds one mutex around each request anyway).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "cloister/diag.h"

#define NSM_PCR_COUNT 32
#define NSM_PCR_LEN 48 /* SHA-384 */
#define NSM_LOCKED_AT_BOOT 16 /* PCRs [0, 16) are locked from the start */
#define NSM_REQUEST_MAX 0x1000 /* linux uapi NSM_REQUEST_MAX_SIZE */
#define NSM_RESPONSE_MAX 0x3000 /* linux uapi NSM_RESPONSE_MAX_SIZE */
#define NSM_ATTEST_FIELD_MAX 1024 /* user_data, nonce, public_key each */
#define NSM_MODULE_ID_MAX 99 /* what fits NsmDescription.module_id[100] */
#define NSM_RANDOM_LEN 256 /* bytes per GetRandom, as the AWS NSM and QEMU */
#define NSM_PARENT_VALUE_MAX 2048 /* PCR3/PCR4 inputs: an IAM ARN is at most 2048 chars */
#define NSM_VERSION_MAJOR 1
#define NSM_VERSION_MINOR 0
#define NSM_VERSION_PATCH 0

/* The NSM's ErrorCode: the values are the AWS enum's (and libnsm's C return codes); only the
 * names travel on the wire. */
enum nsm_status {
	NSM_SUCCESS = 0,
	NSM_INVALID_ARGUMENT = 1,
	NSM_INVALID_INDEX = 2,
	NSM_INVALID_RESPONSE = 3,
	NSM_READ_ONLY_INDEX = 4,
	NSM_INVALID_OPERATION = 5,
	NSM_BUFFER_TOO_SMALL = 6,
	NSM_INPUT_TOO_LARGE = 7,
	NSM_INTERNAL_ERROR = 8,
};

/* The wire name ("InvalidIndex"), or NULL for a value outside the enum. */
const char *nsm_status_name(enum nsm_status st);

/* Host-side failures of this module (the guest never sees these). */
enum nsm_error {
	NSM_OK = 0,
	NSM_ERR_NOMEM,
	NSM_ERR_CONFIG, /* nsm_state_new: an invalid configuration value */
	NSM_ERR_RESPONSE_TOO_SMALL, /* the response does not fit the caller's buffer */
};

const char *nsm_strerror(enum nsm_error err);

struct nsm_config {
	/* NSM module id, 1..NSM_MODULE_ID_MAX bytes; for enclaves the enclave id
	 * "<instance>-enc<16 hex>" (nitro-compat §3.5). Copied. */
	const char *module_id;
	/* Launch measurements as describe-eif prints them: PCR = SHA384(0^48 ‖ SHA384(content)). */
	uint8_t pcr0[NSM_PCR_LEN];
	uint8_t pcr1[NSM_PCR_LEN];
	uint8_t pcr2[NSM_PCR_LEN];
	bool has_pcr8; /* signed EIF: PCR8 = the signing certificate measurement */
	uint8_t pcr8[NSM_PCR_LEN];
	/* PCR3 = SHA384(0^48 ‖ parent_role), PCR4 = SHA384(0^48 ‖ parent_id); NULL leaves the
	 * PCR zero (nitro-compat §3.4). The strings are hashed as given, without a terminator,
	 * and must pass nsm_parent_value_valid(). */
	const char *parent_role;
	const char *parent_id;
	/* Debug mode: PCR0, PCR1 and PCR2 read as zeros everywhere the enclave or a verifier
	 * can see them (AWS behaviour, nitro-compat §2.6). */
	bool debug_mode;
	/* The per-enclave leaf key that signs documents (ES384, so P-384). The state takes its
	 * own reference. It lives in the monitor, never in enclave memory. */
	EVP_PKEY *signing_key;
	/* DER leaf certificate for signing_key, and the chain root first (each copied). */
	const uint8_t *certificate;
	size_t certificate_len;
	const uint8_t *const *cabundle;
	const size_t *cabundle_lens;
	size_t cabundle_count;
	/* Optional clock for document timestamps (ms since the Unix epoch); NULL means
	 * CLOCK_REALTIME. Tests pin it. */
	uint64_t (*clock_ms)(void *opaque);
	void *clock_opaque;
};

/*
 * Whether @s can be a PCR3/PCR4 input: 1..NSM_PARENT_VALUE_MAX bytes of printable ASCII
 * without spaces, as role ARNs and instance ids are. An empty or padded value would give a
 * PCR nobody can reproduce from the ARN or id a verifier knows, so it is refused.
 */
bool nsm_parent_value_valid(const char *s);

struct nsm_state;

/*
 * Create the device state from @cfg: PCRs set as above, [0, 16) locked. Returns NSM_OK and
 * *out (free with nsm_state_free), or NSM_ERR_CONFIG / NSM_ERR_NOMEM with @d naming the bad
 * value.
 */
enum nsm_error nsm_state_new(const struct nsm_config *cfg, struct nsm_state **out,
                             struct cl_diag *d);
void nsm_state_free(struct nsm_state *s);

/*
 * Handle one request: @req_len bytes at @req (guest-controlled). Writes the CBOR response to
 * @resp (capacity @resp_cap; give it NSM_RESPONSE_MAX) and its length to *resp_len. Every
 * problem with the request itself becomes an {"Error": name} response and NSM_OK; a request
 * longer than NSM_REQUEST_MAX gets "InputTooLarge". Returns NSM_ERR_NOMEM or
 * NSM_ERR_RESPONSE_TOO_SMALL only for host-side trouble, with nothing written.
 */
enum nsm_error nsm_handle_request(struct nsm_state *s, const uint8_t *req, size_t req_len,
                                  uint8_t *resp, size_t resp_cap, size_t *resp_len);

/* The status of the last handled request (NSM_SUCCESS or the error name sent), for logs and
 * tests. */
enum nsm_status nsm_last_status(const struct nsm_state *s);

/* Read PCR @index as the guest sees it (debug zeros included). False for index ≥ 32. */
bool nsm_pcr_read(const struct nsm_state *s, unsigned index, uint8_t out[NSM_PCR_LEN],
                  bool *locked);

/*
 * Build and sign an attestation document exactly as the Attestation request does (for the
 * monitor's own use and benchmarks). Absent fields are NULL. *doc is malloc'd.
 */
enum nsm_status nsm_attest(struct nsm_state *s, const uint8_t *user_data, size_t user_data_len,
                           const uint8_t *nonce, size_t nonce_len, const uint8_t *public_key,
                           size_t public_key_len, uint8_t **doc, size_t *doc_len);

#endif
