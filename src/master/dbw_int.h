/*
 * dbw_int: what the SQLite writer's files share (dbw.c: groups, replies,
 * the node, event and sync requests; dbw_queue.c: the consumer queue's
 * requests).  Private to src/master/dbw*.c.
 */
#ifndef KVN_DBW_INT_H
#define KVN_DBW_INT_H

#include "master/master_int.h"

/* A reply owed once the current group is committed. */
struct dbw_wait {
	actor_id src;
	uint64_t corr;
	uint16_t type;
	int status;
	uint8_t *res; /* DBW_QUEUE's per-op results (owned), sent if committed */
	uint32_t nres;
};

/* DBW_SYNC_PART messages of one node's snapshot, kept (not copied) until
 * DBW_SYNC_END; entries point into their metadata. */
struct dbw_stage {
	UT_hash_handle hh;
	char node_id[65];
	uint64_t sync_id;
	int broken; /* a part arrived out of order */
	struct actor_msg **parts;
	uint32_t nparts, cap;
};

struct dbw {
	struct actor *self;
	struct meta_db *db;
	struct event *flush_ev;
	int open;      /* a group is open (BEGIN issued, or refused) */
	int group_err; /* BEGIN failed: this group's writes are refused */
	int flush_armed;
	/* A group nobody waits on for durability (events of non-durable puts,
	 * node rows) stays open up to linger_ms for later requests to join:
	 * one COMMIT and fsync for all of them instead of one each.  Those puts
	 * were acknowledged when the master applied them; this only delays
	 * their landing in master.db (DESIGN.md section 2: the two ack
	 * levels).  Events flagged DBW_EV_NOW (a durable put's, or operations
	 * the master already held for the linger) and any other request (a full
	 * sync, a node's death) make the group urgent: it commits at once. */
	uint64_t linger_ms;
	int urgent;
	uint64_t opened_ms; /* when the open group began */
	uint32_t group_writes;
	struct dbw_wait *waits;
	size_t nwaits, capwaits;
	uint8_t *res; /* the handler's per-op results, for wait_add to take */
	uint32_t nres;
	struct dbw_stage *stages;
	int crashed; /* tests: die without committing */
	/* why the last write, BEGIN or COMMIT failed, for the replies */
	char reason[160];
	/* a full disk fails every group: these lines are rate-limited */
	struct kvn_ratelimit fail_rl;
};

#define DBW_STAT_INC(f) MASTER_STAT_INC(f)
/* Bounds of one group when more requests keep arriving: its COMMIT (and
 * so every reply in it) waits for all of its writes, a few µs each. */
#define DBW_GROUP_MAX 1024
#define DBW_GROUP_MAX_WRITES 4096
/* Wait for another connection's lock (an operator's BEGIN IMMEDIATE in the
 * sqlite3 shell) this long, not meta_open's 5 s: the writer thread and
 * every durable put stand still meanwhile.  A group that fails is answered
 * KVN_EDB and the master retries with backoff (master_db.c). */
#define DBW_BUSY_MS 1000

/* Log a failure unless too many did lately (then they are counted). */
#define DBW_FAIL_LOG(d, fmt, ...)                                                                    \
	do {                                                                                         \
		uint64_t sup_ = 0;                                                                   \
		if (!kvn_ratelimit_ok(&(d)->fail_rl, &sup_))                                         \
			break;                                                                       \
		if (sup_)                                                                            \
			log_error(fmt " (%" PRIu64 " similar lines suppressed)", __VA_ARGS__, sup_); \
		else                                                                                 \
			log_error(fmt, __VA_ARGS__);                                                 \
	} while (0)

/* Failed writes of one request: counted, one line per request. */
struct dbw_wfail {
	uint32_t n;
	int first_rc;
	char first[80];
	uint64_t first_gen;
};

void dbw_wfail_note(struct dbw_wfail *f, int rc, const void *key, size_t klen, uint64_t gen);
/* The request's status: 0, or KVN_EDB (logged, rate-limited) if any failed. */
int dbw_wfail_end(struct dbw *d, const struct dbw_wfail *f, const char *what, const char *node_id, uint32_t total);
/* Join the open group, opening one if needed: 0, or KVN_EDB when its BEGIN
 * failed (the request's writes are refused, not run outside a group). */
int dbw_group_join(struct dbw *d);
/* DBW_QUEUE (dbw_queue.c): its status; its per-op results in d->res. */
int dbw_on_queue(struct dbw *d, struct actor_msg *m);

#endif
