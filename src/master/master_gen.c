/*
 * master_gen: generations.  Owns handing out a new put's generation (epoch
 * << 32 | counter), noticing a generation a peer holds above what this
 * master would hand out, and raising the epoch above it through the SQLite
 * writer (generations stop until that commit).  Runs on the master actor's
 * loop only.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>

#include "master/master_int.h"

/* ---- generations ---- */

int master_gen_next(struct master *ms, uint64_t *gen)
{
	if (ms->epoch_want > ms->epoch)
		return KVN_EBUSY; /* a peer holds newer generations: raising the epoch */
	if (ms->counter >= UINT32_MAX) {
		if (!ms->gen_exhausted_logged) {
			log_error("master: generation counter of epoch %u exhausted (2^32 puts since this "
				  "master started): ROUTE_PUT refused with KVN_EBUSY; restart the master "
				  "to open a new epoch",
				  ms->epoch);
			ms->gen_exhausted_logged = 1;
		}
		return KVN_EBUSY;
	}
	*gen = ((uint64_t)ms->epoch << 32) | ++ms->counter;
	return 0;
}

void master_gen_seen(struct master *ms, uint64_t gen)
{
	/* the next generation this master would hand out (past the counter's
	 * end: the next epoch's first) */
	uint64_t next = ((uint64_t)ms->epoch << 32) + ms->counter + 1;
	uint64_t e = gen >> 32;

	if (gen < next || e < ms->epoch_want)
		return; /* older than ours, or a raise above it is already due */
	if (e >= INT32_MAX) {
		/* epochs stop at 2^31-1 (gens fit SQLite's int64): no master
		 * handed this out; putting it ahead of every later put is not
		 * worth stopping generations for good */
		if (!ms->epoch_cap_logged)
			log_error("master: a peer holds generation %#" PRIx64 ", beyond the last epoch: not honoured",
				  gen);
		ms->epoch_cap_logged = 1;
		ms->own_epoch = UINT32_MAX; /* nothing can be told apart from it */
		return;
	}
	log_warn("master: a peer holds generation %#" PRIx64 " (epoch %" PRIu64 ", this master's is %u: master.db "
		 "lost or replaced?): no generation handed out until epoch %" PRIu64 " is committed",
		 gen, e, ms->epoch, e + 1);
	ms->epoch_want = (uint32_t)e + 1;
	/* a foreign generation at or above our epochs: only the raised ones
	 * are surely ours (master_route_ready) */
	ms->own_epoch = ms->epoch_want;
	master_gen_epoch_raise(ms);
}

/* ---- the generation epoch raised above a peer's (master_gen_seen) ----
 *
 * A master that started without its master.db (or with an older copy)
 * begins at a low epoch while peers still hold generations of later ones:
 * a new put would get a generation below the one it overwrites, lose to it
 * (`get` answers the old value) and be refused as stale by the peer that
 * holds the key.  So generations stop until the new epoch is committed, as
 * the epoch of every start is before its first generation: a crash
 * meanwhile cannot bring a lower epoch back. */

static int epoch_done(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct master *ms = actor_state(self);
	uint32_t asked = (uint32_t)(uintptr_t)arg;
	int rc = err ? err : reply->status;

	ms->epoch_raising = 0;
	if (rc == KVN_ECLOSED)
		return 0; /* shutting down */
	if (rc) {
		if (!ms->epoch_failing)
			log_error("master: epoch %u could not be committed (%s): no generation is handed out; "
				  "retrying with backoff",
				  asked, kvn_strerror(rc));
		ms->epoch_failing = 1;
		actor_timer_arm(ms->epoch_timer, kvn_backoff_next(&ms->epoch_backoff));
		return 0;
	}
	ms->epoch_failing = 0;
	kvn_backoff_reset(&ms->epoch_backoff);
	ms->epoch = asked;
	ms->counter = 0;
	ms->gen_exhausted_logged = 0;
	log_info("master: epoch %u committed: generations handed out again", asked);
	master_gen_epoch_raise(ms); /* a higher one may have been reported meanwhile */
	return 0;
}

void master_gen_epoch_raise(struct master *ms)
{
	struct actor_msg *req;
	struct wire_w w;
	uint32_t want = ms->epoch_want;

	if (!ms->self || ms->epoch_raising || want <= ms->epoch)
		return;
	req = actor_msg_new(DBW_EPOCH);
	wire_w_init(&w);
	wire_w_u32(&w, want);
	if (wire_w_to_msg(&w, req) != 0)
		KVN_ASSERT(0); /* fixed size */
	if (actor_call(ms->self, ms->dbw, req, MASTER_DB_TIMEOUT_MS, epoch_done, (void *)(uintptr_t)want) != 0) {
		actor_msg_free(req);
		if (!ms->epoch_failing)
			log_error("master: epoch %u: the SQLite writer cannot take the request; retrying with "
				  "backoff",
				  want);
		ms->epoch_failing = 1;
		actor_timer_arm(ms->epoch_timer, kvn_backoff_next(&ms->epoch_backoff));
		return;
	}
	ms->epoch_raising = 1;
}

void master_gen_epoch_tick(struct actor *self, void *arg)
{
	(void)arg;
	master_gen_epoch_raise(actor_state(self));
}
