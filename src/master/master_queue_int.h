/*
 * master_queue_int: what the consumer queue's two files share:
 * master_queue.c (the samples: where each one is, the index's hooks, start,
 * expiry) and master_lease.c (the LEASE, RELEASE and RENEW requests and
 * their writes).  Private to src/master/master_queue.c and master_lease.c.
 */
#ifndef KVN_MASTER_QUEUE_INT_H
#define KVN_MASTER_QUEUE_INT_H

#include "master/master_int.h"

enum qstate { Q_WAIT = 1, Q_LEASED, Q_PARKED, Q_CONSUMED };

struct master_qent {
	UT_hash_handle hh; /* ms->qkeys, by key */
	UT_hash_handle hl; /* ms->qleases, by lease_id, while leased */
	TAILQ_ENTRY(master_qent) link;  /* qpool, qleased or qparked by state */
	TAILQ_ENTRY(master_qent) nlink; /* its node's qents */
	struct master_node *node;
	uint64_t gen, order, hash, size;
	uint64_t lease_id, deadline_ms;
	uint8_t state, retain, busy;
	uint8_t consuming; /* busy with a RELEASE that deletes its row */
	uint16_t klen;
	uint8_t key[];
};

/* Room kept for the reply's count when a LEASE answer fills a frame. */
#define Q_REPLY_ROOM (WIRE_MAX_META - 256)

/* The sabotage bits set for tests (master_queue_sabotage). */
unsigned master_queue_broken(void);
/* Take q out of its list (and the by-id table when leased). */
void master_queue_unlist(struct master *ms, struct master_qent *q);
/* Into the pool at its commit-order place (state WAIT, no lease). */
void master_queue_pool_insert(struct master *ms, struct master_qent *q);
/* Leased, at its deadline's place (q->lease_id, q->deadline_ms set). */
void master_queue_leased_insert(struct master *ms, struct master_qent *q);
/* Not available now: counted lost, re-checked by the tick. */
void master_queue_park(struct master *ms, struct master_qent *q);
/* Forget the sample altogether. */
void master_queue_free_one(struct master *ms, struct master_qent *q);
struct master_qent *master_queue_find_lease(struct master *ms, uint64_t id);
/* Its node is alive, has re-synced, and indexes exactly this generation. */
int master_queue_available(struct master *ms, const struct master_qent *q);
/* (Re)arm the expiry timer for the soonest deadline (at most a second). */
void master_queue_arm(struct master *ms);

#endif
