/* SPDX-License-Identifier: Apache-2.0 */
/* The cpio writer, the bootstrap and customer ramdisk layouts, and the blobs directory. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/image/image.h"

/* One entry read back from a cpio archive by libarchive (independent of the writer). */
struct rd_entry {
	char path[256];
	unsigned mode;
	int64_t ino, mtime, uid, gid, size;
	unsigned nlink, rmajor, rminor;
	char link[256];
	char data[256];
};

struct rd {
	struct rd_entry e[64];
	size_t n;
};

static uint8_t *write_to_memory(const struct img_tree *t, int64_t mtime, size_t *len)
{
	struct cl_diag d = { "" };
	char tmpl[] = "/tmp/test_ramdisk.XXXXXX";
	int fd = mkstemp(tmpl);
	uint64_t written = 0;
	uint8_t *buf;
	struct stat st;

	assert_true(fd >= 0);
	unlink(tmpl);
	assert_int_equal(img_tree_write_cpio(t, mtime, fd, &written, &d), IMAGE_OK);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal((uint64_t)st.st_size, written);
	buf = malloc(written ? written : 1);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, written, 0), (ssize_t)written);
	close(fd);
	*len = written;
	return buf;
}

static void read_back(const uint8_t *buf, size_t len, struct rd *out)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;

	memset(out, 0, sizeof(*out));
	archive_read_support_format_cpio(a);
	assert_int_equal(archive_read_open_memory(a, buf, len), ARCHIVE_OK);
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		struct rd_entry *r = &out->e[out->n++];
		la_ssize_t n;

		assert_true(out->n < 64);
		snprintf(r->path, sizeof(r->path), "%s", archive_entry_pathname(e));
		r->mode = (unsigned)archive_entry_mode(e);
		r->ino = archive_entry_ino64(e);
		r->mtime = archive_entry_mtime(e);
		r->uid = archive_entry_uid(e);
		r->gid = archive_entry_gid(e);
		r->size = archive_entry_size(e);
		r->nlink = archive_entry_nlink(e);
		r->rmajor = (unsigned)archive_entry_rdevmajor(e);
		r->rminor = (unsigned)archive_entry_rdevminor(e);
		if (archive_entry_symlink(e))
			snprintf(r->link, sizeof(r->link), "%s", archive_entry_symlink(e));
		n = archive_read_data(a, r->data, sizeof(r->data) - 1);
		assert_true(n >= 0);
	}
	assert_string_equal(archive_format_name(a), "ASCII cpio (SVR4 with no CRC)");
	archive_read_free(a);
}

static const struct rd_entry *find(const struct rd *r, const char *path)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->e[i].path, path))
			return &r->e[i];
	return NULL;
}

static struct img_tree *new_tree(void)
{
	struct img_tree *t;
	struct cl_diag d = { "" };

	assert_int_equal(img_tree_new(&t, &d), IMAGE_OK);
	return t;
}

static void test_ramdisk_cpio_is_sorted_with_fixed_metadata(void **state)
{
	struct cl_diag d = { "" };
	struct img_tree *t = new_tree();
	struct rd r;
	size_t len;
	uint8_t *buf;

	(void)state;
	/* Added out of order, and "b/c" before its parent exists. */
	assert_int_equal(img_tree_add_file(t, "b/c", 0600, "hello", 5, &d), IMAGE_OK);
	assert_int_equal(img_tree_add_dir(t, "/a/", 0711, &d), IMAGE_OK);
	assert_int_equal(img_tree_add_symlink(t, "./b/link", "/usr/bin/x", &d), IMAGE_OK);
	assert_int_equal(img_tree_add_file(t, "a.txt", 04755, "x", 1, &d), IMAGE_OK);
	assert_int_equal(img_tree_count(t), 5);
	buf = write_to_memory(t, 1700000000, &len);
	/* newc pads each header+name and data to 4 bytes; the trailer ends the archive
	 * without block padding. */
	assert_int_equal(len % 4, 0);
	assert_memory_equal(buf, "070701", 6);
	assert_non_null(memmem(buf + len - 124, 124, "TRAILER!!!", 10));
	read_back(buf, len, &r);
	assert_int_equal(r.n, 5);
	assert_string_equal(r.e[0].path, "a");
	assert_string_equal(r.e[1].path, "a.txt");
	assert_string_equal(r.e[2].path, "b");
	assert_string_equal(r.e[3].path, "b/c");
	assert_string_equal(r.e[4].path, "b/link");
	for (size_t i = 0; i < r.n; i++) {
		assert_int_equal(r.e[i].ino, (int64_t)i + 1);
		assert_int_equal(r.e[i].mtime, 1700000000);
		assert_int_equal(r.e[i].uid, 0);
		assert_int_equal(r.e[i].gid, 0);
	}
	assert_int_equal(r.e[0].mode, S_IFDIR | 0711);
	assert_int_equal(r.e[0].nlink, 2);
	assert_int_equal(r.e[1].mode, S_IFREG | 04755);
	assert_int_equal(r.e[2].mode, S_IFDIR | 0755); /* created implicitly */
	assert_int_equal(r.e[3].mode, S_IFREG | 0600);
	assert_int_equal(r.e[3].size, 5);
	assert_int_equal(r.e[3].nlink, 1);
	assert_string_equal(r.e[3].data, "hello");
	assert_int_equal(r.e[4].mode, S_IFLNK | 0777);
	assert_string_equal(r.e[4].link, "/usr/bin/x");
	free(buf);
	img_tree_free(t);
}

static struct img_tree *sample_tree(void)
{
	struct cl_diag d = { "" };
	struct img_tree *t = new_tree();
	char big[100000];

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7);
	assert_int_equal(img_tree_add_file(t, "z/big", 0644, big, sizeof(big), &d), IMAGE_OK);
	assert_int_equal(img_tree_add_file(t, "y", 0644, "y", 1, &d), IMAGE_OK);
	assert_int_equal(img_tree_add_symlink(t, "x", "y", &d), IMAGE_OK);
	return t;
}

static void test_ramdisk_two_builds_are_byte_identical(void **state)
{
	struct img_tree *t1 = sample_tree(), *t2 = sample_tree();
	size_t l1, l2, l3;
	uint8_t *b1, *b2, *b3;

	(void)state;
	b1 = write_to_memory(t1, 1000, &l1);
	b2 = write_to_memory(t2, 1000, &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(b1, b2, l1);
	/* ...and the build time is part of the bytes, so it must be pinned to reproduce. */
	b3 = write_to_memory(t1, 1001, &l3);
	assert_int_equal(l1, l3);
	assert_memory_not_equal(b1, b3, l1);
	free(b1);
	free(b2);
	free(b3);
	img_tree_free(t1);
	img_tree_free(t2);
}

static void test_ramdisk_rejects_paths_through_files_and_dotdot(void **state)
{
	struct cl_diag d = { "" };
	struct img_tree *t = new_tree();

	(void)state;
	assert_int_equal(img_tree_add_file(t, "f", 0644, "", 0, &d), IMAGE_OK);
	assert_int_equal(img_tree_add_file(t, "f/g", 0644, "", 0, &d), IMAGE_ERR_UNSAFE_PATH);
	assert_non_null(strstr(d.msg, "not a directory"));
	assert_int_equal(img_tree_add_symlink(t, "l", "/etc", &d), IMAGE_OK);
	assert_int_equal(img_tree_add_file(t, "l/passwd", 0644, "", 0, &d), IMAGE_ERR_UNSAFE_PATH);
	assert_non_null(strstr(d.msg, "symlink"));
	assert_int_equal(img_tree_add_dir(t, "a/../../etc", 0755, &d), IMAGE_ERR_UNSAFE_PATH);
	assert_false(img_tree_lookup(t, "etc", NULL));
	img_tree_free(t);
}

static char *make_temp_dir(void)
{
	char *p = strdup("/tmp/test_ramdisk_dir.XXXXXX");

	assert_non_null(p);
	assert_non_null(mkdtemp(p));
	return p;
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void rm_rf(const char *dir)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* An AWS blobs directory (nitro-compat §2.10) yields nitro-cli's bootstrap layout exactly. */
static void test_ramdisk_aws_blobs_give_nitro_bootstrap_layout(void **state)
{
	struct cl_diag d = { "" };
	struct img_blobs b;
	struct img_tree *t = new_tree();
	char *dir = make_temp_dir();
	struct rd r;
	size_t len;
	uint8_t *buf;

	(void)state;
	write_file(dir, "bzImage", "kernel");
	write_file(dir, "bzImage.config",
	           "#\n# Automatically generated file; DO NOT EDIT.\n"
	           "# Linux/x86_64 4.14.256-209.484.amzn2.x86_64 Kernel Configuration\n#\n");
	write_file(dir, "cmdline", "reboot=k panic=30 pci=off nomodules console=ttyS0\n");
	write_file(dir, "init", "INIT");
	write_file(dir, "nsm.ko", "NSMKO");
	assert_int_equal(img_blobs_open(dir, &b, &d), IMAGE_OK);
	assert_true(b.nitro_layout);
	assert_string_equal(b.os, "Linux");
	assert_string_equal(b.kernel_version, "4.14.256");
	assert_string_equal(b.cmdline, "reboot=k panic=30 pci=off nomodules console=ttyS0");
	assert_int_equal(img_bootstrap_build(&b, t, &d), IMAGE_OK);
	buf = write_to_memory(t, 0, &len);
	read_back(buf, len, &r);
	assert_int_equal(r.n, 3);
	assert_string_equal(r.e[0].path, "dev");
	assert_int_equal(r.e[0].mode, S_IFDIR | 0755);
	assert_string_equal(r.e[1].path, "init");
	assert_int_equal(r.e[1].mode, S_IFREG | 0755);
	assert_string_equal(r.e[1].data, "INIT");
	assert_string_equal(r.e[2].path, "nsm.ko");
	assert_int_equal(r.e[2].mode, S_IFREG | 0755);
	assert_string_equal(r.e[2].data, "NSMKO");
	free(buf);
	img_blobs_free(&b);
	img_tree_free(t);
	rm_rf(dir);
	free(dir);
}

static void test_ramdisk_cloister_blobs_carry_modules_in_order(void **state)
{
	struct cl_diag d = { "" };
	struct img_blobs b;
	struct img_tree *t = new_tree();
	char *dir = make_temp_dir(), sub[600];
	struct rd r;
	size_t len;
	uint8_t *buf;

	(void)state;
	write_file(dir, "bzImage", "kernel");
	write_file(dir, "bzImage.config", "#\n#\n# Linux/x86 6.12.95 Kernel Configuration\n");
	write_file(dir, "cmdline", "console=ttyS0");
	write_file(dir, "init", "INIT");
	snprintf(sub, sizeof(sub), "%s/modules", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	/* virtio_mmio has no file: built into this kernel. */
	write_file(dir, "modules/load", "# comment\nvirtio_mmio\nvsock\nnsm\n");
	write_file(dir, "modules/vsock.ko", "VSOCK");
	write_file(dir, "modules/nsm.ko", "NSM");
	assert_int_equal(img_blobs_open(dir, &b, &d), IMAGE_OK);
	assert_false(b.nitro_layout);
	assert_string_equal(b.kernel_version, "6.12.95");
	assert_int_equal(b.n_modules, 3);
	assert_int_equal(img_bootstrap_build(&b, t, &d), IMAGE_OK);
	buf = write_to_memory(t, 0, &len);
	read_back(buf, len, &r);
	assert_int_equal(r.n, 6);
	assert_non_null(find(&r, "dev"));
	assert_int_equal(find(&r, "init")->mode, S_IFREG | 0755);
	assert_string_equal(find(&r, "modules/load")->data, "virtio_mmio\nvsock\nnsm\n");
	assert_string_equal(find(&r, "modules/vsock.ko")->data, "VSOCK");
	assert_string_equal(find(&r, "modules/nsm.ko")->data, "NSM");
	assert_null(find(&r, "modules/virtio_mmio.ko"));
	free(buf);
	img_blobs_free(&b);
	img_tree_free(t);
	rm_rf(dir);
	free(dir);
}

static void test_ramdisk_blobs_missing_file_is_named(void **state)
{
	struct cl_diag d = { "" };
	struct img_blobs b;
	char *dir = make_temp_dir();

	(void)state;
	write_file(dir, "bzImage", "kernel");
	assert_int_equal(img_blobs_open(dir, &b, &d), IMAGE_ERR_NOT_FOUND);
	assert_non_null(strstr(d.msg, "bzImage.config"));
	assert_int_equal(img_blobs_open("/nonexistent/blobs", &b, &d), IMAGE_ERR_NOT_FOUND);
	assert_non_null(strstr(d.msg, "NITRO_CLI_BLOBS"));
	rm_rf(dir);
	free(dir);
}

static void test_ramdisk_customer_layout_matches_nitro(void **state)
{
	struct cl_diag d = { "" };
	struct img_tree *t = new_tree();
	char *argv[] = { "/bin/app", "--port", "5000" };
	char *env[] = { "PATH=/usr/bin:/bin", "A=b c" };
	struct img_app app = { argv, 3, env, 2, "/srv" };
	struct rd r;
	size_t len;
	uint8_t *buf;

	(void)state;
	assert_int_equal(img_tree_add_dir(t, "rootfs/tmp", 01777, &d), IMAGE_OK);
	assert_int_equal(img_tree_add_file(t, "rootfs/bin/app", 0755, "ELF", 3, &d), IMAGE_OK);
	assert_int_equal(img_customer_finish(t, &app, false, false, &d), IMAGE_OK);
	buf = write_to_memory(t, 0, &len);
	read_back(buf, len, &r);
	assert_string_equal(find(&r, "cmd")->data, "/bin/app\n--port\n5000\n");
	assert_int_equal(find(&r, "cmd")->mode, S_IFREG | 0644);
	assert_string_equal(find(&r, "env")->data, "PATH=/usr/bin:/bin\nA=b c\n");
	assert_int_equal(find(&r, "env")->mode, S_IFREG | 0644);
	assert_null(find(&r, "workdir"));
	assert_null(find(&r, "measure"));
	for (size_t i = 0; i < 5; i++) {
		static const char *const dirs[] = { "rootfs/dev", "rootfs/run", "rootfs/sys",
			                            "rootfs/var", "rootfs/proc" };
		assert_non_null(find(&r, dirs[i]));
		assert_int_equal(find(&r, dirs[i])->mode, S_IFDIR | 0755);
	}
	/* An image's own directory keeps its mode. */
	assert_int_equal(find(&r, "rootfs/tmp")->mode, S_IFDIR | 01777);
	free(buf);
	img_tree_free(t);
}

static void test_ramdisk_customer_workdir_and_measure_are_opt_in(void **state)
{
	struct cl_diag d = { "" };
	struct img_tree *t = new_tree();
	char *argv[] = { "/app" };
	struct img_app app = { argv, 1, NULL, 0, "/srv/app" };
	struct rd r;
	size_t len;
	uint8_t *buf;

	(void)state;
	assert_int_equal(img_customer_finish(t, &app, true, true, &d), IMAGE_OK);
	buf = write_to_memory(t, 0, &len);
	read_back(buf, len, &r);
	assert_string_equal(find(&r, "workdir")->data, "/srv/app\n");
	assert_int_equal(find(&r, "measure")->size, 0);
	assert_int_equal(find(&r, "env")->size, 0);
	free(buf);
	img_tree_free(t);
}

static void test_ramdisk_customer_refuses_newlines_and_missing_command(void **state)
{
	struct cl_diag d = { "" };
	struct img_tree *t = new_tree();
	char *argv[] = { "/app", "two\nlines" };
	char *env[] = { "NOEQUALS" };
	struct img_app bad_arg = { argv, 2, NULL, 0, NULL };
	struct img_app bad_env = { argv, 1, env, 1, NULL };
	struct img_app none = { NULL, 0, NULL, 0, NULL };

	(void)state;
	assert_int_equal(img_customer_finish(t, &bad_arg, false, false, &d), IMAGE_ERR_FORMAT);
	assert_non_null(strstr(d.msg, "newline"));
	assert_int_equal(img_customer_finish(t, &bad_env, false, false, &d), IMAGE_ERR_FORMAT);
	assert_int_equal(img_customer_finish(t, &none, false, false, &d), IMAGE_ERR_NO_COMMAND);
	assert_non_null(strstr(d.msg, "--cmd"));
	img_tree_free(t);
}

static void test_ramdisk_host_dir_keeps_symlinks_and_drops_owner(void **state)
{
	struct cl_diag d = { "" };
	struct img_tree *t = new_tree();
	char *dir = make_temp_dir(), p[600];
	struct rd r;
	size_t len;
	uint8_t *buf;

	(void)state;
	snprintf(p, sizeof(p), "%s/bin", dir);
	assert_int_equal(mkdir(p, 0750), 0);
	write_file(dir, "bin/hello", "#!/bin/sh\n");
	snprintf(p, sizeof(p), "%s/bin/hello", dir);
	assert_int_equal(chmod(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/etc", dir);
	/* An absolute symlink that would escape on the host stays a plain symlink. */
	assert_int_equal(symlink("/etc", p), 0);
	assert_int_equal(img_tree_add_host_dir(t, "rootfs", dir, &d), IMAGE_OK);
	buf = write_to_memory(t, 0, &len);
	read_back(buf, len, &r);
	assert_int_equal(r.n, 4);
	assert_int_equal(find(&r, "rootfs/bin")->mode, S_IFDIR | 0750);
	assert_int_equal(find(&r, "rootfs/bin/hello")->mode, S_IFREG | 0755);
	assert_string_equal(find(&r, "rootfs/bin/hello")->data, "#!/bin/sh\n");
	assert_int_equal(find(&r, "rootfs/bin/hello")->uid, 0);
	assert_int_equal(find(&r, "rootfs/etc")->mode, S_IFLNK | 0777);
	assert_string_equal(find(&r, "rootfs/etc")->link, "/etc");
	free(buf);
	img_tree_free(t);
	rm_rf(dir);
	free(dir);
}

/* Host hard links stay one inode: the kernel's unpacker links them, the bytes are stored once. */
static void test_ramdisk_hard_links_share_one_inode_and_one_copy(void **state)
{
	struct cl_diag d = { "" };
	struct img_tree *t = new_tree();
	char *dir = make_temp_dir(), a[600], b[600], big[20000];
	const struct rd_entry *ea, *eb;
	struct rd r;
	size_t len;
	uint8_t *buf;
	FILE *f;

	(void)state;
	memset(big, 'x', sizeof(big));
	snprintf(a, sizeof(a), "%s/a", dir);
	snprintf(b, sizeof(b), "%s/b", dir);
	f = fopen(a, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(big, 1, sizeof(big), f), sizeof(big));
	fclose(f);
	assert_int_equal(link(a, b), 0);
	assert_int_equal(img_tree_add_host_dir(t, "rootfs", dir, &d), IMAGE_OK);
	buf = write_to_memory(t, 0, &len);
	assert_true(len > sizeof(big) && len < 2 * sizeof(big));
	read_back(buf, len, &r);
	ea = find(&r, "rootfs/a");
	eb = find(&r, "rootfs/b");
	assert_non_null(ea);
	assert_non_null(eb);
	assert_int_equal(ea->ino, eb->ino);
	assert_int_equal(ea->nlink, 2);
	assert_int_equal(eb->nlink, 2);
	/* The first entry carries the bytes (the kernel writes them through the first name). */
	assert_int_equal(ea->size, sizeof(big));
	assert_memory_equal(ea->data, big, sizeof(ea->data) - 1);
	free(buf);
	img_tree_free(t);
	rm_rf(dir);
	free(dir);
}

static void test_ramdisk_decompresses_xz_modules(void **state)
{
	struct cl_diag d = { "" };
	char *dir = make_temp_dir(), src[600], dst[600], cmd[1400];
	char back[64] = "";
	FILE *f;

	(void)state;
	write_file(dir, "m.ko", "\177ELF module bytes");
	snprintf(cmd, sizeof(cmd), "xz -k '%s/m.ko' && mv '%s/m.ko' '%s/orig.ko'", dir, dir, dir);
	assert_int_equal(system(cmd), 0);
	snprintf(src, sizeof(src), "%s/m.ko.xz", dir);
	snprintf(dst, sizeof(dst), "%s/out.ko", dir);
	assert_int_equal(img_decompress_file(src, dst, &d), IMAGE_OK);
	f = fopen(dst, "r");
	assert_non_null(f);
	assert_non_null(fgets(back, sizeof(back), f));
	fclose(f);
	assert_string_equal(back, "\177ELF module bytes");
	rm_rf(dir);
	free(dir);
}

/* extend(pcr, data) = SHA-384(pcr ‖ data), straight from OpenSSL. */
static void extend(uint8_t pcr[48], const void *data, size_t len)
{
	uint8_t in[48 + 8192];
	unsigned n = 0;

	assert_true(len <= 8192);
	memcpy(in, pcr, 48);
	memcpy(in + 48, data, len);
	assert_int_equal(EVP_Digest(in, 48 + len, pcr, &n, EVP_sha384(), NULL), 1);
}

static void test_ramdisk_measured_launch_pcr16_matches_spec(void **state)
{
	struct cl_diag d = { "" };
	char *argv[] = { "/app", "-x" };
	char *env[] = { "A=1" };
	struct img_app app = { argv, 2, env, 1, "/w" };
	uint8_t want[48] = { 0 }, got[48], big_want[48] = { 0 };
	char big_arg[4500], chunk[4100];
	char *big_argv[] = { big_arg };
	struct img_app big = { big_argv, 1, NULL, 0, NULL };

	(void)state;
	extend(want, "cloister:cmd:/app\n-x\n", 21);
	extend(want, "cloister:env:A=1\n", 17);
	extend(want, "cloister:workdir:/w", 19);
	assert_int_equal(img_measure_launch(&app, true, got, &d), IMAGE_OK);
	assert_memory_equal(got, want, 48);
	/* Without the workdir record the value differs. */
	assert_int_equal(img_measure_launch(&app, false, got, &d), IMAGE_OK);
	assert_memory_not_equal(got, want, 48);

	/* A 4500-byte cmd file is two pieces, 4000 + 500; an empty env is one empty piece. */
	memset(big_arg, 'a', sizeof(big_arg) - 1);
	big_arg[sizeof(big_arg) - 1] = '\0';
	memcpy(chunk, "cloister:cmd:", 13);
	memset(chunk + 13, 'a', 4000);
	extend(big_want, chunk, 13 + 4000);
	memset(chunk + 13, 'a', 499);
	chunk[13 + 499] = '\n';
	extend(big_want, chunk, 13 + 500);
	extend(big_want, "cloister:env:", 13);
	assert_int_equal(img_measure_launch(&big, true, got, &d), IMAGE_OK);
	assert_memory_equal(got, big_want, 48);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ramdisk_cpio_is_sorted_with_fixed_metadata),
		cmocka_unit_test(test_ramdisk_two_builds_are_byte_identical),
		cmocka_unit_test(test_ramdisk_rejects_paths_through_files_and_dotdot),
		cmocka_unit_test(test_ramdisk_aws_blobs_give_nitro_bootstrap_layout),
		cmocka_unit_test(test_ramdisk_cloister_blobs_carry_modules_in_order),
		cmocka_unit_test(test_ramdisk_blobs_missing_file_is_named),
		cmocka_unit_test(test_ramdisk_customer_layout_matches_nitro),
		cmocka_unit_test(test_ramdisk_customer_workdir_and_measure_are_opt_in),
		cmocka_unit_test(test_ramdisk_customer_refuses_newlines_and_missing_command),
		cmocka_unit_test(test_ramdisk_host_dir_keeps_symlinks_and_drops_owner),
		cmocka_unit_test(test_ramdisk_decompresses_xz_modules),
		cmocka_unit_test(test_ramdisk_hard_links_share_one_inode_and_one_copy),
		cmocka_unit_test(test_ramdisk_measured_launch_pcr16_matches_spec),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
