/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_TEST_NSM_UTIL_H
#define CLOISTER_TEST_NSM_UTIL_H

/*
 * Helpers shared by the NSM and attestation tests: a hand-rolled CBOR byte builder (so
 * expected encodings are written out independently of src/lib/cose/cbor_writer.c) and a
 * throw-away P-384 key and self-signed certificate.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

struct hb {
	uint8_t b[16384];
	size_t n;
};

static inline void hb_byte(struct hb *h, uint8_t v)
{
	h->b[h->n++] = v;
}

static inline void hb_mem(struct hb *h, const void *p, size_t len)
{
	memcpy(h->b + h->n, p, len);
	h->n += len;
}

/* Head for major type @major (0..7 << 5) with argument @v, shortest form (RFC 8949 §4.2.1). */
static inline void hb_head(struct hb *h, uint8_t major, uint64_t v)
{
	if (v < 24) {
		hb_byte(h, (uint8_t)(major | v));
	} else if (v <= 0xff) {
		hb_byte(h, major | 24);
		hb_byte(h, (uint8_t)v);
	} else if (v <= 0xffff) {
		hb_byte(h, major | 25);
		hb_byte(h, (uint8_t)(v >> 8));
		hb_byte(h, (uint8_t)v);
	} else if (v <= 0xffffffffu) {
		hb_byte(h, major | 26);
		for (int i = 3; i >= 0; i--)
			hb_byte(h, (uint8_t)(v >> (8 * i)));
	} else {
		hb_byte(h, major | 27);
		for (int i = 7; i >= 0; i--)
			hb_byte(h, (uint8_t)(v >> (8 * i)));
	}
}

static inline void hb_text(struct hb *h, const char *s)
{
	hb_head(h, 0x60, strlen(s));
	hb_mem(h, s, strlen(s));
}

static inline void hb_bytes(struct hb *h, const void *p, size_t len)
{
	hb_head(h, 0x40, len);
	hb_mem(h, p, len);
}

static inline void sha384_extend(uint8_t pcr[48], const void *data, size_t len)
{
	uint8_t buf[48 + 4096];
	unsigned int n;

	memcpy(buf, pcr, 48);
	memcpy(buf + 48, data, len);
	EVP_Digest(buf, 48 + len, pcr, &n, EVP_sha384(), NULL);
}

/* A self-signed certificate for @key with CN=@cn, as DER (caller frees with OPENSSL_free). */
static inline size_t self_signed_der(EVP_PKEY *key, const char *cn, uint8_t **der)
{
	X509 *x = X509_new();
	X509_NAME *name;
	int n;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509_sign(x, key, EVP_sha384());
	*der = NULL;
	n = i2d_X509(x, der);
	X509_free(x);
	return n > 0 ? (size_t)n : 0;
}

static inline bool cl_hex_decode_for_test(const char *in, uint8_t *out, size_t len)
{
	if (strlen(in) != 2 * len)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned v;

		if (sscanf(in + 2 * i, "%2x", &v) != 1)
			return false;
		out[i] = (uint8_t)v;
	}
	return true;
}

#endif
