/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_TEST_POOL_SYSFS_H
#define CLOISTER_TEST_POOL_SYSFS_H

/*
 * A fake sysfs tree in a temporary directory for the pool and NE tests: 8 CPUs, 2 threads per
 * core (siblings N and N+4, as on a typical Intel host), 2 NUMA nodes (node 0: CPUs 0,1,4,5;
 * node 1: CPUs 2,3,6,7), 2 MiB and 1 GiB hugepage sizes on both nodes.
 */

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static inline void fake_mkdirs(const char *path)
{
	char buf[PATH_MAX + 512];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0755);
			*p = '/';
		}
	}
	mkdir(buf, 0755);
}

/* Write @text to <root>/<fmt...>, creating parent directories. */
static inline void fake_write(const char *root, const char *text, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static inline void fake_write(const char *root, const char *text, const char *fmt, ...)
{
	char rel[PATH_MAX], path[PATH_MAX + 256], *slash;
	va_list ap;
	FILE *f;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	slash = strrchr(path, '/');
	*slash = '\0';
	fake_mkdirs(path);
	*slash = '/';
	f = fopen(path, "w");
	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
}

/* Read <root>/<rel> into @buf (trimmed of the trailing newline). */
static inline void fake_read(const char *root, const char *rel, char *buf, size_t len)
{
	char path[PATH_MAX + 256];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "r");
	if (!f)
		abort();
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
}

/* Build the 8-CPU, 2-node tree under a new temporary directory returned in @root. */
static inline void fake_sysfs_build(char root[PATH_MAX])
{
	snprintf(root, PATH_MAX, "/tmp/cloister-test-XXXXXX");
	if (!mkdtemp(root))
		abort();
	fake_write(root, "0-7\n", "sys/devices/system/cpu/present");
	fake_write(root, "0-7\n", "sys/devices/system/cpu/online");
	for (int cpu = 0; cpu < 8; cpu++) {
		char sib[16], core[16];

		snprintf(sib, sizeof(sib), "%d,%d\n", cpu % 4, cpu % 4 + 4);
		snprintf(core, sizeof(core), "%d\n", cpu % 4);
		fake_write(root, sib, "sys/devices/system/cpu/cpu%d/topology/thread_siblings_list",
		           cpu);
		fake_write(root, core, "sys/devices/system/cpu/cpu%d/topology/core_id", cpu);
	}
	fake_write(root, "0-1\n", "sys/devices/system/node/possible");
	fake_write(root, "0-1,4-5\n", "sys/devices/system/node/node0/cpulist");
	fake_write(root, "2-3,6-7\n", "sys/devices/system/node/node1/cpulist");
	for (int node = 0; node < 2; node++) {
		fake_write(root, "0\n",
		           "sys/devices/system/node/node%d/hugepages/hugepages-2048kB/nr_hugepages",
		           node);
		fake_write(
		        root, "0\n",
		        "sys/devices/system/node/node%d/hugepages/hugepages-1048576kB/nr_hugepages",
		        node);
	}
}

static inline void fake_rm_rf(const char *root)
{
	char cmd[PATH_MAX + 32];

	if (strncmp(root, "/tmp/cloister-test-", 19))
		abort();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		abort();
}

#endif
