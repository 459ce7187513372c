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

/* ---- master (master.c) ---- */
struct master_opts {
	const char *db_path;      /* master.db */
	const char *server_id;    /* shown to attaching nodes */
	uint64_t node_timeout_ms; /* master.node_timeout */
	uint32_t mailbox;         /* node.mailbox_size */
	uint64_t max_value_size;  /* node.max_value_size */
	uint64_t commit_linger_ms; /* master.commit_linger; 0: every group commits at once */
};
/* Open master.db (bumping the epoch durably), start the SQLite writer actor
 * on db_loop and the master actor on loop.  *out gets the master actor.
 * Call before the loops' threads start.  Errors go to err. */
int master_start(struct actor_loop *loop, struct actor_loop *db_loop, const struct master_opts *o,
		 struct actor **out, char *err, size_t errlen);

/* Tests (simulation, loop thread only): destroy the master and its SQLite
 * writer as a crash would (uncommitted writes are lost; master.db keeps
 * what was committed); visit the master's index. */
void master_crash(struct actor *master);
typedef void (*master_dump_fn)(void *arg, const void *key, size_t klen, uint64_t gen, const char *node_id);
void master_dump(struct actor *master, master_dump_fn fn, void *arg);

/* ---- master counters (master.c) ---- */
/* Process-wide, summed over every master instance since the process
 * started (stats output and tests).  Safe from any thread. */
struct master_stats {
	uint64_t route_puts, route_gets;      /* requests */
	uint64_t gets, gets_forwarded;        /* GETs sent to the master; served by its peer */
	uint64_t puts, puts_forwarded;        /* PUTs sent to the master; stored by its peer */
	uint64_t events_applied, events_dup, events_stale, event_gaps;
	uint64_t events_busy;                 /* batches refused: SQLite writer behind */
	uint64_t full_syncs;                  /* snapshots applied */
	uint64_t drops_sent, drops_failed;    /* DROP_GEN items */
	uint64_t nodes_dead;                  /* declared dead by the timeout */
	uint64_t db_errors;                   /* dbw requests that failed */
	uint64_t proto_errors, denied;        /* malformed / wrong role */
	uint64_t db_commits, db_commit_failed, db_write_failed; /* dbw */
	uint64_t db_requests;                 /* requests the master sent to dbw */
	uint64_t events_refused;              /* single events refused (invalid), the rest applied */
};
void master_get_stats(struct master_stats *st);

#endif
