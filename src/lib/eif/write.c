/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EIF writer (docs/eif.md, nitro-compat §1.2): kernel, cmdline, metadata, ramdisks, then the
 * signature when signing — the order nitro-cli's EifBuilder writes, in the file and in the
 * header table.
 *
 * One pass: each input is read once through one EIF_IO_CHUNK buffer that feeds the CRC, the
 * PCR hashes and the output file. The header comes first in the file but depends on the
 * signature section's size, which depends on PCR0, which is known only at the end; so a
 * placeholder header is written first and the real one at the end, and the CRC of
 * header[0..0x220) is prepended to the sections' CRC with crc32_combine (CRC-32 is linear).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "lib/eif/internal.h"
#include "lib/util/checked.h"
#include "lib/util/file.h"

struct out_section {
	uint16_t type;
	const char *path; /* file-backed data, or */
	int fd;
	const uint8_t *mem; /* in-memory data */
	uint64_t size;
};

struct writer {
	int fd;
	const char *tmp_path;
	uint64_t pos; /* bytes written so far */
	uLong crc; /* CRC of everything after the header */
	uint64_t crc_len; /* bytes in crc */
	struct eif_stream hs; /* PCR hashing on worker threads */
	uint64_t chunks; /* ring chunks used so far */
	bool no_cfr; /* copy_file_range unavailable here: read() and write() instead */
	uint8_t *ring[EIF_PIPE_DEPTH];
};

/* @n bytes at the end of the output: CRC them and advance. */
static void account(struct writer *w, const uint8_t *p, size_t n)
{
	w->crc = crc32_z(w->crc, p, n);
	w->crc_len += n;
	w->pos += n;
}

static enum eif_error emit(struct writer *w, const uint8_t *p, size_t n, struct cl_diag *d)
{
	int r = cl_write_full(w->fd, p, n);

	if (r < 0) {
		cl_diag_set(d, "cannot write '%s' at offset 0x%" PRIx64 ": %s", w->tmp_path, w->pos,
		            strerror(-r));
		return EIF_ERR_IO;
	}
	account(w, p, n);
	return EIF_OK;
}

/* Hand a chunk to the hashing threads; @slot is its ring slot, or -1 for lasting memory. */
static enum eif_error hash_chunk(struct writer *w, int slot, const uint8_t *p, size_t n)
{
	if (slot >= 0)
		w->chunks++;
	return eif_stream_feed(&w->hs, slot, p, n);
}

static enum eif_error emit_section(struct writer *w, struct out_section *s, struct cl_diag *d)
{
	uint8_t sh[EIF_SECTION_HEADER_SIZE];
	enum eif_error err;
	uint64_t done = 0;

	eif_section_header_encode(sh, s->type, s->size);
	if ((err = emit(w, sh, sizeof(sh), d)) || (err = eif_stream_section(&w->hs, s->type)))
		return err;
	if (s->mem) {
		/* in-memory data outlives the pipe: no copy needed */
		if ((err = hash_chunk(w, -1, s->mem, (size_t)s->size)))
			return err;
		return emit(w, s->mem, (size_t)s->size, d);
	}
	while (done < s->size) {
		int slot = (int)(w->chunks % EIF_PIPE_DEPTH);
		uint8_t *buf = w->ring[slot];
		uint64_t left = s->size - done;
		size_t want = left > EIF_IO_CHUNK ? EIF_IO_CHUNK : (size_t)left;
		ssize_t r = -1;

		/* reuse the ring slot only after the hashing thread is done with it */
		if ((err = eif_stream_slot_free(&w->hs, slot)))
			return err;
		if (!w->no_cfr) {
			/*
			 * Copy in the kernel, then read the bytes back from *our output*: what
			 * is measured and CRC'd is exactly what was written, even if the input
			 * changes meanwhile, and this costs less CPU than read() + write()
			 * from user memory (bench/eif-build).
			 */
			r = copy_file_range(s->fd, NULL, w->fd, NULL, want, 0);
			if (r < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP ||
			              errno == EINVAL)) {
				w->no_cfr = true; /* file positions are intact: go on below */
			} else if (r < 0 && errno == EINTR) {
				continue;
			} else if (r < 0) {
				cl_diag_set(d, "cannot copy '%s' into '%s': %s", s->path,
				            w->tmp_path, strerror(errno));
				return EIF_ERR_IO;
			} else if (r > 0) {
				long long b = cl_pread_full(w->fd, buf, (size_t)r, w->pos);

				if (b != (long long)r) {
					cl_diag_set(d, "cannot read back '%s' at 0x%" PRIx64,
					            w->tmp_path, w->pos);
					return EIF_ERR_IO;
				}
				account(w, buf, (size_t)r);
			}
		}
		if (w->no_cfr) {
			r = read(s->fd, buf, want);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				cl_diag_set(d, "cannot read '%s': %s", s->path, strerror(errno));
				return EIF_ERR_IO;
			}
			if (r > 0 && (err = emit(w, buf, (size_t)r, d)))
				return err;
		}
		if (r == 0)
			break; /* shrank: reported below */
		done += (uint64_t)r;
		if ((err = hash_chunk(w, slot, buf, (size_t)r)))
			return err;
	}
	if (done != s->size) {
		cl_diag_set(d, "'%s' shrank from %" PRIu64 " to %" PRIu64 " bytes while being read",
		            s->path, s->size, done);
		return EIF_ERR_CHANGED;
	}
	return EIF_OK;
}

static enum eif_error open_input(struct out_section *s, const char *what, struct cl_diag *d)
{
	struct stat st;

	s->fd = open(s->path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0) {
		cl_diag_set(d, "cannot open %s '%s': %s", what, s->path, strerror(errno));
		return EIF_ERR_IO;
	}
	if (fstat(s->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		cl_diag_set(d, "%s '%s' is not a regular file", what, s->path);
		return EIF_ERR_IO;
	}
	s->size = (uint64_t)st.st_size;
	posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return EIF_OK;
}

/* A temporary name next to @path, created exclusively with mode 0666 & ~umask. */
static int create_temp(const char *path, char **tmp, struct cl_diag *d)
{
	struct timespec ts;

	for (int attempt = 0; attempt < 16; attempt++) {
		size_t n = strlen(path) + 48;
		char *t = malloc(n);
		int fd;

		if (!t)
			return -ENOMEM;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		snprintf(t, n, "%s.tmp-%d-%lx", path, (int)getpid(),
		         (unsigned long)(ts.tv_nsec ^ (long)attempt * 7919));
		fd = open(t, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd >= 0) {
			*tmp = t;
			return fd;
		}
		free(t);
		if (errno != EEXIST) {
			cl_diag_set(d, "cannot create the output next to '%s': %s", path,
			            strerror(errno));
			return -errno;
		}
	}
	cl_diag_set(d, "cannot find a free temporary name next to '%s'", path);
	return -EEXIST;
}

enum eif_error eif_build(const struct eif_build_params *p, const char *output_path,
                         struct eif_measurements *meas, struct cl_diag *d)
{
	struct out_section secs[EIF_MAX_SECTIONS] = { 0 };
	uint64_t offsets[EIF_MAX_SECTIONS], sizes[EIF_MAX_SECTIONS];
	struct writer w = { .fd = -1 };
	struct eif_measurements m = { 0 };
	uint8_t hdr[EIF_HEADER_SIZE];
	uint8_t *cert_pem = NULL, *sig = NULL;
	size_t cert_len = 0, sig_len = 0, meta_len = 0;
	unsigned nsec = 0;
	uint64_t total = 0;
	enum eif_error err;
	EVP_PKEY *key = NULL;
	char *meta = NULL, *tmp = NULL;
	bool signing;
	uLong crc;
	int r;

	if (!p || !output_path || !p->kernel_path || !p->cmdline || !p->ramdisk_paths ||
	    p->num_ramdisks == 0) {
		cl_diag_set(d,
		            "a kernel, a cmdline, at least one ramdisk and an output are required");
		return EIF_ERR_INVALID_ARG;
	}
	if (p->num_ramdisks > EIF_MAX_SECTIONS - 4) {
		cl_diag_set(d, "%zu ramdisks is more than the %u an EIF can hold", p->num_ramdisks,
		            EIF_MAX_SECTIONS - 4);
		return EIF_ERR_INVALID_ARG;
	}
	if (p->arch_flags & ~EIF_FLAG_AARCH64) {
		cl_diag_set(d, "arch_flags 0x%x: only EIF_FLAG_AARCH64 is defined", p->arch_flags);
		return EIF_ERR_INVALID_ARG;
	}
	signing = p->signing_cert_path || p->private_key_path;
	if (signing && (!p->signing_cert_path || !p->private_key_path)) {
		cl_diag_set(d, "signing needs both a certificate and a private key");
		return EIF_ERR_INVALID_ARG;
	}

	/* Everything that can fail cheaply fails before the output exists. */
	if ((err = eif_metadata_encode(p, &meta, &meta_len, d)))
		goto out;
	if (signing && (err = eif_signing_inputs_load(p->signing_cert_path, p->private_key_path,
	                                              &cert_pem, &cert_len, &key, d)))
		goto out;

	secs[nsec++] = (struct out_section){ .type = EIF_SECTION_KERNEL,
		                             .path = p->kernel_path,
		                             .fd = -1 };
	secs[nsec++] = (struct out_section){ .type = EIF_SECTION_CMDLINE,
		                             .mem = (const uint8_t *)p->cmdline,
		                             .size = strlen(p->cmdline),
		                             .fd = -1 };
	secs[nsec++] = (struct out_section){ .type = EIF_SECTION_METADATA,
		                             .mem = (const uint8_t *)meta,
		                             .size = meta_len,
		                             .fd = -1 };
	for (size_t i = 0; i < p->num_ramdisks; i++) {
		if (!p->ramdisk_paths[i]) {
			cl_diag_set(d, "ramdisk %zu has no path", i);
			err = EIF_ERR_INVALID_ARG;
			goto out;
		}
		secs[nsec++] = (struct out_section){ .type = EIF_SECTION_RAMDISK,
			                             .path = p->ramdisk_paths[i],
			                             .fd = -1 };
	}
	for (unsigned i = 0; i < nsec; i++) {
		if (!secs[i].path)
			continue;
		if ((err = open_input(&secs[i],
		                      secs[i].type == EIF_SECTION_KERNEL ? "kernel" : "ramdisk",
		                      d)))
			goto out;
	}

	for (unsigned i = 0; i < EIF_PIPE_DEPTH; i++) {
		w.ring[i] = malloc(EIF_IO_CHUNK);
		if (!w.ring[i]) {
			err = EIF_ERR_NOMEM;
			goto out;
		}
	}
	for (unsigned i = 0; i < nsec; i++) /* only compared with a threshold: saturate */
		total = secs[i].size > UINT64_MAX - total ? UINT64_MAX : total + secs[i].size;
	if ((err = eif_stream_init(&w.hs, total)))
		goto out;
	r = create_temp(output_path, &tmp, d);
	if (r < 0) {
		err = r == -ENOMEM ? EIF_ERR_NOMEM : EIF_ERR_IO;
		goto out;
	}
	w.fd = r;
	w.tmp_path = tmp;

	/* Placeholder header; the real one is written at the end. */
	memset(hdr, 0, sizeof(hdr));
	if (cl_write_full(w.fd, hdr, sizeof(hdr)) < 0) {
		cl_diag_set(d, "cannot write '%s': %s", tmp, strerror(errno));
		err = EIF_ERR_IO;
		goto out;
	}
	w.pos = EIF_HEADER_SIZE;
	w.crc = crc32(0L, NULL, 0);
	for (unsigned i = 0; i < nsec; i++) {
		offsets[i] = w.pos;
		sizes[i] = secs[i].size;
		if ((err = emit_section(&w, &secs[i], d)))
			goto out;
	}
	if ((err = eif_stream_final(&w.hs, &m)))
		goto out;

	if (signing) {
		if ((err = eif_signature_build(cert_pem, cert_len, key, m.pcr0, &sig, &sig_len, d)))
			goto out;
		uint8_t sh[EIF_SECTION_HEADER_SIZE];

		offsets[nsec] = w.pos;
		sizes[nsec] = sig_len;
		/* not measured: written after the hashing threads have stopped */
		eif_section_header_encode(sh, EIF_SECTION_SIGNATURE, sig_len);
		if ((err = emit(&w, sh, sizeof(sh), d)) || (err = emit(&w, sig, sig_len, d)))
			goto out;
		nsec++;
		if ((err = eif_pcr8_of_pem(cert_pem, cert_len, m.pcr8, d)))
			goto out;
		m.has_pcr8 = true;
	}

	eif_header_encode(hdr, EIF_VERSION_CURRENT, p->arch_flags, (uint16_t)nsec, offsets, sizes);
	crc = crc32(0L, hdr, EIF_CRC_OFFSET);
	crc = crc32_combine64(crc, w.crc, (z_off64_t)w.crc_len);
	cl_put_be32(hdr + EIF_CRC_OFFSET, (uint32_t)crc);
	if (pwrite(w.fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr)) {
		cl_diag_set(d, "cannot write the header of '%s': %s", tmp, strerror(errno));
		err = EIF_ERR_IO;
		goto out;
	}
	if (close(w.fd) < 0) {
		w.fd = -1;
		cl_diag_set(d, "cannot write '%s': %s", tmp, strerror(errno));
		err = EIF_ERR_IO;
		goto out;
	}
	w.fd = -1;
	if (rename(tmp, output_path) < 0) {
		cl_diag_set(d, "cannot rename '%s' to '%s': %s", tmp, output_path, strerror(errno));
		err = EIF_ERR_IO;
		goto out;
	}
	free(tmp);
	tmp = NULL;
	if (meas)
		*meas = m;
	err = EIF_OK;
out:
	if (w.fd >= 0)
		close(w.fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	for (unsigned i = 0; i < EIF_MAX_SECTIONS; i++)
		if (secs[i].path && secs[i].fd >= 0)
			close(secs[i].fd);
	eif_stream_free(&w.hs);
	for (unsigned i = 0; i < EIF_PIPE_DEPTH; i++)
		free(w.ring[i]);
	free(meta);
	free(cert_pem);
	free(sig);
	EVP_PKEY_free(key);
	return err;
}
