/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EIF measurements (docs/eif.md, nitro-compat §1.4): PCR = SHA-384(48 zero bytes ‖
 * SHA-384(content)), content PCR0 = kernel ‖ cmdline ‖ ramdisks, PCR1 = kernel ‖ cmdline ‖
 * ramdisk 0, PCR2 = ramdisks 1.., all in file order, data only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "lib/eif/internal.h"
#include "lib/util/file.h"

enum eif_error eif_pcr_extend_zero(const uint8_t digest[EIF_PCR_SIZE], uint8_t pcr[EIF_PCR_SIZE])
{
	uint8_t buf[2 * EIF_PCR_SIZE];
	unsigned int n = 0;

	memset(buf, 0, EIF_PCR_SIZE);
	memcpy(buf + EIF_PCR_SIZE, digest, EIF_PCR_SIZE);
	if (!EVP_Digest(buf, sizeof(buf), pcr, &n, EVP_sha384(), NULL) || n != EIF_PCR_SIZE)
		return EIF_ERR_CRYPTO;
	return EIF_OK;
}

enum eif_error eif_hasher_init(struct eif_hasher *h)
{
	memset(h, 0, sizeof(*h));
	h->a = EVP_MD_CTX_new();
	h->b = EVP_MD_CTX_new();
	h->c = EVP_MD_CTX_new();
	if (!h->a || !h->b || !h->c) {
		eif_hasher_free(h);
		return EIF_ERR_NOMEM;
	}
	if (!EVP_DigestInit_ex(h->a, EVP_sha384(), NULL) ||
	    !EVP_DigestInit_ex(h->c, EVP_sha384(), NULL)) {
		eif_hasher_free(h);
		return EIF_ERR_CRYPTO;
	}
	return EIF_OK;
}

void eif_hasher_free(struct eif_hasher *h)
{
	EVP_MD_CTX_free(h->a);
	EVP_MD_CTX_free(h->b);
	EVP_MD_CTX_free(h->c);
	h->a = h->b = h->c = NULL;
}

enum eif_error eif_hasher_section(struct eif_hasher *h, uint16_t type)
{
	h->to_a = h->to_b = h->to_c = false;
	switch (type) {
	case EIF_SECTION_KERNEL:
	case EIF_SECTION_CMDLINE:
		h->to_a = true;
		h->to_b = h->split;
		break;
	case EIF_SECTION_RAMDISK:
		h->to_a = true;
		if (h->ramdisks == 0) {
			h->to_b = h->split;
		} else {
			/* First byte that PCR1 must not see: fork B off A here. */
			if (!h->split) {
				if (!EVP_MD_CTX_copy_ex(h->b, h->a))
					return EIF_ERR_CRYPTO;
				h->split = true;
			}
			h->to_c = true;
		}
		h->ramdisks++;
		break;
	default:
		break; /* metadata and signature are not measured (PCR8 is separate) */
	}
	return EIF_OK;
}

enum eif_error eif_hasher_update_ab(struct eif_hasher *h, const uint8_t *p, size_t n)
{
	if (h->to_a && !EVP_DigestUpdate(h->a, p, n))
		return EIF_ERR_CRYPTO;
	if (h->to_b && !EVP_DigestUpdate(h->b, p, n))
		return EIF_ERR_CRYPTO;
	return EIF_OK;
}

enum eif_error eif_hasher_update_c(struct eif_hasher *h, const uint8_t *p, size_t n)
{
	if (h->to_c && !EVP_DigestUpdate(h->c, p, n))
		return EIF_ERR_CRYPTO;
	return EIF_OK;
}

enum eif_error eif_hasher_update(struct eif_hasher *h, const uint8_t *p, size_t n)
{
	enum eif_error err = eif_hasher_update_ab(h, p, n);

	return err ? err : eif_hasher_update_c(h, p, n);
}

static void *pipe_worker(void *arg)
{
	struct eif_pipe *pp = arg;

	pthread_mutex_lock(&pp->lock);
	for (;;) {
		const uint8_t *p;
		enum eif_error err = EIF_OK;
		bool skip;
		size_t n;

		while (pp->completed == pp->submitted && !pp->stop)
			pthread_cond_wait(&pp->more, &pp->lock);
		if (pp->completed == pp->submitted)
			break; /* stop requested and nothing left */
		p = pp->q[pp->completed % EIF_PIPE_DEPTH].p;
		n = pp->q[pp->completed % EIF_PIPE_DEPTH].n;
		skip = pp->err != EIF_OK;
		pthread_mutex_unlock(&pp->lock);
		if (!skip)
			err = pp->fn(pp->h, p, n);
		pthread_mutex_lock(&pp->lock);
		if (err && !pp->err)
			pp->err = err;
		pp->completed++;
		/* wake the submitter only when what it waits for is there (see wait_for) */
		if (pp->want && (pp->completed >= pp->want || pp->completed == pp->submitted))
			pthread_cond_broadcast(&pp->done);
	}
	pthread_mutex_unlock(&pp->lock);
	return NULL;
}

void eif_pipe_start(struct eif_pipe *pp, struct eif_hasher *h, eif_pipe_fn fn, bool threaded)
{
	memset(pp, 0, sizeof(*pp));
	pp->h = h;
	pp->fn = fn;
	if (!threaded)
		return;
	if (pthread_mutex_init(&pp->lock, NULL))
		return;
	if (pthread_cond_init(&pp->more, NULL)) {
		pthread_mutex_destroy(&pp->lock);
		return;
	}
	if (pthread_cond_init(&pp->done, NULL)) {
		pthread_cond_destroy(&pp->more);
		pthread_mutex_destroy(&pp->lock);
		return;
	}
	if (pthread_create(&pp->thread, NULL, pipe_worker, pp)) {
		pthread_cond_destroy(&pp->done);
		pthread_cond_destroy(&pp->more);
		pthread_mutex_destroy(&pp->lock);
		return;
	}
	pp->running = true;
}

/*
 * Sleep (lock held) until @target chunks are done or nothing is pending. Once we have to sleep
 * at all, sleep until the worker is nearly out of work rather than just past @target: a pass
 * then costs one wake-up per EIF_PIPE_DEPTH / 2 chunks instead of one per chunk, which matters
 * on a busy machine where every wake-up waits for a CPU.
 */
static void wait_for(struct eif_pipe *pp, uint64_t target)
{
	if (pp->completed >= target || pp->completed == pp->submitted)
		return;
	if (target < UINT64_MAX - EIF_PIPE_DEPTH) /* drain passes UINT64_MAX */
		target += EIF_PIPE_DEPTH / 2 - 1;
	pp->want = target;
	while (pp->completed < target && pp->completed < pp->submitted)
		pthread_cond_wait(&pp->done, &pp->lock);
	pp->want = 0;
}

enum eif_error eif_pipe_submit(struct eif_pipe *pp, const uint8_t *p, size_t n)
{
	enum eif_error err;

	if (!pp->running) {
		/* inline fallback */
		pp->submitted++;
		pp->completed++;
		if (!pp->err)
			pp->err = pp->fn(pp->h, p, n);
		return pp->err;
	}
	pthread_mutex_lock(&pp->lock);
	if (pp->submitted - pp->completed >= EIF_PIPE_DEPTH)
		wait_for(pp, pp->submitted - EIF_PIPE_DEPTH + 1);
	pp->q[pp->submitted % EIF_PIPE_DEPTH].p = p;
	pp->q[pp->submitted % EIF_PIPE_DEPTH].n = n;
	pp->submitted++;
	err = pp->err;
	pthread_cond_signal(&pp->more);
	pthread_mutex_unlock(&pp->lock);
	return err;
}

enum eif_error eif_pipe_wait(struct eif_pipe *pp, uint64_t upto)
{
	enum eif_error err;

	if (!pp->running)
		return pp->err;
	pthread_mutex_lock(&pp->lock);
	wait_for(pp, upto);
	err = pp->err;
	pthread_mutex_unlock(&pp->lock);
	return err;
}

enum eif_error eif_pipe_drain(struct eif_pipe *pp)
{
	return eif_pipe_wait(pp, UINT64_MAX);
}

void eif_pipe_stop(struct eif_pipe *pp)
{
	if (!pp->running)
		return;
	pthread_mutex_lock(&pp->lock);
	pp->stop = true;
	pthread_cond_signal(&pp->more);
	pthread_mutex_unlock(&pp->lock);
	pthread_join(pp->thread, NULL);
	pthread_cond_destroy(&pp->done);
	pthread_cond_destroy(&pp->more);
	pthread_mutex_destroy(&pp->lock);
	pp->running = false;
}

static enum eif_error finish(EVP_MD_CTX *ctx, uint8_t pcr[EIF_PCR_SIZE])
{
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!EVP_DigestFinal_ex(ctx, digest, &n) || n != EIF_PCR_SIZE)
		return EIF_ERR_CRYPTO;
	return eif_pcr_extend_zero(digest, pcr);
}

enum eif_error eif_hasher_final(struct eif_hasher *h, struct eif_measurements *m)
{
	enum eif_error err;

	if (!h->split) {
		if (!EVP_MD_CTX_copy_ex(h->b, h->a))
			return EIF_ERR_CRYPTO;
		h->split = true;
	}
	if ((err = finish(h->a, m->pcr0)) || (err = finish(h->b, m->pcr1)) ||
	    (err = finish(h->c, m->pcr2)))
		return err;
	return EIF_OK;
}

enum eif_error eif_pcr_of_bytes(const uint8_t *data, size_t len, uint8_t pcr[EIF_PCR_SIZE])
{
	uint8_t digest[EIF_PCR_SIZE];
	unsigned int n = 0;

	if (!EVP_Digest(data, len, digest, &n, EVP_sha384(), NULL) || n != EIF_PCR_SIZE)
		return EIF_ERR_CRYPTO;
	return eif_pcr_extend_zero(digest, pcr);
}

enum eif_error eif_pcr_of_file(const char *path, uint8_t pcr[EIF_PCR_SIZE], struct cl_diag *d)
{
	enum eif_error err = EIF_ERR_IO;
	uint8_t digest[EIF_PCR_SIZE];
	EVP_MD_CTX *ctx = NULL;
	uint8_t *buf = NULL;
	unsigned int n = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		cl_diag_set(d, "cannot open '%s': %s", path, strerror(errno));
		return EIF_ERR_IO;
	}
	buf = malloc(EIF_IO_CHUNK);
	ctx = EVP_MD_CTX_new();
	if (!buf || !ctx) {
		err = EIF_ERR_NOMEM;
		goto out;
	}
	if (!EVP_DigestInit_ex(ctx, EVP_sha384(), NULL)) {
		err = EIF_ERR_CRYPTO;
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, buf, EIF_IO_CHUNK);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			cl_diag_set(d, "cannot read '%s': %s", path, strerror(errno));
			err = EIF_ERR_IO;
			goto out;
		}
		if (r == 0)
			break;
		if (!EVP_DigestUpdate(ctx, buf, (size_t)r)) {
			err = EIF_ERR_CRYPTO;
			goto out;
		}
	}
	if (!EVP_DigestFinal_ex(ctx, digest, &n) || n != EIF_PCR_SIZE) {
		err = EIF_ERR_CRYPTO;
		goto out;
	}
	err = eif_pcr_extend_zero(digest, pcr);
out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	close(fd);
	return err;
}

enum eif_error eif_pcr8_of_pem(const uint8_t *pem, size_t len, uint8_t pcr[EIF_PCR_SIZE],
                               struct cl_diag *d)
{
	unsigned char *der = NULL;
	enum eif_error err;
	X509 *cert = NULL;
	BIO *bio;
	int n;

	if (len > INT32_MAX) {
		cl_diag_set(d, "certificate of %zu bytes is too large", len);
		return EIF_ERR_CERT;
	}
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		return EIF_ERR_NOMEM;
	cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (!cert) {
		cl_diag_set(d, "the signing certificate is not a PEM X.509 certificate");
		return EIF_ERR_CERT;
	}
	n = i2d_X509(cert, &der);
	X509_free(cert);
	if (n <= 0) {
		cl_diag_set(d, "cannot re-encode the signing certificate as DER");
		return EIF_ERR_CERT;
	}
	err = eif_pcr_of_bytes(der, (size_t)n, pcr);
	OPENSSL_free(der);
	return err;
}

enum eif_error eif_stream_init(struct eif_stream *s, uint64_t total)
{
	enum eif_error err;

	memset(s, 0, sizeof(*s));
	if ((err = eif_hasher_init(&s->h)))
		return err;
	eif_pipe_start(&s->ab, &s->h, eif_hasher_update_ab, total >= EIF_STREAM_THREADS_MIN);
	eif_pipe_start(&s->c, &s->h, eif_hasher_update_c, total >= EIF_STREAM_THREADS_MIN);
	return EIF_OK;
}

enum eif_error eif_stream_section(struct eif_stream *s, uint16_t type)
{
	enum eif_error err;

	/* both threads idle before the streams are re-targeted (and B maybe forked off A) */
	if ((err = eif_pipe_drain(&s->ab)) || (err = eif_pipe_drain(&s->c)))
		return err;
	return eif_hasher_section(&s->h, type);
}

enum eif_error eif_stream_slot_free(struct eif_stream *s, int slot)
{
	enum eif_error err;

	if (slot < 0)
		return EIF_OK;
	if ((err = eif_pipe_wait(&s->ab, s->ab_seq[slot])))
		return err;
	return eif_pipe_wait(&s->c, s->c_seq[slot]);
}

enum eif_error eif_stream_feed(struct eif_stream *s, int slot, const uint8_t *p, size_t n)
{
	enum eif_error err;

	if (s->h.to_a || s->h.to_b) {
		if ((err = eif_pipe_submit(&s->ab, p, n)))
			return err;
		if (slot >= 0)
			s->ab_seq[slot] = s->ab.submitted;
	} else if (slot >= 0) {
		s->ab_seq[slot] = 0;
	}
	if (s->h.to_c) {
		if ((err = eif_pipe_submit(&s->c, p, n)))
			return err;
		if (slot >= 0)
			s->c_seq[slot] = s->c.submitted;
	} else if (slot >= 0) {
		s->c_seq[slot] = 0;
	}
	return EIF_OK;
}

enum eif_error eif_stream_final(struct eif_stream *s, struct eif_measurements *m)
{
	enum eif_error err;

	if ((err = eif_pipe_drain(&s->ab)) || (err = eif_pipe_drain(&s->c)))
		return err;
	eif_pipe_stop(&s->ab);
	eif_pipe_stop(&s->c);
	return eif_hasher_final(&s->h, m);
}

void eif_stream_free(struct eif_stream *s)
{
	eif_pipe_stop(&s->ab);
	eif_pipe_stop(&s->c);
	eif_hasher_free(&s->h);
}
