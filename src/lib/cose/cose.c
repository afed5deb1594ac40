/* SPDX-License-Identifier: Apache-2.0 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "lib/cose/cbor_reader.h"
#include "lib/cose/cbor_writer.h"
#include "lib/cose/cose.h"

/* Larger than any EIF signature section (32 KiB, nitro-compat §1.5) or attestation document
 * (payload ≤ 16 KiB, §3.5); keeps libcbor's recursive frees shallow on hostile input. */
#define COSE_SIGN1_MAX (64u * 1024u)

/* RFC 8152 tag for COSE_Sign1; AWS never writes it but readers accept it. */
#define COSE_SIGN1_TAG 18

const char *cose_strerror(enum cose_error err)
{
	switch (err) {
	case COSE_OK:
		return "success";
	case COSE_ERR_NOMEM:
		return "out of memory";
	case COSE_ERR_KEY:
		return "unsupported key (need EC P-256, P-384 or P-521)";
	case COSE_ERR_MALFORMED:
		return "malformed COSE_Sign1";
	case COSE_ERR_UNSUPPORTED_ALG:
		return "unsupported COSE algorithm";
	case COSE_ERR_ALG_MISMATCH:
		return "COSE algorithm does not match the key";
	case COSE_ERR_BAD_SIGNATURE:
		return "COSE signature does not verify";
	case COSE_ERR_CRYPTO:
		return "cryptographic operation failed";
	}
	return "unknown COSE error";
}

enum cose_error cose_alg_params(int64_t alg, const EVP_MD **md, size_t *coord_len)
{
	switch (alg) {
	case COSE_ALG_ES256:
		*md = EVP_sha256();
		*coord_len = 32;
		return COSE_OK;
	case COSE_ALG_ES384:
		*md = EVP_sha384();
		*coord_len = 48;
		return COSE_OK;
	case COSE_ALG_ES512:
		*md = EVP_sha512();
		*coord_len = 66;
		return COSE_OK;
	}
	return COSE_ERR_UNSUPPORTED_ALG;
}

enum cose_error cose_alg_for_key(const EVP_PKEY *key, int64_t *alg, struct cl_diag *d)
{
	char group[64];
	size_t glen = 0;

	if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) {
		cl_diag_set(d, "signing key is %s, not an EC key; use a P-256, P-384 or P-521 key",
		            key ? OBJ_nid2sn(EVP_PKEY_get_base_id(key)) : "missing");
		return COSE_ERR_KEY;
	}
	if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
	                                    &glen)) {
		cl_diag_set(d, "EC key has no named curve; use a P-256, P-384 or P-521 key");
		return COSE_ERR_KEY;
	}
	if (!strcmp(group, "prime256v1") || !strcmp(group, "P-256")) {
		*alg = COSE_ALG_ES256;
	} else if (!strcmp(group, "secp384r1") || !strcmp(group, "P-384")) {
		*alg = COSE_ALG_ES384;
	} else if (!strcmp(group, "secp521r1") || !strcmp(group, "P-521")) {
		*alg = COSE_ALG_ES512;
	} else {
		cl_diag_set(d, "EC curve %s is not supported; use P-256, P-384 or P-521", group);
		return COSE_ERR_KEY;
	}
	return COSE_OK;
}

enum cose_error cose_sig_structure(const uint8_t *protected_hdr, size_t protected_len,
                                   const uint8_t *payload, size_t payload_len, uint8_t **out,
                                   size_t *out_len)
{
	struct cbw w;

	cbw_init(&w);
	cbw_array(&w, 4);
	cbw_text(&w, "Signature1");
	cbw_bytes(&w, protected_hdr, protected_len);
	cbw_bytes(&w, NULL, 0); /* external_aad: empty */
	cbw_bytes(&w, payload, payload_len);
	return cbw_finish(&w, out, out_len) ? COSE_OK : COSE_ERR_NOMEM;
}

static enum cose_error encode_protected(int64_t alg, uint8_t **out, size_t *out_len)
{
	struct cbw w;

	cbw_init(&w);
	cbw_map(&w, 1);
	cbw_uint(&w, 1); /* label 1 = alg */
	cbw_int(&w, alg);
	return cbw_finish(&w, out, out_len) ? COSE_OK : COSE_ERR_NOMEM;
}

/* EVP_DigestSign yields a DER ECDSA-Sig-Value; COSE stores the fixed-width r || s. */
static enum cose_error der_to_raw(const uint8_t *der, size_t der_len, size_t coord, uint8_t *raw)
{
	const unsigned char *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	const BIGNUM *r, *s;
	enum cose_error err = COSE_ERR_CRYPTO;

	if (!sig)
		return COSE_ERR_CRYPTO;
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_bn2binpad(r, raw, (int)coord) == (int)coord &&
	    BN_bn2binpad(s, raw + coord, (int)coord) == (int)coord)
		err = COSE_OK;
	ECDSA_SIG_free(sig);
	return err;
}

static enum cose_error raw_to_der(const uint8_t *raw, size_t coord, uint8_t **der, size_t *der_len)
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(raw, (int)coord, NULL);
	BIGNUM *s = BN_bin2bn(raw + coord, (int)coord, NULL);
	unsigned char *buf = NULL;
	int n;

	if (!sig || !r || !s || !ECDSA_SIG_set0(sig, r, s)) {
		ECDSA_SIG_free(sig);
		BN_free(r);
		BN_free(s);
		return COSE_ERR_NOMEM;
	}
	n = i2d_ECDSA_SIG(sig, &buf);
	ECDSA_SIG_free(sig); /* owns r and s now */
	if (n <= 0)
		return COSE_ERR_CRYPTO;
	*der = buf;
	*der_len = (size_t)n;
	return COSE_OK;
}

enum cose_error cose_sign1_sign(EVP_PKEY *key, const uint8_t *payload, size_t payload_len,
                                uint8_t **out, size_t *out_len, struct cl_diag *d)
{
	uint8_t *prot = NULL, *tbs = NULL, *der = NULL;
	size_t prot_len = 0, tbs_len = 0, der_len = 0, coord = 0;
	uint8_t raw[132];
	const EVP_MD *md = NULL;
	EVP_MD_CTX *ctx = NULL;
	enum cose_error err;
	int64_t alg;
	struct cbw w;

	err = cose_alg_for_key(key, &alg, d);
	if (err)
		return err;
	cose_alg_params(alg, &md, &coord);
	err = encode_protected(alg, &prot, &prot_len);
	if (err)
		goto out;
	err = cose_sig_structure(prot, prot_len, payload, payload_len, &tbs, &tbs_len);
	if (err)
		goto out;

	err = COSE_ERR_CRYPTO;
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestSignInit(ctx, NULL, md, NULL, key) != 1 ||
	    EVP_DigestSign(ctx, NULL, &der_len, tbs, tbs_len) != 1) {
		cl_diag_set(d, "cannot start ECDSA signing (is it a private key?)");
		goto out;
	}
	der = OPENSSL_malloc(der_len);
	if (!der) {
		err = COSE_ERR_NOMEM;
		goto out;
	}
	if (EVP_DigestSign(ctx, der, &der_len, tbs, tbs_len) != 1) {
		cl_diag_set(d, "ECDSA signing failed");
		goto out;
	}
	err = der_to_raw(der, der_len, coord, raw);
	if (err) {
		cl_diag_set(d, "ECDSA signature has an unexpected shape");
		goto out;
	}

	cbw_init(&w);
	cbw_array(&w, 4);
	cbw_bytes(&w, prot, prot_len);
	cbw_map(&w, 0);
	cbw_bytes(&w, payload, payload_len);
	cbw_bytes(&w, raw, 2 * coord);
	err = cbw_finish(&w, out, out_len) ? COSE_OK : COSE_ERR_NOMEM;
out:
	if (err == COSE_ERR_NOMEM)
		cl_diag_set(d, "out of memory encoding COSE_Sign1");
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	free(prot);
	free(tbs);
	return err;
}

/* Read a CBOR tag head (major type 6) at @buf: its number and head length. */
static bool read_tag(const uint8_t *buf, size_t len, uint64_t *tag, size_t *head_len)
{
	uint8_t ai = buf[0] & 0x1f;
	size_t n;

	if (ai < 24) {
		*tag = ai;
		*head_len = 1;
		return true;
	}
	if (ai > 27)
		return false;
	n = (size_t)1 << (ai - 24);
	if (len < 1 + n)
		return false;
	*tag = 0;
	for (size_t i = 0; i < n; i++)
		*tag = *tag << 8 | buf[1 + i];
	*head_len = 1 + n;
	return true;
}

void cose_sign1_free(struct cose_sign1 *msg)
{
	if (!msg)
		return;
	free(msg->protected_hdr);
	free(msg->payload);
	free(msg->signature);
	memset(msg, 0, sizeof(*msg));
}

static enum cose_error decode_protected(const uint8_t *p, size_t len, int64_t *alg,
                                        struct cl_diag *d)
{
	cbor_item_t *map;
	struct cbor_pair *pairs;
	bool found = false;
	enum cose_error err = COSE_ERR_MALFORMED;

	if (len == 0) {
		cl_diag_set(d, "COSE_Sign1 protected header is empty; it must carry the algorithm");
		return COSE_ERR_MALFORMED;
	}
	map = cbr_load(p, len);
	if (!map || !cbor_isa_map(map)) {
		cl_diag_set(d, "COSE_Sign1 protected header is not a CBOR map");
		goto out;
	}
	pairs = cbor_map_handle(map);
	for (size_t i = 0; i < cbor_map_size(map); i++) {
		int64_t label;

		if (!cbr_get_int(pairs[i].key, &label) || label != 1)
			continue;
		if (found || !cbr_get_int(pairs[i].value, alg)) {
			cl_diag_set(d, "COSE_Sign1 protected header has a duplicate or "
			               "non-integer alg (label 1)");
			goto out;
		}
		found = true;
	}
	if (!found) {
		cl_diag_set(d, "COSE_Sign1 protected header has no alg (label 1)");
		goto out;
	}
	err = COSE_OK;
out:
	if (map)
		cbor_decref(&map);
	return err;
}

enum cose_error cose_sign1_decode(const uint8_t *buf, size_t len, struct cose_sign1 *out,
                                  struct cl_diag *d)
{
	cbor_item_t *root = NULL, *arr;
	cbor_item_t *prot, *unprot, *payload, *sig;
	enum cose_error err = COSE_ERR_MALFORMED;
	const EVP_MD *md;
	size_t coord;

	memset(out, 0, sizeof(*out));
	if (len > COSE_SIGN1_MAX) {
		cl_diag_set(d, "COSE_Sign1 is %zu bytes, more than the %u accepted", len,
		            COSE_SIGN1_MAX);
		return COSE_ERR_MALFORMED;
	}
	/* The optional tag is stripped by hand: libcbor 0.8 rejects the one-byte tag heads
	 * 0xC6..0xD4, which include 0xD2 = tag 18. */
	if (len > 0 && (buf[0] >> 5) == 6) {
		uint64_t tag;
		size_t hl;

		if (!read_tag(buf, len, &tag, &hl)) {
			cl_diag_set(d, "COSE_Sign1 starts with a truncated CBOR tag");
			return COSE_ERR_MALFORMED;
		}
		if (tag != COSE_SIGN1_TAG) {
			cl_diag_set(d,
			            "COSE_Sign1 has CBOR tag %llu; only 18 (COSE_Sign1) is valid",
			            (unsigned long long)tag);
			return COSE_ERR_MALFORMED;
		}
		buf += hl;
		len -= hl;
	}
	root = cbr_load(buf, len);
	if (!root) {
		cl_diag_set(d, "COSE_Sign1 (%zu bytes) is not one well-formed CBOR item", len);
		return COSE_ERR_MALFORMED;
	}
	arr = root;
	if (!cbor_isa_array(arr) || cbor_array_size(arr) != 4) {
		cl_diag_set(d, "COSE_Sign1 must be an array of 4 elements");
		goto out;
	}
	prot = cbr_array_at(arr, 0);
	unprot = cbr_array_at(arr, 1);
	payload = cbr_array_at(arr, 2);
	sig = cbr_array_at(arr, 3);
	if (!cbor_isa_bytestring(prot)) {
		cl_diag_set(d, "COSE_Sign1 element 0 (protected header) is not a byte string");
		goto out;
	}
	if (!cbor_isa_map(unprot)) {
		cl_diag_set(d, "COSE_Sign1 element 1 (unprotected header) is not a map");
		goto out;
	}
	if (!cbor_isa_bytestring(payload)) {
		cl_diag_set(d, "COSE_Sign1 element 2 (payload) is not a byte string "
		               "(detached payloads are not supported)");
		goto out;
	}
	if (!cbor_isa_bytestring(sig)) {
		cl_diag_set(d, "COSE_Sign1 element 3 (signature) is not a byte string");
		goto out;
	}
	err = COSE_ERR_NOMEM;
	if (!cbr_bytes_dup(prot, &out->protected_hdr, &out->protected_len) ||
	    !cbr_bytes_dup(payload, &out->payload, &out->payload_len) ||
	    !cbr_bytes_dup(sig, &out->signature, &out->signature_len)) {
		cl_diag_set(d, "out of memory decoding COSE_Sign1");
		goto out;
	}
	err = decode_protected(out->protected_hdr, out->protected_len, &out->alg, d);
	if (err)
		goto out;
	if (cose_alg_params(out->alg, &md, &coord) != COSE_OK) {
		cl_diag_set(d,
		            "COSE_Sign1 algorithm %lld is not supported (need -7 ES256, "
		            "-35 ES384 or -36 ES512)",
		            (long long)out->alg);
		err = COSE_ERR_UNSUPPORTED_ALG;
		goto out;
	}
	err = COSE_OK;
out:
	cbor_decref(&root);
	if (err)
		cose_sign1_free(out);
	return err;
}

enum cose_error cose_sign1_verify(const struct cose_sign1 *msg, EVP_PKEY *pub, struct cl_diag *d)
{
	uint8_t *tbs = NULL, *der = NULL;
	size_t tbs_len = 0, der_len = 0, coord = 0;
	const EVP_MD *md = NULL;
	EVP_MD_CTX *ctx = NULL;
	enum cose_error err;
	int64_t key_alg;
	int rc;

	err = cose_alg_params(msg->alg, &md, &coord);
	if (err) {
		cl_diag_set(d, "COSE algorithm %lld is not supported", (long long)msg->alg);
		return err;
	}
	err = cose_alg_for_key(pub, &key_alg, d);
	if (err)
		return err;
	if (key_alg != msg->alg) {
		cl_diag_set(d, "COSE_Sign1 says algorithm %lld but the key's curve implies %lld",
		            (long long)msg->alg, (long long)key_alg);
		return COSE_ERR_ALG_MISMATCH;
	}
	if (msg->signature_len != 2 * coord) {
		cl_diag_set(d, "COSE signature is %zu bytes; algorithm %lld needs %zu (raw r || s)",
		            msg->signature_len, (long long)msg->alg, 2 * coord);
		return COSE_ERR_MALFORMED;
	}
	err = cose_sig_structure(msg->protected_hdr, msg->protected_len, msg->payload,
	                         msg->payload_len, &tbs, &tbs_len);
	if (err)
		goto out;
	err = raw_to_der(msg->signature, coord, &der, &der_len);
	if (err)
		goto out;
	err = COSE_ERR_CRYPTO;
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestVerifyInit(ctx, NULL, md, NULL, pub) != 1) {
		cl_diag_set(d, "cannot start ECDSA verification");
		goto out;
	}
	rc = EVP_DigestVerify(ctx, der, der_len, tbs, tbs_len);
	if (rc == 1) {
		err = COSE_OK;
	} else {
		cl_diag_set(d, "COSE signature does not verify with the given key "
		               "(wrong key, or the signed data was changed)");
		err = COSE_ERR_BAD_SIGNATURE;
	}
out:
	ERR_clear_error();
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	free(tbs);
	return err;
}
