/* t/preauth: connections that never authenticate cannot lock anyone out
 * (issue 11 item 18), nor write what they like into the log (item 19: a
 * forged node_id is logged quoted and escaped, 1000 bad handshakes are a
 * few lines).  A master process and a peer process on loopback
 * with small limits (max_connections 40, max_preauth 12, max_preauth_per_ip
 * 8, handshake_timeout 4s); the test holds far more idle sockets than that
 * open against both listeners, from 127.0.0.1 and from 127.0.0.2, and
 * then, while those sockets are still open: a new client connects, pings,
 * puts and gets; the peer is killed and started again and re-attaches.
 * No more idle sockets than the pre-auth pool (per address too) stay open,
 * and every one of them is closed by the server after the handshake
 * deadline.  Every socket the test opens is counted and closed. */
#include "config.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "auth/auth.h"
#include "kvnode.h"
#include "net/net.h"
#include "proc.h"
#include "tap.h"

#define MAX_CONNS 40
#define MAX_PREAUTH 12
#define MAX_PREAUTH_IP 8
#define HS_TIMEOUT_MS 4000
#define NFLOOD 60 /* per round: with the second address, above MAX_CONNS */

static char conf_m[300], conf_p[300];
static const char *const args_m[] = { "--role", "master", "--config", conf_m, NULL };
static const char *const args_p[] = { "--role", "peer", "--config", conf_p, "--set", "node.id=p1", NULL };
static uint16_t mport, pport;
static pid_t pid_m, pid_p;

/* every idle socket the test opened, and when */
static int flood_fd[4 * NFLOOD];
static uint64_t flood_t0[4 * NFLOOD];
static int nflood, nclosed;
static uint64_t t_begin;

/* An idle TCP connection from src (a loopback address) to port; -1 if
 * the connect itself failed. */
static int idle_connect(const char *src, uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET }, me = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	inet_pton(AF_INET, src, &me.sin_addr);
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&me, sizeof me) != 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* n idle sockets from src to port; returns how many connected */
static int flood(const char *src, uint16_t port, int n)
{
	int got = 0;
	for (int i = 0; i < n && nflood < (int)(sizeof flood_fd / sizeof flood_fd[0]); i++) {
		int fd = idle_connect(src, port);
		if (fd < 0)
			continue;
		flood_fd[nflood] = fd;
		flood_t0[nflood++] = kvn_now_ms();
		got++;
	}
	return got;
}

/* Whether the server has closed fd (EOF or reset pending); such a socket
 * is closed here and marked -1. */
static int server_closed(int i, int wait_ms)
{
	struct pollfd pfd = { .fd = flood_fd[i], .events = POLLIN };
	uint8_t b[64];
	if (flood_fd[i] < 0)
		return 1;
	if (poll(&pfd, 1, wait_ms) <= 0)
		return 0;
	if (read(flood_fd[i], b, sizeof b) > 0)
		return 0; /* the server never sends to a socket that said nothing */
	close(flood_fd[i]);
	flood_fd[i] = -1;
	nclosed++;
	return 1;
}

/* Idle sockets in [from, to) the server still holds open. */
static int still_open(int from, int to)
{
	int n = 0;
	for (int i = from; i < to; i++)
		n += !server_closed(i, 0);
	return n;
}

static void t_start(void)
{
	char data_m[300], data_p[300], extra[1200];

	t_begin = kvn_now_ms();
	mport = proc_free_port();
	pport = proc_free_port();
	snprintf(data_m, sizeof data_m, "%s/var-m", proc_tmp);
	snprintf(data_p, sizeof data_p, "%s/var-p", proc_tmp);
	snprintf(conf_m, sizeof conf_m, "%s/m.conf", proc_tmp);
	snprintf(conf_p, sizeof conf_p, "%s/p.conf", proc_tmp);
	snprintf(extra, sizeof extra,
		 "[node]\nmax_preauth = %d\nmax_preauth_per_ip = %d\n"
		 "[master]\nmax_connections = %d\n[peer]\nmax_connections = %d\n"
		 "[auth]\nhandshake_timeout = %dms\npeer_secret_file = %s/peer.secret\n"
		 "client_secret_file = %s/client.secret\n",
		 MAX_PREAUTH, MAX_PREAUTH_IP, MAX_CONNS, MAX_CONNS, HS_TIMEOUT_MS, data_m, data_m);
	proc_write_conf(conf_m, mport, pport, data_m, "16MiB", extra);
	proc_write_conf(conf_p, mport, pport, data_p, "16MiB", extra);
	pid_m = proc_spawn("m", args_m);
	ok(proc_wait_log("m", "kvnode ready", 1, 15000) == 0, "master up");
	pid_p = proc_spawn("p", args_p);
	struct kvn_client *c = proc_connect_ready(conf_m, 1);
	ok(c != NULL, "peer attached, a client connects");
	kvn_close(c);
	if (!c)
		exit(1);
}

/* Cases start the nodes when run alone. */
static void need_start(void)
{
	if (!pid_m)
		t_start();
}

/* One attempt, no retry loop: connect, ping, put, get. */
static int client_round(const char *key, uint32_t *peers)
{
	struct kvn_options o = { .config_path = conf_m, .node_id = "legit" };
	struct kvn_client *c = NULL;
	char buf[64];
	size_t vlen = 0;
	int rc = kvn_connect(&o, &c);
	if (rc == 0)
		rc = kvn_ping(c, NULL, peers);
	if (rc == 0)
		rc = kvn_put(c, key, strlen(key), "value", 5, 0);
	if (rc == 0)
		rc = kvn_get(c, key, strlen(key), buf, sizeof buf, &vlen);
	if (rc == 0 && (vlen != 5 || memcmp(buf, "value", 5) != 0))
		rc = KVN_EPROTO;
	kvn_close(c);
	return rc;
}

/* ---- log lines (item 19) ---- */

/* A raw HELLO claiming role and node_id; 0 once the server has closed the
 * connection (it answers REJECT, then closes), -1 if it did not within 3 s. */
static int bad_hello(uint16_t port, int role, const char *id)
{
	struct wire_w w;
	struct wire_hdr h = { .type = WIRE_HELLO };
	uint8_t raw[WIRE_HDR_LEN], nonce[32] = { 0 }, b[256];
	int fd = idle_connect("127.0.0.1", port), rc = -1;

	if (fd < 0)
		return -1;
	wire_w_init(&w);
	wire_w_u8(&w, (uint8_t)role);
	wire_w_str(&w, id);
	wire_w_raw(&w, nonce, sizeof nonce);
	wire_w_u8(&w, KVN_INTEGRITY_HEADER);
	h.meta_len = w.len;
	wire_hdr_encode(&h, raw);
	if (write(fd, raw, sizeof raw) == (ssize_t)sizeof raw && write(fd, w.buf, w.len) == (ssize_t)w.len) {
		uint64_t until = kvn_now_ms() + 3000;
		while (kvn_now_ms() < until) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			if (poll(&pfd, 1, 100) > 0 && read(fd, b, sizeof b) <= 0) {
				rc = 0;
				break;
			}
		}
	}
	wire_w_fini(&w);
	close(fd);
	return rc;
}

/* Bytes of NAME.log below 0x20 other than newline. */
static int log_ctl_bytes(const char *name)
{
	char path[512];
	int ch, n = 0;
	snprintf(path, sizeof path, "%s/%s.log", proc_tmp, name);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while ((ch = fgetc(f)) != EOF)
		n += ch < 0x20 && ch != '\n';
	fclose(f);
	return n;
}

static void t_log_injection(void)
{
	need_start();
	/* newline-free, but written to pass for the end of the line and the
	 * start of another: quotes, a fake level and a fake event */
	const char *forged = "p9' from 10.0.0.9: ok\" INFO  [master] node \"p9\" attached";
	const char *quoted = "\"p9' from 10.0.0.9: ok\\\" INFO  [master] node \\\"p9\\\" attached\"";
	const char *ctl = "ctl\x1b[31mRED\x07\rX";
	const char *ctl_quoted = "\"ctl\\x1b[31mRED\\x07\\x0dX\"";

	int before = proc_log_count("m", "rejected");
	is_int(bad_hello(mport, 9, forged), 0, "a HELLO with a forged-looking node_id is refused");
	is_int(proc_log_count("m", "rejected"), before + 1, "one line for it");
	is_int(proc_log_count("m", quoted), 1, "with the node_id quoted and escaped: %s", quoted);
	is_int(proc_log_count("m", "ok\" INFO"), 0, "and never verbatim");
	is_int(bad_hello(mport, AUTH_ROLE_CLIENT, ctl), 0, "a HELLO with control bytes in its node_id is refused");
	is_int(proc_log_count("m", "rejected"), before + 2, "one line for it");
	is_int(proc_log_count("m", ctl_quoted), 1, "with the node_id quoted and escaped: %s", ctl_quoted);
	is_int(log_ctl_bytes("m"), 0, "no control byte reached the log");
}

static void t_log_flood(void)
{
	need_start();
	int before = proc_log_count("m", "rejected"), failed = 0;
	uint64_t t0 = kvn_now_ms();
	for (int i = 0; i < 1000; i++)
		failed += bad_hello(mport, 9, "flood") != 0;
	uint64_t secs = (kvn_now_ms() - t0) / 1000;
	is_int(failed, 0, "1000 bad handshakes from one client, each refused");
	int lines = proc_log_count("m", "rejected") - before;
	/* one window of the limit, and one more per interval the loop took */
	ok(lines >= 1 && lines <= NET_WARN_BURST * (int)(2 + secs * 1000 / NET_WARN_INTERVAL_MS),
	   "logged in %d lines, not 1000 (%llu s)", lines, (unsigned long long)secs);
}

/* ---- limits (item 18) ---- */

static void t_flood_client(void)
{
	need_start();
	int a = nflood;
	int n1 = flood("127.0.0.1", mport, NFLOOD);
	int b = nflood;
	int n2 = flood("127.0.0.2", mport, NFLOOD / 2);
	int c = nflood;
	int n3 = flood("127.0.0.1", pport, NFLOOD);
	int d = nflood;
	ok(n1 + n2 + n3 == NFLOOD * 2 + NFLOOD / 2, "%d idle unauthenticated connections made", n1 + n2 + n3);

	uint32_t peers = 0;
	int rc = client_round("pa/1", &peers);
	is_int(rc, 0, "meanwhile a new client connects, pings, puts and gets");
	ok(peers == 1, "and sees the peer (%u)", peers);
	/* The accept queue is FIFO: the master and the peer took every idle
	 * socket before the client's, so what is open now is what they kept. */
	int open1 = still_open(a, b), open2 = still_open(b, c), openp = still_open(c, d);
	ok(open1 + open2 <= MAX_PREAUTH && open1 <= MAX_PREAUTH_IP && open2 <= MAX_PREAUTH_IP,
	   "the master holds at most %d (%d per address) of them: %d from 127.0.0.1, %d from 127.0.0.2",
	   MAX_PREAUTH, MAX_PREAUTH_IP, open1, open2);
	ok(open1 + open2 > 0 && openp > 0, "the client did not just wait for them to time out");
	ok(openp <= MAX_PREAUTH_IP, "the peer holds at most %d: %d", MAX_PREAUTH_IP, openp);
}

static void t_flood_reattach(void)
{
	need_start();
	int st = 0;
	int before = proc_log_count("m", "attached");

	ok(proc_stop(pid_p, SIGKILL, 5000, &st) == 0, "peer killed");
	int a = nflood;
	flood("127.0.0.1", mport, NFLOOD / 2);
	flood("127.0.0.2", mport, NFLOOD / 2);
	int b = nflood;
	pid_p = proc_spawn("p", args_p);
	/* the attach must not wait for the idle sockets' deadline */
	ok(proc_wait_log("m", "attached", before + 1, HS_TIMEOUT_MS - 1000) == 0,
	   "the restarted peer re-attaches through the flood");
	ok(still_open(a, b) > 0, "while idle sockets are still open");
	uint32_t peers = 0;
	int rc = KVN_ENOPEER;
	uint64_t until = kvn_now_ms() + 10000;
	/* the first put after a re-attach may still see ENOPEER (item 13,
	 * another fix); what matters here is that the peer is in */
	while (rc != 0 && kvn_now_ms() < until) {
		rc = client_round("pa/2", &peers);
		if (rc)
			usleep(100000);
	}
	is_int(rc, 0, "a client puts and gets through the re-attached peer");
}

static void t_deadline(void)
{
	need_start();
	if (nflood == 0) /* run alone: idle sockets of its own to watch */
		flood("127.0.0.1", mport, NFLOOD / 2);
	int late = 0;
	for (int i = 0; i < nflood; i++) {
		uint64_t limit = flood_t0[i] + HS_TIMEOUT_MS + 4000;
		while (!server_closed(i, 50) && kvn_now_ms() < limit)
			;
		if (flood_fd[i] >= 0) {
			late++;
			close(flood_fd[i]);
			flood_fd[i] = -1;
		}
	}
	is_int(late, 0, "every idle socket was closed by the server after the handshake deadline");
	is_int(nclosed, nflood, "all %d sockets opened were closed (%d)", nflood, nclosed);
	ok(proc_log_count("m", "not authenticated yet") <=
		   NET_WARN_BURST * (int)(1 + (kvn_now_ms() - t_begin) / NET_WARN_INTERVAL_MS),
	   "the drops were logged a bounded number of times (%d lines)", proc_log_count("m", "not authenticated yet"));
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "start", t_start },
		{ "log_injection", t_log_injection },
		{ "log_flood", t_log_flood },
		{ "flood_client", t_flood_client },
		{ "flood_reattach", t_flood_reattach },
		{ "deadline", t_deadline },
		{ NULL, NULL },
	};
	int rc;

	if (proc_init("preauth") != 0)
		return 1;
	proc_logs_on_failure = 1;
	proc_watchdog(90);
	rc = tap_run(tests, argc, argv);
	for (int i = 0; i < nflood; i++)
		if (flood_fd[i] >= 0)
			close(flood_fd[i]);
	return rc;
}
