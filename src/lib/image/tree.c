/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The in-memory file-system index behind both ramdisks (image.h). Paths are kept normalised
 * and relative; a hash table maps a path to its node. Removed nodes stay in the array marked
 * dead (their hash slot points at them until the path is added again), which keeps removal
 * O(1) for single entries and a linear scan for whole subtrees (whiteouts are rare).
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "lib/image/image.h"
#include "lib/util/file.h"

#define PATH_CAP 4096
#define COPY_CHUNK (64 * 1024)

struct node {
	char *path;
	char *link; /* symlink target */
	uint64_t off, size; /* contents in the spool (regular files) */
	uint32_t mode; /* S_IFMT | permission bits */
	uint32_t uid, gid;
	uint32_t rmajor, rminor;
	unsigned layer; /* 0 for entries not from a layer */
	uint32_t group; /* hard-link group (shared inode), 0 = none */
	bool dead;
};

struct img_tree {
	struct node *nodes;
	size_t n, cap, live;
	size_t *slots; /* hash table of node index + 1; 0 = empty */
	size_t nslots;
	int spool;
	uint64_t spool_size;
	uint32_t groups; /* hard-link groups handed out */
};

/* Make @nd a hard link to the regular file @src: same inode, so same bytes and attributes. */
static void link_to(struct img_tree *t, struct node *src, struct node *nd)
{
	if (!src->group)
		src->group = ++t->groups;
	nd->mode = src->mode;
	nd->uid = src->uid;
	nd->gid = src->gid;
	nd->off = src->off;
	nd->size = src->size;
	nd->group = src->group;
}

const char *image_strerror(enum image_error e)
{
	switch (e) {
	case IMAGE_OK:
		return "success";
	case IMAGE_ERR_NOMEM:
		return "out of memory";
	case IMAGE_ERR_IO:
		return "file read or write failed";
	case IMAGE_ERR_ARCHIVE:
		return "archive error";
	case IMAGE_ERR_UNSAFE_PATH:
		return "unsafe path in image";
	case IMAGE_ERR_FORMAT:
		return "malformed image";
	case IMAGE_ERR_NOT_FOUND:
		return "not found in image";
	case IMAGE_ERR_UNSUPPORTED:
		return "unsupported image";
	case IMAGE_ERR_DIGEST:
		return "digest mismatch";
	case IMAGE_ERR_NO_COMMAND:
		return "no command to run";
	}
	return "unknown image error";
}

enum image_error img_path_normalize(const char *in, char *out, size_t cap, struct cl_diag *d)
{
	size_t o = 0;
	const char *p = in;

	while (*p) {
		size_t n;

		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if (n == 0)
			break;
		if (n == 1 && p[0] == '.') {
			p += n;
			continue;
		}
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			cl_diag_set(d, "path '%s' contains a '..' component; refusing it", in);
			return IMAGE_ERR_UNSAFE_PATH;
		}
		if (o + (o ? 1 : 0) + n + 1 > cap) {
			cl_diag_set(d, "path '%.64s...' is longer than %zu bytes", in, cap - 1);
			return IMAGE_ERR_UNSAFE_PATH;
		}
		if (o)
			out[o++] = '/';
		memcpy(out + o, p, n);
		o += n;
		p += n;
	}
	out[o] = '\0';
	return IMAGE_OK;
}

static uint64_t hash_path(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 0x100000001b3ULL;
	return h;
}

/* Slot holding @path, or the empty slot where it would go. */
static size_t find_slot(const struct img_tree *t, const char *path)
{
	size_t mask = t->nslots - 1;
	size_t i = (size_t)hash_path(path) & mask;

	while (t->slots[i] && strcmp(t->nodes[t->slots[i] - 1].path, path))
		i = (i + 1) & mask;
	return i;
}

static struct node *lookup(const struct img_tree *t, const char *path)
{
	size_t s;
	struct node *nd;

	if (!t->nslots)
		return NULL;
	s = find_slot(t, path);
	if (!t->slots[s])
		return NULL;
	nd = &t->nodes[t->slots[s] - 1];
	return nd->dead ? NULL : nd;
}

static enum image_error grow(struct img_tree *t, struct cl_diag *d)
{
	if (t->n == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 256;
		struct node *nn = realloc(t->nodes, nc * sizeof(*nn));
		if (!nn)
			goto nomem;
		t->nodes = nn;
		t->cap = nc;
	}
	/* Keep the table at most half full. Paths are never removed from it. */
	if ((t->n + 1) * 2 > t->nslots) {
		size_t ns = t->nslots ? t->nslots * 2 : 1024;
		size_t *old = t->slots, old_n = t->nslots;

		t->slots = calloc(ns, sizeof(*t->slots));
		if (!t->slots) {
			t->slots = old;
			goto nomem;
		}
		t->nslots = ns;
		for (size_t i = 0; i < old_n; i++)
			if (old[i])
				t->slots[find_slot(t, t->nodes[old[i] - 1].path)] = old[i];
		free(old);
	}
	return IMAGE_OK;
nomem:
	cl_diag_set(d, "out of memory indexing %zu image entries", t->n);
	return IMAGE_ERR_NOMEM;
}

enum image_error img_tree_new(struct img_tree **out, struct cl_diag *d)
{
	struct img_tree *t = calloc(1, sizeof(*t));
	const char *tmp = getenv("TMPDIR");
	char tmpl[PATH_MAX];

	*out = NULL;
	if (!t) {
		cl_diag_set(d, "out of memory");
		return IMAGE_ERR_NOMEM;
	}
	if (!tmp || !*tmp)
		tmp = "/tmp";
	t->spool = open(tmp, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (t->spool < 0) {
		/* File systems without O_TMPFILE: create and unlink at once. */
		snprintf(tmpl, sizeof(tmpl), "%s/cloister-spool.XXXXXX", tmp);
		t->spool = mkostemp(tmpl, O_CLOEXEC);
		if (t->spool >= 0)
			unlink(tmpl);
	}
	if (t->spool < 0) {
		cl_diag_set(d,
		            "cannot create a spool file in %s: %s (set TMPDIR to a writable "
		            "directory)",
		            tmp, strerror(errno));
		free(t);
		return IMAGE_ERR_IO;
	}
	*out = t;
	return IMAGE_OK;
}

void img_tree_free(struct img_tree *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->nodes[i].path);
		free(t->nodes[i].link);
	}
	free(t->nodes);
	free(t->slots);
	if (t->spool >= 0)
		close(t->spool);
	free(t);
}

static void kill_node(struct img_tree *t, struct node *nd)
{
	if (nd->dead)
		return;
	nd->dead = true;
	free(nd->link);
	nd->link = NULL;
	t->live--;
}

/* Remove every live entry strictly below @dir ("" = the root) added by a layer before
 * @layer (all of them when @layer is UINT_MAX). */
static void remove_children(struct img_tree *t, const char *dir, unsigned layer)
{
	size_t dl = strlen(dir);

	for (size_t i = 0; i < t->n; i++) {
		struct node *nd = &t->nodes[i];
		if (nd->dead || nd->layer >= layer)
			continue;
		if (dl == 0 || (!strncmp(nd->path, dir, dl) && nd->path[dl] == '/'))
			kill_node(t, nd);
	}
}

static void remove_path(struct img_tree *t, const char *path, unsigned layer)
{
	struct node *nd = lookup(t, path);

	if (nd && nd->layer < layer) {
		if (S_ISDIR(nd->mode))
			remove_children(t, path, layer);
		kill_node(t, nd);
	}
}

/* Insert or replace the node for @path (normalised). Parents must exist already. */
static enum image_error put_node(struct img_tree *t, const char *path, const struct node *tmpl,
                                 struct cl_diag *d)
{
	struct node *nd;
	size_t s;
	enum image_error err;

	nd = lookup(t, path);
	if (nd) {
		char *keep = nd->path;

		/* A directory replaced by anything else takes its subtree with it. */
		if (S_ISDIR(nd->mode) && !S_ISDIR(tmpl->mode))
			remove_children(t, path, UINT_MAX);
		free(nd->link);
		*nd = *tmpl;
		nd->path = keep;
		nd->dead = false;
		return IMAGE_OK;
	}
	err = grow(t, d);
	if (err)
		return err;
	s = find_slot(t, path);
	if (t->slots[s]) {
		/* A dead node with this path: revive it in place. */
		nd = &t->nodes[t->slots[s] - 1];
		char *keep = nd->path;
		*nd = *tmpl;
		nd->path = keep;
		nd->dead = false;
		t->live++;
		return IMAGE_OK;
	}
	nd = &t->nodes[t->n];
	*nd = *tmpl;
	nd->dead = false;
	nd->path = strdup(path);
	if (!nd->path) {
		cl_diag_set(d, "out of memory");
		return IMAGE_ERR_NOMEM;
	}
	t->slots[s] = ++t->n;
	t->live++;
	return IMAGE_OK;
}

/* Make sure every ancestor of @path is a directory, creating missing ones (0755, root). */
static enum image_error ensure_parents(struct img_tree *t, const char *path, unsigned layer,
                                       struct cl_diag *d)
{
	char buf[PATH_CAP];
	size_t len = strlen(path);

	memcpy(buf, path, len + 1);
	for (size_t i = 0; i < len; i++) {
		struct node *nd;
		if (buf[i] != '/')
			continue;
		buf[i] = '\0';
		nd = lookup(t, buf);
		if (!nd) {
			struct node dir = { .mode = S_IFDIR | 0755, .layer = layer };
			enum image_error err = put_node(t, buf, &dir, d);
			if (err)
				return err;
		} else if (!S_ISDIR(nd->mode)) {
			cl_diag_set(d,
			            "'%s' would be created through '%s', which is %s; refusing it",
			            path, buf, S_ISLNK(nd->mode) ? "a symlink" : "not a directory");
			return IMAGE_ERR_UNSAFE_PATH;
		}
		buf[i] = '/';
	}
	return IMAGE_OK;
}

static enum image_error add_node(struct img_tree *t, const char *path, struct node *tmpl,
                                 struct cl_diag *d)
{
	char norm[PATH_CAP];
	enum image_error err = img_path_normalize(path, norm, sizeof(norm), d);

	if (err)
		goto fail;
	if (!norm[0]) {
		cl_diag_set(d, "cannot add the root itself ('%s')", path);
		err = IMAGE_ERR_UNSAFE_PATH;
		goto fail;
	}
	err = ensure_parents(t, norm, tmpl->layer, d);
	if (err)
		goto fail;
	return put_node(t, norm, tmpl, d);
fail:
	free(tmpl->link);
	return err;
}

static enum image_error spool_append(struct img_tree *t, const void *data, size_t len,
                                     struct cl_diag *d)
{
	const uint8_t *p = data;

	while (len) {
		ssize_t n = pwrite(t->spool, p, len, (off_t)t->spool_size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			cl_diag_set(d, "writing the spool file: %s (is TMPDIR full?)",
			            n < 0 ? strerror(errno) : "no progress");
			return IMAGE_ERR_IO;
		}
		p += n;
		len -= (size_t)n;
		t->spool_size += (uint64_t)n;
	}
	return IMAGE_OK;
}

enum image_error img_tree_add_dir(struct img_tree *t, const char *path, unsigned mode,
                                  struct cl_diag *d)
{
	struct node nd = { .mode = S_IFDIR | (mode & 07777) };

	return add_node(t, path, &nd, d);
}

enum image_error img_tree_add_file(struct img_tree *t, const char *path, unsigned mode,
                                   const void *data, size_t len, struct cl_diag *d)
{
	struct node nd = { .mode = S_IFREG | (mode & 07777), .off = t->spool_size, .size = len };
	enum image_error err = spool_append(t, data, len, d);

	return err ? err : add_node(t, path, &nd, d);
}

static enum image_error spool_fd(struct img_tree *t, int fd, const char *what, uint64_t *size,
                                 struct cl_diag *d)
{
	uint8_t *buf = malloc(COPY_CHUNK);
	enum image_error err = IMAGE_OK;

	*size = 0;
	if (!buf) {
		cl_diag_set(d, "out of memory");
		return IMAGE_ERR_NOMEM;
	}
	for (;;) {
		ssize_t n = read(fd, buf, COPY_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			cl_diag_set(d, "reading %s: %s", what, strerror(errno));
			err = IMAGE_ERR_IO;
			break;
		}
		if (n == 0)
			break;
		err = spool_append(t, buf, (size_t)n, d);
		if (err)
			break;
		*size += (uint64_t)n;
	}
	free(buf);
	return err;
}

enum image_error img_tree_add_host_file(struct img_tree *t, const char *path, unsigned mode,
                                        const char *host_path, struct cl_diag *d)
{
	struct node nd = { .mode = S_IFREG | (mode & 07777), .off = t->spool_size };
	enum image_error err;
	int fd = open(host_path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		cl_diag_set(d, "cannot open '%s': %s", host_path, strerror(errno));
		return errno == ENOENT ? IMAGE_ERR_NOT_FOUND : IMAGE_ERR_IO;
	}
	err = spool_fd(t, fd, host_path, &nd.size, d);
	close(fd);
	return err ? err : add_node(t, path, &nd, d);
}

enum image_error img_tree_add_symlink(struct img_tree *t, const char *path, const char *target,
                                      struct cl_diag *d)
{
	struct node nd = { .mode = S_IFLNK | 0777, .link = strdup(target) };

	if (!nd.link) {
		cl_diag_set(d, "out of memory");
		return IMAGE_ERR_NOMEM;
	}
	return add_node(t, path, &nd, d);
}

/* Host files with several links seen so far, to keep them one inode in the ramdisk. */
struct inode_map {
	struct seen {
		dev_t dev;
		ino_t ino;
		char *path;
	} * v;
	size_t n, cap;
};

static const char *inode_seen(const struct inode_map *m, const struct stat *st)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i].dev == st->st_dev && m->v[i].ino == st->st_ino)
			return m->v[i].path;
	return NULL;
}

static int inode_add(struct inode_map *m, const struct stat *st, const char *path)
{
	char norm[PATH_CAP];

	if (m->n == m->cap) {
		size_t nc = m->cap ? m->cap * 2 : 16;
		struct seen *nv = realloc(m->v, nc * sizeof(*nv));
		if (!nv)
			return -1;
		m->v = nv;
		m->cap = nc;
	}
	if (img_path_normalize(path, norm, sizeof(norm), NULL) != IMAGE_OK)
		return 0; /* cannot happen for walk paths; then simply no sharing */
	m->v[m->n].path = strdup(norm);
	if (!m->v[m->n].path)
		return -1;
	m->v[m->n].dev = st->st_dev;
	m->v[m->n].ino = st->st_ino;
	m->n++;
	return 0;
}

static enum image_error walk_dir(struct img_tree *t, int dfd, char *rel, size_t rel_len,
                                 const char *host_root, unsigned depth, struct inode_map *seen,
                                 struct cl_diag *d)
{
	DIR *dir;
	struct dirent *de;
	enum image_error err = IMAGE_OK;

	if (depth > 256) {
		cl_diag_set(d, "'%s/%s' nests deeper than 256 directories", host_root, rel);
		close(dfd);
		return IMAGE_ERR_UNSAFE_PATH;
	}
	dir = fdopendir(dfd);
	if (!dir) {
		cl_diag_set(d, "cannot read directory '%s/%s': %s", host_root, rel,
		            strerror(errno));
		close(dfd);
		return IMAGE_ERR_IO;
	}
	while (!err && (errno = 0, de = readdir(dir))) {
		struct stat st;
		struct node nd = { 0 };
		size_t nl = strlen(de->d_name);

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (rel_len + 1 + nl + 1 > PATH_CAP) {
			cl_diag_set(d, "path under '%s' is longer than %d bytes", host_root,
			            PATH_CAP - 1);
			err = IMAGE_ERR_UNSAFE_PATH;
			break;
		}
		rel[rel_len] = '/';
		memcpy(rel + rel_len + 1, de->d_name, nl + 1);
		if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			cl_diag_set(d, "cannot stat '%s/%s': %s", host_root, rel, strerror(errno));
			err = IMAGE_ERR_IO;
			break;
		}
		nd.mode = (uint32_t)(st.st_mode & (S_IFMT | 07777));
		if (S_ISREG(st.st_mode) && st.st_nlink > 1 && inode_seen(seen, &st)) {
			struct node *src = lookup(t, inode_seen(seen, &st));
			if (src && S_ISREG(src->mode)) {
				link_to(t, src, &nd);
				nd.mode = (uint32_t)(st.st_mode & (S_IFMT | 07777));
				err = add_node(t, rel, &nd, d);
				rel[rel_len] = '\0';
				continue;
			}
		}
		if (S_ISREG(st.st_mode)) {
			int fd = openat(dirfd(dir), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0) {
				cl_diag_set(d, "cannot open '%s/%s': %s", host_root, rel,
				            strerror(errno));
				err = IMAGE_ERR_IO;
				break;
			}
			nd.off = t->spool_size;
			err = spool_fd(t, fd, de->d_name, &nd.size, d);
			close(fd);
			if (!err)
				err = add_node(t, rel, &nd, d);
			if (!err && st.st_nlink > 1 && inode_add(seen, &st, rel) < 0) {
				cl_diag_set(d, "out of memory");
				err = IMAGE_ERR_NOMEM;
			}
		} else if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd(dir), de->d_name,
			                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			err = add_node(t, rel, &nd, d);
			if (!err && sub < 0) {
				cl_diag_set(d, "cannot open directory '%s/%s': %s", host_root, rel,
				            strerror(errno));
				err = IMAGE_ERR_IO;
			}
			if (!err)
				err = walk_dir(t, sub, rel, rel_len + 1 + nl, host_root, depth + 1,
				               seen, d);
			else if (sub >= 0)
				close(sub);
		} else if (S_ISLNK(st.st_mode)) {
			char target[PATH_CAP];
			ssize_t n = readlinkat(dirfd(dir), de->d_name, target, sizeof(target) - 1);
			if (n < 0) {
				cl_diag_set(d, "cannot read symlink '%s/%s': %s", host_root, rel,
				            strerror(errno));
				err = IMAGE_ERR_IO;
				break;
			}
			target[n] = '\0';
			err = img_tree_add_symlink(t, rel, target, d);
		} else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
			nd.rmajor = major(st.st_rdev);
			nd.rminor = minor(st.st_rdev);
			err = add_node(t, rel, &nd, d);
		}
		/* sockets: meaningless in an image, skipped */
		rel[rel_len] = '\0';
	}
	if (!err && errno) {
		cl_diag_set(d, "reading directory '%s': %s", host_root, strerror(errno));
		err = IMAGE_ERR_IO;
	}
	closedir(dir);
	return err;
}

enum image_error img_tree_add_host_dir(struct img_tree *t, const char *prefix, const char *host_dir,
                                       struct cl_diag *d)
{
	char *rel;
	size_t len;
	enum image_error err;
	int dfd = open(host_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd < 0) {
		cl_diag_set(d, "cannot open directory '%s': %s", host_dir, strerror(errno));
		return errno == ENOENT ? IMAGE_ERR_NOT_FOUND : IMAGE_ERR_IO;
	}
	rel = malloc(PATH_CAP);
	if (!rel) {
		close(dfd);
		cl_diag_set(d, "out of memory");
		return IMAGE_ERR_NOMEM;
	}
	err = img_path_normalize(prefix, rel, PATH_CAP, d);
	if (err) {
		close(dfd);
		free(rel);
		return err;
	}
	len = strlen(rel);
	if (len) {
		err = img_tree_add_dir(t, rel, 0755, d);
		if (err) {
			close(dfd);
			free(rel);
			return err;
		}
	}
	{
		struct inode_map seen = { 0 };

		err = walk_dir(t, dfd, rel, len, host_dir, 0, &seen, d);
		for (size_t i = 0; i < seen.n; i++)
			free(seen.v[i].path);
		free(seen.v);
	}
	free(rel);
	return err;
}

/* The path inside the tree for a layer entry: @prefix + "/" + normalised @name. */
static enum image_error layer_path(const char *prefix, const char *name, char *out, size_t cap,
                                   struct cl_diag *d)
{
	char norm[PATH_CAP];
	enum image_error err = img_path_normalize(name, norm, sizeof(norm), d);
	int n;

	if (err)
		return err;
	if (!norm[0]) {
		out[0] = '\0';
		return IMAGE_OK;
	}
	n = snprintf(out, cap, "%s%s%s", prefix, prefix[0] ? "/" : "", norm);
	if (n < 0 || (size_t)n >= cap) {
		cl_diag_set(d, "path '%.64s...' is too long", name);
		return IMAGE_ERR_UNSAFE_PATH;
	}
	return IMAGE_OK;
}

static enum image_error apply_whiteout(struct img_tree *t, char *path, unsigned layer,
                                       const char *entry, struct cl_diag *d)
{
	char *slash = strrchr(path, '/');
	char *base = slash ? slash + 1 : path;
	const char *victim = base + 4; /* after ".wh." */
	size_t dir_len = slash ? (size_t)(slash - path) : 0;

	if (!strcmp(base, ".wh..wh..opq")) {
		path[dir_len] = '\0';
		remove_children(t, path, layer);
		return IMAGE_OK;
	}
	if (!*victim || !strcmp(victim, ".") || !strcmp(victim, "..") ||
	    !strncmp(victim, ".wh.", 4)) {
		cl_diag_set(d, "layer %u: malformed whiteout '%s'", layer, entry);
		return IMAGE_ERR_UNSAFE_PATH;
	}
	memmove(base, victim, strlen(victim) + 1);
	remove_path(t, path, layer);
	return IMAGE_OK;
}

enum image_error img_tree_apply_layer(struct img_tree *t, const char *prefix, struct archive *a,
                                      unsigned layer, struct cl_diag *d)
{
	char path[PATH_CAP], target[PATH_CAP], norm_prefix[PATH_CAP];
	struct archive_entry *e;
	uint8_t *buf = NULL;
	enum image_error err;
	int r;

	err = img_path_normalize(prefix, norm_prefix, sizeof(norm_prefix), d);
	if (err)
		return err;
	buf = malloc(COPY_CHUNK);
	if (!buf) {
		cl_diag_set(d, "out of memory");
		return IMAGE_ERR_NOMEM;
	}
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		const char *name = archive_entry_pathname(e);
		const char *hard = archive_entry_hardlink(e);
		const char *base;
		struct node nd = { .layer = layer };

		if (!name) {
			cl_diag_set(d, "layer %u: entry without a path name", layer);
			err = IMAGE_ERR_FORMAT;
			goto out;
		}
		err = layer_path(norm_prefix, name, path, sizeof(path), d);
		if (err) {
			cl_diag_prefix(d, "layer %u", layer);
			goto out;
		}
		if (!path[0] || !strcmp(path, norm_prefix))
			continue; /* the layer's "./": the root keeps its own attributes */
		base = strrchr(path, '/');
		base = base ? base + 1 : path;
		if (!strncmp(base, ".wh.", 4)) {
			err = apply_whiteout(t, path, layer, name, d);
			if (err)
				goto out;
			continue;
		}
		nd.uid = (uint32_t)archive_entry_uid(e);
		nd.gid = (uint32_t)archive_entry_gid(e);
		nd.mode = (uint32_t)(archive_entry_mode(e) & (S_IFMT | 07777));
		if (hard) {
			struct node *src;
			err = layer_path(norm_prefix, hard, target, sizeof(target), d);
			if (err) {
				cl_diag_prefix(d, "layer %u: hard link '%s'", layer, name);
				goto out;
			}
			src = lookup(t, target);
			if (!src || !S_ISREG(src->mode)) {
				cl_diag_set(
				        d, "layer %u: hard link '%s' points to '%s', which is %s",
				        layer, name, hard, src ? "not a regular file" : "missing");
				err = src ? IMAGE_ERR_UNSAFE_PATH : IMAGE_ERR_NOT_FOUND;
				goto out;
			}
			link_to(t, src, &nd);
		} else {
			switch (archive_entry_filetype(e)) {
			case AE_IFREG:
				nd.off = t->spool_size;
				for (;;) {
					la_ssize_t n = archive_read_data(a, buf, COPY_CHUNK);
					if (n < 0) {
						cl_diag_set(d, "layer %u: reading '%s': %s", layer,
						            name, archive_error_string(a));
						err = IMAGE_ERR_ARCHIVE;
						goto out;
					}
					if (n == 0)
						break;
					err = spool_append(t, buf, (size_t)n, d);
					if (err)
						goto out;
					nd.size += (uint64_t)n;
				}
				break;
			case AE_IFDIR:
			case AE_IFIFO:
				break;
			case AE_IFCHR:
			case AE_IFBLK:
				nd.rmajor = (uint32_t)archive_entry_rdevmajor(e);
				nd.rminor = (uint32_t)archive_entry_rdevminor(e);
				break;
			case AE_IFLNK:
				if (!archive_entry_symlink(e)) {
					cl_diag_set(d, "layer %u: symlink '%s' has no target",
					            layer, name);
					err = IMAGE_ERR_FORMAT;
					goto out;
				}
				nd.link = strdup(archive_entry_symlink(e));
				if (!nd.link) {
					err = IMAGE_ERR_NOMEM;
					goto out;
				}
				break;
			default:
				continue; /* sockets and unknown types carry nothing */
			}
		}
		/* An entry replaces whatever lower layers had at this path (put_node). */
		err = add_node(t, path, &nd, d);
		if (err) {
			cl_diag_prefix(d, "layer %u", layer);
			goto out;
		}
	}
	if (r != ARCHIVE_EOF) {
		cl_diag_set(d, "layer %u: %s", layer, archive_error_string(a));
		err = IMAGE_ERR_ARCHIVE;
	}
out:
	free(buf);
	return err;
}

bool img_tree_lookup(const struct img_tree *t, const char *path, unsigned *mode)
{
	char norm[PATH_CAP];
	const struct node *nd;

	if (img_path_normalize(path, norm, sizeof(norm), NULL) != IMAGE_OK)
		return false;
	nd = lookup(t, norm);
	if (nd && mode)
		*mode = nd->mode;
	return nd != NULL;
}

size_t img_tree_count(const struct img_tree *t)
{
	return t->live;
}

static int cmp_nodes(const void *a, const void *b)
{
	const struct node *x = *(const struct node *const *)a;
	const struct node *y = *(const struct node *const *)b;

	return strcmp(x->path, y->path);
}

struct cpio_sink {
	int fd;
	uint64_t written;
	int err; /* errno of the first failed write */
};

static la_ssize_t sink_write(struct archive *a, void *opaque, const void *buf, size_t len)
{
	struct cpio_sink *s = opaque;

	int r = cl_write_full(s->fd, buf, len);

	(void)a;
	if (r < 0) {
		s->err = -r;
		return -1;
	}
	s->written += len;
	return (la_ssize_t)len;
}

static enum image_error write_contents(const struct img_tree *t, struct archive *a,
                                       const struct node *nd, uint8_t *buf, struct cl_diag *d)
{
	uint64_t done = 0;

	while (done < nd->size) {
		size_t want = nd->size - done < COPY_CHUNK ? (size_t)(nd->size - done) : COPY_CHUNK;
		long long n = cl_pread_full(t->spool, buf, want, nd->off + done);
		if (n != (long long)want) {
			cl_diag_set(d, "reading back '%s' from the spool: %s", nd->path,
			            n < 0 ? strerror((int)-n) : "short read");
			return IMAGE_ERR_IO;
		}
		if (archive_write_data(a, buf, want) != (la_ssize_t)want) {
			cl_diag_set(d, "writing '%s' to the cpio archive: %s", nd->path,
			            archive_error_string(a));
			return IMAGE_ERR_ARCHIVE;
		}
		done += want;
	}
	return IMAGE_OK;
}

enum image_error img_tree_write_cpio(const struct img_tree *t, int64_t mtime, int fd,
                                     uint64_t *written, struct cl_diag *d)
{
	struct cpio_sink sink = { .fd = fd };
	const struct node **order = NULL;
	uint32_t *group_ino = NULL, *group_links = NULL;
	struct archive *a = NULL;
	struct archive_entry *e = NULL;
	uint8_t *buf = NULL;
	enum image_error err = IMAGE_OK;
	size_t k = 0;

	order = calloc(t->live ? t->live : 1, sizeof(*order));
	buf = malloc(COPY_CHUNK);
	a = archive_write_new();
	e = archive_entry_new();
	if (!order || !buf || !a || !e) {
		cl_diag_set(d, "out of memory");
		err = IMAGE_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < t->n; i++)
		if (!t->nodes[i].dead)
			order[k++] = &t->nodes[i];
	qsort(order, k, sizeof(*order), cmp_nodes);

	/* Hard links (newc, as the kernel's unpacker reads it): every live member of a group
	 * carries the inode number of the group's first entry and nlink = the number of live
	 * members; only that first entry carries the bytes, the others have size 0. */
	group_ino = calloc(t->groups + 1, sizeof(*group_ino));
	group_links = calloc(t->groups + 1, sizeof(*group_links));
	if (!group_ino || !group_links) {
		cl_diag_set(d, "out of memory");
		err = IMAGE_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < k; i++) {
		uint32_t g = order[i]->group;
		if (g && !group_links[g]++)
			group_ino[g] = (uint32_t)(i + 1);
	}

	/* newc is what the kernel's initramfs unpacker reads (and what nitro-cli writes);
	 * bytes_per_block 0 writes the archive unpadded, so its size is exactly its content. */
	if (archive_write_set_format_cpio_newc(a) != ARCHIVE_OK ||
	    archive_write_add_filter_none(a) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK ||
	    archive_write_open(a, &sink, NULL, sink_write, NULL) != ARCHIVE_OK) {
		cl_diag_set(d, "cannot start the cpio writer: %s", archive_error_string(a));
		err = IMAGE_ERR_ARCHIVE;
		goto out;
	}
	for (size_t i = 0; i < k; i++) {
		const struct node *nd = order[i];

		archive_entry_clear(e);
		archive_entry_set_pathname(e, nd->path);
		archive_entry_set_mode(e, nd->mode);
		archive_entry_set_uid(e, nd->uid);
		archive_entry_set_gid(e, nd->gid);
		archive_entry_set_mtime(e, mtime, 0);
		bool grouped = nd->group && group_links[nd->group] > 1;
		bool with_data = S_ISREG(nd->mode) &&
		                 (!grouped || group_ino[nd->group] == (uint32_t)(i + 1));

		archive_entry_set_ino64(e, grouped ? (la_int64_t)group_ino[nd->group]
		                                   : (la_int64_t)(i + 1));
		archive_entry_set_nlink(e, grouped             ? group_links[nd->group]
		                           : S_ISDIR(nd->mode) ? 2
		                                               : 1);
		archive_entry_set_dev(e, 0);
		archive_entry_set_size(e, with_data ? (la_int64_t)nd->size : 0);
		if (S_ISLNK(nd->mode))
			archive_entry_set_symlink(e, nd->link);
		if (S_ISCHR(nd->mode) || S_ISBLK(nd->mode)) {
			archive_entry_set_rdevmajor(e, nd->rmajor);
			archive_entry_set_rdevminor(e, nd->rminor);
		}
		if (archive_write_header(a, e) != ARCHIVE_OK) {
			cl_diag_set(d, "writing cpio header for '%s': %s", nd->path,
			            sink.err ? strerror(sink.err) : archive_error_string(a));
			err = sink.err ? IMAGE_ERR_IO : IMAGE_ERR_ARCHIVE;
			goto out;
		}
		if (with_data) {
			err = write_contents(t, a, nd, buf, d);
			if (err)
				goto out;
		}
	}
	if (archive_write_close(a) != ARCHIVE_OK) {
		cl_diag_set(d, "finishing the cpio archive: %s",
		            sink.err ? strerror(sink.err) : archive_error_string(a));
		err = sink.err ? IMAGE_ERR_IO : IMAGE_ERR_ARCHIVE;
		goto out;
	}
	if (written)
		*written = sink.written;
out:
	if (a)
		archive_write_free(a);
	if (e)
		archive_entry_free(e);
	free(buf);
	free(order);
	free(group_ino);
	free(group_links);
	return err;
}
