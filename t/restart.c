/* t/restart: crash and restart of real kvnode processes on loopback (a
 * master and two peers, each its own process).  kill -9 of the master in
 * the middle of a put workload and its restart on the same data dir (every
 * acknowledged put back byte for byte after the peers' full syncs, newer
 * generations, the same client handle working again, calls during the
 * outage failing within the deadline); kill -9 of a peer (its keys fail
 * fast, the other peer's keep working) and its restart with the same
 * node.id (the master learns its keys are gone by full sync, long before
 * node_timeout); master.db across a restart (nodes and committed rows kept,
 * rows of a node that never returns marked lost after node_timeout); and a
 * clean SIGTERM of every process under load. */
#include "config.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "kvnode.h"
#include "proc.h"
#include "tap.h"

#define CLIENT_TIMEOUT_MS 2000
/* A failed call must come back within the client deadline; the slack
 * covers scheduling on a loaded 2-core VM (and the sanitizers). */
#define CALL_SLACK_MS 1000
#define NODE_TIMEOUT_MS 30000 /* long: a peer restart must not need it */
#define LOST_TIMEOUT_MS 3000  /* the master restarted for t_master_db */

static char conf_m[300], conf_p1[300], conf_p2[300], db[320];
static const char *const args_m[] = { "--role", "master", "--config", conf_m, NULL };
static const char *const args_p1[] = { "--role", "peer", "--config", conf_p1, "--set", "node.id=p1", NULL };
static const char *const args_p2[] = { "--role", "peer", "--config", conf_p2, "--set", "node.id=p2", NULL };
static pid_t pid_m, pid_p1, pid_p2;
static struct kvn_client *mc; /* the main thread's client: kept across every restart */

/* ---- values: the bytes of key PREFIX/i follow from (prefix, i) ---- */

static size_t val_size(uint32_t i)
{
	return 1 + (size_t)(i * 2654435761u) % 8192;
}

static uint64_t val_seed(const char *prefix, uint32_t i)
{
	return ((uint64_t)(unsigned char)prefix[0] << 40) ^ ((uint64_t)(unsigned char)prefix[1] << 32) ^ i;
}

static int key_of(char *buf, size_t cap, const char *prefix, uint32_t i)
{
	return snprintf(buf, cap, "%s/%u", prefix, i);
}

/* 0 when PREFIX/i reads back as exactly its bytes, else the error (or
 * KVN_EPROTO for wrong bytes); *ms gets the call's duration. */
static int check_value(struct kvn_client *c, const char *prefix, uint32_t i, uint64_t *ms)
{
	static __thread uint8_t want[8192], got[8192]; /* callers run in several threads */
	char key[64];
	size_t vlen = 0, sz = val_size(i);
	int klen = key_of(key, sizeof key, prefix, i);
	uint64_t t0 = kvn_now_ms();
	int rc = kvn_get(c, key, (size_t)klen, got, sizeof got, &vlen);
	if (ms)
		*ms = kvn_now_ms() - t0;
	if (rc)
		return rc;
	proc_fill(want, sz, val_seed(prefix, i));
	return vlen == sz && memcmp(want, got, sz) == 0 ? 0 : KVN_EPROTO;
}

static int put_value(struct kvn_client *c, const char *prefix, uint32_t i, unsigned flags)
{
	static __thread uint8_t v[8192];
	char key[64];
	size_t sz = val_size(i);
	int klen = key_of(key, sizeof key, prefix, i);
	proc_fill(v, sz, val_seed(prefix, i));
	return kvn_put(c, key, (size_t)klen, v, sz, flags);
}

/* What a call may answer while the master or a peer is down: unavailable,
 * never "missing". */
static int outage_error(int rc)
{
	return rc == KVN_ECONN || rc == KVN_ETIMEDOUT || rc == KVN_EPEERDOWN || rc == KVN_ENOPEER;
}

/* ---- a put workload in its own thread, with its own client ---- */

#define WMAX 20000

struct wrec {
	uint64_t t0, t1; /* kvn_now_ms() around the call */
	int rc;
};

struct writer {
	char prefix[8];
	pthread_t th;
	int stop;      /* set by the main thread */
	uint32_t done; /* puts finished; rec[0..done) are final */
	int connect_rc;
	struct wrec *rec;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct kvn_options o = { .config_path = conf_m, .node_id = "writer" };
	struct kvn_client *c = NULL;

	int rc = kvn_connect(&o, &c);
	__atomic_store_n(&w->connect_rc, rc, __ATOMIC_RELEASE);
	if (rc)
		return NULL;
	for (uint32_t i = 0; i < WMAX && !__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE); i++) {
		struct wrec *r = &w->rec[i];
		r->t0 = kvn_now_ms();
		r->rc = put_value(c, w->prefix, i, 0);
		r->t1 = kvn_now_ms();
		__atomic_store_n(&w->done, i + 1, __ATOMIC_RELEASE);
		/* paced: a few thousand values fit the peers' arenas; during an
		 * outage, do not spin on refused connects */
		usleep(r->rc ? 20000 : 1000);
	}
	kvn_close(c);
	return NULL;
}

static void writer_start(struct writer *w, const char *prefix)
{
	memset(w, 0, sizeof *w);
	snprintf(w->prefix, sizeof w->prefix, "%s", prefix);
	w->rec = kvn_xcalloc(WMAX, sizeof *w->rec);
	if (pthread_create(&w->th, NULL, writer_main, w) != 0)
		kvn_fatal("pthread_create");
}

static void writer_stop(struct writer *w)
{
	__atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
	pthread_join(w->th, NULL);
}

/* Puts acknowledged that started at or after t (0: all). */
static uint32_t writer_acked_since(struct writer *w, uint64_t t)
{
	uint32_t n = __atomic_load_n(&w->done, __ATOMIC_ACQUIRE), acked = 0;
	for (uint32_t i = 0; i < n; i++)
		acked += w->rec[i].rc == 0 && w->rec[i].t0 >= t;
	return acked;
}

static int wait_acked_since(struct writer *w, uint64_t t, uint32_t want, uint64_t timeout_ms)
{
	uint64_t until = kvn_now_ms() + timeout_ms;
	while (writer_acked_since(w, t) < want) {
		if (kvn_now_ms() >= until || __atomic_load_n(&w->connect_rc, __ATOMIC_ACQUIRE))
			return -1;
		usleep(20000);
	}
	return 0;
}

/* ---- gets of the durable keys in their own thread, with their own client ---- */

struct reader {
	pthread_t th;
	int stop;
	uint32_t nkeys;
	uint32_t gets, ok, notfound, other;
	uint64_t longest_ms;
	int first_notfound; /* key index, -1: none */
	uint64_t first_notfound_wall; /* kvn_wall_ms(), to compare with the logs */
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct kvn_options o = { .config_path = conf_m, .node_id = "reader" };
	struct kvn_client *c = NULL;

	if (kvn_connect(&o, &c) != 0) {
		r->other++;
		return NULL;
	}
	for (uint32_t i = 0; !__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE); i = (i + 1) % r->nkeys) {
		uint64_t ms = 0;
		int rc = check_value(c, "d", i, &ms);
		r->gets++;
		if (ms > r->longest_ms)
			r->longest_ms = ms;
		if (rc == 0) {
			r->ok++;
		} else if (rc == KVN_ENOTFOUND) {
			if (r->notfound++ == 0) {
				r->first_notfound = (int)i;
				r->first_notfound_wall = kvn_wall_ms();
			}
		} else if (!outage_error(rc)) {
			r->other++;
		}
		/* no pause while the master answers (EPEERDOWN: the window to
		 * watch is a peer's re-attach); a short one while it is down */
		if (rc == KVN_ECONN || rc == KVN_ETIMEDOUT)
			usleep(5000);
	}
	kvn_close(c);
	return NULL;
}

/* ---- master.db from this process (read-only, WAL) ---- */

/* The first column of the first row as text into buf ("" when NULL or no
 * row); -1 if the database cannot be read. */
static int sql_text(const char *sql, char *buf, size_t cap)
{
	sqlite3 *h;
	sqlite3_stmt *st = NULL;
	int rc = -1;
	buf[0] = '\0';
	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_busy_timeout(h, 2000);
		if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
			int s = sqlite3_step(st);
			if (s == SQLITE_ROW || s == SQLITE_DONE)
				rc = 0;
			if (s == SQLITE_ROW && sqlite3_column_text(st, 0))
				snprintf(buf, cap, "%s", (const char *)sqlite3_column_text(st, 0));
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(h);
	return rc;
}

static long long sql_int(const char *sql)
{
	return proc_sql_int(db, sql);
}

/* Wait until sql answers want (at_least: want or more), with a deadline;
 * returns the last answer. */
static long long sql_wait(const char *sql, long long want, int at_least, uint64_t timeout_ms)
{
	uint64_t until = kvn_now_ms() + timeout_ms;
	long long v;
	while ((at_least ? (v = sql_int(sql)) < want : (v = sql_int(sql)) != want) && kvn_now_ms() < until)
		usleep(20000);
	return v;
}

/* For each live key PREFIX/i, i < n: its gen into gens[i] (0: no row) and
 * whether it is on p2 into on_p2[i] (1 p2, 0 another node, -1 no row);
 * either array may be NULL.  0, or -1 if master.db cannot be read. */
static int sql_rows(const char *prefix, uint64_t *gens, int *on_p2, uint32_t n)
{
	sqlite3 *h;
	sqlite3_stmt *st = NULL;
	size_t plen = strlen(prefix);
	int rc = -1;
	for (uint32_t i = 0; i < n; i++) {
		if (gens)
			gens[i] = 0;
		if (on_p2)
			on_p2[i] = -1;
	}
	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_busy_timeout(h, 2000);
		if (sqlite3_prepare_v2(h, "select key, gen, node_id = 'p2' from objects where state = 'live'", -1, &st,
				       NULL) == SQLITE_OK) {
			while (sqlite3_step(st) == SQLITE_ROW) {
				const char *k = sqlite3_column_blob(st, 0);
				int klen = sqlite3_column_bytes(st, 0);
				char buf[64];
				if (klen <= (int)plen + 1 || klen >= (int)sizeof buf || memcmp(k, prefix, plen) != 0 ||
				    k[plen] != '/')
					continue;
				memcpy(buf, k, (size_t)klen);
				buf[klen] = '\0';
				unsigned long i = strtoul(buf + plen + 1, NULL, 10);
				if (i >= n)
					continue;
				if (gens)
					gens[i] = (uint64_t)sqlite3_column_int64(st, 1);
				if (on_p2)
					on_p2[i] = sqlite3_column_int(st, 2);
			}
			rc = 0;
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(h);
	return rc;
}

/* ---- cluster view through the client API ---- */

/* 1 if stat answers and node `id` is alive (0 dead, -1 unknown or error). */
static int node_alive(struct kvn_client *c, const char *id)
{
	struct kvn_node_stat st[8];
	size_t n = 0;
	uint64_t objs = 0;
	if (kvn_stat(c, st, 8, &n, &objs) != 0)
		return -1;
	for (size_t i = 0; i < n && i < 8; i++)
		if (strcmp(st[i].node_id, id) == 0)
			return st[i].alive;
	return -1;
}

static int wait_alive(struct kvn_client *c, const char *id, int want, uint64_t timeout_ms)
{
	uint64_t until = kvn_now_ms() + timeout_ms;
	while (node_alive(c, id) != want) {
		if (kvn_now_ms() >= until)
			return -1;
		usleep(50000);
	}
	return 0;
}

/* kill(), but never of pid 0 or -1 (this process group, everything):
 * a case run on its own, without "start", has no pids. */
static void signal_pid(pid_t pid, int sig)
{
	if (pid > 0)
		kill(pid, sig);
}

static int exited_zero(int status)
{
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* ---- cases ---- */

static void t_start(void)
{
	char data_m[300], data_p[300], extra[1200];
	uint16_t mp = proc_free_port(), pp1 = proc_free_port(), pp2 = proc_free_port();

	snprintf(data_m, sizeof data_m, "%s/var-m", proc_tmp);
	snprintf(db, sizeof db, "%s/var-m/master.db", proc_tmp);
	snprintf(conf_m, sizeof conf_m, "%s/m.conf", proc_tmp);
	snprintf(conf_p1, sizeof conf_p1, "%s/p1.conf", proc_tmp);
	snprintf(conf_p2, sizeof conf_p2, "%s/p2.conf", proc_tmp);
	/* a key given again overrides: a long node_timeout, a short client
	 * deadline and quarantine, one pair of secrets (the master's) */
	snprintf(extra, sizeof extra,
		 "[master]\nnode_timeout = %ums\n[client]\ntimeout = %ums\nquarantine = 300ms\n"
		 "[auth]\npeer_secret_file = %s/peer.secret\nclient_secret_file = %s/client.secret\n",
		 NODE_TIMEOUT_MS, CLIENT_TIMEOUT_MS, data_m, data_m);
	proc_write_conf(conf_m, mp, pp1, data_m, "64MiB", extra);
	snprintf(data_p, sizeof data_p, "%s/var-p1", proc_tmp);
	proc_write_conf(conf_p1, mp, pp1, data_p, "64MiB", extra);
	snprintf(data_p, sizeof data_p, "%s/var-p2", proc_tmp);
	proc_write_conf(conf_p2, mp, pp2, data_p, "64MiB", extra);

	pid_m = proc_spawn("m", args_m);
	ok(proc_wait_log("m", "kvnode ready", 1, 15000) == 0, "master up");
	pid_p1 = proc_spawn("p1", args_p1);
	pid_p2 = proc_spawn("p2", args_p2);
	mc = proc_connect_ready(conf_m, 2);
	ok(mc != NULL, "two peer processes attached, client connected");
	if (!mc)
		exit(1);
}

#define NBALLAST 4000
#define DUR_ROWS_SQL                                                                                 \
	"select group_concat(key || '=' || gen || '@' || node_id || '#' || commit_seq, ',') from " \
	"(select * from v_objects where key glob 'd/*' order by commit_seq)"

/* Put (put=1) or remove the keys z/0..NBALLAST-1, 1-byte values, in
 * batches; the number of failed batches. */
static int ballast(int put)
{
	int bad = 0;
	for (uint32_t b = 0; b < NBALLAST / 500; b++) {
		struct kvn_item it[500];
		char keys[500][16];
		memset(it, 0, sizeof it);
		for (uint32_t j = 0; j < 500; j++) {
			it[j].klen = (size_t)snprintf(keys[j], sizeof keys[j], "z/%u", b * 500 + j);
			it[j].key = keys[j];
			it[j].val = put ? keys[j] : NULL;
			it[j].vlen = put ? 1 : 0;
		}
		bad += (put ? kvn_batch_put(mc, it, 500, 0) : kvn_batch_remove(mc, it, 500)) != 0;
	}
	return bad;
}

/* kill -9 the master under a put workload, restart it on its data dir. */
static void t_master_kill9(void)
{
	struct writer *w = kvn_xcalloc(1, sizeof *w);
	struct reader *rd = kvn_xcalloc(1, sizeof *rd);
	enum { NDUR = 30 };
	uint64_t dgens[NDUR], dgens_after[NDUR];
	char dur_before[4096], dur_after[4096];
	int bad = 0, st = 0;

	/* durable values: in master.db before the crash */
	for (uint32_t i = 0; i < NDUR; i++)
		bad += put_value(mc, "d", i, KVN_PUT_DURABLE) != 0;
	is_int(bad, 0, "%d durable puts", NDUR);
	/* ballast: a few thousand small keys make each peer's full sync
	 * several chunks long, as on a real node */
	is_int(ballast(1), 0, "%d small values as ballast", NBALLAST);
	sql_rows("d", dgens, NULL, NDUR);
	sql_text(DUR_ROWS_SQL, dur_before, sizeof dur_before);
	long long epoch1 = sql_int("select max(epoch) from epochs");

	rd->nkeys = NDUR;
	rd->first_notfound = -1;
	if (pthread_create(&rd->th, NULL, reader_main, rd) != 0)
		kvn_fatal("pthread_create");
	writer_start(w, "w");
	ok(wait_acked_since(w, 0, 300, 15000) == 0, "the writer has acknowledged puts before the crash");

	uint64_t t_kill = kvn_now_ms();
	signal_pid(pid_m, SIGKILL);
	ok(proc_wait(pid_m, 5000, &st) == 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
	   "kill -9 the master mid-workload");

	/* the outage: calls fail fast with a connection error, never hang */
	uint64_t t0 = kvn_now_ms();
	int rc = check_value(mc, "d", 0, NULL);
	uint64_t dt = kvn_now_ms() - t0;
	ok(outage_error(rc), "a get with the master down fails (%s)", kvn_strerror(rc));
	ok(dt <= CLIENT_TIMEOUT_MS + CALL_SLACK_MS, "within the client deadline (%llu ms)", (unsigned long long)dt);
	t0 = kvn_now_ms();
	rc = kvn_ping(mc, NULL, NULL);
	dt = kvn_now_ms() - t0;
	ok((rc == KVN_ECONN || rc == KVN_ETIMEDOUT) && dt <= CLIENT_TIMEOUT_MS + CALL_SLACK_MS,
	   "ping with the master down: %s after %llu ms", kvn_strerror(rc), (unsigned long long)dt);

	/* master.db as the crash left it: the durable rows are there */
	sql_text(DUR_ROWS_SQL, dur_after, sizeof dur_after);
	ok(dur_before[0] && strcmp(dur_before, dur_after) == 0,
	   "every durable row survives kill -9 in master.db (same gen, node, commit order)");
	usleep(700000); /* the workload keeps failing meanwhile */

	uint64_t t_restart = kvn_now_ms();
	pid_m = proc_spawn("m2", args_m);
	ok(proc_wait_log("m2", "kvnode ready", 1, 15000) == 0, "master restarted on the same data dir");
	is_int(sql_int("select max(epoch) from epochs"), epoch1 + 1, "with the next generation epoch");
	ok(proc_wait_log("m2", "node p1: full sync applied", 1, 10000) == 0 &&
		   proc_wait_log("m2", "node p2: full sync applied", 1, 10000) == 0,
	   "both peers re-attached and full-synced");
	ok(wait_alive(mc, "p1", 1, 5000) == 0 && wait_alive(mc, "p2", 1, 5000) == 0,
	   "stat on the old client handle shows both peers alive again");
	uint64_t t_synced = kvn_now_ms();
	ok(wait_acked_since(w, t_synced, 200, 15000) == 0, "the writer's client works again after the restart");
	writer_stop(w);
	__atomic_store_n(&rd->stop, 1, __ATOMIC_RELEASE);
	pthread_join(rd->th, NULL);

	/* a reader of the durable keys ran all along: before the restart
	 * they are unavailable, after it they must not be "missing" while
	 * their peer lives, not even between a peer's attach and its sync */
	tap_diag("reader: %u gets, %u ok, %u KVN_ENOTFOUND (first: d/%d at %llu.%03llu s wall clock)", rd->gets, rd->ok,
		 rd->notfound, rd->first_notfound, (unsigned long long)rd->first_notfound_wall / 1000,
		 (unsigned long long)rd->first_notfound_wall % 1000);
	is_int(rd->notfound, 0, "no get of a durable key answered KVN_ENOTFOUND across the crash and restart");
	is_int(rd->other, 0, "the reader saw only successes and unavailable errors");
	ok(rd->longest_ms <= CLIENT_TIMEOUT_MS + CALL_SLACK_MS, "no get outlived the client deadline (%llu ms)",
	   (unsigned long long)rd->longest_ms);

	/* what the workload saw */
	uint32_t n = w->done, pre = 0, post = 0, outage_bad = 0;
	uint64_t longest = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct wrec *r = &w->rec[i];
		if (r->t1 - r->t0 > longest)
			longest = r->t1 - r->t0;
		if (r->rc == 0) {
			pre += r->t1 < t_kill;
			post += r->t0 >= t_restart;
		} else if (!outage_error(r->rc)) {
			outage_bad++;
			if (outage_bad <= 5)
				tap_diag("put w/%u: %s", i, kvn_strerror(r->rc));
		}
	}
	tap_diag("writer: %u puts, %u acknowledged before the kill, %u started after the restart and acknowledged",
		 n, pre, post);
	ok(longest <= CLIENT_TIMEOUT_MS + CALL_SLACK_MS, "no put outlived the client deadline (longest %llu ms)",
	   (unsigned long long)longest);
	is_int(outage_bad, 0, "puts failed only with connection, timeout or no-peer errors");

	/* every acknowledged put, byte for byte */
	uint32_t acked = 0, lost = 0, wrong = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (w->rec[i].rc != 0)
			continue;
		acked++;
		rc = check_value(mc, "w", i, NULL);
		if (rc) {
			if (rc == KVN_EPROTO)
				wrong++;
			else
				lost++;
			if (lost + wrong <= 5)
				tap_diag("w/%u (acknowledged at +%lld ms from the kill): %s", i,
					 (long long)w->rec[i].t1 - (long long)t_kill, kvn_strerror(rc));
		}
	}
	ok(acked >= 500, "%u acknowledged puts", acked);
	is_int(lost, 0, "no acknowledged put is missing after the restart");
	is_int(wrong, 0, "every acknowledged put reads back byte for byte");
	bad = 0;
	for (uint32_t i = 0; i < NDUR; i++)
		bad += check_value(mc, "d", i, NULL) != 0;
	is_int(bad, 0, "the durable values read back too");

	/* generations: every new one above every one from before the crash */
	uint64_t *gens = kvn_xcalloc(n ? n : 1, sizeof *gens);
	long long rows = sql_wait("select count(*) from objects where state = 'live' and cast(key as text) glob 'w/*'", acked,
				  1, 10000);
	ok(rows >= acked, "the full syncs reached master.db (%lld rows)", rows);
	sql_rows("w", gens, NULL, n);
	uint64_t max_pre = 0, min_post = UINT64_MAX;
	uint32_t nogen = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct wrec *r = &w->rec[i];
		if (r->rc != 0)
			continue;
		if (!gens[i])
			nogen++;
		else if (r->t1 < t_kill && gens[i] > max_pre)
			max_pre = gens[i];
		else if (r->t0 >= t_restart && gens[i] < min_post)
			min_post = gens[i];
	}
	is_int(nogen, 0, "every acknowledged put has its row in v_objects");
	ok(max_pre > 0 && min_post != UINT64_MAX && min_post > max_pre,
	   "generations after the restart (min %#llx) exceed every one before the crash (max %#llx)",
	   (unsigned long long)min_post, (unsigned long long)max_pre);
	ok((max_pre >> 32) == (uint64_t)epoch1 && (min_post >> 32) == (uint64_t)epoch1 + 1,
	   "old generations carry epoch %lld, new ones epoch %lld", epoch1, epoch1 + 1);
	sql_rows("d", dgens_after, NULL, NDUR);
	ok(memcmp(dgens, dgens_after, sizeof dgens) == 0 && dgens[0] >> 32 == (uint64_t)epoch1,
	   "durable rows keep their generations through the restart and the full sync");
	sql_text(DUR_ROWS_SQL, dur_after, sizeof dur_after);
	ok(strcmp(dur_before, dur_after) == 0, "and their node and commit order");

	/* a re-put of a key from before the crash supersedes it */
	is_int(put_value(mc, "d", 7, KVN_PUT_DURABLE), 0, "re-put of a pre-crash key");
	is_int(check_value(mc, "d", 7, NULL), 0, "reads back");
	uint64_t g7[NDUR];
	sql_rows("d", g7, NULL, NDUR);
	ok(g7[7] > dgens[7] && g7[7] > max_pre && (g7[7] >> 32) == (uint64_t)epoch1 + 1,
	   "its new generation %#llx is above the old %#llx", (unsigned long long)g7[7],
	   (unsigned long long)dgens[7]);

	/* the ballast goes: placement is by free DRAM, and the next cases
	 * want both peers about as full */
	is_int(ballast(0), 0, "the ballast can be removed after the restart");
	free(gens);
	free(w->rec);
	free(w);
	free(rd);
}

/* kill -9 peer p2; restart it with the same node.id. */
static void t_peer_kill9(void)
{
	enum { NK = 1500, WANT = 25 };
	static int on_p2[NK];
	int n1 = 0, n2 = 0, st = 0, bad = 0;
	uint32_t nk = 0;

	/* placement is by free DRAM: put keys until both peers hold some
	 * (master.db says where each is) */
	while (nk < NK && (n1 < WANT || n2 < WANT)) {
		for (uint32_t j = 0; j < 50; j++, nk++)
			bad += put_value(mc, "k", nk, 0) != 0;
		sql_wait("select count(*) from objects where cast(key as text) glob 'k/*'", nk, 0, 5000);
		sql_rows("k", NULL, on_p2, nk);
		n1 = n2 = 0;
		for (uint32_t i = 0; i < nk; i++) {
			n1 += on_p2[i] == 0;
			n2 += on_p2[i] == 1;
		}
	}
	is_int(bad, 0, "%u puts", nk);
	ok(n1 >= WANT && n2 >= WANT, "%d of them on p1 and %d on p2 (by master.db)", n1, n2);

	signal_pid(pid_p2, SIGKILL);
	ok(proc_wait(pid_p2, 5000, &st) == 0 && WIFSIGNALED(st), "kill -9 peer p2");
	int dead_ok = 1, dead_fast = 1, live_ok = 1;
	uint64_t longest = 0;
	for (uint32_t i = 0; i < nk; i++) {
		uint64_t ms = 0;
		if (on_p2[i] < 0)
			continue;
		int rc = check_value(mc, "k", i, &ms);
		if (ms > longest)
			longest = ms;
		if (on_p2[i] == 1) {
			if (rc != KVN_ECONN && rc != KVN_EPEERDOWN && rc != KVN_ETIMEDOUT) {
				dead_ok = 0;
				tap_diag("k/%u on the dead peer: %s", i, kvn_strerror(rc));
			}
			if (ms > CLIENT_TIMEOUT_MS + CALL_SLACK_MS)
				dead_fast = 0;
		} else if (rc != 0) {
			live_ok = 0;
			tap_diag("k/%u on the live peer: %s", i, kvn_strerror(rc));
		}
	}
	ok(dead_ok, "keys on the dead peer fail with ECONN, EPEERDOWN or ETIMEDOUT");
	ok(dead_fast, "each within the client deadline (longest get %llu ms)", (unsigned long long)longest);
	ok(live_ok, "keys on p1 read back byte for byte");
	bad = 0;
	for (uint32_t i = 0; i < 20; i++)
		bad += put_value(mc, "k2", i, KVN_PUT_DURABLE) != 0;
	is_int(bad, 0, "new puts keep working");
	is_int(sql_int("select count(*) from v_objects where key glob 'k2/*' and node_id = 'p1'"), 20,
	       "and land on the surviving peer");

	/* back with the same node.id: the master learns by full sync that
	 * its keys are gone (node_timeout is 30 s) */
	uint64_t t_spawn = kvn_now_ms();
	pid_p2 = proc_spawn("p2b", args_p2);
	int gone = 0;
	uint64_t until = t_spawn + 10000;
	while (!gone && kvn_now_ms() < until) {
		gone = 1;
		for (uint32_t i = 0; i < nk && gone; i++)
			if (on_p2[i] == 1 && check_value(mc, "k", i, NULL) != KVN_ENOTFOUND)
				gone = 0;
		if (!gone)
			usleep(20000);
	}
	uint64_t took = kvn_now_ms() - t_spawn;
	ok(gone, "every old key of p2 answers KVN_ENOTFOUND after it restarts (%llu ms after the spawn)",
	   (unsigned long long)took);
	ok(took < NODE_TIMEOUT_MS / 3, "well before master.node_timeout (%u ms)", NODE_TIMEOUT_MS);
	is_int(proc_log_count("m2", "node p2 attached (new boot: it restarted)"), 1,
	       "the master saw a new boot and asked for a full sync");
	is_int(proc_log_count("m2", "declared dead"), 0, "and declared nothing dead");
	is_int(sql_wait("select count(*) from objects where node_id = 'p2'", 0, 0, 5000), 0,
	       "the old rows of p2 left master.db");
	ok(wait_alive(mc, "p2", 1, 5000) == 0, "stat shows p2 alive");

	/* an empty p2 has the most free DRAM: new puts go there, once this
	 * client's quarantine of p2 (its failures above; client.quarantine is
	 * 300 ms here) is over: until then placement leaves p2 out */
	usleep(400 * 1000);
	/* an empty p2 has the most free DRAM: new puts go there */
	bad = 0;
	for (uint32_t i = 0; i < 10; i++)
		bad += put_value(mc, "k3", i, KVN_PUT_DURABLE) != 0;
	is_int(bad, 0, "10 new puts");
	long long on2 = sql_int("select count(*) from v_objects where key glob 'k3/*' and node_id = 'p2'");
	ok(on2 >= 5, "%lld of them landed on the restarted p2", on2);
	bad = 0;
	for (uint32_t i = 0; i < 10; i++)
		bad += check_value(mc, "k3", i, NULL) != 0;
	is_int(bad, 0, "and read back");
	bad = 0;
	for (uint32_t i = 0; i < nk; i++)
		bad += on_p2[i] == 0 && check_value(mc, "k", i, NULL) != 0;
	is_int(bad, 0, "p1's keys are still there");
}

/* master.db across a restart; a node that never returns becomes lost. */
static void t_master_db(void)
{
	enum { NS = 40 };
	static char rows_before[65536], rows[65536], p1_before[65536], p1_after[65536];
	char nodes_before[512], nodes[512], q[300];
	const char *rows_sql = "select group_concat(key || '=' || gen || '@' || node_id || '#' || commit_seq || ':' || "
			       "state, ',') from (select * from v_objects order by commit_seq)";
	const char *p1_sql = "select group_concat(key || '=' || gen || '#' || commit_seq || ':' || state, ',') from "
			     "(select * from v_objects where node_id = 'p1' order by commit_seq)";
	const char *nodes_sql =
		"select group_concat(node_id || '@' || addr, ',') from (select * from nodes order by node_id)";
	int bad = 0, st = 0, on_p2[NS];

	for (uint32_t i = 0; i < NS; i++)
		bad += put_value(mc, "s", i, KVN_PUT_DURABLE) != 0;
	is_int(bad, 0, "%d more durable puts", NS);
	long long n1 = sql_int("select count(*) from objects where node_id = 'p1'");
	long long n2 = sql_int("select count(*) from objects where node_id = 'p2'");
	ok(n1 > 0 && n2 > 0, "master.db: %lld rows on p1, %lld on p2", n1, n2);
	for (uint32_t i = 0; i < NS; i++) {
		snprintf(q, sizeof q, "select node_id = 'p2' from v_objects where key = 's/%u'", i);
		on_p2[i] = (int)sql_int(q);
	}
	sql_text(rows_sql, rows_before, sizeof rows_before);
	sql_text(p1_sql, p1_before, sizeof p1_before);
	sql_text(nodes_sql, nodes_before, sizeof nodes_before);
	ok(strstr(nodes_before, "p1@") && strstr(nodes_before, "p2@"), "nodes rows: %s", nodes_before);

	/* the master and p2 die; p2 never comes back */
	signal_pid(pid_m, SIGKILL);
	signal_pid(pid_p2, SIGKILL);
	ok(proc_wait(pid_m, 5000, &st) == 0 && proc_wait(pid_p2, 5000, &st) == 0, "kill -9 the master and p2");
	sql_text(rows_sql, rows, sizeof rows);
	ok(rows_before[0] && strcmp(rows, rows_before) == 0,
	   "master.db holds the committed set after the crash (keys, gens, nodes, commit order)");
	sql_text(nodes_sql, nodes, sizeof nodes);
	is_str(nodes, nodes_before, "and the nodes");

	char set_to[64];
	snprintf(set_to, sizeof set_to, "master.node_timeout=%ums", LOST_TIMEOUT_MS);
	const char *args[] = { "--role", "master", "--config", conf_m, "--set", set_to, NULL };
	uint64_t t_spawn = kvn_now_ms();
	pid_m = proc_spawn("m3", args);
	ok(proc_wait_log("m3", "kvnode ready", 1, 15000) == 0, "master restarted with node_timeout %u ms",
	   LOST_TIMEOUT_MS);
	snprintf(q, sizeof q, "2 nodes and %lld objects loaded", n1 + n2);
	ok(proc_log_count("m3", q) == 1, "it loaded both nodes and every row from master.db");
	sql_text(rows_sql, rows, sizeof rows);
	uint64_t age = kvn_now_ms() - t_spawn;
	ok(strcmp(rows, rows_before) == 0 && !strstr(rows, ":lost"),
	   "%llu ms after the start every row is still there and live", (unsigned long long)age);
	ok(proc_wait_log("m3", "node p1: full sync applied", 1, 10000) == 0, "p1 re-attached and full-synced");

	/* mc has been idle since before the crash: its connection to the
	 * master died with it.  The master is back, so the call has its
	 * whole deadline to reconnect. */
	int rc = kvn_ping(mc, NULL, NULL);
	is_int(rc, 0, "an idle client's first call after the master restarted succeeds (%s)", kvn_strerror(rc));

	/* p2 stays silent: after node_timeout its rows are lost, p1's untouched */
	long long lost = sql_wait("select count(*) from objects where node_id = 'p2' and state = 'lost'", n2, 0,
				  LOST_TIMEOUT_MS + 10000);
	uint64_t took = kvn_now_ms() - t_spawn;
	is_int(lost, n2, "every row of p2 is marked lost");
	ok(took >= LOST_TIMEOUT_MS - 200, "after node_timeout (%llu ms after the start)", (unsigned long long)took);
	is_str(sql_text("select state from nodes where node_id = 'p2'", q, sizeof q) == 0 ? q : "?", "dead",
	       "p2 is dead in the nodes table");
	sql_text(p1_sql, p1_after, sizeof p1_after);
	ok(p1_before[0] && strcmp(p1_after, p1_before) == 0 && !strstr(p1_after, ":lost"),
	   "p1's rows stay live with their generations and commit order");

	int nf = 0, want_nf = 0;
	for (uint32_t i = 0; i < NS; i++) {
		if (on_p2[i] != 1)
			continue;
		want_nf++;
		rc = check_value(mc, "s", i, NULL);
		nf += rc == KVN_ENOTFOUND;
		if (rc != KVN_ENOTFOUND)
			tap_diag("s/%u on the dead p2: %s", i, kvn_strerror(rc));
	}
	ok(want_nf > 0 && nf == want_nf, "the dead node's keys answer KVN_ENOTFOUND (%d of %d)", nf, want_nf);
	bad = 0;
	for (uint32_t i = 0; i < 20; i++)
		bad += check_value(mc, "k2", i, NULL) != 0;
	for (uint32_t i = 0; i < NS; i++)
		bad += on_p2[i] == 0 && check_value(mc, "s", i, NULL) != 0;
	is_int(bad, 0, "p1's keys read back byte for byte");
	is_int(node_alive(mc, "p2"), 0, "stat shows p2 dead");
	is_int(node_alive(mc, "p1"), 1, "and p1 alive");

	/* p2 comes back after all (for the SIGTERM case) */
	pid_p2 = proc_spawn("p2c", args_p2);
	ok(wait_alive(mc, "p2", 1, 10000) == 0, "a dead node that returns is alive again");
	ok(proc_log_count("m3", "node p2 attached (it was declared dead)") == 1, "after a full sync");
}

/* SIGTERM every process while a workload runs: each exits 0, quickly. */
static void t_sigterm(void)
{
	struct writer *w = kvn_xcalloc(1, sizeof *w);
	int sm = -1, s1 = -1, s2 = -1;

	writer_start(w, "t");
	ok(wait_acked_since(w, 0, 100, 15000) == 0, "a put workload runs");
	uint64_t t0 = kvn_now_ms();
	signal_pid(pid_p1, SIGTERM);
	signal_pid(pid_p2, SIGTERM);
	signal_pid(pid_m, SIGTERM);
	int rm = proc_wait(pid_m, 10000, &sm), r1 = proc_wait(pid_p1, 10000, &s1),
	    r2 = proc_wait(pid_p2, 10000, &s2);
	uint64_t took = kvn_now_ms() - t0;
	ok(rm == 0 && exited_zero(sm), "the master exits 0 on SIGTERM (status %#x)", sm);
	ok(r1 == 0 && exited_zero(s1), "p1 exits 0 (status %#x)", s1);
	ok(r2 == 0 && exited_zero(s2), "p2 exits 0 (status %#x)", s2);
	ok(took <= 5000, "all three within %llu ms", (unsigned long long)took);
	ok(proc_log_count("m3", "stopped") == 1 && proc_log_count("p1", "stopped") == 1 &&
		   proc_log_count("p2c", "stopped") == 1,
	   "each says it stopped");
	writer_stop(w);
	uint64_t longest = 0;
	for (uint32_t i = 0; i < w->done; i++)
		if (w->rec[i].t1 - w->rec[i].t0 > longest)
			longest = w->rec[i].t1 - w->rec[i].t0;
	ok(longest <= CLIENT_TIMEOUT_MS + CALL_SLACK_MS, "no put of the workload outlived the deadline (%llu ms)",
	   (unsigned long long)longest);
	free(w->rec);
	free(w);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "start", t_start },
		{ "master_kill9", t_master_kill9 },
		{ "peer_kill9", t_peer_kill9 },
		{ "master_db", t_master_db },
		{ "sigterm", t_sigterm },
		{ NULL, NULL },
	};
	int rc;

	if (proc_init("restart") != 0)
		return 1;
	proc_logs_on_failure = 1;
	proc_watchdog(150); /* a hang fails the test and kills what it started */
	rc = tap_run(tests, argc, argv);
	kvn_close(mc);
	return rc;
}
