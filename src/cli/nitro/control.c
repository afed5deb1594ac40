/* SPDX-License-Identifier: Apache-2.0 */
/* The CLI side of the enclave processes' control sockets (protocol in enclave.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/nitro/enclave.h"
#include "lib/util/file.h"

/* Connect to @path. Returns the fd, or -errno. */
static int control_connect(const char *path, unsigned timeout_s)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = timeout_s };
	int fd, err;

	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	strcpy(a.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		err = errno;
		close(fd);
		return -err;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

bool enclave_alive(const char *socket)
{
	int fd = control_connect(socket, 2);

	if (fd < 0)
		return fd == -EACCES; /* someone listens; we may not talk to it */
	close(fd);
	return true;
}

/* Read until EOF (at most 1 MiB). */
static char *read_all(int fd, size_t *len)
{
	size_t cap = 8192, n = 0;
	char *buf = malloc(cap + 1), *nb;
	ssize_t r;

	if (!buf)
		return NULL;
	for (;;) {
		if (n == cap) {
			if (cap >= (1u << 20))
				break;
			nb = realloc(buf, cap * 2 + 1);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Ask the enclave process at @path to describe itself. 0, or -errno of the connection. */
static int describe_one(const char *path, struct enclave_info *info)
{
	size_t len = 0;
	char *buf;
	int fd = control_connect(path, 5), rc;

	if (fd < 0)
		return fd;
	memset(info, 0, sizeof(*info));
	snprintf(info->socket, sizeof(info->socket), "%s", path);
	if (cl_write_full(fd, "describe\n", 9) < 0) {
		close(fd);
		return -EIO;
	}
	buf = read_all(fd, &len);
	close(fd);
	if (!buf)
		return -ENOMEM;
	rc = enclave_describe_parse(buf, len, info);
	free(buf);
	if (rc) {
		free(info->metadata);
		info->metadata = NULL;
		return -EPROTO;
	}
	return 0;
}

static int by_cid(const void *a, const void *b)
{
	const struct enclave_info *x = a, *y = b;

	return x->cid < y->cid ? -1 : x->cid > y->cid;
}

/* <EnclaveID>.vsock of an enclave that is not running any more (its process was killed before
 * the monitor could remove it): delete it once nobody listens on it. Sockets of running
 * enclaves are not touched (a probe would look like a connection to the monitor). */
static void remove_stale_vsock(const char *dir, const char *name, const struct enclave_info *v,
                               size_t n)
{
	size_t len = strlen(name);
	char path[PATH_MAX];
	int fd;

	if (len < 7 || strcmp(name + len - 6, ".vsock"))
		return;
	for (size_t i = 0; i < n; i++)
		if (strlen(v[i].id) == len - 6 && !strncmp(v[i].id, name, len - 6))
			return;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = control_connect(path, 1);
	if (fd == -ECONNREFUSED)
		unlink(path);
	else if (fd >= 0)
		close(fd);
}

int enclave_list(struct enclave_info **out, size_t *n, struct cl_diag *d)
{
	const char *dir = pool_default_state_dir();
	struct enclave_info *v = NULL, *nv;
	size_t count = 0, cap = 0;
	struct dirent *ent;
	struct pool *p = NULL;
	DIR *dh;

	*out = NULL;
	*n = 0;
	dh = opendir(dir);
	if (!dh) {
		if (errno == ENOENT)
			return 0; /* nothing ever ran here */
		cl_diag_set(d, "cannot read the sockets directory %s: %s", dir, strerror(errno));
		return E_READ_FROM_DISK;
	}
	/* Reclaim the grants of enclave processes that died (SIGKILL): their CPUs, memory
	 * budget and CID go back to the pool now, not at the next run-enclave. Best effort:
	 * a user who cannot take the pool lock can still list. */
	if (pool_open(dir, NULL, &p, NULL) == 0 && pool_lock(p, NULL) == 0) {
		struct pool_grant *g = NULL;
		size_t ng = 0;

		if (pool_grants_list(p, &g, &ng, NULL, NULL) == 0)
			free(g);
		pool_unlock(p);
	}
	pool_close(p);

	while ((ent = readdir(dh))) {
		size_t len = strlen(ent->d_name);
		char path[PATH_MAX];
		int rc;

		if (len < 6 || strcmp(ent->d_name + len - 5, ".sock"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, ent->d_name);
		if (count == cap) {
			cap = cap ? cap * 2 : 8;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				closedir(dh);
				enclave_list_free(v, count);
				cl_diag_set(d, "out of memory");
				return E_UNSPECIFIED;
			}
			v = nv;
		}
		rc = describe_one(path, &v[count]);
		if (rc == -ECONNREFUSED || rc == -ENOENT) {
			/* nitro-compat §2.3: a socket nobody listens on is stale; delete it */
			unlink(path);
			continue;
		}
		if (rc)
			continue; /* EACCES, or a process that does not answer: skip it */
		count++;
	}
	rewinddir(dh);
	while ((ent = readdir(dh)))
		remove_stale_vsock(dir, ent->d_name, v, count);
	closedir(dh);
	if (count)
		qsort(v, count, sizeof(*v), by_cid);
	else {
		free(v);
		v = NULL;
	}
	*out = v;
	*n = count;
	return 0;
}

void enclave_list_free(struct enclave_info *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].metadata);
	free(v);
}

/* Read one line (without the newline) into @buf. Returns its length or -1 at EOF/error. */
static int read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;

	while (n < len - 1) {
		ssize_t r = read(fd, buf + n, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
	return (int)n;
}

int enclave_terminate(const char *socket, unsigned timeout_s, struct cl_diag *d)
{
	char line[64];
	int fd = control_connect(socket, timeout_s);

	if (fd < 0) {
		cl_diag_set(d, "Failed to connect to the enclave process at %s: %s", socket,
		            strerror(-fd));
		return fd == -EACCES ? E_FILE_PERMISSIONS : E_ENCLAVE_PROCESS_CONNECTION;
	}
	if (cl_write_full(fd, "terminate\n", 10) < 0 || read_line(fd, line, sizeof(line)) < 0) {
		close(fd);
		cl_diag_set(d, "the enclave process at %s did not answer", socket);
		return E_ENCLAVE_PROCESS_COMMAND_NOT_EXECUTED;
	}
	if (!strcmp(line, "denied")) {
		close(fd);
		cl_diag_set(d,
		            "only the user who started the enclave (or root) may terminate it "
		            "(uid %u is neither)",
		            (unsigned)getuid());
		return E_FILE_PERMISSIONS;
	}
	/* "terminating": wait until its resources are back in the pool. EOF also means the
	 * process is gone (it was killed meanwhile). */
	if (read_line(fd, line, sizeof(line)) < 0 && errno == EAGAIN) {
		close(fd);
		cl_diag_set(d, "the enclave process at %s did not finish within %u s", socket,
		            timeout_s);
		return E_ENCLAVE_PROCESS_COMMAND_NOT_EXECUTED;
	}
	close(fd);
	return 0;
}

static int copy_out(int fd)
{
	char buf[4096];

	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return E_ENCLAVE_CONSOLE_READ;
		if (r == 0)
			return 0;
		if (cl_write_full(STDOUT_FILENO, buf, (size_t)r) < 0)
			return E_ENCLAVE_CONSOLE_WRITE;
	}
}

int enclave_console_stream(const char *enclave_id, const char *socket, unsigned timeout_s)
{
	char path[PATH_MAX];
	struct timespec t0, now;
	int fd, rc;

	enclave_console_path(enclave_id, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cli_fail(E_ENCLAVE_CONSOLE_CONNECTION, "cannot open the console log %s: %s",
		                path, strerror(errno));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		bool alive = socket && enclave_alive(socket);

		rc = copy_out(fd);
		if (rc || !alive)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (timeout_s && now.tv_sec - t0.tv_sec >= (time_t)timeout_s)
			break;
		poll(NULL, 0, 100);
	}
	close(fd);
	if (rc)
		return cli_fail((enum cli_error)rc, "console of enclave %s: %s", enclave_id,
		                strerror(errno));
	return 0;
}
