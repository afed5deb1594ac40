/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister allocator [--config F] [--release] [--dry-run]: set up the enclave resource pool
 * from allocator.yaml, as nitro-cli's nitro-enclaves-allocator service does (nitro-compat
 * §2.8, docs/resources.md): validate or choose the CPU pool, reserve hugepages on its NUMA
 * node, and record the pool in the state directory.
 *
 * Unlike the NE driver, cloister does not offline the pool CPUs: enclaves are KVM VMs on this
 * same host, so there is no hypervisor to give offlined CPUs to. The pool is a reservation
 * cloister enforces among its own enclaves.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/pool/pool.h"
#include "lib/util/file.h"

#define DEFAULT_CONFIG "/etc/cloister/allocator.yaml"
/* nitro-cli's location: used when cloister's own file does not exist (drop-in hosts). */
#define NITRO_CONFIG "/etc/nitro_enclaves/allocator.yaml"

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: cloister allocator [--config FILE] [--release] [--dry-run]\n"
	        "                          [--state-dir DIR] [--sysfs-root DIR]\n\n"
	        "Reserve the enclave CPU pool and hugepage memory described by allocator.yaml\n"
	        "(default " DEFAULT_CONFIG ", else " NITRO_CONFIG "):\n"
	        "  ---\n  memory_mib: 512\n  cpu_count: 2      # or: cpu_pool: 2,3,6-9\n\n"
	        "  --config FILE      the allocator.yaml to use\n"
	        "  --release          give the pool's hugepages back and remove the pool\n"
	        "  --dry-run          validate and print the plan; change nothing\n"
	        "  --state-dir DIR    state directory (default $NITRO_CLI_SOCKETS_PATH or "
	        "/run/cloister)\n"
	        "  --sysfs-root DIR   prefix for /sys (tests; default $CLOISTER_SYSFS_ROOT)\n\n"
	        "Needs root. Refused while enclaves run. The CPUs are not offlined: cloister "
	        "keeps\n"
	        "them for its enclaves only; keep other work off them with isolcpus= or "
	        "cpusets.\n");
}

static void describe_hugepages(const struct pool_hugepages *h, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < h->nsizes && i < POOL_MAX_PAGE_SIZES; i++) {
		int n;

		if (!h->size[i].added)
			continue;
		n = snprintf(buf + used, len - used, "%s%" PRIu64 " x %" PRIu64 " kB",
		             used ? ", " : "", h->size[i].added, h->size[i].kib);
		if (n < 0 || (size_t)n >= len - used)
			break;
		used += (size_t)n;
	}
	if (!used)
		snprintf(buf, len, "none added");
}

static int map_pool_err(int rc)
{
	switch (rc) {
	case POOL_ERR_CONFIG:
	case POOL_ERR_CPULIST:
		return E_INVALID_ARGUMENT;
	case POOL_ERR_CPU_RANGE:
	case POOL_ERR_POOL_EMPTY:
	case POOL_ERR_CPU_OFFLINE:
	case POOL_ERR_NUMA:
	case POOL_ERR_CPU0:
	case POOL_ERR_PARTIAL_CORE:
		return E_INVALID_CPU_CONFIG;
	case POOL_ERR_CPU_COUNT:
		return E_INSUFFICIENT_CPUS;
	case POOL_ERR_HUGEPAGES:
		return E_INSUFFICIENT_MEMORY_AVAILABLE;
	case POOL_ERR_LOCK:
		return E_LOCK_ACQUIRE;
	case POOL_ERR_BUSY:
		return E_CPU_ERROR;
	}
	return E_FILE_OPERATION;
}

/* Read and parse the configuration. */
static int load_config(const char *path, struct pool_config *cfg)
{
	struct cl_diag d = { "" };
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	if (cl_file_read_all(path, 64 * 1024, &buf, &len, &d))
		return cli_fail(E_FILE_OPERATION,
		                "%s. Create it with the keys memory_mib and cpu_count or cpu_pool "
		                "(see `cloister allocator --help`). File: '%s', failing operation: "
		                "'Open'",
		                d.msg, path);
	rc = pool_config_parse((const char *)buf, len, cfg, &d);
	free(buf);
	if (rc)
		return cli_fail(map_pool_err(rc), "%s: %s", path, d.msg);
	return 0;
}

/* Choose the pool CPUs and reserve memory: cpu_pool as given, or cpu_count whole cores on the
 * first NUMA node that has them and the memory (nitro-cli's allocator tries nodes in order). */
static int plan_and_reserve(const struct pool_topology *t, const struct pool_config *cfg,
                            const char *sysroot, bool dry_run, struct pool_record *rec,
                            struct cl_diag *d)
{
	struct cl_diag last = { "" };
	int rc = POOL_ERR_CPU_COUNT;
	bool any_cores = false;

	memset(rec, 0, sizeof(*rec));
	rec->memory_mib = cfg->memory_mib;
	if (cfg->has_cpu_pool) {
		rc = pool_validate_cpus(t, &cfg->cpu_pool, &rec->node, &rec->threads_per_core, d);
		if (rc)
			return rc;
		rec->cpus = cfg->cpu_pool;
		if (dry_run)
			return POOL_OK;
		return pool_hugepages_reserve(sysroot, rec->node, cfg->memory_mib, NULL,
		                              &rec->reserved, d);
	}
	for (unsigned node = 0; node < t->nr_nodes; node++) {
		struct cl_diag nd = { "" };

		if (pool_choose_cpus(t, cfg->cpu_count, (int)node, &rec->cpus, &nd)) {
			if (!any_cores)
				last = nd;
			continue;
		}
		any_cores = true;
		rc = pool_validate_cpus(t, &rec->cpus, &rec->node, &rec->threads_per_core, &nd);
		if (rc) {
			last = nd;
			continue;
		}
		if (dry_run)
			return POOL_OK;
		rc = pool_hugepages_reserve(sysroot, (int)node, cfg->memory_mib, NULL,
		                            &rec->reserved, &nd);
		if (rc == POOL_OK)
			return POOL_OK;
		last = nd;
	}
	*d = last;
	return any_cores ? POOL_ERR_HUGEPAGES : POOL_ERR_CPU_COUNT;
}

int cmd_allocator(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "release", no_argument, NULL, 'r' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "sysfs-root", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL, *state_dir = NULL, *sysroot = NULL;
	bool release = false, dry_run = false, have_old = false;
	struct pool_record old, rec;
	struct pool_topology *topo = NULL;
	struct pool_config cfg;
	struct pool_grant *grants = NULL;
	struct cl_diag d = { "" };
	struct pool *p = NULL;
	size_t ngrants = 0;
	char cpus[POOL_CPULIST_MAX], pages[256];
	int c, rc, ret = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:rns:S:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'r':
			release = true;
			break;
		case 'n':
			dry_run = true;
			break;
		case 's':
			state_dir = optarg;
			break;
		case 'S':
			sysroot = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return cli_fail(E_INVALID_ARGUMENT, "unknown option for allocator");
		}
	}
	if (optind < argc)
		return cli_fail(E_INVALID_ARGUMENT, "unexpected argument '%s'", argv[optind]);
	if (release && (config || dry_run))
		return cli_fail(E_CONFLICTING_ARGUMENTS,
		                "--release takes no --config or --dry-run");
	if (!sysroot)
		sysroot = pool_default_sysroot();
	if (!config)
		config = access(DEFAULT_CONFIG, F_OK) != 0 && access(NITRO_CONFIG, F_OK) == 0
		                 ? NITRO_CONFIG
		                 : DEFAULT_CONFIG;

	if (!release) {
		ret = load_config(config, &cfg);
		if (ret)
			return ret;
	}
	if (pool_topology_read(sysroot, &topo, &d))
		return cli_fail(E_FILE_OPERATION, "cannot read the CPU topology: %s", d.msg);

	if (dry_run) {
		rc = plan_and_reserve(topo, &cfg, sysroot, true, &rec, &d);
		if (rc) {
			ret = cli_fail(map_pool_err(rc), "%s", d.msg);
			goto out;
		}
		pool_cpulist_format(&rec.cpus, cpus, sizeof(cpus));
		printf("would reserve CPUs %s (NUMA node %d, %u thread(s) per core) and %" PRIu64
		       " MiB of hugepages on node %d\n",
		       cpus, rec.node, rec.threads_per_core, rec.memory_mib, rec.node);
		goto out;
	}

	if (pool_open(state_dir, sysroot, &p, &d)) {
		ret = cli_fail(E_FILE_OPERATION, "%s", d.msg);
		goto out;
	}
	if (pool_lock(p, &d)) {
		ret = cli_fail(E_LOCK_ACQUIRE, "%s", d.msg);
		goto out;
	}
	/* Like writing ne_cpus: refused while any enclave holds pool resources. */
	rc = pool_grants_list(p, &grants, &ngrants, NULL, &d);
	if (rc) {
		ret = cli_fail(map_pool_err(rc), "%s", d.msg);
		goto unlock;
	}
	if (ngrants) {
		ret = cli_fail(
		        E_CPU_ERROR,
		        "%zu enclave(s) are running (e.g. %s, pid %ld); the pool cannot change "
		        "under them. Terminate them first (cloister terminate-enclave --all)",
		        ngrants, grants[0].enclave_id, (long)grants[0].owner_pid);
		goto unlock;
	}
	if (!release) {
		/* CPU rules first, so a bad configuration leaves the current pool untouched. */
		rc = plan_and_reserve(topo, &cfg, sysroot, true, &rec, &d);
		if (rc) {
			ret = cli_fail(map_pool_err(rc), "%s: %s", config, d.msg);
			goto unlock;
		}
	}
	rc = pool_record_read(p, &old, &d);
	have_old = rc == POOL_OK;
	if (rc && rc != POOL_ERR_NO_POOL) {
		ret = cli_fail(map_pool_err(rc), "%s", d.msg);
		goto unlock;
	}
	/* Give back what the previous configuration reserved before reserving anew. */
	if (have_old && pool_hugepages_release(sysroot, old.node, &old.reserved, NULL, &d)) {
		ret = cli_fail(E_FILE_OPERATION, "releasing the previous hugepages: %s", d.msg);
		goto unlock;
	}
	if (release) {
		if (pool_record_remove(p, &d)) {
			ret = cli_fail(E_FILE_OPERATION, "%s", d.msg);
			goto unlock;
		}
		if (have_old) {
			describe_hugepages(&old.reserved, pages, sizeof(pages));
			printf("released the enclave pool (hugepages given back: %s)\n", pages);
		} else {
			printf("no enclave pool was configured\n");
		}
		goto unlock;
	}

	rc = plan_and_reserve(topo, &cfg, sysroot, false, &rec, &d);
	if (rc) {
		ret = cli_fail(map_pool_err(rc), "%s: %s", config, d.msg);
		/* The old pool's hugepages were given back first; so the old pool is gone. */
		if (have_old) {
			pool_record_remove(p, NULL);
			fprintf(stderr, "The previous enclave pool was removed.\n");
		}
		goto unlock;
	}
	if (pool_record_write(p, &rec, &d)) {
		pool_hugepages_release(sysroot, rec.node, &rec.reserved, NULL, NULL);
		ret = cli_fail(E_FILE_OPERATION, "%s", d.msg);
		goto unlock;
	}
	pool_cpulist_format(&rec.cpus, cpus, sizeof(cpus));
	describe_hugepages(&rec.reserved, pages, sizeof(pages));
	printf("enclave pool: CPUs %s (NUMA node %d, %u core(s)), %" PRIu64
	       " MiB of hugepages (%s); state in %s\n",
	       cpus, rec.node,
	       cpuset_count(&rec.cpus) / (rec.threads_per_core ? rec.threads_per_core : 1),
	       rec.memory_mib, pages, pool_state_dir(p));
unlock:
	pool_unlock(p);
out:
	free(grants);
	pool_close(p);
	pool_topology_free(topo);
	return ret;
}
