/*
 * peer_stats: the peer's counters as the rest of the tree sees them: a
 * snapshot and a name/value visitor, both generated from the field lists
 * in peer.h.
 */
#include "config.h"

#include <string.h>

#include "peer/peer_int.h"

void peer_get_stats(struct actor *peer, struct peer_stats *st, struct peer_slot_stats *slots)
{
	struct peer *p = actor_state(peer);

	if (st)
		*st = p->stats;
	if (slots)
		peer_slot_get_stats(p, slots);
}

void peer_stats_each(const struct peer_stats *st, kvn_stat_fn fn, void *arg)
{
	PEER_STATS_FIELDS(KVN_STAT_VISIT)
}

void peer_slot_stats_each(const struct peer_slot_stats *st, kvn_stat_fn fn, void *arg)
{
	PEER_SLOT_STATS_FIELDS(KVN_STAT_VISIT)
}

void peer_get_tier_stats(struct actor *peer, struct peer_tier_stats *st)
{
	struct peer *p = actor_state(peer);
	*st = p->tstats;
}

void peer_tier_stats_each(const struct peer_tier_stats *st, kvn_stat_fn fn, void *arg)
{
	PEER_TIER_STATS_FIELDS(KVN_STAT_VISIT)
}
