/*
 * disk_io: the system calls the disk tier makes on its data files and
 * directories, in one place so tests can make any of them fail
 * (disk_fault_set): the next `skip` calls of an op succeed, then `count`
 * fail with the given errno.  Owns the EINTR and short-transfer loops.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/base.h"
#include "store/disk_int.h"

/* The errno to fail this call with, or 0. */
static int fault(struct disk_io *io, enum disk_op op)
{
	struct disk_fault *f = &io->f[op];
	if (f->count == 0)
		return 0;
	if (f->skip > 0) {
		f->skip--;
		return 0;
	}
	f->count--;
	return f->err ? f->err : EIO;
}

void disk_fault_set(struct disk_tier *d, enum disk_op op, uint32_t skip, uint32_t count, int err)
{
	KVN_ASSERT(d && op >= 0 && op < DISK_OP_MAX);
	d->io.f[op] = (struct disk_fault){ .skip = skip, .count = count, .err = err };
}

int disk_io_open(struct disk_io *io, const char *path, int flags, mode_t mode)
{
	int e = fault(io, DISK_OP_OPEN), fd;
	if (e)
		return -e;
	do
		fd = open(path, flags | O_CLOEXEC, mode);
	while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : fd;
}

int disk_io_writev(struct disk_io *io, int fd, const struct iovec *iov, int niov)
{
	struct iovec v[64];
	int i = 0;

	/* Copy a window of the caller's iov so a short write can be resumed
	 * by advancing our copy. */
	while (i < niov) {
		int n = 0;
		for (; n < (int)(sizeof v / sizeof v[0]) && i + n < niov; n++)
			v[n] = iov[i + n];
		i += n;
		struct iovec *p = v;
		while (n > 0) {
			if (p->iov_len == 0) {
				p++, n--;
				continue;
			}
			int e = fault(io, DISK_OP_WRITE);
			if (e)
				return -e;
			ssize_t w = writev(fd, p, n > IOV_MAX ? IOV_MAX : n);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			if (w == 0)
				return -EIO; /* a regular file never accepts 0 of >0 bytes */
			while (n > 0 && (size_t)w >= p->iov_len) {
				w -= (ssize_t)p->iov_len;
				p++, n--;
			}
			if (n > 0 && w > 0) {
				p->iov_base = (char *)p->iov_base + w;
				p->iov_len -= (size_t)w;
			}
		}
	}
	return 0;
}

int disk_io_fsync(struct disk_io *io, int fd)
{
	int e = fault(io, DISK_OP_FSYNC);
	if (e)
		return -e;
	/* No retry on EINTR or anything else: after a failed fsync the kernel
	 * may have dropped the dirty pages, so a second fsync can succeed
	 * without them ever reaching the disk (PostgreSQL's fsyncgate). */
	return fsync(fd) < 0 ? -errno : 0;
}

int disk_io_rename(struct disk_io *io, const char *from, const char *to)
{
	int e = fault(io, DISK_OP_RENAME);
	if (e)
		return -e;
	return rename(from, to) < 0 ? -errno : 0;
}

int disk_io_dirsync(struct disk_io *io, const char *dir)
{
	int e = fault(io, DISK_OP_DIRSYNC), fd, rc = 0;
	if (e)
		return -e;
	do
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

ssize_t disk_io_pread(struct disk_io *io, int fd, void *buf, size_t len, uint64_t off)
{
	size_t got = 0;
	while (got < len) {
		int e = fault(io, DISK_OP_READ);
		if (e)
			return -e;
		ssize_t r = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}
