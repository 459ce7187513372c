/*
 * logsink: where a daemon's log lines go (node.log): stderr as they always
 * did, syslog, or a file that SIGHUP reopens (logrotate moves it away, then
 * signals).  The library itself never calls these: a host of libkvnode
 * chooses with kvn_set_log.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "base.h"

static char *sink_file; /* node.log when it is a file; main thread only */

static void syslog_sink(int level, const char *line)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	/* syslog stamps its own time: drop ours ("2026-...Z ") */
	const char *sp = strchr(line, ' ');
	syslog(prio[level < 0 ? 0 : level > 3 ? 3 : level], "%s", sp ? sp + 1 : line);
}

/* Open path for appending and make it this process's stderr: the log's
 * lines and anything else written to stderr go there.  dup2 swaps the
 * descriptor in one step, so a line written meanwhile goes whole to the old
 * file or the new one. */
static int open_onto_stderr(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (fd < 0) {
		snprintf(err, errlen, "node.log = '%s': cannot open: %s", path, strerror(errno));
		return KVN_EIO;
	}
	if (dup2(fd, STDERR_FILENO) < 0) {
		snprintf(err, errlen, "node.log = '%s': cannot use it as stderr: %s", path, strerror(errno));
		close(fd);
		return KVN_EIO;
	}
	close(fd);
	return 0;
}

int kvn_log_sink_open(const char *spec, char *err, size_t errlen)
{
	int level = __atomic_load_n(&kvn_log_level_cur, __ATOMIC_RELAXED);

	if (!spec || !*spec) {
		snprintf(err, errlen, "node.log: must not be empty (stderr, syslog or a file)");
		return KVN_ECONFIG;
	}
	if (strcmp(spec, "stderr") == 0)
		return 0;
	if (strcmp(spec, "syslog") == 0) {
		openlog("kvnode", LOG_PID | LOG_NDELAY, LOG_DAEMON);
		return kvn_set_log(level, syslog_sink);
	}
	int rc = open_onto_stderr(spec, err, errlen);
	if (rc)
		return rc;
	free(sink_file);
	sink_file = kvn_xstrdup(spec);
	return 0;
}

int kvn_log_sink_reopen(char *err, size_t errlen)
{
	if (!sink_file)
		return 1;
	return open_onto_stderr(sink_file, err, errlen);
}
