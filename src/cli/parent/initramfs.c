/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The parent instance's kernel and initramfs.
 *
 * The initramfs is deliberately tiny: a static busybox, /init (below) and the handful of modules
 * the Debian generic kernel needs for a 9p root and for KVM. /init mounts the host's / read-only
 * over 9p and chroots into it to run the command, so every host binary (our build, QEMU,
 * python3) is available inside without copying anything. See docs/parent-instance.md.
 */
#include <archive.h>
#include <archive_entry.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/parent/parent.h"
#include "lib/util/file.h"

/*
 * PID 1 of the parent instance (busybox sh). The CLI's per-run control directory is shared as
 * `ctl`: it provides `config` (WORKDIR, HUGEPAGES) and `cmd.sh`, and receives `status`. The
 * command's stdout/stderr go to two virtio-serial ports the CLI reads, so its output is never
 * mixed with kernel messages or with the exit status. Any failure before the command runs
 * powers off without a status, and the CLI reports the console tail.
 */
static const char init_script[] =
        "#!/bin/sh\n"
        "/bin/busybox mount -t proc proc /proc\n"
        "/bin/busybox --install -s /bin\n"
        "export PATH=/bin\n"
        "mount -t sysfs sysfs /sys\n"
        "mount -t devtmpfs devtmpfs /dev\n"
        "say() { echo \"cloister-parent: $*\" >/dev/console; }\n"
        "die() { say \"error: $*\"; sync; poweroff -f; sleep 10; }\n"
        "while read -r name need; do\n"
        "  insmod \"/lib/modules/$name.ko\" 2>/dev/console && continue\n"
        "  [ \"$need\" = required ] && die \"insmod $name failed\"\n"
        "  say \"warning: insmod $name failed (optional)\"\n"
        "done </lib/modules/order\n"
        "o=trans=virtio,version=9p2000.L,msize=512000\n"
        "mount -t 9p -o $o,cache=none ctl /ctl || die 'cannot mount the control share'\n"
        ". /ctl/config\n"
        "mount -t 9p -o $o,cache=loose,ro hostroot /newroot || die 'cannot mount the host root'\n"
        "mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp\n"
        "mount -t tmpfs -o mode=755 tmpfs /newroot/run\n"
        "mount -t tmpfs -o mode=1777 tmpfs /newroot/var/tmp\n"
        "mount -t proc proc /newroot/proc\n"
        "mount -t sysfs sysfs /newroot/sys\n"
        "mount -t devtmpfs devtmpfs /newroot/dev\n"
        "mkdir -p /newroot/dev/pts /newroot/dev/shm /newroot/dev/hugepages\n"
        "mount -t devpts devpts /newroot/dev/pts\n"
        "ln -sf /proc/self/fd /newroot/dev/fd\n"
        "ln -sf /proc/self/fd/0 /newroot/dev/stdin\n"
        "ln -sf /proc/self/fd/1 /newroot/dev/stdout\n"
        "ln -sf /proc/self/fd/2 /newroot/dev/stderr\n"
        "mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm\n"
        "if [ -n \"$WORKDIR\" ]; then\n"
        "  mkdir -p \"/newroot$WORKDIR\" 2>/dev/null\n"
        "  mount -t 9p -o $o,cache=loose work \"/newroot$WORKDIR\" ||\n"
        "    die \"cannot mount the work directory $WORKDIR\"\n"
        "fi\n"
        "echo \"$HUGEPAGES\" >/proc/sys/vm/nr_hugepages\n"
        "got=$(cat /proc/sys/vm/nr_hugepages)\n"
        "[ \"$got\" -lt \"$HUGEPAGES\" ] && say \"warning: only $got of $HUGEPAGES hugepages\"\n"
        "mount -t hugetlbfs hugetlbfs /newroot/dev/hugepages\n"
        "ip link set lo up\n"
        "hostname cloister-parent\n"
        "out=/dev/null; err=/dev/null\n"
        "for p in /sys/class/virtio-ports/*; do\n"
        "  case \"$(cat \"$p/name\")\" in\n"
        "  cloister.stdout) out=/dev/${p##*/} ;;\n"
        "  cloister.stderr) err=/dev/${p##*/} ;;\n"
        "  esac\n"
        "done\n"
        "cp /ctl/cmd.sh /newroot/run/cloister-cmd.sh || die 'cannot copy the command'\n"
        "say \"ready (L1 uptime $(cut -d' ' -f1 /proc/uptime) s)\"\n"
        "env -i chroot /newroot /bin/sh /run/cloister-cmd.sh </dev/null >\"$out\" 2>\"$err\"\n"
        "rc=$?\n"
        "say \"command exited with $rc (L1 uptime $(cut -d' ' -f1 /proc/uptime) s)\"\n"
        "kill -KILL -1 2>/dev/null\n"
        "sync\n"
        "echo \"$rc\" >/ctl/status.tmp && mv /ctl/status.tmp /ctl/status\n"
        "sync\n"
        "poweroff -f\n"
        "sleep 10\n";

/* Modules to load, in this order, each after its dependencies (found in its .modinfo). The 9p
 * chain is required for the root; KVM and vhost-vsock are what the parent instance is for, but a
 * failure there still lets the command run (and say so itself). */
static const struct {
	const char *name;
	bool required;
} wanted_modules[] = {
	{ "netfs", true },        { "9pnet", true },
	{ "9pnet_virtio", true }, { "9p", true },
	{ "irqbypass", false },   { "ccp", false },
	{ "kvm", false },         { "kvm_amd", false },
	{ "vhost_iotlb", false }, { "vhost", false },
	{ "vsock", false },       { "vmw_vsock_virtio_transport_common", false },
	{ "vhost_vsock", false },
};

#define MAX_MODULES 64
#define MODULE_MAX_BYTES (64u << 20)

struct module {
	char name[64]; /* normalised: '-' → '_' */
	char path[PATH_MAX];
	uint8_t *data; /* decompressed */
	size_t len;
	bool required;
	int state; /* 0 new, 1 visiting, 2 placed */
};

struct module_set {
	struct module mods[MAX_MODULES];
	size_t count;
	size_t order[MAX_MODULES];
	size_t order_len;
	const char *moddir;
};

static void normalise(char *s)
{
	for (; *s; s++)
		if (*s == '-')
			*s = '_';
}

/* nftw has no user pointer: the search state lives in these for the duration of one walk. */
static const char *walk_want;
static char *walk_found;

static int walk_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	char base[128];
	const char *b = path + ftw->base;
	size_t n;
	char *dot;

	(void)st;
	if (flag != FTW_F)
		return 0;
	n = strlen(b);
	if (n >= sizeof(base))
		return 0;
	memcpy(base, b, n + 1);
	dot = strstr(base, ".ko");
	if (!dot || (dot[3] != '\0' && dot[3] != '.'))
		return 0;
	*dot = '\0';
	normalise(base);
	if (strcmp(base, walk_want) != 0)
		return 0;
	snprintf(walk_found, PATH_MAX, "%s", path);
	return 1;
}

/* Read a (possibly xz/zstd/gzip-compressed) file whole through libarchive's raw format. */
static int read_decompressed(const char *path, uint8_t **out, size_t *len, struct cl_diag *d)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	uint8_t *buf = NULL;
	size_t cap = 0, used = 0;
	int rc = -1;

	if (!a) {
		cl_diag_set(d, "out of memory");
		return -1;
	}
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK) {
		cl_diag_set(d, "cannot read %s: %s", path, archive_error_string(a));
		goto out;
	}
	for (;;) {
		la_ssize_t n;

		if (cap - used < (1u << 16)) {
			uint8_t *nb;

			cap = cap ? cap * 2 : (1u << 20);
			if (cap > MODULE_MAX_BYTES) {
				cl_diag_set(d, "%s decompresses to more than %u MiB", path,
				            MODULE_MAX_BYTES >> 20);
				goto out;
			}
			nb = realloc(buf, cap);
			if (!nb) {
				cl_diag_set(d, "out of memory reading %s", path);
				goto out;
			}
			buf = nb;
		}
		n = archive_read_data(a, buf + used, cap - used);
		if (n < 0) {
			cl_diag_set(d, "cannot decompress %s: %s", path, archive_error_string(a));
			goto out;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	*out = buf;
	*len = used;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	archive_read_free(a);
	return rc;
}

/* The "depends=a,b" entry of a module's .modinfo section (NUL-separated key=value strings). */
static const char *module_depends(const uint8_t *data, size_t len, size_t *vlen)
{
	static const char key[] = "depends=";
	const size_t klen = sizeof(key) - 1;

	for (size_t i = 1; i + klen <= len; i++) {
		if (data[i - 1] != '\0' || memcmp(data + i, key, klen) != 0)
			continue;
		const uint8_t *v = data + i + klen;
		const uint8_t *end = memchr(v, '\0', len - i - klen);

		if (!end)
			return NULL;
		*vlen = (size_t)(end - v);
		return (const char *)v;
	}
	return NULL;
}

static int module_place(struct module_set *s, const char *name, bool required, int depth,
                        struct cl_diag *d);

static int module_place_deps(struct module_set *s, size_t idx, int depth, struct cl_diag *d)
{
	const char *deps;
	size_t dlen = 0;
	char list[512];

	deps = module_depends(s->mods[idx].data, s->mods[idx].len, &dlen);
	if (!deps || dlen == 0)
		return 0;
	if (dlen >= sizeof(list)) {
		cl_diag_set(d, "module %s: dependency list too long", s->mods[idx].name);
		return -1;
	}
	memcpy(list, deps, dlen);
	list[dlen] = '\0';
	for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (module_place(s, tok, s->mods[idx].required, depth + 1, d) < 0) {
			cl_diag_prefix(d, "dependency of %s: ", s->mods[idx].name);
			return -1;
		}
	}
	return 0;
}

/* Depth-first: dependencies first, then the module itself. */
static int module_place(struct module_set *s, const char *raw, bool required, int depth,
                        struct cl_diag *d)
{
	char name[64], found[PATH_MAX];
	struct module *m = NULL;
	size_t idx;

	if (depth > 16) {
		cl_diag_set(d, "module dependencies nest deeper than 16 at %s", raw);
		return -1;
	}
	snprintf(name, sizeof(name), "%s", raw);
	normalise(name);
	for (idx = 0; idx < s->count; idx++) {
		if (!strcmp(s->mods[idx].name, name)) {
			m = &s->mods[idx];
			break;
		}
	}
	if (m) {
		if (required)
			m->required = true;
		if (m->state == 1) {
			cl_diag_set(d, "module dependency cycle through %s", name);
			return -1;
		}
		return 0;
	}
	if (s->count == MAX_MODULES) {
		cl_diag_set(d, "more than %d modules needed", MAX_MODULES);
		return -1;
	}
	found[0] = '\0';
	walk_want = name;
	walk_found = found;
	nftw(s->moddir, walk_cb, 16, FTW_PHYS);
	if (!found[0]) {
		cl_diag_set(d, "module %s not found under %s", name, s->moddir);
		return -1;
	}
	idx = s->count++;
	m = &s->mods[idx];
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", name);
	snprintf(m->path, sizeof(m->path), "%s", found);
	m->required = required;
	m->state = 1;
	if (read_decompressed(m->path, &m->data, &m->len, d) < 0)
		return -1;
	if (module_place_deps(s, idx, depth, d) < 0)
		return -1;
	s->mods[idx].state = 2;
	s->order[s->order_len++] = idx;
	return 0;
}

static void module_set_free(struct module_set *s)
{
	for (size_t i = 0; i < s->count; i++)
		free(s->mods[i].data);
}

/* A dynamic busybox would not run in the initramfs (no libc there): refuse it clearly. */
static bool elf_is_static(const uint8_t *b, size_t len)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)b;

	if (len < sizeof(*eh) || memcmp(b, ELFMAG, SELFMAG) != 0 || b[EI_CLASS] != ELFCLASS64)
		return false;
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > len ||
	    (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > len - eh->e_phoff)
		return false;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, b + eh->e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_INTERP)
			return false;
	}
	return true;
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static int add_entry(struct archive *a, const char *path, unsigned type, unsigned mode,
                     const void *data, size_t len, const char *link, unsigned rdev_major,
                     unsigned rdev_minor)
{
	struct archive_entry *e = archive_entry_new();
	int rc = 0;

	if (!e)
		return -1;
	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, mode);
	archive_entry_set_mtime(e, 0, 0);
	archive_entry_set_nlink(e, type == AE_IFDIR ? 2 : 1);
	if (link)
		archive_entry_set_symlink(e, link);
	if (type == AE_IFCHR) {
		archive_entry_set_rdevmajor(e, rdev_major);
		archive_entry_set_rdevminor(e, rdev_minor);
	}
	archive_entry_set_size(e, (la_int64_t)(type == AE_IFREG ? len : 0));
	if (archive_write_header(a, e) != ARCHIVE_OK)
		rc = -1;
	else if (type == AE_IFREG && len && archive_write_data(a, data, len) != (la_ssize_t)len)
		rc = -1;
	archive_entry_free(e);
	return rc;
}

static int write_initramfs(const char *out, const uint8_t *busybox, size_t busybox_len,
                           const struct module_set *s, struct cl_diag *d)
{
	static const char *const dirs[] = { "bin",     "dev", "proc", "sys",        "ctl",
		                            "newroot", "tmp", "lib",  "lib/modules" };
	struct archive *a = archive_write_new();
	char order[4096] = "";
	size_t olen = 0;
	int rc = -1;

	if (!a) {
		cl_diag_set(d, "out of memory");
		return -1;
	}
	if (archive_write_set_format_cpio_newc(a) != ARCHIVE_OK ||
	    archive_write_open_filename(a, out) != ARCHIVE_OK) {
		cl_diag_set(d, "cannot write %s: %s", out, archive_error_string(a));
		goto out;
	}
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (add_entry(a, dirs[i], AE_IFDIR, 0755, NULL, 0, NULL, 0, 0) < 0)
			goto fail;
	/* The kernel opens /dev/console for init before devtmpfs is mounted. */
	if (add_entry(a, "dev/console", AE_IFCHR, 0600, NULL, 0, NULL, 5, 1) < 0 ||
	    add_entry(a, "bin/busybox", AE_IFREG, 0755, busybox, busybox_len, NULL, 0, 0) < 0 ||
	    add_entry(a, "bin/sh", AE_IFLNK, 0777, NULL, 0, "busybox", 0, 0) < 0 ||
	    add_entry(a, "init", AE_IFREG, 0755, init_script, sizeof(init_script) - 1, NULL, 0, 0) <
	            0)
		goto fail;
	for (size_t i = 0; i < s->order_len; i++) {
		const struct module *m = &s->mods[s->order[i]];
		char path[128];
		int n;

		snprintf(path, sizeof(path), "lib/modules/%s.ko", m->name);
		if (add_entry(a, path, AE_IFREG, 0644, m->data, m->len, NULL, 0, 0) < 0)
			goto fail;
		n = snprintf(order + olen, sizeof(order) - olen, "%s %s\n", m->name,
		             m->required ? "required" : "optional");
		if (n < 0 || (size_t)n >= sizeof(order) - olen) {
			cl_diag_set(d, "module order list too long");
			goto out;
		}
		olen += (size_t)n;
	}
	if (add_entry(a, "lib/modules/order", AE_IFREG, 0644, order, olen, NULL, 0, 0) < 0)
		goto fail;
	if (archive_write_close(a) != ARCHIVE_OK)
		goto fail;
	rc = 0;
	goto out;
fail:
	cl_diag_set(d, "cannot write %s: %s", out, archive_error_string(a));
out:
	archive_write_free(a);
	return rc;
}

static const char *cache_root(char *buf, size_t cap)
{
	const char *env = getenv("CLOISTER_CACHE");
	const char *home = getenv("HOME");

	if (env && *env)
		snprintf(buf, cap, "%s", env);
	else
		snprintf(buf, cap, "%s/.cache/cloister", home && *home ? home : "/root");
	return buf;
}

int parent_initramfs_get(const struct parent_kernel *k, char *path, size_t cap, struct cl_diag *d)
{
	static const char *const busybox_paths[] = { "/bin/busybox", "/usr/bin/busybox" };
	struct module_set *s = NULL;
	uint8_t *busybox = NULL;
	size_t busybox_len = 0;
	char root[PATH_MAX], dir[PATH_MAX], moddir[PATH_MAX], tmp[PATH_MAX + 16];
	uint64_t h = 0xcbf29ce484222325ull;
	struct stat st;
	int rc = -1;

	for (size_t i = 0; i < 2 && !busybox; i++) {
		struct cl_diag ignored;

		if (cl_file_read_all(busybox_paths[i], 16u << 20, &busybox, &busybox_len,
		                     &ignored) < 0)
			busybox = NULL;
	}
	if (!busybox) {
		cl_diag_set(d, "busybox not found in /bin or /usr/bin; run scripts/setup.sh "
		               "(it installs busybox-static)");
		return -1;
	}
	if (!elf_is_static(busybox, busybox_len)) {
		cl_diag_set(d, "busybox is not statically linked (the initramfs has no libc); "
		               "install busybox-static (scripts/setup.sh does)");
		goto out;
	}

	h = fnv1a(h, init_script, sizeof(init_script));
	for (size_t i = 0; i < sizeof(wanted_modules) / sizeof(wanted_modules[0]); i++)
		h = fnv1a(h, wanted_modules[i].name, strlen(wanted_modules[i].name) + 1);
	h = fnv1a(h, busybox, busybox_len);
	if ((size_t)snprintf(dir, sizeof(dir), "%s/parent-instance/%s-%016llx",
	                     cache_root(root, sizeof(root)), k->release,
	                     (unsigned long long)h) >= sizeof(dir)) {
		cl_diag_set(d, "cache directory path too long under %s", root);
		goto out;
	}
	if ((size_t)snprintf(path, cap, "%s/initramfs.cpio", dir) >= cap) {
		cl_diag_set(d, "cache path too long: %s", dir);
		goto out;
	}
	if (stat(path, &st) == 0 && st.st_size > 0) {
		rc = 0; /* built before with the same inputs */
		goto out;
	}

	s = calloc(1, sizeof(*s));
	if (!s) {
		cl_diag_set(d, "out of memory");
		goto out;
	}
	if ((size_t)snprintf(moddir, sizeof(moddir), "%s/lib/modules/%s/kernel", k->dir,
	                     k->release) >= sizeof(moddir)) {
		cl_diag_set(d, "module directory path too long under %s", k->dir);
		goto out;
	}
	s->moddir = moddir;
	for (size_t i = 0; i < sizeof(wanted_modules) / sizeof(wanted_modules[0]); i++)
		if (module_place(s, wanted_modules[i].name, wanted_modules[i].required, 0, d) < 0)
			goto out;
	if (cl_mkdir_p(dir, d) < 0)
		goto out;
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
	if (write_initramfs(tmp, busybox, busybox_len, s, d) < 0) {
		unlink(tmp);
		goto out;
	}
	if (rename(tmp, path) < 0) {
		cl_diag_set(d, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	if (s)
		module_set_free(s);
	free(s);
	free(busybox);
	return rc;
}

/* Candidates for scripts/fetch-kernel.sh, most specific first. */
static int find_fetch_script(char *out, size_t cap)
{
	const char *env = getenv("CLOISTER_FETCH_KERNEL");
	char exe[PATH_MAX];
	ssize_t n;

	if (env && *env) {
		snprintf(out, cap, "%s", env);
		return access(out, R_OK) == 0 ? 0 : -1;
	}
	/* A build tree: <top>/<builddir>/src/cli/cloister → <top>/scripts/fetch-kernel.sh. */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		snprintf(out, cap, "%s/../../../scripts/fetch-kernel.sh", dirname(exe));
		if (access(out, R_OK) == 0)
			return 0;
	}
	return -1;
}

static int run_fetch_script(const char *script, char *dir, size_t cap, struct cl_diag *d)
{
	char buf[8192];
	size_t used = 0;
	int p[2], status;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0) {
		cl_diag_set(d, "pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		cl_diag_set(d, "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(p[1], STDOUT_FILENO);
		execlp("bash", "bash", script, "parent", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		ssize_t n = read(p[0], buf + used, sizeof(buf) - 1 - used);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		used += (size_t)n;
		if (used == sizeof(buf) - 1)
			break;
	}
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	buf[used] = '\0';
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		cl_diag_set(d, "%s parent failed (status %d); run it by hand to see why", script,
		            WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		return -1;
	}
	while (used && (buf[used - 1] == '\n' || buf[used - 1] == '\r'))
		buf[--used] = '\0';
	{
		char *last = strrchr(buf, '\n');

		if ((size_t)snprintf(dir, cap, "%s", last ? last + 1 : buf) >= cap) {
			cl_diag_set(d, "%s printed a path that is too long", script);
			return -1;
		}
	}
	return 0;
}

int parent_kernel_locate(const char *dir, struct parent_kernel *k, struct cl_diag *d)
{
	char script[PATH_MAX], pattern[PATH_MAX + 32], mods[PATH_MAX + 300];
	const char *env = getenv("CLOISTER_PARENT_KERNEL_DIR");
	struct stat st;
	glob_t g;
	const char *base;

	memset(k, 0, sizeof(*k));
	if (!dir && env && *env)
		dir = env;
	if (dir) {
		snprintf(k->dir, sizeof(k->dir), "%s", dir);
	} else {
		if (find_fetch_script(script, sizeof(script)) < 0) {
			cl_diag_set(d,
			            "cannot find scripts/fetch-kernel.sh next to this executable's "
			            "source tree; set CLOISTER_FETCH_KERNEL=/path/to/"
			            "scripts/fetch-kernel.sh or pass --kernel-dir DIR");
			return -1;
		}
		if (run_fetch_script(script, k->dir, sizeof(k->dir), d) < 0)
			return -1;
	}
	snprintf(pattern, sizeof(pattern), "%s/boot/vmlinuz-*", k->dir);
	if (glob(pattern, 0, NULL, &g) != 0 || g.gl_pathc == 0) {
		cl_diag_set(d, "no kernel at %s; run scripts/fetch-kernel.sh parent", pattern);
		globfree(&g);
		return -1;
	}
	snprintf(k->vmlinuz, sizeof(k->vmlinuz), "%s", g.gl_pathv[g.gl_pathc - 1]);
	globfree(&g);
	base = strrchr(k->vmlinuz, '/');
	snprintf(k->release, sizeof(k->release), "%s", base + 1 + strlen("vmlinuz-"));
	snprintf(mods, sizeof(mods), "%s/lib/modules/%s/kernel", k->dir, k->release);
	if (stat(mods, &st) < 0 || !S_ISDIR(st.st_mode)) {
		cl_diag_set(d, "kernel %s has no modules at %s; run scripts/fetch-kernel.sh parent",
		            k->vmlinuz, mods);
		return -1;
	}
	return 0;
}
