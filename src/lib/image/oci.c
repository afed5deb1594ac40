/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading container images without a daemon (image.h): OCI image layouts, their tar form
 * (oci-archive) and `docker save` archives. JSON documents are read whole (they are small and
 * bounded); layers are streamed from the layout directory or straight out of the outer tar into
 * libarchive, which undoes gzip/zstd, and on into the in-memory tree. Every blob named by a
 * digest is hashed while it streams and refused if the digest does not match; so is every
 * layer whose uncompressed tar does not match the config's rootfs.diff_ids, which is all that
 * vouches for the layers of a `docker save` archive (docs/build-enclave.md, "What is
 * verified").
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <json.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/image/image.h"

#define JSON_MAX (16u << 20)
#define RAW_CHUNK (128 * 1024)
#define REF_ANNOTATION "org.opencontainers.image.ref.name"

enum src_kind { SRC_DIR, SRC_ARCHIVE };

struct img_source {
	enum src_kind kind;
	char *path; /* layout directory or archive file */
	struct img_config config;
	char *config_json;
	char image_id[7 + 64 + 1];
	char *name;
	struct img_manifest manifest;
	bool layers_by_digest; /* layer names are digests (OCI) rather than member paths */
};

/* ---- JSON helpers ----------------------------------------------------------------------- */

static struct json_object *parse_json(const uint8_t *buf, size_t len, const char *what,
                                      struct cl_diag *d)
{
	struct json_tokener *tok;
	struct json_object *o;

	if (len > JSON_MAX || len > INT32_MAX) {
		cl_diag_set(d, "%s is %zu bytes; refusing JSON over %u bytes", what, len, JSON_MAX);
		return NULL;
	}
	tok = json_tokener_new();
	if (!tok) {
		cl_diag_set(d, "out of memory");
		return NULL;
	}
	o = json_tokener_parse_ex(tok, (const char *)buf, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) < len) {
		/* Allow trailing whitespace (a final newline), nothing else. */
		size_t end = json_tokener_get_parse_end(tok);
		bool ws_only = o && json_tokener_get_error(tok) == json_tokener_success;
		for (size_t i = end; ws_only && i < len; i++)
			if (buf[i] != ' ' && buf[i] != '\n' && buf[i] != '\r' && buf[i] != '\t')
				ws_only = false;
		if (!ws_only) {
			enum json_tokener_error je = json_tokener_get_error(tok);
			cl_diag_set(d, "%s is not valid JSON (%s at byte %zu)", what,
			            o                             ? "trailing data"
			            : je == json_tokener_continue ? "it ends early"
			                                          : json_tokener_error_desc(je),
			            end);
			json_object_put(o);
			o = NULL;
		}
	}
	json_tokener_free(tok);
	return o;
}

/* Member @key of object @o with type @type, or NULL (also when @o is not an object). */
static struct json_object *get(struct json_object *o, const char *key, enum json_type type)
{
	struct json_object *v;

	if (!o || !json_object_is_type(o, json_type_object))
		return NULL;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
		return NULL;
	return v;
}

static bool has_key(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, key, &v) &&
	       !json_object_is_type(v, json_type_null);
}

/* A JSON string as a C string, refusing embedded NULs. */
static const char *str_of(struct json_object *v)
{
	const char *s;

	if (!v || !json_object_is_type(v, json_type_string))
		return NULL;
	s = json_object_get_string(v);
	if (strlen(s) != (size_t)json_object_get_string_len(v))
		return NULL;
	return s;
}

static void free_strv(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* A JSON array of strings (or null / absent) into a NULL-terminated vector. */
static enum image_error strv_of(struct json_object *parent, const char *key, char ***out, size_t *n,
                                struct cl_diag *d)
{
	struct json_object *v;
	size_t len;

	*out = NULL;
	*n = 0;
	if (!parent || !json_object_object_get_ex(parent, key, &v) ||
	    json_object_is_type(v, json_type_null))
		return IMAGE_OK;
	if (!json_object_is_type(v, json_type_array)) {
		cl_diag_set(d, "image config: \"%s\" is not an array of strings", key);
		return IMAGE_ERR_FORMAT;
	}
	len = json_object_array_length(v);
	*out = calloc(len + 1, sizeof(**out));
	if (!*out) {
		cl_diag_set(d, "out of memory");
		return IMAGE_ERR_NOMEM;
	}
	for (size_t i = 0; i < len; i++) {
		const char *s = str_of(json_object_array_get_idx(v, i));
		if (!s) {
			cl_diag_set(d, "image config: \"%s\"[%zu] is not a string (or holds a NUL)",
			            key, i);
			free_strv(*out);
			*out = NULL;
			return IMAGE_ERR_FORMAT;
		}
		(*out)[i] = strdup(s);
		if (!(*out)[i]) {
			free_strv(*out);
			*out = NULL;
			cl_diag_set(d, "out of memory");
			return IMAGE_ERR_NOMEM;
		}
	}
	*n = len;
	return IMAGE_OK;
}

static enum image_error dup_str(struct json_object *parent, const char *key, char **out,
                                struct cl_diag *d)
{
	struct json_object *v;
	const char *s;

	*out = NULL;
	if (!parent || !json_object_object_get_ex(parent, key, &v) ||
	    json_object_is_type(v, json_type_null))
		return IMAGE_OK;
	s = str_of(v);
	if (!s) {
		cl_diag_set(d, "image config: \"%s\" is not a string", key);
		return IMAGE_ERR_FORMAT;
	}
	*out = strdup(s);
	if (!*out) {
		cl_diag_set(d, "out of memory");
		return IMAGE_ERR_NOMEM;
	}
	return IMAGE_OK;
}

/* "sha256:" and 64 lower-case hex digits: the only digest form images use in practice. */
static bool digest_ok(const char *s)
{
	if (strncmp(s, "sha256:", 7) || strlen(s) != 7 + 64)
		return false;
	for (size_t i = 7; i < 7 + 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* ---- config ---------------------------------------------------------------------------- */

void img_config_free(struct img_config *c)
{
	free_strv(c->entrypoint);
	free_strv(c->cmd);
	free_strv(c->env);
	free(c->workdir);
	free(c->architecture);
	free(c->os);
	free_strv(c->diff_ids);
	memset(c, 0, sizeof(*c));
}

/*
 * rootfs: {"type": "layers", "diff_ids": ["sha256:<hex>", ...]}. docker, podman, buildah,
 * skopeo and umoci always write it (the OCI image-spec requires it); a config without it is
 * still parsed, and the image reader decides whether the layers can be verified without.
 */
static enum image_error parse_rootfs(struct json_object *root, struct img_config *c,
                                     struct cl_diag *d)
{
	struct json_object *rootfs = get(root, "rootfs", json_type_object);
	const char *type;
	enum image_error err;

	if (!rootfs) {
		if (!has_key(root, "rootfs"))
			return IMAGE_OK;
		cl_diag_set(d, "image config: \"rootfs\" is not an object");
		return IMAGE_ERR_FORMAT;
	}
	type = str_of(get(rootfs, "type", json_type_string));
	if (has_key(rootfs, "type") && (!type || strcmp(type, "layers"))) {
		cl_diag_set(d, "image config: rootfs.type is '%s', not \"layers\"",
		            type ? type : "(not a string)");
		return IMAGE_ERR_FORMAT;
	}
	err = strv_of(rootfs, "diff_ids", &c->diff_ids, &c->n_diff_ids, d);
	if (err)
		return err;
	for (size_t i = 0; i < c->n_diff_ids; i++) {
		if (!digest_ok(c->diff_ids[i])) {
			cl_diag_set(d,
			            "image config: rootfs.diff_ids[%zu] '%.80s' is not "
			            "\"sha256:\" and 64 lower-case hex digits",
			            i, c->diff_ids[i]);
			return IMAGE_ERR_FORMAT;
		}
	}
	return IMAGE_OK;
}

enum image_error img_config_parse(const uint8_t *json, size_t len, struct img_config *c,
                                  struct cl_diag *d)
{
	struct json_object *root, *cfg = NULL;
	enum image_error err;

	memset(c, 0, sizeof(*c));
	root = parse_json(json, len, "image config", d);
	if (!root)
		return IMAGE_ERR_FORMAT;
	if (!json_object_is_type(root, json_type_object)) {
		cl_diag_set(d, "image config is not a JSON object");
		err = IMAGE_ERR_FORMAT;
		goto out;
	}
	err = dup_str(root, "architecture", &c->architecture, d);
	if (!err)
		err = dup_str(root, "os", &c->os, d);
	if (err)
		goto out;
	/* OCI calls it "config"; docker inspect output calls it "Config". */
	cfg = get(root, "config", json_type_object);
	if (!cfg)
		cfg = get(root, "Config", json_type_object);
	if (!cfg && (has_key(root, "config") || has_key(root, "Config"))) {
		cl_diag_set(d, "image config: \"config\" is not an object");
		err = IMAGE_ERR_FORMAT;
		goto out;
	}
	err = strv_of(cfg, "Entrypoint", &c->entrypoint, &c->n_entrypoint, d);
	if (!err)
		err = strv_of(cfg, "Cmd", &c->cmd, &c->n_cmd, d);
	if (!err)
		err = strv_of(cfg, "Env", &c->env, &c->n_env, d);
	if (!err)
		err = dup_str(cfg, "WorkingDir", &c->workdir, d);
	if (!err)
		err = parse_rootfs(root, c, d);
out:
	if (err)
		img_config_free(c);
	json_object_put(root);
	return err;
}

enum image_error img_config_app(const struct img_config *c, struct img_app *app, bool *both_set,
                                struct cl_diag *d)
{
	memset(app, 0, sizeof(*app));
	*both_set = c->n_cmd > 0 && c->n_entrypoint > 0;
	if (c->n_cmd > 0) {
		app->argv = c->cmd;
		app->argc = c->n_cmd;
	} else if (c->n_entrypoint > 0) {
		app->argv = c->entrypoint;
		app->argc = c->n_entrypoint;
	} else {
		cl_diag_set(d, "the image config has neither Cmd nor Entrypoint, so there is "
		               "nothing to run; rebuild the image with CMD [\"/path/to/app\"]");
		return IMAGE_ERR_NO_COMMAND;
	}
	app->env = c->env;
	app->envc = c->n_env;
	app->workdir = c->workdir;
	return IMAGE_OK;
}

/* ---- index and manifests -------------------------------------------------------------- */

static bool is_index_type(const char *mt)
{
	return mt && (!strcmp(mt, "application/vnd.oci.image.index.v1+json") ||
	              !strcmp(mt, "application/vnd.docker.distribution.manifest.list.v2+json"));
}

static bool platform_is(struct json_object *entry, const char *os, const char *arch)
{
	struct json_object *p = get(entry, "platform", json_type_object);
	const char *o = str_of(get(p, "os", json_type_string));
	const char *a = str_of(get(p, "architecture", json_type_string));

	return o && a && !strcmp(o, os) && !strcmp(a, arch);
}

static bool ref_matches(struct json_object *entry, const char *ref)
{
	struct json_object *ann = get(entry, "annotations", json_type_object);
	const char *name = str_of(get(ann, REF_ANNOTATION, json_type_string));
	size_t nl, rl;

	if (!name)
		return false;
	if (!strcmp(name, ref))
		return true;
	/* "docker.io/library/hello:latest" is selected by "latest" or "hello:latest". */
	nl = strlen(name);
	rl = strlen(ref);
	return nl > rl && !strcmp(name + nl - rl, ref) &&
	       (name[nl - rl - 1] == ':' || name[nl - rl - 1] == '/');
}

enum image_error img_index_select(const uint8_t *json, size_t len, const char *ref, char **digest,
                                  bool *is_index, struct cl_diag *d)
{
	struct json_object *root, *list, *chosen = NULL;
	enum image_error err = IMAGE_OK;
	size_t n, n_amd64 = 0, n_arm64 = 0;
	const char *dg, *mt;

	*digest = NULL;
	*is_index = false;
	root = parse_json(json, len, "image index", d);
	if (!root)
		return IMAGE_ERR_FORMAT;
	list = get(root, "manifests", json_type_array);
	if (!list) {
		cl_diag_set(d, "image index has no \"manifests\" array");
		err = IMAGE_ERR_FORMAT;
		goto out;
	}
	n = json_object_array_length(list);
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(list, i);
		if (ref && ref_matches(e, ref) && !chosen)
			chosen = e;
		if (platform_is(e, "linux", "amd64")) {
			n_amd64++;
			if (!ref && !chosen)
				chosen = e;
		}
		if (platform_is(e, "linux", "arm64"))
			n_arm64++;
	}
	if (ref && !chosen) {
		cl_diag_set(d,
		            "no image tagged '%s' in the index (%zu entries); check the name "
		            "after the last ':'",
		            ref, n);
		err = IMAGE_ERR_NOT_FOUND;
		goto out;
	}
	if (!chosen && n == 1)
		chosen = json_object_array_get_idx(list, 0);
	if (!chosen) {
		if (n_arm64 && !n_amd64)
			cl_diag_set(d, "the image is built for arm64 only; cloister builds amd64 "
			               "enclaves for now (build the image with --platform "
			               "linux/amd64)");
		else
			cl_diag_set(d,
			            "the index holds %zu images and none is linux/amd64; name "
			            "one with PATH:TAG",
			            n);
		err = n_arm64 && !n_amd64 ? IMAGE_ERR_UNSUPPORTED : IMAGE_ERR_NOT_FOUND;
		goto out;
	}
	dg = str_of(get(chosen, "digest", json_type_string));
	mt = str_of(get(chosen, "mediaType", json_type_string));
	if (!dg || !digest_ok(dg)) {
		cl_diag_set(d, "image index entry has a missing or non-sha256 digest ('%s')",
		            dg ? dg : "");
		err = IMAGE_ERR_FORMAT;
		goto out;
	}
	*is_index = is_index_type(mt);
	*digest = strdup(dg);
	if (!*digest)
		err = IMAGE_ERR_NOMEM;
out:
	json_object_put(root);
	return err;
}

void img_manifest_free(struct img_manifest *m)
{
	free(m->config);
	free_strv(m->layers);
	memset(m, 0, sizeof(*m));
}

static enum image_error add_layer(struct img_manifest *m, const char *name, struct cl_diag *d)
{
	char **nl = realloc(m->layers, (m->n_layers + 2) * sizeof(*nl));

	if (!nl) {
		cl_diag_set(d, "out of memory");
		return IMAGE_ERR_NOMEM;
	}
	m->layers = nl;
	m->layers[m->n_layers] = strdup(name);
	if (!m->layers[m->n_layers]) {
		cl_diag_set(d, "out of memory");
		return IMAGE_ERR_NOMEM;
	}
	m->layers[++m->n_layers] = NULL;
	return IMAGE_OK;
}

enum image_error img_manifest_parse(const uint8_t *json, size_t len, struct img_manifest *m,
                                    struct cl_diag *d)
{
	struct json_object *root, *cfg, *layers;
	enum image_error err = IMAGE_OK;
	const char *dg, *mt;
	size_t n;

	memset(m, 0, sizeof(*m));
	root = parse_json(json, len, "image manifest", d);
	if (!root)
		return IMAGE_ERR_FORMAT;
	mt = str_of(get(root, "mediaType", json_type_string));
	if (is_index_type(mt)) {
		cl_diag_set(d, "expected an image manifest, found an index ('%s')", mt);
		err = IMAGE_ERR_FORMAT;
		goto out;
	}
	cfg = get(root, "config", json_type_object);
	dg = str_of(get(cfg, "digest", json_type_string));
	if (!dg || !digest_ok(dg)) {
		cl_diag_set(d, "image manifest has no sha256 config digest");
		err = IMAGE_ERR_FORMAT;
		goto out;
	}
	m->config = strdup(dg);
	layers = get(root, "layers", json_type_array);
	if (!m->config || !layers) {
		cl_diag_set(d,
		            m->config ? "image manifest has no \"layers\" array" : "out of memory");
		err = m->config ? IMAGE_ERR_FORMAT : IMAGE_ERR_NOMEM;
		goto out;
	}
	n = json_object_array_length(layers);
	for (size_t i = 0; i < n && !err; i++) {
		struct json_object *l = json_object_array_get_idx(layers, i);
		const char *lmt = str_of(get(l, "mediaType", json_type_string));
		dg = str_of(get(l, "digest", json_type_string));
		if (!dg || !digest_ok(dg)) {
			cl_diag_set(d, "layer %zu of the manifest has no sha256 digest", i + 1);
			err = IMAGE_ERR_FORMAT;
		} else if (lmt && !strstr(lmt, "tar")) {
			cl_diag_set(d, "layer %zu has media type '%s', which is not a tar layer",
			            i + 1, lmt);
			err = IMAGE_ERR_UNSUPPORTED;
		} else {
			err = add_layer(m, dg, d);
		}
	}
out:
	if (err)
		img_manifest_free(m);
	json_object_put(root);
	return err;
}

/* Member paths in docker-archive must stay inside the archive's namespace. */
static bool member_ok(const char *s)
{
	char norm[1024];

	return s && *s && s[0] != '/' &&
	       img_path_normalize(s, norm, sizeof(norm), NULL) == IMAGE_OK && norm[0];
}

enum image_error img_docker_manifest_parse(const uint8_t *json, size_t len, const char *ref,
                                           struct img_manifest *m, char **repo_tag,
                                           struct cl_diag *d)
{
	struct json_object *root, *chosen = NULL, *layers;
	enum image_error err = IMAGE_OK;
	const char *cfg, *tag = NULL;
	size_t n;

	memset(m, 0, sizeof(*m));
	*repo_tag = NULL;
	root = parse_json(json, len, "manifest.json", d);
	if (!root)
		return IMAGE_ERR_FORMAT;
	if (!json_object_is_type(root, json_type_array) || json_object_array_length(root) == 0) {
		cl_diag_set(d, "manifest.json is not a non-empty array");
		err = IMAGE_ERR_FORMAT;
		goto out;
	}
	n = json_object_array_length(root);
	for (size_t i = 0; i < n && !chosen; i++) {
		struct json_object *e = json_object_array_get_idx(root, i);
		struct json_object *tags = get(e, "RepoTags", json_type_array);
		size_t nt = tags ? json_object_array_length(tags) : 0;
		for (size_t j = 0; j < nt && !chosen; j++) {
			const char *t = str_of(json_object_array_get_idx(tags, j));
			size_t tl = t ? strlen(t) : 0, rl = ref ? strlen(ref) : 0;
			if (!t)
				continue;
			if (!ref || !strcmp(t, ref) ||
			    (tl > rl && !strcmp(t + tl - rl, ref) &&
			     (t[tl - rl - 1] == ':' || t[tl - rl - 1] == '/'))) {
				if (!ref && n > 1)
					break;
				chosen = e;
				tag = t;
			}
		}
	}
	if (!chosen && !ref && n == 1)
		chosen = json_object_array_get_idx(root, 0);
	if (!chosen) {
		if (ref)
			cl_diag_set(d, "no image tagged '%s' in manifest.json", ref);
		else
			cl_diag_set(d, "the archive holds %zu images; name one with PATH:NAME:TAG",
			            n);
		err = IMAGE_ERR_NOT_FOUND;
		goto out;
	}
	cfg = str_of(get(chosen, "Config", json_type_string));
	layers = get(chosen, "Layers", json_type_array);
	if (!member_ok(cfg) || !layers) {
		cl_diag_set(d, "manifest.json entry lacks a safe \"Config\" path or \"Layers\"");
		err = IMAGE_ERR_FORMAT;
		goto out;
	}
	m->config = strdup(cfg);
	if (!m->config) {
		err = IMAGE_ERR_NOMEM;
		goto out;
	}
	n = json_object_array_length(layers);
	for (size_t i = 0; i < n && !err; i++) {
		const char *l = str_of(json_object_array_get_idx(layers, i));
		if (!member_ok(l)) {
			cl_diag_set(d,
			            "manifest.json layer %zu is not a safe path inside the archive",
			            i + 1);
			err = IMAGE_ERR_UNSAFE_PATH;
		} else {
			err = add_layer(m, l, d);
		}
	}
	if (!err && tag) {
		*repo_tag = strdup(tag);
		if (!*repo_tag)
			err = IMAGE_ERR_NOMEM;
	}
out:
	if (err)
		img_manifest_free(m);
	json_object_put(root);
	return err;
}

/* ---- blob access ---------------------------------------------------------------------- */

/* A byte stream being read and hashed: a layout file or a member of the outer archive. */
struct raw {
	int fd;
	struct archive *outer;
	EVP_MD_CTX *md;
	uint8_t *buf;
	bool failed;
	char err[160];
};

static la_ssize_t raw_read(struct archive *a, void *opaque, const void **out)
{
	struct raw *r = opaque;
	la_ssize_t n;

	(void)a;
	if (r->outer) {
		n = archive_read_data(r->outer, r->buf, RAW_CHUNK);
		if (n < 0)
			snprintf(r->err, sizeof(r->err), "%s", archive_error_string(r->outer));
	} else {
		do
			n = read(r->fd, r->buf, RAW_CHUNK);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			snprintf(r->err, sizeof(r->err), "%s", strerror(errno));
	}
	if (n < 0) {
		r->failed = true;
		return -1;
	}
	if (n > 0 && r->md)
		EVP_DigestUpdate(r->md, r->buf, (size_t)n);
	*out = r->buf;
	return n;
}

/* Finish hashing (reading whatever the consumer left) and compare with @digest. */
static enum image_error raw_verify(struct raw *r, const char *digest, const char *what,
                                   struct cl_diag *d)
{
	const void *p;
	uint8_t md[EVP_MAX_MD_SIZE];
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	unsigned mdlen = 0;
	la_ssize_t n;

	if (!r->md)
		return IMAGE_OK;
	while ((n = raw_read(NULL, r, &p)) > 0)
		;
	if (n < 0) {
		cl_diag_set(d, "reading %s: %s", what, r->err);
		return IMAGE_ERR_IO;
	}
	EVP_DigestFinal_ex(r->md, md, &mdlen);
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	if (strcmp(hex, digest + 7)) {
		cl_diag_set(d,
		            "%s is corrupt: its sha256 is %s, the image says %s; the image was "
		            "damaged or changed after export, so export it again",
		            what, hex, digest + 7);
		return IMAGE_ERR_DIGEST;
	}
	return IMAGE_OK;
}

static void raw_close(struct raw *r)
{
	if (r->outer)
		archive_read_free(r->outer);
	if (r->fd >= 0)
		close(r->fd);
	EVP_MD_CTX_free(r->md);
	free(r->buf);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

/* The member name for blob @name (digest or path) inside the layout / archive. */
static void blob_member(const char *name, bool by_digest, char *out, size_t cap)
{
	if (by_digest)
		snprintf(out, cap, "blobs/sha256/%s", name + 7);
	else
		snprintf(out, cap, "%s", name);
}

/* Replace @path (a member name) by where its symlink @target points, relative to @path's
 * directory, resolving "." and ".." lexically. False if it climbs above the archive root. */
static bool resolve_member_link(char *path, const char *target, size_t cap)
{
	char buf[2048];
	char *parts[256];
	size_t n = 0, o = 0;
	char *save = NULL, *slash = strrchr(path, '/');

	if (target[0] == '/')
		snprintf(buf, sizeof(buf), "%s", target);
	else if (slash)
		snprintf(buf, sizeof(buf), "%.*s/%s", (int)(slash - path), path, target);
	else
		snprintf(buf, sizeof(buf), "%s", target);
	for (char *t = strtok_r(buf, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (!strcmp(t, "."))
			continue;
		if (!strcmp(t, "..")) {
			if (n == 0)
				return false;
			n--;
			continue;
		}
		if (n == 256)
			return false;
		parts[n++] = t;
	}
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(path + o, cap - o, "%s%s", i ? "/" : "", parts[i]);
		if (w < 0 || (size_t)w >= cap - o)
			return false;
		o += (size_t)w;
	}
	return true;
}

/* Open blob @name for reading; @digest (may be NULL) turns on hashing. */
static enum image_error raw_open(const struct img_source *s, const char *name, bool by_digest,
                                 const char *digest, struct raw *r, struct cl_diag *d)
{
	char member[1024], want[1024];
	struct archive_entry *e;
	int rc;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->buf = malloc(RAW_CHUNK);
	if (!r->buf)
		goto nomem;
	if (digest) {
		r->md = EVP_MD_CTX_new();
		if (!r->md || EVP_DigestInit_ex(r->md, EVP_sha256(), NULL) != 1)
			goto nomem;
	}
	blob_member(name, by_digest, member, sizeof(member));
	if (s->kind == SRC_DIR) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", s->path, member);
		r->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (r->fd < 0) {
			cl_diag_set(d, "blob '%s' is missing from the image layout: %s", path,
			            strerror(errno));
			raw_close(r);
			return IMAGE_ERR_NOT_FOUND;
		}
		return IMAGE_OK;
	}
	if (img_path_normalize(member, want, sizeof(want), d) != IMAGE_OK) {
		raw_close(r);
		return IMAGE_ERR_UNSAFE_PATH;
	}
	/* docker save (before v25) stores a repeated layer once and links the others to it
	 * ("<id>/layer.tar -> ../<other>/layer.tar"): follow a few such links inside the tar. */
	for (int hop = 0; hop < 8; hop++) {
		char link[1024] = "";

		r->outer = archive_read_new();
		if (!r->outer)
			goto nomem;
		archive_read_support_filter_all(r->outer);
		archive_read_support_format_tar(r->outer);
		if (archive_read_open_filename(r->outer, s->path, RAW_CHUNK) != ARCHIVE_OK) {
			cl_diag_set(d, "cannot read '%s': %s", s->path,
			            archive_error_string(r->outer));
			raw_close(r);
			return IMAGE_ERR_ARCHIVE;
		}
		/* Tar has no index: walk the headers (libarchive skips the data by seeking). */
		while ((rc = archive_read_next_header(r->outer, &e)) == ARCHIVE_OK ||
		       rc == ARCHIVE_WARN) {
			char got[1024];
			const char *pn = archive_entry_pathname(e);
			if (!pn || img_path_normalize(pn, got, sizeof(got), NULL) != IMAGE_OK ||
			    strcmp(got, want))
				continue;
			if (archive_entry_filetype(e) == AE_IFREG)
				return IMAGE_OK;
			if (archive_entry_filetype(e) == AE_IFLNK && archive_entry_symlink(e)) {
				snprintf(link, sizeof(link), "%s", archive_entry_symlink(e));
				break;
			}
		}
		if (!link[0]) {
			if (rc != ARCHIVE_EOF && rc != ARCHIVE_OK)
				cl_diag_set(d, "reading '%s': %s", s->path,
				            archive_error_string(r->outer));
			else
				cl_diag_set(d, "'%s' is missing from the archive '%s'", want,
				            s->path);
			raw_close(r);
			return rc == ARCHIVE_EOF || rc == ARCHIVE_OK ? IMAGE_ERR_NOT_FOUND
			                                             : IMAGE_ERR_ARCHIVE;
		}
		archive_read_free(r->outer);
		r->outer = NULL;
		if (!resolve_member_link(want, link, sizeof(want))) {
			cl_diag_set(d, "'%s' in '%s' links outside the archive ('%s')", want,
			            s->path, link);
			raw_close(r);
			return IMAGE_ERR_UNSAFE_PATH;
		}
	}
	cl_diag_set(d, "'%s' in '%s' is behind more than 8 links", want, s->path);
	raw_close(r);
	return IMAGE_ERR_UNSAFE_PATH;
nomem:
	raw_close(r);
	cl_diag_set(d, "out of memory");
	return IMAGE_ERR_NOMEM;
}

/* Read a whole (JSON) blob, verified against @digest when given. */
static enum image_error read_blob(const struct img_source *s, const char *name, bool by_digest,
                                  const char *digest, uint8_t **out, size_t *len, struct cl_diag *d)
{
	struct raw r;
	uint8_t *buf = NULL;
	size_t n = 0;
	enum image_error err = raw_open(s, name, by_digest, digest, &r, d);
	const void *p;
	la_ssize_t got;

	if (err)
		return err;
	while ((got = raw_read(NULL, &r, &p)) > 0) {
		uint8_t *nb;
		if (n + (size_t)got > JSON_MAX) {
			cl_diag_set(d, "'%s' is larger than %u bytes; not an image JSON document",
			            name, JSON_MAX);
			err = IMAGE_ERR_FORMAT;
			goto out;
		}
		nb = realloc(buf, n + (size_t)got + 1);
		if (!nb) {
			err = IMAGE_ERR_NOMEM;
			goto out;
		}
		buf = nb;
		memcpy(buf + n, p, (size_t)got);
		n += (size_t)got;
	}
	if (got < 0) {
		cl_diag_set(d, "reading '%s': %s", name, r.err);
		err = IMAGE_ERR_IO;
		goto out;
	}
	err = raw_verify(&r, digest ? digest : "", name, d);
	if (err)
		goto out;
	if (!buf && !(buf = malloc(1))) {
		err = IMAGE_ERR_NOMEM;
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
out:
	free(buf);
	raw_close(&r);
	return err;
}

/* ---- opening an image ------------------------------------------------------------------ */

void img_close(struct img_source *s)
{
	if (!s)
		return;
	free(s->path);
	free(s->config_json);
	free(s->name);
	img_config_free(&s->config);
	img_manifest_free(&s->manifest);
	free(s);
}

static bool exists(const char *p, bool want_dir)
{
	struct stat st;

	return stat(p, &st) == 0 && (want_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
}

/* Split "PATH[:REF]": the longest prefix that exists wins, so paths with ':' still work. */
static enum image_error split_ref(const char *rest, bool want_dir, char **path, char **ref,
                                  struct cl_diag *d)
{
	const char *colon;

	*ref = NULL;
	if (exists(rest, want_dir)) {
		*path = strdup(rest);
		return *path ? IMAGE_OK : IMAGE_ERR_NOMEM;
	}
	colon = strchr(rest, ':');
	while (colon) {
		*path = strndup(rest, (size_t)(colon - rest));
		if (!*path)
			return IMAGE_ERR_NOMEM;
		if (exists(*path, want_dir)) {
			*ref = strdup(colon + 1);
			return *ref ? IMAGE_OK : IMAGE_ERR_NOMEM;
		}
		free(*path);
		*path = NULL;
		colon = strchr(colon + 1, ':');
	}
	cl_diag_set(d, "%s '%s' does not exist", want_dir ? "directory" : "file", rest);
	return IMAGE_ERR_NOT_FOUND;
}

static enum image_error set_name(struct img_source *s, const char *tag)
{
	char *tmp, *b;
	size_t n;

	/* A bare tag ("latest") names no image: use the file name below. */
	if (tag && !strchr(tag, ':') && !strchr(tag, '/'))
		tag = NULL;
	if (tag) {
		/* nitro-cli: ImageName = the docker URI before ':' (nitro-compat §1.6). */
		const char *slash = strrchr(tag, '/');
		const char *colon = strrchr(tag, ':');
		n = colon && (!slash || colon > slash) ? (size_t)(colon - tag) : strlen(tag);
		s->name = strndup(tag, n);
		return s->name ? IMAGE_OK : IMAGE_ERR_NOMEM;
	}
	/* Otherwise the file or directory name without extension ("app.tar" → "app"). */
	tmp = strdup(s->path);
	if (!tmp)
		return IMAGE_ERR_NOMEM;
	for (n = strlen(tmp); n > 1 && tmp[n - 1] == '/'; n--)
		tmp[n - 1] = '\0';
	b = strrchr(tmp, '/');
	b = b ? b + 1 : tmp;
	b[strcspn(b, ".")] = '\0';
	s->name = strdup(*b ? b : "image");
	free(tmp);
	return s->name ? IMAGE_OK : IMAGE_ERR_NOMEM;
}

static enum image_error open_oci(struct img_source *s, const char *ref, struct cl_diag *d)
{
	uint8_t *buf = NULL;
	size_t len;
	char *digest = NULL, *tag = NULL;
	bool nested;
	enum image_error err;

	s->layers_by_digest = true;
	err = read_blob(s, "index.json", false, NULL, &buf, &len, d);
	if (err) {
		cl_diag_prefix(d, "not an OCI image layout");
		return err;
	}
	err = img_index_select(buf, len, ref, &digest, &nested, d);
	free(buf);
	buf = NULL;
	/* One level of nesting: a tag naming a multi-platform index. */
	for (int depth = 0; !err && nested && depth < 2; depth++) {
		err = read_blob(s, digest, true, digest, &buf, &len, d);
		free(digest);
		digest = NULL;
		if (!err)
			err = img_index_select(buf, len, NULL, &digest, &nested, d);
		free(buf);
		buf = NULL;
	}
	if (!err && nested) {
		cl_diag_set(d, "image indexes nest deeper than 2 levels");
		err = IMAGE_ERR_UNSUPPORTED;
	}
	if (!err)
		err = read_blob(s, digest, true, digest, &buf, &len, d);
	if (!err)
		err = img_manifest_parse(buf, len, &s->manifest, d);
	free(buf);
	free(digest);
	if (!err && ref)
		tag = strdup(ref);
	if (!err)
		err = set_name(s, tag);
	free(tag);
	return err;
}

static enum image_error open_docker(struct img_source *s, const char *ref, struct cl_diag *d)
{
	uint8_t *buf = NULL;
	size_t len;
	char *tag = NULL;
	enum image_error err;

	err = read_blob(s, "manifest.json", false, NULL, &buf, &len, d);
	if (err) {
		cl_diag_prefix(d, "not a docker-archive (docker save output)");
		return err;
	}
	err = img_docker_manifest_parse(buf, len, ref, &s->manifest, &tag, d);
	free(buf);
	if (!err)
		err = set_name(s, tag);
	free(tag);
	return err;
}

/* For docker-archive members named blobs/sha256/<hex> (docker >= 25): the digest to verify. */
static bool member_digest(const char *member, char out[7 + 64 + 1])
{
	if (strncmp(member, "blobs/sha256/", 13) || strlen(member) != 13 + 64)
		return false;
	snprintf(out, 7 + 64 + 1, "sha256:%s", member + 13);
	return digest_ok(out);
}

/*
 * The digest a docker-archive config's name promises: "blobs/sha256/<hex>" (docker >= 25) or
 * "<hex>.json" (docker < 25, podman, skopeo), where <hex> is the sha256 of the config bytes,
 * the image ID. Other names promise nothing.
 */
static bool config_member_digest(const char *member, char out[7 + 64 + 1])
{
	if (member_digest(member, out))
		return true;
	if (strlen(member) != 64 + 5 || strcmp(member + 64, ".json"))
		return false;
	snprintf(out, 7 + 64 + 1, "sha256:%.64s", member);
	return digest_ok(out);
}

/*
 * Whether the config's rootfs.diff_ids can vouch for the layers. One diff_id per layer, for
 * every kind of image (a config that lists a different number describes another image). With
 * no diff_ids, OCI layouts are still safe (each layer blob is checked against the digest in
 * the manifest), and so are docker-archive members named blobs/sha256/<hex>; but a docker
 * save layer such as "<id>/layer.tar" or "<hex>.tar" would then be checked against nothing,
 * so such an archive is refused rather than built unverified. docker, podman and skopeo
 * always write diff_ids, so only a hand-made or damaged archive lacks them.
 */
static enum image_error check_diff_ids(const struct img_source *s, struct cl_diag *d)
{
	const struct img_config *c = &s->config;
	char dg[7 + 64 + 1];

	if (c->diff_ids && c->n_diff_ids != s->manifest.n_layers) {
		cl_diag_set(d,
		            "the image config lists %zu layer diff_ids but the manifest has %zu "
		            "layers; the config belongs to another image or the archive was "
		            "edited: export the image again",
		            c->n_diff_ids, s->manifest.n_layers);
		return IMAGE_ERR_FORMAT;
	}
	if (c->diff_ids || s->layers_by_digest)
		return IMAGE_OK;
	for (size_t i = 0; i < s->manifest.n_layers; i++) {
		if (!member_digest(s->manifest.layers[i], dg)) {
			cl_diag_set(
			        d,
			        "the image config has no rootfs.diff_ids, so layer %zu ('%s') of "
			        "this docker-archive cannot be verified; export the image again "
			        "with `docker save` or `skopeo copy`, which write them",
			        i + 1, s->manifest.layers[i]);
			return IMAGE_ERR_FORMAT;
		}
	}
	return IMAGE_OK;
}

static enum image_error load_config(struct img_source *s, struct cl_diag *d)
{
	uint8_t *buf = NULL, md[32];
	size_t len;
	char dg[7 + 64 + 1];
	const char *verify = NULL;
	enum image_error err;
	unsigned mdlen = 0;

	if (s->layers_by_digest)
		verify = s->manifest.config;
	else if (config_member_digest(s->manifest.config, dg))
		verify = dg;
	err = read_blob(s, s->manifest.config, s->layers_by_digest, verify, &buf, &len, d);
	if (err == IMAGE_ERR_DIGEST)
		cl_diag_prefix(d, "image config");
	if (err)
		return err;
	err = img_config_parse(buf, len, &s->config, d);
	if (err) {
		free(buf);
		return err;
	}
	s->config_json = (char *)buf;
	/* The image ID is the sha256 of the config bytes, whatever the archive calls it. */
	EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL);
	memcpy(s->image_id, "sha256:", 7);
	for (unsigned i = 0; i < 32; i++)
		snprintf(s->image_id + 7 + 2 * i, 3, "%02x", md[i]);
	err = check_diff_ids(s, d);
	if (err)
		return err;
	if (s->config.architecture && strcmp(s->config.architecture, "amd64")) {
		cl_diag_set(d,
		            "the image is built for %s; cloister builds amd64 enclaves for now "
		            "(build the image with --platform linux/amd64)",
		            s->config.architecture);
		return IMAGE_ERR_UNSUPPORTED;
	}
	if (s->config.os && strcmp(s->config.os, "linux")) {
		cl_diag_set(d, "the image is for os '%s'; enclaves run linux images", s->config.os);
		return IMAGE_ERR_UNSUPPORTED;
	}
	return IMAGE_OK;
}

enum image_error img_open(const char *uri, struct img_source **out, struct cl_diag *d)
{
	struct img_source *s = calloc(1, sizeof(*s));
	char *ref = NULL;
	enum image_error err;
	bool docker = false;

	*out = NULL;
	if (!s) {
		cl_diag_set(d, "out of memory");
		return IMAGE_ERR_NOMEM;
	}
	if (!strncmp(uri, "oci:", 4)) {
		s->kind = SRC_DIR;
		err = split_ref(uri + 4, true, &s->path, &ref, d);
	} else if (!strncmp(uri, "oci-archive:", 12)) {
		s->kind = SRC_ARCHIVE;
		err = split_ref(uri + 12, false, &s->path, &ref, d);
	} else if (!strncmp(uri, "docker-archive:", 15)) {
		s->kind = SRC_ARCHIVE;
		docker = true;
		err = split_ref(uri + 15, false, &s->path, &ref, d);
	} else if (exists(uri, true)) {
		s->kind = SRC_DIR;
		s->path = strdup(uri);
		err = s->path ? IMAGE_OK : IMAGE_ERR_NOMEM;
	} else {
		cl_diag_set(d,
		            "'%s' is not an image cloister can read: it pulls nothing from "
		            "registries or a Docker daemon. Export the image first, e.g. "
		            "`docker save -o app.tar %s` then --docker-uri docker-archive:app.tar, "
		            "or `skopeo copy docker://%s oci-archive:app.tar` then "
		            "--docker-uri oci-archive:app.tar",
		            uri, uri, uri);
		err = IMAGE_ERR_NOT_FOUND;
	}
	if (!err)
		err = docker ? open_docker(s, ref, d) : open_oci(s, ref, d);
	if (!err)
		err = load_config(s, d);
	free(ref);
	if (err) {
		img_close(s);
		return err;
	}
	*out = s;
	return IMAGE_OK;
}

const struct img_config *img_source_config(const struct img_source *s)
{
	return &s->config;
}

const char *img_source_config_json(const struct img_source *s)
{
	return s->config_json;
}

const char *img_source_image_id(const struct img_source *s)
{
	return s->image_id;
}

const char *img_source_name(const struct img_source *s)
{
	return s->name;
}

size_t img_source_layer_count(const struct img_source *s)
{
	return s->manifest.n_layers;
}

/*
 * The uncompressed side of a layer, for the diff_id. Layers are read by two archives in one
 * pass: @dec, libarchive's "raw" format over the blob with every decompression filter (so
 * tar, tar+gzip, tar+zstd … all come out as the plain tar stream), and the tar reader, whose
 * read callback is unpacked_read: it takes @dec's blocks, hashes them and hands them on
 * without copying. Memory stays at libarchive's read-ahead buffers, whatever the layer size.
 */
struct unpacked {
	struct archive *dec;
	EVP_MD_CTX *md;
	bool eof, failed;
	char err[160];
};

static la_ssize_t unpacked_read(struct archive *a, void *opaque, const void **out)
{
	struct unpacked *u = opaque;
	size_t size = 0;
	la_int64_t off;
	int rc;

	(void)a;
	if (u->eof)
		return 0;
	if (u->failed)
		return -1;
	/* A block stays valid until the next call on @dec, which is only made from here. */
	rc = archive_read_data_block(u->dec, out, &size, &off);
	if (rc == ARCHIVE_EOF) {
		u->eof = true;
		return 0;
	}
	if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
		snprintf(u->err, sizeof(u->err), "%s", archive_error_string(u->dec));
		u->failed = true;
		return -1;
	}
	if (size > 0 && EVP_DigestUpdate(u->md, *out, size) != 1) {
		snprintf(u->err, sizeof(u->err), "sha256 failed");
		u->failed = true;
		return -1;
	}
	return (la_ssize_t)size;
}

static void unpacked_close(struct unpacked *u)
{
	if (u->dec)
		archive_read_free(u->dec);
	EVP_MD_CTX_free(u->md);
	memset(u, 0, sizeof(*u));
}

/* Start decompressing the blob behind @r. */
static enum image_error unpacked_open(struct unpacked *u, struct raw *r, size_t i, const char *name,
                                      struct cl_diag *d)
{
	struct archive_entry *e;
	int rc;

	memset(u, 0, sizeof(*u));
	u->md = EVP_MD_CTX_new();
	u->dec = archive_read_new();
	if (!u->md || !u->dec || EVP_DigestInit_ex(u->md, EVP_sha256(), NULL) != 1) {
		cl_diag_set(d, "out of memory");
		return IMAGE_ERR_NOMEM;
	}
	archive_read_support_filter_all(u->dec);
	archive_read_support_format_raw(u->dec);
	if (archive_read_open(u->dec, r, NULL, raw_read, NULL) != ARCHIVE_OK) {
		cl_diag_set(d, "layer %zu ('%s') cannot be read: %s", i + 1, name,
		            r->failed ? r->err : archive_error_string(u->dec));
		return IMAGE_ERR_ARCHIVE;
	}
	rc = archive_read_next_header(u->dec, &e);
	if (rc == ARCHIVE_EOF) {
		/* An empty blob: an empty stream for the tar reader to judge. */
		u->eof = true;
	} else if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
		cl_diag_set(d, "layer %zu ('%s') cannot be decompressed: %s", i + 1, name,
		            r->failed ? r->err : archive_error_string(u->dec));
		return IMAGE_ERR_ARCHIVE;
	}
	return IMAGE_OK;
}

/*
 * After the tar reader is done with layer @i (or failed with @err): read the rest of the
 * stream (the tar's trailing padding counts towards the diff_id), check the blob against
 * @verify (its manifest digest, may be NULL) and the uncompressed stream against @diff_id
 * (may be NULL). A digest mismatch says what is wrong better than the tar error a damaged
 * layer usually causes first, so it replaces any earlier error.
 */
static enum image_error layer_finish(struct raw *r, struct unpacked *u, size_t i, const char *name,
                                     const char *verify, const char *diff_id, enum image_error err,
                                     struct cl_diag *d)
{
	const void *p;
	la_ssize_t n;
	uint8_t md[32];
	char hex[65], what[1200];
	unsigned mdlen = 0;
	enum image_error verr;
	struct cl_diag vd = { { 0 } };

	if (!verify && !diff_id)
		return err;
	while ((n = unpacked_read(NULL, u, &p)) > 0)
		;
	snprintf(what, sizeof(what), "layer %zu ('%s')", i + 1, name);
	verr = raw_verify(r, verify ? verify : "", what, &vd);
	if (verr == IMAGE_ERR_DIGEST || (!err && verr)) {
		cl_diag_set(d, "%s", vd.msg);
		return verr;
	}
	if (!diff_id || (n < 0 && err))
		return err;
	if (n < 0) {
		cl_diag_set(d, "%s cannot be decompressed: %s", what, u->err);
		return IMAGE_ERR_ARCHIVE;
	}
	EVP_DigestFinal_ex(u->md, md, &mdlen);
	for (unsigned k = 0; k < 32; k++)
		snprintf(hex + 2 * k, 3, "%02x", md[k]);
	if (strcmp(hex, diff_id + 7)) {
		cl_diag_set(
		        d,
		        "%s is corrupt: the sha256 of its uncompressed tar is %s, but the image "
		        "config's rootfs.diff_ids[%zu] says %s; the image was damaged or "
		        "changed after export, so export it again (docker save, skopeo copy)",
		        what, hex, i, diff_id + 7);
		return IMAGE_ERR_DIGEST;
	}
	return err;
}

enum image_error img_source_apply_layers(struct img_source *s, struct img_tree *t,
                                         const char *prefix,
                                         void (*progress)(size_t i, size_t n, void *opaque),
                                         void *opaque, struct cl_diag *d)
{
	enum image_error err = IMAGE_OK;

	for (size_t i = 0; i < s->manifest.n_layers && !err; i++) {
		const char *name = s->manifest.layers[i];
		const char *diff_id = s->config.diff_ids ? s->config.diff_ids[i] : NULL;
		char dg[7 + 64 + 1];
		const char *verify = NULL;
		struct archive *a = NULL;
		struct unpacked u;
		struct raw r;

		if (progress)
			progress(i + 1, s->manifest.n_layers, opaque);
		if (s->layers_by_digest)
			verify = name;
		else if (member_digest(name, dg))
			verify = dg;
		err = raw_open(s, name, s->layers_by_digest, verify, &r, d);
		if (err)
			break;
		err = unpacked_open(&u, &r, i, name, d);
		if (!err && !(a = archive_read_new())) {
			cl_diag_set(d, "out of memory");
			err = IMAGE_ERR_NOMEM;
		}
		if (!err) {
			/* Already decompressed by u.dec: no filters here, so no second guessing. */
			archive_read_support_format_tar(a);
			if (archive_read_open(a, &u, NULL, unpacked_read, NULL) != ARCHIVE_OK) {
				cl_diag_set(d, "layer %zu ('%s') is not a tar stream: %s", i + 1,
				            name,
				            r.failed   ? r.err
				            : u.failed ? u.err
				                       : archive_error_string(a));
				err = IMAGE_ERR_ARCHIVE;
			}
			if (!err)
				err = img_tree_apply_layer(t, prefix, a, (unsigned)(i + 1), d);
		}
		if (err != IMAGE_ERR_NOMEM)
			err = layer_finish(&r, &u, i, name, verify, diff_id, err, d);
		if (a)
			archive_read_free(a);
		unpacked_close(&u);
		raw_close(&r);
	}
	return err;
}
