/*
 * peer: the public face of the peer role, for kvnode.c and tests.
 * peer_start creates the arena and the peer actor; the messages it answers
 * are in docs/protocol.md.  Everything else of the role is in peer_int.h.
 */
#ifndef KVN_PEER_H
#define KVN_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "actors/actor.h"

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

#endif
