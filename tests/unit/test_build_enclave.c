/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `cloister build-enclave` end to end on the host (no VM): a real image made by
 * tests/data/images/make-busybox-oci.sh, a blobs directory with stand-in kernel bytes, the
 * real EIF writer. Checks reproducibility, the exit codes nitro-cli uses, that a docker-archive's
 * layers are verified, and that a failed build leaves no output file behind.
 */
#include <fcntl.h>
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

#include "cli/cli.h"
#include "cloister/eif.h"

static char dir[] = "/tmp/test_build_enclave.XXXXXX";

static void write_file(const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void make_image(const char *name, const char *config)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "%s%s%s %s/images/make-busybox-oci.sh %s/%s >/dev/null",
	         config ? "IMAGE_CONFIG='" : "", config ? config : "", config ? "'" : "",
	         TEST_DATA_DIR, dir, name);
	assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
	char path[600];

	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/blobs", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/blobs/modules", dir);
	mkdir(path, 0755);
	write_file("blobs/bzImage", "not really a kernel, but bytes to measure");
	write_file("blobs/bzImage.config", "#\n#\n# Linux/x86 6.12.95 Kernel Configuration\n");
	write_file("blobs/cmdline", "console=ttyS0\n");
	write_file("blobs/init", "INIT");
	write_file("blobs/modules/load", "vsock\n");
	write_file("blobs/modules/vsock.ko", "KO");
	make_image("good", NULL);
	make_image("badjson", "{\"architecture\":\"amd64\",\"config\":{");
	make_image("nocmd", "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{}}");
	make_image("arm",
	           "{\"architecture\":\"arm64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"/a\"]}}");
	snprintf(path, sizeof(path), "%s/blobs", dir);
	setenv("NITRO_CLI_BLOBS", path, 1);
	setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
	return 0;
}

static int teardown(void **state)
{
	char cmd[600];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'/*.tar", dir, dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Run build-enclave with stdout and stderr silenced; returns its exit status. */
static int run(const char *const *args)
{
	char *argv[32];
	int argc = 0, rc, out = dup(1), err = dup(2), null = open("/dev/null", O_WRONLY);

	argv[argc++] = "build-enclave";
	for (; args[argc - 1]; argc++)
		argv[argc] = (char *)(uintptr_t)args[argc - 1];
	argv[argc] = NULL;
	fflush(stdout);
	fflush(stderr);
	dup2(null, 1);
	dup2(null, 2);
	rc = cmd_build_enclave(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(out, 1);
	dup2(err, 2);
	close(out);
	close(err);
	close(null);
	return rc;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b = malloc((size_t)n);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static void test_build_enclave_same_inputs_give_identical_eifs(void **state)
{
	char uri[600], tar[600], o1[600], o2[600], o3[600];
	uint8_t *b1, *b2, *b3;
	size_t l1, l2, l3;
	struct eif_image img;
	struct cl_diag d = { { 0 } };

	(void)state;
	snprintf(uri, sizeof(uri), "oci:%s/good:latest", dir);
	snprintf(tar, sizeof(tar), "oci-archive:%s/good.tar", dir);
	snprintf(o1, sizeof(o1), "%s/one.eif", dir);
	snprintf(o2, sizeof(o2), "%s/two.eif", dir);
	snprintf(o3, sizeof(o3), "%s/three.eif", dir);
	assert_int_equal(run((const char *[]){ "--docker-uri", uri, "--output-file", o1, NULL }),
	                 0);
	assert_int_equal(run((const char *[]){ "--docker-uri", uri, "--output-file", o2, NULL }),
	                 0);
	assert_int_equal(run((const char *[]){ "--docker-uri", tar, "--output-file", o3, NULL }),
	                 0);
	b1 = slurp(o1, &l1);
	b2 = slurp(o2, &l2);
	b3 = slurp(o3, &l3);
	assert_int_equal(l1, l2);
	assert_memory_equal(b1, b2, l1);
	assert_int_equal(l1, l3);
	assert_memory_equal(b1, b3, l1);
	/* Kernel, cmdline, metadata, bootstrap ramdisk, customer ramdisk: nitro-cli's order. */
	assert_int_equal(eif_parse_buffer(b1, l1, EIF_PARSE_MEASURE, &img, &d), EIF_OK);
	assert_int_equal(img.num_sections, 5);
	assert_int_equal(img.num_ramdisks, 2);
	assert_int_equal(img.sections[2].type, EIF_SECTION_METADATA);
	assert_non_null(
	        memmem(img.metadata_data, img.metadata_len, "\"KernelVersion\":\"6.12.95\"", 25));
	assert_non_null(memmem(img.metadata_data, img.metadata_len, "\"ImageName\":\"good\"", 18));
	assert_non_null(
	        memmem(img.metadata_data, img.metadata_len, "\"Cmd\":[\"/bin/hello\"]", 20));
	eif_image_release(&img);
	free(b1);
	free(b2);
	free(b3);
}

static void test_build_enclave_broken_images_fail_without_output(void **state)
{
	char uri[600], out[600];

	(void)state;
	snprintf(out, sizeof(out), "%s/broken.eif", dir);
	snprintf(uri, sizeof(uri), "oci:%s/badjson", dir);
	assert_int_equal(run((const char *[]){ "--docker-uri", uri, "--output-file", out, NULL }),
	                 E_DOCKER_IMAGE_PULL);
	assert_false(exists(out));
	snprintf(uri, sizeof(uri), "oci:%s/nocmd", dir);
	assert_int_equal(run((const char *[]){ "--docker-uri", uri, "--output-file", out, NULL }),
	                 E_EIF_BUILDING);
	assert_false(exists(out));
	snprintf(uri, sizeof(uri), "oci:%s/arm", dir);
	assert_int_equal(run((const char *[]){ "--docker-uri", uri, "--output-file", out, NULL }),
	                 E_DOCKER_IMAGE_PULL);
	assert_false(exists(out));
	snprintf(uri, sizeof(uri), "docker-archive:%s/missing.tar", dir);
	assert_int_equal(run((const char *[]){ "--docker-uri", uri, "--output-file", out, NULL }),
	                 E_DOCKER_IMAGE_PULL);
	assert_false(exists(out));
	/* a missing layer blob */
	snprintf(uri, sizeof(uri),
	         "rm %s/good/blobs/sha256/$(ls -S %s/good/blobs/sha256 | head -1) && true", dir,
	         dir);
	assert_int_equal(system(uri), 0);
	snprintf(uri, sizeof(uri), "oci:%s/good", dir);
	assert_int_equal(run((const char *[]){ "--docker-uri", uri, "--output-file", out, NULL }),
	                 E_DOCKER_IMAGE_PULL);
	assert_false(exists(out));
}

/* PCR2 of the EIF at @path. */
static void pcr2_of(const char *path, uint8_t pcr[EIF_PCR_SIZE])
{
	struct eif_image img;
	struct cl_diag d = { { 0 } };
	size_t len;
	uint8_t *b = slurp(path, &len);

	assert_int_equal(eif_parse_buffer(b, len, EIF_PARSE_MEASURE, &img, &d), EIF_OK);
	assert_true(img.measured);
	memcpy(pcr, img.meas.pcr2, EIF_PCR_SIZE);
	eif_image_release(&img);
	free(b);
}

/*
 * `docker save` output (good.docker.tar from make-busybox-oci.sh: <id>.json, <diff_id>/
 * layer.tar) names no blob by digest; it must still give the OCI layout's PCR2, and a byte
 * flipped inside the layer member must fail the build (E50) instead of building a different
 * PCR2, leaving no output.
 */
static void test_build_enclave_docker_archive_layers_are_verified(void **state)
{
	char uri[700], path[600], oci_out[600], out[600];
	uint8_t p1[EIF_PCR_SIZE], p2[EIF_PCR_SIZE];
	uint8_t *b;
	size_t len;
	FILE *f;

	(void)state;
	snprintf(uri, sizeof(uri), "oci:%s/good", dir);
	snprintf(oci_out, sizeof(oci_out), "%s/oci.eif", dir);
	snprintf(out, sizeof(out), "%s/docker.eif", dir);
	assert_int_equal(
	        run((const char *[]){ "--docker-uri", uri, "--output-file", oci_out, NULL }), 0);
	snprintf(uri, sizeof(uri), "docker-archive:%s/good.docker.tar", dir);
	assert_int_equal(run((const char *[]){ "--docker-uri", uri, "--output-file", out, NULL }),
	                 0);
	pcr2_of(oci_out, p1);
	pcr2_of(out, p2);
	assert_memory_equal(p1, p2, EIF_PCR_SIZE);
	unlink(out);

	/* The layer member is almost all of the archive: its middle is busybox's bytes. */
	snprintf(path, sizeof(path), "%s/good.docker.tar", dir);
	b = slurp(path, &len);
	b[len / 2] ^= 0x20;
	snprintf(path, sizeof(path), "%s/flipped.docker.tar", dir);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, len, f), len);
	fclose(f);
	free(b);
	snprintf(uri, sizeof(uri), "docker-archive:%s", path);
	assert_int_equal(run((const char *[]){ "--docker-uri", uri, "--output-file", out, NULL }),
	                 E_DOCKER_IMAGE_PULL);
	assert_false(exists(out));
}

static void test_build_enclave_argument_errors_use_nitro_codes(void **state)
{
	char out[600], blobs[600];

	(void)state;
	snprintf(out, sizeof(out), "%s/args.eif", dir);
	assert_int_equal(run((const char *[]){ "--rootfs", dir, "--output-file", out, NULL }),
	                 E_MISSING_ARGUMENT);
	assert_int_equal(run((const char *[]){ "--output-file", out, NULL }), E_MISSING_ARGUMENT);
	assert_int_equal(run((const char *[]){ "--docker-uri", "x", "--rootfs", dir,
	                                       "--output-file", out, NULL }),
	                 E_CONFLICTING_ARGUMENTS);
	assert_int_equal(run((const char *[]){ "--docker-dir", dir, "--output-file", out, NULL }),
	                 E_DOCKER_IMAGE_BUILD);
	snprintf(blobs, sizeof(blobs), "%s/no-such-blobs", dir);
	assert_int_equal(run((const char *[]){ "--rootfs", dir, "--cmd", "/a", "--blobs", blobs,
	                                       "--output-file", out, NULL }),
	                 E_BLOBS_PATH_NOT_SET);
	assert_false(exists(out));
}

static void test_build_enclave_rootfs_directory_builds(void **state)
{
	char root[600], out[600];

	(void)state;
	snprintf(root, sizeof(root), "%s/blobs/modules", dir);
	snprintf(out, sizeof(out), "%s/rootfs.eif", dir);
	assert_int_equal(run((const char *[]){ "--rootfs", root, "--cmd", "/bin/sh", "--cmd", "-c",
	                                       "--cmd", "echo hi", "--env", "A=1", "--measure",
	                                       "--output-file", out, NULL }),
	                 0);
	assert_true(exists(out));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_enclave_same_inputs_give_identical_eifs),
		cmocka_unit_test(test_build_enclave_docker_archive_layers_are_verified),
		cmocka_unit_test(test_build_enclave_argument_errors_use_nitro_codes),
		cmocka_unit_test(test_build_enclave_rootfs_directory_builds),
		/* last: it removes a blob from the good image */
		cmocka_unit_test(test_build_enclave_broken_images_fail_without_output),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
