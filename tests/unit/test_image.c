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
	char diff_id[72]; /* layers: "sha256:<hex>" of the uncompressed tar */
};

static void sha256_hex(const void *p, size_t n, char out[65])
{
	uint8_t md[32];
	unsigned len = 0;

	assert_int_equal(EVP_Digest(p, n, md, &len, EVP_sha256(), NULL), 1);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* gzip @in (as `gzip` would, one member) into a new buffer; @in is freed. */
static struct buf gzip_buf(struct buf in)
{
	size_t cap = in.len + 4096, used = 0;
	struct buf b = { malloc(cap), 0, "" };
	struct archive *a = archive_write_new();
	struct archive_entry *ae = archive_entry_new();

	assert_non_null(b.p);
	archive_write_set_format_raw(a);
	archive_write_add_filter_gzip(a);
	archive_write_set_bytes_in_last_block(a, 1);
	assert_int_equal(archive_write_open_memory(a, b.p, cap, &used), ARCHIVE_OK);
	archive_entry_set_pathname(ae, "layer.tar");
	archive_entry_set_filetype(ae, AE_IFREG);
	archive_entry_set_size(ae, (la_int64_t)in.len);
	assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
	assert_int_equal(archive_write_data(a, in.p, in.len), (la_ssize_t)in.len);
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	archive_entry_free(ae);
	b.len = used;
	memcpy(b.diff_id, in.diff_id, sizeof(b.diff_id));
	free(in.p);
	return b;
}

/* A layer tar of @e; its diff_id is the sha256 of the tar before any gzip. */
static struct buf make_tar(const struct ent *e, size_t n, bool gzip)
{
	size_t cap = 1 << 20, used = 0;
	struct buf b;
	struct archive *a = archive_write_new();
	struct archive_entry *ae = archive_entry_new();
	char hex[65];

	for (size_t i = 0; i < n; i++)
		cap += e[i].type == 'f' ? strlen(e[i].data) : 0;
	b = (struct buf){ malloc(cap), 0, "" };
	assert_non_null(b.p);
	archive_write_set_format_pax_restricted(a);
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
	sha256_hex(b.p, b.len, hex);
	snprintf(b.diff_id, sizeof(b.diff_id), "sha256:%s", hex);
	return gzip ? gzip_buf(b) : b;
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

/* @DIFF_IDS@ becomes the layers' diff_ids (fill_config), as docker and skopeo write them. */
static const char *default_config =
        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"PATH=/bin\","
        "\"GREETING=hi there\"],\"Entrypoint\":[\"/bin/ep\"],\"Cmd\":[\"/bin/app\",\"-v\"],"
        "\"WorkingDir\":\"/srv\"},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[@DIFF_IDS@]}}";

/* @tmpl with "@DIFF_IDS@" replaced by the quoted diff_ids of @layers, into @out. */
static const char *fill_config(const char *tmpl, const struct buf *layers, size_t n, char *out,
                               size_t cap)
{
	const char *at = strstr(tmpl, "@DIFF_IDS@");
	size_t off;

	if (!at) {
		snprintf(out, cap, "%s", tmpl);
		return out;
	}
	off = (size_t)snprintf(out, cap, "%.*s", (int)(at - tmpl), tmpl);
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(out + off, cap - off, "%s\"%s\"", i ? "," : "",
		                        layers[i].diff_id);
	snprintf(out + off, cap - off, "%s", at + 10);
	return out;
}

/* An OCI layout with the given config and layers (tar buffers) and index ref "v1". */
static void build_oci(struct image *img, const char *tmpl, struct buf *layers, size_t n)
{
	char cfg_dg[72], man_dg[72], layer_dg[8][72];
	char manifest[4096], index[1024], config[2048];
	size_t off;

	fill_config(tmpl, layers, n, config, sizeof(config));
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

/*
 * A `docker save` (< v25) archive as a tar: the config (@tmpl with @DIFF_IDS@ filled from
 * @ids) as "<sha256>.json" unless @cfg_name names it, the layers as "<i>/layer.tar", and
 * manifest.json. Returns the tar's path (caller unlinks and frees).
 */
static char *build_docker(const char *tmpl, const struct buf *ids, size_t n_ids,
                          const struct buf *layers, size_t n, const char *cfg_name)
{
	struct image img = { 0 };
	char config[2048], hex[65], name[128], manifest[1024];
	size_t off;
	char *tar;

	fill_config(tmpl, ids, n_ids, config, sizeof(config));
	sha256_hex(config, strlen(config), hex);
	snprintf(name, sizeof(name), "%s.json", hex);
	if (cfg_name)
		snprintf(name, sizeof(name), "%s", cfg_name);
	add_member(&img, name, config, strlen(config));
	off = (size_t)snprintf(manifest, sizeof(manifest),
	                       "[{\"Config\":\"%s\",\"RepoTags\":[\"app:1\"],\"Layers\":[", name);
	for (size_t i = 0; i < n; i++) {
		char member[32];
		snprintf(member, sizeof(member), "%zu/layer.tar", i + 1);
		add_member(&img, member, layers[i].p, layers[i].len);
		off += (size_t)snprintf(manifest + off, sizeof(manifest) - off, "%s\"%s\"",
		                        i ? "," : "", member);
	}
	snprintf(manifest + off, sizeof(manifest) - off, "]}]");
	add_member(&img, "manifest.json", manifest, strlen(manifest));
	tar = write_tar(&img);
	free_image(&img);
	return tar;
}

/* The cpio of @t with mtime 0, in memory. */
static struct buf write_cpio(const struct img_tree *t)
{
	struct cl_diag d = { "" };
	FILE *f = tmpfile();
	uint64_t len = 0;
	struct buf b = { NULL, 0, "" };

	assert_non_null(f);
	assert_int_equal(img_tree_write_cpio(t, 0, fileno(f), &len, &d), IMAGE_OK);
	b.p = malloc(len);
	assert_non_null(b.p);
	assert_int_equal(pread(fileno(f), b.p, len, 0), (ssize_t)len);
	b.len = len;
	fclose(f);
	return b;
}

/* Load docker-archive @tar into a tree; the customer cpio's bytes go to *cpio if not NULL. */
static enum image_error load_docker(const char *tar, struct buf *cpio, struct cl_diag *d)
{
	struct img_tree *t = NULL;
	struct img_source *src = NULL;
	char uri[600];
	enum image_error err;

	snprintf(uri, sizeof(uri), "docker-archive:%s", tar);
	err = load(uri, &t, &src, d);
	if (!err && cpio)
		*cpio = write_cpio(t);
	img_tree_free(t);
	img_close(src);
	return err;
}

static void flip(struct buf *b, size_t off)
{
	assert_true(off < b->len);
	b->p[off] ^= 0x20;
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
	char *oci_tar, *docker_tar, uri[600], hex[65], name[128], manifest[512], config[2048];
	struct img_tree *t1, *t2;
	struct img_source *s1, *s2;
	uint8_t *b1, *b2;
	size_t len1, len2;
	FILE *f1 = tmpfile(), *f2 = tmpfile();

	(void)state;
	build_oci(&oci, default_config, &layer, 1);
	oci_tar = write_tar(&oci);
	/* docker save (pre-v25): <id>.json config, <dir>/layer.tar, manifest.json. */
	fill_config(default_config, &layer, 1, config, sizeof(config));
	sha256_hex(config, strlen(config), hex);
	snprintf(name, sizeof(name), "%s.json", hex);
	add_member(&docker, name, config, strlen(config));
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
	/* Flip one byte of the tar's padding (still a valid tar, but not the named blob), then
	 * one of the first header's name (a damaged tar: the digest error must win). */
	for (int k = 0; k < 2; k++) {
		f = fopen(path, "r+b");
		assert_non_null(f);
		fseek(f, k ? 0 : (long)layer.len - 1, SEEK_SET);
		fputc(k ? 'b' : 1, f);
		fclose(f);
		assert_int_equal(load(uri, &t, &src, &d), IMAGE_ERR_DIGEST);
		assert_non_null(strstr(d.msg, hex));
		assert_non_null(strstr(d.msg, "layer 1"));
		/* The blob's own digest, not the weaker diff_id check of what it unpacks to. */
		assert_null(strstr(d.msg, "uncompressed"));
		img_tree_free(t);
		img_close(src);
		t = NULL;
		src = NULL;
	}
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
	struct buf both[2] = { layer, layer };
	struct cl_diag d = { "" };
	const char *targets[] = { "../abc/layer.tar", "../../etc/passwd" };
	enum image_error want[] = { IMAGE_OK, IMAGE_ERR_UNSAFE_PATH };
	char config[2048];

	(void)state;
	fill_config(default_config, both, 2, config, sizeof(config));
	for (size_t k = 0; k < 2; k++) {
		struct image img = { 0 };
		struct img_tree *t = NULL;
		struct img_source *src = NULL;
		char *tar, uri[600];
		static const char manifest[] = "[{\"Config\":\"c.json\",\"RepoTags\":null,"
		                               "\"Layers\":[\"abc/layer.tar\",\"def/layer.tar\"]}]";

		add_member(&img, "c.json", config, strlen(config));
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

/* Where @needle starts in @b (it must be there). */
static size_t find(const struct buf *b, const char *needle)
{
	const uint8_t *p = memmem(b->p, b->len, needle, strlen(needle));

	assert_non_null(p);
	return (size_t)(p - b->p);
}

/*
 * docker save output names nothing by digest: the layers are checked against the config's
 * rootfs.diff_ids, as `docker load` does. A flipped byte in a file's data, in a tar header
 * (which libarchive reports as a damaged archive first) or in the trailing padding (which
 * the tar reader never looks at) is refused naming the layer and both digests.
 */
static void test_image_docker_archive_refuses_corrupt_layers(void **state)
{
	static const struct ent l1[] = { { "bin/", 'd', NULL, 0 },
		                         { "bin/app", 'f', "layer one app", 0755 } };
	static const struct ent l2[] = { { "etc/motd", 'f', "layer two data", 0 } };
	struct buf layers[2] = { make_tar(l1, 2, false), make_tar(l2, 1, false) };
	struct cl_diag d = { "" };
	struct buf cpio;
	char *tar;
	size_t where[3];

	(void)state;
	tar = build_docker(default_config, layers, 2, layers, 2, NULL);
	assert_int_equal(load_docker(tar, &cpio, &d), IMAGE_OK);
	assert_non_null(memmem(cpio.p, cpio.len, "layer two data", 14));
	free(cpio.p);
	unlink(tar);
	free(tar);

	where[0] = find(&layers[1], "layer two data") + 6;
	where[1] = find(&layers[1], "etc/motd") + 4;
	where[2] = layers[1].len - 1;
	for (size_t k = 0; k < 3; k++) {
		struct buf bad[2] = { layers[0], layers[1] };
		bad[1].p = malloc(layers[1].len);
		assert_non_null(bad[1].p);
		memcpy(bad[1].p, layers[1].p, layers[1].len);
		flip(&bad[1], where[k]);
		/* The config still lists the good layer's diff_id. */
		tar = build_docker(default_config, layers, 2, bad, 2, NULL);
		memset(&d, 0, sizeof(d));
		assert_int_equal(load_docker(tar, NULL, &d), IMAGE_ERR_DIGEST);
		assert_non_null(strstr(d.msg, "layer 2 ('2/layer.tar')"));
		assert_non_null(strstr(d.msg, layers[1].diff_id + 7));
		assert_non_null(strstr(d.msg, "diff_ids[1]"));
		assert_non_null(strstr(d.msg, "export it again"));
		free(bad[1].p);
		unlink(tar);
		free(tar);
	}
	free(layers[0].p);
	free(layers[1].p);
}

/* The config is the anchor: its bytes must match its "<sha256>.json" name, and it must
 * describe these layers (one diff_id each, the right ones, or none at all is refused). */
static void test_image_docker_archive_refuses_a_config_that_does_not_match(void **state)
{
	static const struct ent l1[] = { { "a", 'f', "one", 0 } };
	static const struct ent l2[] = { { "b", 'f', "two", 0 } };
	static const char no_rootfs[] = "{\"architecture\":\"amd64\",\"os\":\"linux\","
	                                "\"config\":{\"Cmd\":[\"/a\"]}}";
	struct buf layers[2] = { make_tar(l1, 1, false), make_tar(l2, 1, false) };
	struct buf swapped[2] = { layers[1], layers[0] };
	struct cl_diag d = { "" };
	char *tar, config[2048], hex[65], name[128], other[65];
	struct image img = { 0 };
	const char *manifest_fmt = "[{\"Config\":\"%s\",\"Layers\":[\"1/layer.tar\","
	                           "\"2/layer.tar\"]}]";
	char manifest[512];

	(void)state;
	/* diff_ids in the wrong order: layer 1 is checked against layer 2's diff_id. */
	tar = build_docker(default_config, swapped, 2, layers, 2, NULL);
	assert_int_equal(load_docker(tar, NULL, &d), IMAGE_ERR_DIGEST);
	assert_non_null(strstr(d.msg, "layer 1 ('1/layer.tar')"));
	assert_non_null(strstr(d.msg, layers[0].diff_id + 7));
	assert_non_null(strstr(d.msg, layers[1].diff_id + 7));
	unlink(tar);
	free(tar);

	/* One diff_id for two layers. */
	tar = build_docker(default_config, layers, 1, layers, 2, NULL);
	assert_int_equal(load_docker(tar, NULL, &d), IMAGE_ERR_FORMAT);
	assert_non_null(strstr(d.msg, "lists 1 layer diff_ids"));
	assert_non_null(strstr(d.msg, "has 2 layers"));
	unlink(tar);
	free(tar);

	/* No diff_ids: nothing would check "1/layer.tar", so the archive is refused. */
	tar = build_docker(no_rootfs, layers, 2, layers, 2, NULL);
	assert_int_equal(load_docker(tar, NULL, &d), IMAGE_ERR_FORMAT);
	assert_non_null(strstr(d.msg, "no rootfs.diff_ids"));
	assert_non_null(strstr(d.msg, "1/layer.tar"));
	unlink(tar);
	free(tar);

	/* A config under another image's name, and a config edited under its own name. */
	fill_config(default_config, layers, 2, config, sizeof(config));
	sha256_hex(config, strlen(config), hex);
	sha256_hex("another config", 14, other);
	for (int k = 0; k < 2; k++) {
		snprintf(name, sizeof(name), "%s.json", k ? hex : other);
		if (k)
			config[find(&(struct buf){ (uint8_t *)config, strlen(config), "" },
			            "hi there") +
			       1] = 'o';
		add_member(&img, name, config, strlen(config));
		add_member(&img, "1/layer.tar", layers[0].p, layers[0].len);
		add_member(&img, "2/layer.tar", layers[1].p, layers[1].len);
		snprintf(manifest, sizeof(manifest), manifest_fmt, name);
		add_member(&img, "manifest.json", manifest, strlen(manifest));
		tar = write_tar(&img);
		assert_int_equal(load_docker(tar, NULL, &d), IMAGE_ERR_DIGEST);
		assert_non_null(strstr(d.msg, "image config"));
		assert_non_null(strstr(d.msg, name));
		assert_non_null(strstr(d.msg, "export it again"));
		free_image(&img);
		unlink(tar);
		free(tar);
	}

	/* A config name that promises no digest is taken as the anchor (docs/build-enclave.md). */
	tar = build_docker(default_config, layers, 2, layers, 2, "config.json");
	assert_int_equal(load_docker(tar, NULL, &d), IMAGE_OK);
	unlink(tar);
	free(tar);
	free(layers[0].p);
	free(layers[1].p);
}

/* The OCI layout of a gzip layer: the blob matches the manifest, so only the diff_id check
 * can notice a config that describes other layers. Without rootfs the manifest digests are
 * enough, and a good layout gives the same ramdisk as the legacy docker archive. */
static void test_image_oci_layout_checks_uncompressed_layers_against_diff_ids(void **state)
{
	static const struct ent l1[] = { { "app", 'f', "#!/bin/sh\necho app\n", 0755 } };
	static const struct ent l2[] = { { "other", 'f', "something else", 0 } };
	static const char no_rootfs[] = "{\"architecture\":\"amd64\",\"os\":\"linux\","
	                                "\"config\":{\"Cmd\":[\"/app\"]}}";
	struct buf layer = make_tar(l1, 1, true), plain = make_tar(l1, 1, false);
	struct buf wrong = make_tar(l2, 1, false);
	struct buf two[2] = { layer, layer };
	const char *tmpl[] = { default_config, default_config, no_rootfs, default_config };
	const struct buf *ids[] = { &layer, &wrong, &layer, two };
	size_t n_ids[] = { 1, 1, 1, 2 };
	enum image_error want[] = { IMAGE_OK, IMAGE_ERR_DIGEST, IMAGE_OK, IMAGE_ERR_FORMAT };
	struct cl_diag d = { "" };
	struct buf oci_cpio = { 0 }, docker_cpio = { 0 };
	char *tar;

	(void)state;
	assert_string_equal(layer.diff_id, plain.diff_id);
	for (size_t k = 0; k < 4; k++) {
		struct image img = { 0 };
		struct img_tree *t = NULL;
		struct img_source *src = NULL;
		char config[2048], *dir, uri[600];

		fill_config(tmpl[k], ids[k], n_ids[k], config, sizeof(config));
		build_oci(&img, config, &layer, 1);
		dir = write_dir(&img);
		snprintf(uri, sizeof(uri), "oci:%s", dir);
		memset(&d, 0, sizeof(d));
		assert_int_equal(load(uri, &t, &src, &d), want[k]);
		if (k == 0)
			oci_cpio = write_cpio(t);
		if (want[k] == IMAGE_ERR_DIGEST) {
			assert_non_null(strstr(d.msg, "layer 1"));
			assert_non_null(strstr(d.msg, "uncompressed"));
			assert_non_null(strstr(d.msg, layer.diff_id + 7));
			assert_non_null(strstr(d.msg, wrong.diff_id + 7));
		}
		if (want[k] == IMAGE_ERR_FORMAT)
			assert_non_null(strstr(d.msg, "lists 2 layer diff_ids"));
		img_tree_free(t);
		img_close(src);
		free_image(&img);
		rm_rf(dir);
		free(dir);
	}
	tar = build_docker(default_config, &plain, 1, &plain, 1, NULL);
	assert_int_equal(load_docker(tar, &docker_cpio, &d), IMAGE_OK);
	assert_int_equal(oci_cpio.len, docker_cpio.len);
	assert_memory_equal(oci_cpio.p, docker_cpio.p, oci_cpio.len);
	unlink(tar);
	free(tar);
	free(oci_cpio.p);
	free(docker_cpio.p);
	free(layer.p);
	free(plain.p);
	free(wrong.p);
}

/* A layer far larger than any buffer streams through decompression, hashing and the tar
 * reader in one pass, and a flipped byte deep inside it is still found. */
static void test_image_large_gzip_layer_streams_and_verifies(void **state)
{
	size_t size = 24u << 20;
	char *big = malloc(size + 1);
	uint32_t x = 12345;
	struct ent l[1] = { { "big", 'f', NULL, 0 } };
	struct buf layer, plain;
	struct cl_diag d = { "" };
	char *tar;

	(void)state;
	assert_non_null(big);
	/* Printable noise, so gzip cannot shrink it much and strlen() sees no NUL. */
	for (size_t i = 0; i < size; i++) {
		x = x * 1103515245u + 12345u;
		big[i] = (char)('!' + (x >> 16) % 90);
	}
	big[size] = '\0';
	l[0].data = big;
	layer = make_tar(l, 1, true);
	plain = make_tar(l, 1, false);
	tar = build_docker(default_config, &plain, 1, &layer, 1, NULL);
	assert_int_equal(load_docker(tar, NULL, &d), IMAGE_OK);
	unlink(tar);
	free(tar);
	flip(&plain, plain.len / 2);
	tar = build_docker(default_config, &layer, 1, &plain, 1, NULL);
	assert_int_equal(load_docker(tar, NULL, &d), IMAGE_ERR_DIGEST);
	assert_non_null(strstr(d.msg, "layer 1 ('1/layer.tar')"));
	unlink(tar);
	free(tar);
	free(layer.p);
	free(plain.p);
	free(big);
}

static void test_image_config_parses_diff_ids(void **state)
{
	static const char *bad[] = {
		"{\"rootfs\":5}",
		"{\"rootfs\":{\"type\":\"tarballs\",\"diff_ids\":[]}}",
		"{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":\"sha256:00\"}}",
		"{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[7]}}",
		"{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:abc\"]}}",
		"{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha512:aaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]}}",
		"{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:AAAAAAAAAAAAAAAAAAAAAAAAA"
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"]}}",
	};
	static const char good[] =
	        "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:0123456789abcdef0123456"
	        "789abcdef0123456789abcdef0123456789abcdef\",\"sha256:ffffffffffffffffffffffffff"
	        "ffffffffffffffffffffffffffffffffffffff\"]}}";
	static const char none[] = "{\"config\":{\"Cmd\":[\"/a\"]}}";
	struct img_config c;
	struct cl_diag d = { "" };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&d, 0, sizeof(d));
		assert_int_equal(img_config_parse((const uint8_t *)bad[i], strlen(bad[i]), &c, &d),
		                 IMAGE_ERR_FORMAT);
		assert_non_null(strstr(d.msg, "rootfs") ? d.msg : strstr(d.msg, "diff_ids"));
	}
	assert_int_equal(img_config_parse((const uint8_t *)good, strlen(good), &c, &d), IMAGE_OK);
	assert_int_equal(c.n_diff_ids, 2);
	assert_string_equal(c.diff_ids[1], "sha256:ffffffffffffffffffffffffffffffffffffffffffff"
	                                   "ffffffffffffffffffff");
	assert_null(c.diff_ids[2]);
	img_config_free(&c);
	assert_int_equal(img_config_parse((const uint8_t *)none, strlen(none), &c, &d), IMAGE_OK);
	assert_null(c.diff_ids);
	assert_int_equal(c.n_diff_ids, 0);
	img_config_free(&c);
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
		cmocka_unit_test(test_image_docker_archive_refuses_corrupt_layers),
		cmocka_unit_test(test_image_docker_archive_refuses_a_config_that_does_not_match),
		cmocka_unit_test(test_image_oci_layout_checks_uncompressed_layers_against_diff_ids),
		cmocka_unit_test(test_image_large_gzip_layer_streams_and_verifies),
		cmocka_unit_test(test_image_config_parses_diff_ids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
