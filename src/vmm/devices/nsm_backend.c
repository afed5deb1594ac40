/* SPDX-License-Identifier: Apache-2.0 */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmm/devices/nsm_backend.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const struct nsm_backend *loaded;
static char failure[PATH_MAX + 256];

/* A cloister run from its build tree loads the module built beside it; an installed one, the
 * installed module. Never a path from the environment: the module holds the enclave's key. */
static void module_path(char *out, size_t len)
{
	static const char root[] = CLOISTER_BUILD_ROOT "/";
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n > 0) {
		exe[n] = '\0';
		if (!strncmp(exe, root, sizeof(root) - 1)) {
			snprintf(out, len, "%ssrc/vmm/%s", root, NSM_BACKEND_FILE);
			return;
		}
	}
	snprintf(out, len, "%s/%s", CLOISTER_NSM_MODULE_DIR, NSM_BACKEND_FILE);
}

static void load(void)
{
	char path[PATH_MAX + 64];
	const struct nsm_backend *b;
	void *h;

	module_path(path, sizeof(path));
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(failure, sizeof(failure), "cannot load the NSM module: %s", dlerror());
		return;
	}
	b = dlsym(h, NSM_BACKEND_SYMBOL);
	if (!b || b->abi != NSM_BACKEND_ABI) {
		snprintf(failure, sizeof(failure),
		         "%s is not this cloister's NSM module (%s); rebuild or reinstall cloister",
		         path, b ? "another ABI version" : "no " NSM_BACKEND_SYMBOL);
		dlclose(h);
		return;
	}
	loaded = b; /* never unloaded: the NSM state lives as long as the enclave */
}

const struct nsm_backend *nsm_backend_load(struct cl_diag *d)
{
	pthread_once(&once, load);
	if (!loaded)
		cl_diag_set(d, "%s", failure);
	return loaded;
}
