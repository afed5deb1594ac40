/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The monitor's side of the NSM: a client of cloister-nsmd (lib/nsm/wire.h). open() lays the
 * boot out from its own parse of the image (no cryptography here), hands the daemon the same
 * bytes in a sealed memfd to measure, verify and mint a leaf for, and keeps the connection;
 * handle() forwards each guest request over it.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cloister/attest.h"
#include "lib/nsm/device.h"
#include "lib/nsm/wire.h"
#include "lib/pool/pool.h"
#include "lib/util/file.h"
#include "vmm/devices/nsm_backend.h"

/* A session: the connection, and the name of the last host-side error for strerror(). */
struct nsm_client {
	int fd;
	char what[128];
};

/* A cloister run from its build tree starts the daemon built beside it; an installed one, the
 * installed daemon. Never a path from the environment: the daemon holds the keys. */
static void daemon_path(char *out, size_t len)
{
	static const char root[] = CLOISTER_BUILD_ROOT "/";
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n > 0) {
		exe[n] = '\0';
		if (!strncmp(exe, root, sizeof(root) - 1)) {
			snprintf(out, len, "%ssrc/nsmd/%s", root, NSMD_FILE);
			return;
		}
	}
	snprintf(out, len, "%s/%s", CLOISTER_NSMD_DIR, NSMD_FILE);
}

static int connect_daemon(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = NSMD_TIMEOUT_S };
	size_t n = strlen(name);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	memcpy(sa.sun_path + 1, name, n);
	if (connect(fd, (struct sockaddr *)&sa,
	            (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	/* A daemon that stops answering ends this enclave rather than hanging a vCPU. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/*
 * Start the daemon (detached: it outlives this monitor while other enclaves use it) and wait
 * until it listens, or says why it cannot. Only async-signal-safe calls between fork and exec:
 * the monitor may have threads.
 */
static int spawn_daemon(const char *name, const char *ca_dir, struct cl_diag *d)
{
	char path[PATH_MAX + 64], said[256] = "", fdarg[] = "3", namearg[108], caarg[PATH_MAX];
	char opt_name[] = "--name", opt_ready[] = "--ready-fd", opt_ca[] = "--ca-dir";
	char *argv[] = { path, opt_name, namearg, opt_ready, fdarg, opt_ca, caarg, NULL };
	int p[2], st = 0;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	daemon_path(path, sizeof(path));
	if (access(path, X_OK) < 0) {
		cl_diag_set(d, "the NSM daemon %s: %s (rebuild or reinstall cloister)", path,
		            strerror(errno));
		return -1;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		cl_diag_set(d, "pipe: %s", strerror(errno));
		return -1;
	}
	snprintf(namearg, sizeof(namearg), "%s", name);
	snprintf(caarg, sizeof(caarg), "%s", ca_dir);
	pid = fork();
	if (pid == 0) {
		sigset_t none;
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setsid();
		if (fork() != 0)
			_exit(0);
		if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0 ||
		    dup2(p[1], 3) < 0)
			_exit(127);
		close_range(4, ~0u, 0);
		execv(path, argv);
		_exit(127);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		cl_diag_set(d, "fork: %s", strerror(errno));
		return -1;
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	while (got + 1 < sizeof(said) &&
	       ((n = read(p[0], said + got, sizeof(said) - 1 - got)) > 0 ||
	        (n < 0 && errno == EINTR)))
		got += n > 0 ? (size_t)n : 0;
	close(p[0]);
	said[got] = '\0';
	said[strcspn(said, "\n")] = '\0';
	if (strcmp(said, "ok")) {
		cl_diag_set(d, "the NSM daemon %s did not start: %s", path,
		            *said ? said : "it exited without a word");
		return -1;
	}
	return 0;
}

/* A copy of @eif in a memfd sealed against change: what the daemon measures is what boots. */
static int sealed_copy(const uint8_t *eif, size_t len, struct cl_diag *d)
{
	int fd = memfd_create("cloister-eif", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0) {
		cl_diag_set(d, "memfd_create: %s", strerror(errno));
		return -1;
	}
	if (cl_write_full(fd, eif, len) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		cl_diag_set(d, "copying the image for the NSM: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* The daemon must run as this user (anyone can bind an abstract name first). */
static bool daemon_is_ours(int fd, struct cl_diag *d)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || cr.uid != geteuid()) {
		cl_diag_set(d, "the NSM daemon's socket is held by uid %d, not us (%d)",
		            len == sizeof(cr) ? (int)cr.uid : -1, (int)geteuid());
		return false;
	}
	return true;
}

static uint32_t put_str(uint8_t *buf, size_t *at, const char *s)
{
	size_t n;

	if (!s)
		return NSMD_NONE;
	n = strlen(s);
	if (n > NSMD_STR_MAX)
		return NSMD_NONE - 1; /* refused by the caller */
	memcpy(buf + *at, s, n);
	*at += n;
	return (uint32_t)n;
}

/*
 * One try at a session: connect (starting the daemon if none listens), send the request,
 * read the answer. -EAGAIN when the daemon went away in between (it was ending as we came).
 */
static int open_session(const char *name, const char *ca_dir, const struct nsmd_open *o,
                        const uint8_t *strs, size_t strs_len, int memfd, struct nsmd_opened *reply,
                        struct cl_diag *d)
{
	ssize_t n;
	int fd = connect_daemon(name);

	if (fd == -ECONNREFUSED || fd == -ENOENT) {
		if (spawn_daemon(name, ca_dir, d) < 0)
			return -1;
		fd = connect_daemon(name);
		if (fd == -ECONNREFUSED || fd == -ENOENT)
			return -EAGAIN;
	}
	if (fd < 0) {
		cl_diag_set(d, "connecting to the NSM daemon @%s: %s", name, strerror(-fd));
		return -1;
	}
	if (!daemon_is_ours(fd, d)) {
		close(fd);
		return -1;
	}
	if (nsmd_send(fd, o, sizeof(*o), strs, strs_len, memfd) < 0) {
		close(fd);
		return -EAGAIN;
	}
	n = nsmd_recv(fd, reply, sizeof(*reply), NULL);
	if (n == 0 || n == -ECONNRESET || n == -EPIPE) {
		close(fd);
		return -EAGAIN;
	}
	if (n != (ssize_t)sizeof(*reply) || reply->type != NSMD_OPENED) {
		cl_diag_set(d, "the NSM daemon did not answer the session request (%s)",
		            n < 0 ? strerror((int)-n) : "a malformed answer");
		close(fd);
		return -1;
	}
	return fd;
}

static enum nsm_backend_err client_open(const struct nsm_backend_config *cfg, const uint8_t *eif,
                                        size_t len, void **state, struct eif_image *img,
                                        struct cl_diag *d)
{
	char name[108], ca_dir[PATH_MAX];
	struct nsmd_open o = { .type = NSMD_OPEN, .proto = NSMD_PROTO };
	struct nsmd_opened reply;
	struct nsm_client *c = NULL;
	uint8_t *strs = NULL;
	size_t at = 0;
	int memfd = -1, fd = -1;
	enum nsm_backend_err ret = NSM_BACKEND_SETUP;

	*state = NULL;
	if (eif_parse_layout(eif, len, 0, img, d) != EIF_OK)
		return NSM_BACKEND_IMAGE;
	/* The CA directory, made absolute: the daemon's working directory is /, and it is given
	 * this one path. */
	{
		const char *dir = attest_ca_dir(cfg->ca_dir);
		char cwd[PATH_MAX];
		int n;

		if (dir[0] != '/' && getcwd(cwd, sizeof(cwd)))
			n = snprintf(ca_dir, sizeof(ca_dir), "%s/%s", cwd, dir);
		else
			n = snprintf(ca_dir, sizeof(ca_dir), "%s", dir);
		if (n < 0 || (size_t)n >= sizeof(ca_dir)) {
			cl_diag_set(d, "the CA directory %s is too long a path", dir);
			eif_image_release(img);
			return NSM_BACKEND_SETUP;
		}
	}
	strs = malloc(NSMD_NSTR * NSMD_STR_MAX);
	c = calloc(1, sizeof(*c));
	if (!strs || !c) {
		cl_diag_set(d, "out of memory");
		goto fail;
	}
	o.debug_mode = cfg->debug_mode;
	o.str_len[NSMD_STR_MODULE_ID] = put_str(strs, &at, cfg->module_id);
	o.str_len[NSMD_STR_CA_DIR] = put_str(strs, &at, ca_dir);
	o.str_len[NSMD_STR_PARENT_ROLE] = put_str(strs, &at, cfg->parent_role);
	o.str_len[NSMD_STR_PARENT_ID] = put_str(strs, &at, cfg->parent_id);
	for (unsigned i = 0; i < NSMD_NSTR; i++) {
		if (o.str_len[i] == NSMD_NONE - 1) {
			cl_diag_set(d, "an NSM setting is longer than %u bytes", NSMD_STR_MAX);
			goto fail;
		}
	}
	o.eif_len = len;
	memfd = sealed_copy(eif, len, d);
	if (memfd < 0)
		goto fail;
	nsmd_socket_name(pool_default_state_dir(), ca_dir, name, sizeof(name));
	for (int attempt = 0; attempt < 3; attempt++) {
		fd = open_session(name, ca_dir, &o, strs, at, memfd, &reply, d);
		if (fd != -EAGAIN)
			break;
		cl_diag_set(d, "the NSM daemon @%s ended while we connected, three times", name);
	}
	if (fd < 0)
		goto fail;
	if (reply.status != NSM_BACKEND_OK) {
		reply.diag[sizeof(reply.diag) - 1] = '\0';
		cl_diag_set(d, "%s", reply.diag);
		ret = reply.status == NSM_BACKEND_IMAGE || reply.status == NSM_BACKEND_SIGNATURE
		              ? (enum nsm_backend_err)reply.status
		              : NSM_BACKEND_SETUP;
		goto fail;
	}
	img->meas = reply.meas;
	img->measured = true;
	c->fd = fd;
	*state = c;
	close(memfd);
	free(strs);
	return NSM_BACKEND_OK;
fail:
	if (fd >= 0)
		close(fd);
	if (memfd >= 0)
		close(memfd);
	free(strs);
	free(c);
	eif_image_release(img);
	return ret;
}

static int client_handle(void *state, const uint8_t *req, size_t req_len, uint8_t *resp,
                         size_t resp_cap, size_t *resp_len)
{
	struct nsm_client *c = state;
	struct nsmd_request rq = { .type = NSMD_REQUEST, .len = req_len };
	struct nsmd_response rs;
	uint8_t in[sizeof(rs) + NSM_RESPONSE_MAX];
	ssize_t n;
	int e;

	rq.resp_cap = resp_cap > NSM_RESPONSE_MAX ? NSM_RESPONSE_MAX : (uint32_t)resp_cap;
	e = nsmd_send(c->fd, &rq, sizeof(rq), req,
	              req_len < NSM_REQUEST_MAX ? req_len : NSM_REQUEST_MAX, -1);
	if (e < 0) {
		snprintf(c->what, sizeof(c->what), "sending to the NSM daemon: %s", strerror(-e));
		return -1;
	}
	n = nsmd_recv(c->fd, in, sizeof(in), NULL);
	if (n < (ssize_t)sizeof(rs)) {
		snprintf(c->what, sizeof(c->what), "the NSM daemon %s",
		         n < 0 ? strerror((int)-n) : "closed the session");
		return -1;
	}
	memcpy(&rs, in, sizeof(rs));
	if (rs.type != NSMD_RESPONSE || (size_t)n - sizeof(rs) > rq.resp_cap) {
		snprintf(c->what, sizeof(c->what), "a malformed answer from the NSM daemon");
		return -1;
	}
	if (rs.err) {
		rs.what[sizeof(rs.what) - 1] = '\0';
		snprintf(c->what, sizeof(c->what), "%s", rs.what);
		return rs.err;
	}
	memcpy(resp, in + sizeof(rs), (size_t)n - sizeof(rs));
	*resp_len = (size_t)n - sizeof(rs);
	return 0;
}

static const char *client_strerror(void *state, int err)
{
	struct nsm_client *c = state;

	(void)err;
	return c->what;
}

static void client_close(void *state)
{
	struct nsm_client *c = state;

	close(c->fd); /* the daemon drops the session and its key */
	free(c);
}

static const struct nsm_backend client = {
	.abi = NSM_BACKEND_ABI,
	.open = client_open,
	.handle = client_handle,
	.strerror = client_strerror,
	.close = client_close,
};

const struct nsm_backend *nsm_backend_load(struct cl_diag *d)
{
	(void)d;
	return &client;
}
