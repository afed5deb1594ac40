/* SPDX-License-Identifier: Apache-2.0 */
/* Booting a bzImage unpacked (vmlinux.h): finding and unpacking the zstd payload, placing an
 * ELF kernel's segments, applying the decompressor's three relocation tables, and refusing
 * every way the (untrusted) image can point outside itself or guest RAM. The kernels here are
 * made by the test, byte by byte, with known values at known places. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <zstd.h>

#include "vmm/arch/x86_64/boot.h"
#include "vmm/arch/x86_64/vmlinux.h"
#include "vmm/kcache.h"

#define MiB (1024ULL * 1024)
#define RAM (32 * MiB)
#define BASE 0x1000000ULL /* the kernel's link address (16 MiB) */
#define KMAP 0xffffffff80000000ULL /* __START_KERNEL_map */

static uint8_t *ram;
static struct gpa_space space;

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void wr32(uint8_t *p, uint32_t v)
{
	wr16(p, (uint16_t)v);
	wr16(p + 2, (uint16_t)(v >> 16));
}

static void wr64(uint8_t *p, uint64_t v)
{
	wr32(p, (uint32_t)v);
	wr32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/*
 * A vmlinux as the bzImage build makes it: ELF header, two program headers (text at 16 MiB,
 * 0x3000 bytes in the file; data at 16 MiB + 0x4000, 0x1000 in the file and 0x2000 in memory),
 * then the relocation tables: 0, one 64-bit entry, 0, one inverse 32-bit entry, 0, two 32-bit
 * entries (read from the end). Values to relocate sit at text + 0x100 (32-bit), + 0x200
 * (inverse 32-bit), + 0x300 (64-bit); data + 0x10 holds a marker. Returns the length.
 */
#define TEXT_OFF 0x1000u
#define DATA_OFF 0x4000u
#define ELF_LEN (DATA_OFF + 0x1000u)

static size_t make_vmlinux(uint8_t *v)
{
	uint8_t *ph;
	size_t n = ELF_LEN;

	memset(v, 0, ELF_LEN + 64);
	memcpy(v, "\177ELF", 4);
	v[4] = 2;
	v[5] = 1;
	wr16(v + 18, 62);
	wr64(v + 24, BASE + 0x40); /* e_entry */
	wr64(v + 32, 64); /* e_phoff */
	wr16(v + 54, 56);
	wr16(v + 56, 2);
	ph = v + 64;
	wr32(ph, 1);
	wr64(ph + 8, TEXT_OFF);
	wr64(ph + 16, KMAP + BASE);
	wr64(ph + 24, BASE);
	wr64(ph + 32, 0x3000);
	wr64(ph + 40, 0x3000);
	ph += 56;
	wr32(ph, 1);
	wr64(ph + 8, DATA_OFF);
	wr64(ph + 16, KMAP + BASE + 0x4000);
	wr64(ph + 24, BASE + 0x4000);
	wr64(ph + 32, 0x1000);
	wr64(ph + 40, 0x2000);
	memcpy(v + TEXT_OFF, "TEXT", 4);
	wr32(v + TEXT_OFF + 0x100, 0x81000000u);
	wr32(v + TEXT_OFF + 0x104, 0x81000010u);
	wr32(v + TEXT_OFF + 0x200, 0x00400000u);
	wr64(v + TEXT_OFF + 0x300, KMAP + BASE + 0x123);
	memcpy(v + DATA_OFF + 0x10, "DATA", 4);
	/* Relocation tables, lowest address first. */
	wr32(v + n, 0);
	wr32(v + n + 4, (uint32_t)(KMAP + BASE + 0x300));
	wr32(v + n + 8, 0);
	wr32(v + n + 12, (uint32_t)(KMAP + BASE + 0x200));
	wr32(v + n + 16, 0);
	wr32(v + n + 20, (uint32_t)(KMAP + BASE + 0x104));
	wr32(v + n + 24, (uint32_t)(KMAP + BASE + 0x100));
	return n + 28;
}

static int setup(void **state)
{
	(void)state;
	ram = calloc(1, RAM);
	assert_non_null(ram);
	memset(&space, 0, sizeof(space));
	assert_true(gpa_add_region(&space, 0, RAM, ram));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(ram);
	return 0;
}

static enum boot_err load(const uint8_t *v, size_t len, uint64_t offset, struct vmlinux_layout *vl)
{
	struct cl_diag d = { "" };

	return vmlinux_load(&space, v, len, BASE, BASE + 1 * MiB, offset, vl, &d);
}

static void test_vmlinux_places_segments_without_relocating(void **state)
{
	static uint8_t v[ELF_LEN + 64];
	struct vmlinux_layout vl;
	size_t len = make_vmlinux(v);

	(void)state;
	memset(ram + BASE + 0x5000, 0xee, 0x1000); /* bss must come out zero */
	assert_int_equal(load(v, len, 0, &vl), BOOT_OK);
	assert_int_equal(vl.entry, BASE + 0x40);
	assert_int_equal(vl.start, BASE);
	assert_int_equal(vl.end, BASE + 0x6000);
	assert_int_equal(vl.relocations, 0);
	assert_memory_equal(ram + BASE, "TEXT", 4);
	assert_memory_equal(ram + BASE + 0x4010, "DATA", 4);
	for (unsigned i = 0; i < 0x1000; i++)
		assert_int_equal(ram[BASE + 0x5000 + i], 0);
	assert_int_equal(rd32(ram + BASE + 0x100), 0x81000000u); /* untouched */
}

static void test_vmlinux_applies_all_three_relocation_tables(void **state)
{
	static uint8_t v[ELF_LEN + 64];
	const uint64_t off = 6 * MiB;
	struct vmlinux_layout vl;
	size_t len = make_vmlinux(v);

	(void)state;
	assert_int_equal(load(v, len, off, &vl), BOOT_OK);
	assert_int_equal(vl.relocations, 4);
	assert_int_equal(rd32(ram + BASE + 0x100), 0x81000000u + 6 * MiB);
	assert_int_equal(rd32(ram + BASE + 0x104), 0x81000010u + 6 * MiB);
	assert_int_equal(rd32(ram + BASE + 0x200), (uint32_t)(0x00400000u - 6 * MiB));
	assert_int_equal(rd64(ram + BASE + 0x300), KMAP + BASE + 0x123 + off);
}

static void test_vmlinux_refuses_what_points_outside(void **state)
{
	static uint8_t v[ELF_LEN + 64];
	struct vmlinux_layout vl;
	size_t len;

	(void)state;
	/* Not an ELF. */
	len = make_vmlinux(v);
	v[1] = 'X';
	assert_int_equal(load(v, len, 0, &vl), BOOT_ERR_NOT_BZIMAGE);
	/* Program headers past the end. */
	len = make_vmlinux(v);
	wr64(v + 32, len - 8);
	assert_int_equal(load(v, len, 0, &vl), BOOT_ERR_NOT_BZIMAGE);
	/* A segment below the allowed range, and one whose memory runs past it. */
	len = make_vmlinux(v);
	wr64(v + 64 + 24, BASE - 0x1000);
	assert_int_equal(load(v, len, 0, &vl), BOOT_ERR_TOO_BIG);
	len = make_vmlinux(v);
	wr64(v + 64 + 56 + 40, 2 * MiB);
	assert_int_equal(load(v, len, 0, &vl), BOOT_ERR_TOO_BIG);
	/* File bytes past the end of the image; filesz above memsz. */
	len = make_vmlinux(v);
	wr64(v + 64 + 56 + 32, 0x100000);
	assert_int_equal(load(v, len, 0, &vl), BOOT_ERR_TOO_BIG);
	/* The entry outside every segment. */
	len = make_vmlinux(v);
	wr64(v + 24, BASE + 0x100000);
	assert_int_equal(load(v, len, 0, &vl), BOOT_ERR_NOT_BZIMAGE);
	/* A relocation target outside the kernel. */
	len = make_vmlinux(v);
	wr32(v + len - 4, (uint32_t)(KMAP + BASE + 0x7000));
	assert_int_equal(load(v, len, 2 * MiB, &vl), BOOT_ERR_NOT_BZIMAGE);
	/* A table with no terminator before the kernel's own bytes. */
	len = make_vmlinux(v);
	wr32(v + ELF_LEN, 0x81000100u);
	wr32(v + ELF_LEN + 8, 0x81000100u);
	wr32(v + ELF_LEN + 16, 0x81000100u);
	assert_int_equal(load(v, len, 2 * MiB, &vl), BOOT_ERR_NOT_BZIMAGE);
	/* Without an offset the tables are not read at all. */
	assert_int_equal(load(v, len, 0, &vl), BOOT_OK);
}

/* A bzImage whose payload is @payload (@plen bytes) followed by the le32 unpacked size. */
static size_t make_bzimage(uint8_t *k, const void *payload, size_t plen, uint32_t unpacked)
{
	memset(k, 0, 1024);
	k[0x1f1] = 1;
	wr16(k + 0x1fe, 0xaa55);
	k[0x201] = 0x66;
	memcpy(k + 0x202, "HdrS", 4);
	wr16(k + 0x206, 0x020f);
	wr16(k + 0x236, 0x1);
	wr32(k + 0x248, 0x400); /* payload_offset, from the protected-mode code at 1024 */
	wr32(k + 0x24c, (uint32_t)plen + 4);
	wr32(k + 0x260, 1 * MiB);
	memset(k + 1024, 0x90, 0x400); /* the decompressor's code */
	memcpy(k + 1024 + 0x400, payload, plen);
	wr32(k + 1024 + 0x400 + plen, unpacked);
	return 1024 + 0x400 + plen + 4;
}

static void test_bzimage_payload_unpacks_to_the_vmlinux(void **state)
{
	static uint8_t v[ELF_LEN + 64], z[ELF_LEN + 1024], k[ELF_LEN + 4096], out[ELF_LEN + 64];
	static const char gz[] = "\x1f\x8b\x08\x00 not really gzip";
	struct bzimage_payload p;
	struct bzimage_info bi;
	struct cl_diag d = { "" };
	size_t vlen = make_vmlinux(v), zlen, klen;

	(void)state;
	zlen = ZSTD_compress(z, sizeof(z), v, vlen, 3);
	assert_false(ZSTD_isError(zlen));
	klen = make_bzimage(k, z, zlen, (uint32_t)vlen);
	assert_int_equal(bzimage_parse(k, klen, &bi, &d), BOOT_OK);
	assert_int_equal(bzimage_find_payload(k, klen, &bi, &p, &d), BOOT_OK);
	assert_true(p.zstd);
	assert_int_equal(p.unpacked_len, vlen);
	assert_int_equal(bzimage_unpack(&p, out, &d), BOOT_OK);
	assert_memory_equal(out, v, vlen);

	/* A trailer that lies about the size is caught by the decoder. */
	klen = make_bzimage(k, z, zlen, (uint32_t)vlen - 1);
	assert_int_equal(bzimage_find_payload(k, klen, &bi, &p, &d), BOOT_OK);
	assert_int_equal(bzimage_unpack(&p, out, &d), BOOT_ERR_NOT_BZIMAGE);
	/* Not zstd (gzip magic): found, but not unpacked here. */
	klen = make_bzimage(k, gz, sizeof(gz) - 1, (uint32_t)vlen);
	assert_int_equal(bzimage_find_payload(k, klen, &bi, &p, &d), BOOT_OK);
	assert_false(p.zstd);
	assert_int_equal(bzimage_unpack(&p, out, &d), BOOT_ERR_NOT_BZIMAGE);
	/* A payload pointing past the file; an absurd unpacked size. */
	klen = make_bzimage(k, z, zlen, (uint32_t)vlen);
	wr32(k + 0x24c, (uint32_t)klen);
	assert_int_equal(bzimage_find_payload(k, klen, &bi, &p, &d), BOOT_ERR_NOT_BZIMAGE);
	klen = make_bzimage(k, z, zlen, 0xffffffffu);
	assert_int_equal(bzimage_find_payload(k, klen, &bi, &p, &d), BOOT_ERR_NOT_BZIMAGE);
}

/* A zstd bzImage in @k (ELF_LEN + 4096 bytes) carrying make_vmlinux()'s kernel, parsed into
 * @bi; returns its length. The vmlinux goes to @v (ELF_LEN + 64 bytes), its length to @vlen. */
static size_t make_zstd_kernel(uint8_t *k, uint8_t *v, size_t *vlen, struct bzimage_info *bi)
{
	static uint8_t z[ELF_LEN + 1024];
	struct cl_diag d = { "" };
	size_t zlen, klen;

	*vlen = make_vmlinux(v);
	zlen = ZSTD_compress(z, sizeof(z), v, *vlen, 3);
	assert_false(ZSTD_isError(zlen));
	klen = make_bzimage(k, z, zlen, (uint32_t)*vlen);
	assert_int_equal(bzimage_parse(k, klen, bi, &d), BOOT_OK);
	return klen;
}

/* kcache_get() of @k must succeed; whether it came from the cache. */
static bool from_cache(const char *dir, const uint8_t *k, size_t klen,
                       const struct bzimage_info *bi)
{
	struct unpacked_kernel uk;
	char why[256];
	bool hit;

	assert_true(kcache_get(dir, k, klen, bi, &uk, why, sizeof(why)));
	hit = uk.from_cache;
	kcache_release(&uk);
	return hit;
}

static void test_kcache_unpacks_once_then_maps_the_stored_kernel(void **state)
{
	static uint8_t v[ELF_LEN + 64], k[ELF_LEN + 4096];
	struct unpacked_kernel uk;
	struct bzimage_info bi;
	char dir[] = "/tmp/cloister-kcache-XXXXXX", sub[64], why[256], cmd[128];
	size_t vlen, klen;
	struct stat st;

	(void)state;
	klen = make_zstd_kernel(k, v, &vlen, &bi);
	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/a/kernels", dir); /* created, with its parent */

	assert_true(kcache_get(sub, k, klen, &bi, &uk, why, sizeof(why)));
	assert_false(uk.from_cache);
	assert_int_equal(uk.len, vlen);
	assert_memory_equal(uk.data, v, vlen);
	kcache_release(&uk);
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);

	assert_true(kcache_get(sub, k, klen, &bi, &uk, why, sizeof(why)));
	assert_true(uk.from_cache);
	assert_memory_equal(uk.data, v, vlen);
	kcache_release(&uk);

	/* A different kernel is a different entry. */
	k[1024] ^= 1;
	assert_false(from_cache(sub, k, klen, &bi));

	/* A directory others may write is not trusted: no unpacked boot at all. */
	assert_int_equal(chmod(sub, 0777), 0);
	assert_false(kcache_get(sub, k, klen, &bi, &uk, why, sizeof(why)));
	assert_non_null(strstr(why, "writable only by it"));
	assert_null(uk.data);
	/* Off: nothing. */
	assert_false(kcache_get(NULL, k, klen, &bi, &uk, why, sizeof(why)));

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/*
 * An entry is used only for the very bytes it was made from. Two kernels of the same length
 * whose first and last 4 KiB agree share an entry's name (the cheap fingerprint); a byte in
 * the middle of the payload tells them apart, and each launch gets its own kernel.
 */
static void test_kcache_tells_kernels_apart_by_every_byte(void **state)
{
	enum { N = 64 * 1024 };
	static uint8_t v[N], z[N + 1024], k[N + 4096];
	struct unpacked_kernel uk;
	struct bzimage_info bi;
	struct cl_diag d = { "" };
	char dir[] = "/tmp/cloister-kcache-XXXXXX", why[256], cmd[128];
	size_t zlen, klen, mid;
	uint32_t x = 1;
	ZSTD_CCtx *c = ZSTD_createCCtx();

	(void)state;
	for (size_t i = 0; i < N; i++) { /* incompressible: stored as a raw block */
		x = x * 1103515245u + 12345u;
		v[i] = (uint8_t)(x >> 16);
	}
	assert_non_null(c);
	assert_int_equal(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0), 0);
	zlen = ZSTD_compress2(c, z, sizeof(z), v, N);
	ZSTD_freeCCtx(c);
	assert_false(ZSTD_isError(zlen));
	klen = make_bzimage(k, z, zlen, N);
	assert_true(klen > 4 * 4096);
	assert_int_equal(bzimage_parse(k, klen, &bi, &d), BOOT_OK);
	assert_non_null(mkdtemp(dir));

	assert_true(kcache_get(dir, k, klen, &bi, &uk, why, sizeof(why)));
	assert_false(uk.from_cache);
	kcache_release(&uk);

	mid = klen / 2; /* inside the raw block: the other kernel unpacks to other bytes */
	k[mid] ^= 0x5a;
	assert_true(kcache_get(dir, k, klen, &bi, &uk, why, sizeof(why)));
	assert_false(uk.from_cache);
	assert_int_equal(uk.len, N);
	assert_memory_not_equal(uk.data, v, N);
	kcache_release(&uk);
	assert_true(kcache_get(dir, k, klen, &bi, &uk, why, sizeof(why)));
	assert_true(uk.from_cache);
	assert_memory_not_equal(uk.data, v, N);
	kcache_release(&uk);

	k[mid] ^= 0x5a; /* the first kernel again: its entry was replaced, so unpacked anew */
	assert_true(kcache_get(dir, k, klen, &bi, &uk, why, sizeof(why)));
	assert_false(uk.from_cache);
	assert_memory_equal(uk.data, v, N);
	kcache_release(&uk);

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static unsigned count_suffix(const char *dir, const char *suffix)
{
	unsigned n = 0;
	size_t sl = strlen(suffix);
	struct dirent *e;
	DIR *d = opendir(dir);

	assert_non_null(d);
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);

		n += len > sl && !strcmp(e->d_name + len - sl, suffix);
	}
	closedir(d);
	return n;
}

/* The cache keeps the 8 most recently used kernels (a hit counts as a use) and drops what the
 * older format left behind. */
static void test_kcache_keeps_the_recently_used_entries(void **state)
{
	static uint8_t v[ELF_LEN + 64], k[ELF_LEN + 4096];
	struct bzimage_info bi;
	char dir[] = "/tmp/cloister-kcache-XXXXXX", path[128], cmd[128];
	size_t vlen, klen;
	FILE *f;

	(void)state;
	klen = make_zstd_kernel(k, v, &vlen, &bi);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/0123abcd.vmlinux", dir);
	assert_non_null(f = fopen(path, "w"));
	fclose(f);

	for (unsigned i = 0; i < 10; i++) {
		k[1024 + 16] = (uint8_t)i; /* in the decompressor's bytes: another kernel */
		assert_false(from_cache(dir, k, klen, &bi));
		if (i == 5) { /* kernel 0 is used again: it stays */
			k[1024 + 16] = 0;
			assert_true(from_cache(dir, k, klen, &bi));
		}
	}
	assert_int_equal(count_suffix(dir, ".kc"), 8);
	assert_int_equal(count_suffix(dir, ".vmlinux"), 0);
	k[1024 + 16] = 0;
	assert_true(from_cache(dir, k, klen, &bi));
	k[1024 + 16] = 1; /* the least recently used: gone */
	assert_false(from_cache(dir, k, klen, &bi));
	k[1024 + 16] = 9; /* the newest: there */
	assert_true(from_cache(dir, k, klen, &bi));

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_kaslr_offset_stays_in_the_kernel_area(void **state)
{
	const uint64_t size = 58 * MiB;
	uint64_t max = 0;

	(void)state;
	for (uint64_t r = 0; r < 2000; r++) {
		uint64_t off = vmlinux_kaslr_offset(r * 0x9e3779b97f4a7c15ULL, size);

		assert_int_equal(off % (2 * MiB), 0);
		assert_true(16 * MiB + off + size <= 1024 * MiB);
		if (off > max)
			max = off;
	}
	assert_true(max > 512 * MiB); /* spread over the area, not stuck low */
	assert_int_equal(vmlinux_kaslr_offset(12345, 2048 * MiB), 0); /* no room: none */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_vmlinux_places_segments_without_relocating,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_vmlinux_applies_all_three_relocation_tables,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_vmlinux_refuses_what_points_outside, setup,
		                                teardown),
		cmocka_unit_test(test_bzimage_payload_unpacks_to_the_vmlinux),
		cmocka_unit_test(test_kcache_unpacks_once_then_maps_the_stored_kernel),
		cmocka_unit_test(test_kcache_tells_kernels_apart_by_every_byte),
		cmocka_unit_test(test_kcache_keeps_the_recently_used_entries),
		cmocka_unit_test(test_kaslr_offset_stays_in_the_kernel_area),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
