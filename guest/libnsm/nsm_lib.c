/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libnsm: AWS nsm-lib's C API over /dev/nsm (docs/attestation.md, nitro-compat §3.1–§3.3).
 * Requests are encoded exactly as serde_cbor encodes the Rust Request enum; responses are
 * decoded tolerantly (key order, integer width, definite or indefinite containers, unknown
 * fields skipped).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "nsm.h"
#include "nsm_cbor.h"
#include "nsm_transport.h"

#define API __attribute__((visibility("default")))

/* <linux/nsm.h>, spelled out so the library builds against older kernel headers. */
struct nsm_iovec {
	uint64_t addr;
	uint64_t len;
};

struct nsm_raw {
	struct nsm_iovec request;
	struct nsm_iovec response;
};

#define NSM_IOCTL_RAW 0xC0200A00u /* _IOWR(0x0A, 0, struct nsm_raw) */

_Static_assert(sizeof(struct nsm_raw) == 32, "struct nsm_raw is 32 bytes");
_Static_assert(sizeof(NsmDescription) == 252, "NsmDescription is 252 bytes as in AWS nsm-lib");

static int ioctl_transport(void *opaque, int32_t fd, const uint8_t *req, size_t req_len,
                           uint8_t *resp, size_t *resp_len)
{
	struct nsm_raw raw = {
		.request = { (uint64_t)(uintptr_t)req, req_len },
		.response = { (uint64_t)(uintptr_t)resp, *resp_len },
	};

	(void)opaque;
	if (ioctl(fd, NSM_IOCTL_RAW, &raw) != 0)
		return errno ? errno : EIO;
	/* The driver reports the length it copied, capped at our capacity. */
	*resp_len = raw.response.len < *resp_len ? (size_t)raw.response.len : *resp_len;
	return 0;
}

/* The transport is process-wide, like the fd the AWS API hands around. */
static nsm_transport_fn transport = ioctl_transport;
static void *transport_opaque;

void nsm_lib_set_transport(nsm_transport_fn fn, void *opaque)
{
	transport = fn ? fn : ioctl_transport;
	transport_opaque = fn ? opaque : NULL;
}

static const char *device_path = "/dev/nsm";

void nsm_lib_set_device_path(const char *path)
{
	device_path = path ? path : "/dev/nsm";
}

API int32_t nsm_lib_init(void)
{
	int fd = open(device_path, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -1 : fd;
}

API void nsm_lib_exit(int32_t fd)
{
	close(fd);
}

/* A decoded response: the variant name and, for struct variants, a reader on its body. */
struct resp {
	uint8_t buf[NSM_RESPONSE_MAX_SIZE];
	struct nc_r body;
	const char *variant;
	size_t variant_len;
	bool has_body;
};

static const char *const error_names[] = {
	"Success",          "InvalidArgument", "InvalidIndex",  "InvalidResponse", "ReadOnlyIndex",
	"InvalidOperation", "BufferTooSmall",  "InputTooLarge", "InternalError",
};

/*
 * Send the encoded request and split the response into variant and body. Returns
 * ERROR_CODE_SUCCESS with @r filled, or the error the NSM (or the transport) reported.
 */
static ErrorCode exchange(int32_t fd, const struct nc_w *req, struct resp *r)
{
	size_t len = sizeof(r->buf);
	uint8_t major;
	struct nc_it it;
	bool err;
	int rc;

	if (req->overflow || req->len > NSM_REQUEST_MAX_SIZE)
		return ERROR_CODE_INPUT_TOO_LARGE;
	rc = transport(transport_opaque, fd, req->buf, req->len, r->buf, &len);
	if (rc)
		return rc == EMSGSIZE ? ERROR_CODE_INPUT_TOO_LARGE : ERROR_CODE_INTERNAL_ERROR;
	r->body = (struct nc_r){ .p = r->buf, .len = len };
	r->has_body = false;
	/* Unit variant: a bare text string. */
	if (nc_r_peek(&r->body, &major) && major == NC_TEXT) {
		if (!nc_r_text(&r->body, &r->variant, &r->variant_len) || r->body.off != len)
			return ERROR_CODE_INTERNAL_ERROR;
		return ERROR_CODE_SUCCESS;
	}
	/* Struct or newtype variant: a map with one text key. */
	if (!nc_r_begin(&r->body, NC_MAP, &it) || !nc_r_next(&r->body, &it, &err) ||
	    !nc_r_text(&r->body, &r->variant, &r->variant_len))
		return ERROR_CODE_INTERNAL_ERROR;
	if (nc_r_text_eq(r->variant, r->variant_len, "Error")) {
		const char *name;
		size_t n;

		if (!nc_r_text(&r->body, &name, &n))
			return ERROR_CODE_INTERNAL_ERROR;
		for (size_t i = 1; i < sizeof(error_names) / sizeof(error_names[0]); i++)
			if (nc_r_text_eq(name, n, error_names[i]))
				return (ErrorCode)i;
		/* An error name we do not know is an undecodable response. */
		return ERROR_CODE_INTERNAL_ERROR;
	}
	r->has_body = true;
	return ERROR_CODE_SUCCESS;
}

static bool is_variant(const struct resp *r, const char *name, bool body)
{
	return r->has_body == body && nc_r_text_eq(r->variant, r->variant_len, name);
}

/* Walk the body map of a struct variant: @fn is called for each field; unknown fields are
 * skipped. */
typedef bool (*field_fn)(struct nc_r *rd, const char *key, size_t klen, void *ctx);

static bool each_field(struct resp *r, field_fn fn, void *ctx)
{
	struct nc_it it;
	bool err;

	if (!nc_r_begin(&r->body, NC_MAP, &it))
		return false;
	while (nc_r_next(&r->body, &it, &err)) {
		const char *k;
		size_t kl;

		if (!nc_r_text(&r->body, &k, &kl) || !fn(&r->body, k, kl, ctx))
			return false;
	}
	return !err;
}

/* The AWS output-buffer rule (nsm_get_raw_from_vec). */
static ErrorCode copy_out(const uint8_t *src, size_t n, uint8_t *dst, uint32_t *dst_len)
{
	ErrorCode rc;

	if (!dst) {
		*dst_len = 0;
		return ERROR_CODE_BUFFER_TOO_SMALL;
	}
	rc = *dst_len >= n ? ERROR_CODE_SUCCESS : ERROR_CODE_BUFFER_TOO_SMALL;
	if (*dst_len > n)
		*dst_len = (uint32_t)n;
	memcpy(dst, src, *dst_len);
	return rc;
}

/* {"<variant>": {"<field>": u16}} */
static void enc_u16_req(struct nc_w *w, const char *variant, const char *field, uint16_t v)
{
	nc_w_head(w, NC_MAP, 1);
	nc_w_text(w, variant);
	nc_w_head(w, NC_MAP, 1);
	nc_w_text(w, field);
	nc_w_head(w, NC_UINT, v);
}

struct bytes_field {
	const char *name;
	const uint8_t *p;
	size_t n;
	bool found;
};

static bool take_bytes(struct nc_r *rd, const char *k, size_t kl, void *ctx)
{
	struct bytes_field *f = ctx;

	if (!nc_r_text_eq(k, kl, f->name))
		return nc_r_skip(rd);
	if (f->found || !nc_r_bytes(rd, &f->p, &f->n))
		return false;
	f->found = true;
	return true;
}

struct pcr_fields {
	struct bytes_field data;
	bool lock, has_lock;
};

static bool take_pcr(struct nc_r *rd, const char *k, size_t kl, void *ctx)
{
	struct pcr_fields *f = ctx;

	if (nc_r_text_eq(k, kl, "lock")) {
		if (f->has_lock || !nc_r_bool(rd, &f->lock))
			return false;
		f->has_lock = true;
		return true;
	}
	return take_bytes(rd, k, kl, &f->data);
}

API ErrorCode nsm_describe_pcr(int32_t fd, uint16_t index, bool *lock, uint8_t *data,
                               uint32_t *data_len)
{
	uint8_t rq[64];
	struct nc_w w = { .buf = rq, .cap = sizeof(rq) };
	struct resp r;
	struct pcr_fields f = { .data = { .name = "data" } };
	ErrorCode rc;

	if (!lock || !data_len)
		return ERROR_CODE_INVALID_ARGUMENT;
	enc_u16_req(&w, "DescribePCR", "index", index);
	rc = exchange(fd, &w, &r);
	if (rc)
		return rc;
	if (!is_variant(&r, "DescribePCR", true))
		return ERROR_CODE_INVALID_RESPONSE;
	if (!each_field(&r, take_pcr, &f) || !f.has_lock || !f.data.found)
		return ERROR_CODE_INTERNAL_ERROR;
	*lock = f.lock;
	return copy_out(f.data.p, f.data.n, data, data_len);
}

API ErrorCode nsm_extend_pcr(int32_t fd, uint16_t index, const uint8_t *data, uint32_t data_len,
                             uint8_t *pcr_data, uint32_t *pcr_data_len)
{
	uint8_t rq[NSM_REQUEST_MAX_SIZE];
	struct nc_w w = { .buf = rq, .cap = sizeof(rq) };
	struct bytes_field f = { .name = "data" };
	struct resp r;
	ErrorCode rc;

	if (!data || !pcr_data_len)
		return ERROR_CODE_INVALID_ARGUMENT;
	/* Field order as serde: index, then data. */
	nc_w_head(&w, NC_MAP, 1);
	nc_w_text(&w, "ExtendPCR");
	nc_w_head(&w, NC_MAP, 2);
	nc_w_text(&w, "index");
	nc_w_head(&w, NC_UINT, index);
	nc_w_text(&w, "data");
	nc_w_bytes(&w, data, data_len);
	rc = exchange(fd, &w, &r);
	if (rc)
		return rc;
	if (!is_variant(&r, "ExtendPCR", true))
		return ERROR_CODE_INVALID_RESPONSE;
	if (!each_field(&r, take_bytes, &f) || !f.found)
		return ERROR_CODE_INTERNAL_ERROR;
	return copy_out(f.p, f.n, pcr_data, pcr_data_len);
}

static ErrorCode lock_common(int32_t fd, const char *variant, const char *field, uint16_t v)
{
	uint8_t rq[64];
	struct nc_w w = { .buf = rq, .cap = sizeof(rq) };
	struct resp r;
	ErrorCode rc;

	enc_u16_req(&w, variant, field, v);
	rc = exchange(fd, &w, &r);
	if (rc)
		return rc;
	return is_variant(&r, variant, false) ? ERROR_CODE_SUCCESS : ERROR_CODE_INVALID_RESPONSE;
}

API ErrorCode nsm_lock_pcr(int32_t fd, uint16_t index)
{
	return lock_common(fd, "LockPCR", "index", index);
}

API ErrorCode nsm_lock_pcrs(int32_t fd, uint16_t range)
{
	return lock_common(fd, "LockPCRs", "range", range);
}

struct desc_fields {
	NsmDescription *out;
	unsigned seen;
};

static bool take_u16(struct nc_r *rd, uint16_t *v)
{
	uint64_t x;

	if (!nc_r_uint(rd, &x) || x > UINT16_MAX)
		return false;
	*v = (uint16_t)x;
	return true;
}

static bool take_desc(struct nc_r *rd, const char *k, size_t kl, void *ctx)
{
	struct desc_fields *f = ctx;
	NsmDescription *o = f->out;

	if (nc_r_text_eq(k, kl, "version_major")) {
		f->seen |= 1;
		return take_u16(rd, &o->version_major);
	}
	if (nc_r_text_eq(k, kl, "version_minor")) {
		f->seen |= 2;
		return take_u16(rd, &o->version_minor);
	}
	if (nc_r_text_eq(k, kl, "version_patch")) {
		f->seen |= 4;
		return take_u16(rd, &o->version_patch);
	}
	if (nc_r_text_eq(k, kl, "max_pcrs")) {
		f->seen |= 8;
		return take_u16(rd, &o->max_pcrs);
	}
	if (nc_r_text_eq(k, kl, "module_id")) {
		const char *s;
		size_t n;

		if (!nc_r_text(rd, &s, &n))
			return false;
		/* AWS copies at most 99 bytes and always NUL-terminates. */
		if (n > sizeof(o->module_id) - 1)
			n = sizeof(o->module_id) - 1;
		memcpy(o->module_id, s, n);
		o->module_id[n] = 0;
		o->module_id_len = (uint32_t)n;
		f->seen |= 16;
		return true;
	}
	if (nc_r_text_eq(k, kl, "locked_pcrs")) {
		struct nc_it it;
		bool err;
		uint32_t n = 0;

		if (!nc_r_begin(rd, NC_ARRAY, &it))
			return false;
		while (nc_r_next(rd, &it, &err)) {
			if (n >= 64 || !take_u16(rd, &o->locked_pcrs[n]))
				return false;
			n++;
		}
		o->locked_pcrs_len = n;
		f->seen |= 32;
		return !err;
	}
	if (nc_r_text_eq(k, kl, "digest")) {
		const char *s;
		size_t n;

		if (!nc_r_text(rd, &s, &n))
			return false;
		if (nc_r_text_eq(s, n, "SHA256"))
			o->digest = DIGEST_SHA256;
		else if (nc_r_text_eq(s, n, "SHA384"))
			o->digest = DIGEST_SHA384;
		else if (nc_r_text_eq(s, n, "SHA512"))
			o->digest = DIGEST_SHA512;
		else
			return false;
		f->seen |= 64;
		return true;
	}
	return nc_r_skip(rd);
}

API ErrorCode nsm_get_description(int32_t fd, NsmDescription *nsm_description)
{
	uint8_t rq[16];
	struct nc_w w = { .buf = rq, .cap = sizeof(rq) };
	NsmDescription tmp;
	struct desc_fields f = { .out = &tmp };
	struct resp r;
	ErrorCode rc;

	if (!nsm_description)
		return ERROR_CODE_INVALID_ARGUMENT;
	nc_w_text(&w, "DescribeNSM");
	rc = exchange(fd, &w, &r);
	if (rc)
		return rc;
	if (!is_variant(&r, "DescribeNSM", true))
		return ERROR_CODE_INVALID_RESPONSE;
	memset(&tmp, 0, sizeof(tmp));
	if (!each_field(&r, take_desc, &f) || f.seen != 127)
		return ERROR_CODE_INTERNAL_ERROR;
	*nsm_description = tmp;
	return ERROR_CODE_SUCCESS;
}

static void enc_opt(struct nc_w *w, const char *name, const uint8_t *p, uint32_t n)
{
	nc_w_text(w, name);
	if (p)
		nc_w_bytes(w, p, n);
	else
		nc_w_null(w);
}

API ErrorCode nsm_get_attestation_doc(int32_t fd, const uint8_t *user_data, uint32_t user_data_len,
                                      const uint8_t *nonce_data, uint32_t nonce_len,
                                      const uint8_t *pub_key_data, uint32_t pub_key_len,
                                      uint8_t *att_doc_data, uint32_t *att_doc_len)
{
	uint8_t rq[NSM_REQUEST_MAX_SIZE];
	struct nc_w w = { .buf = rq, .cap = sizeof(rq) };
	struct bytes_field f = { .name = "document" };
	struct resp r;
	ErrorCode rc;

	if (!att_doc_len)
		return ERROR_CODE_INVALID_ARGUMENT;
	nc_w_head(&w, NC_MAP, 1);
	nc_w_text(&w, "Attestation");
	nc_w_head(&w, NC_MAP, 3);
	enc_opt(&w, "user_data", user_data, user_data_len);
	enc_opt(&w, "nonce", nonce_data, nonce_len);
	enc_opt(&w, "public_key", pub_key_data, pub_key_len);
	rc = exchange(fd, &w, &r);
	if (rc)
		return rc;
	if (!is_variant(&r, "Attestation", true))
		return ERROR_CODE_INVALID_RESPONSE;
	if (!each_field(&r, take_bytes, &f) || !f.found)
		return ERROR_CODE_INTERNAL_ERROR;
	return copy_out(f.p, f.n, att_doc_data, att_doc_len);
}

API ErrorCode nsm_get_random(int32_t fd, uint8_t *buf, uintptr_t *buf_len)
{
	uint8_t rq[16];
	struct nc_w w = { .buf = rq, .cap = sizeof(rq) };
	struct bytes_field f = { .name = "random" };
	struct resp r;
	ErrorCode rc;

	if (fd < 0 || !buf || !buf_len || *buf_len == 0)
		return ERROR_CODE_INVALID_ARGUMENT;
	nc_w_text(&w, "GetRandom");
	rc = exchange(fd, &w, &r);
	if (rc)
		return rc;
	if (!is_variant(&r, "GetRandom", true))
		return ERROR_CODE_INVALID_RESPONSE;
	if (!each_field(&r, take_bytes, &f) || !f.found)
		return ERROR_CODE_INTERNAL_ERROR;
	if (*buf_len > f.n)
		*buf_len = f.n;
	memcpy(buf, f.p, *buf_len);
	return ERROR_CODE_SUCCESS;
}
