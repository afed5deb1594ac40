/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run-enclave -> cloister-enclave: the enclave process's private command line (enclave.h), and
 * the exec that starts it. Both directions live here so that they cannot drift apart; a unit
 * test checks that parsing what was built gives back the same run_args and parent identity.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/nitro/enclave.h"

#ifndef CLOISTER_LIBEXECDIR
#define CLOISTER_LIBEXECDIR "/usr/local/libexec/cloister"
#endif

struct builder {
	struct enclave_argv *out;
	size_t argc, used;
	bool full;
};

static void add(struct builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(struct builder *b, const char *fmt, ...)
{
	size_t room = sizeof(b->out->text) - b->used;
	va_list ap;
	int n;

	if (b->full || b->argc == ENCLAVE_ARGV_MAX) {
		b->full = true;
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(b->out->text + b->used, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room) {
		b->full = true;
		return;
	}
	b->out->argv[b->argc++] = b->out->text + b->used;
	b->used += (size_t)n + 1;
}

int enclave_argv_build(const char *exe, const struct run_args *a,
                       const struct parent_identity *parent, uint64_t eif_size, int report_fd,
                       struct enclave_argv *out)
{
	struct builder b = { .out = out };

	memset(out->argv, 0, sizeof(out->argv));
	add(&b, "%s", exe);
	add(&b, "--report-fd");
	add(&b, "%d", report_fd);
	add(&b, "--eif-size");
	add(&b, "%" PRIu64, eif_size);
	add(&b, "--parent-role");
	add(&b, "%s", parent->role);
	add(&b, "--parent-role-from");
	add(&b, "%s", parent->role_from ? parent->role_from : "none");
	add(&b, "--parent-id");
	add(&b, "%s", parent->id);
	add(&b, "--parent-id-from");
	add(&b, "%s", parent->id_from ? parent->id_from : "none");
	add(&b, "--");
	add(&b, "run-enclave");
	add(&b, "--eif-path");
	add(&b, "%s", a->eif_path);
	add(&b, "--memory");
	add(&b, "%" PRIu64, a->memory_mib);
	if (a->ncpu_ids) {
		add(&b, "--cpu-ids");
		for (size_t i = 0; i < a->ncpu_ids; i++)
			add(&b, "%" PRIu32, a->cpu_ids[i]);
	} else {
		add(&b, "--cpu-count");
		add(&b, "%u", a->cpu_count);
	}
	if (a->cid) {
		add(&b, "--enclave-cid");
		add(&b, "%" PRIu64, a->cid);
	}
	add(&b, "--enclave-name");
	add(&b, "%s", a->name);
	if (a->debug_mode)
		add(&b, "--debug-mode");
	out->argv[b.argc] = NULL;
	return b.full ? -1 : 0;
}

static int parse_number(const char *opt, const char *s, uint64_t max, uint64_t *out,
                        struct cl_diag *d)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	if (!*s || *end || errno || *out > max || *s == '-') {
		cl_diag_set(d, "%s '%s' is not a number up to %" PRIu64, opt, s, max);
		return E_INVALID_ARGUMENT;
	}
	return 0;
}

static int copy_value(const char *opt, const char *s, char *dst, size_t len, struct cl_diag *d)
{
	if (strlen(s) >= len) {
		cl_diag_set(d, "%s is longer than %zu bytes", opt, len - 1);
		return E_INVALID_ARGUMENT;
	}
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

int enclave_argv_parse(int argc, char **argv, struct run_args *a, struct parent_identity *parent,
                       uint64_t *eif_size, int *report_fd, struct cl_diag *d)
{
	bool have_fd = false, have_size = false;
	uint64_t v;
	int i, rc;

	memset(parent, 0, sizeof(*parent));
	parent->role_from = parent->id_from = "none";
	for (i = 1; i < argc && strcmp(argv[i], "--"); i += 2) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!val) {
			cl_diag_set(d, "%s needs a value", opt);
			return E_MISSING_ARGUMENT;
		}
		if (!strcmp(opt, "--report-fd")) {
			rc = parse_number(opt, val, INT32_MAX, &v, d);
			*report_fd = (int)v;
			have_fd = true;
		} else if (!strcmp(opt, "--eif-size")) {
			rc = parse_number(opt, val, UINT64_MAX, eif_size, d);
			have_size = true;
		} else if (!strcmp(opt, "--parent-role")) {
			rc = copy_value(opt, val, parent->role, sizeof(parent->role), d);
		} else if (!strcmp(opt, "--parent-id")) {
			rc = copy_value(opt, val, parent->id, sizeof(parent->id), d);
		} else if (!strcmp(opt, "--parent-role-from")) {
			parent->role_from = val;
			rc = 0;
		} else if (!strcmp(opt, "--parent-id-from")) {
			parent->id_from = val;
			rc = 0;
		} else {
			cl_diag_set(d, "unknown option %s", opt);
			return E_INVALID_ARGUMENT;
		}
		if (rc)
			return rc;
	}
	if ((parent->role[0] && !nsm_parent_value_valid(parent->role)) ||
	    (parent->id[0] && !nsm_parent_value_valid(parent->id))) {
		cl_diag_set(d, "--parent-role or --parent-id is not printable ASCII");
		return E_INVALID_ARGUMENT;
	}
	if (!have_fd || !have_size || i + 1 >= argc) {
		cl_diag_set(d,
		            "--report-fd, --eif-size and, after --, the run-enclave arguments are "
		            "required");
		return E_MISSING_ARGUMENT;
	}
	return run_args_parse(argc - i - 1, argv + i + 1, a, d);
}

int enclave_exe_path(char *out, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			if ((size_t)snprintf(out, len, "%s/%s", self, ENCLAVE_EXE) < len &&
			    access(out, X_OK) == 0)
				return 0;
		}
	}
	if ((size_t)snprintf(out, len, "%s/%s", CLOISTER_LIBEXECDIR, ENCLAVE_EXE) < len &&
	    access(out, X_OK) == 0)
		return 0;
	return -1;
}

int enclave_process_exec(const struct run_args *a, const struct parent_identity *parent,
                         uint64_t eif_size, int report_fd)
{
	static struct enclave_argv args; /* too large for the stack of a forked child */
	char exe[PATH_MAX];
	int flags;

	if (enclave_exe_path(exe, sizeof(exe)) < 0) {
		errno = ENOENT;
		return -1;
	}
	if (enclave_argv_build(exe, a, parent, eif_size, report_fd, &args) < 0) {
		errno = E2BIG;
		return -1;
	}
	flags = fcntl(report_fd, F_GETFD);
	if (flags < 0 || fcntl(report_fd, F_SETFD, flags & ~FD_CLOEXEC) < 0)
		return -1;
	execv(exe, args.argv);
	(void)fcntl(report_fd, F_SETFD, flags);
	return -1;
}
