/*
 * client_stats: the cluster's figures (kvn_stat, kvn_stat_cluster: the
 * master's STAT reply), a client's own counters as the rest of the tree
 * sees them (a snapshot and a name/value visitor generated from
 * CLIENT_STATS_FIELDS in client.h), and what tests read or set of a client
 * without its struct.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "client/client_int.h"

/* ---- STAT ---- */

/* One STAT call: the nodes into nodes[0..cap) (usage of a node not alive
 * as KVN_STAT_UNKNOWN when mark_unknown) and the master's figures. */
static int stat_call(struct kvn_client *c, struct kvn_cluster_stat *cs, struct kvn_node_stat *nodes, size_t cap,
		     int mark_unknown)
{
	struct client_op op;
	struct wire_r r;
	struct proto_stat_master sm;
	uint64_t objs = 0, bytes = 0;
	uint32_t count = 0;
	int rc;

	client_op_begin(c, &op, NULL, 0, WIRE_STAT);
	rc = client_master_call(c, &op, actor_msg_new(WIRE_STAT));
	if (rc == 0 && proto_stat_open(&r, op.reply, &objs, &bytes, &count) != 0)
		rc = KVN_EPROTO;
	for (uint32_t i = 0; rc == 0 && i < count; i++) {
		struct proto_stat_node sn;
		if (proto_stat_next(&r, &sn) != 0) {
			rc = KVN_EPROTO;
			break;
		}
		if (i < cap && nodes) {
			struct kvn_node_stat *o = &nodes[i];
			memset(o, 0, sizeof *o);
			snprintf(o->node_id, sizeof o->node_id, "%s", sn.node_id);
			snprintf(o->addr, sizeof o->addr, "%s", sn.addr);
			o->alive = sn.alive;
			o->dram_total = sn.dram_total;
			o->dram_used = sn.dram_used;
			o->disk_total = sn.disk_total;
			o->disk_used = sn.disk_used;
			o->objects = sn.objects;
			if (mark_unknown && !o->alive)
				o->dram_total = o->dram_used = o->disk_total = o->disk_used = o->objects =
					KVN_STAT_UNKNOWN;
		}
	}
	if (rc == 0 && proto_stat_master_read(&r, &sm) != 0)
		rc = KVN_EPROTO;
	if (rc == 0) {
		memset(cs, 0, sizeof *cs);
		cs->objects = objs;
		cs->bytes = bytes;
		cs->nodes = count;
		cs->uptime_ms = sm.uptime_ms;
		snprintf(cs->version, sizeof cs->version, "%s", sm.version);
		cs->ops = sm.requests;
		cs->hits = sm.key_hits;
		cs->misses = sm.key_misses;
		cs->conns_known = sm.conns_known;
		cs->conns = sm.conns_open;
		cs->conns_peers = sm.conns_peers;
		cs->conns_clients = sm.conns_clients;
		cs->conns_handshake = sm.conns_handshake;
	}
	client_op_end(c, &op);
	return rc;
}

int kvn_stat(struct kvn_client *c, struct kvn_node_stat *nodes, size_t cap, size_t *n, uint64_t *objects)
{
	struct kvn_cluster_stat cs;
	int rc;

	if (!c)
		return KVN_EINVAL;
	rc = stat_call(c, &cs, nodes, cap, 0);
	if (rc == 0) {
		if (n)
			*n = cs.nodes;
		if (objects)
			*objects = cs.objects;
	}
	return rc;
}

int kvn_stat_cluster(struct kvn_client *c, struct kvn_cluster_stat *cs, struct kvn_node_stat *nodes, size_t cap)
{
	if (!c || !cs || (cap && !nodes))
		return KVN_EINVAL;
	return stat_call(c, cs, nodes, cap, 1);
}

/* ---- a client's counters ---- */

void client_get_stats(const struct kvn_client *c, struct client_stats *st)
{
	*st = c->stats;
	client_submit_stats_add(c, st);
}

void client_stats_each(const struct client_stats *st, kvn_stat_fn fn, void *arg)
{
	CLIENT_STATS_FIELDS(KVN_STAT_VISIT)
}

struct counter_find {
	const char *name;
	uint64_t value;
	int found;
};

static void counter_find(void *arg, const char *name, const char *doc, uint64_t value)
{
	struct counter_find *f = arg;
	(void)doc;
	if (!f->found && strcmp(name, f->name) == 0) {
		f->value = value;
		f->found = 1;
	}
}

int kvn_counter(const struct kvn_client *c, const char *name, uint64_t *value)
{
	struct client_stats st;
	struct counter_find f = { .name = name };

	if (value)
		*value = 0;
	if (!c || !name || !value)
		return KVN_EINVAL;
	client_get_stats(c, &st);
	client_stats_each(&st, counter_find, &f);
	if (!f.found)
		return KVN_ENOTFOUND;
	*value = f.value;
	return 0;
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

void client_set_local_copy_hook(struct kvn_client *c, client_local_copy_fn fn, void *arg)
{
	c->test_local_copy = fn;
	c->test_local_copy_arg = arg;
}

void client_set_test_host(struct kvn_client *c, const char *host)
{
	snprintf(c->test_host, sizeof c->test_host, "%s", host ? host : "");
}

int client_local_active(struct kvn_client *c, const char *node_id)
{
	struct client_peer *p;
	HASH_FIND_STR(c->peers, node_id, p);
	return p && client_local_ready(p);
}
