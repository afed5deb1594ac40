/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_COSE_CBOR_WRITER_H
#define CLOISTER_COSE_CBOR_WRITER_H

/*
 * A growable CBOR output buffer over libcbor's streaming header encoders. The COSE, NSM and
 * attestation encoders must produce byte-exact AWS shapes (serde_cbor: shortest integer widths,
 * definite lengths unless asked), which is easiest to guarantee by writing each header in order
 * rather than building an item tree. Errors are sticky: after the first allocation failure every
 * call is a no-op and cbw_finish() reports it, so encoders check once at the end.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cbw {
	uint8_t *buf;
	size_t len;
	size_t cap;
	bool failed;
};

void cbw_init(struct cbw *w);
/* Release the buffer (safe on an initialised or finished writer). */
void cbw_free(struct cbw *w);
/* Hand the bytes to the caller (who frees them with free()); false if any write failed, in
 * which case nothing is handed over and the writer is freed. */
bool cbw_finish(struct cbw *w, uint8_t **out, size_t *out_len);

void cbw_uint(struct cbw *w, uint64_t v);
void cbw_int(struct cbw *w, int64_t v);
void cbw_bytes(struct cbw *w, const uint8_t *p, size_t n);
void cbw_text(struct cbw *w, const char *s);
void cbw_text_n(struct cbw *w, const char *s, size_t n);
void cbw_array(struct cbw *w, size_t n);
void cbw_map(struct cbw *w, size_t n);
void cbw_map_indef(struct cbw *w);
void cbw_break(struct cbw *w);
void cbw_bool(struct cbw *w, bool v);
void cbw_null(struct cbw *w);
/* Append already-encoded CBOR. */
void cbw_raw(struct cbw *w, const uint8_t *p, size_t n);

#endif
