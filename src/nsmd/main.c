/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister-nsmd: the host's Nitro Secure Module. It holds what makes an attestation document
 * worth anything: the CA's intermediate key while it mints an enclave's leaf, each enclave's
 * leaf key and its PCRs. Monitors parse the guest's virtqueues and forward NSM requests here
 * over one connection each (lib/nsm/wire.h), so a guest that took over its monitor holds no
 * key: it can make the requests its own enclave could make, no others (docs/security.md).
 *
 * One daemon per user, state directory and CA directory, on an abstract Unix socket (the name
 * is the lock: a second daemon cannot bind it, and it vanishes with the process). Monitors
 * start it when they find none; it ends --linger seconds after its last session. A thread per
 * session: an image is measured (SHA-384 over the whole EIF) while other enclaves' requests
 * are answered.
 * Once listening, the process runs under a seccomp allow-list (SANDBOX_NSMD), and the only
 * files it can reach are its CA directory's and /proc's (Landlock, where the kernel has it):
 * the CA directory is part of its name, so each daemon serves one.
 *
 * Usage: cloister-nsmd --name NAME --ca-dir DIR [--ready-fd FD] [--linger SECONDS]
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "lib/nsm/device.h"
#include "lib/nsm/wire.h"
#include "lib/util/file.h"
#include "vmm/devices/nsm_backend.h"
#include "vmm/sandbox/landlock.h"
#include "vmm/sandbox/seccomp.h"

static atomic_uint live_sessions;
static int wake_fd = -1;
static unsigned own_filters;
static const char *ca_dir; /* absolute; every session's CA (--ca-dir) */

/*
 * How many seccomp filters @pid runs under (Seccomp_filters in /proc/PID/status, Linux 5.9;
 * on older kernels 0 or 1 from the Seccomp mode). -1 if it cannot be read.
 */
static long seccomp_filters(pid_t pid)
{
	char path[64], line[256];
	long filters = -1, mode = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Seccomp:", 8))
			mode = strtol(line + 8, NULL, 10);
		else if (!strncmp(line, "Seccomp_filters:", 16))
			filters = strtol(line + 16, NULL, 10);
	}
	fclose(f);
	if (filters >= 0)
		return filters;
	return mode < 0 ? -1 : mode == 2;
}

/* "sealed against writes and resizing, and @len bytes long": what was measured stays so. */
static bool memfd_fixed(int fd, uint64_t len)
{
	const int want = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW;
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);

	return seals >= 0 && (seals & want) == want && fstat(fd, &st) == 0 &&
	       (uint64_t)st.st_size == len;
}

static void reply_opened(int fd, enum nsm_backend_err status, const struct eif_measurements *m,
                         const char *diag)
{
	struct nsmd_opened o;

	memset(&o, 0, sizeof(o));
	o.type = NSMD_OPENED;
	o.status = (uint32_t)status;
	if (m)
		o.meas = *m;
	snprintf(o.diag, sizeof(o.diag), "%s", diag ? diag : "");
	(void)nsmd_send(fd, &o, sizeof(o), NULL, 0, -1);
}

/*
 * The session's first packet: set up the enclave's NSM from it. Returns its state, or NULL
 * after telling the monitor why not.
 */
static void *session_open(int fd, pid_t peer)
{
	static const size_t cap = sizeof(struct nsmd_open) + NSMD_NSTR * NSMD_STR_MAX;
	struct nsm_backend_config cfg = { 0 };
	char *str[NSMD_NSTR] = { NULL };
	struct cl_diag d = { "" };
	struct nsmd_open *o;
	struct eif_image img;
	void *st = NULL, *map = MAP_FAILED;
	uint8_t *buf = malloc(cap), *p;
	size_t used = sizeof(*o);
	int memfd = -1;
	ssize_t n;
	long filters;

	if (!buf)
		return NULL;
	n = nsmd_recv(fd, buf, cap, &memfd);
	o = (struct nsmd_open *)buf;
	if (n < (ssize_t)sizeof(*o) || o->type != NSMD_OPEN) {
		cl_diag_set(&d, "the first message was not an NSM session request");
		goto refuse;
	}
	if (o->proto != NSMD_PROTO) {
		cl_diag_set(&d,
		            "the NSM daemon speaks protocol %d, the monitor %u: stop the older "
		            "cloister's enclaves, or reinstall",
		            NSMD_PROTO, o->proto);
		goto refuse;
	}
	/* Sessions are opened by monitors setting up an enclave, before they sandbox themselves
	 * and before any guest code runs. A process under more seccomp filters than we are is a
	 * monitor already running a guest: one that guest took over must not get a second NSM
	 * with PCRs of its choosing. */
	filters = seccomp_filters(peer);
	if (filters < 0 || (unsigned long)filters > own_filters) {
		cl_diag_set(&d,
		            "refused: process %d is already sandboxed (seccomp); only a monitor "
		            "setting up its enclave may open an NSM session",
		            (int)peer);
		goto refuse;
	}
	p = buf + sizeof(*o);
	for (unsigned i = 0; i < NSMD_NSTR; i++) {
		if (o->str_len[i] == NSMD_NONE)
			continue;
		if (o->str_len[i] > NSMD_STR_MAX || used + o->str_len[i] > (size_t)n) {
			cl_diag_set(&d, "malformed NSM session request (string %u)", i);
			goto refuse;
		}
		str[i] = strndup((char *)p, o->str_len[i]);
		if (!str[i] || strlen(str[i]) != o->str_len[i]) {
			cl_diag_set(&d, "malformed NSM session request (string %u)", i);
			goto refuse;
		}
		p += o->str_len[i];
		used += o->str_len[i];
	}
	if (used != (size_t)n || !str[NSMD_STR_MODULE_ID] || memfd < 0 || !o->eif_len ||
	    o->eif_len > SIZE_MAX || !memfd_fixed(memfd, o->eif_len)) {
		cl_diag_set(&d, "malformed NSM session request (the image must come as a sealed "
		                "memfd of its length)");
		goto refuse;
	}
	map = mmap(NULL, (size_t)o->eif_len, PROT_READ, MAP_SHARED, memfd, 0);
	if (map == MAP_FAILED) {
		cl_diag_set(&d, "mapping the %llu-byte image: %s", (unsigned long long)o->eif_len,
		            strerror(errno));
		goto refuse;
	}
	/* The name a monitor connects to is made from the CA directory it asks for: another one
	 * here is a bug, not a choice. */
	if (str[NSMD_STR_CA_DIR] && strcmp(str[NSMD_STR_CA_DIR], ca_dir)) {
		cl_diag_set(&d, "this NSM daemon keeps the attestation CA in %s, not %s", ca_dir,
		            str[NSMD_STR_CA_DIR]);
		goto refuse;
	}
	cfg.module_id = str[NSMD_STR_MODULE_ID];
	cfg.ca_dir = ca_dir;
	cfg.parent_role = str[NSMD_STR_PARENT_ROLE];
	cfg.parent_id = str[NSMD_STR_PARENT_ID];
	cfg.debug_mode = o->debug_mode != 0;
	{
		enum nsm_backend_err r = cloister_nsm_backend.open(&cfg, map, (size_t)o->eif_len,
		                                                   &st, &img, &d);

		if (r == NSM_BACKEND_OK) {
			reply_opened(fd, r, &img.meas, NULL);
			eif_image_release(&img);
		} else {
			reply_opened(fd, r, NULL, d.msg);
		}
	}
	goto out;
refuse:
	reply_opened(fd, NSM_BACKEND_SETUP, NULL, d.msg);
out:
	if (map != MAP_FAILED)
		munmap(map, (size_t)o->eif_len);
	if (memfd >= 0)
		close(memfd);
	for (unsigned i = 0; i < NSMD_NSTR; i++)
		free(str[i]);
	free(buf);
	return st;
}

/* Answer the monitor's requests until it hangs up (or sends something that is not one). */
static void session_serve(int fd, void *st)
{
	static const size_t cap = sizeof(struct nsmd_request) + NSM_REQUEST_MAX;
	uint8_t *in = malloc(cap), *out = malloc(sizeof(struct nsmd_response) + NSM_RESPONSE_MAX);

	while (in && out) {
		struct nsmd_request rq;
		struct nsmd_response rs;
		size_t got, rlen = 0;
		ssize_t n = nsmd_recv(fd, in, cap, NULL);

		if (n < (ssize_t)sizeof(rq))
			break;
		memcpy(&rq, in, sizeof(rq));
		got = (size_t)n - sizeof(rq);
		if (rq.type != NSMD_REQUEST ||
		    got != (rq.len < NSM_REQUEST_MAX ? rq.len : NSM_REQUEST_MAX))
			break;
		memset(&rs, 0, sizeof(rs));
		rs.type = NSMD_RESPONSE;
		rs.err = cloister_nsm_backend.handle(
		        st, in + sizeof(rq), (size_t)rq.len, out + sizeof(rs),
		        rq.resp_cap < NSM_RESPONSE_MAX ? rq.resp_cap : NSM_RESPONSE_MAX, &rlen);
		if (rs.err) {
			snprintf(rs.what, sizeof(rs.what), "%s",
			         cloister_nsm_backend.strerror(st, rs.err));
			rlen = 0;
		}
		memcpy(out, &rs, sizeof(rs));
		if (nsmd_send(fd, out, sizeof(rs) + rlen, NULL, 0, -1) < 0)
			break;
	}
	free(in);
	free(out);
}

struct session {
	int fd;
	pid_t peer;
};

static void *session_main(void *arg)
{
	struct session *s = arg;
	void *st = session_open(s->fd, s->peer);

	if (st) {
		session_serve(s->fd, st);
		cloister_nsm_backend.close(st); /* the leaf key goes with it */
	}
	close(s->fd);
	free(s);
	atomic_fetch_sub(&live_sessions, 1);
	(void)!eventfd_write(wake_fd, 1);
	return NULL;
}

static void accept_one(int lfd)
{
	struct ucred cr;
	socklen_t crlen = sizeof(cr);
	pthread_attr_t attr;
	pthread_t t;
	struct session *s;
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	/* Only our own user's monitors (the abstract namespace has no file permissions). */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0 || cr.uid != geteuid()) {
		close(fd);
		return;
	}
	s = malloc(sizeof(*s));
	if (!s) {
		close(fd);
		return;
	}
	s->fd = fd;
	s->peer = cr.pid;
	atomic_fetch_add(&live_sessions, 1);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, session_main, s) != 0) {
		close(fd);
		free(s);
		atomic_fetch_sub(&live_sessions, 1);
	}
	pthread_attr_destroy(&attr);
}

static void ready(int fd, const char *msg)
{
	if (fd < 0)
		return;
	(void)!write(fd, msg, strlen(msg));
	close(fd);
}

int main(int argc, char **argv)
{
	const char *name = NULL;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t salen;
	int ready_fd = -1, lfd;
	long linger_ms = 1000;
	char msg[512];

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--name"))
			name = argv[i + 1];
		else if (!strcmp(argv[i], "--ready-fd"))
			ready_fd = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--linger"))
			linger_ms = (long)(atof(argv[i + 1]) * 1000.0);
		else if (!strcmp(argv[i], "--ca-dir"))
			ca_dir = argv[i + 1];
	}
	if (!name || strlen(name) + 1 >= sizeof(sa.sun_path) || linger_ms < 0 || !ca_dir ||
	    ca_dir[0] != '/') {
		fprintf(stderr, "usage: cloister-nsmd --name NAME --ca-dir ABSOLUTE-DIR "
		                "[--ready-fd FD] [--linger S]\n"
		                "(monitors start it; see docs/attestation.md)\n");
		ready(ready_fd, "bad arguments\n");
		return 2;
	}
	/* Keys live here: no core files, no ptrace by other processes of this user. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	signal(SIGPIPE, SIG_IGN);
	umask(077);
	if (chdir("/") < 0)
		return 1;
	{
		long f = seccomp_filters(getpid());

		own_filters = f > 0 ? (unsigned)f : 0;
	}
	/* Of the file system, only its CA directory and /proc (a peer's seccomp state) stay
	 * reachable, for good, and for the threads started later (docs/security.md). Done before
	 * the name is bound, so a daemon that cannot serve is never found by a monitor. OpenSSL
	 * reads its configuration first, while it still can. */
	{
		const struct sandbox_fs_rule keep[] = {
			{ ca_dir, SANDBOX_FS_READ | SANDBOX_FS_WRITE },
			{ "/proc", SANDBOX_FS_READ },
		};
		struct cl_diag d = { "" };

		OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL);
		if (cl_mkdir_p(ca_dir, &d) < 0) {
			snprintf(msg, sizeof(msg),
			         "attestation CA in %.100s: %.100s (run as root, or set "
			         "CLOISTER_CA_DIR or --ca-dir to a directory you may write)\n",
			         ca_dir, d.msg);
			ready(ready_fd, msg);
			return 1;
		}
		if (sandbox_confine_fs(keep, sizeof(keep) / sizeof(keep[0]), &d) < 0) {
			snprintf(msg, sizeof(msg), "%.250s\n", d.msg);
			ready(ready_fd, msg);
			return 1;
		}
	}
	wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (wake_fd < 0 || lfd < 0) {
		snprintf(msg, sizeof(msg), "socket: %s\n", strerror(errno));
		ready(ready_fd, msg);
		return 1;
	}
	memcpy(sa.sun_path + 1, name, strlen(name));
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
	if (bind(lfd, (struct sockaddr *)&sa, salen) < 0) {
		if (errno == EADDRINUSE) {
			ready(ready_fd, "ok\n"); /* another daemon serves this name */
			return 0;
		}
		snprintf(msg, sizeof(msg), "bind @%s: %s\n", name, strerror(errno));
		ready(ready_fd, msg);
		return 1;
	}
	/* From here on, whatever a guest's request makes of this process, it cannot start a
	 * program, open a socket or touch another process (docs/security.md). Threads started
	 * later inherit the filter. own_filters was counted before it. On failure the name goes
	 * first (close), then the answer: no monitor finds a daemon that is ending. */
	{
		struct cl_diag d = { "" };

		if (listen(lfd, 64) < 0)
			cl_diag_set(&d, "listen: %s", strerror(errno));
		if (*d.msg || sandbox_enter(SANDBOX_NSMD, &d) < 0) {
			close(lfd);
			snprintf(msg, sizeof(msg), "%.250s\n", d.msg);
			ready(ready_fd, msg);
			return 1;
		}
	}
	ready(ready_fd, "ok\n");
	for (;;) {
		struct pollfd pfd[2] = { { lfd, POLLIN, 0 }, { wake_fd, POLLIN, 0 } };
		int r = poll(pfd, 2, atomic_load(&live_sessions) ? -1 : (int)linger_ms);

		if (r < 0 && errno != EINTR)
			return 1;
		if (r == 0 && !atomic_load(&live_sessions))
			break; /* idle for --linger: the name goes with us */
		if (pfd[1].revents) {
			eventfd_t v;

			(void)!eventfd_read(wake_fd, &v);
		}
		if (pfd[0].revents)
			accept_one(lfd);
	}
	close(lfd);
	return 0;
}
