/*
 * master: the public face of the master role, for kvnode.c (which wires the
 * roles together) and tests.  master_start opens master.db and starts the
 * master actor and its SQLite writer; the messages it answers are in
 * docs/protocol.md.  Everything else of the role is in master_int.h.
 */
#ifndef KVN_MASTER_H
#define KVN_MASTER_H

#include <stddef.h>
#include <stdint.h>

#include "actors/actor.h"
#include "base/base.h"

/* ---- master (master.c) ---- */
struct master_opts {
	const char *db_path;      /* master.db */
	const char *server_id;    /* shown to attaching nodes */
	uint64_t node_timeout_ms; /* master.node_timeout */
	uint32_t mailbox;         /* node.mailbox_size */
	uint64_t max_value_size;  /* node.max_value_size */
	uint64_t commit_linger_ms; /* master.commit_linger; 0: every group commits at once */
	uint64_t lease_ttl_max_ms; /* master.lease_ttl_max; 0: PROTO_TTL_MAX_MS */
	uint64_t floor_keep_ms;    /* tests: master.db floors' keep window; 0: 10 min */
	uint32_t floor_max;        /* tests: generation floors kept in memory; 0: 2^18 */
};
/* The options the config gives (db_path: the caller's, e.g.
 * {data_dir}/master.db; the test knobs stay 0). */
void master_opts_from_conf(struct master_opts *o, const struct kvn_conf *c, const char *db_path);
/* Open master.db (bumping the epoch durably), start the SQLite writer actor
 * on db_loop and the master actor on loop.  *out gets the master actor.
 * Call before the loops' threads start.  Errors go to err. */
int master_start(struct actor_loop *loop, struct actor_loop *db_loop, const struct master_opts *o,
		 struct actor **out, char *err, size_t errlen);

/* Tests (simulation, loop thread only): destroy the master and its SQLite
 * writer as a crash would (uncommitted writes are lost; master.db keeps
 * what was committed); visit the master's index. */
void master_crash(struct actor *master);
/* Count the connections of the master's listener in its STAT replies
 * (kvnode.c, once net_listen succeeded; before it the reply says the count
 * is unknown).  Takes a reference on l's accounting, so l may be freed
 * first. */
struct net_listener;
void master_set_listener(struct actor *master, struct net_listener *l);
typedef void (*master_dump_fn)(void *arg, const void *key, size_t klen, uint64_t gen, const char *node_id);
void master_dump(struct actor *master, master_dump_fn fn, void *arg);
/* Tests: visit every queue sample the master knows (loop thread only):
 * lease_id 0 when not leased (deadline_ms then 0); lost: its node is dead
 * or no longer holds it. */
struct master_qsample {
	const void *key;
	size_t klen;
	uint64_t gen;
	const char *node_id;
	uint64_t order; /* commit order (master.db's commit_seq once loaded from it) */
	uint64_t lease_id, deadline_ms;
	int lost;
};
typedef void (*master_qdump_fn)(void *arg, const struct master_qsample *s);
void master_queue_dump(struct actor *master, master_qdump_fn fn, void *arg);
/* Tests: break a mechanism of the consumer queue on purpose, process-wide,
 * to show that a checker catches it (0 restores).  A master started with
 * KVNODE_TEST_QUEUE_BREAK=<bits> in its environment sets it too. */
enum {
	MASTER_QS_DOUBLE_LEASE = 1, /* LEASE ignores live leases */
	MASTER_QS_NO_RETURN = 2,    /* an expired lease does not return its sample */
	MASTER_QS_ORDER = 4,        /* LEASE answers newest commit first */
};
void master_queue_sabotage(unsigned what);

/* ---- a snapshot for monitoring (master_view.c) ---- */
struct master_view_node {
	char node_id[65];
	char addr[128];
	int alive;   /* routable now (STAT's alive) */
	int dead, left;
	uint64_t dram_total, dram_used, disk_total, disk_used;
	uint64_t objects, bytes; /* in the master's index */
	/* events the node said it had produced (its last attach or
	 * heartbeat) that the master had not applied when it said so */
	uint64_t event_lag;
	uint64_t seen_ago_ms; /* since its last attach or heartbeat */
};
struct master_view {
	char server_id[65];
	uint64_t objects, bytes; /* over the index */
	uint32_t nodes;          /* in the node table (nodes filled: min(nodes, cap)) */
	int db_degraded;         /* master.db writes fail: db_reason says why */
	char db_reason[160];
	uint64_t db_degraded_ms; /* for how long */
};
/* Fill v and up to cap rows of the node table (STAT's view).  On the
 * master's loop thread, holding its lock when it has one (actor_set_lock);
 * it takes no lock, sends nothing and allocates nothing. */
void master_view(struct actor *master, struct master_view *v, struct master_view_node *nodes, uint32_t cap);

/* ---- master counters (master.c) ---- */
/* Process-wide, summed over every master instance since the process
 * started (stats output and tests).  Safe from any thread.  Declared once,
 * here: X(name, what) gives struct master_stats its field, master_get_stats
 * its snapshot and master_stats_each/_format their line, so a counter is
 * one line of this list.  dbw's counters (db_commits, ...) are in it too. */
#define MASTER_STATS_FIELDS(X)                                                         \
	X(route_puts, "ROUTE_PUT requests")                                            \
	X(route_gets, "ROUTE_GET requests")                                            \
	X(gets, "GETs sent to the master")                                             \
	X(gets_forwarded, "GETs sent to the master, served by its peer")               \
	X(puts, "PUTs sent to the master")                                             \
	X(puts_forwarded, "PUTs sent to the master, stored by its peer")               \
	X(events_applied, "events applied")                                            \
	X(events_dup, "events already applied (re-shipped after a lost ack)")          \
	X(events_stale, "ADD and snapshot entries answered with DROP_GEN")             \
	X(event_gaps, "event gaps: full sync requested")                               \
	X(events_busy, "EVENTS batches refused: SQLite writer behind")                 \
	X(full_syncs, "snapshots applied")                                             \
	X(drops_sent, "DROP_GEN items sent")                                           \
	X(drops_failed, "DROP_GEN items undeliverable")                                \
	X(nodes_dead, "nodes declared dead by the timeout")                            \
	X(nodes_left, "nodes that left on purpose (PEER_LEAVE: a clean stop)")         \
	X(db_errors, "dbw requests that failed")                                       \
	X(proto_errors, "malformed requests")                                          \
	X(denied, "requests from a wrong role")                                        \
	X(db_commits, "dbw: groups committed")                                         \
	X(db_commit_failed, "dbw: COMMITs that failed")                                \
	X(db_write_failed, "dbw: writes that failed")                                  \
	X(db_requests, "requests the master sent to dbw")                              \
	X(events_refused, "single events refused (invalid), the rest of their batch applied") \
	X(q_leased, "queue: samples leased")                                           \
	X(q_released, "queue: leases released (consumed, retained or returned)")       \
	X(q_expired, "queue: leases expired (their samples back in the pool)")         \
	X(q_renewed, "queue: leases renewed")                                          \
	X(q_refused, "queue: RELEASE/RENEW ids refused (unknown, expired, released)") \
	X(requests, "requests from clients, one per message whatever its keys (STAT's ops)") \
	X(key_hits, "keys of ROUTE_GET and GET requests found in the index")            \
	X(key_misses, "keys of ROUTE_GET and GET requests not in the index")

struct master_stats {
	MASTER_STATS_FIELDS(KVN_STAT_FIELD)
};

void master_get_stats(struct master_stats *st);
/* fn(arg, name, what, value) for every counter of st, in list order. */
void master_stats_each(const struct master_stats *st, kvn_stat_fn fn, void *arg);
/* st as text, one "name value" line per counter, NUL-terminated in buf:
 * 0, or KVN_ERANGE when cap is too small (buf then holds the lines that
 * fit). */
int master_stats_format(const struct master_stats *st, char *buf, size_t cap);

#endif
