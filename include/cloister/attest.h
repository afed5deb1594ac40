/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_ATTEST_H
#define CLOISTER_ATTEST_H

/*
 * The attestation authority and the attestation-document verifier (docs/attestation.md).
 *
 * Authority: `cloister ca init` makes a P-384 root CA and a per-host intermediate in a
 * directory (default /etc/cloister/ca; env CLOISTER_CA_DIR overrides). Each enclave start mints
 * a fresh P-384 leaf key and certificate (CN = the NSM module id) signed by the intermediate.
 * The leaf key is held by the monitor and signs the enclave's documents; no key is ever placed
 * in enclave memory. Verifiers are given root.pem.
 *
 * Verifier: checks an NSM attestation document (ours or AWS's) — COSE_Sign1 ES384 signature
 * with the leaf key, the chain leaf → cabundle → the trusted root (validity windows, CA and
 * path-length constraints, keyCertSign on CAs, digitalSignature on the leaf), the payload schema
 * and limits (nitro-compat §3.5), and any expected PCRs / nonce / user data / public key.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "cloister/diag.h"

#define ATTEST_CA_DEFAULT_DIR "/etc/cloister/ca"
#define ATTEST_ROOT_CERT "root.pem"
#define ATTEST_ROOT_KEY "root.key"
#define ATTEST_INTERMEDIATE_CERT "intermediate.pem"
#define ATTEST_INTERMEDIATE_KEY "intermediate.key"
#define ATTEST_MAX_PCRS 32
#define ATTEST_MAX_CABUNDLE 16
#define ATTEST_FIELD_MAX 1024 /* certificate, cabundle entries, public_key, user_data, nonce */
#define ATTEST_DOC_MAX (32 * 1024) /* COSE payload is at most 16 KiB (§3.5) */
#define ATTEST_LEAF_VALIDITY_DAYS 365

enum attest_error {
	ATTEST_OK = 0,
	ATTEST_ERR_NOMEM,
	ATTEST_ERR_IO, /* reading or writing CA files */
	ATTEST_ERR_EXISTS, /* ca init: the CA already exists */
	ATTEST_ERR_NO_CA, /* the CA directory holds no usable CA */
	ATTEST_ERR_CRYPTO, /* key generation / signing failed */
	ATTEST_ERR_MALFORMED, /* not a COSE_Sign1, or the payload breaks the schema */
	ATTEST_ERR_SIGNATURE, /* COSE signature does not verify with the leaf key */
	ATTEST_ERR_CHAIN, /* certificate chain, validity or constraints fail */
	ATTEST_ERR_MISMATCH, /* a PCR, nonce, user data or public key differs from expected */
};

const char *attest_strerror(enum attest_error err);

/* The CA directory to use: @dir if not NULL, else $CLOISTER_CA_DIR if set and non-empty, else
 * ATTEST_CA_DEFAULT_DIR. Returns a pointer to one of those strings. */
const char *attest_ca_dir(const char *dir);

/*
 * Create a root CA (P-384, 30 years, CA:TRUE pathlen:1, keyCertSign|cRLSign) and an
 * intermediate signed by it (10 years, CA:TRUE pathlen:0) in @dir (created 0755 with parents).
 * Keys are written 0600, certificates 0644. ATTEST_ERR_EXISTS if root.pem exists and !@force.
 */
enum attest_error attest_ca_init(const char *dir, bool force, struct cl_diag *d);

/* A loaded CA: the intermediate's key and certificate plus the root certificate. */
struct attest_ca;

/* Load the CA in @dir (intermediate key/cert and root cert). ATTEST_ERR_NO_CA when missing. */
enum attest_error attest_ca_load(const char *dir, struct attest_ca **out, struct cl_diag *d);
/* attest_ca_load, creating the CA first if root.pem is missing (run-enclave's first use). */
enum attest_error attest_ca_ensure(const char *dir, struct attest_ca **out, struct cl_diag *d);
void attest_ca_free(struct attest_ca *ca);

/* Root certificate of @ca as DER (borrowed; valid while @ca lives). */
const uint8_t *attest_ca_root_der(const struct attest_ca *ca, size_t *len);

/* A per-enclave signing identity. Everything is owned; release with attest_leaf_free(). */
struct attest_leaf {
	EVP_PKEY *key; /* P-384 private key: stays in the monitor */
	uint8_t *cert_der; /* leaf certificate, CN = module id, digitalSignature */
	size_t cert_len;
	/* The document's cabundle, root first: [root, intermediate]. Arrays fit
	 * struct nsm_config's cabundle / cabundle_lens directly. */
	const uint8_t *chain[ATTEST_MAX_CABUNDLE];
	size_t chain_lens[ATTEST_MAX_CABUNDLE];
	size_t chain_count;
	uint8_t *chain_store[ATTEST_MAX_CABUNDLE];
};

/*
 * Mint a fresh leaf for @module_id (1..64 bytes, the X.509 CN limit), valid from now for
 * ATTEST_LEAF_VALIDITY_DAYS. On failure @out is left empty (safe to free).
 */
enum attest_error attest_leaf_mint(const struct attest_ca *ca, const char *module_id,
                                   struct attest_leaf *out, struct cl_diag *d);
void attest_leaf_free(struct attest_leaf *leaf);

/* An optional byte-string field of the payload: present == false means CBOR null. */
struct attest_field {
	bool present;
	uint8_t *data;
	size_t len;
};

/* A decoded attestation payload (nitro-compat §3.5). Release with attest_doc_free(). */
struct attest_doc {
	char *module_id;
	char *digest; /* "SHA384" */
	uint64_t timestamp; /* ms since the Unix epoch */
	bool pcr_present[ATTEST_MAX_PCRS];
	uint8_t pcr[ATTEST_MAX_PCRS][64];
	size_t pcr_len[ATTEST_MAX_PCRS]; /* 32, 48 or 64 */
	uint8_t *certificate;
	size_t certificate_len;
	uint8_t *cabundle[ATTEST_MAX_CABUNDLE];
	size_t cabundle_lens[ATTEST_MAX_CABUNDLE];
	size_t cabundle_count;
	struct attest_field public_key, user_data, nonce;
	/* From the COSE wrapper. */
	int64_t alg;
};

/*
 * Decode a payload (definite or indefinite map, keys in any order; unknown keys ignored) and
 * check the schema and limits: module_id non-empty text, digest "SHA384", timestamp > 0,
 * pcrs 1..32 entries with index < 32 and 32/48/64-byte values, certificate and each of 1..16
 * cabundle entries 1..1024 bytes, public_key, user_data and nonce 0..1024 bytes or
 * null. ATTEST_ERR_MALFORMED with @d naming the field otherwise.
 */
enum attest_error attest_payload_parse(const uint8_t *buf, size_t len, struct attest_doc *out,
                                       struct cl_diag *d);
void attest_doc_free(struct attest_doc *doc);

/* What the caller expects; NULL / false members are not checked. */
struct attest_expect {
	const uint8_t *pcr[ATTEST_MAX_PCRS];
	size_t pcr_len[ATTEST_MAX_PCRS];
	const uint8_t *nonce;
	size_t nonce_len;
	const uint8_t *user_data;
	size_t user_data_len;
	const uint8_t *public_key;
	size_t public_key_len;
	/* Check certificate validity at this Unix time instead of now (0 = now). */
	int64_t at_time;
};

/*
 * Verify the document @doc (@len bytes) against the trusted root certificate @root (PEM or
 * DER, @root_len bytes) and @expect (may be NULL). On ATTEST_OK, and also on
 * ATTEST_ERR_SIGNATURE / _CHAIN / _MISMATCH (so callers can report what the document said),
 * @out holds the decoded payload; on other errors @out is empty. Free it with attest_doc_free.
 */
enum attest_error attest_verify(const uint8_t *doc, size_t len, const uint8_t *root,
                                size_t root_len, const struct attest_expect *expect,
                                struct attest_doc *out, struct cl_diag *d);

#endif
