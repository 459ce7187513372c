/*
 * t/sim_world.c: one seed of the deterministic simulation.  Owns the
 * simulated cluster on one virtual-time loop (master + SQLite writer, the
 * peers, the clients, the simulated network), the fault schedule drawn from
 * the seed (network fault rates; crash and restart of the master or a peer;
 * partitions) played by a director actor's timers, the heal that ends the
 * fault window (everything restarted and relinked over a fault-free
 * network), the quiet period, and the hand-over to the checker.
 */
#include "config.h"

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "sim.h"

#include "master/master.h"
#include "peer/peer.h"
#include "auth/auth.h"
#include "base/base.h"

#define SIM_T0 1000000ull          /* virtual start: far from 0 */
#define SIM_EVENT_BUDGET 3000000ull /* timers one seed may fire: a livelock guard */
#define SIM_NODE_TIMEOUT_MS 1000
#define SIM_HEARTBEAT_MS 50
#define SIM_QUIET_MS 4000          /* after the last operation's deadline */
#define SIM_DISK_SIZE (64ull << 20) /* never full: eviction always finds room on disk */
#define SIM_OFFLOAD_QUEUE 4         /* small: victims are skipped while it is full */

enum sim_act_kind {
	ACT_MASTER_CRASH,
	ACT_MASTER_RESTART,
	ACT_PEER_CRASH,
	ACT_PEER_RESTART,
	ACT_PART_ON,
	ACT_PART_OFF,
	ACT_HEAL,
	ACT_CHECK,
};

struct sim_action {
	struct sim_world *w;
	int kind, arg;
	uint64_t t;
	struct actor_timer *tm;
};

/* ---- randomness, reports ---- */

uint64_t sim_rand(struct sim_world *w)
{
	/* splitmix64: the schedule and the workload; the network has its own */
	uint64_t z = (w->rng += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint64_t rnd(struct sim_world *w, uint64_t n)
{
	return n ? sim_rand(w) % n : 0;
}

const char *sim_rule_name(int r)
{
	static const char *const names[SIM_RULES] = {
		"a: get bytes", "b: acknowledged put kept", "c: read-your-writes",
		"d: deadlines", "e: index == union, no leaks", "f: run", "g: linearizable",
		"h: consumer queue",
	};
	return r >= 0 && r < SIM_RULES ? names[r] : "?";
}

void sim_violation(struct sim_world *w, int r, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	w->viol[r]++;
	if (w->verbose)
		printf("# t=%llu VIOLATION rule %s: %s\n", (unsigned long long)kvn_now_ms(), sim_rule_name(r), msg);
	/* the first few are enough to start from; the counts say the rest */
	if (w->report_len + 200 < sizeof w->report) {
		int n = snprintf(w->report + w->report_len, sizeof w->report - w->report_len,
				 "seed %llu, rule %s, t=%llu: %s\n", (unsigned long long)w->seed, sim_rule_name(r),
				 (unsigned long long)kvn_now_ms(), msg);
		if (n > 0)
			w->report_len += (size_t)n < sizeof w->report - w->report_len
						 ? (size_t)n
						 : sizeof w->report - w->report_len - 1;
	}
}

void sim_trace(struct sim_world *w, const char *fmt, ...)
{
	va_list ap;
	if (!w->verbose)
		return;
	printf("# t=%llu: ", (unsigned long long)kvn_now_ms());
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

int sim_peer_index(const char *node_id)
{
	if (node_id[0] == 'p' && node_id[1] >= '1' && node_id[1] < '1' + SIM_PEERS && node_id[2] == '\0')
		return node_id[1] - '1';
	return -1;
}

/* ---- the cluster ---- */

static int start_master(struct sim_world *w)
{
	struct master_opts o = {
		.db_path = w->db,
		.server_id = "sim-master",
		.node_timeout_ms = SIM_NODE_TIMEOUT_MS,
		.mailbox = 4096,
		.max_value_size = 1u << 20,
	};
	char err[512] = "";
	int rc = master_start(w->loop, w->loop, &o, &w->master, err, sizeof err);
	if (rc) {
		sim_violation(w, SIM_RULE_F, "master_start: %s", err);
		return rc;
	}
	w->master_up = 1;
	w->master_inc++;
	if (w->master_inc < SIM_MAX_CRASHES + 2)
		w->master_boot_t[w->master_inc] = kvn_now_ms();
	return 0;
}

/* Peer i's own directory under the world's: peer.db and disk/, kept
 * across its crashes (a crash loses DRAM, not the disk). */
static void peer_paths(const struct sim_world *w, int i, char *dir, char *db, size_t cap)
{
	snprintf(dir, cap, "%s/p%d/disk", w->dir, i + 1);
	snprintf(db, cap, "%s/p%d/peer.db", w->dir, i + 1);
}

static int start_peer(struct sim_world *w, int i)
{
	char id[16], addr[24], err[256] = "", ddir[400], ddb[400], pdir[320];
	snprintf(id, sizeof id, "p%d", i + 1);
	snprintf(addr, sizeof addr, "sim:p%d", i + 1);
	peer_paths(w, i, ddir, ddb, sizeof ddir);
	struct peer_opts o = {
		.node_id = id,
		.advertise = addr,
		.dram_size = 128u << 10, /* small: freed pages are reused soon */
		.page_size = 4096,
		.heartbeat_ms = SIM_HEARTBEAT_MS,
		.pending_ttl_ms = 500,
		.read_lease_ttl_ms = 1000,
		.max_value_size = 1u << 20,
		.mailbox = 4096,
		.call_timeout_ms = 300,
		.unsafe_forget_unacked = w->unsafe == SIM_UNSAFE_FORGET,
		/* the checker's rules hold for a store that keeps what it
		 * acknowledged: no eviction without a disk tier */
		.evict = KVN_EVICT_NONE,
	};
	if (w->disk) {
		/* Eviction to disk, never dropping (force_evict off): an
		 * acknowledged value leaves DRAM only once it is on disk, so
		 * rule b holds while the peer lives and, for what peer.db
		 * holds, across its crashes.  The disk writer runs on this
		 * loop (disk_loop NULL): a seed replays exactly. */
		snprintf(pdir, sizeof pdir, "%s/p%d", w->dir, i + 1);
		if (mkdir(pdir, 0700) < 0 && errno != EEXIST) {
			sim_violation(w, SIM_RULE_F, "mkdir %s: %s", pdir, strerror(errno));
			return KVN_EIO;
		}
		o.evict = KVN_EVICT_LRU;
		o.offload = KVN_OFFLOAD_ON_EVICT;
		o.force_evict = 0;
		o.promote_on_hit = w->promote;
		o.offload_queue_limit = SIM_OFFLOAD_QUEUE;
		/* low watermarks: most values go to disk at some point */
		o.high_watermark = 500000;
		o.low_watermark = 300000;
		o.disk_dir = ddir;
		o.disk_db = ddb;
		o.disk_size = SIM_DISK_SIZE;
		o.disk_loop = NULL;
	}
	int rc = peer_start(w->loop, &o, &w->peers[i], err, sizeof err);
	if (rc) {
		sim_violation(w, SIM_RULE_F, "peer_start p%d: %s", i + 1, err);
		return rc;
	}
	w->peer_up[i] = 1;
	w->peer_inc[i]++;
	if (w->peer_inc[i] < SIM_MAX_CRASHES + 2) {
		w->boot_t[i][w->peer_inc[i]] = kvn_now_ms();
		w->boot_q[i][w->peer_inc[i]] = ++w->qseq;
	}
	return 0;
}

static void link_peer(struct sim_world *w, int i)
{
	actor_id px;
	if (!w->master_up || !w->peer_up[i])
		return;
	if (net_sim_connect(w->cur, w->peers[i], SIM_NODE_PEER(i), actor_id_of(w->master), SIM_NODE_MASTER,
			    AUTH_ROLE_PEER, &px) != 0)
		kvn_fatal("net_sim_connect failed");
	peer_set_master(w->peers[i], px);
}

/* Link client c, and the queue actor of its node, to the master (peer -1)
 * or to peer i, when it is up. */
static void link_client(struct sim_world *w, int c, int peer)
{
	struct actor *to = peer < 0 ? (w->master_up ? w->master : NULL) : (w->peer_up[peer] ? w->peers[peer] : NULL);
	int to_node = peer < 0 ? SIM_NODE_MASTER : SIM_NODE_PEER(peer);
	actor_id px;
	if (!to)
		return;
	if (net_sim_connect(w->cur, sim_client_actor(w->clients[c]), SIM_NODE_CLIENT(c), actor_id_of(to), to_node,
			    AUTH_ROLE_CLIENT, &px) != 0)
		kvn_fatal("net_sim_connect failed");
	sim_client_link(w->clients[c], peer, px);
	if (!w->qcs[c])
		return;
	if (net_sim_connect(w->cur, sim_qc_actor(w->qcs[c]), SIM_NODE_CLIENT(c), actor_id_of(to), to_node,
			    AUTH_ROLE_CLIENT, &px) != 0)
		kvn_fatal("net_sim_connect failed");
	sim_qc_link(w->qcs[c], peer, px);
}

static void link_all(struct sim_world *w)
{
	for (int i = 0; i < SIM_PEERS; i++)
		link_peer(w, i);
	for (int c = 0; c < SIM_CLIENTS; c++)
		for (int p = -1; p < SIM_PEERS; p++)
			link_client(w, c, p);
}

static void note_crash(struct sim_world *w, int node, int inc)
{
	if (w->ncrashes < SIM_MAX_CRASHES)
		w->crashes[w->ncrashes++] = (struct sim_crash){ .node = node, .inc = inc, .t = kvn_now_ms(), .q = ++w->qseq };
	else
		sim_violation(w, SIM_RULE_F, "more than %d crashes scheduled", SIM_MAX_CRASHES);
}

/* What master.db holds for each key once the master crashed: what the next
 * master loads (rows of dead nodes too: they may come back). */
static void note_db(struct sim_world *w)
{
	struct sim_crash *c = &w->crashes[w->ncrashes - 1];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	if (w->ncrashes == 0 || c->node != -1)
		return;
	if (sqlite3_open_v2(w->db, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT gen FROM objects WHERE key = ?1", -1, &st, NULL) != SQLITE_OK) {
		sim_violation(w, SIM_RULE_F, "master.db unreadable after the master's crash: %s",
			      db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return;
	}
	for (int k = 0; k < SIM_KEYS; k++) {
		char name[8];
		sim_key_name(k, name);
		sqlite3_bind_blob(st, 1, name, (int)strlen(name), SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			c->db_gen[k] = (uint64_t)sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* What peer i's peer.db holds once it crashed: what its next incarnation
 * recovers (docs/disk-tier.md, Recovery).  Rows are written only after
 * their file is durable and no disk fault is injected, so every row
 * recovers. */
static void note_disk(struct sim_world *w, int i)
{
	struct sim_crash *c = &w->crashes[w->ncrashes - 1];
	char ddir[400], ddb[400];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	if (!w->disk || w->ncrashes == 0 || c->node != i)
		return;
	peer_paths(w, i, ddir, ddb, sizeof ddir);
	if (sqlite3_open_v2(ddb, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT key, gen FROM disk_files", -1, &st, NULL) != SQLITE_OK) {
		sim_violation(w, SIM_RULE_F, "p%d's peer.db unreadable after its crash: %s", i + 1,
			      db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *k = sqlite3_column_blob(st, 0);
		int klen = sqlite3_column_bytes(st, 0), key = -1;
		uint64_t gen = (uint64_t)sqlite3_column_int64(st, 1);
		if (klen == 3 && k[0] == 'k' && k[1] >= '0' && k[1] <= '9' && k[2] >= '0' && k[2] <= '9')
			key = (k[1] - '0') * 10 + (k[2] - '0');
		if (k && sim_qkey(k, (size_t)klen))
			continue; /* a queue sample: rule h follows those */
		if (key < 0 || key >= SIM_KEYS) {
			sim_violation(w, SIM_RULE_E, "p%d's peer.db holds an unknown key of %d bytes", i + 1, klen);
			continue;
		}
		if (gen > c->disk_gen[key])
			c->disk_gen[key] = gen;
		c->disk_rows++;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (c->disk_rows) {
		w->n_disk_crash++;
		w->n_disk_rows += (uint64_t)c->disk_rows;
	}
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* SIM_UNSAFE_WIPE_DISK: the disk forgets what peer.db said it held. */
static void wipe_disk(struct sim_world *w, int i)
{
	char pdir[320];
	snprintf(pdir, sizeof pdir, "%s/p%d", w->dir, i + 1);
	(void)nftw(pdir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void add_tier_stats(struct sim_world *w, struct actor *peer)
{
	struct peer_tier_stats ts;
	if (!w->disk)
		return;
	peer_get_tier_stats(peer, &ts);
	w->n_offloaded += ts.offloaded;
	w->n_disk_gets += ts.disk_gets;
}

/* ---- the director: the schedule's actions, on the loop's clock ---- */

/* Partitions, for the linearizability check (a peer cut off long enough
 * is declared dead: its values leave routing until it re-attaches). */
static void note_cut(struct sim_world *w, int node, int on)
{
	if (on) {
		if (w->ncuts < SIM_MAX_CUTS)
			w->cuts[w->ncuts++] = (struct sim_cut){ node, kvn_now_ms(), 0, ++w->qseq, 0 };
		else
			sim_violation(w, SIM_RULE_F, "more than %d partitions scheduled", SIM_MAX_CUTS);
		return;
	}
	for (int i = 0; i < w->ncuts; i++)
		if ((node < 0 || w->cuts[i].node == node) && !w->cuts[i].off) {
			w->cuts[i].off = kvn_now_ms();
			w->cuts[i].q_off = ++w->qseq;
		}
}

static void heal(struct sim_world *w)
{
	w->workload_on = 0;
	note_cut(w, -1, 0);
	for (int s = 0; s < w->nsims; s++)
		for (int n = 0; n < SIM_NODE_CLIENT(SIM_CLIENTS); n++)
			net_sim_partition(w->sims[s], n, 0);
	memset(w->cut, 0, sizeof w->cut);
	if (!w->master_up)
		(void)start_master(w);
	for (int i = 0; i < SIM_PEERS; i++)
		if (!w->peer_up[i])
			(void)start_peer(w, i);
	/* A fault-free network for everything from now on: new links, as
	 * after reconnecting.  The old links still deliver what is in flight. */
	w->cur = net_sim_new(w->seed * 31 + 7, NULL);
	w->sims[w->nsims++] = w->cur;
	link_all(w);
	/* the queue's consumers drain it from now on */
	w->qdrain = 1;
	for (int c = 0; c < SIM_CLIENTS && w->queue; c++)
		sim_qc_start(w->qcs[c], 0);
	sim_trace(w, "heal: faults off, everything up and relinked");
}

static void act_fire(struct actor *self, void *arg)
{
	struct sim_action *a = arg;
	struct sim_world *w = a->w;
	int i = a->arg;
	(void)self;

	switch (a->kind) {
	case ACT_MASTER_CRASH:
		if (!w->master_up)
			break;
		sim_trace(w, "crash: master");
		note_crash(w, -1, w->master_inc);
		master_crash(w->master);
		note_db(w);
		w->master = NULL;
		w->master_up = 0;
		w->n_master_crash++;
		break;
	case ACT_MASTER_RESTART:
		if (w->master_up || start_master(w) != 0)
			break;
		sim_trace(w, "restart: master (a new epoch)");
		for (int p = 0; p < SIM_PEERS; p++)
			link_peer(w, p);
		for (int c = 0; c < SIM_CLIENTS; c++)
			link_client(w, c, -1);
		break;
	case ACT_PEER_CRASH:
		if (!w->peer_up[i])
			break;
		sim_trace(w, "crash: p%d", i + 1);
		note_crash(w, i, w->peer_inc[i]);
		add_tier_stats(w, w->peers[i]);
		actor_destroy(w->peers[i]);
		note_disk(w, i);
		if (w->unsafe == SIM_UNSAFE_WIPE_DISK)
			wipe_disk(w, i);
		w->peers[i] = NULL;
		w->peer_up[i] = 0;
		w->n_peer_crash++;
		break;
	case ACT_PEER_RESTART:
		if (w->peer_up[i] || start_peer(w, i) != 0)
			break;
		sim_trace(w, "restart: p%d (a new boot)", i + 1);
		link_peer(w, i);
		for (int c = 0; c < SIM_CLIENTS; c++)
			link_client(w, c, i);
		break;
	case ACT_PART_ON:
		if (w->cut[i]++ == 0) {
			sim_trace(w, "partition: node %d cut off", i);
			note_cut(w, i, 1);
			net_sim_partition(w->cur, i, 1);
			w->n_partition++;
		}
		break;
	case ACT_PART_OFF:
		if (w->cut[i] > 0 && --w->cut[i] == 0) {
			sim_trace(w, "partition: node %d back", i);
			note_cut(w, i, 0);
			net_sim_partition(w->cur, i, 0);
		}
		break;
	case ACT_HEAL:
		heal(w);
		break;
	case ACT_CHECK:
		sim_trace(w, "quiet: the checker reads every key");
		sim_client_check_all(w->clients[0]);
		break;
	}
}

static int director_handle(struct actor *self, struct actor_msg *m)
{
	(void)self;
	(void)m;
	return 0;
}

static const struct actor_ops director_ops = { .name = "sim-director", .handle = director_handle };

static void act_add(struct sim_world *w, int kind, int arg, uint64_t t)
{
	struct sim_action *a = &w->acts[w->nacts++];
	a->w = w;
	a->kind = kind;
	a->arg = arg;
	a->t = t;
	a->tm = actor_timer_new(w->director, act_fire, a);
	actor_timer_arm(a->tm, t - kvn_now_ms());
}

/* The seed decides the network's fault rates and the schedule. */
static void plan(struct sim_world *w)
{
	uint64_t win = 4000 + rnd(w, 3000);

	w->harsh = rnd(w, 3) == 0;
	if (w->harsh) {
		w->faults.drop_pm = (uint32_t)(30 + rnd(w, 70));
		w->faults.dup_pm = (uint32_t)(20 + rnd(w, 80));
		w->faults.delay_pm = (uint32_t)(200 + rnd(w, 400));
		w->faults.max_delay_ms = (uint32_t)(20 + rnd(w, 200));
	} else {
		w->faults.drop_pm = (uint32_t)rnd(w, 20);
		w->faults.dup_pm = (uint32_t)rnd(w, 20);
		w->faults.delay_pm = (uint32_t)rnd(w, 200);
		w->faults.max_delay_ms = (uint32_t)(1 + rnd(w, 30));
	}
	w->t_heal = w->t0 + win;
	w->t_check = w->t_heal + SIM_CALL_MS + SIM_QUIET_MS;
	w->t_end = w->t_check + 3000;
	/* no LEASE after this: every lease handed out is released before the end */
	w->t_qstop = w->t_end - SIM_CALL_MS - 1000;
	w->acts = kvn_xcalloc(32, sizeof *w->acts);
	if (rnd(w, 100) < 40) {
		uint64_t t = w->t0 + 300 + rnd(w, win - 800), back = t + rnd(w, 1500);
		act_add(w, ACT_MASTER_CRASH, 0, t);
		if (back < w->t_heal)
			act_add(w, ACT_MASTER_RESTART, 0, back);
	}
	for (uint64_t n = rnd(w, 3); n > 0; n--) {
		int i = (int)rnd(w, SIM_PEERS);
		uint64_t t = w->t0 + 200 + rnd(w, win - 500), back = t + rnd(w, 2000);
		act_add(w, ACT_PEER_CRASH, i, t);
		if (back < w->t_heal)
			act_add(w, ACT_PEER_RESTART, i, back);
	}
	for (uint64_t n = rnd(w, 4); n > 0; n--) {
		uint64_t r = rnd(w, 10);
		int node = r < 2 ? SIM_NODE_MASTER : r < 7 ? SIM_NODE_PEER((int)rnd(w, SIM_PEERS))
							  : SIM_NODE_CLIENT((int)rnd(w, SIM_CLIENTS));
		uint64_t t = w->t0 + 200 + rnd(w, win - 400), off = t + 50 + rnd(w, 2500);
		act_add(w, ACT_PART_ON, node, t);
		if (off < w->t_heal)
			act_add(w, ACT_PART_OFF, node, off);
	}
	act_add(w, ACT_HEAL, 0, w->t_heal);
	act_add(w, ACT_CHECK, 0, w->t_check);
}

/* ---- one seed ---- */

static int make_dir(struct sim_world *w)
{
	const char *tmp = getenv("TMPDIR");
	/* fsync is cheap on tmpfs: master.db's group commits cost nothing */
	if (access("/dev/shm", W_OK) == 0)
		snprintf(w->dir, sizeof w->dir, "/dev/shm/kvn-sim-XXXXXX");
	else
		snprintf(w->dir, sizeof w->dir, "%s/kvn-sim-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(w->dir))
		return KVN_EIO;
	snprintf(w->db, sizeof w->db, "%s/master.db", w->dir);
	return 0;
}

/* The world's directory and everything in it (master.db, the peers'
 * peer.db and disk files). */
static void remove_dir(struct sim_world *w)
{
	(void)nftw(w->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* KVN_SIM_QUEUE=0: no queue workload; =1: always; unset: on but in the
 * key-value store's negative modes, whose seeds were chosen for the
 * key-value workload alone (the queue's traffic moves every race). */
static int queue_mode(int unsafe)
{
	const char *v = getenv("KVN_SIM_QUEUE");
	if (unsafe >= SIM_UNSAFE_Q_DOUBLE)
		return 1;
	if (v && *v)
		return strcmp(v, "0") != 0;
	return unsafe == SIM_SAFE;
}

/* KVN_SIM_DISK=0: no disk tier; =1: on every seed; unset: on the even
 * seeds, so both kinds of peer stay covered at today's run time. */
static int disk_mode(uint64_t seed, int unsafe)
{
	const char *v = getenv("KVN_SIM_DISK");
	if (unsafe == SIM_UNSAFE_WIPE_DISK)
		return 1;
	if (v && *v)
		return strcmp(v, "0") != 0;
	return (seed & 1) == 0;
}

int sim_run_seed(uint64_t seed, int unsafe, int verbose, struct sim_world *out)
{
	struct sim_world *w = kvn_xcalloc(1, sizeof *w);
	int rc = 0;

	w->seed = seed;
	w->rng = seed * 0x2545F4914F6CDD1Dull + 1;
	/* every backoff's jitter from the seed too: a seed replays exactly */
	kvn_jitter_seed(seed * 0x9E3779B97F4A7C15ull | 1);
	w->unsafe = unsafe;
	w->qbreak = unsafe == SIM_UNSAFE_Q_DOUBLE      ? MASTER_QS_DOUBLE_LEASE
		    : unsafe == SIM_UNSAFE_Q_NO_RETURN ? MASTER_QS_NO_RETURN
		    : unsafe == SIM_UNSAFE_Q_ORDER     ? MASTER_QS_ORDER
						       : 0;
	master_queue_sabotage(w->qbreak);
	w->verbose = verbose;
	w->digest = seed;
	w->disk = disk_mode(seed, unsafe);
	w->queue = queue_mode(unsafe);
	w->promote = w->disk && (seed & 2) != 0;
	if (make_dir(w) != 0) {
		sim_violation(w, SIM_RULE_F, "cannot create a temporary directory: %s", strerror(errno));
		goto out;
	}
	w->loop = actor_loop_new("sim");
	actor_loop_set_virtual(w->loop, SIM_T0);
	w->t0 = SIM_T0;
	if (actor_spawn(w->loop, &director_ops, w, 64, &w->director) != 0)
		kvn_fatal("cannot spawn the director");
	plan(w);
	w->cur = net_sim_new(seed, &w->faults);
	w->sims[w->nsims++] = w->cur;
	sim_trace(w, "seed %llu: %s network (drop %u, dup %u, delay %u per mille, up to %u ms), faults until t=%llu",
		  (unsigned long long)seed, w->harsh ? "harsh" : "gentle", w->faults.drop_pm, w->faults.dup_pm,
		  w->faults.delay_pm, w->faults.max_delay_ms, (unsigned long long)w->t_heal);
	if (start_master(w) != 0)
		goto teardown;
	for (int i = 0; i < SIM_PEERS; i++)
		if (start_peer(w, i) != 0)
			goto teardown;
	for (int c = 0; c < SIM_CLIENTS; c++)
		if (sim_client_new(w, c, &w->clients[c]) != 0 || (w->queue && sim_qc_new(w, c, &w->qcs[c]) != 0))
			kvn_fatal("cannot spawn a client");
	link_all(w);
	w->workload_on = 1;
	for (int c = 0; c < SIM_CLIENTS; c++) {
		sim_client_start(w->clients[c], 100 + rnd(w, 50));
		if (w->queue)
			sim_qc_start(w->qcs[c], 100 + (uint64_t)c * 7);
	}

	actor_loop_sim_run(w->loop, w->t_end, SIM_EVENT_BUDGET);
	if (actor_loop_vnow(w->loop) < w->t_end)
		sim_violation(w, SIM_RULE_F, "event budget (%llu timers) exhausted before t=%llu: a livelock?",
			      (unsigned long long)SIM_EVENT_BUDGET, (unsigned long long)w->t_end);
	for (int c = 0; c < SIM_CLIENTS; c++) {
		if (!sim_client_idle(w->clients[c]))
			sim_violation(w, SIM_RULE_F, "client %d still busy at the end (an operation never completed)", c);
		if (w->queue && !sim_qc_idle(w->qcs[c]))
			sim_violation(w, SIM_RULE_F, "queue client %d still busy or holding leases at the end", c);
	}
	for (size_t i = 0; i < w->nops; i++)
		if (w->ops[i].t_end == 0) {
			sim_violation(w, SIM_RULE_D, "operation %zu of client %d (key k%02d) never completed", i,
				      w->ops[i].client, w->ops[i].key);
			break;
		}
	for (int i = 0; i < SIM_PEERS; i++)
		if (w->peer_up[i])
			add_tier_stats(w, w->peers[i]);
	sim_check_state(w);
	sim_check_history(w);
	if (w->queue)
		sim_qcheck(w);

teardown:
	w->ending = 1;
	if (w->nsims > 0)
		net_sim_get_stats(w->sims[0], &w->net); /* the faulty one */
	for (int s = 0; s < w->nsims; s++)
		net_sim_free(w->sims[s]);
	actor_loop_free(w->loop); /* every actor: master, writer, peers, clients, links */
	remove_dir(w);
out:
	for (int r = 0; r < SIM_RULES; r++)
		if (w->viol[r])
			rc = -1;
	*out = *w;
	out->acts = NULL;
	out->ops = NULL;
	out->qs = NULL;
	out->ql = NULL;
	out->qa = NULL;
	out->qcalls = NULL;
	free(w->acts);
	free(w->ops);
	free(w->qs);
	free(w->ql);
	free(w->qa);
	free(w->qcalls);
	free(w);
	kvn_jitter_seed(0);
	master_queue_sabotage(0);
	return rc;
}
