/* t/dbfail: master.db failing under real processes (a master and a peer,
 * each its own process, on loopback).
 *  - lock: an operator holds BEGIN IMMEDIATE on master.db from a second
 *    connection.  A durable put fails with KVN_EDB long before its deadline,
 *    the reason ("database is locked") in its detail; plain puts go on;
 *    once the lock is released durable puts succeed again and land in
 *    master.db; one log line when master.db degrades, one when it recovers.
 *  - diskfull (root only: a 2 MiB tmpfs in a private mount namespace holds
 *    the master's data_dir): filled up, plain puts go on, durable puts fail
 *    promptly with KVN_EDB, the log stays short; after space is freed
 *    durable puts succeed again without a restart, and a restart on the
 *    same directory works too.  Not root, or no mount: skipped, saying why. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "kvnode.h"
#include "proc.h"
#include "tap.h"

#define CLIENT_TIMEOUT_MS 8000
/* "promptly": the writer's busy timeout (1 s) plus scheduling slack on a
 * loaded 2-core VM; a put that waits for its deadline takes 8 s. */
#define PROMPT_MS 4000
#define RECOVER_MS 15000

struct setup {
	char name[16], pname[16];
	char data_m[300], db[340], conf_m[300], conf_p[300];
	pid_t pid_m, pid_p;
	struct kvn_client *c;
};

static struct setup lk, df;

static void start(struct setup *s, const char *name, const char *data_m)
{
	char data_p[300], extra[1200];
	uint16_t mp = proc_free_port(), pp = proc_free_port();
	const char *args_m[] = { "--role", "master", "--config", s->conf_m, NULL };
	char id[64];

	snprintf(s->name, sizeof s->name, "%s", name);
	snprintf(s->pname, sizeof s->pname, "%sp", name);
	snprintf(s->data_m, sizeof s->data_m, "%s", data_m);
	snprintf(s->db, sizeof s->db, "%s/master.db", data_m);
	snprintf(s->conf_m, sizeof s->conf_m, "%s/%s.conf", proc_tmp, name);
	snprintf(s->conf_p, sizeof s->conf_p, "%s/%sp.conf", proc_tmp, name);
	snprintf(extra, sizeof extra,
		 "[master]\nnode_timeout = 30s\n[client]\ntimeout = %ums\nretries = 0\n"
		 "[auth]\npeer_secret_file = %s/peer.secret\nclient_secret_file = %s/client.secret\n",
		 CLIENT_TIMEOUT_MS, data_m, data_m);
	proc_write_conf(s->conf_m, mp, pp, data_m, "64MiB", extra);
	snprintf(data_p, sizeof data_p, "%s/var-%sp", proc_tmp, name);
	proc_write_conf(s->conf_p, mp, pp, data_p, "64MiB", extra);
	s->pid_m = proc_spawn(name, args_m);
	ok(proc_wait_log(name, "kvnode ready", 1, 15000) == 0, "%s: master up", name);
	snprintf(id, sizeof id, "node.id=%s", s->pname);
	const char *args_p[] = { "--role", "peer", "--config", s->conf_p, "--set", id, NULL };
	s->pid_p = proc_spawn(s->pname, args_p);
	s->c = proc_connect_ready(s->conf_m, 1);
	ok(s->c != NULL, "%s: peer attached, client connected", name);
	if (!s->c)
		exit(1);
}

static int put(struct kvn_client *c, const char *key, unsigned flags, uint64_t *ms)
{
	uint64_t t0 = kvn_now_ms();
	int rc = kvn_put(c, key, strlen(key), key, strlen(key), flags);
	if (ms)
		*ms = kvn_now_ms() - t0;
	return rc;
}

/* 1 when key reads back as its own bytes. */
static int reads_back(struct kvn_client *c, const char *key)
{
	char buf[64];
	size_t vlen = 0;
	return kvn_get(c, key, strlen(key), buf, sizeof buf, &vlen) == 0 && vlen == strlen(key) &&
	       memcmp(buf, key, vlen) == 0;
}

/* Durable puts of key until one succeeds (master.db back, the node
 * re-synced): 0, or the last error after RECOVER_MS. */
static int durable_until_ok(struct kvn_client *c, const char *key)
{
	uint64_t until = kvn_now_ms() + RECOVER_MS;
	int rc;
	while ((rc = put(c, key, KVN_PUT_DURABLE, NULL)) != 0 && kvn_now_ms() < until)
		usleep(50000);
	return rc;
}

static long long rows_of(const char *db, const char *key)
{
	char sql[200];
	snprintf(sql, sizeof sql, "select count(*) from objects where key = cast('%s' as blob)", key);
	return proc_sql_int(db, sql);
}

static int log_lines(const char *name)
{
	return proc_log_count(name, "");
}

/* ---- lock ---- */

static void t_lock(void)
{
	sqlite3 *op = NULL;
	uint64_t ms = 0, until;
	int rc;

	char data_m[300];
	snprintf(data_m, sizeof data_m, "%s/var-m", proc_tmp);
	start(&lk, "m", data_m);
	is_int(put(lk.c, "d/before", KVN_PUT_DURABLE, NULL), 0, "durable put before the lock");

	/* the operator: sqlite3 shell style, small busy timeout (the master's
	 * writer may hold the lock for a moment: try again) */
	ok(sqlite3_open(lk.db, &op) == SQLITE_OK, "second connection to master.db");
	sqlite3_busy_timeout(op, 50);
	until = kvn_now_ms() + 5000;
	while ((rc = sqlite3_exec(op, "BEGIN IMMEDIATE", NULL, NULL, NULL)) != SQLITE_OK && kvn_now_ms() < until)
		usleep(10000);
	is_int(rc, SQLITE_OK, "operator holds BEGIN IMMEDIATE");

	rc = put(lk.c, "d/locked", KVN_PUT_DURABLE, &ms);
	is_int(rc, KVN_EDB, "durable put under the lock: KVN_EDB");
	ok(ms < PROMPT_MS, "promptly (%llu ms; deadline %u ms)", (unsigned long long)ms, CLIENT_TIMEOUT_MS);
	ok(strstr(kvn_last_detail(lk.c), "locked") != NULL, "the reason in the detail: %s", kvn_last_detail(lk.c));
	is_int(put(lk.c, "p/locked", 0, NULL), 0, "a plain put still succeeds");
	ok(reads_back(lk.c, "p/locked"), "and reads back");
	rc = put(lk.c, "d/locked2", KVN_PUT_DURABLE, &ms);
	is_int(rc, KVN_EDB, "a second durable put: KVN_EDB (%llu ms)", (unsigned long long)ms);
	ok(ms < PROMPT_MS, "promptly too");

	sqlite3_exec(op, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(op);
	is_int(durable_until_ok(lk.c, "d/after"), 0, "lock released: durable puts succeed again");
	is_int(rows_of(lk.db, "d/after"), 1, "and are in master.db");
	/* the node's full sync repaired what failed meanwhile */
	until = kvn_now_ms() + 5000;
	while (rows_of(lk.db, "p/locked") != 1 && kvn_now_ms() < until)
		usleep(50000);
	is_int(rows_of(lk.db, "p/locked"), 1, "the plain put made under the lock reached master.db");
	is_int(proc_log_count("m", "master.db degraded"), 1, "one line when master.db degraded");
	is_int(proc_log_count("m", "master.db recovered"), 1, "one line when it recovered");
}

/* ---- disk full ---- */

static char mnt[300];
static int mounted;

/* A private mount namespace and a 2 MiB tmpfs for the master's data_dir:
 * 0, or -1 with why filled in. */
static int tmpfs_setup(char *why, size_t cap)
{
	if (geteuid() != 0) {
		snprintf(why, cap, "not root: cannot mount a small tmpfs");
		return -1;
	}
	if (unshare(CLONE_NEWNS) != 0) {
		snprintf(why, cap, "unshare(CLONE_NEWNS): %s", strerror(errno));
		return -1;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
		snprintf(why, cap, "making / private: %s", strerror(errno));
		return -1;
	}
	snprintf(mnt, sizeof mnt, "%s/var-f", proc_tmp);
	if (mkdir(mnt, 0700) != 0 || mount("tmpfs", mnt, "tmpfs", 0, "size=2m,mode=0700") != 0) {
		snprintf(why, cap, "mount -t tmpfs %s: %s", mnt, strerror(errno));
		return -1;
	}
	mounted = 1;
	return 0;
}

static void tmpfs_done(void)
{
	if (mounted && umount2(mnt, MNT_DETACH) != 0)
		tap_diag("umount %s: %s", mnt, strerror(errno));
	mounted = 0;
}

/* Fill the file system holding dir: the bytes written. */
static long long fill(const char *path)
{
	static char buf[4096];
	long long n = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	memset(buf, 0x5a, sizeof buf);
	for (;;) {
		ssize_t w = write(fd, buf, sizeof buf);
		if (w <= 0)
			break;
		n += w;
	}
	/* and the last partial page */
	while (write(fd, buf, 1) == 1)
		n++;
	close(fd);
	return n;
}

/* Plain batches of new keys until a durable put fails (a WAL with room
 * left takes commits until it must grow): its error, and *ms its time. */
static int durable_fails(struct kvn_client *c, uint64_t *ms, int *batches)
{
	int rc = 0;
	for (*batches = 0; *batches < 40; (*batches)++) {
		struct kvn_item it[200];
		char keys[200][24];
		memset(it, 0, sizeof it);
		for (int j = 0; j < 200; j++) {
			it[j].klen = (size_t)snprintf(keys[j], sizeof keys[j], "fill/%d/%d", *batches, j);
			it[j].key = keys[j];
			it[j].val = keys[j];
			it[j].vlen = it[j].klen;
		}
		if (kvn_batch_put(c, it, 200, 0) != 0)
			return KVN_EINVAL; /* plain puts must keep working */
		char key[32];
		snprintf(key, sizeof key, "d/full/%d", *batches);
		if ((rc = put(c, key, KVN_PUT_DURABLE, ms)) != 0)
			return rc;
	}
	return 0;
}

static void t_diskfull(void)
{
	char why[700], filler[340];
	uint64_t ms = 0;
	int batches = 0, lines0, rc;

	if (tmpfs_setup(why, sizeof why) != 0) {
		tap_skip(12, why);
		return;
	}
	start(&df, "f", mnt);
	is_int(put(df.c, "d/f/before", KVN_PUT_DURABLE, NULL), 0, "durable put with room");
	snprintf(filler, sizeof filler, "%s/filler", mnt);
	ok(fill(filler) > 0, "tmpfs filled");
	lines0 = log_lines("f");

	rc = durable_fails(df.c, &ms, &batches);
	is_int(rc, KVN_EDB, "disk full: a durable put fails with KVN_EDB (after %d plain batches)", batches);
	ok(ms < PROMPT_MS, "promptly (%llu ms)", (unsigned long long)ms);
	ok(strstr(kvn_last_detail(df.c), "full") != NULL, "the reason in the detail: %s", kvn_last_detail(df.c));
	/* degraded for a while: puts keep coming, master.db keeps failing */
	uint64_t until = kvn_now_ms() + 3000;
	int plain_bad = 0, dur_ok = 0;
	for (int i = 0; kvn_now_ms() < until; i++) {
		char key[32];
		snprintf(key, sizeof key, "p/full/%d", i);
		plain_bad += put(df.c, key, 0, NULL) != 0;
		snprintf(key, sizeof key, "d/full2/%d", i);
		dur_ok += put(df.c, key, KVN_PUT_DURABLE, NULL) == 0;
		usleep(20000);
	}
	is_int(plain_bad, 0, "plain puts keep working from memory");
	is_int(dur_ok, 0, "no durable put succeeds while the disk is full");
	int lines = log_lines("f") - lines0;
	ok(lines <= 30, "the master's log stays short: %d lines over 3 s of failures", lines);
	is_int(proc_log_count("f", "master.db degraded"), 1, "one line when master.db degraded");

	unlink(filler);
	is_int(durable_until_ok(df.c, "d/f/after"), 0, "space freed: durable puts succeed again, no restart");
	ok(proc_log_count("f", "master.db recovered") == 1, "one line when it recovered");

	/* a restart on the same directory works too */
	int status = 0;
	proc_stop(df.pid_m, SIGTERM, 10000, &status);
	const char *args_m[] = { "--role", "master", "--config", df.conf_m, NULL };
	df.pid_m = proc_spawn("f2", args_m);
	ok(proc_wait_log("f2", "kvnode ready", 1, 15000) == 0, "master restarted on the tmpfs");
	is_int(durable_until_ok(df.c, "d/f/restarted"), 0, "durable puts after the restart");
	ok(reads_back(df.c, "p/full/0"), "a plain put made while the disk was full reads back");
	proc_stop(df.pid_m, SIGTERM, 10000, &status);
	proc_stop(df.pid_p, SIGTERM, 10000, &status);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "lock", t_lock },
		{ "diskfull", t_diskfull },
		{ NULL, NULL },
	};
	int rc;

	if (proc_init("dbfail") != 0)
		return 1;
	proc_logs_on_failure = 1;
	proc_watchdog(120);
	rc = tap_run(tests, argc, argv);
	kvn_close(lk.c);
	kvn_close(df.c);
	proc_kill_all();
	tmpfs_done();
	return rc;
}
