/*
 * t/tier_env.h: an in-process cluster for the disk tier's tests (t/tier_fault):
 * a real master (its own loop and SQLite writer threads, master.db in a temp
 * dir), one real peer with a disk tier on a loop thread of its own (its disk
 * writer on the same loop, so peer_disk_fault / peer_disk_stats reach it, or
 * on a loop of its own that a blocker actor can stall), the public client
 * library over authenticated loopback TCP, a probe actor that runs code on
 * the peer's loop, a log hook that keeps the lines to count, seeded values
 * and a put workload that records what was acknowledged.  Header-only like
 * tap.h: static inline, so a test that does not use a helper gets no
 * unused-function warning.
 */
#ifndef KVN_T_TIER_ENV_H
#define KVN_T_TIER_ENV_H

#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "actors/actor.h"
#include "auth/auth.h"
#include "base/base.h"
#include "kvnode.h"
#include "master/master.h"
#include "net/net.h"
#include "peer/peer.h"
#include "proc.h"
#include "store/disk.h"
#include "store/store.h"
#include "tap.h"

#define KIB (1u << 10)
#define MIB (1u << 20)
#define DRAM (2 * MIB)
#define VMAX (44 * KIB)
#define WAIT_MS 10000 /* every wait of this test has this deadline */

/* ---- the log: every line to stderr, and kept for log_count ---- */

#define LOG_MAX 20000
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char *log_lines[LOG_MAX];
static int log_n;

static inline void log_hook(int level, const char *line)
{
	fprintf(stderr, "%s\n", line);
	pthread_mutex_lock(&log_mu);
	if (log_n < LOG_MAX)
		log_lines[log_n++] = strdup(line);
	pthread_mutex_unlock(&log_mu);
	(void)level;
}

static inline int log_mark(void)
{
	pthread_mutex_lock(&log_mu);
	int n = log_n;
	pthread_mutex_unlock(&log_mu);
	return n;
}

/* Lines logged since mark that contain text. */
static inline int log_count(int mark, const char *text)
{
	int n = 0;
	pthread_mutex_lock(&log_mu);
	for (int i = mark; i < log_n; i++)
		n += log_lines[i] && strstr(log_lines[i], text) != NULL;
	pthread_mutex_unlock(&log_mu);
	return n;
}

/* ---- running code on the peer's loop (the peer's accessors are loop
 * thread only): a probe actor there runs a function the message names ---- */

struct job {
	void (*fn)(void *);
	void *arg;
	int done;
};

static inline int probe_handle(struct actor *self, struct actor_msg *m)
{
	struct job *j;
	(void)self;
	memcpy(&j, m->meta, sizeof j);
	j->fn(j->arg);
	__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
	return 0;
}

static const struct actor_ops probe_ops = { .name = "t-probe", .handle = probe_handle };

/* A blocker on the disk writer's own loop (case lease): while `block_on`
 * its loop runs nothing else, so disk requests wait in the mailbox. */
static int block_on, block_in;

static inline int blocker_handle(struct actor *self, struct actor_msg *m)
{
	uint64_t until = kvn_now_ms() + WAIT_MS;
	(void)self;
	(void)m;
	__atomic_store_n(&block_in, 1, __ATOMIC_RELEASE);
	while (__atomic_load_n(&block_on, __ATOMIC_ACQUIRE) && kvn_now_ms() < until)
		usleep(1000);
	__atomic_store_n(&block_in, 0, __ATOMIC_RELEASE);
	return 0;
}

static const struct actor_ops blocker_ops = { .name = "t-blocker", .handle = blocker_handle };

/* ---- the cluster ---- */

static struct {
	struct actor_loop *ml, *dl, *pl, *kl; /* kl: the disk writer's own loop, or NULL */
	struct actor *peer;
	actor_id mid, probe, blocker;
	struct net_listener *mlst, *plst;
	struct kvn_client *c;
	struct peer_opts po;
	char dir[400], mdb[450], ddir[450], pdb[450], maddr[64], padv[64];
} C;
static struct auth_keyring kr;
static struct auth_policy pol_m, pol_p;
static char secret[400];

static inline void on_loop(void (*fn)(void *), void *arg)
{
	struct job j = { .fn = fn, .arg = arg }, *jp = &j;
	struct actor_msg *m = actor_msg_new(1);
	uint64_t until = kvn_now_ms() + WAIT_MS;

	m->meta = kvn_xmalloc(sizeof jp);
	memcpy(m->meta, &jp, sizeof jp);
	m->meta_len = sizeof jp;
	if (actor_send(C.probe, m) != 0)
		kvn_fatal("the probe on the peer's loop is gone");
	while (!__atomic_load_n(&j.done, __ATOMIC_ACQUIRE))
		if (kvn_now_ms() > until)
			kvn_fatal("the peer's loop did not run the probe within %d ms", WAIT_MS);
		else
			usleep(200);
}

struct snap {
	struct peer_tier_stats t;
	struct disk_stats d;
	struct keytab_stats k;
	int drc;
};

static inline void snap_fn(void *arg)
{
	struct snap *s = arg;
	peer_get_tier_stats(C.peer, &s->t);
	s->drc = peer_disk_stats(C.peer, &s->d);
	peer_keytab_stats(C.peer, &s->k);
}

static inline struct snap snap(void)
{
	struct snap s;
	memset(&s, 0, sizeof s);
	on_loop(snap_fn, &s);
	return s;
}

struct fault {
	int op, err, rc;
	uint32_t skip, count;
};

static inline void fault_fn(void *arg)
{
	struct fault *f = arg;
	f->rc = peer_disk_fault(C.peer, f->op, f->skip, f->count, f->err);
}

static inline int inject(int op, uint32_t skip, uint32_t count, int err)
{
	struct fault f = { .op = op, .err = err, .skip = skip, .count = count };
	on_loop(fault_fn, &f);
	return f.rc;
}

static inline void once(void)
{
	static int done;
	char err[256];
	if (done)
		return;
	done = 1;
	snprintf(secret, sizeof secret, "%s/client.secret", proc_tmp);
	if (auth_keygen(secret, err, sizeof err) != 0 || auth_keyring_load(&kr, secret, err, sizeof err) != 0)
		kvn_fatal("client secret: %s", err);
	pol_m.client = &kr;
	snprintf(pol_m.server_id, sizeof pol_m.server_id, "m");
	pol_p.client = &kr;
	snprintf(pol_p.server_id, sizeof pol_p.server_id, "p1");
}

static inline void peer_up(int own_disk_loop)
{
	struct net_opts no;
	struct actor *a;
	char err[512] = "";

	C.pl = actor_loop_new("t-peer");
	actor_spawn(C.pl, &probe_ops, NULL, 64, &a);
	C.probe = actor_id_of(a);
	C.po.disk_loop = NULL;
	if (own_disk_loop) {
		C.kl = actor_loop_new("t-disk");
		actor_spawn(C.kl, &blocker_ops, NULL, 64, &a);
		C.blocker = actor_id_of(a);
		C.po.disk_loop = C.kl;
	}
	snprintf(C.padv, sizeof C.padv, "127.0.0.1:%u", proc_free_port());
	C.po.advertise = C.padv;
	if (peer_start(C.pl, &C.po, &C.peer, err, sizeof err) != 0)
		kvn_fatal("peer_start: %s", err);
	peer_set_master(C.peer, C.mid);
	net_opts_default(&no);
	if (net_listen(C.peer, C.padv, &pol_p, &no, &C.plst, err, sizeof err) != 0)
		kvn_fatal("peer listen: %s", err);
	if (C.kl)
		actor_loop_start(C.kl);
	actor_loop_start(C.pl);
}

/* Stop the peer's loop: no leave, no flush, pending answers dropped (what
 * a crash leaves on disk).  The disk writer's own loop goes first: its
 * writes read the peer's arena. */
static inline void peer_down(void)
{
	if (C.kl) {
		actor_loop_stop(C.kl);
		actor_loop_join(C.kl);
	}
	actor_loop_stop(C.pl);
	actor_loop_join(C.pl);
	net_listener_free(C.plst);
	actor_loop_free(C.pl);
	if (C.kl)
		actor_loop_free(C.kl);
	C.pl = C.kl = NULL;
	C.plst = NULL;
	C.peer = NULL;
}

/* A client of <dir>/<name>.conf: the cluster's plus extra [client] lines. */
static inline struct kvn_client *client_new_conf(const char *name, const char *extra)
{
	char path[600];
	struct kvn_client *c = NULL;
	struct kvn_options o = { .config_path = path };
	FILE *f;
	int rc;

	snprintf(path, sizeof path, "%s/%s.conf", C.dir, name);
	if (!(f = fopen(path, "w")))
		kvn_fatal("cannot write %s", path);
	fprintf(f, "[auth]\nclient_secret_file = %s\n[client]\nmaster = %s\ntimeout = 5s\n%s", secret, C.maddr,
		extra);
	fclose(f);
	if ((rc = kvn_connect(&o, &c)) != 0)
		kvn_fatal("kvn_connect: %s (%s)", kvn_strerror(rc), kvn_last_detail(NULL));
	return c;
}

static inline struct kvn_client *client_new(void)
{
	return client_new_conf("client", "");
}

/* Wait until the master counts a peer attached. */
static inline int wait_peer(struct kvn_client *c)
{
	uint64_t until = kvn_now_ms() + WAIT_MS, rtt;
	uint32_t peers = 0;
	while ((kvn_ping(c, &rtt, &peers) != 0 || peers < 1) && kvn_now_ms() < until)
		usleep(20000);
	return peers >= 1 ? 0 : -1;
}

/* A master, a peer with dram bytes of DRAM (4 KiB pages) and a disk tier
 * of disk bytes in <tmp>/<name>/disk, and a client. */
static inline void cluster_up(const char *name, uint64_t dram, uint64_t disk, int force_evict, int own_disk_loop)
{
	struct master_opts mo;
	struct net_opts no;
	struct actor *m;
	char err[512] = "";

	once();
	memset(&C, 0, sizeof C);
	snprintf(C.dir, sizeof C.dir, "%s/%s", proc_tmp, name);
	if (mkdir(C.dir, 0700) != 0)
		kvn_fatal("mkdir %s", C.dir);
	snprintf(C.mdb, sizeof C.mdb, "%s/master.db", C.dir);
	snprintf(C.ddir, sizeof C.ddir, "%s/disk", C.dir);
	snprintf(C.pdb, sizeof C.pdb, "%s/peer.db", C.dir);

	memset(&mo, 0, sizeof mo);
	mo.db_path = C.mdb;
	mo.server_id = "m";
	mo.node_timeout_ms = 60000; /* a restarted peer re-attaches long before */
	mo.mailbox = 4096;
	mo.max_value_size = MIB;
	C.ml = actor_loop_new("t-master");
	C.dl = actor_loop_new("t-db");
	if (master_start(C.ml, C.dl, &mo, &m, err, sizeof err) != 0)
		kvn_fatal("master_start: %s", err);
	C.mid = actor_id_of(m);
	net_opts_default(&no);
	if (net_listen(m, "127.0.0.1:0", &pol_m, &no, &C.mlst, err, sizeof err) != 0)
		kvn_fatal("master listen: %s", err);
	snprintf(C.maddr, sizeof C.maddr, "127.0.0.1:%u", net_listener_port(C.mlst));
	actor_loop_start(C.ml);
	actor_loop_start(C.dl);

	C.po = (struct peer_opts){
		.node_id = "p1", .dram_size = dram, .page_size = 4096, .heartbeat_ms = 50,
		.pending_ttl_ms = 5000, .read_lease_ttl_ms = 30000, .max_value_size = MIB, .mailbox = 4096,
		.call_timeout_ms = 5000, .evict = KVN_EVICT_LRU, .offload = KVN_OFFLOAD_AUTO,
		/* the keys' defaults: a zero low watermark would evict to empty */
		.high_watermark = 950000, .low_watermark = 850000,
		.force_evict = force_evict, .disk_dir = C.ddir, .disk_db = C.pdb, .disk_size = disk,
	};
	peer_up(own_disk_loop);

	C.c = client_new();
	if (wait_peer(C.c) != 0)
		kvn_fatal("the peer did not attach within %d ms", WAIT_MS);
}

static inline void cluster_down(void)
{
	kvn_close(C.c);
	C.c = NULL;
	peer_down();
	actor_loop_stop(C.ml);
	actor_loop_join(C.ml);
	actor_loop_stop(C.dl);
	actor_loop_join(C.dl);
	net_listener_free(C.mlst);
	actor_loop_free(C.ml);
	actor_loop_free(C.dl);
}

/* ---- values: key "<prefix>/<i>", size and bytes follow from (prefix, i) ---- */

static inline size_t vsize(int i)
{
	return 4 * KIB + ((uint32_t)i * 2654435761u) % (VMAX - 4 * KIB);
}

static inline uint64_t vseed(const char *prefix, int i)
{
	return XXH3_64bits(prefix, strlen(prefix)) ^ (uint64_t)i;
}

static inline int key_of(char *k, size_t cap, const char *prefix, int i)
{
	return snprintf(k, cap, "%s/%d", prefix, i);
}

static uint8_t vbuf[MIB], gbuf[MIB];

/* Put value i of prefix (size sz, 0: vsize(i)); its generation in *gen. */
static inline int put_i(struct kvn_client *c, const char *prefix, int i, size_t sz, uint64_t *gen)
{
	struct kvn_put_opts o = { 0 };
	char k[64];
	int kl = key_of(k, sizeof k, prefix, i), rc;
	if (!sz)
		sz = vsize(i);
	proc_fill(vbuf, sz, vseed(prefix, i));
	rc = kvn_put_opts(c, k, (size_t)kl, vbuf, sz, &o);
	if (gen)
		*gen = rc == 0 ? o.gen : 0;
	return rc;
}

/* 0: value i reads back byte for byte; KVN_EPROTO: other bytes (never
 * acceptable); else the get's error. */
static inline int check_i(struct kvn_client *c, const char *prefix, int i, size_t sz)
{
	static uint8_t want[MIB];
	char k[64];
	size_t vlen = 0;
	int kl = key_of(k, sizeof k, prefix, i);
	if (!sz)
		sz = vsize(i);
	int rc = kvn_get(c, k, (size_t)kl, gbuf, sizeof gbuf, &vlen);
	if (rc)
		return rc;
	proc_fill(want, sz, vseed(prefix, i));
	return vlen == sz && memcmp(want, gbuf, sz) == 0 ? 0 : KVN_EPROTO;
}

/* The file of (key, gen) under the disk dir. */
static inline void file_of(char *path, size_t cap, const char *prefix, int i, uint64_t gen)
{
	char k[64];
	int kl = key_of(k, sizeof k, prefix, i);
	uint64_t h = XXH3_64bits(k, (size_t)kl);
	snprintf(path, cap, "%s/%02x/%016llx.g%016llx", C.ddir, (unsigned)(h >> 56), (unsigned long long)h,
		 (unsigned long long)gen);
}

static inline int exists(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0;
}

/* Files in the disk dir's 2-hex folders: temp files, and the rest. */
static inline void scan_disk(int *tmp, int *data)
{
	DIR *top = opendir(C.ddir), *sd;
	struct dirent *t, *f;
	char path[700];
	*tmp = *data = 0;
	if (!top)
		return;
	while ((t = readdir(top))) {
		if (strlen(t->d_name) != 2 || t->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", C.ddir, t->d_name);
		if (!(sd = opendir(path)))
			continue;
		while ((f = readdir(sd))) {
			size_t n = strlen(f->d_name);
			if (f->d_name[0] == '.')
				continue;
			if (n > 4 && strcmp(f->d_name + n - 4, ".tmp") == 0)
				(*tmp)++;
			else
				(*data)++;
		}
		closedir(sd);
	}
	closedir(top);
}

static inline int count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;
	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* ---- a workload of n distinct keys ---- */

struct wl {
	const char *prefix;
	int n, acked, failed, nospace, other;
	int other_rc;       /* the first failure that is not "no room" */
	int first_fail;     /* index of the first failed put, -1: none */
	uint8_t *ok;        /* per key: acknowledged */
	uint64_t *gen;
};

static inline int no_room(int rc)
{
	return rc == KVN_EFULL || rc == KVN_ENOSPC;
}

/* Put keys [from, to) of w; stop after `stop_after` failures (0: never). */
static inline void wl_run(struct wl *w, int from, int to, int stop_after)
{
	for (int i = from; i < to && i < w->n; i++) {
		int rc = put_i(C.c, w->prefix, i, 0, &w->gen[i]);
		if (rc == 0) {
			w->ok[i] = 1;
			w->acked++;
			continue;
		}
		if (w->first_fail < 0)
			w->first_fail = i;
		w->failed++;
		if (no_room(rc)) {
			w->nospace++;
		} else if (!w->other++) {
			w->other_rc = rc;
		}
		if (stop_after && w->failed >= stop_after)
			break;
	}
}

static inline void wl_init(struct wl *w, const char *prefix, uint64_t bytes)
{
	memset(w, 0, sizeof *w);
	w->prefix = prefix;
	w->first_fail = -1;
	for (uint64_t b = 0; b < bytes; w->n++)
		b += vsize(w->n);
	w->ok = kvn_xcalloc((size_t)w->n, 1);
	w->gen = kvn_xcalloc((size_t)w->n, sizeof *w->gen);
}

static inline void wl_free(struct wl *w)
{
	free(w->ok);
	free(w->gen);
}

/* Read back every acknowledged key: how many came back exact, NOT_FOUND,
 * and anything else (wrong bytes, another error). */
static inline void wl_check(struct wl *w, int *exact, int *gone, int *bad)
{
	*exact = *gone = *bad = 0;
	for (int i = 0; i < w->n; i++) {
		if (!w->ok[i])
			continue;
		int rc = check_i(C.c, w->prefix, i, 0);
		if (rc == 0)
			(*exact)++;
		else if (rc == KVN_ENOTFOUND)
			(*gone)++;
		else if ((*bad)++ == 0)
			tap_diag("%s/%d: %s", w->prefix, i, rc == KVN_EPROTO ? "WRONG BYTES" : kvn_strerror(rc));
	}
}

#endif
