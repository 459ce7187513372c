/*
 * roles: how kvnode.c starts the master, the peer and the SQLite writer as
 * actors.  Each role's messages are documented in docs/protocol.md and
 * encoded in proto.c.
 */
#ifndef KVN_ROLES_H
#define KVN_ROLES_H

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

/* ---- peer (peer.c) ---- */
struct peer_opts {
	const char *node_id;
	const char *advertise;  /* address clients dial */
	uint64_t dram_size, page_size;
	int hugepages;
	uint64_t heartbeat_ms, pending_ttl_ms, read_lease_ttl_ms;
	uint64_t max_value_size;
	uint32_t mailbox;
	uint64_t call_timeout_ms; /* deadline of each call to the master */
	/* Tests only: the bug this design forbids.  When an EVENTS send fails,
	 * forget the events it carried, answer their waiting puts as if the
	 * master had applied them, and renumber later events so no gap shows.
	 * The simulation test turns it on to prove its checker notices. */
	int unsafe_forget_unacked;
};
/* Create the arena and the peer actor on loop.  The peer attaches to
 * `master` (a local actor or a proxy from net_connect) once started. */
int peer_start(struct actor_loop *loop, const struct peer_opts *o, struct actor **out, char *err,
	       size_t errlen);
/* Tests (loop thread only): visit every committed generation; the peer's
 * key-table counters (leases outstanding, refused transitions, ...). */
typedef void (*peer_dump_fn)(void *arg, const void *key, size_t klen, uint64_t gen, uint64_t size);
void peer_dump(struct actor *peer, peer_dump_fn fn, void *arg);
struct keytab_stats;
void peer_keytab_stats(struct actor *peer, struct keytab_stats *st);

/* Point the peer at its master (call on the peer's loop before it runs, or
 * right after creating the proxy). */
void peer_set_master(struct actor *peer, actor_id master);

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

/* ---- client (client_api.c) ---- */
struct kvn_conf;
struct kvn_client;
/* kvn_connect with an already loaded and finalized config (the CLI's, with
 * its --set overrides).  Takes ownership of conf's strings. */
int kvn_connect_conf(struct kvn_conf *conf, struct kvn_client **out);

#endif
