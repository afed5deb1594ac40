/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_COSE_H
#define CLOISTER_COSE_H

/*
 * COSE_Sign1 (RFC 8152 §4.2) with ECDSA over the NIST curves, as used by EIF signatures
 * (nitro-compat §1.5, docs/eif.md) and NSM attestation documents (nitro-compat §3.5,
 * docs/attestation.md).
 *
 * What we write is exactly what AWS writes: an *untagged* array(4)
 *   [ bstr({1: alg}), {}, bstr(payload), bstr(r || s) ]
 * with alg chosen by the key's curve (P-256 → -7 ES256/SHA-256, P-384 → -35 ES384/SHA-384,
 * P-521 → -36 ES512/SHA-512), signed over the Sig_structure
 *   [ "Signature1", protected bstr, h'' (no external AAD), payload bstr ]
 * and the signature stored raw, r and s each left-padded to 32 / 48 / 66 bytes.
 *
 * What we read is more tolerant: an optional tag 18, definite or indefinite arrays, maps and
 * byte strings. The protected header must carry alg (label 1) as an integer.
 */

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "cloister/diag.h"

enum cose_alg {
	COSE_ALG_ES256 = -7,
	COSE_ALG_ES384 = -35,
	COSE_ALG_ES512 = -36,
};

enum cose_error {
	COSE_OK = 0,
	COSE_ERR_NOMEM, /* allocation failed */
	COSE_ERR_KEY, /* key is not EC P-256/P-384/P-521, or has no private part */
	COSE_ERR_MALFORMED, /* bytes are not a COSE_Sign1 structure */
	COSE_ERR_UNSUPPORTED_ALG, /* protected header alg is not ES256/ES384/ES512 */
	COSE_ERR_ALG_MISMATCH, /* alg does not match the verifying key's curve */
	COSE_ERR_BAD_SIGNATURE, /* well-formed, but the signature does not verify */
	COSE_ERR_CRYPTO, /* OpenSSL failed for another reason */
};

const char *cose_strerror(enum cose_error err);

/* A decoded COSE_Sign1. All buffers are owned by the struct; release with cose_sign1_free(). */
struct cose_sign1 {
	int64_t alg; /* from the protected header */
	uint8_t *protected_hdr; /* exact protected bstr contents, as signed */
	size_t protected_len;
	uint8_t *payload;
	size_t payload_len;
	uint8_t *signature; /* raw r || s */
	size_t signature_len;
};

/*
 * The COSE alg for @key's curve (-7/-35/-36). COSE_ERR_KEY, with @d naming the key type or
 * curve, for anything else.
 */
enum cose_error cose_alg_for_key(const EVP_PKEY *key, int64_t *alg, struct cl_diag *d);

/*
 * The COSE hash and raw coordinate size for @alg: SHA-256/32, SHA-384/48, SHA-512/66.
 * Returns COSE_ERR_UNSUPPORTED_ALG for other values.
 */
enum cose_error cose_alg_params(int64_t alg, const EVP_MD **md, size_t *coord_len);

/*
 * Encode the RFC 8152 Sig_structure ["Signature1", protected, h'', payload] — the bytes that
 * are hashed and signed. *out is malloc'd; the caller frees it.
 */
enum cose_error cose_sig_structure(const uint8_t *protected_hdr, size_t protected_len,
                                   const uint8_t *payload, size_t payload_len, uint8_t **out,
                                   size_t *out_len);

/*
 * Sign @payload with the EC private key @key and encode the untagged COSE_Sign1 described
 * above. *out is malloc'd; the caller frees it. Errors: COSE_ERR_KEY (wrong key type/curve),
 * COSE_ERR_CRYPTO (signing failed), COSE_ERR_NOMEM.
 */
enum cose_error cose_sign1_sign(EVP_PKEY *key, const uint8_t *payload, size_t payload_len,
                                uint8_t **out, size_t *out_len, struct cl_diag *d);

/*
 * Decode @len bytes at @buf as one COSE_Sign1 (optionally tag 18), with nothing after it.
 * Does not verify. On success @out owns copies of the parts; on failure @out is left empty
 * (safe to free) and @d says which part was wrong. Errors: COSE_ERR_MALFORMED,
 * COSE_ERR_UNSUPPORTED_ALG (alg present but not one of ours), COSE_ERR_NOMEM.
 */
enum cose_error cose_sign1_decode(const uint8_t *buf, size_t len, struct cose_sign1 *out,
                                  struct cl_diag *d);

/*
 * Verify @msg's signature with the public key in @pub (a private key works too). The key's
 * curve must match the alg (COSE_ERR_ALG_MISMATCH); the signature must be exactly
 * 2 × coordinate size (COSE_ERR_MALFORMED); COSE_ERR_BAD_SIGNATURE when it does not verify.
 */
enum cose_error cose_sign1_verify(const struct cose_sign1 *msg, EVP_PKEY *pub, struct cl_diag *d);

void cose_sign1_free(struct cose_sign1 *msg);

#endif
