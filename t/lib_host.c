/*
 * t/lib_host.c: a host program of the installed client library, written
 * from include/kvnode.h alone (no internal header, no test helper): t/install.sh
 * builds it against the installed tree with pkg-config, shared and static.
 * It leaves SIGPIPE at its default disposition, as a host may.
 *
 *   lib_host putget CONF          put a 1 MiB value, get it back, compare
 *   lib_host sigpipe CONF PID MS  put 64 MiB and SIGKILL the node PID MS ms
 *                                 after the put started: exit 0 when the
 *                                 put failed (the program survived), 3 when
 *                                 it succeeded before the kill (missed)
 *   lib_host log CONF ADDR PHASE  connect to ADDR (nobody listens there):
 *                                 PHASE default (log untouched), callback,
 *                                 stderr or off; says on stdout what the
 *                                 callback got
 * Exit 0 on success; anything else is a failure that stdout explains.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include <kvnode.h>

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
}

static int connect_conf(const char *conf, const char *master, struct kvn_client **c)
{
	struct kvn_options o = { .config_path = conf, .master = master };
	int rc = kvn_connect(&o, c);
	if (rc != 0)
		printf("kvn_connect: %s (%s)\n", kvn_strerror(rc), kvn_last_detail(NULL));
	return rc;
}

static int putget(const char *conf)
{
	struct kvn_client *c;
	size_t n = 1 << 20, got = 0;
	unsigned char *v = malloc(n), *g = malloc(n);
	int rc;

	if (!v || !g || connect_conf(conf, NULL, &c) != 0)
		return 1;
	srand((unsigned)time(NULL));
	for (size_t i = 0; i < n; i++)
		v[i] = (unsigned char)rand();
	rc = kvn_put(c, "lib-host", 8, v, n, 0);
	if (rc == 0)
		rc = kvn_get(c, "lib-host", 8, g, n, &got);
	int same = rc == 0 && got == n && memcmp(v, g, n) == 0;
	if (rc != 0)
		printf("put/get: %s\n", kvn_strerror(rc));
	else if (!same)
		printf("get: %zu bytes, not the %zu put\n", got, n);
	else
		printf("put and get of %zu bytes: same bytes\n", n);
	kvn_close(c);
	free(v);
	free(g);
	return same ? 0 : 1;
}

struct killer {
	pid_t pid;
	long ms;
};

static void *kill_later(void *arg)
{
	struct killer *k = arg;
	sleep_ms(k->ms);
	kill(k->pid, SIGKILL);
	return NULL;
}

static int sigpipe(const char *conf, pid_t pid, long ms)
{
	struct kvn_client *c;
	struct killer k = { pid, ms };
	size_t n = 64u << 20;
	unsigned char *v = malloc(n);
	struct sigaction sa;
	pthread_t t;
	int rc;

	/* the point of the test: nobody ignores SIGPIPE here */
	sigaction(SIGPIPE, NULL, &sa);
	if (sa.sa_handler != SIG_DFL) {
		printf("SIGPIPE is not at its default disposition\n");
		return 1;
	}
	if (!v || connect_conf(conf, NULL, &c) != 0)
		return 1;
	memset(v, 0x5a, n);
	if (pthread_create(&t, NULL, kill_later, &k) != 0)
		return 1;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = kvn_put(c, "big", 3, v, n, 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pthread_join(t, NULL);
	long took = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	printf("put of %zu bytes with the node killed after %ld ms: %s after %ld ms\n", n, ms,
	       rc ? kvn_strerror(rc) : "succeeded first", took);
	if (rc == 0)
		printf("took %ld\n", took);
	/* the library must still answer, with an error, after the node died */
	int rc2 = kvn_put(c, "small", 5, "x", 1, 0);
	printf("a put after the node died: %s\n", rc2 ? kvn_strerror(rc2) : "succeeded");
	kvn_close(c);
	free(v);
	if (rc2 == 0)
		return 1;
	return rc == 0 ? 3 : 0;
}

static int cb_lines;
static char cb_first[512];

static void cb(int level, const char *line)
{
	if (cb_lines++ == 0)
		snprintf(cb_first, sizeof cb_first, "%d %s", level, line);
}

static int log_phase(const char *conf, const char *addr, const char *phase)
{
	struct kvn_client *c = NULL;
	int rc;

	if (kvn_set_log(KVN_LOG_DEBUG + 1, NULL) != KVN_EINVAL || kvn_set_log(-2, cb) != KVN_EINVAL) {
		printf("kvn_set_log takes a level out of range\n");
		return 1;
	}
	if (strcmp(phase, "callback") == 0)
		rc = kvn_set_log(KVN_LOG_DEBUG, cb);
	else if (strcmp(phase, "stderr") == 0)
		rc = kvn_set_log(KVN_LOG_DEBUG, NULL);
	else if (strcmp(phase, "off") == 0)
		rc = kvn_set_log(KVN_LOG_DEBUG, NULL) || kvn_set_log(KVN_LOG_OFF, cb) ||
		     kvn_set_log(KVN_LOG_OFF, NULL);
	else
		rc = 0;
	if (rc != 0) {
		printf("kvn_set_log: %d\n", rc);
		return 1;
	}
	rc = connect_conf(conf, addr, &c);
	kvn_close(c);
	printf("callback lines: %d\n", cb_lines);
	if (cb_lines)
		printf("first: %s\n", cb_first);
	return rc == KVN_ECONN || rc == KVN_ETIMEDOUT ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "putget") == 0)
		return putget(argv[2]);
	if (argc == 5 && strcmp(argv[1], "sigpipe") == 0)
		return sigpipe(argv[2], (pid_t)atol(argv[3]), atol(argv[4]));
	if (argc == 5 && strcmp(argv[1], "log") == 0)
		return log_phase(argv[2], argv[3], argv[4]);
	fprintf(stderr, "usage: lib_host putget CONF | sigpipe CONF PID MS | log CONF ADDR PHASE\n");
	return 2;
}
