/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The two EIF ramdisks and the blobs they are made from (image.h, docs/build-enclave.md).
 */
#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <dirent.h>
#include <openssl/evp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/image/image.h"
#include "lib/util/file.h"

/* Nitro's x86_64 cmdline (nitro-compat §2.10) without `nomodules`: the Debian cloud kernel
 * has vsock, virtio-mmio and nsm as modules that cloister-init loads. */
const char img_default_cmdline[] = "reboot=k panic=30 pci=off console=ttyS0 i8042.noaux "
                                   "i8042.nomux i8042.nopnp i8042.dumbkbd random.trust_cpu=on";

/* Load order matters: each module needs the ones before it. */
const char *const img_default_modules[] = {
	"virtio_mmio", "vsock", "vmw_vsock_virtio_transport_common", "vmw_vsock_virtio_transport",
	"nsm",
};
const size_t img_default_modules_count = sizeof(img_default_modules) /
                                         sizeof(img_default_modules[0]);

#define BLOB_TEXT_MAX (1u << 20)
#define BLOB_BIN_MAX (256u << 20)

static char *join_path(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *p = malloc(la + 1 + lb + 1);

	if (p) {
		memcpy(p, a, la);
		p[la] = '/';
		memcpy(p + la + 1, b, lb + 1);
	}
	return p;
}

static bool is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

void img_blobs_free(struct img_blobs *b)
{
	free(b->dir);
	free(b->kernel);
	free(b->kernel_config);
	free(b->init);
	free(b->cmdline);
	if (b->modules)
		for (size_t i = 0; i < b->n_modules; i++)
			free(b->modules[i]);
	free(b->modules);
	memset(b, 0, sizeof(*b));
}

/* nitro-cli's rule (nitro-compat §1.6): line 3 of the config split on ' ', '/', '-'; words 2
 * and 4 ("# Linux/x86 6.12.95 Kernel Configuration" → "Linux", "6.12.95"). */
static enum image_error parse_kernel_config(const char *text, struct img_blobs *b,
                                            struct cl_diag *d)
{
	const char *line = text;
	char buf[256];
	char *words[8] = { 0 };
	size_t n = 0, len;
	char *save = NULL;

	for (int i = 0; i < 2 && line; i++) {
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	if (!line) {
		cl_diag_set(d, "'%s' has fewer than 3 lines; is it a kernel .config?",
		            b->kernel_config);
		return IMAGE_ERR_FORMAT;
	}
	len = strcspn(line, "\n");
	if (len >= sizeof(buf))
		len = sizeof(buf) - 1;
	memcpy(buf, line, len);
	buf[len] = '\0';
	for (char *w = strtok_r(buf, " /-", &save); w && n < 8; w = strtok_r(NULL, " /-", &save))
		words[n++] = w;
	if (n < 4) {
		cl_diag_set(d,
		            "line 3 of '%s' (\"%s\") does not name the kernel version like "
		            "\"# Linux/x86 6.12.95 Kernel Configuration\"",
		            b->kernel_config, line);
		return IMAGE_ERR_FORMAT;
	}
	snprintf(b->os, sizeof(b->os), "%s", words[1]);
	snprintf(b->kernel_version, sizeof(b->kernel_version), "%s", words[3]);
	return IMAGE_OK;
}

static char *trim(char *s)
{
	size_t n;

	while (isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

static enum image_error load_module_list(struct img_blobs *b, const char *list_path,
                                         struct cl_diag *d)
{
	uint8_t *text = NULL;
	size_t len, cap = 0;
	char *save = NULL;
	int rc = cl_file_read_all(list_path, BLOB_TEXT_MAX, &text, &len, d);

	if (rc < 0)
		return IMAGE_ERR_IO;
	for (size_t i = 0; i < len; i++)
		cap += text[i] == '\n';
	b->modules = calloc(cap + 2, sizeof(*b->modules));
	if (!b->modules)
		goto nomem;
	for (char *l = strtok_r((char *)text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		l = trim(l);
		if (!*l || *l == '#')
			continue;
		if (strspn(l, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
		            strlen(l) ||
		    strlen(l) > 64) {
			cl_diag_set(d,
			            "'%s' lists module '%s'; names must be [A-Za-z0-9_-], at most "
			            "64 bytes",
			            list_path, l);
			free(text);
			return IMAGE_ERR_FORMAT;
		}
		b->modules[b->n_modules] = strdup(l);
		if (!b->modules[b->n_modules])
			goto nomem;
		b->n_modules++;
	}
	free(text);
	return IMAGE_OK;
nomem:
	free(text);
	cl_diag_set(d, "out of memory");
	return IMAGE_ERR_NOMEM;
}

enum image_error img_blobs_open(const char *dir, struct img_blobs *b, struct cl_diag *d)
{
	uint8_t *text = NULL;
	size_t len;
	char *p = NULL, *list = NULL, *nsm = NULL;
	enum image_error err;
	struct stat st;

	memset(b, 0, sizeof(*b));
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		cl_diag_set(d,
		            "blobs directory '%s' does not exist; run scripts/make-blobs.sh or "
		            "point NITRO_CLI_BLOBS at one",
		            dir);
		return IMAGE_ERR_NOT_FOUND;
	}
	b->dir = strdup(dir);
	b->kernel = join_path(dir, "bzImage");
	b->kernel_config = join_path(dir, "bzImage.config");
	b->init = join_path(dir, "init");
	p = join_path(dir, "cmdline");
	list = join_path(dir, "modules/load");
	nsm = join_path(dir, "nsm.ko");
	if (!b->dir || !b->kernel || !b->kernel_config || !b->init || !p || !list || !nsm) {
		cl_diag_set(d, "out of memory");
		err = IMAGE_ERR_NOMEM;
		goto fail;
	}
	const char *need[] = { b->kernel, b->kernel_config, b->init, p };
	for (size_t i = 0; i < 4; i++)
		if (!is_file(need[i])) {
			cl_diag_set(d,
			            "blobs directory '%s' has no '%s'; it needs bzImage, "
			            "bzImage.config, cmdline and init (run scripts/make-blobs.sh)",
			            dir, strrchr(need[i], '/') + 1);
			err = IMAGE_ERR_NOT_FOUND;
			goto fail;
		}
	if (cl_file_read_all(p, 4096, &text, &len, d) < 0) {
		err = IMAGE_ERR_IO;
		goto fail;
	}
	b->cmdline = strdup(trim((char *)text));
	free(text);
	text = NULL;
	if (!b->cmdline) {
		err = IMAGE_ERR_NOMEM;
		goto fail;
	}
	if (cl_file_read_all(b->kernel_config, 4u << 20, &text, &len, d) < 0) {
		err = IMAGE_ERR_IO;
		goto fail;
	}
	err = parse_kernel_config((char *)text, b, d);
	free(text);
	if (err)
		goto fail;
	if (is_file(list)) {
		err = load_module_list(b, list, d);
		if (err)
			goto fail;
	} else if (is_file(nsm)) {
		b->nitro_layout = true;
	} else {
		cl_diag_set(d,
		            "blobs directory '%s' has neither modules/load (cloister) nor "
		            "nsm.ko (AWS)",
		            dir);
		err = IMAGE_ERR_NOT_FOUND;
		goto fail;
	}
	free(p);
	free(list);
	free(nsm);
	return IMAGE_OK;
fail:
	free(p);
	free(list);
	free(nsm);
	img_blobs_free(b);
	return err;
}

enum image_error img_bootstrap_build(const struct img_blobs *b, struct img_tree *t,
                                     struct cl_diag *d)
{
	enum image_error err;
	char *text = NULL, *path = NULL;
	size_t len = 0;

	err = img_tree_add_dir(t, "dev", 0755, d);
	if (!err)
		err = img_tree_add_host_file(t, "init", 0755, b->init, d);
	if (err)
		return err;
	if (b->nitro_layout) {
		path = join_path(b->dir, "nsm.ko");
		if (!path)
			return IMAGE_ERR_NOMEM;
		err = img_tree_add_host_file(t, "nsm.ko", 0755, path, d);
		free(path);
		return err;
	}
	err = img_tree_add_dir(t, "modules", 0755, d);
	for (size_t i = 0; !err && i < b->n_modules; i++) {
		char name[80], rel[96];
		char *nl;

		snprintf(name, sizeof(name), "modules/%s.ko", b->modules[i]);
		path = join_path(b->dir, name);
		if (!path) {
			err = IMAGE_ERR_NOMEM;
			break;
		}
		/* A listed module the blobs do not carry is built into the kernel: the list keeps
		 * the name and cloister-init skips the missing file. */
		if (is_file(path)) {
			snprintf(rel, sizeof(rel), "modules/%s.ko", b->modules[i]);
			err = img_tree_add_host_file(t, rel, 0644, path, d);
		}
		free(path);
		nl = realloc(text, len + strlen(b->modules[i]) + 2);
		if (!nl) {
			err = IMAGE_ERR_NOMEM;
			break;
		}
		text = nl;
		len += (size_t)sprintf(text + len, "%s\n", b->modules[i]);
	}
	if (!err)
		err = img_tree_add_file(t, "modules/load", 0644, text ? text : "", len, d);
	free(text);
	return err;
}

/* The bytes of a one-element-per-line file, each line ending in '\n' (malloc'd). */
static enum image_error join_lines(const char *name, char *const *v, size_t n, char **out,
                                   size_t *out_len, struct cl_diag *d)
{
	size_t len = 0, off = 0;
	char *buf;

	for (size_t i = 0; i < n; i++) {
		if (strchr(v[i], '\n')) {
			cl_diag_set(d,
			            "%s entry %zu (\"%.40s\") contains a newline, which the "
			            "one-per-line '%s' file cannot carry",
			            name, i + 1, v[i], name);
			return IMAGE_ERR_FORMAT;
		}
		len += strlen(v[i]) + 1;
	}
	buf = malloc(len ? len : 1);
	if (!buf) {
		cl_diag_set(d, "out of memory");
		return IMAGE_ERR_NOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(v[i]);
		memcpy(buf + off, v[i], l);
		buf[off + l] = '\n';
		off += l + 1;
	}
	*out = buf;
	*out_len = len;
	return IMAGE_OK;
}

static enum image_error lines_file(struct img_tree *t, const char *name, char **v, size_t n,
                                   struct cl_diag *d)
{
	char *buf;
	size_t len;
	enum image_error err = join_lines(name, v, n, &buf, &len, d);

	if (err)
		return err;
	err = img_tree_add_file(t, name, 0644, buf, len, d);
	free(buf);
	return err;
}

/* Must match guest/init/init_parse.h INIT_MEASURE_CHUNK. */
#define MEASURE_CHUNK 4000u

static bool extend_record(EVP_MD_CTX *ctx, uint8_t pcr[48], const char *tag, const char *data,
                          size_t len)
{
	size_t off = 0;

	do {
		size_t n = len - off < MEASURE_CHUNK ? len - off : MEASURE_CHUNK;
		unsigned out = 0;

		if (EVP_DigestInit_ex(ctx, EVP_sha384(), NULL) != 1 ||
		    EVP_DigestUpdate(ctx, pcr, 48) != 1 ||
		    EVP_DigestUpdate(ctx, tag, strlen(tag)) != 1 ||
		    EVP_DigestUpdate(ctx, data + off, n) != 1 ||
		    EVP_DigestFinal_ex(ctx, pcr, &out) != 1)
			return false;
		off += n;
	} while (off < len);
	return true;
}

enum image_error img_measure_launch(const struct img_app *app, bool with_workdir, uint8_t pcr[48],
                                    struct cl_diag *d)
{
	char *cmd = NULL, *env = NULL;
	size_t cmd_len, env_len;
	EVP_MD_CTX *ctx = NULL;
	enum image_error err;

	memset(pcr, 0, 48);
	err = join_lines("cmd", app->argv, app->argc, &cmd, &cmd_len, d);
	if (!err)
		err = join_lines("env", app->env, app->envc, &env, &env_len, d);
	if (err)
		goto out;
	ctx = EVP_MD_CTX_new();
	if (!ctx || !extend_record(ctx, pcr, "cloister:cmd:", cmd, cmd_len) ||
	    !extend_record(ctx, pcr, "cloister:env:", env, env_len) ||
	    (with_workdir && app->workdir && app->workdir[0] &&
	     !extend_record(ctx, pcr, "cloister:workdir:", app->workdir, strlen(app->workdir)))) {
		cl_diag_set(d, "SHA-384 failed computing the launch measurement");
		err = IMAGE_ERR_NOMEM;
	}
out:
	EVP_MD_CTX_free(ctx);
	free(cmd);
	free(env);
	return err;
}

enum image_error img_customer_finish(struct img_tree *t, const struct img_app *app,
                                     bool with_workdir, bool measure, struct cl_diag *d)
{
	static const char *const dirs[] = { "rootfs/dev", "rootfs/run",  "rootfs/sys",
		                            "rootfs/var", "rootfs/proc", "rootfs/tmp" };
	enum image_error err = IMAGE_OK;

	if (app->argc == 0 || !app->argv[0][0]) {
		cl_diag_set(d, "the image has neither Cmd nor Entrypoint; give the command with "
		               "--cmd");
		return IMAGE_ERR_NO_COMMAND;
	}
	if (!img_tree_lookup(t, "rootfs", NULL))
		err = img_tree_add_dir(t, "rootfs", 0755, d);
	for (size_t i = 0; !err && i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		unsigned mode;
		if (img_tree_lookup(t, dirs[i], &mode)) {
			if (!S_ISDIR(mode)) {
				cl_diag_set(d,
				            "/%s in the image is not a directory; the enclave "
				            "mounts a file system there",
				            dirs[i] + 7);
				return IMAGE_ERR_FORMAT;
			}
			continue;
		}
		err = img_tree_add_dir(t, dirs[i], 0755, d);
	}
	for (size_t i = 0; !err && i < app->envc; i++)
		if (!strchr(app->env[i], '=') || app->env[i][0] == '=') {
			cl_diag_set(d, "environment entry \"%.60s\" is not KEY=VALUE", app->env[i]);
			err = IMAGE_ERR_FORMAT;
		}
	if (!err)
		err = lines_file(t, "cmd", app->argv, app->argc, d);
	if (!err)
		err = lines_file(t, "env", app->env, app->envc, d);
	if (!err && with_workdir && app->workdir && app->workdir[0]) {
		char *wd = app->workdir;
		err = lines_file(t, "workdir", &wd, 1, d);
	}
	if (!err && measure)
		err = img_tree_add_file(t, "measure", 0644, "", 0, d);
	return err;
}

enum image_error img_decompress_file(const char *src, const char *dst, struct cl_diag *d)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	enum image_error err = IMAGE_OK;

	if (!a) {
		cl_diag_set(d, "out of memory");
		return IMAGE_ERR_NOMEM;
	}
	/* "raw" hands back the filtered (decompressed) bytes of a file that is no archive. */
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	if (archive_read_open_filename(a, src, 64 * 1024) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK) {
		cl_diag_set(d, "cannot read '%s': %s", src, archive_error_string(a));
		err = IMAGE_ERR_ARCHIVE;
		goto out;
	}
	for (;;) {
		la_ssize_t n;
		if (cap - len < 64 * 1024) {
			uint8_t *nb;
			if (cap >= BLOB_BIN_MAX) {
				cl_diag_set(d, "'%s' decompresses to more than %u MiB", src,
				            BLOB_BIN_MAX >> 20);
				err = IMAGE_ERR_FORMAT;
				goto out;
			}
			nb = realloc(buf, cap ? cap * 2 : 1 << 20);
			if (!nb) {
				cl_diag_set(d, "out of memory");
				err = IMAGE_ERR_NOMEM;
				goto out;
			}
			buf = nb;
			cap = cap ? cap * 2 : 1 << 20;
		}
		n = archive_read_data(a, buf + len, cap - len);
		if (n < 0) {
			cl_diag_set(d, "decompressing '%s': %s", src, archive_error_string(a));
			err = IMAGE_ERR_ARCHIVE;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (cl_file_write_atomic(dst, buf, len, 0644, d) < 0)
		err = IMAGE_ERR_IO;
out:
	archive_read_free(a);
	free(buf);
	return err;
}

static enum image_error copy_file(const char *src, const char *dst, unsigned mode,
                                  struct cl_diag *d)
{
	uint8_t *buf = NULL;
	size_t len;
	enum image_error err = IMAGE_OK;

	if (cl_file_read_all(src, BLOB_BIN_MAX, &buf, &len, d) < 0)
		return IMAGE_ERR_IO;
	if (cl_file_write_atomic(dst, buf, len, mode, d) < 0)
		err = IMAGE_ERR_IO;
	free(buf);
	return err;
}

/* Depth-first search for <name>.ko[.xz|.zst|.gz] below @dir; @out receives the path. */
static bool find_module(const char *dir, const char *name, char *out, size_t cap, int depth)
{
	DIR *dh;
	struct dirent *de;
	bool found = false;
	size_t nl = strlen(name);

	if (depth > 16 || !(dh = opendir(dir)))
		return false;
	while (!found && (de = readdir(dh))) {
		const char *n = de->d_name;
		char sub[4096];
		struct stat st;

		if (n[0] == '.')
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", dir, n) >= (int)sizeof(sub))
			continue;
		if (lstat(sub, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			found = find_module(sub, name, out, cap, depth + 1);
		} else if (S_ISREG(st.st_mode) && !strncmp(n, name, nl) &&
		           (!strcmp(n + nl, ".ko") || !strcmp(n + nl, ".ko.xz") ||
		            !strcmp(n + nl, ".ko.zst") || !strcmp(n + nl, ".ko.gz"))) {
			snprintf(out, cap, "%s", sub);
			found = true;
		}
	}
	closedir(dh);
	return found;
}

enum image_error img_blobs_assemble(const char *kernel_root, const char *init,
                                    const char *const *modules, size_t n_modules,
                                    const char *out_dir, char **release, struct cl_diag *d)
{
	char boot[4096], path[4096 + 512], dst[4096], rel[256] = "";
	DIR *dh;
	struct dirent *de;
	enum image_error err;
	char *list = NULL;
	size_t list_len = 0;
	int found = 0;

	snprintf(boot, sizeof(boot), "%s/boot", kernel_root);
	dh = opendir(boot);
	if (!dh) {
		cl_diag_set(d,
		            "'%s' has no boot/ directory; expected an unpacked kernel package "
		            "(scripts/fetch-kernel.sh enclave)",
		            kernel_root);
		return IMAGE_ERR_NOT_FOUND;
	}
	while ((de = readdir(dh)))
		if (!strncmp(de->d_name, "vmlinuz-", 8)) {
			snprintf(rel, sizeof(rel), "%s", de->d_name + 8);
			found++;
		}
	closedir(dh);
	if (found != 1) {
		cl_diag_set(d, "'%s' holds %d vmlinuz-* kernels; expected exactly one", boot,
		            found);
		return IMAGE_ERR_NOT_FOUND;
	}
	if (mkdir(out_dir, 0755) < 0 && errno != EEXIST) {
		cl_diag_set(d, "cannot create '%s': %s", out_dir, strerror(errno));
		return IMAGE_ERR_IO;
	}
	snprintf(dst, sizeof(dst), "%s/modules", out_dir);
	if (mkdir(dst, 0755) < 0 && errno != EEXIST) {
		cl_diag_set(d, "cannot create '%s': %s", dst, strerror(errno));
		return IMAGE_ERR_IO;
	}
	snprintf(path, sizeof(path), "%s/vmlinuz-%s", boot, rel);
	snprintf(dst, sizeof(dst), "%s/bzImage", out_dir);
	err = copy_file(path, dst, 0644, d);
	if (err)
		return err;
	snprintf(path, sizeof(path), "%s/config-%s", boot, rel);
	snprintf(dst, sizeof(dst), "%s/bzImage.config", out_dir);
	err = copy_file(path, dst, 0644, d);
	if (err)
		return err;
	snprintf(dst, sizeof(dst), "%s/init", out_dir);
	err = copy_file(init, dst, 0755, d);
	if (err)
		return err;
	snprintf(dst, sizeof(dst), "%s/cmdline", out_dir);
	snprintf(path, sizeof(path), "%s\n", img_default_cmdline);
	if (cl_file_write_atomic(dst, path, strlen(path), 0644, d) < 0)
		return IMAGE_ERR_IO;

	snprintf(boot, sizeof(boot), "%s/lib/modules/%s/kernel", kernel_root, rel);
	for (size_t i = 0; i < n_modules; i++) {
		char *nl;

		if (find_module(boot, modules[i], path, sizeof(path), 0)) {
			snprintf(dst, sizeof(dst), "%s/modules/%s.ko", out_dir, modules[i]);
			err = img_decompress_file(path, dst, d);
			if (err)
				goto out;
		}
		nl = realloc(list, list_len + strlen(modules[i]) + 2);
		if (!nl) {
			err = IMAGE_ERR_NOMEM;
			goto out;
		}
		list = nl;
		list_len += (size_t)sprintf(list + list_len, "%s\n", modules[i]);
	}
	snprintf(dst, sizeof(dst), "%s/modules/load", out_dir);
	if (cl_file_write_atomic(dst, list ? list : "", list_len, 0644, d) < 0) {
		err = IMAGE_ERR_IO;
		goto out;
	}
	if (release) {
		*release = strdup(rel);
		if (!*release)
			err = IMAGE_ERR_NOMEM;
	}
out:
	free(list);
	return err;
}
