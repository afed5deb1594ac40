/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CBOR of the signature section and of the signed payload, exactly as serde_cbor writes
 * them (docs/eif.md, nitro-compat §1.5). Rust's Vec<u8> is a sequence to serde, so byte vectors
 * become CBOR *arrays of unsigned integers*, one per byte, not byte strings:
 *
 *   section = [ {"signing_certificate": [u8...], "signature": [u8...]} ]
 *   payload = {"register_index": 0, "register_value": [u8 x 48]}
 *
 * Encoding uses libcbor's header encoders (shortest integer widths, definite lengths — what
 * serde_cbor emits). Decoding is a small bounded reader over the untrusted section: definite
 * lengths only, nesting limited, every length checked against the bytes left; it accepts byte
 * strings too, ignores unknown map keys and array elements after the first (only element 0 is
 * ever used by nitro-cli), and rejects trailing bytes (serde_cbor::from_slice does).
 */
#include <stdlib.h>
#include <string.h>

#include <cbor.h>

#include "lib/eif/internal.h"

/* ---- encoding ---------------------------------------------------------------------------- */

struct enc {
	uint8_t *buf;
	size_t len, cap;
	bool failed;
};

static uint8_t *enc_room(struct enc *e, size_t n)
{
	if (e->failed)
		return NULL;
	if (e->len + n > e->cap) {
		size_t cap = e->cap ? e->cap : 1024;
		uint8_t *nb;

		while (cap < e->len + n)
			cap *= 2;
		nb = realloc(e->buf, cap);
		if (!nb) {
			e->failed = true;
			return NULL;
		}
		e->buf = nb;
		e->cap = cap;
	}
	return e->buf + e->len;
}

/* Run one of libcbor's cbor_encode_* header encoders (at most 9 bytes) into the buffer. */
#define ENC(e, fn, v)                               \
	do {                                        \
		uint8_t *p_ = enc_room((e), 9);     \
		if (p_) {                           \
			size_t n_ = fn((v), p_, 9); \
			if (!n_)                    \
				(e)->failed = true; \
			(e)->len += n_;             \
		}                                   \
	} while (0)

static void enc_text(struct enc *e, const char *s)
{
	size_t n = strlen(s);
	uint8_t *p;

	ENC(e, cbor_encode_string_start, n);
	p = enc_room(e, n);
	if (p) {
		memcpy(p, s, n);
		e->len += n;
	}
}

static void enc_u8_array(struct enc *e, const uint8_t *b, size_t n)
{
	ENC(e, cbor_encode_array_start, n);
	for (size_t i = 0; i < n; i++)
		ENC(e, cbor_encode_uint, b[i]);
}

static enum eif_error enc_finish(struct enc *e, uint8_t **out, size_t *out_len)
{
	if (e->failed) {
		free(e->buf);
		return EIF_ERR_NOMEM;
	}
	*out = e->buf;
	*out_len = e->len;
	return EIF_OK;
}

enum eif_error eif_signature_section_encode(const uint8_t *cert_pem, size_t cert_len,
                                            const uint8_t *cose, size_t cose_len, uint8_t **out,
                                            size_t *out_len, struct cl_diag *d)
{
	struct enc e = { 0 };
	enum eif_error err;

	ENC(&e, cbor_encode_array_start, 1);
	ENC(&e, cbor_encode_map_start, 2);
	enc_text(&e, "signing_certificate");
	enc_u8_array(&e, cert_pem, cert_len);
	enc_text(&e, "signature");
	enc_u8_array(&e, cose, cose_len);
	if ((err = enc_finish(&e, out, out_len)))
		return err;
	if (*out_len > EIF_SIGNATURE_MAX) {
		cl_diag_set(
		        d,
		        "the signature section would be %zu bytes, more than the %u allowed; use a "
		        "smaller certificate (%zu bytes of PEM)",
		        *out_len, EIF_SIGNATURE_MAX, cert_len);
		free(*out);
		*out = NULL;
		return EIF_ERR_CERT;
	}
	return EIF_OK;
}

enum eif_error eif_pcr_info_encode(uint32_t index, const uint8_t value[EIF_PCR_SIZE], uint8_t **out,
                                   size_t *out_len)
{
	struct enc e = { 0 };

	ENC(&e, cbor_encode_map_start, 2);
	enc_text(&e, "register_index");
	ENC(&e, cbor_encode_uint, index);
	enc_text(&e, "register_value");
	enc_u8_array(&e, value, EIF_PCR_SIZE);
	return enc_finish(&e, out, out_len);
}

/* ---- decoding ---------------------------------------------------------------------------- */

struct dec {
	const uint8_t *p;
	size_t len, pos;
	struct cl_diag *d;
};

enum { MT_UINT = 0, MT_NINT, MT_BYTES, MT_TEXT, MT_ARRAY, MT_MAP, MT_TAG, MT_SIMPLE };

/* One item header: major type and argument. Definite lengths only. */
static bool dec_head(struct dec *s, int *mt, uint64_t *arg)
{
	uint8_t ib, ai;
	size_t n;

	if (s->pos >= s->len) {
		cl_diag_set(s->d, "CBOR ends early at byte %zu of %zu", s->pos, s->len);
		return false;
	}
	ib = s->p[s->pos++];
	*mt = ib >> 5;
	ai = ib & 0x1f;
	if (ai < 24) {
		*arg = ai;
		return true;
	}
	if (ai > 27) {
		cl_diag_set(s->d,
		            "CBOR item at byte %zu uses an indefinite length or reserved encoding "
		            "(0x%02x), which serde_cbor never writes",
		            s->pos - 1, ib);
		return false;
	}
	n = (size_t)1 << (ai - 24);
	if (s->len - s->pos < n) {
		cl_diag_set(s->d, "CBOR ends early at byte %zu of %zu", s->pos, s->len);
		return false;
	}
	*arg = 0;
	for (size_t i = 0; i < n; i++)
		*arg = *arg << 8 | s->p[s->pos++];
	return true;
}

/* Skip one complete item (bounded nesting). */
static bool dec_skip(struct dec *s, int depth)
{
	uint64_t arg;
	int mt;

	if (depth > 16) {
		cl_diag_set(s->d, "CBOR nests deeper than 16 levels at byte %zu", s->pos);
		return false;
	}
	if (!dec_head(s, &mt, &arg))
		return false;
	switch (mt) {
	case MT_BYTES:
	case MT_TEXT:
		if (arg > s->len - s->pos) {
			cl_diag_set(s->d, "CBOR string of %llu bytes at byte %zu runs past the end",
			            (unsigned long long)arg, s->pos);
			return false;
		}
		s->pos += (size_t)arg;
		return true;
	case MT_ARRAY:
	case MT_MAP:
		/* every item takes at least one byte: this bounds the loop */
		if (arg > s->len - s->pos) {
			cl_diag_set(
			        s->d,
			        "CBOR container of %llu items at byte %zu is longer than the data",
			        (unsigned long long)arg, s->pos);
			return false;
		}
		for (uint64_t i = 0; i < (mt == MT_MAP ? 2 * arg : arg); i++)
			if (!dec_skip(s, depth + 1))
				return false;
		return true;
	case MT_TAG:
		return dec_skip(s, depth + 1);
	default:
		return true;
	}
}

/* A Vec<u8>: an array of uints 0..255 (as written) or, tolerated, a byte string. */
static enum eif_error dec_bytes(struct dec *s, const char *what, uint8_t **out, size_t *out_len)
{
	uint64_t n, v;
	uint8_t *b;
	int mt;

	if (!dec_head(s, &mt, &n))
		return EIF_ERR_SIGNATURE;
	if (mt != MT_ARRAY && mt != MT_BYTES) {
		cl_diag_set(s->d, "\"%s\" is CBOR major type %d, expected an array of bytes", what,
		            mt);
		return EIF_ERR_SIGNATURE;
	}
	if (n > s->len - s->pos) {
		cl_diag_set(s->d, "\"%s\" claims %llu bytes but only %zu remain", what,
		            (unsigned long long)n, s->len - s->pos);
		return EIF_ERR_SIGNATURE;
	}
	b = malloc(n ? (size_t)n : 1);
	if (!b)
		return EIF_ERR_NOMEM;
	if (mt == MT_BYTES) {
		memcpy(b, s->p + s->pos, (size_t)n);
		s->pos += (size_t)n;
	} else {
		for (uint64_t i = 0; i < n; i++) {
			if (!dec_head(s, &mt, &v)) {
				free(b);
				return EIF_ERR_SIGNATURE;
			}
			if (mt != MT_UINT || v > 255) {
				cl_diag_set(s->d, "element %llu of \"%s\" is not an integer 0..255",
				            (unsigned long long)i, what);
				free(b);
				return EIF_ERR_SIGNATURE;
			}
			b[i] = (uint8_t)v;
		}
	}
	free(*out); /* a repeated key: the last one wins, as in serde */
	*out = b;
	*out_len = (size_t)n;
	return EIF_OK;
}

enum eif_error eif_signature_section_decode(const uint8_t *buf, size_t len, uint8_t **cert_pem,
                                            size_t *cert_len, uint8_t **cose, size_t *cose_len,
                                            struct cl_diag *d)
{
	struct dec s = { .p = buf, .len = len, .d = d };
	enum eif_error err = EIF_ERR_SIGNATURE;
	uint64_t n, nkeys, klen;
	int mt;

	*cert_pem = *cose = NULL;
	*cert_len = *cose_len = 0;
	if (!dec_head(&s, &mt, &n))
		goto fail;
	if (mt != MT_ARRAY || n == 0) {
		cl_diag_set(d,
		            "the signature section is not a non-empty CBOR array (major type %d, "
		            "%llu items)",
		            mt, (unsigned long long)n);
		goto fail;
	}
	if (!dec_head(&s, &mt, &nkeys))
		goto fail;
	if (mt != MT_MAP) {
		cl_diag_set(d, "signature element 0 is CBOR major type %d, expected a map", mt);
		goto fail;
	}
	for (uint64_t k = 0; k < nkeys; k++) {
		const char *key;

		if (!dec_head(&s, &mt, &klen))
			goto fail;
		if (mt != MT_TEXT || klen > s.len - s.pos) {
			cl_diag_set(d, "signature map key %llu is not a text string",
			            (unsigned long long)k);
			goto fail;
		}
		key = (const char *)s.p + s.pos;
		s.pos += (size_t)klen;
		if (klen == 19 && !memcmp(key, "signing_certificate", 19))
			err = dec_bytes(&s, "signing_certificate", cert_pem, cert_len);
		else if (klen == 9 && !memcmp(key, "signature", 9))
			err = dec_bytes(&s, "signature", cose, cose_len);
		else
			err = dec_skip(&s, 0) ? EIF_OK : EIF_ERR_SIGNATURE;
		if (err)
			goto fail;
		err = EIF_ERR_SIGNATURE;
	}
	for (uint64_t i = 1; i < n; i++)
		if (!dec_skip(&s, 0))
			goto fail;
	if (s.pos != len) {
		cl_diag_set(d, "%zu bytes of garbage after the signature CBOR", len - s.pos);
		goto fail;
	}
	if (!*cert_pem || !*cose) {
		cl_diag_set(d, "the signature map lacks \"%s\"",
		            *cert_pem ? "signature" : "signing_certificate");
		goto fail;
	}
	return EIF_OK;
fail:
	free(*cert_pem);
	free(*cose);
	*cert_pem = *cose = NULL;
	*cert_len = *cose_len = 0;
	return err;
}
