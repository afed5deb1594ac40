/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EIF reader (docs/eif.md, nitro-compat §1.1-§1.4). One sequential pass over the image, from
 * either a memory buffer or a file streamed through one EIF_IO_CHUNK buffer, that validates
 * every structural rule, computes the CRC and (optionally) the PCRs.
 *
 * Why the header table must match the sections found back to back from offset 548: nitro-cli
 * walks sections sequentially and ignores the table, QEMU seeks the table entries and CRCs in
 * table order. An image where the two disagree means different things to different readers
 * (and has a CRC that at most one of them accepts), so it is rejected.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "lib/eif/internal.h"
#include "lib/util/checked.h"
#include "lib/util/file.h"

const char *eif_strerror(enum eif_error err)
{
	switch (err) {
	case EIF_OK:
		return "success";
	case EIF_ERR_INVALID_ARG:
		return "invalid argument";
	case EIF_ERR_NOMEM:
		return "out of memory";
	case EIF_ERR_IO:
		return "I/O error";
	case EIF_ERR_TRUNCATED:
		return "image is truncated";
	case EIF_ERR_MAGIC:
		return "not an EIF (bad magic)";
	case EIF_ERR_VERSION:
		return "unsupported EIF version";
	case EIF_ERR_HEADER:
		return "reserved EIF header bits set";
	case EIF_ERR_SECTION_COUNT:
		return "invalid number of sections";
	case EIF_ERR_SECTION_TYPE:
		return "invalid section type";
	case EIF_ERR_SECTION_FLAGS:
		return "invalid section flags";
	case EIF_ERR_LAYOUT:
		return "header table disagrees with the section layout";
	case EIF_ERR_STRUCTURE:
		return "invalid section structure";
	case EIF_ERR_SECTION_SIZE:
		return "section too large";
	case EIF_ERR_CRC:
		return "CRC mismatch";
	case EIF_ERR_METADATA:
		return "invalid metadata";
	case EIF_ERR_SIGNATURE:
		return "malformed signature section";
	case EIF_ERR_CERT:
		return "invalid signing certificate";
	case EIF_ERR_KEY:
		return "invalid signing key";
	case EIF_ERR_BAD_SIGNATURE:
		return "signature does not verify";
	case EIF_ERR_PCR_MISMATCH:
		return "signature covers a different PCR0";
	case EIF_ERR_CRYPTO:
		return "cryptography failure";
	case EIF_ERR_CHANGED:
		return "input changed while reading";
	}
	return "unknown EIF error";
}

const char *eif_section_type_name(uint16_t type)
{
	switch (type) {
	case EIF_SECTION_INVALID:
		return "invalid";
	case EIF_SECTION_KERNEL:
		return "kernel";
	case EIF_SECTION_CMDLINE:
		return "cmdline";
	case EIF_SECTION_RAMDISK:
		return "ramdisk";
	case EIF_SECTION_SIGNATURE:
		return "signature";
	case EIF_SECTION_METADATA:
		return "metadata";
	default:
		return "unknown";
	}
}

void eif_header_encode(uint8_t hdr[EIF_HEADER_SIZE], uint16_t version, uint16_t flags,
                       uint16_t num_sections, const uint64_t *offsets, const uint64_t *sizes)
{
	memset(hdr, 0, EIF_HEADER_SIZE);
	memcpy(hdr, EIF_MAGIC, 4);
	cl_put_be16(hdr + 0x04, version);
	cl_put_be16(hdr + 0x06, flags);
	cl_put_be64(hdr + 0x08, EIF_DEFAULT_MEM);
	cl_put_be64(hdr + 0x10, EIF_DEFAULT_CPUS);
	cl_put_be16(hdr + 0x1a, num_sections);
	for (unsigned i = 0; i < EIF_MAX_SECTIONS; i++) {
		cl_put_be64(hdr + 0x1c + 8 * i, i < num_sections ? offsets[i] : 0);
		cl_put_be64(hdr + 0x11c + 8 * i, i < num_sections ? sizes[i] : 0);
	}
}

void eif_section_header_encode(uint8_t sh[EIF_SECTION_HEADER_SIZE], uint16_t type, uint64_t size)
{
	cl_put_be16(sh, type);
	cl_put_be16(sh + 2, 0);
	cl_put_be64(sh + 4, size);
}

/*
 * Where the bytes come from. Memory: pointers into the caller's buffer. File: pread into the
 * caller's @dst (at most @cap bytes): headers into small local arrays, section data into a
 * ring of EIF_PIPE_DEPTH chunk buffers that the hashing thread consumes behind the reader.
 */
struct source {
	const uint8_t *mem;
	int fd;
	uint8_t *ring[EIF_PIPE_DEPTH];
	uint64_t size;
};

/* Up to @want bytes at @off (the caller has checked [off, off + want) is inside the image). */
static enum eif_error source_get(struct source *s, uint64_t off, size_t want, uint8_t *dst,
                                 size_t cap, const uint8_t **p, size_t *got, struct cl_diag *d)
{
	long long r;

	if (s->mem) {
		*p = s->mem + off;
		*got = want;
		return EIF_OK;
	}
	if (want > cap)
		want = cap;
	r = cl_pread_full(s->fd, dst, want, off);
	if (r < 0) {
		cl_diag_set(d, "read of %zu bytes at offset 0x%" PRIx64 " failed: %s", want, off,
		            strerror((int)-r));
		return EIF_ERR_IO;
	}
	if ((size_t)r != want) {
		cl_diag_set(
		        d,
		        "the image shrank while being read: %zu bytes expected at offset 0x%" PRIx64
		        ", got %lld",
		        want, off, r);
		return EIF_ERR_CHANGED;
	}
	*p = dst;
	*got = want;
	return EIF_OK;
}

static enum eif_error check_header(const uint8_t *h, uint64_t size, struct eif_image *img,
                                   struct cl_diag *d)
{
	if (memcmp(h, EIF_MAGIC, 4) != 0) {
		cl_diag_set(
		        d, "bad magic %02x %02x %02x %02x at offset 0, expected 2e 65 69 66 (\".eif\")",
		        h[0], h[1], h[2], h[3]);
		return EIF_ERR_MAGIC;
	}
	img->version = cl_get_be16(h + 0x04);
	img->flags = cl_get_be16(h + 0x06);
	img->default_mem = cl_get_be64(h + 0x08);
	img->default_cpus = cl_get_be64(h + 0x10);
	img->num_sections = cl_get_be16(h + 0x1a);
	img->crc_stored = cl_get_be32(h + EIF_CRC_OFFSET);
	img->file_size = size;
	if (img->version < EIF_VERSION_MIN || img->version > EIF_VERSION_CURRENT) {
		cl_diag_set(d, "EIF version %u at offset 0x4 is not supported (expected 2 to 4)",
		            img->version);
		return EIF_ERR_VERSION;
	}
	if (img->flags & ~EIF_FLAG_AARCH64) {
		cl_diag_set(d,
		            "header flags 0x%04x at offset 0x6 set reserved bits (only bit 0, "
		            "aarch64, is defined)",
		            img->flags);
		return EIF_ERR_HEADER;
	}
	if (img->num_sections == 0 || img->num_sections > EIF_MAX_SECTIONS) {
		cl_diag_set(d, "num_sections is %u at offset 0x1a, expected 1 to %u",
		            img->num_sections, EIF_MAX_SECTIONS);
		return EIF_ERR_SECTION_COUNT;
	}
	for (unsigned i = img->num_sections; i < EIF_MAX_SECTIONS; i++) {
		uint64_t o = cl_get_be64(h + 0x1c + 8 * i), s = cl_get_be64(h + 0x11c + 8 * i);

		if (o || s) {
			cl_diag_set(d,
			            "header table slot %u (offset 0x%" PRIx64 ", size 0x%" PRIx64
			            ") is used but num_sections is %u; unused slots must be 0",
			            i, o, s, img->num_sections);
			return EIF_ERR_LAYOUT;
		}
	}
	return EIF_OK;
}

/* Section @i at @off is the image's @what, of which there may be one: record it in *@slot, or
 * refuse a second. */
static enum eif_error claim_once(int *slot, const char *what, unsigned i, uint64_t off,
                                 struct cl_diag *d)
{
	if (*slot >= 0) {
		cl_diag_set(d, "section %u at 0x%" PRIx64 " is a second %s (first: section %d)", i,
		            off, what, *slot);
		return EIF_ERR_STRUCTURE;
	}
	*slot = (int)i;
	return EIF_OK;
}

/* Per-section checks that need only the 12-byte section header and the table. */
static enum eif_error check_section(const uint8_t *h, unsigned i, const uint8_t *sh, uint64_t off,
                                    struct eif_image *img, struct cl_diag *d)
{
	uint16_t type = cl_get_be16(sh), flags = cl_get_be16(sh + 2);
	uint64_t size = cl_get_be64(sh + 4);
	uint64_t toff = cl_get_be64(h + 0x1c + 8 * i), tsize = cl_get_be64(h + 0x11c + 8 * i);
	struct eif_section *s = &img->sections[i];

	if (type == EIF_SECTION_INVALID || type > EIF_SECTION_METADATA) {
		cl_diag_set(
		        d, "section %u at offset 0x%" PRIx64 " has type %u; valid types are 1 to 5",
		        i, off, type);
		return EIF_ERR_SECTION_TYPE;
	}
	if (type == EIF_SECTION_SIGNATURE && img->version < 3) {
		cl_diag_set(d,
		            "section %u at offset 0x%" PRIx64
		            " is a signature, which EIF version %u cannot have (needs 3 or later)",
		            i, off, img->version);
		return EIF_ERR_SECTION_TYPE;
	}
	if (type == EIF_SECTION_METADATA && img->version < 4) {
		cl_diag_set(d,
		            "section %u at offset 0x%" PRIx64
		            " is metadata, which EIF version %u cannot have (needs 4)",
		            i, off, img->version);
		return EIF_ERR_SECTION_TYPE;
	}
	if (flags != 0) {
		cl_diag_set(d,
		            "section %u (%s) at offset 0x%" PRIx64 " has flags 0x%04x, expected 0",
		            i, eif_section_type_name(type), off, flags);
		return EIF_ERR_SECTION_FLAGS;
	}
	if (toff != off) {
		cl_diag_set(d,
		            "header table says section %u starts at 0x%" PRIx64
		            ", but the %s section found there starts at 0x%" PRIx64
		            " (sections follow each other from 0x224 without gaps)",
		            i, toff, eif_section_type_name(type), off);
		return EIF_ERR_LAYOUT;
	}
	if (tsize != size) {
		cl_diag_set(d,
		            "header table says section %u (%s) at 0x%" PRIx64 " has 0x%" PRIx64
		            " data bytes, its section header says 0x%" PRIx64,
		            i, eif_section_type_name(type), off, tsize, size);
		return EIF_ERR_LAYOUT;
	}
	if (!cl_range_within(off + EIF_SECTION_HEADER_SIZE, size, img->file_size)) {
		cl_diag_set(d,
		            "section %u (%s) at offset 0x%" PRIx64 " has 0x%" PRIx64
		            " data bytes, which run past the end of the image at 0x%" PRIx64,
		            i, eif_section_type_name(type), off, size, img->file_size);
		return EIF_ERR_TRUNCATED;
	}
	if (type == EIF_SECTION_SIGNATURE && size > EIF_SIGNATURE_MAX) {
		cl_diag_set(d,
		            "section %u (signature) at offset 0x%" PRIx64 " is %" PRIu64
		            " bytes, more than the %u allowed",
		            i, off, size, EIF_SIGNATURE_MAX);
		return EIF_ERR_SECTION_SIZE;
	}
	if (type == EIF_SECTION_METADATA && size > EIF_METADATA_MAX) {
		cl_diag_set(d,
		            "section %u (metadata) at offset 0x%" PRIx64 " is %" PRIu64
		            " bytes, more than the %u cloister accepts",
		            i, off, size, EIF_METADATA_MAX);
		return EIF_ERR_SECTION_SIZE;
	}
	s->type = type;
	s->flags = flags;
	s->offset = off;
	s->data_offset = off + EIF_SECTION_HEADER_SIZE;
	s->size = size;

	switch (type) {
	case EIF_SECTION_KERNEL:
		return claim_once(&img->kernel, "kernel", i, off, d);
	case EIF_SECTION_CMDLINE:
		return claim_once(&img->cmdline, "cmdline", i, off, d);
	case EIF_SECTION_RAMDISK:
		if (img->kernel < 0) {
			cl_diag_set(d,
			            "section %u (ramdisk) at 0x%" PRIx64
			            " comes before the kernel; every ramdisk must follow it",
			            i, off);
			return EIF_ERR_STRUCTURE;
		}
		img->num_ramdisks++;
		break;
	case EIF_SECTION_SIGNATURE:
		return claim_once(&img->signature, "signature", i, off, d);
	case EIF_SECTION_METADATA:
		return claim_once(&img->metadata, "metadata section", i, off, d);
	default:
		break;
	}
	return EIF_OK;
}

static enum eif_error parse(struct source *src, unsigned flags, const struct eif_measurer *meas,
                            struct eif_image *img, struct cl_diag *d)
{
	struct eif_stream hs = { 0 };
	uint8_t hdr[EIF_HEADER_SIZE];
	uint64_t chunk = 0;
	const uint8_t *p;
	enum eif_error err;
	const struct eif_measurer *m = flags & EIF_PARSE_MEASURE ? meas : NULL;
	uint64_t off;
	uLong crc;
	size_t got;

	memset(img, 0, sizeof(*img));
	img->kernel = img->cmdline = img->metadata = img->signature = -1;

	if (src->size < EIF_HEADER_SIZE) {
		cl_diag_set(d,
		            "the image is %" PRIu64 " bytes, shorter than the %u-byte EIF header",
		            src->size, EIF_HEADER_SIZE);
		return EIF_ERR_TRUNCATED;
	}
	if ((err = source_get(src, 0, EIF_HEADER_SIZE, hdr, sizeof(hdr), &p, &got, d)))
		return err;
	memcpy(hdr, p, EIF_HEADER_SIZE);
	if ((err = check_header(hdr, src->size, img, d)))
		return err;
	if ((flags & EIF_PARSE_MEASURE) && !m) {
		cl_diag_set(d, "this parse cannot measure (no measurer)");
		return EIF_ERR_INVALID_ARG;
	}
	if (m && (err = m->init(&hs, src->size))) {
		m->free(&hs);
		return err;
	}

	crc = crc32(0L, hdr, EIF_CRC_OFFSET);
	off = EIF_HEADER_SIZE;
	for (unsigned i = 0; i < img->num_sections; i++) {
		uint8_t sh[EIF_SECTION_HEADER_SIZE];
		struct eif_section *s = &img->sections[i];
		uint8_t *capture = NULL;
		uint64_t done;

		if (!cl_range_within(off, EIF_SECTION_HEADER_SIZE, src->size)) {
			cl_diag_set(d,
			            "section %u header at offset 0x%" PRIx64
			            " needs 12 bytes but the image ends at 0x%" PRIx64
			            " (num_sections is %u)",
			            i, off, src->size, img->num_sections);
			err = EIF_ERR_TRUNCATED;
			goto fail;
		}
		if ((err = source_get(src, off, EIF_SECTION_HEADER_SIZE, sh, sizeof(sh), &p, &got,
		                      d)))
			goto fail;
		memcpy(sh, p, sizeof(sh));
		if ((err = check_section(hdr, i, sh, off, img, d)))
			goto fail;
		crc = crc32(crc, sh, sizeof(sh));

		if (s->type == EIF_SECTION_METADATA || s->type == EIF_SECTION_SIGNATURE) {
			/* size is bounded by check_section() */
			capture = malloc(s->size ? (size_t)s->size : 1);
			if (!capture) {
				err = EIF_ERR_NOMEM;
				goto fail;
			}
			if (s->type == EIF_SECTION_METADATA) {
				img->metadata_data = capture;
				img->metadata_len = (size_t)s->size;
			} else {
				img->signature_data = capture;
				img->signature_len = (size_t)s->size;
			}
		}
		/* the hashing thread must be idle when the streams are re-targeted */
		if (m && (err = m->section(&hs, s->type)))
			goto fail;
		for (done = 0; done < s->size; done += got) {
			uint64_t left = s->size - done;
			size_t want = left > EIF_IO_CHUNK ? EIF_IO_CHUNK : (size_t)left;
			/* memory input outlives the pass: no ring slot to recycle */
			int slot_no = src->mem ? -1 : (int)(chunk % EIF_PIPE_DEPTH);
			uint8_t *slot = src->ring[chunk % EIF_PIPE_DEPTH];

			/* the ring slot is free once the chunk that last used it is hashed */
			if (m && (err = m->slot_free(&hs, slot_no)))
				goto fail;
			if ((err = source_get(src, s->data_offset + done, want, slot, EIF_IO_CHUNK,
			                      &p, &got, d)))
				goto fail;
			chunk++;
			crc = crc32_z(crc, p, got);
			if (m && (err = m->feed(&hs, slot_no, p, got)))
				goto fail;
			if (capture)
				memcpy(capture + done, p, got);
		}
		off = s->data_offset + s->size; /* no overflow: checked in check_section() */
	}
	if (off != src->size) {
		cl_diag_set(d,
		            "%" PRIu64
		            " unexpected bytes after the last section: it ends at 0x%" PRIx64
		            " but the image is 0x%" PRIx64 " bytes (num_sections is %u)",
		            src->size - off, off, src->size, img->num_sections);
		err = EIF_ERR_LAYOUT;
		goto fail;
	}
	if (img->kernel < 0 || img->cmdline < 0 || img->num_ramdisks == 0) {
		cl_diag_set(
		        d,
		        "the image has %s%s%s; an EIF needs one kernel, one cmdline and at least "
		        "one ramdisk",
		        img->kernel < 0 ? "no kernel section " : "",
		        img->cmdline < 0 ? "no cmdline section " : "",
		        img->num_ramdisks == 0 ? "no ramdisk section" : "");
		err = EIF_ERR_STRUCTURE;
		goto fail;
	}
	if (img->version >= 4 && img->metadata < 0) {
		cl_diag_set(d, "EIF version %u requires a metadata section and this image has none",
		            img->version);
		err = EIF_ERR_STRUCTURE;
		goto fail;
	}
	img->crc_computed = (uint32_t)crc;
	img->crc_ok = img->crc_computed == img->crc_stored;
	if (!img->crc_ok && !(flags & EIF_PARSE_ALLOW_BAD_CRC)) {
		cl_diag_set(d,
		            "CRC mismatch: the header at 0x220 says 0x%08x, the image's bytes give "
		            "0x%08x (the file is corrupt or was modified)",
		            img->crc_stored, img->crc_computed);
		err = EIF_ERR_CRC;
		goto fail;
	}
	if (m) {
		if ((err = m->final(&hs, &img->meas)))
			goto fail;
		if (img->signature >= 0) {
			err = m->pcr8(img->signature_data, img->signature_len, img->meas.pcr8, d);
			if (err) {
				cl_diag_prefix(d, "section %d (signature) at 0x%" PRIx64,
				               img->signature,
				               img->sections[img->signature].offset);
				goto fail;
			}
			img->meas.has_pcr8 = true;
		}
		img->measured = true;
		m->free(&hs);
	}
	return EIF_OK;
fail:
	if (m)
		m->free(&hs);
	eif_image_release(img);
	return err;
}

void eif_image_release(struct eif_image *img)
{
	if (!img)
		return;
	free(img->metadata_data);
	free(img->signature_data);
	img->metadata_data = img->signature_data = NULL;
	img->metadata_len = img->signature_len = 0;
}

enum eif_error eif_parse_buffer_with(const uint8_t *buf, size_t len, unsigned flags,
                                     const struct eif_measurer *m, struct eif_image *out,
                                     struct cl_diag *d)
{
	static const uint8_t empty[1];
	struct source src = { .mem = buf ? buf : empty, .fd = -1, .size = len };

	if (!out || (!buf && len))
		return EIF_ERR_INVALID_ARG;
	return parse(&src, flags, m, out, d);
}

enum eif_error eif_parse_layout(const uint8_t *buf, size_t len, unsigned flags,
                                struct eif_image *out, struct cl_diag *d)
{
	return eif_parse_buffer_with(buf, len, flags, NULL, out, d);
}

enum eif_error eif_read_fd_with(int fd, unsigned flags, const struct eif_measurer *m,
                                struct eif_image *out, struct cl_diag *d)
{
	struct source src = { .fd = fd };
	enum eif_error err;
	struct stat st;

	if (!out)
		return EIF_ERR_INVALID_ARG;
	if (fstat(fd, &st) < 0) {
		cl_diag_set(d, "cannot stat the image: %s", strerror(errno));
		return EIF_ERR_IO;
	}
	if (!S_ISREG(st.st_mode)) {
		cl_diag_set(d, "the image is not a regular file");
		return EIF_ERR_IO;
	}
	src.size = (uint64_t)st.st_size;
	err = EIF_OK;
	for (unsigned i = 0; i < EIF_PIPE_DEPTH; i++)
		if (!(src.ring[i] = malloc(EIF_IO_CHUNK)))
			err = EIF_ERR_NOMEM;
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if (!err)
		err = parse(&src, flags, m, out, d);
	for (unsigned i = 0; i < EIF_PIPE_DEPTH; i++)
		free(src.ring[i]);
	return err;
}

enum eif_error eif_read_file_with(const char *path, unsigned flags, const struct eif_measurer *m,
                                  struct eif_image *out, struct cl_diag *d)
{
	enum eif_error err;
	int fd;

	if (!path || !out)
		return EIF_ERR_INVALID_ARG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		cl_diag_set(d, "cannot open '%s': %s", path, strerror(errno));
		return EIF_ERR_IO;
	}
	err = eif_read_fd_with(fd, flags, m, out, d);
	close(fd);
	if (err)
		cl_diag_prefix(d, "%s", path);
	return err;
}

enum eif_error eif_read_layout_file(const char *path, unsigned flags, struct eif_image *out,
                                    struct cl_diag *d)
{
	return eif_read_file_with(path, flags, NULL, out, d);
}
