/*
 * http_metrics: GET /metrics, the Prometheus text exposition format 0.0.4.
 * Every family has its # HELP and # TYPE lines, names are kvnode_*; the
 * role's counter lists (MASTER_STATS_FIELDS, PEER_*_STATS_FIELDS) are
 * rendered through their _each visitors, so a counter added there shows
 * up here without a line of this file.  docs/monitoring.md lists them.
 */
#include "config.h"

#include <inttypes.h>
#include <string.h>

#include "http/http_int.h"
#include "base/base.h"
#include "base/metrics.h"
#include "net/net.h"

static const char *const role_names[KVN_METRIC_ROLES] = { "none", "master", "peer" };
static const char *const remote_names[KVN_METRIC_REMOTES] = { "unknown", "master", "peer", "client" };

/* # HELP (backslash and newline escaped, as the format asks) and # TYPE */
static void family(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(b, "# HELP %s ", name);
	for (const char *p = help; *p; p++) {
		if (*p == '\\')
			evbuffer_add(b, "\\\\", 2);
		else if (*p == '\n')
			evbuffer_add(b, "\\n", 2);
		else
			evbuffer_add(b, p, 1);
	}
	evbuffer_add_printf(b, "\n# TYPE %s %s\n", name, type);
}

void http_label_str(struct evbuffer *b, const char *s)
{
	evbuffer_add(b, "\"", 1);
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			evbuffer_add_printf(b, "\\%c", *s);
		else if (*s == '\n')
			evbuffer_add(b, "\\n", 2);
		else
			evbuffer_add(b, s, 1);
	}
	evbuffer_add(b, "\"", 1);
}

static void sample_u(struct evbuffer *b, const char *name, uint64_t v)
{
	evbuffer_add_printf(b, "%s %" PRIu64 "\n", name, v);
}

/* one counter list through its visitor: kvnode_<prefix>_<name>_total, or
 * a gauge without _total when its doc starts with "gauge:" */
struct each_ctx {
	struct evbuffer *b;
	const char *prefix;
};

static void each_fn(void *arg, const char *name, const char *doc, uint64_t value)
{
	struct each_ctx *c = arg;
	char full[160];
	int gauge = strncmp(doc, "gauge:", 6) == 0;

	snprintf(full, sizeof full, "kvnode_%s_%s%s", c->prefix, name, gauge ? "" : "_total");
	family(c->b, full, gauge ? "gauge" : "counter", doc);
	sample_u(c->b, full, value);
}

static void process_metrics(struct http_server *h, struct evbuffer *b)
{
	const struct kvn_metrics *m = &kvn_metrics_g;
	const char *role = role_names[h->role];
	uint64_t up = kvn_metric_uptime_ms();

	family(b, "kvnode_build_info", "gauge",
	       "Build of this process: version, wire protocol version, RDMA built (yes/no); always 1.");
	evbuffer_add_printf(b, "kvnode_build_info{version=\"%s\",wire_version=\"%d\",rdma=\"%s\"} 1\n",
			    PACKAGE_VERSION, WIRE_VERSION,
#ifdef HAVE_RDMA
			    "yes"
#else
			    "no"
#endif
	);
	family(b, "kvnode_uptime_seconds", "gauge", "Seconds since this process started.");
	evbuffer_add_printf(b, "kvnode_uptime_seconds %" PRIu64 ".%03" PRIu64 "\n", up / 1000, up % 1000);
	family(b, "kvnode_start_time_seconds", "gauge", "When this process started, seconds since the Unix epoch.");
	uint64_t st = kvn_metric_load(&m->start_wall_ms);
	evbuffer_add_printf(b, "kvnode_start_time_seconds %" PRIu64 ".%03" PRIu64 "\n", st / 1000, st % 1000);

	family(b, "kvnode_requests_total", "counter",
	       "Reply frames this role's listener connections wrote, by wire type (op) and the reply header's "
	       "status (result: ok or the KVN_E* name; a batch's per-item results are not in it). "
	       "Only combinations seen so far are listed.");
	for (unsigned op = 0; op < KVN_METRIC_OPS; op++)
		for (unsigned r = 0; r < KVN_METRIC_RESULTS; r++) {
			uint64_t v = kvn_metric_load(&m->requests[h->role][op][r]);
			if (!v)
				continue;
			evbuffer_add_printf(b, "kvnode_requests_total{role=\"%s\",op=\"%s\",result=\"%s\"} %" PRIu64 "\n",
					    role, wire_type_name((int)op), kvn_metric_result_name(r), v);
		}
	family(b, "kvnode_received_bytes_total", "counter", "Socket bytes read by this role's listener connections.");
	evbuffer_add_printf(b, "kvnode_received_bytes_total{role=\"%s\"} %" PRIu64 "\n", role,
			    kvn_metric_load(&m->bytes_in[h->role]));
	family(b, "kvnode_sent_bytes_total", "counter", "Socket bytes written by this role's listener connections.");
	evbuffer_add_printf(b, "kvnode_sent_bytes_total{role=\"%s\"} %" PRIu64 "\n", role,
			    kvn_metric_load(&m->bytes_out[h->role]));
	family(b, "kvnode_connections_accepted_total", "counter", "Connections this role's listener accepted.");
	evbuffer_add_printf(b, "kvnode_connections_accepted_total{listener=\"%s\"} %" PRIu64 "\n", role,
			    kvn_metric_load(&m->conns_accepted[h->role]));
	family(b, "kvnode_connections_open", "gauge",
	       "Authenticated connections open on this role's listener, by the remote's role.");
	for (int r = 1; r < KVN_METRIC_REMOTES; r++) {
		int64_t v = __atomic_load_n(&m->conns_open[h->role][r], __ATOMIC_RELAXED);
		evbuffer_add_printf(b, "kvnode_connections_open{listener=\"%s\",remote=\"%s\"} %" PRId64 "\n", role,
				    remote_names[r], v < 0 ? 0 : v);
	}
	family(b, "kvnode_get_hits_total", "counter",
	       "Keys found: GET items a peer served (role=peer); GET and ROUTE_GET keys in the master's index "
	       "(role=master).");
	evbuffer_add_printf(b, "kvnode_get_hits_total{role=\"%s\"} %" PRIu64 "\n", role,
			    kvn_metric_load(&m->hits[h->role]));
	family(b, "kvnode_get_misses_total", "counter",
	       "Keys not found: GET items a peer answered KVN_ENOTFOUND (role=peer); GET and ROUTE_GET keys "
	       "not in the master's index (role=master).");
	evbuffer_add_printf(b, "kvnode_get_misses_total{role=\"%s\"} %" PRIu64 "\n", role,
			    kvn_metric_load(&m->misses[h->role]));
	family(b, "kvnode_http_requests_total", "counter",
	       "Requests this HTTP endpoint answered, by path and status class (2xx, 4xx, 5xx).");
	static const char *const cls[3] = { "2xx", "4xx", "5xx" };
	for (int p = 0; p < HTTP_NPATHS; p++)
		for (int c = 0; c < 3; c++)
			evbuffer_add_printf(b, "kvnode_http_requests_total{path=\"%s\",code=\"%s\"} %" PRIu64 "\n",
					    http_path_name(p), cls[c], h->served[p][c]);
}

static void commit_histogram(struct evbuffer *b)
{
	const struct kvn_metrics *m = &kvn_metrics_g;
	uint64_t cum = 0;

	family(b, "kvnode_sqlite_commit_seconds", "histogram",
	       "Time the master's SQLite writer spent in each COMMIT of master.db (failed ones too).");
	for (int i = 0; i < KVN_METRIC_LAT_BUCKETS; i++) {
		cum += kvn_metric_load(&m->commit_buckets[i]);
		if (i < KVN_METRIC_LAT_BUCKETS - 1)
			evbuffer_add_printf(b, "kvnode_sqlite_commit_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
					    (double)kvn_metric_lat_bounds_us[i] / 1e6, cum);
		else
			evbuffer_add_printf(b, "kvnode_sqlite_commit_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
	}
	uint64_t sum = kvn_metric_load(&m->commit_sum_us);
	evbuffer_add_printf(b, "kvnode_sqlite_commit_seconds_sum %" PRIu64 ".%06" PRIu64 "\n", sum / 1000000,
			    sum % 1000000);
	/* the buckets' total, read once: +Inf and _count always agree */
	evbuffer_add_printf(b, "kvnode_sqlite_commit_seconds_count %" PRIu64 "\n", cum);
}

/* one gauge per node of the master's table */
static void node_gauge(struct evbuffer *b, const struct http_snap *s, const char *name, const char *help,
		       size_t off)
{
	family(b, name, "gauge", help);
	for (uint32_t i = 0; i < s->nnodes; i++) {
		const struct master_view_node *n = &s->nodes[i];
		evbuffer_add_printf(b, "%s{node=", name);
		http_label_str(b, n->node_id);
		evbuffer_add_printf(b, "} %" PRIu64 "\n", *(const uint64_t *)((const char *)n + off));
	}
}

static void master_metrics(const struct http_snap *s, struct evbuffer *b)
{
	struct each_ctx c = { b, "master" };

	master_stats_each(&s->ms, each_fn, &c);
	commit_histogram(b);
	if (!s->have_master)
		return;
	family(b, "kvnode_master_db_degraded", "gauge",
	       "1 while master.db writes fail (the writer probes until one commits), else 0.");
	sample_u(b, "kvnode_master_db_degraded", (uint64_t)s->mv.db_degraded);
	family(b, "kvnode_objects", "gauge", "Keys in the master's index.");
	sample_u(b, "kvnode_objects", s->mv.objects);
	family(b, "kvnode_object_bytes", "gauge", "Value bytes of the keys in the master's index.");
	sample_u(b, "kvnode_object_bytes", s->mv.bytes);
	family(b, "kvnode_nodes", "gauge", "Peers in the master's node table.");
	sample_u(b, "kvnode_nodes", s->mv.nodes);
	family(b, "kvnode_node_up", "gauge", "1 when the master routes to this peer now (STAT's alive), else 0.");
	for (uint32_t i = 0; i < s->nnodes; i++) {
		evbuffer_add(b, "kvnode_node_up{node=", strlen("kvnode_node_up{node="));
		http_label_str(b, s->nodes[i].node_id);
		evbuffer_add_printf(b, "} %d\n", s->nodes[i].alive ? 1 : 0);
	}
#define NG(name, field, help) node_gauge(b, s, name, help, offsetof(struct master_view_node, field))
	NG("kvnode_node_dram_total_bytes", dram_total, "DRAM tier size of the peer, as it last reported.");
	NG("kvnode_node_dram_used_bytes", dram_used, "DRAM tier bytes in use on the peer, as it last reported.");
	NG("kvnode_node_disk_total_bytes", disk_total, "Disk tier size of the peer (0: none).");
	NG("kvnode_node_disk_used_bytes", disk_used, "Disk tier bytes in use on the peer, as it last reported.");
	NG("kvnode_node_objects", objects, "Keys the master's index places on the peer.");
	NG("kvnode_node_event_lag", event_lag,
	   "Events the peer said (last attach or heartbeat) it had produced that the master had not applied "
	   "yet when it said so.");
	NG("kvnode_node_last_seen_age_ms", seen_ago_ms, "Milliseconds since the peer's last attach or heartbeat.");
#undef NG
}

static void peer_metrics(const struct http_snap *s, struct evbuffer *b)
{
	struct each_ctx c = { b, "peer" };

	if (!s->have_peer)
		return;
	peer_stats_each(&s->pv.stats, each_fn, &c);
	c.prefix = "peer_slot";
	peer_slot_stats_each(&s->pv.slots, each_fn, &c);
	c.prefix = "peer_tier";
	peer_tier_stats_each(&s->pv.tiers, each_fn, &c);
	family(b, "kvnode_peer_attached", "gauge", "1 while the peer is attached to its master, else 0.");
	sample_u(b, "kvnode_peer_attached", (uint64_t)s->pv.attached);
	family(b, "kvnode_keys", "gauge", "Keys committed on this peer (both tiers).");
	sample_u(b, "kvnode_keys", s->pv.keys);
	family(b, "kvnode_dram_total_bytes", "gauge", "The DRAM tier's arena size (peer.dram_size).");
	sample_u(b, "kvnode_dram_total_bytes", s->pv.dram_total);
	family(b, "kvnode_dram_used_bytes", "gauge", "Arena bytes in use by committed values (whole pages).");
	sample_u(b, "kvnode_dram_used_bytes", s->pv.dram_used);
	family(b, "kvnode_dram_pending_bytes", "gauge", "Arena bytes reserved by puts still arriving.");
	sample_u(b, "kvnode_dram_pending_bytes", s->pv.dram_pending);
	family(b, "kvnode_disk_total_bytes", "gauge", "The disk tier's size (peer.disk_size; 0: no disk tier).");
	sample_u(b, "kvnode_disk_total_bytes", s->pv.disk_total);
	family(b, "kvnode_disk_used_bytes", "gauge", "Disk tier bytes in use, as its writer last said.");
	sample_u(b, "kvnode_disk_used_bytes", s->pv.disk_used);
	family(b, "kvnode_disk_readonly", "gauge", "1 once a disk tier write or fsync failed (no more writes).");
	sample_u(b, "kvnode_disk_readonly", (uint64_t)s->pv.disk_readonly);
	family(b, "kvnode_disk_hung", "gauge", "1 while the disk writer does not answer in time.");
	sample_u(b, "kvnode_disk_hung", (uint64_t)s->pv.disk_hung);
}

void http_render_metrics(struct http_server *h, const struct http_snap *s, struct evbuffer *out)
{
	process_metrics(h, out);
	if (h->role == KVN_METRIC_MASTER)
		master_metrics(s, out);
	else
		peer_metrics(s, out);
}
