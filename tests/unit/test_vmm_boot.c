/* SPDX-License-Identifier: Apache-2.0 */
/* bzImage header parsing and the boot layout, on a synthetic bzImage in fake guest memory.
 * Offsets are those of Documentation/arch/x86/boot.rst, written out here independently. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/arch/x86_64/boot.h"

#define MiB (1024ULL * 1024)
#define RAM (64 * MiB)
#define IMG 0x800000ULL

static uint8_t *ram;
static struct gpa_space space;

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

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

/* A 64-bit-capable bzImage: 1 setup sector after the boot sector, then @pm bytes of code
 * filled with 0xcc except a marker at the start. */
static size_t make_bzimage(uint8_t *k, size_t pm)
{
	size_t len = 1024 + pm;

	memset(k, 0, len);
	k[0x1f1] = 1;
	wr16(k + 0x1fe, 0xaa55);
	k[0x200] = 0xeb;
	k[0x201] = 0x66; /* header ends at 0x268 */
	memcpy(k + 0x202, "HdrS", 4);
	wr16(k + 0x206, 0x020f);
	wr32(k + 0x22c, 0x7fffffff);
	wr32(k + 0x230, 0x200000);
	wr16(k + 0x236, 0x1); /* XLF_KERNEL_64 */
	wr32(k + 0x238, 2047);
	wr32(k + 0x260, 0x100000);
	memset(k + 1024, 0xcc, pm);
	memcpy(k + 1024, "KERNEL", 6);
	return len;
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

static void test_bzimage_parse_reads_setup_header(void **state)
{
	uint8_t k[4096];
	struct bzimage_info bi;
	size_t len = make_bzimage(k, 2048);

	(void)state;
	assert_int_equal(bzimage_parse(k, len, &bi, NULL), BOOT_OK);
	assert_int_equal(bi.version, 0x020f);
	assert_int_equal(bi.setup_sects, 1);
	assert_int_equal(bi.pm_offset, 1024);
	assert_int_equal(bi.pm_size, 2048);
	assert_int_equal(bi.hdr_end, 0x268);
	assert_int_equal(bi.initrd_addr_max, 0x7fffffff);
	assert_int_equal(bi.cmdline_size, 2047);
}

static void test_bzimage_rejects_non_bzimages(void **state)
{
	uint8_t k[4096];
	struct bzimage_info bi;
	struct cl_diag d;
	size_t len = make_bzimage(k, 2048);

	(void)state;
	assert_int_equal(bzimage_parse(k, 0x200, &bi, &d), BOOT_ERR_NOT_BZIMAGE);
	k[0x202] = 'X';
	assert_int_equal(bzimage_parse(k, len, &bi, &d), BOOT_ERR_NOT_BZIMAGE);
	assert_non_null(strstr(d.msg, "HdrS"));
	make_bzimage(k, 2048);
	wr16(k + 0x1fe, 0);
	assert_int_equal(bzimage_parse(k, len, &bi, &d), BOOT_ERR_NOT_BZIMAGE);
}

static void test_bzimage_rejects_kernel_without_64bit_entry(void **state)
{
	uint8_t k[4096];
	struct bzimage_info bi;
	size_t len = make_bzimage(k, 2048);

	(void)state;
	wr16(k + 0x236, 0);
	assert_int_equal(bzimage_parse(k, len, &bi, NULL), BOOT_ERR_OLD_PROTOCOL);
	make_bzimage(k, 2048);
	wr16(k + 0x206, 0x020b);
	assert_int_equal(bzimage_parse(k, len, &bi, NULL), BOOT_ERR_OLD_PROTOCOL);
}

static void test_bzimage_rejects_setup_past_end(void **state)
{
	uint8_t k[4096];
	struct bzimage_info bi;
	size_t len = make_bzimage(k, 2048);

	(void)state;
	k[0x1f1] = 200; /* 100 KiB of setup in a 3 KiB file */
	assert_int_equal(bzimage_parse(k, len, &bi, NULL), BOOT_ERR_NOT_BZIMAGE);
}

/* Put an "EIF" at 8 MiB: kernel, cmdline, two ramdisks. */
static void make_image(struct boot_image *img, const char *cmdline)
{
	uint64_t at = IMG;
	size_t klen = make_bzimage(ram + at, 8192);

	memset(img, 0, sizeof(*img));
	img->kernel = (struct boot_src){ at, klen };
	at += klen;
	memcpy(ram + at, cmdline, strlen(cmdline));
	img->cmdline = (struct boot_src){ at, strlen(cmdline) };
	at += strlen(cmdline);
	memset(ram + at, 'A', 5000);
	img->ramdisk[0] = (struct boot_src){ at, 5000 };
	at += 5000;
	memset(ram + at, 'B', 3000);
	img->ramdisk[1] = (struct boot_src){ at, 3000 };
	at += 3000;
	img->nramdisks = 2;
	img->image = (struct boot_src){ IMG, at - IMG };
}

static void test_boot_setup_lays_out_kernel_cmdline_initrd_and_zero_page(void **state)
{
	struct boot_image img;
	struct boot_layout bl;
	struct cl_diag d;
	const uint8_t *zp;

	(void)state;
	make_image(&img, "console=ttyS0 quiet");
	assert_int_equal(boot_setup(&space, RAM, 0, &img, 0xe0000, &bl, &d), BOOT_OK);
	assert_int_equal(bl.entry, 0x100000 + 0x200);
	assert_int_equal(bl.zero_page, 0x7000);
	/* protected-mode code moved to 1 MiB */
	assert_memory_equal(ram + 0x100000, "KERNEL", 6);
	/* ramdisks concatenated, page aligned, ending at or below the top of RAM */
	assert_int_equal(bl.initrd_size, 8000);
	assert_int_equal(bl.initrd_addr % 4096, 0);
	assert_true(bl.initrd_addr + 8000 <= RAM);
	assert_int_equal(ram[bl.initrd_addr], 'A');
	assert_int_equal(ram[bl.initrd_addr + 4999], 'A');
	assert_int_equal(ram[bl.initrd_addr + 5000], 'B');
	assert_int_equal(ram[bl.initrd_addr + 7999], 'B');

	zp = ram + 0x7000;
	assert_int_equal(zp[0x210], 0xff); /* type_of_loader */
	assert_true(zp[0x211] & 0x01); /* LOADED_HIGH */
	assert_memory_equal(zp + 0x202, "HdrS", 4); /* setup header copied */
	assert_int_equal(rd32(zp + 0x218), bl.initrd_addr);
	assert_int_equal(rd32(zp + 0x21c), 8000);
	assert_int_equal(rd32(zp + 0x070), 0xe0000); /* acpi_rsdp_addr */
	assert_string_equal((const char *)ram + rd32(zp + 0x228), "console=ttyS0 quiet");
	/* e820: low RAM, EBDA, ACPI area, RAM from 1 MiB to the end */
	assert_int_equal(zp[0x1e8], 4);
	assert_int_equal(rd32(zp + 0x2d0 + 3 * 20), 0x100000);
	assert_int_equal(rd32(zp + 0x2d0 + 3 * 20 + 8), RAM - 0x100000);
	assert_int_equal(rd32(zp + 0x2d0 + 3 * 20 + 16), 1);
	/* page tables: PML4[0] -> PDPT, first PD entry maps 0 as a 2 MiB page */
	assert_int_equal(rd32(ram + bl.pml4) & ~0xfffu, 0xa000);
	assert_int_equal(rd32(ram + 0xb000), 0x83);
}

static void test_boot_setup_maps_ram_above_4g_in_e820(void **state)
{
	struct boot_image img;
	struct boot_layout bl;
	const uint8_t *e;

	(void)state;
	make_image(&img, "x");
	/* 64 MiB below 4 GiB here, plus 1 GiB at 4 GiB (as for an enclave over 3 GiB) */
	assert_int_equal(boot_setup(&space, RAM, 1ULL << 30, &img, 0, &bl, NULL), BOOT_OK);
	assert_int_equal(ram[0x7000 + 0x1e8], 5);
	e = ram + 0x7000 + 0x2d0 + 4 * 20;
	assert_int_equal(rd32(e), 0);
	assert_int_equal(rd32(e + 4), 1); /* 0x1_0000_0000 */
	assert_int_equal(rd32(e + 8), 1u << 30);
	assert_int_equal(rd32(e + 16), 1);
	/* the initrd stays below 4 GiB */
	assert_true(bl.initrd_addr + bl.initrd_size <= RAM);
}

static void test_boot_setup_rejects_overlong_cmdline(void **state)
{
	struct boot_image img;
	struct boot_layout bl;
	static char big[3000];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	make_image(&img, big);
	assert_int_equal(boot_setup(&space, RAM, 0, &img, 0, &bl, NULL), BOOT_ERR_CMDLINE);
}

static void test_boot_setup_rejects_sources_outside_ram(void **state)
{
	struct boot_image img;
	struct boot_layout bl;

	(void)state;
	make_image(&img, "x");
	img.ramdisk[1].len = UINT64_MAX - 10;
	assert_int_equal(boot_setup(&space, RAM, 0, &img, 0, &bl, NULL), BOOT_ERR_TOO_BIG);
	make_image(&img, "x");
	img.ramdisk[1].gpa = RAM - 100;
	assert_int_equal(boot_setup(&space, RAM, 0, &img, 0, &bl, NULL), BOOT_ERR_BAD_SOURCE);
	make_image(&img, "x");
	img.kernel.gpa = RAM;
	assert_int_equal(boot_setup(&space, RAM, 0, &img, 0, &bl, NULL), BOOT_ERR_BAD_SOURCE);
}

static void test_boot_setup_refuses_initrd_that_would_overwrite_the_image(void **state)
{
	struct boot_image img;
	struct boot_layout bl;
	struct cl_diag d;

	(void)state;
	make_image(&img, "x");
	/* pretend the image reaches the top of RAM */
	img.image.len = RAM - IMG;
	assert_int_equal(boot_setup(&space, RAM, 0, &img, 0, &bl, &d), BOOT_ERR_TOO_BIG);
	assert_non_null(strstr(d.msg, "more memory"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bzimage_parse_reads_setup_header),
		cmocka_unit_test(test_bzimage_rejects_non_bzimages),
		cmocka_unit_test(test_bzimage_rejects_kernel_without_64bit_entry),
		cmocka_unit_test(test_bzimage_rejects_setup_past_end),
		cmocka_unit_test_setup_teardown(
		        test_boot_setup_lays_out_kernel_cmdline_initrd_and_zero_page, setup,
		        teardown),
		cmocka_unit_test_setup_teardown(test_boot_setup_maps_ram_above_4g_in_e820, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_boot_setup_rejects_overlong_cmdline, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_boot_setup_rejects_sources_outside_ram, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(
		        test_boot_setup_refuses_initrd_that_would_overwrite_the_image, setup,
		        teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
