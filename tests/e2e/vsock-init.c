/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PID 1 for the vsock end-to-end tests and benchmark. Loads the vsock modules shipped in the
 * initramfs (/modules/<name>.ko, in the order of /modules/order if present), sends the Nitro boot heartbeat (unless
 * the kernel command line says e2e_heartbeat=skip), says hello to the parent's port 6000, then
 * serves:
 *   port 5000  echo: every byte back, until the peer's end of stream (one process, poll())
 *   port 5001  control: "quit" powers the enclave off; "panic" crashes the kernel through
 *              /proc/sysrq-trigger; "exit" makes init (PID 1) exit, which Linux answers with
 *              "Attempted to kill init!" (both then follow the kernel's panic= setting);
 *              "dmesg" answers with the kernel log (bench/boot-profile.sh), "kallsyms"
 *              with /proc/kallsyms, "cpuinfo" with /proc/cpuinfo; "chatter"
 *              starts a child that prints a numbered 64-byte line on the console every
 *              0.1 s, for ever (a debug-mode enclave that keeps writing its console log)
 * Static, libc only.
 */
#define _GNU_SOURCE 1 /* accept4 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <linux/vm_sockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CL_BOOT_TIMER_GUEST
#include "cloister/boot_timer.h"

/* The parent's CID: 3 as on Nitro; e2e_parent_cid=2 on the kernel command line for QEMU's
 * vhost-vsock, which only delivers guest packets addressed to CID 2 (the benchmark's
 * comparison). */
static unsigned parent_cid = 3;

static void say(const char *fmt, const char *arg)
{
	printf("VSOCK-INIT: ");
	printf(fmt, arg);
	printf("\n");
	fflush(stdout);
}

static void die(const char *what)
{
	printf("VSOCK-INIT: %s: %s\n", what, strerror(errno));
	fflush(stdout);
	reboot(RB_POWER_OFF);
	_exit(1);
}

static void load_modules(void)
{
	static const char *const fallback[] = { "virtio_mmio", "vsock",
		                                "vmw_vsock_virtio_transport_common",
		                                "vmw_vsock_virtio_transport" };
	char name[128], path[192];
	FILE *order = fopen("/modules/order", "r");
	unsigned next = 0;

	/* Without an order file (tests/e2e/lib/microvm.sh initramfs), the vsock stack's order. */
	while (order ? fgets(name, sizeof(name), order) != NULL
	             : next < sizeof(fallback) / sizeof(fallback[0])) {
		if (!order)
			snprintf(name, sizeof(name), "%s", fallback[next++]);
		int fd;

		name[strcspn(name, "\n")] = '\0';
		if (!name[0])
			continue;
		snprintf(path, sizeof(path), "/modules/%s.ko", name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || syscall(SYS_finit_module, fd, "", 0) < 0) {
			if (errno != EEXIST)
				die(path);
		}
		close(fd);
	}
	if (order)
		fclose(order);
}

static int vsock_connect(unsigned port)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = parent_cid, .svm_port = port };
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int vsock_listen(unsigned port)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK,
		                  .svm_cid = VMADDR_CID_ANY,
		                  .svm_port = port };
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0)
		die("listen");
	return fd;
}

static void heartbeat(void)
{
	unsigned char b = 0xB7;
	int fd = vsock_connect(9000);

	if (fd < 0)
		die("heartbeat connect");
	if (write(fd, &b, 1) != 1 || read(fd, &b, 1) != 1 || b != 0xB7)
		die("heartbeat echo");
	close(fd);
	say("heartbeat %s", "ok");
}

/* The echo service: one process, one poll() loop over up to ECHO_MAX connections, each
 * echoed through its own buffer (what was read is written back before the next read, so a
 * peer that does not read only stalls itself). One process rather than one per connection:
 * 16 busy forked children made the guest context-switch (and save/restore FPU state) on every
 * packet, which is load the vsock device under test does not need. */
#define ECHO_MAX 64
#define ECHO_BUF 65536

struct echo_conn {
	int fd;
	size_t have, sent; /* bytes read into buf, and how many of them are written back */
	char *buf;
};

static void echo_close(struct echo_conn *c)
{
	close(c->fd);
	free(c->buf);
	c->fd = -1;
	c->buf = NULL;
}

static void echo_serve(int lfd)
{
	static struct echo_conn conns[ECHO_MAX];
	struct pollfd p[ECHO_MAX + 1];

	for (int i = 0; i < ECHO_MAX; i++)
		conns[i].fd = -1;
	for (;;) {
		int n = 0, slot[ECHO_MAX + 1];

		p[n] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		slot[n++] = -1;
		for (int i = 0; i < ECHO_MAX; i++) {
			struct echo_conn *c = &conns[i];

			if (c->fd < 0)
				continue;
			p[n] = (struct pollfd){ .fd = c->fd,
				                .events = c->sent < c->have ? POLLOUT : POLLIN };
			slot[n++] = i;
		}
		if (poll(p, (nfds_t)n, -1) < 0)
			continue;
		for (int k = 0; k < n; k++) {
			struct echo_conn *c;
			ssize_t r;

			if (!p[k].revents)
				continue;
			if (slot[k] < 0) {
				int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
				int i = 0;

				while (i < ECHO_MAX && conns[i].fd >= 0)
					i++;
				if (fd >= 0 && i == ECHO_MAX) {
					close(fd); /* full: the peer sees its connection end */
				} else if (fd >= 0) {
					conns[i] = (struct echo_conn){ .fd = fd,
						                       .buf = malloc(ECHO_BUF) };
					if (!conns[i].buf)
						echo_close(&conns[i]);
				}
				continue;
			}
			c = &conns[slot[k]];
			if (c->sent < c->have) {
				r = write(c->fd, c->buf + c->sent, c->have - c->sent);
				if (r < 0 && errno != EAGAIN) {
					echo_close(c);
					continue;
				}
				if (r > 0)
					c->sent += (size_t)r;
				if (c->sent < c->have)
					continue;
				c->sent = c->have = 0;
				continue;
			}
			r = read(c->fd, c->buf, ECHO_BUF);
			if (r < 0 && errno == EAGAIN)
				continue;
			if (r <= 0) { /* the peer's end of stream: ours follows */
				shutdown(c->fd, SHUT_WR);
				echo_close(c);
				continue;
			}
			c->have = (size_t)r;
		}
	}
}

/* The whole kernel log buffer (klogctl READ_ALL) to fd. */
static void send_kernel_log(int fd)
{
	int size = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	char *buf = size > 0 ? malloc((size_t)size) : NULL;
	int n = buf ? klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, size) : -1;

	for (int off = 0; off < n;) {
		ssize_t w = write(fd, buf + off, (size_t)(n - off));

		if (w <= 0)
			break;
		off += (int)w;
	}
	free(buf);
}

/* A file's contents to fd (the kernel's symbols for a profile of its boot: bench/). */
static void send_file(const char *path, int fd)
{
	char buf[4096];
	ssize_t n;
	int in = open(path, O_RDONLY | O_CLOEXEC);

	while (in >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(fd, buf, (size_t)n) != n)
			break;
	if (in >= 0)
		close(in);
}

int main(void)
{
	const char *hb = getenv("e2e_heartbeat");
	const char *pcid = getenv("e2e_parent_cid");
	char hello[64], cmd[16];
	int fd, echo_fd, ctl_fd;
	struct sigaction sa = { .sa_handler = SIG_IGN, .sa_flags = SA_NOCLDWAIT };

	cl_boot_timer_mark(CL_BOOT_STAGE_INIT); /* as cloister-init does: the boot timeline */
	mkdir("/dev", 0755);
	mkdir("/proc", 0555);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	mount("proc", "/proc", "proc", 0, NULL);
	fd = open("/dev/console", O_WRONLY | O_NOCTTY);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	if (pcid)
		parent_cid = (unsigned)atoi(pcid);
	sigaction(SIGCHLD, &sa, NULL); /* children are reaped by the kernel */
	signal(SIGPIPE, SIG_IGN);
	load_modules();
	cl_boot_timer_mark(CL_BOOT_STAGE_DEVICES);
	say("modules %s", "loaded");
	if (hb && !strcmp(hb, "skip")) {
		say("heartbeat %s", "skipped on request; waiting");
		for (;;)
			pause();
	}
	heartbeat();
	fd = vsock_connect(6000);
	if (fd >= 0) {
		unsigned cid = 0;
		int dev = open("/dev/vsock", O_RDONLY | O_CLOEXEC);

		/* The local CID comes from the vsock device node, not from a socket. */
		if (dev >= 0) {
			ioctl(dev, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid);
			close(dev);
		}
		snprintf(hello, sizeof(hello), "hello from enclave cid %u\n", cid);
		if (write(fd, hello, strlen(hello)) < 0)
			say("hello: %s", strerror(errno));
		close(fd);
	}
	echo_fd = vsock_listen(5000);
	ctl_fd = vsock_listen(5001);
	say("serving %s", "echo on 5000, control on 5001");
	if (fork() == 0) {
		echo_serve(echo_fd);
		_exit(1);
	}
	for (;;) {
		int c = accept(ctl_fd, NULL, NULL);
		ssize_t n;

		if (c < 0)
			continue;
		n = read(c, cmd, sizeof(cmd) - 1);
		if (n > 0 && !strncmp(cmd, "quit", 4)) {
			say("%s", "quit: powering off");
			sync();
			reboot(RB_POWER_OFF);
		}
		if (n > 0 && !strncmp(cmd, "panic", 5)) {
			int t = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);

			say("%s", "panic: crashing the kernel (sysrq c)");
			if (t < 0 || write(t, "c", 1) != 1)
				say("panic: %s", strerror(errno));
		}
		if (n > 0 && !strncmp(cmd, "dmesg", 5))
			send_kernel_log(c);
		if (n > 0 && !strncmp(cmd, "kallsyms", 8))
			send_file("/proc/kallsyms", c);
		if (n > 0 && !strncmp(cmd, "cpuinfo", 7))
			send_file("/proc/cpuinfo", c);
		if (n > 0 && !strncmp(cmd, "chatter", 7) && fork() == 0) {
			for (unsigned i = 0;; i++) {
				/* 64 bytes a line: a full disk shows within seconds */
				printf("VSOCK-INIT: chatter %6u "
				       ".................................\n",
				       i);
				fflush(stdout);
				usleep(100000);
			}
		}
		if (n > 0 && !strncmp(cmd, "exit", 4)) {
			say("%s", "exit: init exits with status 3");
			exit(3);
		}
		close(c);
	}
}
