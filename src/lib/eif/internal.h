/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_EIF_INTERNAL_H
#define CLOISTER_EIF_INTERNAL_H

/* Shared between the EIF reader, writer and signer; not part of the public API. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pthread.h>

#include <openssl/evp.h>

#include "cloister/eif.h"

/*
 * The three PCR hash streams of one pass (nitro-compat §1.4): A = PCR0 content (kernel, cmdline,
 * all ramdisks), B = PCR1 content (kernel, cmdline, ramdisk 0), C = PCR2 content (ramdisks after
 * the first). B is a prefix of A up to the first byte of ramdisk 1, so B is not hashed at all
 * until then: at that point A's state is duplicated into B (EVP_MD_CTX_copy_ex). Only ramdisks
 * after the first are hashed twice (into A and C).
 */
struct eif_hasher {
	EVP_MD_CTX *a, *b, *c;
	bool split; /* B has been forked off A */
	unsigned ramdisks; /* ramdisk sections seen so far */
	bool to_a, to_b, to_c; /* targets of the current section */
};

enum eif_error eif_hasher_init(struct eif_hasher *h);
/* Choose where the next section's data goes; call before its data. */
enum eif_error eif_hasher_section(struct eif_hasher *h, uint16_t type);
enum eif_error eif_hasher_update(struct eif_hasher *h, const uint8_t *p, size_t n);
/* The two halves of eif_hasher_update(): streams A and B, and stream C. */
enum eif_error eif_hasher_update_ab(struct eif_hasher *h, const uint8_t *p, size_t n);
enum eif_error eif_hasher_update_c(struct eif_hasher *h, const uint8_t *p, size_t n);
/* Fill pcr0/1/2 of @m (not PCR8). */
enum eif_error eif_hasher_final(struct eif_hasher *h, struct eif_measurements *m);
void eif_hasher_free(struct eif_hasher *h);

/*
 * One worker thread consuming chunks in order and feeding them to some streams of a hasher
 * (through @fn). A submitted chunk must stay valid until eif_pipe_wait() says it has been
 * consumed (chunk numbers start at 1). If the thread cannot be started the pipe hashes inline.
 */
#define EIF_PIPE_DEPTH 4

typedef enum eif_error (*eif_pipe_fn)(struct eif_hasher *h, const uint8_t *p, size_t n);

struct eif_pipe {
	struct eif_hasher *h;
	eif_pipe_fn fn;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t more, done;
	struct {
		const uint8_t *p;
		size_t n;
	} q[EIF_PIPE_DEPTH];
	uint64_t submitted, completed;
	uint64_t want; /* a sleeping submitter waits for completed >= want (0: nobody) */
	bool running, stop;
	enum eif_error err;
};

/* Without @threaded (or if the thread cannot be started) the pipe hashes inline. */
void eif_pipe_start(struct eif_pipe *pp, struct eif_hasher *h, eif_pipe_fn fn, bool threaded);
/* Queue one chunk; blocks while EIF_PIPE_DEPTH chunks are pending. */
enum eif_error eif_pipe_submit(struct eif_pipe *pp, const uint8_t *p, size_t n);
/* Wait until chunk number @upto (1-based count of submits) has been hashed. */
enum eif_error eif_pipe_wait(struct eif_pipe *pp, uint64_t upto);
enum eif_error eif_pipe_drain(struct eif_pipe *pp);
/* Drain and join; safe to call on a pipe that was never started (zeroed). */
void eif_pipe_stop(struct eif_pipe *pp);

/*
 * The measuring side of one pass over an image: the hasher and two pipes, so that SHA-384 (the
 * slowest step, ~1 GB/s) runs beside the reads, CRC and writes on the calling thread instead
 * of after them — streams A/B (PCR0/PCR1) on one thread, stream C (PCR2) on another, which
 * puts the two unavoidable passes over the application ramdisk on two cores.
 *
 * The caller owns a ring of EIF_PIPE_DEPTH chunk buffers: before refilling slot i it calls
 * eif_stream_slot_free(i); it feeds each chunk with eif_stream_feed(i, ...) (slot -1 for memory
 * that outlives the pass); eif_stream_section() at each section start.
 */
struct eif_stream {
	struct eif_hasher h;
	struct eif_pipe ab, c;
	uint64_t ab_seq[EIF_PIPE_DEPTH], c_seq[EIF_PIPE_DEPTH];
};

/*
 * @total is how many bytes the pass will hash at most. Below EIF_STREAM_THREADS_MIN the stream
 * hashes inline on the caller's thread (the pipes' fallback): with fewer than two chunks there
 * is little to overlap, and creating and joining two threads would cost more than it saves —
 * for a small image (tests, the fuzz target `eif`) it was most of the parse.
 */
#define EIF_STREAM_THREADS_MIN (2 * (uint64_t)EIF_IO_CHUNK)
enum eif_error eif_stream_init(struct eif_stream *s, uint64_t total);
enum eif_error eif_stream_section(struct eif_stream *s, uint16_t type);
enum eif_error eif_stream_slot_free(struct eif_stream *s, int slot);
enum eif_error eif_stream_feed(struct eif_stream *s, int slot, const uint8_t *p, size_t n);
/* Drain, stop the threads and fill pcr0/1/2 of @m. */
enum eif_error eif_stream_final(struct eif_stream *s, struct eif_measurements *m);
/* Safe on a zeroed or finished stream, and after any error. */
void eif_stream_free(struct eif_stream *s);

/*
 * The measuring side of a parse, as a table: read.c reaches SHA-384 (and the signature
 * section's certificate) only through it, so a parse that does not measure — eif_parse_layout(),
 * what cloister-monitor does without an NSM — links no cryptography. The public measuring entry
 * points (eif_parse_buffer, eif_read_fd, eif_read_file: parse.c) pass eif_sha384_measurer.
 */
struct eif_measurer {
	enum eif_error (*init)(struct eif_stream *s, uint64_t total);
	enum eif_error (*section)(struct eif_stream *s, uint16_t type);
	enum eif_error (*slot_free)(struct eif_stream *s, int slot);
	enum eif_error (*feed)(struct eif_stream *s, int slot, const uint8_t *p, size_t n);
	enum eif_error (*final)(struct eif_stream *s, struct eif_measurements *m);
	void (*free)(struct eif_stream *s);
	/* PCR8 from the signature section's bytes (its PEM certificate) */
	enum eif_error (*pcr8)(const uint8_t *section, size_t len, uint8_t pcr8[EIF_PCR_SIZE],
	                       struct cl_diag *d);
};
extern const struct eif_measurer eif_sha384_measurer;

/* read.c's entry points with the measurer to use when @flags has EIF_PARSE_MEASURE (NULL:
 * such a parse is refused with EIF_ERR_INVALID_ARG). */
enum eif_error eif_parse_buffer_with(const uint8_t *buf, size_t len, unsigned flags,
                                     const struct eif_measurer *m, struct eif_image *out,
                                     struct cl_diag *d);
enum eif_error eif_read_fd_with(int fd, unsigned flags, const struct eif_measurer *m,
                                struct eif_image *out, struct cl_diag *d);
/* eif_read_fd_with() on @path, opened read-only; the diag names the path. */
enum eif_error eif_read_file_with(const char *path, unsigned flags, const struct eif_measurer *m,
                                  struct eif_image *out, struct cl_diag *d);

/* SHA-384(zeros48 ‖ digest): one TPM-style extend of an all-zero PCR. */
enum eif_error eif_pcr_extend_zero(const uint8_t digest[EIF_PCR_SIZE], uint8_t pcr[EIF_PCR_SIZE]);

/* Header encode/decode. */
void eif_header_encode(uint8_t hdr[EIF_HEADER_SIZE], uint16_t version, uint16_t flags,
                       uint16_t num_sections, const uint64_t *offsets, const uint64_t *sizes);
void eif_section_header_encode(uint8_t sh[EIF_SECTION_HEADER_SIZE], uint16_t type, uint64_t size);

/* Signature section (nitro-compat §1.5). */

/* Encode [{"signing_certificate": [bytes], "signature": [bytes]}] as serde_cbor does. */
enum eif_error eif_signature_section_encode(const uint8_t *cert_pem, size_t cert_len,
                                            const uint8_t *cose, size_t cose_len, uint8_t **out,
                                            size_t *out_len, struct cl_diag *d);
/* Decode element 0 of the section. Both outputs are malloc'd. */
enum eif_error eif_signature_section_decode(const uint8_t *buf, size_t len, uint8_t **cert_pem,
                                            size_t *cert_len, uint8_t **cose, size_t *cose_len,
                                            struct cl_diag *d);
/* serde_cbor of PcrInfo{index, value}: map(2) {"register_index": i, "register_value": [..]} */
enum eif_error eif_pcr_info_encode(uint32_t index, const uint8_t value[EIF_PCR_SIZE], uint8_t **out,
                                   size_t *out_len);
/* Build the signature section bytes for @pcr0 with a PEM cert and key already loaded. */
enum eif_error eif_signature_build(const uint8_t *cert_pem, size_t cert_len, EVP_PKEY *key,
                                   const uint8_t pcr0[EIF_PCR_SIZE], uint8_t **out, size_t *out_len,
                                   struct cl_diag *d);
/* Load a PEM EC private key and check it is the certificate's. */
enum eif_error eif_signing_inputs_load(const char *cert_path, const char *key_path,
                                       uint8_t **cert_pem, size_t *cert_len, EVP_PKEY **key,
                                       struct cl_diag *d);

/* Metadata JSON (nitro-compat §1.6), compact, nitro-cli key order. *out is malloc'd. */
enum eif_error eif_metadata_encode(const struct eif_build_params *p, char **out, size_t *out_len,
                                   struct cl_diag *d);

#endif
