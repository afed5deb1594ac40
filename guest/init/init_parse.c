/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "init_parse.h"

const char *init_strerror(enum init_error e)
{
	switch (e) {
	case INIT_OK:
		return "success";
	case INIT_ERR_NOMEM:
		return "out of memory";
	case INIT_ERR_NUL_BYTE:
		return "NUL byte inside the text";
	case INIT_ERR_BAD_ENV:
		return "environment line is not KEY=VALUE";
	case INIT_ERR_BAD_MODULE:
		return "module name has characters outside [A-Za-z0-9_-] or is too long";
	case INIT_ERR_EMPTY:
		return "no command to run";
	case INIT_ERR_TOO_LARGE:
		return "too many lines";
	}
	return "unknown error";
}

static bool module_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

static enum init_error check_line(char *s, enum init_split_mode mode)
{
	if (mode == INIT_SPLIT_SKIP_EMPTY) {
		char *eq = strchr(s, '=');
		if (!eq || eq == s)
			return INIT_ERR_BAD_ENV;
	}
	if (mode == INIT_SPLIT_MODULES && !module_name_ok(s))
		return INIT_ERR_BAD_MODULE;
	return INIT_OK;
}

enum init_error init_split_lines(char *buf, size_t len, enum init_split_mode mode,
                                 struct init_list *out, size_t *line_no)
{
	size_t cap = 1, n = 0, line = 0;
	char **v;
	enum init_error err;

	out->strings = NULL;
	out->count = 0;
	*line_no = 0;
	if (memchr(buf, '\0', len))
		return INIT_ERR_NUL_BYTE;
	buf[len] = '\0';
	/* Count lines first so the vector is allocated once. */
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\n')
			cap++;
	if (cap > 1u << 20)
		return INIT_ERR_TOO_LARGE;
	v = calloc(cap + 1, sizeof(*v));
	if (!v)
		return INIT_ERR_NOMEM;
	for (char *p = buf; p < buf + len;) {
		char *nl = memchr(p, '\n', (size_t)(buf + len - p));
		char *next = nl ? nl + 1 : buf + len;

		if (nl)
			*nl = '\0';
		line++;
		if (mode != INIT_SPLIT_KEEP_EMPTY && *p == '\0')
			goto skip;
		if (mode == INIT_SPLIT_MODULES && *p == '#')
			goto skip;
		err = check_line(p, mode);
		if (err != INIT_OK) {
			free(v);
			*line_no = line;
			return err;
		}
		v[n++] = p;
	skip:
		p = next;
	}
	if (mode == INIT_SPLIT_KEEP_EMPTY && n == 0) {
		free(v);
		return INIT_ERR_EMPTY;
	}
	v[n] = NULL;
	out->strings = v;
	out->count = n;
	return INIT_OK;
}

void init_list_free(struct init_list *l)
{
	free(l->strings);
	l->strings = NULL;
	l->count = 0;
}

const char *init_env_path(const struct init_list *env)
{
	const char *found = NULL;

	/* The last assignment wins, as it would in a shell. */
	for (size_t i = 0; i < env->count; i++)
		if (!strncmp(env->strings[i], "PATH=", 5))
			found = env->strings[i] + 5;
	return found;
}

static bool parse_u32(const char *s, size_t n, uint32_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 10)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

void init_parse_cmdline(const char *text, struct init_cmdline *out)
{
	out->heartbeat = true;
	out->measure = false;
	out->exit_port = INIT_EXIT_PORT;

	for (const char *p = text; *p;) {
		size_t n, klen;
		const char *eq, *val;
		uint32_t v;

		while (*p == ' ' || *p == '\n' || *p == '\t')
			p++;
		n = strcspn(p, " \n\t");
		if (n == 0)
			break;
		eq = memchr(p, '=', n);
		klen = eq ? (size_t)(eq - p) : n;
		val = eq ? eq + 1 : NULL;
#define KEY_IS(k) (klen == sizeof(k) - 1 && !memcmp(p, k, klen))
		if (KEY_IS("cloister.heartbeat") && val && parse_u32(val, n - klen - 1, &v))
			out->heartbeat = v != 0;
		else if (KEY_IS("cloister.measure"))
			out->measure = !val || (parse_u32(val, n - klen - 1, &v) && v != 0);
		else if (KEY_IS("cloister.exit_port") && val && parse_u32(val, n - klen - 1, &v))
			out->exit_port = v;
#undef KEY_IS
		p += n;
	}
}

void init_exit_record(int wstatus, uint8_t rec[INIT_EXIT_RECORD_SIZE])
{
	rec[0] = INIT_EXIT_MAGIC;
	if (WIFSIGNALED(wstatus)) {
		rec[1] = 1;
		rec[2] = (uint8_t)WTERMSIG(wstatus);
	} else {
		rec[1] = 0;
		rec[2] = (uint8_t)WEXITSTATUS(wstatus);
	}
	rec[3] = 0;
}

void init_exit_line(int wstatus, char *buf, size_t cap)
{
	if (WIFSIGNALED(wstatus))
		snprintf(buf, cap, "cloister-init: app exited: signal=%d", WTERMSIG(wstatus));
	else
		snprintf(buf, cap, "cloister-init: app exited: status=%d", WEXITSTATUS(wstatus));
}

/* Minimal CBOR writer: only the heads this file needs (RFC 8949 §3). */
struct cbuf {
	uint8_t *p;
	size_t len, cap;
	bool overflow;
};

static void put_bytes(struct cbuf *b, const void *data, size_t n)
{
	if (b->overflow || n > b->cap - b->len) {
		b->overflow = true;
		return;
	}
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void put_head(struct cbuf *b, uint8_t major, uint64_t v)
{
	uint8_t h[9];
	size_t n;

	if (v < 24) {
		h[0] = (uint8_t)(major << 5 | v);
		n = 1;
	} else if (v <= 0xff) {
		h[0] = (uint8_t)(major << 5 | 24);
		h[1] = (uint8_t)v;
		n = 2;
	} else if (v <= 0xffff) {
		h[0] = (uint8_t)(major << 5 | 25);
		h[1] = (uint8_t)(v >> 8);
		h[2] = (uint8_t)v;
		n = 3;
	} else {
		h[0] = (uint8_t)(major << 5 | 26);
		h[1] = (uint8_t)(v >> 24);
		h[2] = (uint8_t)(v >> 16);
		h[3] = (uint8_t)(v >> 8);
		h[4] = (uint8_t)v;
		n = 5;
	}
	put_bytes(b, h, n);
}

static void put_text(struct cbuf *b, const char *s)
{
	put_head(b, 3, strlen(s));
	put_bytes(b, s, strlen(s));
}

size_t init_nsm_extend_request(uint16_t index, const char *prefix, const uint8_t *data, size_t len,
                               uint8_t *buf, size_t cap)
{
	struct cbuf b = { buf, 0, cap, false };
	size_t plen = prefix ? strlen(prefix) : 0;

	if (len > UINT32_MAX - plen)
		return 0;
	put_head(&b, 5, 1);
	put_text(&b, "ExtendPCR");
	put_head(&b, 5, 2);
	put_text(&b, "index");
	put_head(&b, 0, index);
	put_text(&b, "data");
	put_head(&b, 2, plen + len);
	put_bytes(&b, prefix, plen);
	put_bytes(&b, data, len);
	return b.overflow ? 0 : b.len;
}

size_t init_nsm_lock_request(uint16_t index, uint8_t *buf, size_t cap)
{
	struct cbuf b = { buf, 0, cap, false };

	put_head(&b, 5, 1);
	put_text(&b, "LockPCR");
	put_head(&b, 5, 1);
	put_text(&b, "index");
	put_head(&b, 0, index);
	return b.overflow ? 0 : b.len;
}

bool init_nsm_response_ok(const uint8_t *resp, size_t len, const char *op)
{
	size_t n = strlen(op);

	if (n >= 24 || len < 1 + n)
		return false;
	/* Unit answers (LockPCR, LockPCRs) are the bare text string @op, as serde_cbor writes a
	 * unit enum variant (docs/attestation.md, "The NSM wire protocol"). */
	if (len == 1 + n && resp[0] == (0x60 | n) && !memcmp(resp + 1, op, n))
		return true;
	/* Struct answers (ExtendPCR) are map(1) with a short text key (< 24 bytes) equal to @op. */
	if (len < 2 + n)
		return false;
	return resp[0] == 0xa1 && resp[1] == (0x60 | n) && !memcmp(resp + 2, op, n);
}
