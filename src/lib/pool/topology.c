/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CPU and NUMA topology from sysfs, and the CPU pool rules of the NE driver (nitro-compat §5.2)
 * and of nitro-cli's allocator (§2.8).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/pool/internal.h"
#include "lib/pool/pool.h"

long pool_read_small(const char *path, char *buf, size_t len)
{
	size_t done = 0;
	int fd;

	if (!len)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (done < len - 1) {
		ssize_t n = read(fd, buf + done, len - 1 - done);

		if (n < 0) {
			int err = -errno;

			if (errno == EINTR)
				continue;
			close(fd);
			return err;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	close(fd);
	buf[done] = '\0';
	return (long)done;
}

int pool_write_small(const char *path, const char *value)
{
	size_t len = strlen(value);
	ssize_t n;
	int fd, err = 0;

	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	do {
		n = write(fd, value, len);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		err = -errno;
	else if ((size_t)n != len)
		err = -EIO;
	if (close(fd) < 0 && !err)
		err = -errno;
	return err;
}

int pool_parse_u64(const char *s, unsigned long long *out)
{
	unsigned long long v = 0;
	bool any = false;

	while (*s == ' ' || *s == '\t' || *s == '\n')
		s++;
	while (*s >= '0' && *s <= '9') {
		if (__builtin_mul_overflow(v, 10ULL, &v) ||
		    __builtin_add_overflow(v, (unsigned long long)(*s - '0'), &v))
			return -1;
		any = true;
		s++;
	}
	while (*s == ' ' || *s == '\t' || *s == '\n')
		s++;
	if (!any || *s)
		return -1;
	*out = v;
	return 0;
}

/* Read a cpulist file below the sysfs root into @set. -errno, or 1 when malformed. */
static int read_cpulist(const char *path, struct cpuset *set, struct cl_diag *d)
{
	char buf[POOL_CPULIST_MAX + 1];
	long n = pool_read_small(path, buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	if (pool_cpulist_parse(buf, (size_t)n, set, d)) {
		cl_diag_prefix(d, "%s", path);
		return 1;
	}
	return 0;
}

int pool_topology_read(const char *sysroot, struct pool_topology **out, struct cl_diag *d)
{
	char path[PATH_MAX], buf[64];
	struct pool_topology *t;
	struct cpuset present, online, nodes;
	bool have_online_list;
	int rc;

	if (!sysroot)
		sysroot = "";
	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (!t) {
		cl_diag_set(d, "out of memory reading the CPU topology");
		return POOL_ERR_NOMEM;
	}

	snprintf(path, sizeof(path), "%s/sys/devices/system/cpu/present", sysroot);
	rc = read_cpulist(path, &present, d);
	if (rc) {
		if (rc < 0)
			cl_diag_set(d, "cannot read %s: %s", path, strerror(-rc));
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/sys/devices/system/cpu/online", sysroot);
	rc = read_cpulist(path, &online, d);
	if (rc > 0)
		goto fail;
	have_online_list = rc == 0;

	cpuset_foreach(cpu, &present)
	{
		struct pool_cpu *c = &t->cpu[cpu];
		unsigned long long v;

		c->present = true;
		t->nr_cpus = (unsigned)cpu + 1;
		if (have_online_list) {
			c->online = cpuset_has(&online, (unsigned)cpu);
		} else {
			snprintf(path, sizeof(path), "%s/sys/devices/system/cpu/cpu%d/online",
			         sysroot, cpu);
			/* No `online` file: the CPU cannot be hot-unplugged (CPU 0), so it is on. */
			c->online = pool_read_small(path, buf, sizeof(buf)) < 0 || buf[0] == '1';
		}
		snprintf(path, sizeof(path), "%s/sys/devices/system/cpu/cpu%d/topology/core_id",
		         sysroot, cpu);
		if (pool_read_small(path, buf, sizeof(buf)) < 0 || pool_parse_u64(buf, &v) ||
		    v > INT_MAX)
			continue;
		c->core_id = (int)v;
		snprintf(path, sizeof(path),
		         "%s/sys/devices/system/cpu/cpu%d/topology/thread_siblings_list", sysroot,
		         cpu);
		rc = read_cpulist(path, &c->siblings, d);
		if (rc > 0)
			goto fail;
		if (rc < 0)
			continue;
		cpuset_add(&c->siblings, (unsigned)cpu);
		c->known = true;
	}

	/* NUMA: nodeN/cpulist for every possible node; a kernel without NUMA has no node dir and
	 * everything is node 0. */
	snprintf(path, sizeof(path), "%s/sys/devices/system/node/possible", sysroot);
	rc = read_cpulist(path, &nodes, d);
	if (rc > 0)
		goto fail;
	t->nr_nodes = 1;
	if (rc == 0) {
		cpuset_foreach(node, &nodes)
		{
			struct cpuset cpus;

			snprintf(path, sizeof(path), "%s/sys/devices/system/node/node%d/cpulist",
			         sysroot, node);
			rc = read_cpulist(path, &cpus, d);
			if (rc > 0)
				goto fail;
			if (rc < 0)
				continue;
			if ((unsigned)node + 1 > t->nr_nodes)
				t->nr_nodes = (unsigned)node + 1;
			cpuset_foreach(cpu, &cpus) t->cpu[cpu].node = node;
		}
	}
	*out = t;
	return POOL_OK;
fail:
	free(t);
	return POOL_ERR_SYSFS;
}

void pool_topology_free(struct pool_topology *t)
{
	free(t);
}

int pool_validate_cpus(const struct pool_topology *t, const struct cpuset *cpus, int *node_out,
                       unsigned *tpc_out, struct cl_diag *d)
{
	char list[256];
	int node = -1;
	unsigned tpc = 0;

	if (!cpuset_count(cpus)) {
		cl_diag_set(d, "the CPU pool is empty; list at least one whole core other than CPU "
		               "0's (e.g. cpu_pool: 2,3)");
		return POOL_ERR_POOL_EMPTY;
	}
	cpuset_foreach(cpu, cpus)
	{
		const struct pool_cpu *c = &t->cpu[cpu];

		if ((unsigned)cpu >= t->nr_cpus || !c->present) {
			cl_diag_set(d, "CPU %d is not present on this host (CPUs 0-%u exist)", cpu,
			            t->nr_cpus ? t->nr_cpus - 1 : 0);
			return POOL_ERR_CPU_RANGE;
		}
		if (!c->online) {
			cl_diag_set(d,
			            "CPU %d is offline; bring it online (echo 1 > "
			            "/sys/devices/system/cpu/cpu%d/online) or leave it out",
			            cpu, cpu);
			return POOL_ERR_CPU_OFFLINE;
		}
		if (!c->known) {
			cl_diag_set(d, "CPU %d has no readable topology in sysfs", cpu);
			return POOL_ERR_SYSFS;
		}
	}
	cpuset_foreach(cpu, cpus)
	{
		if (node < 0) {
			node = t->cpu[cpu].node;
		} else if (t->cpu[cpu].node != node) {
			cl_diag_set(
			        d,
			        "the CPU pool spans NUMA nodes %d and %d (CPU %d); an enclave's "
			        "CPUs and memory must come from one node",
			        node, t->cpu[cpu].node, cpu);
			return POOL_ERR_NUMA;
		}
	}
	/* CPU 0 and its hyper-thread siblings stay with the host (the driver refuses them). */
	{
		struct cpuset cpu0 = t->cpu[0].siblings;

		cpuset_add(&cpu0, 0);
		cpuset_foreach(cpu, cpus)
		{
			if (cpuset_has(&cpu0, (unsigned)cpu)) {
				pool_cpulist_format(&cpu0, list, sizeof(list));
				cl_diag_set(
				        d,
				        "CPU %d is %s; CPU 0's core (CPUs %s) stays with the host",
				        cpu, cpu == 0 ? "CPU 0" : "a hyper-thread sibling of CPU 0",
				        list);
				return POOL_ERR_CPU0;
			}
		}
	}
	cpuset_foreach(cpu, cpus)
	{
		const struct cpuset *sib = &t->cpu[cpu].siblings;

		if (!cpuset_subset(sib, cpus)) {
			struct cpuset missing = *sib;

			cpuset_andnot(&missing, cpus);
			pool_cpulist_format(&missing, list, sizeof(list));
			cl_diag_set(d,
			            "CPU %d's core is not whole in the pool: add its sibling(s) %s "
			            "(enclaves get whole cores)",
			            cpu, list);
			return POOL_ERR_PARTIAL_CORE;
		}
		if (!tpc)
			tpc = cpuset_count(sib);
	}
	if (node_out)
		*node_out = node;
	if (tpc_out)
		*tpc_out = tpc;
	return POOL_OK;
}

int pool_choose_cpus(const struct pool_topology *t, unsigned count, int node, struct cpuset *out,
                     struct cl_diag *d)
{
	struct cpuset seen, cpu0 = t->cpu[0].siblings;
	unsigned tpc = t->cpu[0].known ? cpuset_count(&t->cpu[0].siblings) : 1;
	unsigned got = 0, cores = 0;

	cpuset_zero(out);
	cpuset_zero(&seen);
	cpuset_add(&cpu0, 0);
	if (count == 0 || count % tpc) {
		cl_diag_set(d,
		            "cpu_count %u is not a positive multiple of the %u threads per core; "
		            "use %u",
		            count, tpc, count < tpc ? tpc : count - count % tpc);
		return POOL_ERR_CPU_COUNT;
	}
	for (unsigned cpu = 0; cpu < t->nr_cpus; cpu++) {
		const struct pool_cpu *c = &t->cpu[cpu];

		if (!c->present || !c->known || c->node != node || cpuset_has(&seen, cpu))
			continue;
		cpuset_or(&seen, &c->siblings);
		if (cpuset_intersects(&c->siblings, &cpu0))
			continue;
		/* Take the core only if it is whole and online, as the driver requires. */
		bool usable = true;

		cpuset_foreach(s, &c->siblings)
		{
			if (!t->cpu[s].online || !t->cpu[s].known || t->cpu[s].node != node)
				usable = false;
		}
		if (!usable)
			continue;
		cores++;
		if (got < count) {
			cpuset_or(out, &c->siblings);
			got += cpuset_count(&c->siblings);
		}
	}
	if (got < count) {
		cl_diag_set(d,
		            "NUMA node %d has %u usable core(s) (%u CPUs) besides CPU 0's; "
		            "cpu_count %u needs %u; lower cpu_count",
		            node, cores, cores * tpc, count, count / tpc);
		cpuset_zero(out);
		return POOL_ERR_CPU_COUNT;
	}
	return POOL_OK;
}
