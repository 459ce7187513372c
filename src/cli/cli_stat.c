/*
 * cli_stat: `kvnode --role client stat [--json]`, the cluster as the master
 * sees it (kvn_stat_cluster): its version, uptime, requests, key hit ratio
 * and connections, then one row per node with its usage in human units.
 * A node that is not alive shows its usage as unknown (null in JSON): the
 * master still holds its last figures, and printing them would say they
 * are current.  --json prints exactly one JSON object.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "cli/cli.h"

/* the master answers at most this many nodes (PROTO_MAX_ITEMS) */
#define STAT_NODES_MAX 4096

int cli_stat_args(int argc, char **argv, int *json)
{
	*json = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			*json = 1;
		else
			return cli_usage_error("stat", "unexpected argument '%s'", argv[i]);
	}
	return 0;
}

/* "3d 04h 05m", "2h 03m 04s", "5m 06s", "7s" */
static void fmt_uptime(char *out, size_t cap, uint64_t ms)
{
	uint64_t s = ms / 1000, d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;

	if (d)
		snprintf(out, cap, "%" PRIu64 "d %02" PRIu64 "h %02" PRIu64 "m", d, h, m);
	else if (h)
		snprintf(out, cap, "%" PRIu64 "h %02" PRIu64 "m %02" PRIu64 "s", h, m, s % 60);
	else if (m)
		snprintf(out, cap, "%" PRIu64 "m %02" PRIu64 "s", m, s % 60);
	else
		snprintf(out, cap, "%" PRIu64 "s", s);
}

static void fmt_usage(char *out, size_t cap, uint64_t v)
{
	if (v == KVN_STAT_UNKNOWN)
		snprintf(out, cap, "unknown");
	else
		kvn_format_size_human(out, cap, v);
}

/* ---- JSON ---- */

/* s as a JSON string: quotes, backslashes, control and non-ASCII bytes
 * escaped (node ids and addresses are the nodes' own words) */
static void json_str(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

static void json_u64(const char *name, uint64_t v)
{
	if (v == KVN_STAT_UNKNOWN)
		printf(",\"%s\":null", name);
	else
		printf(",\"%s\":%" PRIu64, name, v);
}

static void print_json(const struct kvn_cluster_stat *cs, const struct kvn_node_stat *nodes, size_t n)
{
	uint64_t looked = cs->hits + cs->misses;

	printf("{\"version\":");
	json_str(cs->version);
	printf(",\"uptime_ms\":%" PRIu64 ",\"objects\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"ops\":%" PRIu64
	       ",\"hits\":%" PRIu64 ",\"misses\":%" PRIu64,
	       cs->uptime_ms, cs->objects, cs->bytes, cs->ops, cs->hits, cs->misses);
	if (looked)
		printf(",\"hit_ratio\":%.4f", (double)cs->hits / (double)looked);
	else
		printf(",\"hit_ratio\":null");
	if (cs->conns_known)
		printf(",\"connections\":{\"open\":%u,\"peers\":%u,\"clients\":%u,\"handshake\":%u}", cs->conns,
		       cs->conns_peers, cs->conns_clients, cs->conns_handshake);
	else
		printf(",\"connections\":null");
	printf(",\"nodes_total\":%zu,\"nodes\":[", cs->nodes);
	for (size_t i = 0; i < n; i++) {
		const struct kvn_node_stat *s = &nodes[i];
		printf("%s{\"node_id\":", i ? "," : "");
		json_str(s->node_id);
		printf(",\"addr\":");
		json_str(s->addr);
		printf(",\"alive\":%s", s->alive ? "true" : "false");
		json_u64("dram_used", s->dram_used);
		json_u64("dram_total", s->dram_total);
		json_u64("disk_used", s->disk_used);
		json_u64("disk_total", s->disk_total);
		json_u64("objects", s->objects);
		putchar('}');
	}
	printf("]}\n");
}

/* ---- the table ---- */

static void print_human(const struct kvn_cluster_stat *cs, const struct kvn_node_stat *nodes, size_t n)
{
	static const char *const head[] = { "node",      "address",    "alive",   "dram used",
					     "dram total", "disk used", "disk total", "objects" };
	enum { NCOL = sizeof head / sizeof head[0] };
	char t[48], b[48];
	size_t alive = 0, w[NCOL];
	uint64_t looked = cs->hits + cs->misses;

	for (size_t i = 0; i < n; i++)
		alive += nodes[i].alive != 0;
	fmt_uptime(t, sizeof t, cs->uptime_ms);
	printf("version: %s\nuptime: %s\n", cs->version, t);
	kvn_format_size_human(b, sizeof b, cs->bytes);
	printf("objects: %" PRIu64 " (%s)\n", cs->objects, b);
	printf("ops: %" PRIu64 " (requests from clients the master answered)\n", cs->ops);
	if (looked)
		printf("hit ratio: %.1f%% (%" PRIu64 " hit%s, %" PRIu64 " miss%s)\n",
		       100.0 * (double)cs->hits / (double)looked, cs->hits, cs->hits == 1 ? "" : "s", cs->misses,
		       cs->misses == 1 ? "" : "es");
	else
		printf("hit ratio: none (no key looked up yet)\n");
	if (cs->conns_known)
		printf("connections: %u (%u peer%s, %u client%s; %u in handshake)\n", cs->conns, cs->conns_peers,
		       cs->conns_peers == 1 ? "" : "s", cs->conns_clients, cs->conns_clients == 1 ? "" : "s",
		       cs->conns_handshake);
	else
		printf("connections: unknown (the master has no listener)\n");
	printf("nodes: %zu (%zu alive)\n", cs->nodes, alive);
	if (n == 0)
		return;

	/* columns as wide as their widest cell */
	char(*cell)[NCOL][72] = kvn_xcalloc(n, sizeof *cell);
	for (size_t c = 0; c < NCOL; c++)
		w[c] = strlen(head[c]);
	for (size_t i = 0; i < n; i++) {
		const struct kvn_node_stat *s = &nodes[i];
		snprintf(cell[i][0], sizeof cell[i][0], "%s", s->node_id);
		snprintf(cell[i][1], sizeof cell[i][1], "%s", s->addr);
		snprintf(cell[i][2], sizeof cell[i][2], "%s", s->alive ? "yes" : "no");
		fmt_usage(cell[i][3], sizeof cell[i][3], s->dram_used);
		fmt_usage(cell[i][4], sizeof cell[i][4], s->dram_total);
		fmt_usage(cell[i][5], sizeof cell[i][5], s->disk_used);
		fmt_usage(cell[i][6], sizeof cell[i][6], s->disk_total);
		if (s->objects == KVN_STAT_UNKNOWN)
			snprintf(cell[i][7], sizeof cell[i][7], "unknown");
		else
			snprintf(cell[i][7], sizeof cell[i][7], "%" PRIu64, s->objects);
		for (size_t c = 0; c < NCOL; c++)
			if (strlen(cell[i][c]) > w[c])
				w[c] = strlen(cell[i][c]);
	}
	/* text left, figures right */
	for (size_t c = 0; c < NCOL; c++)
		printf(c < 3 ? "%s%-*s" : "%s%*s", c ? "  " : "", (int)w[c], head[c]);
	putchar('\n');
	for (size_t i = 0; i < n; i++) {
		for (size_t c = 0; c < NCOL; c++)
			printf(c < 3 ? "%s%-*s" : "%s%*s", c ? "  " : "", (int)w[c], cell[i][c]);
		putchar('\n');
	}
	free(cell);
}

int cli_stat_main(struct kvn_client *c, int argc, char **argv)
{
	struct kvn_cluster_stat cs;
	struct kvn_node_stat *nodes = kvn_xcalloc(STAT_NODES_MAX, sizeof *nodes);
	int json, rc;

	if (cli_stat_args(argc, argv, &json) != 0) {
		free(nodes);
		return 2;
	}
	rc = kvn_stat_cluster(c, &cs, nodes, STAT_NODES_MAX);
	if (rc) {
		free(nodes);
		return cli_fail("stat", rc, c);
	}
	size_t n = cs.nodes < STAT_NODES_MAX ? cs.nodes : STAT_NODES_MAX;
	if (json)
		print_json(&cs, nodes, n);
	else
		print_human(&cs, nodes, n);
	free(nodes);
	return 0;
}
