/*
 * datadir: one process per node.data_dir.  The process that opens anything
 * there (a master, a peer with a disk tier, or both in one) first takes an
 * exclusive flock on {data_dir}/LOCK and holds it until it exits, when the
 * kernel drops it (also after kill -9).  A second one would otherwise bump
 * the running master's epoch in master.db, or share peer.db and the disk
 * tier, before failing on a port.  Also node.pid_file.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base.h"

/* The pid written in path, or 0. */
static long read_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	char *end;
	long pid = strtol(buf, &end, 10);
	return pid > 0 && (*end == '\n' || *end == '\0') ? pid : 0;
}

static int write_pid(int fd)
{
	char pid[32];
	int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	return ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)len, 0) == len ? 0 : -1;
}

int kvn_datadir_lock(const char *dir, char *err, size_t errlen)
{
	int fd;
	return kvn_datadir_lock_fd(dir, &fd, err, errlen); /* fd stays open: held until exit */
}

int kvn_datadir_lock_fd(const char *dir, int *fdp, char *err, size_t errlen)
{
	char path[4096];
	int fd;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "node.data_dir = '%s': cannot create: %s", dir, strerror(errno));
		return KVN_EIO;
	}
	snprintf(path, sizeof path, "%s/LOCK", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "node.data_dir = '%s': cannot open %s: %s", dir, path, strerror(errno));
		return KVN_EIO;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		long pid = read_pid(fd);
		char who[40] = "";
		if (pid)
			snprintf(who, sizeof who, " (pid %ld)", pid);
		if (e == EWOULDBLOCK)
			snprintf(err, errlen,
				 "node.data_dir = '%s' is in use by another kvnode process%s, which holds %s: "
				 "stop it first, or give this one another data_dir; nothing was changed",
				 dir, who, path);
		else
			snprintf(err, errlen, "node.data_dir = '%s': cannot lock %s: %s", dir, path, strerror(e));
		close(fd);
		return KVN_EBUSY;
	}
	/* for the message above; the lock, not the pid, decides */
	if (write_pid(fd) != 0)
		log_warn("%s: cannot write this process's pid into it (the lock holds anyway)", path);
	*fdp = fd; /* the lock lives as long as fd is open */
	return 0;
}

int kvn_pidfile_write(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "node.pid_file = '%s': cannot open: %s", path, strerror(errno));
		return KVN_EIO;
	}
	long pid = read_pid(fd);
	/* one left by a process that died is replaced; one of a live process
	 * (another data_dir's node given the same file) is not */
	if (pid && pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno == EPERM)) {
		snprintf(err, errlen, "node.pid_file = '%s' names a running process (pid %ld): give "
			 "each node its own pid file", path, pid);
		close(fd);
		return KVN_EBUSY;
	}
	int rc = write_pid(fd);
	if (rc)
		snprintf(err, errlen, "node.pid_file = '%s': cannot write: %s", path, strerror(errno));
	close(fd);
	return rc ? KVN_EIO : 0;
}

void kvn_pidfile_remove(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	/* only our own: a later process may have taken the file over */
	if (read_pid(fd) == (long)getpid())
		unlink(path);
	close(fd);
}
