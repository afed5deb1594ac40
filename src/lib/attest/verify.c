/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cloister/attest.h"
#include "lib/cose/cbor_reader.h"
#include "lib/cose/cose.h"

#define PAYLOAD_MAX 16384 /* COSE payload 1..16384 bytes (§3.5) */

void attest_doc_free(struct attest_doc *doc)
{
	if (!doc)
		return;
	free(doc->module_id);
	free(doc->digest);
	free(doc->certificate);
	for (size_t i = 0; i < doc->cabundle_count; i++)
		free(doc->cabundle[i]);
	free(doc->public_key.data);
	free(doc->user_data.data);
	free(doc->nonce.data);
	memset(doc, 0, sizeof(*doc));
}

/* A byte string of @min..@max bytes. */
static bool get_bstr(const cbor_item_t *v, size_t min, size_t max, uint8_t **out, size_t *len)
{
	size_t n;

	if (!cbr_bytes_len(v, &n) || n < min || n > max)
		return false;
	return cbr_bytes_dup(v, out, len);
}

static bool get_opt(const cbor_item_t *v, size_t min, struct attest_field *f)
{
	if (cbr_is_null(v)) {
		f->present = false;
		return true;
	}
	if (!get_bstr(v, min, ATTEST_FIELD_MAX, &f->data, &f->len))
		return false;
	f->present = true;
	return true;
}

static enum attest_error parse_pcrs(const cbor_item_t *v, struct attest_doc *out, struct cl_diag *d)
{
	size_t n;
	struct cbor_pair *pairs;

	if (!cbor_isa_map(v) || (n = cbor_map_size(v)) < 1 || n > ATTEST_MAX_PCRS) {
		cl_diag_set(d, "payload field 'pcrs' must be a map of 1..32 entries");
		return ATTEST_ERR_MALFORMED;
	}
	pairs = cbor_map_handle(v);
	for (size_t i = 0; i < n; i++) {
		uint64_t idx;
		size_t len;

		if (!cbr_get_uint(pairs[i].key, &idx) || idx >= ATTEST_MAX_PCRS) {
			cl_diag_set(d, "payload 'pcrs' has a key that is not an index 0..31");
			return ATTEST_ERR_MALFORMED;
		}
		if (out->pcr_present[idx]) {
			cl_diag_set(d, "payload 'pcrs' lists PCR%llu twice",
			            (unsigned long long)idx);
			return ATTEST_ERR_MALFORMED;
		}
		if (!cbr_bytes_len(pairs[i].value, &len) || (len != 32 && len != 48 && len != 64)) {
			cl_diag_set(d, "payload PCR%llu must be a 32, 48 or 64-byte string",
			            (unsigned long long)idx);
			return ATTEST_ERR_MALFORMED;
		}
		cbr_bytes_copy(pairs[i].value, out->pcr[idx]);
		out->pcr_len[idx] = len;
		out->pcr_present[idx] = true;
	}
	return ATTEST_OK;
}

static enum attest_error parse_cabundle(const cbor_item_t *v, struct attest_doc *out,
                                        struct cl_diag *d)
{
	size_t n = cbr_array_size(v);

	if (!cbor_isa_array(v) || n < 1 || n > ATTEST_MAX_CABUNDLE) {
		cl_diag_set(d, "payload field 'cabundle' must be an array of 1..%d certificates",
		            ATTEST_MAX_CABUNDLE);
		return ATTEST_ERR_MALFORMED;
	}
	for (size_t i = 0; i < n; i++) {
		if (!get_bstr(cbr_array_at(v, i), 1, ATTEST_FIELD_MAX, &out->cabundle[i],
		              &out->cabundle_lens[i])) {
			cl_diag_set(d, "payload cabundle[%zu] must be 1..%d bytes of DER", i,
			            ATTEST_FIELD_MAX);
			return ATTEST_ERR_MALFORMED;
		}
		out->cabundle_count = i + 1;
	}
	return ATTEST_OK;
}

enum field_bit {
	F_MODULE_ID = 1 << 0,
	F_DIGEST = 1 << 1,
	F_TIMESTAMP = 1 << 2,
	F_PCRS = 1 << 3,
	F_CERT = 1 << 4,
	F_CABUNDLE = 1 << 5,
	F_PUBKEY = 1 << 6,
	F_USER_DATA = 1 << 7,
	F_NONCE = 1 << 8,
};

static const char *const field_names[] = { "module_id",  "digest",      "timestamp",
	                                   "pcrs",       "certificate", "cabundle",
	                                   "public_key", "user_data",   "nonce" };

static enum attest_error parse_field(int f, const cbor_item_t *v, struct attest_doc *out,
                                     struct cl_diag *d)
{
	size_t len;

	switch (1 << f) {
	case F_MODULE_ID:
		if (!cbr_text_dup(v, &out->module_id, &len) || len == 0)
			break;
		return ATTEST_OK;
	case F_DIGEST:
		if (!cbr_text_dup(v, &out->digest, &len))
			break;
		if (strcmp(out->digest, "SHA384") != 0) {
			cl_diag_set(d, "payload digest is '%s'; NSM documents use SHA384",
			            out->digest);
			return ATTEST_ERR_MALFORMED;
		}
		return ATTEST_OK;
	case F_TIMESTAMP:
		if (!cbr_get_uint(v, &out->timestamp) || out->timestamp == 0)
			break;
		return ATTEST_OK;
	case F_PCRS:
		return parse_pcrs(v, out, d);
	case F_CERT:
		if (!get_bstr(v, 1, ATTEST_FIELD_MAX, &out->certificate, &out->certificate_len))
			break;
		return ATTEST_OK;
	case F_CABUNDLE:
		return parse_cabundle(v, out, d);
	case F_PUBKEY:
		if (!get_opt(v, 0, &out->public_key))
			break;
		return ATTEST_OK;
	case F_USER_DATA:
		if (!get_opt(v, 0, &out->user_data))
			break;
		return ATTEST_OK;
	case F_NONCE:
		if (!get_opt(v, 0, &out->nonce))
			break;
		return ATTEST_OK;
	}
	cl_diag_set(d, "payload field '%s' has the wrong type or size (nitro-compat §3.5)",
	            field_names[f]);
	return ATTEST_ERR_MALFORMED;
}

enum attest_error attest_payload_parse(const uint8_t *buf, size_t len, struct attest_doc *out,
                                       struct cl_diag *d)
{
	cbor_item_t *root;
	struct cbor_pair *pairs;
	enum attest_error err = ATTEST_ERR_MALFORMED;
	unsigned seen = 0;

	memset(out, 0, sizeof(*out));
	if (len == 0 || len > PAYLOAD_MAX) {
		cl_diag_set(d, "payload is %zu bytes; it must be 1..%d", len, PAYLOAD_MAX);
		return ATTEST_ERR_MALFORMED;
	}
	root = cbr_load(buf, len);
	if (!root || !cbor_isa_map(root)) {
		cl_diag_set(d, "payload is not a CBOR map");
		goto out;
	}
	pairs = cbor_map_handle(root);
	for (size_t i = 0; i < cbor_map_size(root); i++) {
		int f = -1;

		for (int k = 0; k < 9; k++)
			if (cbr_text_eq(pairs[i].key, field_names[k]))
				f = k;
		if (f < 0)
			continue; /* unknown keys are ignored: new fields must not break us */
		if (seen & (1u << f)) {
			cl_diag_set(d, "payload field '%s' appears twice", field_names[f]);
			goto out;
		}
		seen |= 1u << f;
		err = parse_field(f, pairs[i].value, out, d);
		if (err)
			goto out;
		err = ATTEST_ERR_MALFORMED;
	}
	for (int k = 0; k < 9; k++) {
		if (!(seen & (1u << k))) {
			cl_diag_set(d, "payload has no '%s' field", field_names[k]);
			goto out;
		}
	}
	err = ATTEST_OK;
out:
	if (root)
		cbor_decref(&root);
	if (err)
		attest_doc_free(out);
	return err;
}

static X509 *parse_der(const uint8_t *p, size_t len)
{
	const unsigned char *q = p;
	X509 *x = d2i_X509(NULL, &q, (long)len);

	if (x && q != p + len) { /* trailing bytes */
		X509_free(x);
		return NULL;
	}
	return x;
}

static X509 *parse_root(const uint8_t *p, size_t len)
{
	BIO *bio;
	X509 *x;

	if (len > 10 && !memcmp(p, "-----BEGIN", 10)) {
		bio = BIO_new_mem_buf(p, (int)len);
		x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
		BIO_free(bio);
		return x;
	}
	/* PEM with leading text or whitespace */
	if (memmem(p, len, "-----BEGIN CERTIFICATE-----", 27)) {
		bio = BIO_new_mem_buf(p, (int)len);
		x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
		BIO_free(bio);
		return x;
	}
	return parse_der(p, len);
}

static void subject_of(X509 *x, char *buf, size_t cap)
{
	X509_NAME_oneline(X509_get_subject_name(x), buf, (int)cap);
}

static enum attest_error check_chain(struct attest_doc *doc, X509 *leaf, const uint8_t *root,
                                     size_t root_len, int64_t at_time, struct cl_diag *d)
{
	X509 *anchor = parse_root(root, root_len);
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	enum attest_error err = ATTEST_ERR_NOMEM;
	char subj[256];

	if (!store || !ctx || !untrusted)
		goto out;
	if (!anchor) {
		cl_diag_set(d, "the trusted root is not a PEM or DER X.509 certificate");
		err = ATTEST_ERR_CHAIN;
		goto out;
	}
	if (X509_STORE_add_cert(store, anchor) != 1)
		goto out;
	for (size_t i = 0; i < doc->cabundle_count; i++) {
		X509 *c = parse_der(doc->cabundle[i], doc->cabundle_lens[i]);

		if (!c) {
			cl_diag_set(d, "cabundle[%zu] is not a DER X.509 certificate", i);
			err = ATTEST_ERR_MALFORMED;
			goto out;
		}
		if (!sk_X509_push(untrusted, c)) {
			X509_free(c);
			goto out;
		}
	}
	if (X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1)
		goto out;
	if (at_time)
		X509_STORE_CTX_set_time(ctx, 0, (time_t)at_time);
	err = ATTEST_ERR_CHAIN;
	if (X509_verify_cert(ctx) != 1) {
		int e = X509_STORE_CTX_get_error(ctx);
		X509 *bad = X509_STORE_CTX_get_current_cert(ctx);

		subj[0] = 0;
		if (bad)
			subject_of(bad, subj, sizeof(subj));
		cl_diag_set(d,
		            "certificate chain does not verify to the given root: %s (at depth %d, "
		            "%s)",
		            X509_verify_cert_error_string(e), X509_STORE_CTX_get_error_depth(ctx),
		            subj[0] ? subj : "unknown certificate");
		goto out;
	}
	/* OpenSSL checks CA flags and path lengths; the NSM validation rules also require the
	 * key usages explicitly (attestation_process.md): keyCertSign on every CA, and
	 * digitalSignature on the leaf. */
	{
		STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);

		for (int i = 0; i < sk_X509_num(chain); i++) {
			X509 *c = sk_X509_value(chain, i);
			uint32_t ku = X509_get_key_usage(c);

			subject_of(c, subj, sizeof(subj));
			if (i == 0 && !(ku & KU_DIGITAL_SIGNATURE)) {
				cl_diag_set(d,
				            "leaf certificate %s lacks the digitalSignature key "
				            "usage",
				            subj);
				goto out;
			}
			if (i > 0 && (X509_check_ca(c) < 1 || !(ku & KU_KEY_CERT_SIGN))) {
				cl_diag_set(d, "CA certificate %s is not a CA with keyCertSign",
				            subj);
				goto out;
			}
		}
	}
	err = ATTEST_OK;
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_pop_free(untrusted, X509_free);
	X509_free(anchor);
	return err;
}

static void hexpre(const uint8_t *p, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	size_t m = n < 8 ? n : 8;

	for (size_t i = 0; i < m; i++) {
		out[2 * i] = hx[p[i] >> 4];
		out[2 * i + 1] = hx[p[i] & 15];
	}
	out[2 * m] = 0;
}

static enum attest_error check_field(const char *name, const struct attest_field *f,
                                     const uint8_t *want, size_t want_len, struct cl_diag *d)
{
	if (!want)
		return ATTEST_OK;
	if (!f->present) {
		cl_diag_set(d, "document has no %s, but one was expected", name);
		return ATTEST_ERR_MISMATCH;
	}
	if (f->len != want_len || (want_len && memcmp(f->data, want, want_len))) {
		char a[17], b[17];

		hexpre(f->data, f->len, a);
		hexpre(want, want_len, b);
		cl_diag_set(d,
		            "document %s (%zu bytes, %s…) differs from the expected (%zu bytes, "
		            "%s…)",
		            name, f->len, a, want_len, b);
		return ATTEST_ERR_MISMATCH;
	}
	return ATTEST_OK;
}

static enum attest_error check_expected(const struct attest_doc *doc,
                                        const struct attest_expect *exp, struct cl_diag *d)
{
	enum attest_error err;

	for (unsigned i = 0; i < ATTEST_MAX_PCRS; i++) {
		if (!exp->pcr[i])
			continue;
		if (!doc->pcr_present[i]) {
			cl_diag_set(d, "document has no PCR%u, but a value was expected", i);
			return ATTEST_ERR_MISMATCH;
		}
		if (doc->pcr_len[i] != exp->pcr_len[i] ||
		    memcmp(doc->pcr[i], exp->pcr[i], exp->pcr_len[i])) {
			char a[17], b[17];

			hexpre(doc->pcr[i], doc->pcr_len[i], a);
			hexpre(exp->pcr[i], exp->pcr_len[i], b);
			cl_diag_set(d, "PCR%u is %s… in the document but %s… was expected", i, a,
			            b);
			return ATTEST_ERR_MISMATCH;
		}
	}
	if ((err = check_field("nonce", &doc->nonce, exp->nonce, exp->nonce_len, d)) ||
	    (err = check_field("user_data", &doc->user_data, exp->user_data, exp->user_data_len,
	                       d)) ||
	    (err = check_field("public_key", &doc->public_key, exp->public_key, exp->public_key_len,
	                       d)))
		return err;
	return ATTEST_OK;
}

enum attest_error attest_verify(const uint8_t *doc, size_t len, const uint8_t *root,
                                size_t root_len, const struct attest_expect *expect,
                                struct attest_doc *out, struct cl_diag *d)
{
	struct cose_sign1 msg;
	enum cose_error ce;
	enum attest_error err;
	EVP_PKEY *pub = NULL;
	X509 *leaf = NULL;

	memset(out, 0, sizeof(*out));
	if (len > ATTEST_DOC_MAX) {
		cl_diag_set(d, "document is %zu bytes, more than the %d an NSM document can be",
		            len, ATTEST_DOC_MAX);
		return ATTEST_ERR_MALFORMED;
	}
	ce = cose_sign1_decode(doc, len, &msg, d);
	if (ce) {
		cl_diag_prefix(d, "not an attestation document");
		return ce == COSE_ERR_NOMEM ? ATTEST_ERR_NOMEM : ATTEST_ERR_MALFORMED;
	}
	if (msg.alg != COSE_ALG_ES384) {
		cl_diag_set(d,
		            "document is signed with COSE algorithm %lld; NSM documents use -35 "
		            "(ES384)",
		            (long long)msg.alg);
		cose_sign1_free(&msg);
		return ATTEST_ERR_MALFORMED;
	}
	err = attest_payload_parse(msg.payload, msg.payload_len, out, d);
	if (err)
		goto out;
	out->alg = msg.alg;
	leaf = parse_der(out->certificate, out->certificate_len);
	pub = leaf ? X509_get_pubkey(leaf) : NULL;
	if (!leaf || !pub) {
		cl_diag_set(d, "payload 'certificate' is not a DER X.509 certificate with a key");
		err = ATTEST_ERR_MALFORMED;
		goto out;
	}
	ce = cose_sign1_verify(&msg, pub, d);
	if (ce) {
		cl_diag_prefix(d, "signature check with the leaf certificate's key failed");
		err = ce == COSE_ERR_NOMEM ? ATTEST_ERR_NOMEM : ATTEST_ERR_SIGNATURE;
		goto out;
	}
	err = check_chain(out, leaf, root, root_len, expect ? expect->at_time : 0, d);
	if (err)
		goto out;
	if (expect)
		err = check_expected(out, expect, d);
out:
	ERR_clear_error();
	EVP_PKEY_free(pub);
	X509_free(leaf);
	cose_sign1_free(&msg);
	if (err == ATTEST_ERR_MALFORMED || err == ATTEST_ERR_NOMEM)
		attest_doc_free(out);
	return err;
}
