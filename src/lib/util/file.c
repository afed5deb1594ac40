/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util/file.h"

long long cl_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (long long)done;
}

int cl_write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	return 0;
}

int cl_file_read_all(const char *path, size_t max, uint8_t **out, size_t *len, struct cl_diag *d)
{
	struct stat st;
	uint8_t *buf = NULL;
	long long n;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		cl_diag_set(d, "cannot open '%s': %s", path, strerror(errno));
		return err;
	}
	if (fstat(fd, &st) < 0) {
		err = -errno;
		cl_diag_set(d, "cannot stat '%s': %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -EINVAL;
		cl_diag_set(d, "'%s' is not a regular file", path);
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		err = -EFBIG;
		cl_diag_set(d, "'%s' is %lld bytes, more than the %zu this input may have", path,
		            (long long)st.st_size, max);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		err = -ENOMEM;
		cl_diag_set(d, "out of memory reading '%s'", path);
		goto out;
	}
	n = cl_pread_full(fd, buf, (size_t)st.st_size, 0);
	if (n < 0) {
		err = (int)n;
		cl_diag_set(d, "cannot read '%s': %s", path, strerror((int)-n));
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	*len = (size_t)n;
	buf = NULL;
	err = 0;
out:
	free(buf);
	close(fd);
	return err;
}

int cl_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode,
                         struct cl_diag *d)
{
	char tmp[4096];
	int fd, err;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
		cl_diag_set(d, "path '%s' is too long", path);
		return -ENAMETOOLONG;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		err = -errno;
		cl_diag_set(d, "cannot create '%s': %s", tmp, strerror(errno));
		return err;
	}
	err = cl_write_full(fd, data, len);
	if (!err && fsync(fd) < 0)
		err = -errno;
	if (close(fd) < 0 && !err)
		err = -errno;
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err) {
		cl_diag_set(d, "cannot write '%s': %s", path, strerror(-err));
		unlink(tmp);
	}
	return err;
}

int cl_mkdir_p(const char *path, struct cl_diag *d)
{
	char tmp[PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(tmp)) {
		cl_diag_set(d, "directory path '%s' is empty or too long", path);
		return -ENAMETOOLONG;
	}
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1;; p++) {
		char c = *p;

		if (c != '/' && c != '\0')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST) {
			int err = -errno;

			cl_diag_set(d, "cannot create directory '%s': %s", tmp, strerror(errno));
			return err;
		}
		*p = c;
		if (!c)
			return 0;
	}
}
