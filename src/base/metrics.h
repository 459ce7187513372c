/*
 * metrics: the process-wide registry of what /metrics exports that no
 * role's own counter list already holds: requests by listener role, wire
 * type and result, bytes and connections by listener role, GET hits and
 * misses, SQLite commit latency, the process start.  Fixed-size arrays of
 * counters bumped with relaxed atomics: nothing is allocated or locked on
 * the hot path, and any thread may read while others write (a reader sees
 * each counter whole, not a consistent set).  src/http/ renders it.
 */
#ifndef KVN_METRICS_H
#define KVN_METRICS_H

#include <stdint.h>

/* The listener a server-side connection was accepted by (net_opts
 * .metrics_role); NONE: not counted (client connections of libkvnode). */
enum kvn_metric_role { KVN_METRIC_NONE = 0, KVN_METRIC_MASTER = 1, KVN_METRIC_PEER = 2 };
#define KVN_METRIC_ROLES 3
/* wire types are 1..127 (net.h, WIRE_TYPE_MAX_WIRE) */
#define KVN_METRIC_OPS 128
/* result index: 0 ok, -status for KVN_E* (kvnode.h: down to KVN_ERR_MIN),
 * KVN_METRIC_RESULTS - 1 for anything else */
#define KVN_METRIC_RESULTS 32
/* the remote's authenticated role (auth.h: AUTH_ROLE_MASTER 1, PEER 2,
 * CLIENT 3; 0 unknown) */
#define KVN_METRIC_REMOTES 4
/* SQLite COMMIT latency buckets, upper bounds in microseconds (the last
 * bucket is +Inf) */
#define KVN_METRIC_LAT_BUCKETS 15
extern const uint64_t kvn_metric_lat_bounds_us[KVN_METRIC_LAT_BUCKETS - 1];

struct kvn_metrics {
	uint64_t requests[KVN_METRIC_ROLES][KVN_METRIC_OPS][KVN_METRIC_RESULTS];
	uint64_t bytes_in[KVN_METRIC_ROLES], bytes_out[KVN_METRIC_ROLES];
	uint64_t conns_accepted[KVN_METRIC_ROLES];
	int64_t conns_open[KVN_METRIC_ROLES][KVN_METRIC_REMOTES]; /* authenticated */
	uint64_t hits[KVN_METRIC_ROLES], misses[KVN_METRIC_ROLES];
	/* not cumulative; their total is the count, so a reader's +Inf
	 * bucket and _count always agree */
	uint64_t commit_buckets[KVN_METRIC_LAT_BUCKETS];
	uint64_t commit_sum_us;
	uint64_t start_wall_ms, start_mono_ms;
};
extern struct kvn_metrics kvn_metrics_g;

/* A reply frame a listener's connection wrote: type is the wire type,
 * status the header's (0 or KVN_E*). */
void kvn_metric_request(int role, unsigned type, int status);
void kvn_metric_bytes_in(int role, uint64_t n);
void kvn_metric_bytes_out(int role, uint64_t n);
void kvn_metric_conn_accepted(int role);
/* delta +1 when a connection authenticated as `remote`, -1 when it ends */
void kvn_metric_conn_open(int role, int remote, int delta);
/* GET items (peer) or GET/ROUTE_GET keys (master): found / not found */
void kvn_metric_hits(int role, uint64_t n);
void kvn_metric_misses(int role, uint64_t n);
void kvn_metric_commit_us(uint64_t us);
/* Remember when the process started (kvnode.c, once; later calls keep the
 * first); uptime is measured from it. */
void kvn_metric_start(void);
uint64_t kvn_metric_uptime_ms(void);
/* An atomic read of one counter of the registry. */
static inline uint64_t kvn_metric_load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}
/* The result index of a status, and back to its name ("ok", "KVN_E...",
 * "other"). */
unsigned kvn_metric_result_index(int status);
const char *kvn_metric_result_name(unsigned idx);

#endif
