/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister vsock-forward: a host TCP port <-> an enclave vsock port, for tools that only speak
 * TCP (docs/vsock.md).
 *
 *   --tcp-listen [ADDR:]PORT --vsock-port P    each TCP client is connected to the enclave's
 *                                              port P (through "CONNECT P" on its vsock socket)
 *   --vsock-listen P --tcp-connect HOST:PORT   each enclave connection to the parent's port P
 *                                              is connected to HOST:PORT
 *
 * One thread per forwarded connection, at most MAX_FORWARDS at once; each copies both ways
 * with one bounded buffer per direction (vsock_relay).
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/pool/pool.h"
#include "lib/vsock/vsock.h"

#define MAX_FORWARDS 256
#define RELAY_BUF (64 * 1024)

struct forward {
	int client; /* the accepted connection */
	const char *uds; /* tcp -> vsock: the enclave's vsock socket */
	uint32_t port; /* tcp -> vsock: the enclave port */
	struct addrinfo *ai; /* vsock -> tcp: where to connect */
};

static unsigned active;
static pthread_mutex_t active_lock = PTHREAD_MUTEX_INITIALIZER;

static int unix_connect_path(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* "CONNECT <port>\n" then wait for "OK <n>\n" (byte by byte: nothing after it may be eaten). */
static int enclave_connect(const char *uds, uint32_t port)
{
	char line[40];
	size_t len = 0;
	int fd = unix_connect_path(uds);

	if (fd < 0)
		return -1;
	len = (size_t)snprintf(line, sizeof(line), "CONNECT %u\n", port);
	if (write(fd, line, len) != (ssize_t)len)
		goto fail;
	for (len = 0; len < sizeof(line) - 1; len++) {
		if (read(fd, line + len, 1) != 1)
			goto fail;
		if (line[len] == '\n')
			break;
	}
	line[len] = '\0';
	if (strncmp(line, "OK ", 3) != 0)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

static int tcp_connect(const struct addrinfo *ai)
{
	for (; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);

		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			return fd;
		close(fd);
	}
	return -1;
}

static void *forward_thread(void *arg)
{
	struct forward *f = arg;
	int other = f->uds ? enclave_connect(f->uds, f->port) : tcp_connect(f->ai);

	if (other >= 0) {
		vsock_relay(f->client, other, RELAY_BUF);
		close(other);
	} else {
		fprintf(stderr, "vsock-forward: %s\n",
		        f->uds ? "the enclave refused the connection (is anything listening on "
		                 "that vsock port?)"
		               : "cannot connect to the TCP destination");
	}
	close(f->client);
	free(f);
	pthread_mutex_lock(&active_lock);
	active--;
	pthread_mutex_unlock(&active_lock);
	return NULL;
}

static int split_host_port(const char *s, const char *default_host, char *host, size_t hlen,
                           char *port, size_t plen)
{
	const char *colon = strrchr(s, ':');

	if (!colon) {
		snprintf(host, hlen, "%s", default_host);
		snprintf(port, plen, "%s", s);
	} else {
		size_t n = (size_t)(colon - s);

		if (n >= hlen)
			return -1;
		memcpy(host, s, n);
		host[n] = '\0';
		if (host[0] == '[' && n > 1 && host[n - 1] == ']') { /* [::1]:80 */
			memmove(host, host + 1, n - 2);
			host[n - 2] = '\0';
		}
		snprintf(port, plen, "%s", colon + 1);
	}
	return *port ? 0 : -1;
}

static int listen_tcp(const char *spec)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai;
	char host[256], port[16];
	int fd = -1, one = 1;

	if (split_host_port(spec, "127.0.0.1", host, sizeof(host), port, sizeof(port)) < 0 ||
	    getaddrinfo(host, port, &hints, &ai) != 0)
		return -1;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	return fd;
}

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path); /* stale: a previous forwarder is gone */
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: cloister vsock-forward (--enclave-id ID | --uds PATH)\n"
	        "         --tcp-listen [ADDR:]PORT --vsock-port P\n"
	        "       cloister vsock-forward (--enclave-id ID | --uds PATH)\n"
	        "         --vsock-listen P --tcp-connect HOST:PORT\n\n"
	        "Forward a host TCP port to an enclave vsock port, or an enclave's connections to\n"
	        "the parent's vsock port P to a TCP destination. ADDR defaults to 127.0.0.1.\n"
	        "The enclave's vsock socket is <sockets dir>/<EnclaveID>.vsock (sockets dir:\n"
	        "$NITRO_CLI_SOCKETS_PATH, default /run/cloister).\n");
}

static bool parse_port(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v > UINT32_MAX || s[0] == '-')
		return false;
	*out = (uint32_t)v;
	return true;
}

int cmd_vsock_forward(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "enclave-id", required_argument, NULL, 'e' },
		{ "uds", required_argument, NULL, 'u' },
		{ "tcp-listen", required_argument, NULL, 'l' },
		{ "vsock-port", required_argument, NULL, 'p' },
		{ "vsock-listen", required_argument, NULL, 'L' },
		{ "tcp-connect", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *enclave_id = NULL, *uds = NULL, *tcp_listen = NULL, *tcp_dest = NULL;
	char uds_buf[4096], path[4200], host[256], port_s[16];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	uint32_t vport = 0, vlisten = 0;
	bool have_vport = false, have_vlisten = false;
	int opt, lfd;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'e':
			enclave_id = optarg;
			break;
		case 'u':
			uds = optarg;
			break;
		case 'l':
			tcp_listen = optarg;
			break;
		case 'c':
			tcp_dest = optarg;
			break;
		case 'p':
			if (!parse_port(optarg, &vport))
				return cli_fail(E_INVALID_ARGUMENT,
				                "--vsock-port '%s' is not a port number", optarg);
			have_vport = true;
			break;
		case 'L':
			if (!parse_port(optarg, &vlisten))
				return cli_fail(E_INVALID_ARGUMENT,
				                "--vsock-listen '%s' is not a port number", optarg);
			have_vlisten = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return E_INVALID_ARGUMENT;
		}
	}
	if (!!enclave_id == !!uds)
		return cli_fail(E_MISSING_ARGUMENT, "give exactly one of --enclave-id or --uds");
	if (enclave_id) {
		if (vsock_uds_path(pool_default_state_dir(), enclave_id, uds_buf, sizeof(uds_buf)))
			return cli_fail(E_INVALID_ARGUMENT, "enclave id '%s' is too long",
			                enclave_id);
		uds = uds_buf;
	}
	if (tcp_listen && have_vport && !have_vlisten && !tcp_dest) {
		lfd = listen_tcp(tcp_listen);
		if (lfd < 0)
			return cli_fail(E_SOCKET_ERROR, "cannot listen on TCP '%s': %s", tcp_listen,
			                strerror(errno));
		fprintf(stderr, "Forwarding TCP %s to vsock port %u of %s\n", tcp_listen, vport,
		        uds);
	} else if (have_vlisten && tcp_dest && !tcp_listen && !have_vport) {
		if (split_host_port(tcp_dest, "127.0.0.1", host, sizeof(host), port_s,
		                    sizeof(port_s)) < 0 ||
		    getaddrinfo(host, port_s, &hints, &ai) != 0)
			return cli_fail(E_INVALID_ARGUMENT,
			                "--tcp-connect '%s' is not a reachable HOST:PORT",
			                tcp_dest);
		snprintf(path, sizeof(path), "%s_%u", uds, vlisten);
		lfd = listen_unix(path);
		if (lfd < 0) {
			freeaddrinfo(ai);
			return cli_fail(E_SOCKET_ERROR, "cannot listen on '%s': %s", path,
			                strerror(errno));
		}
		uds = NULL;
		fprintf(stderr, "Forwarding enclave connections to vsock port %u to TCP %s\n",
		        vlisten, tcp_dest);
	} else {
		usage(stderr);
		return cli_fail(E_CONFLICTING_ARGUMENTS,
		                "use either --tcp-listen with --vsock-port, or --vsock-listen with "
		                "--tcp-connect");
	}
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		struct forward *f;
		pthread_t th;

		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
				continue;
			break;
		}
		pthread_mutex_lock(&active_lock);
		if (active >= MAX_FORWARDS) {
			pthread_mutex_unlock(&active_lock);
			close(c);
			continue;
		}
		active++;
		pthread_mutex_unlock(&active_lock);
		f = calloc(1, sizeof(*f));
		if (f) {
			f->client = c;
			f->uds = uds;
			f->port = vport;
			f->ai = ai;
		}
		if (!f || pthread_create(&th, NULL, forward_thread, f) != 0) {
			free(f);
			close(c);
			pthread_mutex_lock(&active_lock);
			active--;
			pthread_mutex_unlock(&active_lock);
			continue;
		}
		pthread_detach(th);
	}
	close(lfd);
	if (ai)
		freeaddrinfo(ai);
	return cli_fail(E_SOCKET_ERROR, "accept: %s", strerror(errno));
}
