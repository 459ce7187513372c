/* t/restart_env.h: the cluster both crash-and-restart tests share (t/restart:
 * the master crashes, and a clean SIGTERM; t/restart_peer: peers that die):
 * a master and two peers, each its own kvnode process on loopback, one
 * client kept across every restart, values whose bytes follow from their
 * key, a put workload and readers in threads, master.db read from this
 * process and the cluster view through kvn_stat. */
#ifndef KVN_T_RESTART_ENV_H
#define KVN_T_RESTART_ENV_H

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
/* The log names of the running master and p2 (each restart is a new log),
 * so a case run alone checks the logs of the processes it has. */
static const char *log_m = "m", *log_p2 = "p2";
static struct kvn_client *mc; /* the main thread's client: kept across every restart */

/* ---- values: the bytes of key PREFIX/i follow from (prefix, i) ---- */

static inline size_t val_size(uint32_t i)
{
	return 1 + (size_t)(i * 2654435761u) % 8192;
}

static inline uint64_t val_seed(const char *prefix, uint32_t i)
{
	return ((uint64_t)(unsigned char)prefix[0] << 40) ^ ((uint64_t)(unsigned char)prefix[1] << 32) ^ i;
}

static inline int key_of(char *buf, size_t cap, const char *prefix, uint32_t i)
{
	return snprintf(buf, cap, "%s/%u", prefix, i);
}

/* 0 when PREFIX/i reads back as exactly its bytes, else the error (or
 * KVN_EPROTO for wrong bytes); *ms gets the call's duration. */
static inline int check_value(struct kvn_client *c, const char *prefix, uint32_t i, uint64_t *ms)
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

static inline int put_value(struct kvn_client *c, const char *prefix, uint32_t i, unsigned flags)
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
static inline int outage_error(int rc)
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

static inline void *writer_main(void *arg)
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

static inline void writer_start(struct writer *w, const char *prefix)
{
	memset(w, 0, sizeof *w);
	snprintf(w->prefix, sizeof w->prefix, "%s", prefix);
	w->rec = kvn_xcalloc(WMAX, sizeof *w->rec);
	if (pthread_create(&w->th, NULL, writer_main, w) != 0)
		kvn_fatal("pthread_create");
}

static inline void writer_stop(struct writer *w)
{
	__atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
	pthread_join(w->th, NULL);
}

/* Puts acknowledged that started at or after t (0: all). */
static inline uint32_t writer_acked_since(struct writer *w, uint64_t t)
{
	uint32_t n = __atomic_load_n(&w->done, __ATOMIC_ACQUIRE), acked = 0;
	for (uint32_t i = 0; i < n; i++)
		acked += w->rec[i].rc == 0 && w->rec[i].t0 >= t;
	return acked;
}

static inline int wait_acked_since(struct writer *w, uint64_t t, uint32_t want, uint64_t timeout_ms)
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

static inline void *reader_main(void *arg)
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
static inline int sql_text(const char *sql, char *buf, size_t cap)
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

static inline long long sql_int(const char *sql)
{
	return proc_sql_int(db, sql);
}

/* Wait until sql answers want (at_least: want or more), with a deadline;
 * returns the last answer. */
static inline long long sql_wait(const char *sql, long long want, int at_least, uint64_t timeout_ms)
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
static inline int sql_rows(const char *prefix, uint64_t *gens, int *on_p2, uint32_t n)
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
static inline int node_alive(struct kvn_client *c, const char *id)
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

static inline int wait_alive(struct kvn_client *c, const char *id, int want, uint64_t timeout_ms)
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
static inline void signal_pid(pid_t pid, int sig)
{
	if (pid > 0)
		kill(pid, sig);
}

static inline int exited_zero(int status)
{
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* ---- the cluster ---- */

static inline void restart_start(void)
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

	log_m = "m";
	log_p2 = "p2";
	pid_m = proc_spawn("m", args_m);
	ok(proc_wait_log("m", "kvnode ready", 1, 15000) == 0, "master up");
	pid_p1 = proc_spawn("p1", args_p1);
	pid_p2 = proc_spawn("p2", args_p2);
	mc = proc_connect_ready(conf_m, 2);
	ok(mc != NULL, "two peer processes attached, client connected");
	if (!mc)
		exit(1);
}

/* Cases start the cluster when run alone. */
static inline void restart_need_start(void)
{
	if (!mc)
		restart_start();
}

/* The main of both programs. */
static inline int restart_main(const char *name, const struct tap_test *tests, int argc, char **argv)
{
	int rc;

	if (proc_init(name) != 0)
		return 1;
	proc_logs_on_failure = 1;
	proc_watchdog(150); /* a hang fails the test and kills what it started */
	rc = tap_run(tests, argc, argv);
	kvn_close(mc);
	return rc;
}

#endif
