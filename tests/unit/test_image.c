/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading images: OCI layouts, oci-archive and docker-archive tars, layers with whiteouts,
 * opaque directories, hard links and hostile paths, and the config → cmd/env rules. Every
 * image is built here with libarchive; digests are computed with OpenSSL directly.
 */
#include <archive.h>
#include <archive_entry.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "lib/image/image.h"

/* ---- building test images ---- */

struct ent {
	const char *path;
	char type; /* 'f' file, 'd' dir, 'l' symlink, 'h' hard link */
	const char *data; /* contents, or link target */
	unsigned mode;
};

struct buf {
	uint8_t *p;
	size_t len;
};

static struct buf make_tar(const struct ent *e, size_t n, bool gzip)
{
	size_t cap = 1 << 20, used = 0;
	struct buf b = { malloc(cap), 0 };
	struct archive *a = archive_write_new();
	struct archive_entry *ae = archive_entry_new();

	assert_non_null(b.p);
	archive_write_set_format_pax_restricted(a);
	if (gzip)
		archive_write_add_filter_gzip(a);
	assert_int_equal(archive_write_open_memory(a, b.p, cap, &used), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		archive_entry_clear(ae);
		archive_entry_set_pathname(ae, e[i].path);
		archive_entry_set_uid(ae, 1000);
		archive_entry_set_gid(ae, 1000);
		switch (e[i].type) {
		case 'f':
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_perm(ae, e[i].mode ? e[i].mode : 0644);
			archive_entry_set_size(ae, (la_int64_t)strlen(e[i].data));
			break;
		case 'd':
			archive_entry_set_filetype(ae, AE_IFDIR);
			archive_entry_set_perm(ae, e[i].mode ? e[i].mode : 0755);
			break;
		case 'l':
			archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_set_perm(ae, 0777);
			archive_entry_set_symlink(ae, e[i].data);
			break;
		case 'h':
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_perm(ae, 0644);
			archive_entry_set_hardlink(ae, e[i].data);
			break;
		}
		assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
		if (e[i].type == 'f')
			assert_int_equal(archive_write_data(a, e[i].data, strlen(e[i].data)),
			                 (la_ssize_t)strlen(e[i].data));
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	archive_entry_free(ae);
	b.len = used;
	return b;
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
	uint8_t md[32];
	unsigned len = 0;

	assert_int_equal(EVP_Digest(p, n, md, &len, EVP_sha256(), NULL), 1);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* A set of named members, written either as a directory or as a tar. */
struct member {
	char name[128];
	struct buf data;
	const char *link; /* a symlink member when set */
};

struct image {
	struct member m[16];
	size_t n;
};

static void add_member(struct image *img, const char *name, const void *data, size_t len)
{
	struct member *m = &img->m[img->n++];

	snprintf(m->name, sizeof(m->name), "%s", name);
	m->data.p = malloc(len ? len : 1);
	assert_non_null(m->data.p);
	memcpy(m->data.p, data, len);
	m->data.len = len;
}

/* Add a blob under blobs/sha256/<hex>; returns "sha256:<hex>" in @digest. */
static void add_blob(struct image *img, const void *data, size_t len, char digest[72])
{
	char hex[65], name[96];

	sha256_hex(data, len, hex);
	snprintf(name, sizeof(name), "blobs/sha256/%s", hex);
	snprintf(digest, 72, "sha256:%s", hex);
	add_member(img, name, data, len);
}

static void free_image(struct image *img)
{
	for (size_t i = 0; i < img->n; i++)
		free(img->m[i].data.p);
	img->n = 0;
}

static const char *default_config =
        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"PATH=/bin\","
        "\"GREETING=hi there\"],\"Entrypoint\":[\"/bin/ep\"],\"Cmd\":[\"/bin/app\",\"-v\"],"
        "\"WorkingDir\":\"/srv\"},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";

/* An OCI layout with the given config and layers (tar buffers) and index ref "v1". */
static void build_oci(struct image *img, const char *config, struct buf *layers, size_t n)
{
	char cfg_dg[72], man_dg[72], layer_dg[8][72];
	char manifest[4096], index[1024];
	size_t off;

	add_blob(img, config, strlen(config), cfg_dg);
	for (size_t i = 0; i < n; i++)
		add_blob(img, layers[i].p, layers[i].len, layer_dg[i]);
	off = (size_t)snprintf(manifest, sizeof(manifest),
	                       "{\"schemaVersion\":2,\"mediaType\":"
	                       "\"application/vnd.oci.image.manifest.v1+json\",\"config\":{"
	                       "\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
	                       "\"digest\":\"%s\",\"size\":%zu},\"layers\":[",
	                       cfg_dg, strlen(config));
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(manifest + off, sizeof(manifest) - off,
		                        "%s{\"mediaType\":\"application/"
		                        "vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"%s\","
		                        "\"size\":%zu}",
		                        i ? "," : "", layer_dg[i], layers[i].len);
	snprintf(manifest + off, sizeof(manifest) - off, "]}");
	add_blob(img, manifest, strlen(manifest), man_dg);
	snprintf(index, sizeof(index),
	         "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/"
	         "vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":%zu,"
	         "\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"}}]}\n",
	         man_dg, strlen(manifest));
	add_member(img, "index.json", index, strlen(index));
	add_member(img, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
}

static char *write_dir(const struct image *img)
{
	char *dir = strdup("/tmp/test_image.XXXXXX"), path[512];

	assert_non_null(dir);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/blobs", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/blobs/sha256", dir);
	mkdir(path, 0755);
	for (size_t i = 0; i < img->n; i++) {
		FILE *f;
		snprintf(path, sizeof(path), "%s/%s", dir, img->m[i].name);
		f = fopen(path, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(img->m[i].data.p, 1, img->m[i].data.len, f),
		                 img->m[i].data.len);
		fclose(f);
	}
	return dir;
}

static char *write_tar(const struct image *img)
{
	char *path = strdup("/tmp/test_image_tar.XXXXXX");
	struct archive *a = archive_write_new();
	struct archive_entry *ae = archive_entry_new();
	int fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	archive_write_set_format_pax_restricted(a);
	assert_int_equal(archive_write_open_fd(a, fd), ARCHIVE_OK);
	for (size_t i = 0; i < img->n; i++) {
		archive_entry_clear(ae);
		archive_entry_set_pathname(ae, img->m[i].name);
		if (img->m[i].link) {
			archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_set_perm(ae, 0777);
			archive_entry_set_symlink(ae, img->m[i].link);
			assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
			continue;
		}
		archive_entry_set_filetype(ae, AE_IFREG);
		archive_entry_set_perm(ae, 0644);
		archive_entry_set_size(ae, (la_int64_t)img->m[i].data.len);
		assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
		archive_write_data(a, img->m[i].data.p, img->m[i].data.len);
	}
	archive_write_close(a);
	archive_write_free(a);
	archive_entry_free(ae);
	close(fd);
	return path;
}

static void rm_rf(const char *p)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p);
	assert_int_equal(system(cmd), 0);
}

/* Open @uri and apply all layers into a fresh tree under rootfs/. */
static enum image_error load(const char *uri, struct img_tree **t, struct img_source **src,
                             struct cl_diag *d)
{
	enum image_error err = img_open(uri, src, d);

	if (err)
		return err;
	assert_int_equal(img_tree_new(t, d), IMAGE_OK);
	return img_source_apply_layers(*src, *t, "rootfs", NULL, NULL, d);
}

/* ---- tests ---- */

static void test_image_layers_apply_whiteouts_opaque_dirs_and_hard_links(void **state)
{
	static const struct ent l1[] = {
		{ "./", 'd', NULL, 0755 },
		{ "bin/", 'd', NULL, 0 },
		{ "bin/sh", 'f', "shell", 0755 },
		{ "etc/", 'd', NULL, 0 },
		{ "etc/a", 'f', "A", 0 },
		{ "etc/b", 'f', "B", 0 },
		{ "var/lib/x/", 'd', NULL, 0 },
		{ "var/lib/x/old", 'f', "old", 0 },
		{ "var/lib/x/sub/deep", 'f', "deep", 0 },
		{ "gone/", 'd', NULL, 0 },
		{ "gone/child", 'f', "c", 0 },
	};
	static const struct ent l2[] = {
		{ "etc/.wh.a", 'f', "", 0 },
		{ "var/lib/x/new", 'f', "new", 0 },
		{ "var/lib/x/.wh..wh..opq", 'f', "", 0 },
		{ ".wh.gone", 'f', "", 0 },
		{ "usr/sh", 'h', "bin/sh", 0 },
		{ "etc/b", 'f', "B2", 0600 },
	};
	struct buf layers[2] = { make_tar(l1, 11, false), make_tar(l2, 6, true) };
	struct image img = { 0 };
	struct cl_diag d = { "" };
	struct img_tree *t;
	struct img_source *src;
	unsigned mode;
	char *dir, uri[600];

	(void)state;
	build_oci(&img, default_config, layers, 2);
	dir = write_dir(&img);
	snprintf(uri, sizeof(uri), "oci:%s:v1", dir);
	assert_int_equal(load(uri, &t, &src, &d), IMAGE_OK);
	assert_int_equal(img_source_layer_count(src), 2);
	assert_true(img_tree_lookup(t, "rootfs/bin/sh", &mode));
	assert_int_equal(mode, S_IFREG | 0755);
	assert_false(img_tree_lookup(t, "rootfs/etc/a", NULL));
	assert_true(img_tree_lookup(t, "rootfs/etc/b", &mode));
	assert_int_equal(mode, S_IFREG | 0600);
	/* The opaque marker hides lower-layer entries, not the layer's own. */
	assert_false(img_tree_lookup(t, "rootfs/var/lib/x/old", NULL));
	assert_false(img_tree_lookup(t, "rootfs/var/lib/x/sub/deep", NULL));
	assert_true(img_tree_lookup(t, "rootfs/var/lib/x/new", NULL));
	assert_true(img_tree_lookup(t, "rootfs/var/lib/x", NULL));
	assert_false(img_tree_lookup(t, "rootfs/gone", NULL));
	assert_false(img_tree_lookup(t, "rootfs/gone/child", NULL));
	assert_true(img_tree_lookup(t, "rootfs/usr/sh", &mode));
	assert_int_equal(mode, S_IFREG | 0755);
	img_tree_free(t);
	img_close(src);
	free_image(&img);
	free(layers[0].p);
	free(layers[1].p);
	rm_rf(dir);
	free(dir);
}

/* The same image as oci-archive and docker-archive, read into identical ramdisks. */
static void test_image_archives_give_identical_ramdisks(void **state)
{
	static const struct ent l1[] = {
		{ "bin/app", 'f', "#!/bin/sh\necho hi\n", 0755 },
		{ "bin/link", 'l', "app", 0 },
	};
	struct buf layer = make_tar(l1, 2, true);
	struct image oci = { 0 }, docker = { 0 };
	struct cl_diag d = { "" };
	char *oci_tar, *docker_tar, uri[600], hex[65], name[128], manifest[512];
	struct img_tree *t1, *t2;
	struct img_source *s1, *s2;
	uint8_t *b1, *b2;
	size_t len1, len2;
	FILE *f1 = tmpfile(), *f2 = tmpfile();

	(void)state;
	build_oci(&oci, default_config, &layer, 1);
	oci_tar = write_tar(&oci);
	/* docker save (pre-v25): <id>.json config, <dir>/layer.tar, manifest.json. */
	sha256_hex(default_config, strlen(default_config), hex);
	snprintf(name, sizeof(name), "%s.json", hex);
	add_member(&docker, name, default_config, strlen(default_config));
	add_member(&docker, "abc123/layer.tar", layer.p, layer.len);
	snprintf(manifest, sizeof(manifest),
	         "[{\"Config\":\"%s\",\"RepoTags\":[\"example.com/hello:1.0\"],"
	         "\"Layers\":[\"abc123/layer.tar\"]}]",
	         name);
	add_member(&docker, "manifest.json", manifest, strlen(manifest));
	docker_tar = write_tar(&docker);

	snprintf(uri, sizeof(uri), "oci-archive:%s", oci_tar);
	assert_int_equal(load(uri, &t1, &s1, &d), IMAGE_OK);
	snprintf(uri, sizeof(uri), "docker-archive:%s:hello:1.0", docker_tar);
	assert_int_equal(load(uri, &t2, &s2, &d), IMAGE_OK);
	assert_string_equal(img_source_name(s2), "example.com/hello");
	assert_string_equal(img_source_image_id(s1), img_source_image_id(s2));
	assert_memory_equal(img_source_image_id(s1) + 7, hex, 64);
	assert_int_equal(img_tree_write_cpio(t1, 0, fileno(f1), &len1, &d), IMAGE_OK);
	assert_int_equal(img_tree_write_cpio(t2, 0, fileno(f2), &len2, &d), IMAGE_OK);
	assert_int_equal(len1, len2);
	b1 = malloc(len1);
	b2 = malloc(len2);
	assert_int_equal(pread(fileno(f1), b1, len1, 0), (ssize_t)len1);
	assert_int_equal(pread(fileno(f2), b2, len2, 0), (ssize_t)len2);
	assert_memory_equal(b1, b2, len1);
	free(b1);
	free(b2);
	fclose(f1);
	fclose(f2);
	img_tree_free(t1);
	img_tree_free(t2);
	img_close(s1);
	img_close(s2);
	free_image(&oci);
	free_image(&docker);
	unlink(oci_tar);
	unlink(docker_tar);
	free(oci_tar);
	free(docker_tar);
	free(layer.p);
}

static enum image_error load_one_layer(const struct ent *e, size_t n, struct cl_diag *d)
{
	struct buf layer = make_tar(e, n, false);
	struct image img = { 0 };
	struct img_tree *t = NULL;
	struct img_source *src = NULL;
	enum image_error err;
	char *dir, uri[600];

	build_oci(&img, default_config, &layer, 1);
	dir = write_dir(&img);
	snprintf(uri, sizeof(uri), "oci:%s", dir);
	err = load(uri, &t, &src, d);
	img_tree_free(t);
	img_close(src);
	free_image(&img);
	free(layer.p);
	rm_rf(dir);
	free(dir);
	return err;
}

static void test_image_rejects_path_traversal(void **state)
{
	static const struct ent dotdot[] = { { "../../etc/passwd", 'f', "x", 0 } };
	static const struct ent inner[] = { { "a/b/../../../x", 'f', "x", 0 } };
	static const struct ent bad_wh[] = { { "etc/.wh...", 'f', "", 0 } };
	static const struct ent bad_hard[] = { { "x", 'h', "../../etc/shadow", 0 } };
	struct cl_diag d = { "" };

	(void)state;
	assert_int_equal(load_one_layer(dotdot, 1, &d), IMAGE_ERR_UNSAFE_PATH);
	assert_non_null(strstr(d.msg, ".."));
	assert_int_equal(load_one_layer(inner, 1, &d), IMAGE_ERR_UNSAFE_PATH);
	assert_int_equal(load_one_layer(bad_wh, 1, &d), IMAGE_ERR_UNSAFE_PATH);
	assert_int_equal(load_one_layer(bad_hard, 1, &d), IMAGE_ERR_UNSAFE_PATH);
}

static void test_image_rejects_entries_through_symlinks_but_keeps_symlinks(void **state)
{
	static const struct ent through[] = {
		{ "evil", 'l', "/etc", 0 },
		{ "evil/passwd", 'f', "root::0:0::/:/bin/sh\n", 0 },
	};
	static const struct ent escape_target[] = {
		{ "up", 'l', "../../../../../etc", 0 },
		{ "abs", 'l', "/etc/passwd", 0 },
	};
	struct cl_diag d = { "" };

	(void)state;
	assert_int_equal(load_one_layer(through, 2, &d), IMAGE_ERR_UNSAFE_PATH);
	assert_non_null(strstr(d.msg, "symlink"));
	/* A symlink's target is only text inside the enclave's root: nothing to refuse. */
	assert_int_equal(load_one_layer(escape_target, 2, &d), IMAGE_OK);
}

static void test_image_config_cmd_wins_over_entrypoint(void **state)
{
	static const char both[] = "{\"config\":{\"Entrypoint\":[\"/ep\"],\"Cmd\":[\"/c\",\"x\"]}}";
	static const char ep[] = "{\"config\":{\"Entrypoint\":[\"/ep\",\"a\"],\"Cmd\":null,"
	                         "\"Env\":[\"A=1\"],\"WorkingDir\":\"/w\"}}";
	static const char none[] = "{\"architecture\":\"amd64\",\"config\":{}}";
	struct img_config c;
	struct img_app app;
	struct cl_diag d = { "" };
	bool both_set;

	(void)state;
	assert_int_equal(img_config_parse((const uint8_t *)both, strlen(both), &c, &d), IMAGE_OK);
	assert_int_equal(img_config_app(&c, &app, &both_set, &d), IMAGE_OK);
	assert_true(both_set);
	assert_int_equal(app.argc, 2);
	assert_string_equal(app.argv[0], "/c");
	assert_string_equal(app.argv[1], "x");
	assert_int_equal(app.envc, 0);
	img_config_free(&c);

	assert_int_equal(img_config_parse((const uint8_t *)ep, strlen(ep), &c, &d), IMAGE_OK);
	assert_int_equal(img_config_app(&c, &app, &both_set, &d), IMAGE_OK);
	assert_false(both_set);
	assert_int_equal(app.argc, 2);
	assert_string_equal(app.argv[0], "/ep");
	assert_int_equal(app.envc, 1);
	assert_string_equal(app.env[0], "A=1");
	assert_string_equal(app.workdir, "/w");
	img_config_free(&c);

	assert_int_equal(img_config_parse((const uint8_t *)none, strlen(none), &c, &d), IMAGE_OK);
	assert_int_equal(img_config_app(&c, &app, &both_set, &d), IMAGE_ERR_NO_COMMAND);
	assert_non_null(strstr(d.msg, "CMD"));
	img_config_free(&c);
}

static void test_image_config_rejects_bad_json_and_types(void **state)
{
	static const char *bad[] = {
		"{\"config\":{\"Cmd\":[\"/a\"]",
		"{\"config\":{\"Cmd\":\"/a\"}}",
		"{\"config\":{\"Env\":[1]}}",
		"{\"config\":{\"Cmd\":[\"a\\u0000b\"]}}",
		"[1,2]",
		"{\"config\":5}",
		"{} trailing",
	};
	struct img_config c;
	struct cl_diag d = { "" };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(img_config_parse((const uint8_t *)bad[i], strlen(bad[i]), &c, &d),
		                 IMAGE_ERR_FORMAT);
}

static void test_image_refuses_arm64(void **state)
{
	static const char arm[] = "{\"architecture\":\"arm64\",\"os\":\"linux\","
	                          "\"config\":{\"Cmd\":[\"/a\"]}}";
	static const char index_arm[] =
	        "{\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	        "\"digest\":\"sha256:00000000000000000000000000000000000000000000000000000000000000"
	        "00\",\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}},"
	        "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	        "\"digest\":\"sha256:11111111111111111111111111111111111111111111111111111111111111"
	        "11\",\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\"}}]}";
	static const struct ent l[] = { { "a", 'f', "a", 0 } };
	struct buf layer = make_tar(l, 1, false);
	struct image img = { 0 };
	struct img_source *src;
	struct cl_diag d = { "" };
	char *dir, uri[600], *digest;
	bool nested;

	(void)state;
	build_oci(&img, arm, &layer, 1);
	dir = write_dir(&img);
	snprintf(uri, sizeof(uri), "oci:%s", dir);
	assert_int_equal(img_open(uri, &src, &d), IMAGE_ERR_UNSUPPORTED);
	assert_non_null(strstr(d.msg, "arm64"));
	assert_int_equal(img_index_select((const uint8_t *)index_arm, strlen(index_arm), NULL,
	                                  &digest, &nested, &d),
	                 IMAGE_ERR_UNSUPPORTED);
	free_image(&img);
	free(layer.p);
	rm_rf(dir);
	free(dir);
}

static void test_image_detects_corrupt_and_missing_blobs(void **state)
{
	static const struct ent l[] = { { "a", 'f', "contents", 0 } };
	struct buf layer = make_tar(l, 1, false);
	struct image img = { 0 };
	struct img_tree *t = NULL;
	struct img_source *src = NULL;
	struct cl_diag d = { "" };
	char *dir, uri[600], path[700], hex[65];
	FILE *f;

	(void)state;
	build_oci(&img, default_config, &layer, 1);
	dir = write_dir(&img);
	snprintf(uri, sizeof(uri), "oci:%s", dir);
	sha256_hex(layer.p, layer.len, hex);
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", dir, hex);
	/* Flip one byte of the tar's padding: still a valid tar, but not the named blob. */
	f = fopen(path, "r+b");
	assert_non_null(f);
	fseek(f, (long)layer.len - 1, SEEK_SET);
	fputc(1, f);
	fclose(f);
	assert_int_equal(load(uri, &t, &src, &d), IMAGE_ERR_DIGEST);
	assert_non_null(strstr(d.msg, hex));
	img_tree_free(t);
	img_close(src);
	t = NULL;
	src = NULL;
	unlink(path);
	assert_int_equal(load(uri, &t, &src, &d), IMAGE_ERR_NOT_FOUND);
	assert_non_null(strstr(d.msg, "missing"));
	img_tree_free(t);
	img_close(src);
	free_image(&img);
	free(layer.p);
	rm_rf(dir);
	free(dir);
}

/* docker save (< v25) links a repeated layer to its first copy; links must stay inside. */
static void test_image_docker_archive_follows_layer_links_inside_only(void **state)
{
	static const struct ent l1[] = { { "same", 'f', "same", 0 } };
	struct buf layer = make_tar(l1, 1, false);
	struct cl_diag d = { "" };
	const char *targets[] = { "../abc/layer.tar", "../../etc/passwd" };
	enum image_error want[] = { IMAGE_OK, IMAGE_ERR_UNSAFE_PATH };

	(void)state;
	for (size_t k = 0; k < 2; k++) {
		struct image img = { 0 };
		struct img_tree *t = NULL;
		struct img_source *src = NULL;
		char *tar, uri[600];
		static const char manifest[] = "[{\"Config\":\"c.json\",\"RepoTags\":null,"
		                               "\"Layers\":[\"abc/layer.tar\",\"def/layer.tar\"]}]";

		add_member(&img, "c.json", default_config, strlen(default_config));
		add_member(&img, "abc/layer.tar", layer.p, layer.len);
		add_member(&img, "def/layer.tar", "", 0);
		img.m[img.n - 1].link = targets[k];
		add_member(&img, "manifest.json", manifest, strlen(manifest));
		tar = write_tar(&img);
		snprintf(uri, sizeof(uri), "docker-archive:%s", tar);
		assert_int_equal(load(uri, &t, &src, &d), want[k]);
		if (want[k] == IMAGE_OK) {
			assert_int_equal(img_source_layer_count(src), 2);
			assert_true(img_tree_lookup(t, "rootfs/same", NULL));
		} else {
			assert_non_null(strstr(d.msg, "outside"));
		}
		img_tree_free(t);
		img_close(src);
		free_image(&img);
		unlink(tar);
		free(tar);
	}
	free(layer.p);
}

static void test_image_plain_name_explains_how_to_export(void **state)
{
	struct img_source *src;
	struct cl_diag d = { "" };

	(void)state;
	assert_int_equal(img_open("nginx:latest", &src, &d), IMAGE_ERR_NOT_FOUND);
	assert_non_null(strstr(d.msg, "docker save"));
	assert_non_null(strstr(d.msg, "skopeo copy"));
	assert_int_equal(img_open("docker-archive:/nonexistent.tar", &src, &d),
	                 IMAGE_ERR_NOT_FOUND);
}

static void test_image_index_selects_by_ref_and_platform(void **state)
{
	static const char idx[] =
	        "{\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	        "\"digest\":\"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	        "aa\",\"annotations\":{\"org.opencontainers.image.ref.name\":"
	        "\"docker.io/library/hello:1\"},\"platform\":{\"os\":\"linux\","
	        "\"architecture\":\"arm64\"}},"
	        "{\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
	        "\"digest\":\"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	        "bb\",\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}";
	struct cl_diag d = { "" };
	char *digest;
	bool nested;

	(void)state;
	assert_int_equal(img_index_select((const uint8_t *)idx, strlen(idx), "hello:1", &digest,
	                                  &nested, &d),
	                 IMAGE_OK);
	assert_int_equal(digest[7], 'a');
	assert_false(nested);
	free(digest);
	assert_int_equal(
	        img_index_select((const uint8_t *)idx, strlen(idx), NULL, &digest, &nested, &d),
	        IMAGE_OK);
	assert_int_equal(digest[7], 'b');
	assert_true(nested);
	free(digest);
	assert_int_equal(
	        img_index_select((const uint8_t *)idx, strlen(idx), "nope", &digest, &nested, &d),
	        IMAGE_ERR_NOT_FOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_image_layers_apply_whiteouts_opaque_dirs_and_hard_links),
		cmocka_unit_test(test_image_archives_give_identical_ramdisks),
		cmocka_unit_test(test_image_rejects_path_traversal),
		cmocka_unit_test(test_image_rejects_entries_through_symlinks_but_keeps_symlinks),
		cmocka_unit_test(test_image_config_cmd_wins_over_entrypoint),
		cmocka_unit_test(test_image_config_rejects_bad_json_and_types),
		cmocka_unit_test(test_image_refuses_arm64),
		cmocka_unit_test(test_image_detects_corrupt_and_missing_blobs),
		cmocka_unit_test(test_image_docker_archive_follows_layer_links_inside_only),
		cmocka_unit_test(test_image_plain_name_explains_how_to_export),
		cmocka_unit_test(test_image_index_selects_by_ref_and_platform),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
