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
 *   lib_host cut CONF PORT PEER_PORT
 *                                 proxy PORT (the peer's advertised
 *                                 address) to PEER_PORT and close it on a
 *                                 272 MiB put under way (below): exit 0 when
 *                                 the put failed (the program survived), 3
 *                                 when the proxy cut nothing (missed)
 *   lib_host log CONF ADDR PHASE  connect to ADDR (nobody listens there):
 *                                 PHASE default (log untouched), callback,
 *                                 stderr or off; says on stdout what the
 *                                 callback got
 * Exit 0 on success; anything else is a failure that stdout explains.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

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

/* ---- cut: a proxy that closes on the writer ------------------------------
 *
 * The node's peer advertises the proxy's port, so the client's peer
 * connection runs through here (its master connection does not).  Bytes go
 * both ways until the client has sent CUT_AT bytes on one connection (a put
 * is under way); then the proxy stops forwarding, reads and drops up to
 * DROP_MAX more (the client's window stays open, its writer busy), sends
 * its FIN (shutdown) and closes.  The client's socket is then in CLOSE_WAIT
 * and the proxy's kernel answers its unread bytes at the close, or its next
 * ones, with an RST: Linux records that as EPIPE (tcp_reset in CLOSE_WAIT),
 * so the next sendmsg fails with EPIPE and, without MSG_NOSIGNAL, raises
 * SIGPIPE.  Had the library read the FIN before writing again, it would
 * have closed without a write and the run would prove nothing (it passes
 * either way): with a 64 MiB value that happened in about one run of ten.
 * So the value is larger than the library's output queue limit (max_outq,
 * 256 MiB, src/net/tcp.c), above which a connection stops reading until
 * the queue drains: the FIN stays unread and the next thing the library
 * does on that socket is a write.  calloc: untouched zero pages, so the
 * value costs no memory.
 *
 * A node SIGKILLed mid-write does not test this: its kernel resets a socket
 * with unread bytes at once, no FIN, and the writer sees ECONNRESET, which
 * raises no signal.  The listener closes with the cut, so the client's
 * retries are refused rather than cut again. */
#define CUT_AT (4u << 20)
#define DROP_MAX (1u << 20)
#define NPAIR 4

struct proxy {
	int lfd;
	int peer_port;
	int cfd[NPAIR], nfd[NPAIR];
	size_t up[NPAIR];
	int done;          /* set by the host: the put returned */
	int cut;           /* 1 once a connection was cut */
	size_t cut_up;     /* bytes forwarded on it before the cut */
	size_t dropped;    /* bytes read and dropped at the cut */
};

static int listen_on(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 8) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int dial(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void pair_close(struct proxy *p, int i)
{
	close(p->cfd[i]);
	close(p->nfd[i]);
	p->cfd[i] = p->nfd[i] = -1;
}

/* Copy what from has to to (blocking write): 0, or -1 when either end is done. */
static int pump(int from, int to, size_t *count)
{
	static char buf[1 << 16];
	ssize_t n = read(from, buf, sizeof buf);
	if (n <= 0)
		return -1;
	for (ssize_t off = 0; off < n;) {
		ssize_t w = write(to, buf + off, (size_t)(n - off));
		if (w <= 0)
			return -1;
		off += w;
	}
	if (count)
		*count += (size_t)n;
	return 0;
}

static void cut(struct proxy *p, int i)
{
	static char buf[1 << 16];
	int fd = p->cfd[i];

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	/* bounded: a reader as fast as the writer would otherwise take the
	 * whole value, and the cut would come after the last write */
	for (ssize_t n; p->dropped < DROP_MAX && (n = read(fd, buf, sizeof buf)) > 0;)
		p->dropped += (size_t)n;
	/* the FIN first: whatever the client sends from now on is answered
	 * with an RST that finds its socket in CLOSE_WAIT */
	shutdown(fd, SHUT_WR);
	p->cut = 1;
	p->cut_up = p->up[i];
	pair_close(p, i);
	close(p->lfd);
	p->lfd = -1;
	printf("the proxy cut the put after %zu bytes (%zu of them dropped)\n", p->cut_up + p->dropped,
	       p->dropped);
}

static void *proxy_run(void *arg)
{
	struct proxy *p = arg;
	for (;;) {
		struct pollfd pf[1 + 2 * NPAIR];
		int n = 0;
		/* the put returns within the client's timeouts, cut or not */
		if (__atomic_load_n(&p->done, __ATOMIC_ACQUIRE))
			break;
		if (p->lfd >= 0)
			pf[n++] = (struct pollfd){ .fd = p->lfd, .events = POLLIN };
		for (int i = 0; i < NPAIR; i++) {
			pf[n++] = (struct pollfd){ .fd = p->cfd[i], .events = POLLIN };
			pf[n++] = (struct pollfd){ .fd = p->nfd[i], .events = POLLIN };
		}
		if (poll(pf, (nfds_t)n, 100) < 0)
			continue;
		int k = 0;
		if (p->lfd >= 0 && (pf[k++].revents & POLLIN)) {
			int c = accept(p->lfd, NULL, NULL);
			int i = 0;
			while (i < NPAIR && p->cfd[i] >= 0)
				i++;
			int nf = c >= 0 && i < NPAIR ? dial(p->peer_port) : -1;
			if (nf < 0) {
				if (c >= 0)
					close(c);
			} else {
				/* the pump's writes block: bounded, so the proxy always ends */
				struct timeval tv = { 5, 0 };
				setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
				setsockopt(nf, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
				p->cfd[i] = c;
				p->nfd[i] = nf;
				p->up[i] = 0;
			}
		}
		for (int i = 0; i < NPAIR; i++, k += 2) {
			if (p->cfd[i] < 0 || pf[k].fd != p->cfd[i])
				continue;
			if ((pf[k + 1].revents & (POLLIN | POLLHUP | POLLERR)) &&
			    pump(p->nfd[i], p->cfd[i], NULL) != 0) {
				pair_close(p, i);
				continue;
			}
			if (!(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (pump(p->cfd[i], p->nfd[i], &p->up[i]) != 0)
				pair_close(p, i);
			else if (!p->cut && p->up[i] >= CUT_AT)
				cut(p, i);
		}
	}
	for (int i = 0; i < NPAIR; i++)
		if (p->cfd[i] >= 0)
			pair_close(p, i);
	if (p->lfd >= 0)
		close(p->lfd);
	return NULL;
}

static int cutoff(const char *conf, int port, int peer_port)
{
	struct proxy p = { .peer_port = peer_port };
	struct kvn_client *c;
	size_t n = 272u << 20; /* > max_outq: see above */
	unsigned char *v = calloc(1, n);
	struct sigaction sa;
	pthread_t t;

	sigaction(SIGPIPE, NULL, &sa);
	if (sa.sa_handler != SIG_DFL) {
		printf("SIGPIPE is not at its default disposition\n");
		return 1;
	}
	for (int i = 0; i < NPAIR; i++)
		p.cfd[i] = p.nfd[i] = -1;
	p.lfd = listen_on(port);
	if (!v || p.lfd < 0 || pthread_create(&t, NULL, proxy_run, &p) != 0) {
		printf("proxy: cannot listen on %d\n", port);
		return 1;
	}
	int rc = connect_conf(conf, NULL, &c);
	if (rc == 0) {
		rc = kvn_put(c, "big", 3, v, n, 0);
		printf("put of %zu bytes: %s\n", n, rc ? kvn_strerror(rc) : "succeeded");
		kvn_close(c);
	}
	__atomic_store_n(&p.done, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	free(v);
	if (!p.cut) {
		printf("the proxy cut nothing\n");
		return 3;
	}
	/* the library had the whole value out: it may have been reading, not
	 * writing, when the FIN came */
	if (p.cut_up + p.dropped + (1u << 20) >= n)
		return 3;
	return rc < 0 ? 0 : 1;
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
	/* line by line: a run that dies of a signal still shows how far it got */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && strcmp(argv[1], "putget") == 0)
		return putget(argv[2]);
	if (argc == 5 && strcmp(argv[1], "sigpipe") == 0)
		return sigpipe(argv[2], (pid_t)atol(argv[3]), atol(argv[4]));
	if (argc == 5 && strcmp(argv[1], "cut") == 0)
		return cutoff(argv[2], atoi(argv[3]), atoi(argv[4]));
	if (argc == 5 && strcmp(argv[1], "log") == 0)
		return log_phase(argv[2], argv[3], argv[4]);
	fprintf(stderr, "usage: lib_host putget CONF | sigpipe CONF PID MS | cut CONF PORT PEER_PORT\n"
			"       | log CONF ADDR PHASE\n");
	return 2;
}
