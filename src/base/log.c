/*
 * log: leveled log lines, one write(2) per line so lines from different
 * threads never interleave.  Where they go is the host's choice
 * (kvn_set_log in kvnode.h): nowhere (the default: a library writes nothing
 * its host did not ask for), stderr, or the host's callback.  Format:
 *   2026-11-26T00:16:03.123Z INFO  [peer] message (file.c:42 at debug level)
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base.h"

/* The threshold the log macros read without a call: KVN_LOG_OFF (-1) lets
 * no level through. */
int kvn_log_level_cur = KVN_LOG_OFF;
/* NULL: stderr.  Read once per line, so a line goes whole to one sink. */
static kvn_log_fn log_sink;
static __thread char log_thread_name[16] = "main";

int kvn_set_log(int level, kvn_log_fn fn)
{
	if (level < KVN_LOG_OFF || level > KVN_LOG_DEBUG)
		return KVN_EINVAL;
	/* the sink first: a line let through by the new level goes to the new
	 * sink, never to stderr on its way from off to a callback */
	__atomic_store_n(&log_sink, fn, __ATOMIC_RELEASE);
	__atomic_store_n(&kvn_log_level_cur, level, __ATOMIC_RELEASE);
	return 0;
}

void kvn_log_set_level(int level)
{
	if (level < KVN_LOG_ERROR)
		level = KVN_LOG_ERROR;
	if (level > KVN_LOG_DEBUG)
		level = KVN_LOG_DEBUG;
	__atomic_store_n(&kvn_log_level_cur, level, __ATOMIC_RELAXED);
}

void kvn_log_set_thread_name(const char *name)
{
	snprintf(log_thread_name, sizeof log_thread_name, "%s", name);
}

static const char *const level_names[] = { "ERROR", "WARN ", "INFO ", "DEBUG" };

static void log_vwrite(int level, const char *file, int line, const char *fmt, va_list ap)
{
	char buf[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int m;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
	m = snprintf(buf + n, sizeof buf - n, ".%03ldZ %s [%s] ", ts.tv_nsec / 1000000L,
		     level_names[level], log_thread_name);
	if (m > 0)
		n += (size_t)m;
	m = vsnprintf(buf + n, sizeof buf - n, fmt, ap);
	if (m > 0)
		n += (size_t)m < sizeof buf - n ? (size_t)m : sizeof buf - n - 1;
	if (__atomic_load_n(&kvn_log_level_cur, __ATOMIC_RELAXED) >= KVN_LOG_DEBUG && file &&
	    n < sizeof buf - 1) {
		m = snprintf(buf + n, sizeof buf - n, " (%s:%d)", file, line);
		if (m > 0)
			n += (size_t)m < sizeof buf - n ? (size_t)m : sizeof buf - n - 1;
	}
	if (n >= sizeof buf - 1)
		n = sizeof buf - 2;
	kvn_log_fn fn = __atomic_load_n(&log_sink, __ATOMIC_ACQUIRE);
	if (fn) {
		buf[n] = '\0';
		fn(level, buf);
		return;
	}
	buf[n++] = '\n';
	/* best effort: a log line that cannot be written is not worth dying for */
	ssize_t w = write(STDERR_FILENO, buf, n);
	(void)w;
}

void kvn_log_write(int level, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	/* the macro's test raced with kvn_set_log(KVN_LOG_OFF, ...): the host
	 * has said no more lines */
	if (level > __atomic_load_n(&kvn_log_level_cur, __ATOMIC_ACQUIRE))
		return;
	va_start(ap, fmt);
	log_vwrite(level, file, line, fmt, ap);
	va_end(ap);
}

void kvn_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(KVN_LOG_ERROR, NULL, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
