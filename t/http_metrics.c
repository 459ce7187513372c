/* t/http_metrics: the HTTP monitoring endpoints (master.http, peer.http;
 * docs/monitoring.md) of real kvnode processes (t/proc.h):
 *   - format: /metrics of the master and of the peer parse as the
 *     Prometheus text format 0.0.4 (a parser here: every line is HELP,
 *     TYPE or a sample; every family has HELP and TYPE before its samples;
 *     names and labels are well formed, values are numbers, no series
 *     twice; a histogram's buckets are cumulative and end with +Inf equal
 *     to _count) and the Content-Type says version=0.0.4; the parser
 *     itself refuses broken texts;
 *   - deltas: a scripted workload (N puts, M gets of present keys, K gets of
 *     missing ones, one call each) moves the request, hit, miss, put and
 *     object counters by exactly those amounts;
 *   - health: 200 "ok" on both endpoints; a peer whose master is gone
 *     answers 503 with the reason;
 *   - master_health: master.db locked by an operator: the master's /health
 *     answers 503 with the reason, then 200 once it commits again;
 *   - errors: unknown paths 404, other methods 405, oversized headers
 *     refused, and the endpoint still serves after each;
 *   - page: / is one self-contained HTML page (no external assets) and
 *     /status.json shows the node table;
 *   - config: an empty key turns an endpoint off; a port in use stops the
 *     start with an error naming the key.
 * Each case starts what it needs on first use, so a case runs alone. */
#include "config.h"

#include <ctype.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/base.h"
#include "net/net.h"
#include "kvnode.h"
#include "http_expo.h"
#include "proc.h"
#include "tap.h"

#define CONF_CAP 300

/* ---- a small HTTP/1.1 client ---- */

struct resp {
	int code;
	char ctype[128];
	char *body; /* NUL-terminated, malloc'd */
	size_t len;
};

static void resp_free(struct resp *r)
{
	free(r->body);
	memset(r, 0, sizeof *r);
}

/* Send raw (a whole request) to 127.0.0.1:port and read the reply until the
 * server closes (every reply closes).  0, or -1 (connect, timeout). */
static int http_raw(uint16_t port, const char *raw, struct resp *r)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 5 };
	size_t cap = 1 << 16, n = 0;
	char *buf;
	int fd;

	memset(r, 0, sizeof *r);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || write(fd, raw, strlen(raw)) != (ssize_t)strlen(raw)) {
		close(fd);
		return -1;
	}
	buf = malloc(cap + 1);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
		}
		ssize_t k = read(fd, buf + n, cap - n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	buf[n] = '\0';
	if (sscanf(buf, "HTTP/1.%*d %d", &r->code) != 1) {
		free(buf);
		return -1;
	}
	char *end = strstr(buf, "\r\n\r\n");
	char *ct = strcasestr(buf, "\r\nContent-Type: ");
	if (ct && (!end || ct < end)) {
		ct += strlen("\r\nContent-Type: ");
		size_t l = strcspn(ct, "\r");
		snprintf(r->ctype, sizeof r->ctype, "%.*s", (int)l, ct);
	}
	const char *b = end ? end + 4 : buf + n;
	r->len = (size_t)(buf + n - b);
	r->body = malloc(r->len + 1);
	memcpy(r->body, b, r->len);
	r->body[r->len] = '\0';
	free(buf);
	return 0;
}

static int http_get(uint16_t port, const char *path, struct resp *r)
{
	char req[512];
	snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
	return http_raw(port, req, r);
}

/* ---- the node ---- */

static char conf[CONF_CAP];
static uint16_t mhttp, phttp;
static struct kvn_client *cl;
static struct expo ex_a, ex_b; /* big: static */

static void node(void)
{
	char extra[200];
	if (cl)
		return;
	mhttp = proc_free_port();
	phttp = proc_free_port();
	/* local = off: the deltas count gets and puts through the master */
	snprintf(extra, sizeof extra,
		 "local = off\n[master]\nhttp = 127.0.0.1:%u\n[peer]\nhttp = 127.0.0.1:%u\nhugepages = off\n", mhttp,
		 phttp);
	proc_start_node("aio", "16MiB", extra, conf, sizeof conf);
	cl = proc_connect_ready(conf, 1);
	if (!cl)
		kvn_fatal("the node did not come up within 20 s (see its log)");
}

/* GET /metrics of port, parsed into e; 0 or -1 (said why) */
static int scrape(uint16_t port, struct expo *e)
{
	struct resp r;
	if (http_get(port, "/metrics", &r) != 0 || r.code != 200) {
		tap_diag("GET /metrics on %u failed (code %d)", port, r.code);
		resp_free(&r);
		return -1;
	}
	expo_parse(e, r.body);
	resp_free(&r);
	return 0;
}

static double delta(const char *key, int *found_both)
{
	int fa, fb;
	double a = series_val(&ex_a, key, &fa), b = series_val(&ex_b, key, &fb);
	if (found_both)
		*found_both = fb; /* a series first seen after the workload started at 0 */
	return b - a;
}

/* ---- cases ---- */

static void t_format(void)
{
	struct resp r;
	node();
	uint16_t ports[2] = { mhttp, phttp };
	const char *who[2] = { "master", "peer" };
	for (int i = 0; i < 2; i++) {
		is_int(http_get(ports[i], "/metrics", &r), 0, "%s: GET /metrics answers", who[i]);
		is_int(r.code, 200, "%s: 200", who[i]);
		ok(strncmp(r.ctype, "text/plain; version=0.0.4", 25) == 0, "%s: Content-Type %s", who[i], r.ctype);
		expo_parse(&ex_a, r.body ? r.body : "");
		is_str(ex_a.err, "", "%s: the text parses (%d families, %d series)", who[i], ex_a.nfam, ex_a.nser);
		ok(ex_a.nfam > 20, "%s: more than 20 families", who[i]);
		int f1 = 0, f2 = 0;
		char bi[160];
		snprintf(bi, sizeof bi, "kvnode_build_info{version=\"%s\",wire_version=\"%d\",rdma=\"%s\"}",
			 PACKAGE_VERSION, WIRE_VERSION,
#ifdef HAVE_RDMA
			 "yes"
#else
			 "no"
#endif
		);
		series_val(&ex_a, bi, &f1);
		ok(f1, "%s: build info names the version, wire version and rdma", who[i]);
		series_val(&ex_a, "kvnode_uptime_seconds", &f2);
		ok(f2, "%s: uptime", who[i]);
		if (i == 0) {
			is_int(ex_a.hist_checked, 1, "master: the SQLite commit histogram checked");
			series_val(&ex_a, "kvnode_master_full_syncs_total", &f1);
			ok(f1, "master: the master's counter list is exported (full syncs)");
			int lag = 0;
			for (int k = 0; k < ex_a.nser; k++)
				lag |= strncmp(ex_a.ser[k].key, "kvnode_node_event_lag{node=", 27) == 0;
			ok(lag, "master: event lag per node");
		} else {
			series_val(&ex_a, "kvnode_peer_tier_evicted_dropped_total", &f1);
			series_val(&ex_a, "kvnode_peer_tier_offloaded_total", &f2);
			ok(f1 && f2, "peer: the tier counters (evictions, offloads) are exported");
			series_val(&ex_a, "kvnode_dram_used_bytes", &f1);
			series_val(&ex_a, "kvnode_disk_used_bytes", &f2);
			ok(f1 && f2, "peer: arena and disk use");
		}
		resp_free(&r);
	}
	/* the parser refuses what it must refuse (so the checks above can fail) */
	static const struct {
		const char *text, *why;
	} bad[] = {
		{ "kvnode_x 1\n", "a sample without HELP/TYPE" },
		{ "# HELP kvnode_x h\n# TYPE kvnode_x counter\nkvnode_x one\n", "a value that is not a number" },
		{ "# HELP kvnode_x h\n# TYPE kvnode_x counter\nkvnode_x{a=\"b} 1\n", "an unterminated label" },
		{ "# HELP kvnode_x h\n# TYPE kvnode_x counter\nkvnode_x 1\nkvnode_x 2\n", "a series twice" },
		{ "# HELP kvnode_x h\n# TYPE kvnode_x histogram\nkvnode_x_bucket{le=\"1\"} 3\n"
		  "kvnode_x_bucket{le=\"+Inf\"} 2\nkvnode_x_sum 1\nkvnode_x_count 2\n",
		  "buckets that are not cumulative" },
		{ "# HELP kvnode_x h\n# TYPE kvnode_x histogram\nkvnode_x_bucket{le=\"1\"} 1\n"
		  "kvnode_x_bucket{le=\"+Inf\"} 2\nkvnode_x_sum 1\nkvnode_x_count 3\n",
		  "+Inf not equal to _count" },
		{ "# HELP kvnode_x h\n# TYPE kvnode_x gauge\n# HELP kvnode_y h\nkvnode_x 1\n", "a family without TYPE" },
		{ "# HELP kvnode_x h\n# TYPE kvnode_x gauge\nkvnode_x 1", "no final newline" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		expo_parse(&ex_b, bad[i].text);
		ok(ex_b.err[0] != '\0', "the parser refuses %s (%s)", bad[i].why, ex_b.err);
	}
	expo_parse(&ex_b, "# HELP kvnode_x h\n# TYPE kvnode_x histogram\nkvnode_x_bucket{le=\"1\"} 1\n"
			  "kvnode_x_bucket{le=\"+Inf\"} 2\nkvnode_x_sum 1.5\nkvnode_x_count 2\n");
	is_str(ex_b.err, "", "and accepts a good histogram");
}

#define N_PUT 7
#define M_GET 5
#define K_MISS 3

static void t_deltas(void)
{
	char key[32], val[100], buf[200];
	size_t vlen;
	int found;

	node();
	memset(val, 'v', sizeof val);
	/* the master's and the peer's counters before and after */
	static struct expo pa, pb;
	if (scrape(mhttp, &ex_a) != 0 || scrape(phttp, &pa) != 0) {
		ok(0, "scrape before the workload");
		return;
	}
	int rc = 0;
	for (int i = 0; i < N_PUT; i++) {
		snprintf(key, sizeof key, "delta-%d", i);
		rc |= kvn_put(cl, key, strlen(key), val, sizeof val, 0);
	}
	is_int(rc, 0, "%d puts", N_PUT);
	rc = 0;
	for (int i = 0; i < M_GET; i++) {
		snprintf(key, sizeof key, "delta-%d", i);
		rc |= kvn_get(cl, key, strlen(key), buf, sizeof buf, &vlen);
	}
	is_int(rc, 0, "%d gets of present keys", M_GET);
	int miss = 0;
	for (int i = 0; i < K_MISS; i++) {
		snprintf(key, sizeof key, "delta-missing-%d", i);
		miss += kvn_get(cl, key, strlen(key), buf, sizeof buf, &vlen) == KVN_ENOTFOUND;
	}
	is_int(miss, K_MISS, "%d gets of missing keys: KVN_ENOTFOUND", K_MISS);
	if (scrape(mhttp, &ex_b) != 0 || scrape(phttp, &pb) != 0) {
		ok(0, "scrape after the workload");
		return;
	}
	is_str(ex_b.err, "", "the master's text still parses");
	/* master: GET keys looked up in the index */
	is_int(delta("kvnode_get_hits_total{role=\"master\"}", &found), M_GET, "master: hits +%d", M_GET);
	is_int(delta("kvnode_get_misses_total{role=\"master\"}", &found), K_MISS, "master: misses +%d", K_MISS);
	/* every get goes to the master (client.get_via_master): one GET reply
	 * frame each, status ok (a miss is a per-key result in it) */
	is_int(delta("kvnode_requests_total{role=\"master\",op=\"GET\",result=\"ok\"}", &found), M_GET + K_MISS,
	       "master: GET replies +%d", M_GET + K_MISS);
	is_int(delta("kvnode_master_gets_total", NULL), M_GET + K_MISS, "master: its own GET counter agrees");
	is_int(delta("kvnode_objects", NULL), N_PUT, "master: objects +%d", N_PUT);
	ok(delta("kvnode_received_bytes_total{role=\"master\"}", NULL) > 0, "master: bytes received grew");
	ok(delta("kvnode_sent_bytes_total{role=\"master\"}", NULL) > 0, "master: bytes sent grew");
	/* the first put went to the master's peer after a ROUTE_PUT (the
	 * client learns then that the master's peer is local), the others
	 * through the master (client.put_via_master): one PUT reply frame per
	 * put, on one listener or the other */
	double mput = delta("kvnode_requests_total{role=\"master\",op=\"PUT\",result=\"ok\"}", NULL);
	double route = delta("kvnode_requests_total{role=\"master\",op=\"ROUTE_PUT\",result=\"ok\"}", NULL);
	double pput = series_val(&pb, "kvnode_requests_total{role=\"peer\",op=\"PUT\",result=\"ok\"}", NULL) -
		      series_val(&pa, "kvnode_requests_total{role=\"peer\",op=\"PUT\",result=\"ok\"}", NULL);
	is_int(mput + pput, N_PUT, "PUT replies: %g on the master's listener + %g on the peer's = %d", mput, pput, N_PUT);
	is_int(route, pput, "one ROUTE_PUT for each PUT sent to the peer directly");
	/* plain puts commit within master.commit_linger (or when the writer
	 * closes its group): wait for the histogram to move */
	int timed = 0;
	for (uint64_t until = kvn_now_ms() + 5000; !timed && kvn_now_ms() < until; usleep(50000)) {
		static struct expo e;
		if (scrape(mhttp, &e) == 0)
			timed = series_val(&e, "kvnode_sqlite_commit_seconds_count", NULL) >
				series_val(&ex_a, "kvnode_sqlite_commit_seconds_count", NULL);
	}
	ok(timed, "master: the puts' SQLite COMMITs were timed");
	/* peer: the same workload seen by the peer */
	memcpy(&ex_a, &pa, sizeof pa);
	memcpy(&ex_b, &pb, sizeof pb);
	is_str(ex_b.err, "", "the peer's text still parses");
	is_int(delta("kvnode_get_hits_total{role=\"peer\"}", NULL), M_GET, "peer: hits +%d", M_GET);
	is_int(delta("kvnode_get_misses_total{role=\"peer\"}", NULL), 0,
	       "peer: misses +0 (the master answered the missing keys)");
	is_int(delta("kvnode_peer_gets_total", NULL), M_GET, "peer: items read +%d", M_GET);
	is_int(delta("kvnode_peer_puts_total", NULL), N_PUT, "peer: items stored +%d", N_PUT);
	is_int(delta("kvnode_keys", NULL), N_PUT, "peer: keys +%d", N_PUT);
}

static void t_health(void)
{
	struct resp r;
	node();
	is_int(http_get(mhttp, "/health", &r), 0, "master: GET /health answers");
	is_int(r.code, 200, "master: 200");
	is_str(r.body, "ok\n", "master: ok");
	resp_free(&r);
	is_int(http_get(phttp, "/health", &r), 0, "peer: GET /health answers");
	is_int(r.code, 200, "peer: 200");
	is_str(r.body, "ok\n", "peer: ok");
	resp_free(&r);

	/* a peer of its own whose master goes away */
	char mconf[CONF_CAP], pconf[CONF_CAP], data[300], pdata[300], extra[200], id[80], ps[400], cs[400];
	uint16_t mp = proc_free_port(), pp = proc_free_port(), ph = proc_free_port();
	snprintf(mconf, sizeof mconf, "%s/hm.conf", proc_tmp);
	snprintf(data, sizeof data, "%s/var-hm", proc_tmp);
	proc_write_conf(mconf, mp, proc_free_port(), data, "16MiB", NULL);
	const char *margs[] = { "--role", "master", "--config", mconf, NULL };
	pid_t mpid = proc_spawn("hm", margs);
	ok(proc_wait_log("hm", "kvnode ready", 1, 20000) == 0, "a master-only process starts");
	snprintf(pconf, sizeof pconf, "%s/hp.conf", proc_tmp);
	snprintf(pdata, sizeof pdata, "%s/var-hp", proc_tmp);
	snprintf(extra, sizeof extra, "[peer]\nhttp = 127.0.0.1:%u\nhugepages = off\n", ph);
	proc_write_conf(pconf, mp, pp, pdata, "16MiB", extra);
	snprintf(id, sizeof id, "node.id=hp");
	snprintf(ps, sizeof ps, "auth.peer_secret_file=%s/peer.secret", data);
	snprintf(cs, sizeof cs, "auth.client_secret_file=%s/client.secret", data);
	const char *pargs[] = { "--role", "peer", "--config", pconf, "--set", id, "--set", ps, "--set", cs, NULL };
	proc_spawn("hp", pargs);
	ok(proc_wait_log("hp", "attached to the master", 1, 20000) == 0, "a peer-only process attaches to it");
	int code = 0;
	for (uint64_t until = kvn_now_ms() + 10000; kvn_now_ms() < until; usleep(50000)) {
		if (http_get(ph, "/health", &r) == 0)
			code = r.code;
		resp_free(&r);
		if (code == 200)
			break;
	}
	is_int(code, 200, "its /health: 200 while attached");
	ok(proc_stop(mpid, SIGKILL, 5000, NULL) == 0, "the master is killed");
	char body[256] = "";
	for (uint64_t until = kvn_now_ms() + 15000; kvn_now_ms() < until; usleep(100000)) {
		if (http_get(ph, "/health", &r) == 0) {
			code = r.code;
			snprintf(body, sizeof body, "%s", r.body);
		}
		resp_free(&r);
		if (code == 503)
			break;
	}
	is_int(code, 503, "its /health: 503 once the master is gone");
	is_str(body, "not attached to the master\n", "with the reason");
}

/* master.db failing: an operator holds a write lock on it from a second
 * connection (as t/dbfail does); a durable put fails with KVN_EDB and the
 * master's /health says why until the lock is gone */
static void t_master_health(void)
{
	char db[400], body[300] = "";
	struct resp r;
	sqlite3 *h = NULL;
	int code = 0;

	node();
	snprintf(db, sizeof db, "%s/var-aio/master.db", proc_tmp);
	ok(sqlite3_open(db, &h) == SQLITE_OK && sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK,
	   "a second connection holds master.db's write lock");
	int rc = kvn_put(cl, "mh-durable", 10, "x", 1, KVN_PUT_DURABLE);
	is_int(rc, KVN_EDB, "a durable put fails with KVN_EDB");
	if (http_get(mhttp, "/health", &r) == 0) {
		code = r.code;
		snprintf(body, sizeof body, "%s", r.body);
	}
	resp_free(&r);
	is_int(code, 503, "the master's /health: 503");
	ok(strncmp(body, "master.db writer failing for ", 29) == 0 && strstr(body, "locked"), "saying why: %s", body);
	ok(scrape(mhttp, &ex_a) == 0 && series_val(&ex_a, "kvnode_master_db_degraded", NULL) == 1,
	   "kvnode_master_db_degraded 1");
	sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(h);
	/* the writer probes with backoff until a write commits */
	for (uint64_t until = kvn_now_ms() + 20000; kvn_now_ms() < until; usleep(100000)) {
		if (http_get(mhttp, "/health", &r) == 0)
			code = r.code;
		resp_free(&r);
		if (code == 200)
			break;
	}
	is_int(code, 200, "lock released: 200 again once master.db commits");
}

static void t_errors(void)
{
	struct resp r;
	node();
	is_int(http_get(mhttp, "/nope", &r), 0, "GET /nope answers");
	is_int(r.code, 404, "404");
	resp_free(&r);
	is_int(http_get(mhttp, "/metrics/x", &r), 0, "GET /metrics/x answers");
	is_int(r.code, 404, "404 (no prefix matching)");
	resp_free(&r);
	is_int(http_raw(mhttp, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", &r), 0,
	       "POST /metrics answers");
	is_int(r.code, 405, "405");
	resp_free(&r);
	is_int(http_raw(phttp, "DELETE /health HTTP/1.1\r\nHost: x\r\n\r\n", &r), 0, "DELETE /health answers");
	is_int(r.code, 405, "405 on the peer too");
	resp_free(&r);
	/* 16 KiB of headers: over the 8 KiB limit */
	size_t big = 16 << 10;
	char *req = malloc(big + 200);
	int n = snprintf(req, big + 200, "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ");
	memset(req + n, 'a', big);
	strcpy(req + n + big, "\r\n\r\n");
	int got = http_raw(mhttp, req, &r);
	ok(got != 0 || (r.code >= 400 && r.code < 500), "oversized headers are refused (code %d)", got ? 0 : r.code);
	resp_free(&r);
	free(req);
	/* a large body */
	char body[4200];
	n = snprintf(body, sizeof body, "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n");
	memset(body + n, 'b', 4000);
	body[n + 4000] = '\0';
	got = http_raw(mhttp, body, &r);
	ok(got != 0 || (r.code >= 400 && r.code < 500), "a 4000-byte body is refused (code %d)", got ? 0 : r.code);
	resp_free(&r);
	is_int(http_get(mhttp, "/health", &r), 0, "the endpoint still serves");
	is_int(r.code, 200, "200");
	resp_free(&r);
}

static void t_page(void)
{
	struct resp r;
	node();
	is_int(http_get(mhttp, "/", &r), 0, "GET / answers");
	is_int(r.code, 200, "200");
	ok(strncmp(r.ctype, "text/html", 9) == 0, "HTML (%s)", r.ctype);
	ok(r.body && strstr(r.body, "<tbody id=\"nodes\">"), "with the node table");
	ok(r.body && strstr(r.body, "<style>") && strstr(r.body, "<script>"), "inline CSS and script");
	ok(r.body && !strstr(r.body, "http://") && !strstr(r.body, "https://") && !strstr(r.body, " src=") &&
		   !strstr(r.body, "<link"),
	   "no external assets");
	resp_free(&r);
	is_int(http_get(mhttp, "/status.json", &r), 0, "GET /status.json answers");
	is_int(r.code, 200, "200");
	ok(strncmp(r.ctype, "application/json", 16) == 0, "JSON (%s)", r.ctype);
	ok(r.body && strstr(r.body, "\"role\":\"master\"") && strstr(r.body, "\"nodes\":[{\"id\":"),
	   "the master's node table");
	ok(r.body && strstr(r.body, "\"state\":\"up\""), "its peer up");
	resp_free(&r);
	is_int(http_get(phttp, "/status.json", &r), 0, "the peer's /status.json answers");
	ok(r.body && strstr(r.body, "\"role\":\"peer\"") && strstr(r.body, "\"nodes\":[{\"id\":"), "the peer itself");
	resp_free(&r);
}

static void t_config(void)
{
	char c1[CONF_CAP], data[300], taken[64], out[400];
	uint16_t mp = proc_free_port(), pp = proc_free_port();
	int st = 0;

	/* off: the test configs set both keys empty */
	pid_t pid = proc_start_node("off", "16MiB", "[peer]\nhugepages = off\n", c1, sizeof c1);
	ok(proc_wait_log("off", "kvnode ready", 1, 20000) == 0, "a node with master.http and peer.http empty starts");
	is_int(proc_log_count("off", "monitoring over HTTP"), 0, "and serves no HTTP endpoint");
	proc_stop(pid, SIGTERM, 10000, NULL);

	/* a port in use: a clear error naming the key, exit non-zero */
	node();
	snprintf(c1, sizeof c1, "%s/busy.conf", proc_tmp);
	snprintf(data, sizeof data, "%s/var-busy", proc_tmp);
	snprintf(taken, sizeof taken, "[master]\nhttp = 127.0.0.1:%u\n", mhttp); /* the other node's */
	proc_write_conf(c1, mp, pp, data, "16MiB", taken);
	const char *args[] = { "--role", "master", "--config", c1, NULL };
	pid = proc_spawn("busy", args);
	ok(proc_wait(pid, 20000, &st) == 0, "a node whose master.http port is taken stops");
	ok(WIFEXITED(st) && WEXITSTATUS(st) != 0, "with a non-zero status (%d)", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	snprintf(out, sizeof out, "master.http = '127.0.0.1:%u': cannot listen", mhttp);
	is_int(proc_log_count("busy", out), 1, "saying which key and why");
}

static const struct tap_test tests[] = {
	{ "format", t_format }, { "deltas", t_deltas }, { "health", t_health },
	{ "master_health", t_master_health }, { "errors", t_errors },
	{ "page", t_page },     { "config", t_config }, { NULL, NULL },
};

int main(int argc, char **argv)
{
	if (proc_init("http_metrics") != 0)
		return 1;
	proc_logs_on_failure = 1;
	proc_watchdog(150);
	int rc = tap_run(tests, argc, argv);
	if (cl)
		kvn_close(cl);
	return rc;
}
