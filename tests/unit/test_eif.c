/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EIF reader, writer, measurements and signing (docs/eif.md).
 *
 * Known answers are computed here independently: images are assembled by mkeif() below (its
 * own big-endian encoding and zlib CRC), PCRs by hashing the concatenations with EVP directly,
 * PCR8 from the DER that OpenSSL gives for the test's own certificate.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <zlib.h>

#include "cloister/eif.h"
#include "lib/eif/internal.h"
#include "lib/util/file.h"
#include "lib/util/hex.h"

/* ---- independent helpers --------------------------------------------------------------- */

static char tmpdir[256], rd0_path[512], rd1_path[512];

static void be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

struct sec {
	uint16_t type;
	const void *data;
	size_t len;
};

/* Assemble an image: header, then sections back to back; table = file order; valid CRC. */
static uint8_t *mkeif(uint16_t version, const struct sec *s, unsigned n, size_t *len)
{
	size_t total = 548, off;
	uint8_t *b;
	uLong crc;

	for (unsigned i = 0; i < n; i++)
		total += 12 + s[i].len;
	b = calloc(1, total);
	assert_non_null(b);
	memcpy(b, ".eif", 4);
	be16(b + 4, version);
	be64(b + 8, 1ull << 30);
	be64(b + 16, 2);
	be16(b + 26, (uint16_t)n);
	off = 548;
	for (unsigned i = 0; i < n; i++) {
		be64(b + 28 + 8 * i, off);
		be64(b + 284 + 8 * i, s[i].len);
		be16(b + off, s[i].type);
		be64(b + off + 4, s[i].len);
		if (s[i].len)
			memcpy(b + off + 12, s[i].data, s[i].len);
		off += 12 + s[i].len;
	}
	crc = crc32(0, b, 544);
	crc = crc32(crc, b + 548, (uInt)(total - 548));
	b[544] = (uint8_t)(crc >> 24);
	b[545] = (uint8_t)(crc >> 16);
	b[546] = (uint8_t)(crc >> 8);
	b[547] = (uint8_t)crc;
	*len = total;
	return b;
}

static void fix_crc(uint8_t *b, size_t total)
{
	uLong crc = crc32(0, b, 544);

	crc = crc32(crc, b + 548, (uInt)(total - 548));
	b[544] = (uint8_t)(crc >> 24);
	b[545] = (uint8_t)(crc >> 16);
	b[546] = (uint8_t)(crc >> 8);
	b[547] = (uint8_t)crc;
}

/* PCR = SHA384(zeros48 || SHA384(concatenation of the given parts)), via EVP directly. */
static void pcr_of(uint8_t out[48], const struct sec *parts, unsigned n)
{
	uint8_t buf[96] = { 0 };
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int l;

	assert_true(EVP_DigestInit_ex(c, EVP_sha384(), NULL));
	for (unsigned i = 0; i < n; i++)
		assert_true(EVP_DigestUpdate(c, parts[i].data, parts[i].len));
	assert_true(EVP_DigestFinal_ex(c, buf + 48, &l));
	EVP_MD_CTX_free(c);
	assert_true(EVP_Digest(buf, 96, out, &l, EVP_sha384(), NULL));
}

static char *tpath(const char *name)
{
	static char p[4][512];
	static int k;
	char *r = p[k++ & 3];

	snprintf(r, 512, "%s/%s", tmpdir, name);
	return r;
}

static void put_file(const char *name, const void *data, size_t len)
{
	FILE *f = fopen(tpath(name), "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static uint8_t *get_file(const char *path, size_t *len)
{
	uint8_t *b = NULL;

	assert_int_equal(cl_file_read_all(path, 1 << 28, &b, len, NULL), 0);
	return b;
}

static const char KERNEL[] = "MZ-fake-kernel-bytes";
static const char CMDLINE[] = "reboot=k panic=30 console=ttyS0";
static const char RD0[] = "bootstrap-ramdisk";
static const char RD1[] = "customer-ramdisk-with-more-bytes";
static const char META[] = "{\"ImageName\":\"t\",\"ImageVersion\":\"1\",\"BuildMetadata\":{"
                           "\"BuildTime\":\"x\",\"BuildTool\":\"y\",\"BuildToolVersion\":\"z\","
                           "\"OperatingSystem\":\"Linux\",\"KernelVersion\":\"6\"},"
                           "\"DockerInfo\":null,\"CustomMetadata\":null}";

/* A standard v4 image in nitro-cli order. */
static uint8_t *std_image(size_t *len)
{
	struct sec s[] = {
		{ 1, KERNEL, strlen(KERNEL) }, { 2, CMDLINE, strlen(CMDLINE) },
		{ 5, META, strlen(META) },     { 3, RD0, strlen(RD0) },
		{ 3, RD1, strlen(RD1) },
	};

	return mkeif(4, s, 5, len);
}

static int setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/cloister-test-eif-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	put_file("kernel", KERNEL, strlen(KERNEL));
	put_file("rd0", RD0, strlen(RD0));
	put_file("rd1", RD1, strlen(RD1));
	snprintf(rd0_path, sizeof(rd0_path), "%s/rd0", tmpdir);
	snprintf(rd1_path, sizeof(rd1_path), "%s/rd1", tmpdir);
	return 0;
}

static int teardown_dir(void **state)
{
	char cmd[600];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static enum eif_error parse(const uint8_t *b, size_t len, struct eif_image *img, char *msg)
{
	struct cl_diag d = { { 0 } };
	enum eif_error e = eif_parse_buffer(b, len, EIF_PARSE_MEASURE, img, &d);

	if (msg)
		snprintf(msg, CL_DIAG_MAX, "%s", d.msg);
	return e;
}

/* ---- reader ---------------------------------------------------------------------------- */

static void test_eif_reader_measures_like_nitro_cli(void **state)
{
	struct sec k = { 0, KERNEL, strlen(KERNEL) }, c = { 0, CMDLINE, strlen(CMDLINE) },
	           r0 = { 0, RD0, strlen(RD0) }, r1 = { 0, RD1, strlen(RD1) };
	struct sec all[] = { k, c, r0, r1 }, boot[] = { k, c, r0 }, app[] = { r1 };
	uint8_t p0[48], p1[48], p2[48];
	struct eif_image img;
	size_t len;
	uint8_t *b = std_image(&len);

	(void)state;
	pcr_of(p0, all, 4);
	pcr_of(p1, boot, 3);
	pcr_of(p2, app, 1);
	assert_int_equal(parse(b, len, &img, NULL), EIF_OK);
	assert_memory_equal(img.meas.pcr0, p0, 48);
	assert_memory_equal(img.meas.pcr1, p1, 48);
	assert_memory_equal(img.meas.pcr2, p2, 48);
	assert_false(img.meas.has_pcr8);
	assert_true(img.crc_ok);
	assert_int_equal(img.version, 4);
	assert_int_equal(img.num_sections, 5);
	assert_int_equal(img.kernel, 0);
	assert_int_equal(img.cmdline, 1);
	assert_int_equal(img.metadata, 2);
	assert_int_equal(img.signature, -1);
	assert_int_equal(img.num_ramdisks, 2);
	assert_int_equal(img.sections[3].offset,
	                 548 + 12 * 3 + strlen(KERNEL) + strlen(CMDLINE) + strlen(META));
	assert_int_equal(img.sections[3].size, strlen(RD0));
	assert_int_equal(img.metadata_len, strlen(META));
	assert_memory_equal(img.metadata_data, META, strlen(META));
	eif_image_release(&img);
	free(b);
}

static void test_eif_pcr2_with_one_ramdisk_is_the_spec_constant(void **state)
{
	static const char *pcr2 = "21b9efbc184807662e966d34f390821309eeac6802309798826296bf3e8bec7c"
	                          "10edb30948c90ba67310f7b964fc500a";
	struct sec s[] = { { 1, KERNEL, strlen(KERNEL) },
		           { 2, CMDLINE, strlen(CMDLINE) },
		           { 5, META, strlen(META) },
		           { 3, RD0, strlen(RD0) } };
	char hex[97];
	struct eif_image img;
	size_t len;
	uint8_t *b = mkeif(4, s, 4, &len);

	(void)state;
	assert_int_equal(parse(b, len, &img, NULL), EIF_OK);
	cl_hex_encode(img.meas.pcr2, 48, hex);
	assert_string_equal(hex, pcr2);
	/* with one ramdisk PCR0 and PCR1 cover the same bytes */
	assert_memory_equal(img.meas.pcr0, img.meas.pcr1, 48);
	eif_image_release(&img);
	free(b);
}

static void test_eif_reader_accepts_sections_in_any_order(void **state)
{
	/* metadata first, cmdline after the ramdisks: hashed in file order */
	struct sec s[] = { { 5, META, strlen(META) },
		           { 1, KERNEL, strlen(KERNEL) },
		           { 3, RD0, strlen(RD0) },
		           { 3, RD1, strlen(RD1) },
		           { 2, CMDLINE, strlen(CMDLINE) } };
	struct sec all[] = { s[1], s[2], s[3], s[4] }, boot[] = { s[1], s[2], s[4] },
	           app[] = { s[3] };
	uint8_t p0[48], p1[48], p2[48];
	struct eif_image img;
	size_t len;
	uint8_t *b = mkeif(4, s, 5, &len);

	(void)state;
	pcr_of(p0, all, 4);
	pcr_of(p1, boot, 3);
	pcr_of(p2, app, 1);
	assert_int_equal(parse(b, len, &img, NULL), EIF_OK);
	assert_memory_equal(img.meas.pcr0, p0, 48);
	assert_memory_equal(img.meas.pcr1, p1, 48);
	assert_memory_equal(img.meas.pcr2, p2, 48);
	assert_int_equal(img.kernel, 1);
	assert_int_equal(img.cmdline, 4);
	eif_image_release(&img);
	free(b);
}

static void test_eif_reader_accepts_v2_and_v3(void **state)
{
	struct sec s[] = { { 1, KERNEL, strlen(KERNEL) },
		           { 2, CMDLINE, strlen(CMDLINE) },
		           { 3, RD0, strlen(RD0) } };
	struct eif_image img;
	size_t len;
	uint8_t *b;

	(void)state;
	for (uint16_t v = 2; v <= 3; v++) {
		b = mkeif(v, s, 3, &len);
		assert_int_equal(parse(b, len, &img, NULL), EIF_OK);
		assert_int_equal(img.version, v);
		assert_int_equal(img.metadata, -1);
		eif_image_release(&img);
		free(b);
	}
}

static void test_eif_read_fd_matches_buffer_parse(void **state)
{
	struct eif_image a, f;
	size_t len;
	uint8_t *b = std_image(&len);

	(void)state;
	put_file("std.eif", b, len);
	assert_int_equal(parse(b, len, &a, NULL), EIF_OK);
	assert_int_equal(eif_read_file(tpath("std.eif"), EIF_PARSE_MEASURE, &f, NULL), EIF_OK);
	assert_memory_equal(&a.meas, &f.meas, sizeof(a.meas));
	assert_memory_equal(a.sections, f.sections, sizeof(a.sections));
	assert_int_equal(a.crc_computed, f.crc_computed);
	eif_image_release(&a);
	eif_image_release(&f);
	free(b);
}

static void expect_reject(const uint8_t *b, size_t len, enum eif_error want, const char *needle)
{
	struct eif_image img;
	char msg[CL_DIAG_MAX];
	enum eif_error got = parse(b, len, &img, msg);

	if (got != want || (needle && !strstr(msg, needle)))
		fail_msg("want %s (%d) containing '%s', got %s (%d): %s", eif_strerror(want), want,
		         needle ? needle : "", eif_strerror(got), got, msg);
}

static void test_eif_rejects_truncated_header(void **state)
{
	size_t len;
	uint8_t *b = std_image(&len);

	(void)state;
	expect_reject(b, 0, EIF_ERR_TRUNCATED, "shorter than the 548-byte");
	expect_reject(b, 547, EIF_ERR_TRUNCATED, "547 bytes");
	/* header complete but the first section header is cut */
	expect_reject(b, 554, EIF_ERR_TRUNCATED, "section 0 header at offset 0x224");
	free(b);
}

static void test_eif_rejects_section_past_eof(void **state)
{
	size_t len;
	uint8_t *b = std_image(&len);

	(void)state;
	/* the last ramdisk loses its final byte */
	expect_reject(b, len - 1, EIF_ERR_TRUNCATED, "section 4 (ramdisk)");
	free(b);
}

static void test_eif_rejects_bad_crc_unless_allowed(void **state)
{
	struct eif_image img;
	size_t len;
	uint8_t *b = std_image(&len);

	(void)state;
	b[len - 1] ^= 1;
	expect_reject(b, len, EIF_ERR_CRC, "CRC mismatch");
	assert_int_equal(eif_parse_buffer(b, len, EIF_PARSE_ALLOW_BAD_CRC, &img, NULL), EIF_OK);
	assert_false(img.crc_ok);
	assert_int_equal(img.crc_computed, crc32(crc32(0, b, 544), b + 548, (uInt)(len - 548)));
	eif_image_release(&img);
	b[len - 1] ^= 1;
	/* the unused field at 0x21c is covered by the CRC too */
	b[0x21c] = 1;
	expect_reject(b, len, EIF_ERR_CRC, NULL);
	free(b);
}

static void test_eif_rejects_bad_magic_and_version(void **state)
{
	size_t len;
	uint8_t *b = std_image(&len);

	(void)state;
	b[0] = 'x';
	expect_reject(b, len, EIF_ERR_MAGIC, "bad magic");
	b[0] = '.';
	for (uint16_t v = 0; v < 8; v++) {
		if (v >= 2 && v <= 4)
			continue;
		be16(b + 4, v);
		fix_crc(b, len);
		expect_reject(b, len, EIF_ERR_VERSION, "not supported");
	}
	free(b);
}

static void test_eif_rejects_unknown_section_type(void **state)
{
	struct sec s[] = { { 1, KERNEL, 3 },
		           { 2, CMDLINE, 3 },
		           { 5, META, strlen(META) },
		           { 3, RD0, 3 },
		           { 6, "zz", 2 } };
	size_t len;
	uint8_t *b = mkeif(4, s, 5, &len);

	(void)state;
	expect_reject(b, len, EIF_ERR_SECTION_TYPE, "section 4 at offset");
	free(b);
	s[4].type = 0;
	b = mkeif(4, s, 5, &len);
	expect_reject(b, len, EIF_ERR_SECTION_TYPE, "has type 0");
	free(b);
}

static void test_eif_rejects_sections_newer_than_the_version(void **state)
{
	struct sec s[] = { { 1, KERNEL, 3 }, { 2, CMDLINE, 3 }, { 3, RD0, 3 }, { 4, "x", 1 } };
	size_t len;
	uint8_t *b = mkeif(2, s, 4, &len);

	(void)state;
	expect_reject(b, len, EIF_ERR_SECTION_TYPE, "signature, which EIF version 2");
	free(b);
	s[3] = (struct sec){ 5, META, strlen(META) };
	b = mkeif(3, s, 4, &len);
	expect_reject(b, len, EIF_ERR_SECTION_TYPE, "metadata, which EIF version 3");
	free(b);
	/* and v4 must have metadata */
	b = mkeif(4, s, 3, &len);
	expect_reject(b, len, EIF_ERR_STRUCTURE, "requires a metadata section");
	free(b);
}

static void test_eif_rejects_section_flags(void **state)
{
	size_t len;
	uint8_t *b = std_image(&len);

	(void)state;
	b[548 + 3] = 1; /* kernel section header flags */
	fix_crc(b, len);
	expect_reject(b, len, EIF_ERR_SECTION_FLAGS, "section 0 (kernel)");
	free(b);
}

static void test_eif_rejects_table_layout_disagreement(void **state)
{
	size_t len;
	uint8_t *b = std_image(&len);
	uint8_t save[8];

	(void)state;
	/* offset of section 2 off by one */
	memcpy(save, b + 28 + 16, 8);
	b[28 + 16 + 7] ^= 1;
	fix_crc(b, len);
	expect_reject(b, len, EIF_ERR_LAYOUT, "section 2 starts at");
	memcpy(b + 28 + 16, save, 8);
	/* size of section 3 disagrees with its section header */
	b[284 + 24 + 7] ^= 1;
	fix_crc(b, len);
	expect_reject(b, len, EIF_ERR_LAYOUT, "section 3 (ramdisk)");
	b[284 + 24 + 7] ^= 1;
	/* an unused slot is set */
	be64(b + 28 + 8 * 7, 4096);
	fix_crc(b, len);
	expect_reject(b, len, EIF_ERR_LAYOUT, "slot 7");
	free(b);
}

static void test_eif_rejects_trailing_bytes(void **state)
{
	size_t len;
	uint8_t *b = std_image(&len), *c = calloc(1, len + 12);

	(void)state;
	memcpy(c, b, len);
	fix_crc(c, len + 12);
	expect_reject(c, len + 12, EIF_ERR_LAYOUT, "12 unexpected bytes");
	free(b);
	free(c);
}

static void test_eif_rejects_too_many_sections(void **state)
{
	size_t len;
	uint8_t *b = std_image(&len);

	(void)state;
	be16(b + 26, 33);
	fix_crc(b, len);
	expect_reject(b, len, EIF_ERR_SECTION_COUNT, "num_sections is 33");
	be16(b + 26, 0);
	fix_crc(b, len);
	expect_reject(b, len, EIF_ERR_SECTION_COUNT, "num_sections is 0");
	free(b);
}

static void test_eif_rejects_overflowing_sizes(void **state)
{
	size_t len;
	uint8_t *b = std_image(&len);

	(void)state;
	/* section 4 claims 2^64-1 bytes: offset + 12 + size wraps */
	be64(b + 284 + 32, UINT64_MAX);
	be64(b + 548 + 12 * 4 + strlen(KERNEL) + strlen(CMDLINE) + strlen(META) + strlen(RD0) + 4,
	     UINT64_MAX);
	fix_crc(b, len);
	expect_reject(b, len, EIF_ERR_TRUNCATED, "past the end");
	free(b);
}

static void test_eif_rejects_bad_structure(void **state)
{
	struct sec early[] = { { 3, RD0, 3 }, { 1, KERNEL, 3 }, { 2, CMDLINE, 3 } };
	struct sec twok[] = { { 1, KERNEL, 3 }, { 1, KERNEL, 3 }, { 2, CMDLINE, 3 }, { 3, RD0, 3 } };
	struct sec twoc[] = {
		{ 1, KERNEL, 3 }, { 2, CMDLINE, 3 }, { 2, CMDLINE, 3 }, { 3, RD0, 3 }
	};
	struct sec nord[] = { { 1, KERNEL, 3 }, { 2, CMDLINE, 3 } };
	struct sec nok[] = { { 2, CMDLINE, 3 }, { 2, CMDLINE, 3 } };
	size_t len;
	uint8_t *b;

	(void)state;
	b = mkeif(3, early, 3, &len);
	expect_reject(b, len, EIF_ERR_STRUCTURE, "comes before the kernel");
	free(b);
	b = mkeif(3, twok, 4, &len);
	expect_reject(b, len, EIF_ERR_STRUCTURE, "second kernel");
	free(b);
	b = mkeif(3, twoc, 4, &len);
	expect_reject(b, len, EIF_ERR_STRUCTURE, "second cmdline");
	free(b);
	b = mkeif(3, nord, 2, &len);
	expect_reject(b, len, EIF_ERR_STRUCTURE, "no ramdisk");
	free(b);
	b = mkeif(3, nok, 1, &len);
	expect_reject(b, len, EIF_ERR_STRUCTURE, "no kernel");
	free(b);
}

static void test_eif_rejects_oversized_signature_section(void **state)
{
	static uint8_t big[EIF_SIGNATURE_MAX + 1];
	struct sec s[] = {
		{ 1, KERNEL, 3 }, { 2, CMDLINE, 3 }, { 3, RD0, 3 }, { 4, big, sizeof(big) }
	};
	size_t len;
	uint8_t *b = mkeif(3, s, 4, &len);

	(void)state;
	expect_reject(b, len, EIF_ERR_SECTION_SIZE, "32768");
	free(b);
}

static void test_eif_rejects_malformed_signature_cbor(void **state)
{
	static const uint8_t junk[] = { 0x81, 0xa1, 0x63, 'a', 'b', 'c' };
	struct sec s[] = {
		{ 1, KERNEL, 3 }, { 2, CMDLINE, 3 }, { 3, RD0, 3 }, { 4, junk, sizeof(junk) }
	};
	size_t len;
	uint8_t *b = mkeif(3, s, 4, &len);

	(void)state;
	expect_reject(b, len, EIF_ERR_SIGNATURE, "section 3 (signature)");
	free(b);
}

/* ---- writer ---------------------------------------------------------------------------- */

static struct eif_build_params std_params(const char **rds, size_t n)
{
	struct eif_build_params p = {
		.kernel_path = tpath("kernel"),
		.cmdline = CMDLINE,
		.ramdisk_paths = rds,
		.num_ramdisks = n,
		.image_name = "hello",
		.image_version = "2.0",
		.build_tool = "tool",
		.build_tool_version = "9",
		.kernel_os = "Linux",
		.kernel_version = "6.12.9",
		.build_time = "2024-05-01T10:00:00+00:00",
	};
	return p;
}

static void test_eif_writer_uses_nitro_cli_order_and_pcrs(void **state)
{
	const char *rds[] = { NULL, NULL };
	struct sec k = { 0, KERNEL, strlen(KERNEL) }, c = { 0, CMDLINE, strlen(CMDLINE) },
	           r0 = { 0, RD0, strlen(RD0) }, r1 = { 0, RD1, strlen(RD1) };
	struct sec all[] = { k, c, r0, r1 }, boot[] = { k, c, r0 }, app[] = { r1 };
	static const char meta[] =
	        "{\"ImageName\":\"hello\",\"ImageVersion\":\"2.0\",\"BuildMetadata\":{"
	        "\"BuildTime\":"
	        "\"2024-05-01T10:00:00+00:00\",\"BuildTool\":\"tool\",\"BuildToolVersion\":\"9\","
	        "\"OperatingSystem\":\"Linux\",\"KernelVersion\":\"6.12.9\"},\"DockerInfo\":null,"
	        "\"CustomMetadata\":null}";
	struct sec expect[] = { { 1, KERNEL, strlen(KERNEL) },
		                { 2, CMDLINE, strlen(CMDLINE) },
		                { 5, meta, strlen(meta) },
		                { 3, RD0, strlen(RD0) },
		                { 3, RD1, strlen(RD1) } };
	struct eif_build_params p;
	struct eif_measurements m;
	uint8_t p0[48], p1[48], p2[48], *want, *got;
	size_t wlen, glen;

	(void)state;
	rds[0] = rd0_path;
	rds[1] = rd1_path;
	p = std_params(rds, 2);
	assert_int_equal(eif_build(&p, tpath("out.eif"), &m, NULL), EIF_OK);
	pcr_of(p0, all, 4);
	pcr_of(p1, boot, 3);
	pcr_of(p2, app, 1);
	assert_memory_equal(m.pcr0, p0, 48);
	assert_memory_equal(m.pcr1, p1, 48);
	assert_memory_equal(m.pcr2, p2, 48);
	/* byte for byte what the independent assembler makes of the same sections */
	want = mkeif(4, expect, 5, &wlen);
	got = get_file(tpath("out.eif"), &glen);
	assert_int_equal(glen, wlen);
	assert_memory_equal(got, want, wlen);
	free(want);
	free(got);
}

static void test_eif_build_is_reproducible(void **state)
{
	const char *rds[] = { NULL };
	struct eif_build_params p;
	uint8_t *a, *b;
	size_t alen, blen;

	(void)state;
	rds[0] = rd1_path;
	p = std_params(rds, 1);
	p.build_time = NULL;
	setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
	assert_int_equal(eif_build(&p, tpath("a.eif"), NULL, NULL), EIF_OK);
	assert_int_equal(eif_build(&p, tpath("b.eif"), NULL, NULL), EIF_OK);
	unsetenv("SOURCE_DATE_EPOCH");
	a = get_file(tpath("a.eif"), &alen);
	b = get_file(tpath("b.eif"), &blen);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	/* chrono's to_rfc3339 of 1700000000 */
	assert_non_null(memmem(a, alen, "\"2023-11-14T22:13:20+00:00\"", 27));
	free(a);
	free(b);
}

static void test_eif_build_time_without_epoch_is_rfc3339_now(void **state)
{
	char t[64];

	(void)state;
	unsetenv("SOURCE_DATE_EPOCH");
	assert_int_equal(eif_default_build_time(t, sizeof(t), NULL), EIF_OK);
	assert_true(eif_is_rfc3339(t));
	assert_non_null(strstr(t, "+00:00"));
	assert_true(eif_is_rfc3339("2024-05-01T10:00:00.123456789Z"));
	assert_false(eif_is_rfc3339("2024-05-01 10:00:00"));
	assert_false(eif_is_rfc3339("yesterday"));
	setenv("SOURCE_DATE_EPOCH", "soon", 1);
	assert_int_equal(eif_default_build_time(t, sizeof(t), NULL), EIF_ERR_INVALID_ARG);
	unsetenv("SOURCE_DATE_EPOCH");
}

static void test_eif_custom_metadata_is_sorted_and_validated(void **state)
{
	const char *rds[] = { NULL };
	struct eif_build_params p;
	struct eif_image img;
	char big[EIF_CUSTOM_METADATA_MAX + 16];
	const char *want = "\"DockerInfo\":{\"Arch\":\"amd64\",\"Id\":\"sha256:00\"},"
	                   "\"CustomMetadata\":{\"alpha\":{\"a\":true,\"b\":[1.5,\"a/b\"]},"
	                   "\"zeta\":1}}";

	(void)state;
	rds[0] = rd0_path;
	p = std_params(rds, 1);
	p.custom_metadata_json = "{\"zeta\": 1, \"alpha\": {\"b\": [1.50, \"a/b\"], \"a\": true}}";
	p.docker_info_json = "{\"Id\": \"sha256:00\", \"Arch\": \"amd64\"}";
	assert_int_equal(eif_build(&p, tpath("m.eif"), NULL, NULL), EIF_OK);
	assert_int_equal(eif_read_file(tpath("m.eif"), 0, &img, NULL), EIF_OK);
	assert_non_null(img.metadata_data);
	assert_non_null(memmem(img.metadata_data, img.metadata_len, want, strlen(want)));
	eif_image_release(&img);
	p.custom_metadata_json = "[1, 2]";
	assert_int_equal(eif_build(&p, tpath("m.eif"), NULL, NULL), EIF_ERR_METADATA);
	p.custom_metadata_json = "{\"a\": ";
	assert_int_equal(eif_build(&p, tpath("m.eif"), NULL, NULL), EIF_ERR_METADATA);
	memset(big, ' ', sizeof(big));
	big[0] = '{';
	big[sizeof(big) - 2] = '}';
	big[sizeof(big) - 1] = '\0';
	p.custom_metadata_json = big;
	assert_int_equal(eif_build(&p, tpath("m.eif"), NULL, NULL), EIF_ERR_METADATA);
}

static void test_eif_build_rejects_missing_inputs(void **state)
{
	const char *rds[] = { "/nonexistent/ramdisk" };
	struct eif_build_params p;
	struct cl_diag d = { { 0 } };

	(void)state;
	p = std_params(rds, 1);
	assert_int_equal(eif_build(&p, tpath("x.eif"), NULL, &d), EIF_ERR_IO);
	assert_non_null(strstr(d.msg, "/nonexistent/ramdisk"));
	assert_int_equal(access(tpath("x.eif"), F_OK), -1);
	p.num_ramdisks = 0;
	assert_int_equal(eif_build(&p, tpath("x.eif"), NULL, &d), EIF_ERR_INVALID_ARG);
}

static void test_eif_build_from_another_filesystem_is_identical(void **state)
{
	/* /dev/shm is tmpfs: copy_file_range across filesystems fails with EXDEV and the writer
	 * falls back to read() + write(); the image must not change */
	const char *rds[] = { NULL, NULL };
	char shm[64];
	struct eif_build_params p;
	uint8_t *a, *b;
	size_t alen, blen;
	FILE *f;

	(void)state;
	snprintf(shm, sizeof(shm), "/dev/shm/cloister-test-rd1-%d", (int)getpid());
	f = fopen(shm, "wb");
	if (!f)
		skip();
	fwrite(RD1, 1, strlen(RD1), f);
	fclose(f);
	rds[0] = rd0_path;
	rds[1] = rd1_path;
	p = std_params(rds, 2);
	assert_int_equal(eif_build(&p, tpath("fs1.eif"), NULL, NULL), EIF_OK);
	rds[1] = shm;
	assert_int_equal(eif_build(&p, tpath("fs2.eif"), NULL, NULL), EIF_OK);
	unlink(shm);
	a = get_file(tpath("fs1.eif"), &alen);
	b = get_file(tpath("fs2.eif"), &blen);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	free(a);
	free(b);
}

/* Feed kernel, cmdline and two ramdisks (the second in 3 chunks) through a stream. */
static void stream_measure(uint64_t total, struct eif_measurements *m)
{
	static const uint16_t types[] = { EIF_SECTION_KERNEL, EIF_SECTION_CMDLINE,
		                          EIF_SECTION_METADATA, EIF_SECTION_RAMDISK,
		                          EIF_SECTION_RAMDISK };
	static const char *const parts[] = { KERNEL, CMDLINE, META, RD0, RD1 };
	struct eif_stream s;

	memset(m, 0, sizeof(*m));
	assert_int_equal(eif_stream_init(&s, total), EIF_OK);
	assert_int_equal(s.ab.running, total >= EIF_STREAM_THREADS_MIN);
	for (unsigned i = 0; i < 5; i++) {
		size_t n = strlen(parts[i]), third = n / 3;

		assert_int_equal(eif_stream_section(&s, types[i]), EIF_OK);
		assert_int_equal(eif_stream_feed(&s, -1, (const uint8_t *)parts[i], third), EIF_OK);
		assert_int_equal(eif_stream_feed(&s, -1, (const uint8_t *)parts[i] + third, third),
		                 EIF_OK);
		assert_int_equal(eif_stream_feed(&s, -1, (const uint8_t *)parts[i] + 2 * third,
		                                 n - 2 * third),
		                 EIF_OK);
	}
	assert_int_equal(eif_stream_final(&s, m), EIF_OK);
	eif_stream_free(&s);
}

static void test_eif_small_pass_hashes_inline_and_measures_alike(void **state)
{
	struct sec k = { 0, KERNEL, strlen(KERNEL) }, c = { 0, CMDLINE, strlen(CMDLINE) },
	           r0 = { 0, RD0, strlen(RD0) }, r1 = { 0, RD1, strlen(RD1) };
	struct sec all[] = { k, c, r0, r1 }, boot[] = { k, c, r0 }, app[] = { r1 };
	struct eif_measurements inl, thr;
	uint8_t p0[48], p1[48], p2[48];

	(void)state;
	pcr_of(p0, all, 4);
	pcr_of(p1, boot, 3);
	pcr_of(p2, app, 1);
	/* below the threshold no thread is started (the fuzzer parses ~1e7 small images) */
	stream_measure(EIF_STREAM_THREADS_MIN - 1, &inl);
	stream_measure(EIF_STREAM_THREADS_MIN, &thr);
	assert_memory_equal(inl.pcr0, p0, 48);
	assert_memory_equal(inl.pcr1, p1, 48);
	assert_memory_equal(inl.pcr2, p2, 48);
	assert_memory_equal(thr.pcr0, p0, 48);
	assert_memory_equal(thr.pcr1, p1, 48);
	assert_memory_equal(thr.pcr2, p2, 48);
}

static void test_eif_multi_chunk_ramdisks_measure_correctly(void **state)
{
	/* several EIF_IO_CHUNKs per ramdisk (above EIF_STREAM_THREADS_MIN): the buffer ring is
	 * recycled many times while the hashing threads run behind the reader / writer */
	static const size_t sizes[] = { 2 * EIF_IO_CHUNK + 12345, 3 * EIF_IO_CHUNK - 7,
		                        EIF_IO_CHUNK };
	const char *rds[3];
	char names[3][16], paths[3][600];
	struct sec parts[5];
	uint8_t *data[3], p0[48], p1[48], p2[48];
	struct eif_build_params p;
	struct eif_measurements m;
	struct eif_image img;

	(void)state;
	for (int i = 0; i < 3; i++) {
		data[i] = malloc(sizes[i]);
		assert_non_null(data[i]);
		for (size_t k = 0; k < sizes[i]; k++)
			data[i][k] = (uint8_t)(k * 131 + (size_t)i * 7 + (k >> 13));
		snprintf(names[i], sizeof(names[i]), "big%d", i);
		put_file(names[i], data[i], sizes[i]);
		snprintf(paths[i], sizeof(paths[i]), "%s", tpath(names[i]));
		rds[i] = paths[i];
	}
	parts[0] = (struct sec){ 0, KERNEL, strlen(KERNEL) };
	parts[1] = (struct sec){ 0, CMDLINE, strlen(CMDLINE) };
	for (int i = 0; i < 3; i++)
		parts[2 + i] = (struct sec){ 0, data[i], sizes[i] };
	pcr_of(p0, parts, 5);
	pcr_of(p1, parts, 3);
	pcr_of(p2, parts + 3, 2);
	p = std_params(rds, 3);
	assert_int_equal(eif_build(&p, tpath("big.eif"), &m, NULL), EIF_OK);
	assert_memory_equal(m.pcr0, p0, 48);
	assert_memory_equal(m.pcr1, p1, 48);
	assert_memory_equal(m.pcr2, p2, 48);
	assert_int_equal(eif_read_file(tpath("big.eif"), EIF_PARSE_MEASURE, &img, NULL), EIF_OK);
	assert_memory_equal(img.meas.pcr0, p0, 48);
	assert_memory_equal(img.meas.pcr1, p1, 48);
	assert_memory_equal(img.meas.pcr2, p2, 48);
	eif_image_release(&img);
	for (int i = 0; i < 3; i++)
		free(data[i]);
	unlink(tpath("big.eif"));
}

/* ---- signing --------------------------------------------------------------------------- */

/* A self-signed EC certificate for @nid, valid from now+@from_days to now+@to_days. */
static void make_cert(int nid, long from_days, long to_days, const char *cert_name,
                      const char *key_name)
{
	EVP_PKEY *key = EVP_EC_gen(OBJ_nid2sn(nid));
	X509 *x = X509_new();
	X509_NAME *n;
	FILE *f;

	assert_non_null(key);
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), from_days * 86400);
	X509_gmtime_adj(X509_getm_notAfter(x), to_days * 86400);
	X509_set_pubkey(x, key);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "C", MBSTRING_ASC, (const unsigned char *)"US", -1, -1, 0);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"signer", -1, -1,
	                           0);
	X509_set_issuer_name(x, n);
	assert_true(X509_sign(x, key, nid == NID_secp521r1 ? EVP_sha512() : EVP_sha384()) > 0);
	f = fopen(tpath(cert_name), "w");
	PEM_write_X509(f, x);
	fclose(f);
	f = fopen(tpath(key_name), "w");
	PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(key);
}

static void pcr8_of_cert_file(const char *path, uint8_t out[48])
{
	FILE *f = fopen(path, "r");
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	struct sec s = { 0, der, (size_t)n };

	fclose(f);
	pcr_of(out, &s, 1);
	OPENSSL_free(der);
	X509_free(x);
}

static void test_eif_signed_build_has_pcr8_and_verifies(void **state)
{
	const char *rds[] = { NULL };
	struct eif_build_params p;
	struct eif_signature_info info;
	struct eif_measurements m;
	struct eif_image img;
	uint8_t p8[48], *cert;
	size_t cert_len;
	static const uint8_t prefix[] = { 0x81, 0xa2, 0x73 };

	(void)state;
	make_cert(NID_secp384r1, -1, 30, "c384.pem", "k384.pem");
	rds[0] = rd0_path;
	p = std_params(rds, 1);
	p.signing_cert_path = tpath("c384.pem");
	p.private_key_path = tpath("k384.pem");
	assert_int_equal(eif_build(&p, tpath("s.eif"), &m, NULL), EIF_OK);
	pcr8_of_cert_file(tpath("c384.pem"), p8);
	assert_true(m.has_pcr8);
	assert_memory_equal(m.pcr8, p8, 48);

	assert_int_equal(eif_read_file(tpath("s.eif"), EIF_PARSE_MEASURE, &img, NULL), EIF_OK);
	assert_int_equal(img.num_sections, 5);
	assert_int_equal(img.signature, 4);
	assert_memory_equal(img.meas.pcr8, p8, 48);
	assert_memory_equal(img.meas.pcr0, m.pcr0, 48);
	/* [ {"signing_certificate": [bytes of the PEM file, one uint each], ...} ] */
	assert_memory_equal(img.signature_data, prefix, 3);
	assert_memory_equal(img.signature_data + 3, "signing_certificate", 19);
	cert = get_file(tpath("c384.pem"), &cert_len);
	assert_int_equal(img.signature_data[22], 0x99); /* array, 2-byte length */
	assert_int_equal(img.signature_data[23] << 8 | img.signature_data[24], cert_len);
	assert_int_equal(img.signature_data[25], 0x18); /* '-' = 45 >= 24 */
	assert_int_equal(img.signature_data[26], '-');
	free(cert);

	assert_int_equal(eif_signature_inspect(&img, &info, NULL), EIF_OK);
	assert_true(info.signature_valid);
	assert_true(info.pcr0_matches);
	assert_true(info.cert_time_valid);
	assert_string_equal(info.algorithm, "ecdsa-with-SHA384");
	assert_int_equal(info.num_issuer, 2);
	assert_string_equal(info.issuer[0].name, "commonName");
	assert_string_equal(info.issuer[0].value, "signer");
	assert_string_equal(info.issuer[1].name, "countryName");
	assert_non_null(strstr(info.not_after, "GMT"));
	assert_non_null(info.cert_signature);
	assert_int_equal(info.cert_signature[2], ':');
	eif_signature_info_release(&info);
	assert_int_equal(eif_signature_verify(&img, NULL), EIF_OK);
	eif_image_release(&img);
}

/* The COSE_Sign1 starts array(4), bstr(protected = {1: alg}); in the section every byte of it
 * is a CBOR uint (values >= 24 take the 0x18 prefix). */
static bool section_has_alg(const struct eif_image *img, const uint8_t *hdr, size_t n)
{
	uint8_t raw[8], pat[16];
	size_t m = 0;

	raw[0] = 0x84;
	raw[1] = (uint8_t)(0x40 | n);
	memcpy(raw + 2, hdr, n);
	for (size_t i = 0; i < n + 2; i++) {
		if (raw[i] >= 24)
			pat[m++] = 0x18;
		pat[m++] = raw[i];
	}
	return memmem(img->signature_data, img->signature_len, pat, m) != NULL;
}

static void test_eif_sign_file_appends_then_replaces(void **state)
{
	static const struct {
		int nid;
		uint8_t alg[4];
		size_t alg_len;
	} curves[] = {
		{ NID_X9_62_prime256v1, { 0xa1, 0x01, 0x26 }, 3 },
		{ NID_secp384r1, { 0xa1, 0x01, 0x38, 0x22 }, 4 },
		{ NID_secp521r1, { 0xa1, 0x01, 0x38, 0x23 }, 4 },
	};
	const char *rds[] = { NULL, NULL };
	struct eif_build_params p;
	struct eif_measurements m0, m1;
	struct eif_image img;
	uint8_t p8[48];

	(void)state;
	rds[0] = rd0_path;
	rds[1] = rd1_path;
	p = std_params(rds, 2);
	assert_int_equal(eif_build(&p, tpath("u.eif"), &m0, NULL), EIF_OK);
	for (size_t i = 0; i < 3; i++) {
		make_cert(curves[i].nid, -1, 30, "cc.pem", "kk.pem");
		assert_int_equal(
		        eif_sign_file(tpath("u.eif"), tpath("cc.pem"), tpath("kk.pem"), &m1, NULL),
		        EIF_OK);
		pcr8_of_cert_file(tpath("cc.pem"), p8);
		assert_memory_equal(m1.pcr0, m0.pcr0, 48);
		assert_memory_equal(m1.pcr8, p8, 48);
		assert_int_equal(eif_read_file(tpath("u.eif"), EIF_PARSE_MEASURE, &img, NULL),
		                 EIF_OK);
		assert_int_equal(img.num_sections, 6); /* appended once, then replaced */
		assert_int_equal(img.signature, 5);
		assert_true(img.crc_ok);
		assert_true(section_has_alg(&img, curves[i].alg, curves[i].alg_len));
		assert_int_equal(eif_signature_verify(&img, NULL), EIF_OK);
		eif_image_release(&img);
	}
}

static void test_eif_sign_replaces_a_signature_in_the_middle(void **state)
{
	struct sec s[] = { { 1, KERNEL, strlen(KERNEL) },
		           { 2, CMDLINE, strlen(CMDLINE) },
		           { 5, META, strlen(META) },
		           { 3, RD0, strlen(RD0) } };
	struct eif_measurements m;
	struct eif_image img;
	uint8_t *b, *f;
	size_t len, flen;

	(void)state;
	make_cert(NID_secp384r1, -1, 30, "cm.pem", "km.pem");
	/* a signature section that is not CBOR: refused before anything is written */
	{
		struct sec bad[] = { s[0], s[1], s[2], { 4, "x", 1 }, s[3] };

		b = mkeif(4, bad, 5, &len);
		put_file("mid.eif", b, len);
		assert_int_equal(eif_sign_file(tpath("mid.eif"), tpath("cm.pem"), tpath("km.pem"),
		                               NULL, NULL),
		                 EIF_ERR_SIGNATURE);
		f = get_file(tpath("mid.eif"), &flen);
		assert_int_equal(flen, len);
		assert_memory_equal(f, b, len);
		free(f);
		free(b);
	}
	/* sign an unsigned image, then place its signature section before the ramdisk */
	b = mkeif(4, s, 4, &len);
	put_file("mid.eif", b, len);
	free(b);
	assert_int_equal(
	        eif_sign_file(tpath("mid.eif"), tpath("cm.pem"), tpath("km.pem"), &m, NULL),
	        EIF_OK);
	assert_int_equal(eif_read_file(tpath("mid.eif"), EIF_PARSE_MEASURE, &img, NULL), EIF_OK);
	{
		struct sec w[] = {
			s[0], s[1], s[2], { 4, img.signature_data, img.signature_len }, s[3]
		};

		b = mkeif(4, w, 5, &len);
	}
	eif_image_release(&img);
	put_file("mid2.eif", b, len);
	free(b);
	assert_int_equal(eif_read_file(tpath("mid2.eif"), EIF_PARSE_MEASURE, &img, NULL), EIF_OK);
	assert_int_equal(eif_signature_verify(&img, NULL), EIF_OK);
	eif_image_release(&img);

	/* re-sign with a P-256 key (shorter section): replaced in place, ramdisk shifted down */
	make_cert(NID_X9_62_prime256v1, -1, 30, "cm2.pem", "km2.pem");
	assert_int_equal(
	        eif_sign_file(tpath("mid2.eif"), tpath("cm2.pem"), tpath("km2.pem"), &m, NULL),
	        EIF_OK);
	assert_int_equal(eif_read_file(tpath("mid2.eif"), EIF_PARSE_MEASURE, &img, NULL), EIF_OK);
	assert_int_equal(img.num_sections, 5);
	assert_int_equal(img.signature, 3);
	assert_int_equal(img.sections[4].type, EIF_SECTION_RAMDISK);
	assert_int_equal(img.sections[4].offset,
	                 img.sections[3].data_offset + img.sections[3].size);
	assert_int_equal(eif_signature_verify(&img, NULL), EIF_OK);
	assert_memory_equal(img.meas.pcr0, m.pcr0, 48);
	f = get_file(tpath("mid2.eif"), &flen);
	assert_memory_equal(f + img.sections[4].data_offset, RD0, strlen(RD0));
	free(f);
	eif_image_release(&img);
}

static void test_eif_signature_over_wrong_pcr0_is_rejected(void **state)
{
	const char *rds[] = { NULL };
	struct eif_build_params p;
	struct cl_diag d = { { 0 } };
	struct eif_image img;
	uint8_t *b;
	size_t len;

	(void)state;
	make_cert(NID_secp384r1, -1, 30, "cw.pem", "kw.pem");
	rds[0] = rd0_path;
	p = std_params(rds, 1);
	p.signing_cert_path = tpath("cw.pem");
	p.private_key_path = tpath("kw.pem");
	assert_int_equal(eif_build(&p, tpath("w.eif"), NULL, NULL), EIF_OK);
	b = get_file(tpath("w.eif"), &len);
	assert_int_equal(eif_parse_buffer(b, len, EIF_PARSE_MEASURE, &img, NULL), EIF_OK);
	/* change one ramdisk byte (PCR0 changes), keep the CRC right */
	b[img.sections[3].data_offset] ^= 0x20;
	eif_image_release(&img);
	fix_crc(b, len);
	assert_int_equal(eif_parse_buffer(b, len, EIF_PARSE_MEASURE, &img, NULL), EIF_OK);
	assert_int_equal(eif_signature_verify(&img, &d), EIF_ERR_PCR_MISMATCH);
	assert_non_null(strstr(d.msg, "different PCR0"));
	eif_image_release(&img);
	free(b);
}

static void test_eif_corrupted_cose_signature_is_rejected(void **state)
{
	struct eif_image img;
	uint8_t *b;
	size_t len;

	(void)state;
	b = get_file(tpath("s.eif"), &len);
	/* the last byte of the section is the last byte of s in r||s */
	b[len - 1] ^= 1;
	fix_crc(b, len);
	assert_int_equal(eif_parse_buffer(b, len, EIF_PARSE_MEASURE, &img, NULL), EIF_OK);
	assert_int_equal(eif_signature_verify(&img, NULL), EIF_ERR_BAD_SIGNATURE);
	eif_image_release(&img);
	free(b);
}

static void test_eif_expired_certificate_is_rejected(void **state)
{
	const char *rds[] = { NULL };
	struct eif_build_params p;
	struct eif_signature_info info;
	struct cl_diag d = { { 0 } };
	struct eif_image img;

	(void)state;
	make_cert(NID_secp384r1, -30, -1, "cx.pem", "kx.pem");
	rds[0] = rd0_path;
	p = std_params(rds, 1);
	p.signing_cert_path = tpath("cx.pem");
	p.private_key_path = tpath("kx.pem");
	assert_int_equal(eif_build(&p, tpath("x.eif"), NULL, NULL), EIF_OK);
	assert_int_equal(eif_read_file(tpath("x.eif"), EIF_PARSE_MEASURE, &img, NULL), EIF_OK);
	assert_int_equal(eif_signature_inspect(&img, &info, NULL), EIF_OK);
	assert_true(info.signature_valid);
	assert_true(info.pcr0_matches);
	assert_false(info.cert_time_valid);
	eif_signature_info_release(&info);
	assert_int_equal(eif_signature_verify(&img, &d), EIF_ERR_CERT);
	assert_non_null(strstr(d.msg, "not valid now"));
	eif_image_release(&img);
}

static void test_eif_signing_rejects_key_not_matching_cert(void **state)
{
	const char *rds[] = { NULL };
	struct eif_build_params p;
	struct cl_diag d = { { 0 } };

	(void)state;
	make_cert(NID_secp384r1, -1, 30, "ca.pem", "ka.pem");
	make_cert(NID_secp384r1, -1, 30, "cb.pem", "kb.pem");
	rds[0] = rd0_path;
	p = std_params(rds, 1);
	p.signing_cert_path = tpath("ca.pem");
	p.private_key_path = tpath("kb.pem");
	assert_int_equal(eif_build(&p, tpath("y.eif"), NULL, &d), EIF_ERR_KEY);
	assert_non_null(strstr(d.msg, "does not belong"));
	assert_int_equal(access(tpath("y.eif"), F_OK), -1);
}

static void test_eif_sign_refuses_v2_images(void **state)
{
	struct sec s[] = { { 1, KERNEL, 3 }, { 2, CMDLINE, 3 }, { 3, RD0, 3 } };
	size_t len;
	uint8_t *b = mkeif(2, s, 3, &len);

	(void)state;
	put_file("v2.eif", b, len);
	free(b);
	assert_int_equal(
	        eif_sign_file(tpath("v2.eif"), tpath("ca.pem"), tpath("ka.pem"), NULL, NULL),
	        EIF_ERR_INVALID_ARG);
}

static void test_eif_pcr_helpers_match_evp(void **state)
{
	struct sec s = { 0, RD1, strlen(RD1) };
	uint8_t want[48], got[48];

	(void)state;
	pcr_of(want, &s, 1);
	assert_int_equal(eif_pcr_of_bytes((const uint8_t *)RD1, strlen(RD1), got), EIF_OK);
	assert_memory_equal(got, want, 48);
	assert_int_equal(eif_pcr_of_file(tpath("rd1"), got, NULL), EIF_OK);
	assert_memory_equal(got, want, 48);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eif_reader_measures_like_nitro_cli),
		cmocka_unit_test(test_eif_pcr2_with_one_ramdisk_is_the_spec_constant),
		cmocka_unit_test(test_eif_reader_accepts_sections_in_any_order),
		cmocka_unit_test(test_eif_reader_accepts_v2_and_v3),
		cmocka_unit_test(test_eif_read_fd_matches_buffer_parse),
		cmocka_unit_test(test_eif_rejects_truncated_header),
		cmocka_unit_test(test_eif_rejects_section_past_eof),
		cmocka_unit_test(test_eif_rejects_bad_crc_unless_allowed),
		cmocka_unit_test(test_eif_rejects_bad_magic_and_version),
		cmocka_unit_test(test_eif_rejects_unknown_section_type),
		cmocka_unit_test(test_eif_rejects_sections_newer_than_the_version),
		cmocka_unit_test(test_eif_rejects_section_flags),
		cmocka_unit_test(test_eif_rejects_table_layout_disagreement),
		cmocka_unit_test(test_eif_rejects_trailing_bytes),
		cmocka_unit_test(test_eif_rejects_too_many_sections),
		cmocka_unit_test(test_eif_rejects_overflowing_sizes),
		cmocka_unit_test(test_eif_rejects_bad_structure),
		cmocka_unit_test(test_eif_rejects_oversized_signature_section),
		cmocka_unit_test(test_eif_rejects_malformed_signature_cbor),
		cmocka_unit_test(test_eif_writer_uses_nitro_cli_order_and_pcrs),
		cmocka_unit_test(test_eif_build_is_reproducible),
		cmocka_unit_test(test_eif_build_time_without_epoch_is_rfc3339_now),
		cmocka_unit_test(test_eif_custom_metadata_is_sorted_and_validated),
		cmocka_unit_test(test_eif_build_rejects_missing_inputs),
		cmocka_unit_test(test_eif_build_from_another_filesystem_is_identical),
		cmocka_unit_test(test_eif_small_pass_hashes_inline_and_measures_alike),
		cmocka_unit_test(test_eif_multi_chunk_ramdisks_measure_correctly),
		cmocka_unit_test(test_eif_signed_build_has_pcr8_and_verifies),
		cmocka_unit_test(test_eif_sign_file_appends_then_replaces),
		cmocka_unit_test(test_eif_sign_replaces_a_signature_in_the_middle),
		cmocka_unit_test(test_eif_signature_over_wrong_pcr0_is_rejected),
		cmocka_unit_test(test_eif_corrupted_cose_signature_is_rejected),
		cmocka_unit_test(test_eif_expired_certificate_is_rejected),
		cmocka_unit_test(test_eif_signing_rejects_key_not_matching_cert),
		cmocka_unit_test(test_eif_sign_refuses_v2_images),
		cmocka_unit_test(test_eif_pcr_helpers_match_evp),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
