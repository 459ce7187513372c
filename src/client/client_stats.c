/*
 * client_stats: a client's counters as the rest of the tree sees them (a
 * snapshot and a name/value visitor generated from CLIENT_STATS_FIELDS in
 * client.h), and what tests read or set of a client without its struct.
 */
#include "config.h"

#include "client/client_int.h"

void client_get_stats(const struct kvn_client *c, struct client_stats *st)
{
	*st = c->stats;
}

void client_stats_each(const struct client_stats *st, kvn_stat_fn fn, void *arg)
{
	CLIENT_STATS_FIELDS(KVN_STAT_VISIT)
}

struct kvn_conf *client_conf(struct kvn_client *c)
{
	return &c->conf;
}

const char *client_master_node(const struct kvn_client *c)
{
	return c->master_node;
}

void client_sole_get(const struct kvn_client *c, struct proto_route *rt, int *nseen)
{
	if (rt)
		*rt = c->sole;
	if (nseen)
		*nseen = c->nseen;
}

void client_sole_set(struct kvn_client *c, const struct proto_route *rt, int nseen)
{
	c->sole = *rt;
	c->nseen = nseen;
}

void client_set_routed_hook(struct kvn_client *c, client_routed_fn fn, void *arg)
{
	c->test_routed = fn;
	c->test_routed_arg = arg;
}
