/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/evp.h>

#include "lib/cose/cbor_reader.h"
#include "lib/cose/cbor_writer.h"
#include "lib/cose/cose.h"
#include "lib/nsm/device.h"

struct nsm_state {
	uint8_t pcr[NSM_PCR_COUNT][NSM_PCR_LEN];
	bool locked[NSM_PCR_COUNT];
	char module_id[NSM_MODULE_ID_MAX + 1];
	EVP_PKEY *key;
	uint8_t *cert;
	size_t cert_len;
	uint8_t **chain;
	size_t *chain_lens;
	size_t chain_count;
	uint64_t (*clock_ms)(void *opaque);
	void *clock_opaque;
	enum nsm_status last;
};

static const char *const status_names[] = {
	[NSM_SUCCESS] = "Success",
	[NSM_INVALID_ARGUMENT] = "InvalidArgument",
	[NSM_INVALID_INDEX] = "InvalidIndex",
	[NSM_INVALID_RESPONSE] = "InvalidResponse",
	[NSM_READ_ONLY_INDEX] = "ReadOnlyIndex",
	[NSM_INVALID_OPERATION] = "InvalidOperation",
	[NSM_BUFFER_TOO_SMALL] = "BufferTooSmall",
	[NSM_INPUT_TOO_LARGE] = "InputTooLarge",
	[NSM_INTERNAL_ERROR] = "InternalError",
};

const char *nsm_status_name(enum nsm_status st)
{
	if ((unsigned)st >= sizeof(status_names) / sizeof(status_names[0]))
		return NULL;
	return status_names[st];
}

const char *nsm_strerror(enum nsm_error err)
{
	switch (err) {
	case NSM_OK:
		return "success";
	case NSM_ERR_NOMEM:
		return "out of memory";
	case NSM_ERR_CONFIG:
		return "invalid NSM configuration";
	case NSM_ERR_RESPONSE_TOO_SMALL:
		return "NSM response does not fit the buffer";
	}
	return "unknown NSM error";
}

/* TPM-style extend: pcr = SHA384(pcr ‖ data) (nitro-compat §3.4). */
static bool pcr_extend(uint8_t pcr[NSM_PCR_LEN], const void *data, size_t len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = 0;
	bool ok;

	ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha384(), NULL) == 1 &&
	     EVP_DigestUpdate(ctx, pcr, NSM_PCR_LEN) == 1 &&
	     (len == 0 || EVP_DigestUpdate(ctx, data, len) == 1) &&
	     EVP_DigestFinal_ex(ctx, pcr, &n) == 1 && n == NSM_PCR_LEN;
	EVP_MD_CTX_free(ctx);
	return ok;
}

static uint64_t realtime_ms(void *opaque)
{
	struct timespec ts;

	(void)opaque;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void nsm_state_free(struct nsm_state *s)
{
	if (!s)
		return;
	EVP_PKEY_free(s->key);
	free(s->cert);
	for (size_t i = 0; i < s->chain_count; i++)
		free(s->chain[i]);
	free(s->chain);
	free(s->chain_lens);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);

	if (c && n)
		memcpy(c, p, n);
	return c;
}

/* PCR3/PCR4 input @v (NULL: none) is usable; else @d names it. */
static bool parent_value_ok(const char *v, int pcr, struct cl_diag *d)
{
	if (!v || nsm_parent_value_valid(v))
		return true;
	cl_diag_set(d,
	            "the parent %s '%.80s' (PCR%d input) must be 1..%d printable characters "
	            "without spaces",
	            pcr == 3 ? "role ARN" : "instance id", v, pcr, NSM_PARENT_VALUE_MAX);
	return false;
}

enum nsm_error nsm_state_new(const struct nsm_config *cfg, struct nsm_state **out,
                             struct cl_diag *d)
{
	struct nsm_state *s;
	size_t idlen;
	int64_t alg;

	*out = NULL;
	idlen = cfg->module_id ? strlen(cfg->module_id) : 0;
	if (idlen == 0 || idlen > NSM_MODULE_ID_MAX) {
		cl_diag_set(d, "NSM module id '%s' must be 1..%d bytes", cfg->module_id ?: "",
		            NSM_MODULE_ID_MAX);
		return NSM_ERR_CONFIG;
	}
	if (!parent_value_ok(cfg->parent_role, 3, d) || !parent_value_ok(cfg->parent_id, 4, d))
		return NSM_ERR_CONFIG;
	if (!cfg->signing_key || cose_alg_for_key(cfg->signing_key, &alg, NULL) != COSE_OK ||
	    alg != COSE_ALG_ES384) {
		cl_diag_set(d, "the NSM signing key must be an EC P-384 private key (documents "
		               "are ES384)");
		return NSM_ERR_CONFIG;
	}
	if (!cfg->certificate || cfg->certificate_len == 0 ||
	    cfg->certificate_len > NSM_ATTEST_FIELD_MAX) {
		cl_diag_set(d,
		            "the NSM leaf certificate is %zu bytes; it must be 1..%d bytes of DER",
		            cfg->certificate_len, NSM_ATTEST_FIELD_MAX);
		return NSM_ERR_CONFIG;
	}
	if (cfg->cabundle_count == 0 || cfg->cabundle_count > 16) {
		cl_diag_set(d,
		            "the NSM CA bundle has %zu certificates; it needs 1..16 (root first)",
		            cfg->cabundle_count);
		return NSM_ERR_CONFIG;
	}
	for (size_t i = 0; i < cfg->cabundle_count; i++) {
		if (!cfg->cabundle[i] || cfg->cabundle_lens[i] == 0 ||
		    cfg->cabundle_lens[i] > NSM_ATTEST_FIELD_MAX) {
			cl_diag_set(d, "CA bundle certificate %zu is %zu bytes; each must be 1..%d",
			            i, cfg->cabundle_lens[i], NSM_ATTEST_FIELD_MAX);
			return NSM_ERR_CONFIG;
		}
	}

	s = calloc(1, sizeof(*s));
	if (!s)
		goto nomem;
	memcpy(s->module_id, cfg->module_id, idlen + 1);
	if (!cfg->debug_mode) {
		memcpy(s->pcr[0], cfg->pcr0, NSM_PCR_LEN);
		memcpy(s->pcr[1], cfg->pcr1, NSM_PCR_LEN);
		memcpy(s->pcr[2], cfg->pcr2, NSM_PCR_LEN);
	}
	if (cfg->parent_role && !pcr_extend(s->pcr[3], cfg->parent_role, strlen(cfg->parent_role)))
		goto nomem;
	if (cfg->parent_id && !pcr_extend(s->pcr[4], cfg->parent_id, strlen(cfg->parent_id)))
		goto nomem;
	/* PCR8 names the image's signer; a debug enclave (its console readable by the parent)
	 * must not satisfy a policy on it either, so it reads as zero too. */
	if (cfg->has_pcr8 && !cfg->debug_mode)
		memcpy(s->pcr[8], cfg->pcr8, NSM_PCR_LEN);
	for (unsigned i = 0; i < NSM_LOCKED_AT_BOOT; i++)
		s->locked[i] = true;

	if (EVP_PKEY_up_ref(cfg->signing_key) != 1)
		goto nomem;
	s->key = cfg->signing_key;
	s->cert = dup_bytes(cfg->certificate, cfg->certificate_len);
	s->cert_len = cfg->certificate_len;
	s->chain = calloc(cfg->cabundle_count, sizeof(*s->chain));
	s->chain_lens = calloc(cfg->cabundle_count, sizeof(*s->chain_lens));
	if (!s->cert || !s->chain || !s->chain_lens)
		goto nomem;
	for (size_t i = 0; i < cfg->cabundle_count; i++) {
		s->chain[i] = dup_bytes(cfg->cabundle[i], cfg->cabundle_lens[i]);
		if (!s->chain[i])
			goto nomem;
		s->chain_lens[i] = cfg->cabundle_lens[i];
		s->chain_count = i + 1;
	}
	s->clock_ms = cfg->clock_ms ? cfg->clock_ms : realtime_ms;
	s->clock_opaque = cfg->clock_opaque;
	*out = s;
	return NSM_OK;
nomem:
	nsm_state_free(s);
	cl_diag_set(d, "out of memory creating the NSM state");
	return NSM_ERR_NOMEM;
}

enum nsm_status nsm_last_status(const struct nsm_state *s)
{
	return s->last;
}

bool nsm_pcr_read(const struct nsm_state *s, unsigned index, uint8_t out[NSM_PCR_LEN], bool *locked)
{
	if (index >= NSM_PCR_COUNT)
		return false;
	memcpy(out, s->pcr[index], NSM_PCR_LEN);
	if (locked)
		*locked = s->locked[index];
	return true;
}

/* --- attestation document (nitro-compat §3.5) ------------------------------------------ */

static void put_opt_bytes(struct cbw *w, const char *key, const uint8_t *p, size_t n)
{
	cbw_text(w, key);
	if (p)
		cbw_bytes(w, p, n);
	else
		cbw_null(w);
}

enum nsm_status nsm_attest(struct nsm_state *s, const uint8_t *user_data, size_t user_data_len,
                           const uint8_t *nonce, size_t nonce_len, const uint8_t *public_key,
                           size_t public_key_len, uint8_t **doc, size_t *doc_len)
{
	uint8_t *payload = NULL;
	size_t payload_len = 0;
	enum cose_error ce;
	struct cbw w;

	if ((user_data && user_data_len > NSM_ATTEST_FIELD_MAX) ||
	    (nonce && nonce_len > NSM_ATTEST_FIELD_MAX) ||
	    (public_key && public_key_len > NSM_ATTEST_FIELD_MAX))
		return NSM_INVALID_ARGUMENT;

	/* Field order and types as the AWS AttestationDoc; a definite map(9) as older real
	 * documents and QEMU write (verifiers accept both this and the indefinite form). */
	cbw_init(&w);
	cbw_map(&w, 9);
	cbw_text(&w, "module_id");
	cbw_text(&w, s->module_id);
	cbw_text(&w, "digest");
	cbw_text(&w, "SHA384");
	cbw_text(&w, "timestamp");
	cbw_uint(&w, s->clock_ms(s->clock_opaque));
	/* Real NSMs list PCRs 0..15 (the boot-locked set), whatever was locked later. */
	cbw_text(&w, "pcrs");
	cbw_map(&w, NSM_LOCKED_AT_BOOT);
	for (unsigned i = 0; i < NSM_LOCKED_AT_BOOT; i++) {
		cbw_uint(&w, i);
		cbw_bytes(&w, s->pcr[i], NSM_PCR_LEN);
	}
	cbw_text(&w, "certificate");
	cbw_bytes(&w, s->cert, s->cert_len);
	cbw_text(&w, "cabundle");
	cbw_array(&w, s->chain_count);
	for (size_t i = 0; i < s->chain_count; i++)
		cbw_bytes(&w, s->chain[i], s->chain_lens[i]);
	put_opt_bytes(&w, "public_key", public_key, public_key_len);
	put_opt_bytes(&w, "user_data", user_data, user_data_len);
	put_opt_bytes(&w, "nonce", nonce, nonce_len);
	if (!cbw_finish(&w, &payload, &payload_len))
		return NSM_INTERNAL_ERROR;
	ce = cose_sign1_sign(s->key, payload, payload_len, doc, doc_len, NULL);
	free(payload);
	return ce == COSE_OK ? NSM_SUCCESS : NSM_INTERNAL_ERROR;
}

/* --- request handlers -------------------------------------------------------------------- */

/* A u16 field (serde's type for index/range), any CBOR width. Missing or not an integer that
 * fits u16 → InvalidArgument (a serde decode error on the real device). */
static enum nsm_status get_u16(const cbor_item_t *args, const char *key, uint16_t *out)
{
	bool dup;
	cbor_item_t *v = cbr_map_get(args, key, &dup);
	uint64_t x;

	if (!v || dup || !cbr_get_uint(v, &x) || x > UINT16_MAX)
		return NSM_INVALID_ARGUMENT;
	*out = (uint16_t)x;
	return NSM_SUCCESS;
}

/*
 * An optional byte-buffer field: absent or null → *present = false. serde_bytes also accepts
 * a text string for a ByteBuf, and QEMU does too, so we take either.
 */
static enum nsm_status get_buf(const cbor_item_t *args, const char *key, bool optional,
                               uint8_t **out, size_t *len, bool *present)
{
	bool dup;
	cbor_item_t *v = cbr_map_get(args, key, &dup);
	bool ok;

	*present = false;
	*out = NULL;
	*len = 0;
	if (dup)
		return NSM_INVALID_ARGUMENT;
	if (!v || cbr_is_null(v))
		return optional ? NSM_SUCCESS : NSM_INVALID_ARGUMENT;
	if (cbor_isa_bytestring(v))
		ok = cbr_bytes_dup(v, out, len);
	else if (cbor_isa_string(v))
		ok = cbr_text_dup(v, (char **)out, len);
	else
		return NSM_INVALID_ARGUMENT;
	if (!ok)
		return NSM_INTERNAL_ERROR;
	*present = true;
	return NSM_SUCCESS;
}

static enum nsm_status do_describe_pcr(struct nsm_state *s, const cbor_item_t *args, struct cbw *w)
{
	uint16_t index;
	enum nsm_status st = get_u16(args, "index", &index);

	if (st)
		return st;
	if (index >= NSM_PCR_COUNT)
		return NSM_INVALID_INDEX;
	cbw_map(w, 1);
	cbw_text(w, "DescribePCR");
	cbw_map(w, 2);
	cbw_text(w, "lock");
	cbw_bool(w, s->locked[index]);
	cbw_text(w, "data");
	cbw_bytes(w, s->pcr[index], NSM_PCR_LEN);
	return NSM_SUCCESS;
}

static enum nsm_status do_extend_pcr(struct nsm_state *s, const cbor_item_t *args, struct cbw *w)
{
	uint16_t index;
	uint8_t *data;
	size_t len;
	bool present;
	enum nsm_status st = get_u16(args, "index", &index);

	if (st)
		return st;
	st = get_buf(args, "data", false, &data, &len, &present);
	if (st)
		return st;
	if (index >= NSM_PCR_COUNT)
		st = NSM_INVALID_INDEX;
	else if (s->locked[index])
		st = NSM_READ_ONLY_INDEX;
	else if (!pcr_extend(s->pcr[index], data, len))
		st = NSM_INTERNAL_ERROR;
	free(data);
	if (st)
		return st;
	cbw_map(w, 1);
	cbw_text(w, "ExtendPCR");
	cbw_map(w, 1);
	cbw_text(w, "data");
	cbw_bytes(w, s->pcr[index], NSM_PCR_LEN);
	return NSM_SUCCESS;
}

static enum nsm_status do_lock_pcr(struct nsm_state *s, const cbor_item_t *args, struct cbw *w)
{
	uint16_t index;
	enum nsm_status st = get_u16(args, "index", &index);

	if (st)
		return st;
	if (index >= NSM_PCR_COUNT)
		return NSM_INVALID_INDEX;
	/* Locking twice is refused: the PCR is already read-only (nsm-check expects an error
	 * for LockPCR on 0..15). */
	if (s->locked[index])
		return NSM_READ_ONLY_INDEX;
	s->locked[index] = true;
	cbw_text(w, "LockPCR");
	return NSM_SUCCESS;
}

static enum nsm_status do_lock_pcrs(struct nsm_state *s, const cbor_item_t *args, struct cbw *w)
{
	uint16_t range;
	enum nsm_status st = get_u16(args, "range", &range);

	if (st)
		return st;
	/* [0, range) with range up to max_pcrs; already-locked members are fine. */
	if (range > NSM_PCR_COUNT)
		return NSM_INVALID_INDEX;
	for (unsigned i = 0; i < range; i++)
		s->locked[i] = true;
	cbw_text(w, "LockPCRs");
	return NSM_SUCCESS;
}

static enum nsm_status do_describe_nsm(struct nsm_state *s, struct cbw *w)
{
	size_t nlocked = 0;

	for (unsigned i = 0; i < NSM_PCR_COUNT; i++)
		nlocked += s->locked[i];
	cbw_map(w, 1);
	cbw_text(w, "DescribeNSM");
	cbw_map(w, 7);
	cbw_text(w, "version_major");
	cbw_uint(w, NSM_VERSION_MAJOR);
	cbw_text(w, "version_minor");
	cbw_uint(w, NSM_VERSION_MINOR);
	cbw_text(w, "version_patch");
	cbw_uint(w, NSM_VERSION_PATCH);
	cbw_text(w, "module_id");
	cbw_text(w, s->module_id);
	cbw_text(w, "max_pcrs");
	cbw_uint(w, NSM_PCR_COUNT);
	cbw_text(w, "locked_pcrs"); /* a BTreeSet<u16>: ascending */
	cbw_array(w, nlocked);
	for (unsigned i = 0; i < NSM_PCR_COUNT; i++)
		if (s->locked[i])
			cbw_uint(w, i);
	cbw_text(w, "digest");
	cbw_text(w, "SHA384");
	return NSM_SUCCESS;
}

static enum nsm_status do_get_random(struct cbw *w)
{
	uint8_t buf[NSM_RANDOM_LEN];
	size_t got = 0;

	while (got < sizeof(buf)) {
		ssize_t n = getrandom(buf + got, sizeof(buf) - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return NSM_INTERNAL_ERROR;
		got += (size_t)n;
	}
	cbw_map(w, 1);
	cbw_text(w, "GetRandom");
	cbw_map(w, 1);
	cbw_text(w, "random");
	cbw_bytes(w, buf, sizeof(buf));
	OPENSSL_cleanse(buf, sizeof(buf));
	return NSM_SUCCESS;
}

static enum nsm_status do_attestation(struct nsm_state *s, const cbor_item_t *args, struct cbw *w)
{
	uint8_t *f[3] = { NULL, NULL, NULL }, *doc = NULL;
	size_t l[3] = { 0, 0, 0 }, doc_len = 0;
	bool p[3] = { false, false, false };
	static const char *const names[3] = { "user_data", "nonce", "public_key" };
	enum nsm_status st = NSM_SUCCESS;

	for (int i = 0; i < 3 && !st; i++)
		st = get_buf(args, names[i], true, &f[i], &l[i], &p[i]);
	if (!st)
		st = nsm_attest(s, p[0] ? f[0] : NULL, l[0], p[1] ? f[1] : NULL, l[1],
		                p[2] ? f[2] : NULL, l[2], &doc, &doc_len);
	for (int i = 0; i < 3; i++)
		free(f[i]);
	if (st)
		return st;
	cbw_map(w, 1);
	cbw_text(w, "Attestation");
	cbw_map(w, 1);
	cbw_text(w, "document");
	cbw_bytes(w, doc, doc_len);
	free(doc);
	return NSM_SUCCESS;
}

/* Decode and run one request, writing a success response to @w. */
static enum nsm_status dispatch(struct nsm_state *s, const uint8_t *req, size_t len, struct cbw *w)
{
	cbor_item_t *root = cbr_load(req, len);
	enum nsm_status st = NSM_INVALID_OPERATION;

	/* Anything that is not a request we know is InvalidOperation, as QEMU answers. */
	if (!root)
		return NSM_INVALID_OPERATION;
	if (cbor_isa_string(root)) {
		/* Unit variants travel as a bare text string. */
		if (cbr_text_eq(root, "DescribeNSM"))
			st = do_describe_nsm(s, w);
		else if (cbr_text_eq(root, "GetRandom"))
			st = do_get_random(w);
	} else if (cbor_isa_map(root) && cbor_map_size(root) == 1) {
		/* Struct variants: {"Variant": {fields}}. */
		const cbor_item_t *key = cbor_map_handle(root)[0].key;
		const cbor_item_t *args = cbor_map_handle(root)[0].value;

		if (!cbor_isa_map(args)) {
			if (cbr_text_eq(key, "DescribePCR") || cbr_text_eq(key, "ExtendPCR") ||
			    cbr_text_eq(key, "LockPCR") || cbr_text_eq(key, "LockPCRs") ||
			    cbr_text_eq(key, "Attestation"))
				st = NSM_INVALID_ARGUMENT;
		} else if (cbr_text_eq(key, "DescribePCR")) {
			st = do_describe_pcr(s, args, w);
		} else if (cbr_text_eq(key, "ExtendPCR")) {
			st = do_extend_pcr(s, args, w);
		} else if (cbr_text_eq(key, "LockPCR")) {
			st = do_lock_pcr(s, args, w);
		} else if (cbr_text_eq(key, "LockPCRs")) {
			st = do_lock_pcrs(s, args, w);
		} else if (cbr_text_eq(key, "Attestation")) {
			st = do_attestation(s, args, w);
		}
	}
	cbor_decref(&root);
	return st;
}

enum nsm_error nsm_handle_request(struct nsm_state *s, const uint8_t *req, size_t req_len,
                                  uint8_t *resp, size_t resp_cap, size_t *resp_len)
{
	enum nsm_status st;
	uint8_t *out = NULL;
	size_t out_len = 0;
	struct cbw w;

	cbw_init(&w);
	if (req_len > NSM_REQUEST_MAX)
		st = NSM_INPUT_TOO_LARGE;
	else
		st = dispatch(s, req, req_len, &w);
	if (st == NSM_SUCCESS && w.failed)
		st = NSM_INTERNAL_ERROR;
	if (st != NSM_SUCCESS) {
		cbw_free(&w);
		cbw_init(&w);
		cbw_map(&w, 1);
		cbw_text(&w, "Error");
		cbw_text(&w, nsm_status_name(st));
	}
	s->last = st;
	if (!cbw_finish(&w, &out, &out_len))
		return NSM_ERR_NOMEM;
	if (out_len > resp_cap) {
		free(out);
		return NSM_ERR_RESPONSE_TOO_SMALL;
	}
	memcpy(resp, out, out_len);
	*resp_len = out_len;
	free(out);
	return NSM_OK;
}
