/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The NSM module as the monitor loads it (src/vmm/devices/nsm_backend.h): nsm_backend_load()
 * finds cloister-nsm.so in this build tree and dlopens it; its open() measures the image it is
 * given exactly as the EIF reader does, refuses what is not an EIF, mints a leaf from a CA it
 * creates on first use, and the state answers requests with the image's PCR0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cloister/eif.h"
#include "lib/util/file.h"
#include "vmm/devices/nsm_backend.h"

static char dir[] = "/tmp/cloister-nsm-backend-XXXXXX";
static char ca_dir[sizeof(dir) + 8];

static char *path_in(const char *name)
{
	static char buf[4][256];
	static unsigned next;
	char *p = buf[next++ % 4];

	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

/* A small unsigned EIF (fake kernel: only the boot needs a real one), in memory. */
static uint8_t *make_eif(size_t *len, struct eif_measurements *meas)
{
	const char *rd[] = { path_in("rd0") };
	struct eif_build_params p = { 0 };
	struct cl_diag d = { "" };
	uint8_t *buf = NULL;

	assert_int_equal(cl_file_write_atomic(path_in("kernel"), "not a kernel", 12, 0644, &d), 0);
	assert_int_equal(cl_file_write_atomic(rd[0], "ramdisk bytes", 13, 0644, &d), 0);
	p.kernel_path = path_in("kernel");
	p.cmdline = "console=ttyS0";
	p.ramdisk_paths = rd;
	p.num_ramdisks = 1;
	p.build_time = "2024-05-01T10:00:00+00:00";
	assert_int_equal(eif_build(&p, path_in("a.eif"), meas, &d), EIF_OK);
	assert_int_equal(cl_file_read_all(path_in("a.eif"), 1 << 20, &buf, len, &d), 0);
	return buf;
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(ca_dir, sizeof(ca_dir), "%s/ca", dir); /* created on first use */
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_nsm_backend_loads_the_module_of_this_build(void **state)
{
	struct cl_diag d = { "" };
	const struct nsm_backend *b = nsm_backend_load(&d);

	(void)state;
	assert_non_null(b);
	assert_int_equal(b->abi, NSM_BACKEND_ABI);
	assert_ptr_equal(nsm_backend_load(&d), b); /* loaded once */
}

static void test_nsm_backend_measures_what_it_is_given(void **state)
{
	const uint8_t describe_pcr0[] = { 0xa1, 0x6b, 'D',  'e',  's', 'c', 'r', 'i', 'b', 'e', 'P',
		                          'C',  'R',  0xa1, 0x65, 'i', 'n', 'd', 'e', 'x', 0x00 };
	struct nsm_backend_config cfg = { .ca_dir = ca_dir, .module_id = "i-0-enc01" };
	const struct nsm_backend *b = nsm_backend_load(NULL);
	struct eif_measurements built;
	struct eif_image got;
	struct cl_diag d = { "" };
	uint8_t resp[0x3000];
	size_t len, n = 0;
	uint8_t *eif = make_eif(&len, &built);
	void *st = NULL;

	(void)state;
	assert_non_null(b);
	if (b->open(&cfg, eif, len, &st, &got, &d) != NSM_BACKEND_OK)
		fail_msg("open: %s", d.msg);
	assert_non_null(st);
	assert_true(got.measured);
	assert_memory_equal(got.meas.pcr0, built.pcr0, EIF_PCR_SIZE);
	assert_memory_equal(got.meas.pcr1, built.pcr1, EIF_PCR_SIZE);
	assert_memory_equal(got.meas.pcr2, built.pcr2, EIF_PCR_SIZE);
	assert_false(got.meas.has_pcr8);
	/* the state serves the same PCR0 to the guest: {"DescribePCR": {"lock": true, "data": …}} */
	assert_int_equal(
	        b->handle(st, describe_pcr0, sizeof(describe_pcr0), resp, sizeof(resp), &n), 0);
	assert_non_null(memmem(resp, n, built.pcr0, EIF_PCR_SIZE));
	b->close(st);
	eif_image_release(&got);
	free(eif);
}

static void test_nsm_backend_refuses_what_is_not_an_eif(void **state)
{
	struct nsm_backend_config cfg = { .ca_dir = ca_dir, .module_id = "i-0-enc02" };
	const struct nsm_backend *b = nsm_backend_load(NULL);
	struct eif_measurements built;
	struct eif_image got;
	struct cl_diag d = { "" };
	size_t len;
	uint8_t *eif = make_eif(&len, &built);
	void *st = NULL;

	(void)state;
	assert_non_null(b);
	eif[len - 1] ^= 1; /* the CRC no longer holds */
	assert_int_equal(b->open(&cfg, eif, len, &st, &got, &d), NSM_BACKEND_IMAGE);
	assert_null(st);
	assert_non_null(strstr(d.msg, "CRC"));
	free(eif);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nsm_backend_loads_the_module_of_this_build),
		cmocka_unit_test(test_nsm_backend_measures_what_it_is_given),
		cmocka_unit_test(test_nsm_backend_refuses_what_is_not_an_eif),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
