/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pool's state directory (docs/resources.md):
 *
 *   <state>/pool.lock                 flock(LOCK_EX) around every read-modify-write
 *   <state>/pool.conf                 the pool, written by `cloister allocator`
 *   <state>/enclaves/<slot>.grant     one enclave's cores, vCPUs, memory, CID, name, owner
 *
 * Files are `key=value` lines, replaced atomically (write temp + rename), so a reader never sees
 * half a grant even without the lock. A grant belongs to its owner process; when that process is
 * gone (or its pid was reused: the start time differs) the grant is reclaimed by whoever lists
 * the grants next. That is how resources come back after a SIGKILL: the kernel frees the
 * owner's hugepage mappings, and the next cloister call frees its cores, CID and name.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/pool/internal.h"
#include "lib/pool/pool.h"
#include "lib/util/file.h"

struct pool {
	char *state_dir;
	char *sysroot;
	int lock_fd;
	unsigned lock_depth;
};

/* Largest state file we accept (a grant with a 1024-CPU list is well below this). */
#define STATE_FILE_MAX (64 * 1024)

const char *pool_default_state_dir(void)
{
	const char *env = getenv("NITRO_CLI_SOCKETS_PATH");

	return env && *env ? env : "/run/cloister";
}

const char *pool_default_sysroot(void)
{
	const char *env = getenv("CLOISTER_SYSFS_ROOT");

	return env ? env : "";
}

int pool_open(const char *state_dir, const char *sysroot, struct pool **out, struct cl_diag *d)
{
	char path[PATH_MAX];
	struct pool *p;
	int err;

	*out = NULL;
	if (!state_dir)
		state_dir = pool_default_state_dir();
	if (!sysroot)
		sysroot = pool_default_sysroot();
	p = calloc(1, sizeof(*p));
	if (!p || !(p->state_dir = strdup(state_dir)) || !(p->sysroot = strdup(sysroot))) {
		cl_diag_set(d, "out of memory opening the pool state");
		goto nomem;
	}
	p->lock_fd = -1;
	if (snprintf(path, sizeof(path), "%s/enclaves", state_dir) >= (int)sizeof(path)) {
		cl_diag_set(d, "state directory path '%s' is too long", state_dir);
		goto io;
	}
	err = cl_mkdir_p(path, NULL);
	if (err) {
		cl_diag_set(d, "cannot create the state directory %s: %s%s", path, strerror(-err),
		            err == -EACCES ? " (run as root, or set NITRO_CLI_SOCKETS_PATH to a "
		                             "writable directory)"
		                           : "");
		goto io;
	}
	snprintf(path, sizeof(path), "%s/pool.lock", state_dir);
	p->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	/* flock works on a read-only descriptor too: a non-root user may still take the lock
	 * to read a consistent view (describe-enclaves). */
	if (p->lock_fd < 0 && (errno == EACCES || errno == EPERM || errno == EROFS))
		p->lock_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (p->lock_fd < 0) {
		cl_diag_set(d, "cannot open the pool lock %s: %s", path, strerror(errno));
		goto io;
	}
	*out = p;
	return POOL_OK;
io:
	pool_close(p);
	return POOL_ERR_IO;
nomem:
	pool_close(p);
	return POOL_ERR_NOMEM;
}

void pool_close(struct pool *p)
{
	if (!p)
		return;
	if (p->lock_fd >= 0)
		close(p->lock_fd);
	free(p->state_dir);
	free(p->sysroot);
	free(p);
}

int pool_check_writable(const struct pool *p, struct cl_diag *d)
{
	char sub[PATH_MAX];
	const char *dirs[2] = { p->state_dir, sub };

	if (snprintf(sub, sizeof(sub), "%s/enclaves", p->state_dir) >= (int)sizeof(sub)) {
		cl_diag_set(d, "state directory path '%s' is too long", p->state_dir);
		return POOL_ERR_IO;
	}
	for (size_t i = 0; i < 2; i++) {
		char who[32] = "";
		int err;

		if (access(dirs[i], W_OK | X_OK) == 0)
			continue;
		err = errno;
		if (err != EROFS)
			snprintf(who, sizeof(who), " by uid %u", (unsigned)geteuid());
		cl_diag_set(d,
		            "the state directory %s is not writable%s (%s); enclaves keep their "
		            "grant and sockets there: %s (or set NITRO_CLI_SOCKETS_PATH to a "
		            "writable directory and run `cloister allocator` for it)",
		            dirs[i], who, strerror(err),
		            err == EROFS ? "remount it read-write" : "run as root");
		return POOL_ERR_IO;
	}
	return POOL_OK;
}

const char *pool_state_dir(const struct pool *p)
{
	return p->state_dir;
}

const char *pool_sysroot(const struct pool *p)
{
	return p->sysroot;
}

int pool_lock(struct pool *p, struct cl_diag *d)
{
	if (p->lock_depth++)
		return POOL_OK;
	while (flock(p->lock_fd, LOCK_EX) < 0) {
		if (errno == EINTR)
			continue;
		p->lock_depth = 0;
		cl_diag_set(d, "cannot lock %s/pool.lock: %s", p->state_dir, strerror(errno));
		return POOL_ERR_LOCK;
	}
	return POOL_OK;
}

void pool_unlock(struct pool *p)
{
	if (p->lock_depth && --p->lock_depth == 0)
		flock(p->lock_fd, LOCK_UN);
}

/* ---- key=value files ----------------------------------------------------------------------- */

struct kv_out {
	char *buf;
	size_t len, cap;
	bool failed;
};

static void kv_printf(struct kv_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void kv_printf(struct kv_out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf ? o->buf + o->len : NULL, o->buf ? o->cap - o->len : 0, fmt,
		              ap);
		va_end(ap);
		if (n < 0) {
			o->failed = true;
			return;
		}
		if (o->buf && (size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		size_t ncap = o->cap ? o->cap * 2 : 1024;
		while (ncap < o->len + (size_t)n + 1)
			ncap *= 2;
		char *nb = realloc(o->buf, ncap);
		if (!nb) {
			o->failed = true;
			return;
		}
		o->buf = nb;
		o->cap = ncap;
	}
}

static void kv_cpus(struct kv_out *o, const char *key, const struct cpuset *s)
{
	char list[POOL_CPULIST_MAX];

	if (pool_cpulist_format(s, list, sizeof(list)))
		o->failed = true;
	kv_printf(o, "%s=%s\n", key, list);
}

/* Parse the NUL-terminated key=value lines of @data (modified in place); @path names them in
 * messages. */
static int kv_parse(char *data, const char *path,
                    int (*fn)(const char *key, const char *val, void *arg), void *arg,
                    struct cl_diag *d)
{
	char *line, *save = NULL;
	int rc = POOL_OK;

	for (line = strtok_r((char *)data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');

		if (line[0] == '#')
			continue;
		if (!eq || eq == line) {
			cl_diag_set(
			        d,
			        "%s: malformed line '%.60s' (delete the file if no enclave uses "
			        "it)",
			        path, line);
			rc = POOL_ERR_STATE;
			break;
		}
		*eq = '\0';
		rc = fn(line, eq + 1, arg);
		if (rc) {
			cl_diag_set(
			        d, "%s: bad value for '%s' (delete the file if no enclave uses it)",
			        path, line);
			break;
		}
	}
	return rc;
}

/* Call @fn for each `key=value` line of @path. Returns POOL_OK, POOL_ERR_NOT_FOUND (no file),
 * POOL_ERR_IO, or whatever @fn returns. */
static int kv_read(const char *path, int (*fn)(const char *key, const char *val, void *arg),
                   void *arg, struct cl_diag *d)
{
	uint8_t *data;
	size_t len;
	int err, rc;

	err = cl_file_read_all(path, STATE_FILE_MAX, &data, &len, d);
	if (err == -ENOENT)
		return POOL_ERR_NOT_FOUND;
	if (err)
		return POOL_ERR_IO;
	rc = kv_parse((char *)data, path, fn, arg, d);
	free(data);
	return rc;
}

static int u64_val(const char *v, uint64_t *out)
{
	unsigned long long x;

	if (pool_parse_u64(v, &x))
		return POOL_ERR_STATE;
	*out = x;
	return POOL_OK;
}

static int hex_val(const char *v, uint64_t *out)
{
	char *end;

	if (!*v || !isxdigit((unsigned char)*v))
		return POOL_ERR_STATE;
	errno = 0;
	*out = strtoull(v, &end, 16);
	return errno || *end ? POOL_ERR_STATE : POOL_OK;
}

static int cpus_val(const char *v, struct cpuset *out)
{
	return pool_cpulist_parse(v, strlen(v), out, NULL) ? POOL_ERR_STATE : POOL_OK;
}

static int str_val(const char *v, char *out, size_t cap)
{
	size_t l = strlen(v);

	if (l >= cap)
		return POOL_ERR_STATE;
	memcpy(out, v, l + 1);
	return POOL_OK;
}

/* ---- pool record --------------------------------------------------------------------------- */

static int record_kv(const char *k, const char *v, void *arg)
{
	struct pool_record *r = arg;
	uint64_t x;

	if (!strcmp(k, "cpus"))
		return cpus_val(v, &r->cpus);
	if (!strcmp(k, "node")) {
		if (u64_val(v, &x) || x > INT_MAX)
			return POOL_ERR_STATE;
		r->node = (int)x;
		return POOL_OK;
	}
	if (!strcmp(k, "threads_per_core")) {
		if (u64_val(v, &x) || !x || x > 64)
			return POOL_ERR_STATE;
		r->threads_per_core = (unsigned)x;
		return POOL_OK;
	}
	if (!strcmp(k, "memory_mib"))
		return u64_val(v, &r->memory_mib);
	if (!strncmp(k, "hugepages_", 10)) {
		/* hugepages_<kib>kB=<pages added> */
		char num[32];
		size_t l = strlen(k + 10);
		unsigned long long kib;

		if (l < 3 || l - 2 >= sizeof(num) || strcmp(k + 10 + l - 2, "kB") ||
		    r->reserved.nsizes >= POOL_MAX_PAGE_SIZES)
			return POOL_ERR_STATE;
		memcpy(num, k + 10, l - 2);
		num[l - 2] = '\0';
		if (pool_parse_u64(num, &kib))
			return POOL_ERR_STATE;
		r->reserved.size[r->reserved.nsizes].kib = kib;
		if (u64_val(v, &r->reserved.size[r->reserved.nsizes].added))
			return POOL_ERR_STATE;
		r->reserved.nsizes++;
		return POOL_OK;
	}
	return POOL_OK; /* unknown keys: written by a newer cloister; ignore */
}

int pool_record_read(struct pool *p, struct pool_record *r, struct cl_diag *d)
{
	char path[PATH_MAX];
	int rc;

	memset(r, 0, sizeof(*r));
	snprintf(path, sizeof(path), "%s/pool.conf", p->state_dir);
	rc = kv_read(path, record_kv, r, d);
	if (rc == POOL_ERR_NOT_FOUND) {
		cl_diag_set(d,
		            "no enclave resource pool is configured in %s: run `cloister "
		            "allocator` (as root) after setting /etc/cloister/allocator.yaml",
		            p->state_dir);
		return POOL_ERR_NO_POOL;
	}
	if (rc)
		return rc;
	if (!cpuset_count(&r->cpus) || !r->threads_per_core) {
		cl_diag_set(d, "%s has no CPUs; run `cloister allocator` again", path);
		return POOL_ERR_STATE;
	}
	return POOL_OK;
}

int pool_record_write(struct pool *p, const struct pool_record *r, struct cl_diag *d)
{
	struct kv_out o = { 0 };
	char path[PATH_MAX];
	int rc = POOL_OK;

	kv_printf(&o, "# written by `cloister allocator`; see docs/resources.md\n");
	kv_cpus(&o, "cpus", &r->cpus);
	kv_printf(&o, "node=%d\nthreads_per_core=%u\nmemory_mib=%" PRIu64 "\n", r->node,
	          r->threads_per_core, r->memory_mib);
	for (unsigned i = 0; i < r->reserved.nsizes && i < POOL_MAX_PAGE_SIZES; i++)
		kv_printf(&o, "hugepages_%" PRIu64 "kB=%" PRIu64 "\n", r->reserved.size[i].kib,
		          r->reserved.size[i].added);
	if (o.failed) {
		cl_diag_set(d, "out of memory writing the pool record");
		rc = POOL_ERR_NOMEM;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/pool.conf", p->state_dir);
	if (cl_file_write_atomic(path, o.buf, o.len, 0644, d))
		rc = POOL_ERR_IO;
out:
	free(o.buf);
	return rc;
}

int pool_record_remove(struct pool *p, struct cl_diag *d)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/pool.conf", p->state_dir);
	if (unlink(path) < 0 && errno != ENOENT) {
		cl_diag_set(d, "cannot remove %s: %s", path, strerror(errno));
		return POOL_ERR_IO;
	}
	return POOL_OK;
}

/* ---- grants -------------------------------------------------------------------------------- */

static void grant_path(const struct pool *p, uint64_t slot, char *out, size_t len)
{
	snprintf(out, len, "%s/enclaves/%" PRIx64 ".grant", p->state_dir, slot);
}

static int grant_kv(const char *k, const char *v, void *arg)
{
	struct pool_grant *g = arg;
	uint64_t x;

	if (!strcmp(k, "slot_uid"))
		return hex_val(v, &g->slot_uid);
	if (!strcmp(k, "enclave_id"))
		return str_val(v, g->enclave_id, sizeof(g->enclave_id));
	if (!strcmp(k, "name"))
		return str_val(v, g->name, sizeof(g->name));
	if (!strcmp(k, "state")) {
		if (!strcmp(v, "init"))
			g->state = POOL_GRANT_INIT;
		else if (!strcmp(v, "running"))
			g->state = POOL_GRANT_RUNNING;
		else
			return POOL_ERR_STATE;
		return POOL_OK;
	}
	if (!strcmp(k, "owner_pid")) {
		if (u64_val(v, &x) || !x || x > INT_MAX)
			return POOL_ERR_STATE;
		g->owner_pid = (pid_t)x;
		return POOL_OK;
	}
	if (!strcmp(k, "owner_start"))
		return u64_val(v, &g->owner_start);
	if (!strcmp(k, "owner_uid")) {
		if (u64_val(v, &x) || x > UINT32_MAX)
			return POOL_ERR_STATE;
		g->owner_uid = (uid_t)x;
		return POOL_OK;
	}
	if (!strcmp(k, "cores"))
		return cpus_val(v, &g->cores);
	if (!strcmp(k, "vcpus"))
		return cpus_val(v, &g->vcpus);
	if (!strcmp(k, "memory_mib"))
		return u64_val(v, &g->memory_mib);
	if (!strcmp(k, "cid"))
		return u64_val(v, &g->cid);
	if (!strcmp(k, "flags"))
		return u64_val(v, &g->flags);
	return POOL_OK;
}

/* A grant names its slot and its owner, or it is not one. */
static int grant_check(const struct pool_grant *g, const char *what, struct cl_diag *d)
{
	if (g->slot_uid && g->owner_pid)
		return POOL_OK;
	cl_diag_set(d, "%s lacks slot_uid or owner_pid (delete it if no enclave uses it)", what);
	return POOL_ERR_STATE;
}

static int grant_read_path(const char *path, struct pool_grant *g, struct cl_diag *d)
{
	int rc;

	memset(g, 0, sizeof(*g));
	rc = kv_read(path, grant_kv, g, d);
	return rc ? rc : grant_check(g, path, d);
}

int pool_grant_read(struct pool *p, uint64_t slot_uid, struct pool_grant *g, struct cl_diag *d)
{
	char path[PATH_MAX];
	int rc;

	grant_path(p, slot_uid, path, sizeof(path));
	rc = grant_read_path(path, g, d);
	if (rc == POOL_ERR_NOT_FOUND)
		cl_diag_set(d,
		            "no enclave with slot %" PRIx64 " (it was released or its owner died)",
		            slot_uid);
	return rc;
}

int pool_grant_open(struct pool *p, uint64_t slot_uid, int *fd, struct cl_diag *d)
{
	char path[PATH_MAX];

	grant_path(p, slot_uid, path, sizeof(path));
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd >= 0)
		return POOL_OK;
	cl_diag_set(d, "cannot open %s: %s", path, strerror(errno));
	return errno == ENOENT ? POOL_ERR_NOT_FOUND : POOL_ERR_IO;
}

int pool_grant_read_fd(int fd, struct pool_grant *g, struct cl_diag *d)
{
	struct stat st;
	char *data;
	ssize_t n;
	int rc;

	memset(g, 0, sizeof(*g));
	if (fstat(fd, &st) < 0) {
		cl_diag_set(d, "cannot stat a grant: %s", strerror(errno));
		return POOL_ERR_IO;
	}
	/* Grants are replaced by rename and removed by unlink: either leaves the inode this fd
	 * holds without a name, and then the grant file of the slot is not this one. */
	if (st.st_nlink == 0) {
		cl_diag_set(d, "the grant was removed or replaced");
		return POOL_ERR_NOT_FOUND;
	}
	if (st.st_size < 0 || st.st_size > STATE_FILE_MAX) {
		cl_diag_set(d, "a grant of %lld bytes is larger than %d", (long long)st.st_size,
		            STATE_FILE_MAX);
		return POOL_ERR_STATE;
	}
	data = malloc((size_t)st.st_size + 1);
	if (!data) {
		cl_diag_set(d, "out of memory reading a grant");
		return POOL_ERR_NOMEM;
	}
	n = pread(fd, data, (size_t)st.st_size, 0);
	if (n < 0) {
		cl_diag_set(d, "cannot read a grant: %s", strerror(errno));
		free(data);
		return POOL_ERR_IO;
	}
	data[n] = '\0';
	rc = kv_parse(data, "the pinned grant", grant_kv, g, d);
	free(data);
	return rc ? rc : grant_check(g, "the pinned grant", d);
}

int pool_grant_write(struct pool *p, const struct pool_grant *g, struct cl_diag *d)
{
	struct kv_out o = { 0 };
	char path[PATH_MAX];
	int rc = POOL_OK;

	if (strchr(g->name, '\n') || strchr(g->enclave_id, '\n')) {
		cl_diag_set(d, "enclave name or ID contains a newline");
		return POOL_ERR_NAME;
	}
	kv_printf(&o, "slot_uid=%" PRIx64 "\nenclave_id=%s\nname=%s\nstate=%s\n", g->slot_uid,
	          g->enclave_id, g->name, g->state == POOL_GRANT_RUNNING ? "running" : "init");
	kv_printf(&o, "owner_pid=%ld\nowner_start=%" PRIu64 "\nowner_uid=%lu\n", (long)g->owner_pid,
	          g->owner_start, (unsigned long)g->owner_uid);
	kv_cpus(&o, "cores", &g->cores);
	kv_cpus(&o, "vcpus", &g->vcpus);
	kv_printf(&o, "memory_mib=%" PRIu64 "\ncid=%" PRIu64 "\nflags=%" PRIu64 "\n", g->memory_mib,
	          g->cid, g->flags);
	if (o.failed) {
		cl_diag_set(d, "out of memory writing a grant");
		rc = POOL_ERR_NOMEM;
		goto out;
	}
	grant_path(p, g->slot_uid, path, sizeof(path));
	if (cl_file_write_atomic(path, o.buf, o.len, 0644, d))
		rc = POOL_ERR_IO;
out:
	free(o.buf);
	return rc;
}

int pool_grant_remove(struct pool *p, uint64_t slot_uid, struct cl_diag *d)
{
	char path[PATH_MAX];

	grant_path(p, slot_uid, path, sizeof(path));
	if (unlink(path) < 0) {
		if (errno == ENOENT) {
			cl_diag_set(d, "no enclave with slot %" PRIx64, slot_uid);
			return POOL_ERR_NOT_FOUND;
		}
		cl_diag_set(d, "cannot remove %s: %s", path, strerror(errno));
		return POOL_ERR_IO;
	}
	return POOL_OK;
}

int pool_process_start_time(pid_t pid, uint64_t *start)
{
	char path[64], buf[1024], *p, *save = NULL, *tok;
	unsigned long long v;
	int field = 2;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if (pool_read_small(path, buf, sizeof(buf)) < 0)
		return POOL_ERR_NOT_FOUND;
	/* comm (field 2) may contain spaces and ')': the fields resume after the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return POOL_ERR_NOT_FOUND;
	for (tok = strtok_r(p + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		field++;
		/* A zombie has already released its memory: it owns nothing any more. */
		if (field == 3 && (tok[0] == 'Z' || tok[0] == 'X'))
			return POOL_ERR_NOT_FOUND;
		if (field == 22) {
			if (pool_parse_u64(tok, &v))
				return POOL_ERR_NOT_FOUND;
			*start = v;
			return POOL_OK;
		}
	}
	return POOL_ERR_NOT_FOUND;
}

bool pool_grant_owner_alive(const struct pool_grant *g)
{
	uint64_t start;

	if (pool_process_start_time(g->owner_pid, &start))
		return false;
	return !g->owner_start || start == g->owner_start;
}

int pool_grants_list(struct pool *p, struct pool_grant **out, size_t *n, size_t *reclaimed,
                     struct cl_diag *d)
{
	char dir[PATH_MAX], path[PATH_MAX + 300];
	struct pool_grant *arr = NULL;
	size_t cnt = 0, cap = 0, gone = 0;
	struct dirent *e;
	DIR *dp;
	int rc = POOL_OK;

	*out = NULL;
	*n = 0;
	snprintf(dir, sizeof(dir), "%s/enclaves", p->state_dir);
	dp = opendir(dir);
	if (!dp) {
		cl_diag_set(d, "cannot list %s: %s", dir, strerror(errno));
		return POOL_ERR_IO;
	}
	while ((e = readdir(dp))) {
		size_t l = strlen(e->d_name);
		struct pool_grant g;

		const char *tmp = strstr(e->d_name, ".grant.tmp.");

		/* A writer that died between creating its temporary file and renaming it leaves
		 * "<slot>.grant.tmp.<pid>" behind; remove it once that pid is gone. */
		if (tmp) {
			unsigned long long wpid;
			uint64_t st;

			if (!pool_parse_u64(tmp + 11, &wpid) && wpid <= INT_MAX &&
			    pool_process_start_time((pid_t)wpid, &st) == POOL_ERR_NOT_FOUND) {
				snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
				unlink(path);
			}
			continue;
		}
		if (l < 7 || strcmp(e->d_name + l - 6, ".grant"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		rc = grant_read_path(path, &g, d);
		if (rc == POOL_ERR_NOT_FOUND) {
			rc = POOL_OK; /* released meanwhile (reader without the lock) */
			continue;
		}
		if (rc)
			goto fail;
		if (!pool_grant_owner_alive(&g)) {
			/* Owner gone: the kernel already freed its memory; free the rest. */
			if (unlink(path) == 0)
				gone++;
			continue;
		}
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			struct pool_grant *na = realloc(arr, ncap * sizeof(*arr));

			if (!na) {
				cl_diag_set(d, "out of memory listing enclaves");
				rc = POOL_ERR_NOMEM;
				goto fail;
			}
			arr = na;
			cap = ncap;
		}
		arr[cnt++] = g;
	}
	closedir(dp);
	*out = arr;
	*n = cnt;
	if (reclaimed)
		*reclaimed = gone;
	return POOL_OK;
fail:
	closedir(dp);
	free(arr);
	return rc;
}

/* ---- CIDs, names, IDs ---------------------------------------------------------------------- */

bool pool_cid_reserved(uint64_t cid)
{
	return cid <= 3 || cid >= 0xFFFFFFFFULL;
}

static bool cid_used(const struct pool_grant *g, size_t n, uint64_t self, uint64_t cid, size_t *who)
{
	for (size_t i = 0; i < n; i++) {
		if (g[i].slot_uid != self && g[i].cid == cid) {
			if (who)
				*who = i;
			return true;
		}
	}
	return false;
}

int pool_cid_pick(const struct pool_grant *g, size_t n, uint64_t self_slot, uint64_t requested,
                  uint64_t *out, struct cl_diag *d)
{
	size_t who;

	if (requested == 0) {
		/* n grants can block at most n candidates, so this ends quickly. */
		for (uint64_t cid = POOL_CID_AUTO_FIRST; cid < 0xFFFFFFFFULL; cid++) {
			if (!cid_used(g, n, self_slot, cid, NULL)) {
				*out = cid;
				return POOL_OK;
			}
		}
		cl_diag_set(d, "no free enclave CID left");
		return POOL_ERR_CID;
	}
	if (pool_cid_reserved(requested)) {
		cl_diag_set(d,
		            "CID %" PRIu64 " cannot be used: 0-3 and 4294967295 (and above) are "
		            "reserved; use a CID from 4 to 4294967294, or 0 to pick one",
		            requested);
		return POOL_ERR_CID;
	}
	if (cid_used(g, n, self_slot, requested, &who)) {
		cl_diag_set(d,
		            "CID %" PRIu64 " is already used by enclave %s (%s); choose another or "
		            "leave it out to pick a free one",
		            requested, g[who].enclave_id, g[who].name);
		return POOL_ERR_CID;
	}
	*out = requested;
	return POOL_OK;
}

static bool name_used(const struct pool_grant *g, size_t n, uint64_t self, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (g[i].slot_uid != self && !strcmp(g[i].name, name))
			return true;
	return false;
}

int pool_name_pick(const struct pool_grant *g, size_t n, uint64_t self_slot, const char *requested,
                   char *out, struct cl_diag *d)
{
	size_t len = strlen(requested);

	if (len == 0 || len > POOL_NAME_MAX - 8) {
		cl_diag_set(d, "enclave name must be 1 to %d bytes long (got %zu)",
		            POOL_NAME_MAX - 8, len);
		return POOL_ERR_NAME;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)requested[i];

		if (c < 0x20 || c >= 0x7f || c == '/') {
			cl_diag_set(
			        d,
			        "enclave name '%.40s' contains byte 0x%02x; use printable ASCII "
			        "without '/'",
			        requested, c);
			return POOL_ERR_NAME;
		}
	}
	if (!name_used(g, n, self_slot, requested)) {
		memcpy(out, requested, len + 1);
		return POOL_OK;
	}
	for (size_t k = 1; k <= n; k++) {
		snprintf(out, POOL_NAME_MAX, "%s_%zu", requested, k);
		if (!name_used(g, n, self_slot, out))
			return POOL_OK;
	}
	/* Unreachable: n grants cannot block n + 1 names. */
	cl_diag_set(d, "no free name for '%s'", requested);
	return POOL_ERR_NAME;
}

void pool_enclave_id_prefix(const char *sysroot, char out[POOL_ID_PREFIX_MAX])
{
	char path[PATH_MAX], raw[POOL_ID_PREFIX_MAX], tag[POOL_ID_PREFIX_MAX];
	size_t t = 0;
	long n;

	snprintf(path, sizeof(path), "%s/sys/devices/virtual/dmi/id/board_asset_tag",
	         sysroot ? sysroot : "");
	n = pool_read_small(path, raw, sizeof(raw));
	for (long i = 0; i < n; i++) {
		unsigned char c = (unsigned char)raw[i];

		/* Whitespace removed (nitro-compat §2.3); other non-printables would corrupt IDs. */
		if (isspace(c) || c < 0x21 || c > 0x7e || c == '/')
			continue;
		tag[t++] = (char)c;
	}
	tag[t] = '\0';
	snprintf(out, POOL_ID_PREFIX_MAX, "%s", t ? tag : "i-0000000000000000");
}

void pool_enclave_id(const char *sysroot, uint64_t slot_uid, char out[POOL_ID_MAX])
{
	char prefix[POOL_ID_PREFIX_MAX];

	pool_enclave_id_prefix(sysroot, prefix);
	snprintf(out, POOL_ID_MAX, "%s-enc%" PRIx64, prefix, slot_uid);
}

int pool_enclave_id_parse(const char *id, uint64_t *slot_uid)
{
	const char *p = NULL, *q = id;
	uint64_t v;

	while ((q = strstr(q, "-enc"))) {
		p = q + 4;
		q = p;
	}
	if (!p || !*p || strlen(p) > 16 || hex_val(p, &v) || !v)
		return POOL_ERR_NOT_FOUND;
	*slot_uid = v;
	return POOL_OK;
}
