/* SPDX-License-Identifier: Apache-2.0 */
/* run-enclave's arguments, validated as nitro-cli does (nitro-compat §2.1, §2.4). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/nitro/run_args.h"
#include "lib/util/file.h"

/* nitro-cli error code numbers (src/cli/cli.h), kept numeric so this file links without it. */
enum {
	EC_MISSING_ARGUMENT = 1,
	EC_CONFLICTING_ARGUMENTS = 2,
	EC_INVALID_ARGUMENT = 3,
	EC_SERDE = 17,
	EC_FILE_OPERATION = 19,
	EC_MALFORMED_CPU_ID = 23,
};

static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || __builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v))
			return -1;
	}
	*out = v;
	return 0;
}

int run_args_parse_memory(const char *s, uint64_t *mib, struct cl_diag *d)
{
	char num[32];
	size_t len = strlen(s);
	uint64_t v, mul = 1;

	if (len && strchr("MmGgTt", s[len - 1])) {
		char c = s[len - 1];

		mul = (c == 'G' || c == 'g') ? 1024 : (c == 'T' || c == 't') ? 1024 * 1024 : 1;
		len--;
	}
	if (len == 0 || len >= sizeof(num)) {
		cl_diag_set(d,
		            "invalid memory '%s': give a number of MiB, optionally with M, G or T "
		            "(e.g. 512 or 2G)",
		            s);
		return EC_INVALID_ARGUMENT;
	}
	memcpy(num, s, len);
	num[len] = '\0';
	if (parse_u64(num, &v) || __builtin_mul_overflow(v, mul, &v) || v > (UINT64_MAX >> 20)) {
		cl_diag_set(d,
		            "invalid memory '%s': give a number of MiB, optionally with M, G or T "
		            "(e.g. 512 or 2G)",
		            s);
		return EC_INVALID_ARGUMENT;
	}
	*mib = v;
	return 0;
}

static int set_cid(struct run_args *a, uint64_t cid, struct cl_diag *d)
{
	/* 0 asks for an automatic CID; 1-3 and VMADDR_CID_ANY (and anything wider than 32 bits)
	 * are refused up front (nitro-compat §2.4). */
	if (cid != 0 && pool_cid_reserved(cid)) {
		cl_diag_set(d,
		            "enclave CID %" PRIu64 " is reserved: 1 and 2 are well-known, 3 is the "
		            "parent, 4294967295 and above are not valid; use 4-4294967294 or leave "
		            "it out",
		            cid);
		return EC_INVALID_ARGUMENT;
	}
	a->cid = cid;
	a->cid_given_zero = cid == 0;
	return 0;
}

static int add_cpu_id(struct run_args *a, const char *s, struct cl_diag *d)
{
	uint64_t v;

	if (parse_u64(s, &v) || v > UINT32_MAX) {
		cl_diag_set(d, "CPU id '%s' is not a number", s);
		return EC_MALFORMED_CPU_ID;
	}
	if (a->ncpu_ids == NE_LAUNCH_MAX_CPUS) {
		cl_diag_set(d, "more than %d CPU ids given", NE_LAUNCH_MAX_CPUS);
		return EC_INVALID_ARGUMENT;
	}
	a->cpu_ids[a->ncpu_ids++] = (uint32_t)v;
	return 0;
}

static int set_name(struct run_args *a, const char *name, struct cl_diag *d)
{
	if (strlen(name) >= sizeof(a->name)) {
		cl_diag_set(d, "enclave name is longer than %zu bytes", sizeof(a->name) - 1);
		return EC_INVALID_ARGUMENT;
	}
	snprintf(a->name, sizeof(a->name), "%s", name);
	return 0;
}

static int set_eif(struct run_args *a, const char *path, struct cl_diag *d)
{
	if (strlen(path) >= sizeof(a->eif_path) || !*path) {
		cl_diag_set(d, "EIF path '%.60s' is empty or too long", path);
		return EC_INVALID_ARGUMENT;
	}
	snprintf(a->eif_path, sizeof(a->eif_path), "%s", path);
	return 0;
}

/* The default name: the EIF's file name without a ".eif" suffix (nitro-compat §2.3). */
static void default_name(struct run_args *a)
{
	const char *base = strrchr(a->eif_path, '/');
	size_t len;

	base = base ? base + 1 : a->eif_path;
	len = strlen(base);
	if (len > 4 && !strcmp(base + len - 4, ".eif"))
		len -= 4;
	if (len >= sizeof(a->name))
		len = sizeof(a->name) - 1;
	memcpy(a->name, base, len);
	a->name[len] = '\0';
}

/* Both of, or neither of, the CPU options; then the name default and attach => debug. */
static int finish(struct run_args *a, bool have_count, bool have_mem, struct cl_diag *d)
{
	if (!a->eif_path[0]) {
		cl_diag_set(d, "the EIF path is required (--eif-path)");
		return EC_MISSING_ARGUMENT;
	}
	if (!have_mem) {
		cl_diag_set(d, "the enclave memory is required (--memory, in MiB)");
		return EC_MISSING_ARGUMENT;
	}
	if (have_count && a->ncpu_ids) {
		cl_diag_set(d, "--cpu-count and --cpu-ids conflict; give one of them");
		return EC_CONFLICTING_ARGUMENTS;
	}
	if (!have_count && !a->ncpu_ids) {
		cl_diag_set(d, "the enclave CPUs are required (--cpu-count N or --cpu-ids ID...)");
		return EC_MISSING_ARGUMENT;
	}
	if (have_count && a->cpu_count == 0) {
		cl_diag_set(d, "--cpu-count must be at least 1");
		return EC_INVALID_ARGUMENT;
	}
	if (a->attach_console)
		a->debug_mode = true;
	if (!a->name[0])
		default_name(a);
	return 0;
}

static const char *json_str(struct json_object *o)
{
	return json_object_is_type(o, json_type_string) ? json_object_get_string(o) : NULL;
}

/* A non-negative JSON integer (json-c keeps values above INT64_MAX as uint64). */
static int json_u64(struct json_object *o, uint64_t *out)
{
	if (!json_object_is_type(o, json_type_int))
		return -1;
	errno = 0;
	if (json_object_get_int64(o) < 0)
		return -1;
	*out = json_object_get_uint64(o);
	return errno ? -1 : 0;
}

int run_args_parse_config(const char *json, size_t len, struct run_args *out, struct cl_diag *d)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *root = NULL, *v;
	bool have_count = false;
	uint64_t n;
	int rc = EC_SERDE;

	memset(out, 0, sizeof(*out));
	if (!tok || len > INT32_MAX) {
		cl_diag_set(d, "cannot parse the config");
		goto out;
	}
	root = json_tokener_parse_ex(tok, json, (int)len);
	if (!root || json_tokener_get_parse_end(tok) != len ||
	    !json_object_is_type(root, json_type_object)) {
		cl_diag_set(d, "the config is not a JSON object");
		goto out;
	}
	if (json_object_object_get_ex(root, "eif_path", &v)) {
		if (!json_str(v) || (rc = set_eif(out, json_str(v), d)) != 0) {
			if (!json_str(v))
				cl_diag_set(d, "config key eif_path must be a string");
			rc = rc ? rc : EC_SERDE;
			goto out;
		}
	}
	if (json_object_object_get_ex(root, "memory_mib", &v)) {
		if (json_u64(v, &out->memory_mib) || out->memory_mib > (UINT64_MAX >> 20)) {
			cl_diag_set(d, "config key memory_mib must be a number of MiB");
			rc = EC_SERDE;
			goto out;
		}
	} else {
		cl_diag_set(d, "config key memory_mib is required");
		rc = EC_MISSING_ARGUMENT;
		goto out;
	}
	if (json_object_object_get_ex(root, "cpu_count", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		if (json_u64(v, &n) || n > NE_LAUNCH_MAX_CPUS) {
			cl_diag_set(d, "config key cpu_count must be a number from 1 to %d",
			            NE_LAUNCH_MAX_CPUS);
			rc = EC_SERDE;
			goto out;
		}
		out->cpu_count = (unsigned)n;
		have_count = true;
	}
	if (json_object_object_get_ex(root, "cpu_ids", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		if (!json_object_is_type(v, json_type_array)) {
			cl_diag_set(d, "config key cpu_ids must be an array of CPU ids");
			rc = EC_SERDE;
			goto out;
		}
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			struct json_object *e = json_object_array_get_idx(v, i);

			if (json_u64(e, &n) || n > UINT32_MAX) {
				cl_diag_set(d, "config cpu_ids[%zu] is not a CPU id", i);
				rc = EC_MALFORMED_CPU_ID;
				goto out;
			}
			if (out->ncpu_ids == NE_LAUNCH_MAX_CPUS) {
				cl_diag_set(d, "more than %d CPU ids given", NE_LAUNCH_MAX_CPUS);
				rc = EC_INVALID_ARGUMENT;
				goto out;
			}
			out->cpu_ids[out->ncpu_ids++] = (uint32_t)n;
		}
		if (!out->ncpu_ids) {
			cl_diag_set(d, "config key cpu_ids is empty");
			rc = EC_INVALID_ARGUMENT;
			goto out;
		}
	}
	if (json_object_object_get_ex(root, "enclave_cid", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		if (json_u64(v, &n)) {
			cl_diag_set(d, "config key enclave_cid must be a number");
			rc = EC_SERDE;
			goto out;
		}
		rc = set_cid(out, n, d);
		if (rc)
			goto out;
	}
	if (json_object_object_get_ex(root, "debug_mode", &v) &&
	    !json_object_is_type(v, json_type_null))
		out->debug_mode = json_object_get_boolean(v);
	if (json_object_object_get_ex(root, "attach_console", &v) &&
	    !json_object_is_type(v, json_type_null))
		out->attach_console = json_object_get_boolean(v);
	if (json_object_object_get_ex(root, "enclave_name", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		if (!json_str(v)) {
			cl_diag_set(d, "config key enclave_name must be a string");
			rc = EC_SERDE;
			goto out;
		}
		rc = set_name(out, json_str(v), d);
		if (rc)
			goto out;
	}
	rc = finish(out, have_count, true, d);
out:
	json_object_put(root);
	if (tok)
		json_tokener_free(tok);
	return rc;
}

/* "--opt value" or "--opt=value": the value, advancing *i; NULL if missing. */
static const char *opt_value(int argc, char **argv, int *i, const char *eq)
{
	if (eq)
		return eq + 1;
	if (*i + 1 < argc) {
		(*i)++;
		return argv[*i];
	}
	return NULL;
}

int run_args_parse(int argc, char **argv, struct run_args *out, struct cl_diag *d)
{
	const char *config = NULL, *other = NULL;
	bool have_count = false, have_mem = false, attach = false;
	int rc;

	memset(out, 0, sizeof(*out));
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *eq = strchr(arg, '='), *val;
		char name[32];
		size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);

		if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
			memset(out, 0, sizeof(*out));
			out->help = true;
			return 0;
		}
		if (nlen >= sizeof(name) || strncmp(arg, "--", 2)) {
			cl_diag_set(d, "unexpected argument '%.60s'", arg);
			return EC_INVALID_ARGUMENT;
		}
		memcpy(name, arg, nlen);
		name[nlen] = '\0';
		if (!strcmp(name, "--debug-mode") || !strcmp(name, "--attach-console")) {
			if (eq) {
				cl_diag_set(d, "%s takes no value", name);
				return EC_INVALID_ARGUMENT;
			}
			if (!strcmp(name, "--attach-console"))
				attach = true;
			else
				out->debug_mode = true;
			if (!strcmp(name, "--debug-mode"))
				other = "--debug-mode";
			continue;
		}
		if (!strcmp(name, "--cpu-ids")) {
			/* One or more values: everything up to the next option. */
			other = "--cpu-ids";
			if (eq) {
				rc = add_cpu_id(out, eq + 1, d);
				if (rc)
					return rc;
			}
			while (i + 1 < argc && strncmp(argv[i + 1], "--", 2)) {
				rc = add_cpu_id(out, argv[++i], d);
				if (rc)
					return rc;
			}
			if (!out->ncpu_ids) {
				cl_diag_set(d, "--cpu-ids needs at least one CPU id");
				return EC_MISSING_ARGUMENT;
			}
			continue;
		}
		if (strcmp(name, "--config") && strcmp(name, "--eif-path") &&
		    strcmp(name, "--memory") && strcmp(name, "--cpu-count") &&
		    strcmp(name, "--enclave-cid") && strcmp(name, "--enclave-name")) {
			cl_diag_set(d, "unknown option '%s' for run-enclave", name);
			return EC_INVALID_ARGUMENT;
		}
		val = opt_value(argc, argv, &i, eq);
		if (!val) {
			cl_diag_set(d, "%s needs a value", name);
			return EC_MISSING_ARGUMENT;
		}
		if (!strcmp(name, "--config")) {
			config = val;
		} else if (!strcmp(name, "--eif-path")) {
			other = "--eif-path";
			rc = set_eif(out, val, d);
			if (rc)
				return rc;
		} else if (!strcmp(name, "--memory")) {
			other = "--memory";
			rc = run_args_parse_memory(val, &out->memory_mib, d);
			if (rc)
				return rc;
			have_mem = true;
		} else if (!strcmp(name, "--cpu-count")) {
			uint64_t n;

			other = "--cpu-count";
			if (parse_u64(val, &n) || n > NE_LAUNCH_MAX_CPUS) {
				cl_diag_set(d, "--cpu-count '%s' is not a number from 1 to %d", val,
				            NE_LAUNCH_MAX_CPUS);
				return EC_INVALID_ARGUMENT;
			}
			out->cpu_count = (unsigned)n;
			have_count = true;
		} else if (!strcmp(name, "--enclave-cid")) {
			uint64_t n;

			other = "--enclave-cid";
			if (parse_u64(val, &n)) {
				cl_diag_set(d, "--enclave-cid '%s' is not a number", val);
				return EC_INVALID_ARGUMENT;
			}
			rc = set_cid(out, n, d);
			if (rc)
				return rc;
		} else {
			other = "--enclave-name";
			rc = set_name(out, val, d);
			if (rc)
				return rc;
		}
	}
	if (config) {
		uint8_t *buf;
		size_t len;

		if (other) {
			cl_diag_set(d,
			            "--config conflicts with %s (only --attach-console may go with "
			            "it)",
			            other);
			return EC_CONFLICTING_ARGUMENTS;
		}
		if (cl_file_read_all(config, 1 << 20, &buf, &len, d))
			return EC_FILE_OPERATION;
		rc = run_args_parse_config((const char *)buf, len, out, d);
		free(buf);
		if (rc) {
			cl_diag_prefix(d, "%s", config);
			return rc;
		}
		if (attach)
			out->attach_console = out->debug_mode = true;
		return 0;
	}
	out->attach_console = attach;
	return finish(out, have_count, have_mem, d);
}

void run_args_to_launch_req(const struct run_args *a, struct ne_launch_req *out)
{
	memset(out, 0, sizeof(*out));
	out->memory_mib = a->memory_mib;
	out->cpu_count = a->cpu_count;
	out->cpu_ids = a->ncpu_ids ? a->cpu_ids : NULL;
	out->ncpu_ids = a->ncpu_ids;
	out->cid = a->cid;
	out->name = a->name;
	out->debug_mode = a->debug_mode;
}
