/* SPDX-License-Identifier: Apache-2.0 */
/* Where run-enclave finds the PCR3/PCR4 inputs (parent_identity.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/nitro/parent_identity.h"
#include "lib/pool/pool.h"
#include "lib/util/file.h"

/* nitro-cli error code numbers (src/cli/cli.h), kept numeric so this file links without it. */
enum {
	EC_INVALID_ARGUMENT = 3,
	EC_FILE_OPERATION = 19,
};

#define CONF_MAX (64 * 1024)
#define ENV_ROLE "CLOISTER_PARENT_ROLE"
#define ENV_ID "CLOISTER_PARENT_ID"
#define KEY_ROLE "parent_role"
#define KEY_ID "parent_id"

const char *parent_conf_path(void)
{
	const char *env = getenv("CLOISTER_PARENT_CONF");

	return env && *env ? env : "/etc/cloister/parent.conf";
}

bool parent_is_instance_id(const char *s)
{
	size_t n = 0;

	if (strncmp(s, "i-", 2))
		return false;
	for (s += 2; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return false;
	return n == 8 || n == 17;
}

static void set_value(char dst[NSM_PARENT_VALUE_MAX + 1], const char **from, const char *v,
                      const char *source)
{
	snprintf(dst, NSM_PARENT_VALUE_MAX + 1, "%s", v);
	*from = source;
}

/* CLOISTER_PARENT_*: 1 if set (*dst filled, maybe ""), 0 if unset, -1 if invalid. */
static int from_env(const char *var, char dst[NSM_PARENT_VALUE_MAX + 1], const char **from,
                    struct cl_diag *d)
{
	const char *v = getenv(var);

	if (!v)
		return 0;
	if (*v && !nsm_parent_value_valid(v)) {
		cl_diag_set(d,
		            "%s='%.80s' is not a usable PCR%d input: give 1 to %d printable "
		            "characters without spaces (or set it empty for none)",
		            var, v, strcmp(var, ENV_ROLE) ? 4 : 3, NSM_PARENT_VALUE_MAX);
		return -1;
	}
	set_value(dst, from, v, var);
	return 1;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* The config file's values; *have_* say which keys it set (perhaps to ""). */
static int from_file(const char *path, struct parent_identity *f, bool *have_role, bool *have_id,
                     struct cl_diag *d)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	char *line, *next;
	unsigned lineno = 0;
	int rc;

	*have_role = *have_id = false;
	rc = cl_file_read_all(path, CONF_MAX, &buf, &len, d);
	if (rc == -ENOENT)
		return 0;
	if (rc) {
		cl_diag_prefix(d, "parent identity file (PCR3/PCR4) %s", path);
		return EC_FILE_OPERATION;
	}
	rc = EC_INVALID_ARGUMENT;
	if (memchr(buf, '\0', len)) {
		cl_diag_set(d, "%s is not a text file (it holds a NUL byte)", path);
		goto out;
	}
	for (line = (char *)buf; line; line = next) {
		char *eq, *key, *val, *dst;
		bool *have;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		key = trim(line);
		if (!*key || *key == '#')
			continue;
		eq = strchr(key, '=');
		if (!eq) {
			cl_diag_set(d, "%s:%u: expected 'parent_role = ARN' or 'parent_id = ID'",
			            path, lineno);
			goto out;
		}
		*eq = '\0';
		val = trim(eq + 1);
		key = trim(key);
		if (!strcmp(key, KEY_ROLE)) {
			have = have_role;
			dst = f->role;
		} else if (!strcmp(key, KEY_ID)) {
			have = have_id;
			dst = f->id;
		} else {
			cl_diag_set(d,
			            "%s:%u: unknown key '%.40s' (the keys are parent_role and "
			            "parent_id)",
			            path, lineno, key);
			goto out;
		}
		if (*have) {
			cl_diag_set(d, "%s:%u: %s is set twice", path, lineno, key);
			goto out;
		}
		/* A quoted value would be measured with its quotes: a PCR nobody can match. */
		if (*val == '"' || *val == '\'') {
			cl_diag_set(d, "%s:%u: write the %s without quotes", path, lineno, key);
			goto out;
		}
		if (*val && !nsm_parent_value_valid(val)) {
			cl_diag_set(d,
			            "%s:%u: %s '%.80s' is not a usable PCR input: give 1 to %d "
			            "printable characters without spaces (or nothing for none)",
			            path, lineno, key, val, NSM_PARENT_VALUE_MAX);
			goto out;
		}
		snprintf(dst, NSM_PARENT_VALUE_MAX + 1, "%s", val);
		*have = true;
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

int parent_identity_load(const char *conf, const char *sysroot, struct parent_identity *out,
                         struct cl_diag *d)
{
	struct parent_identity file;
	const char *path = conf ? conf : parent_conf_path();
	bool file_role = false, file_id = false;
	int env_role, env_id, rc;

	memset(out, 0, sizeof(*out));
	out->role_from = out->id_from = "none";
	env_role = from_env(ENV_ROLE, out->role, &out->role_from, d);
	env_id = from_env(ENV_ID, out->id, &out->id_from, d);
	if (env_role < 0 || env_id < 0)
		return EC_INVALID_ARGUMENT;
	if (env_role && env_id)
		return 0; /* the environment decides both; the file is not even read */

	memset(&file, 0, sizeof(file));
	rc = from_file(path, &file, &file_role, &file_id, d);
	if (rc)
		return rc;
	if (!env_role && file_role)
		set_value(out->role, &out->role_from, file.role, path);
	if (!env_id && file_id)
		set_value(out->id, &out->id_from, file.id, path);
	if (!env_id && !file_id) {
		char prefix[POOL_ID_PREFIX_MAX];

		pool_enclave_id_prefix(sysroot ? sysroot : pool_default_sysroot(), prefix);
		if (parent_is_instance_id(prefix))
			set_value(out->id, &out->id_from, prefix, "board_asset_tag");
	}
	return 0;
}

void parent_identity_apply(const struct parent_identity *pi, const char **role, const char **id)
{
	*role = pi->role[0] ? pi->role : NULL;
	*id = pi->id[0] ? pi->id : NULL;
}
