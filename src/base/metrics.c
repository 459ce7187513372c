/*
 * metrics: the process-wide metrics registry (metrics.h).  Every bump is
 * one relaxed atomic add on a fixed slot; out-of-range arguments are
 * clamped or ignored, never written past an array.
 */
#include "config.h"

#include "base/base.h"
#include "base/metrics.h"

struct kvn_metrics kvn_metrics_g;

/* 0.1ms .. 10s, Prometheus-style: a fsync on a disk is in the ms range */
const uint64_t kvn_metric_lat_bounds_us[KVN_METRIC_LAT_BUCKETS - 1] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 10000000,
};

#define ADD(p, n) __atomic_add_fetch((p), (n), __ATOMIC_RELAXED)

static int role_ok(int role)
{
	return role > KVN_METRIC_NONE && role < KVN_METRIC_ROLES;
}

unsigned kvn_metric_result_index(int status)
{
	if (status == 0)
		return 0;
	if (status < 0 && status >= KVN_ERR_MIN && -status < KVN_METRIC_RESULTS - 1)
		return (unsigned)-status;
	return KVN_METRIC_RESULTS - 1;
}

const char *kvn_metric_result_name(unsigned idx)
{
	if (idx == 0)
		return "ok";
	if (idx >= KVN_METRIC_RESULTS - 1)
		return "other";
	return kvn_err_name(-(int)idx);
}

void kvn_metric_request(int role, unsigned type, int status)
{
	if (role_ok(role) && type < KVN_METRIC_OPS)
		ADD(&kvn_metrics_g.requests[role][type][kvn_metric_result_index(status)], 1);
}

void kvn_metric_bytes_in(int role, uint64_t n)
{
	if (role_ok(role))
		ADD(&kvn_metrics_g.bytes_in[role], n);
}

void kvn_metric_bytes_out(int role, uint64_t n)
{
	if (role_ok(role))
		ADD(&kvn_metrics_g.bytes_out[role], n);
}

void kvn_metric_conn_accepted(int role)
{
	if (role_ok(role))
		ADD(&kvn_metrics_g.conns_accepted[role], 1);
}

void kvn_metric_conn_open(int role, int remote, int delta)
{
	if (role_ok(role))
		ADD(&kvn_metrics_g.conns_open[role][remote >= 0 && remote < KVN_METRIC_REMOTES ? remote : 0],
		    (int64_t)delta);
}

void kvn_metric_hits(int role, uint64_t n)
{
	if (role_ok(role))
		ADD(&kvn_metrics_g.hits[role], n);
}

void kvn_metric_misses(int role, uint64_t n)
{
	if (role_ok(role))
		ADD(&kvn_metrics_g.misses[role], n);
}

void kvn_metric_commit_us(uint64_t us)
{
	unsigned b = 0;
	while (b < KVN_METRIC_LAT_BUCKETS - 1 && us > kvn_metric_lat_bounds_us[b])
		b++;
	ADD(&kvn_metrics_g.commit_buckets[b], 1);
	ADD(&kvn_metrics_g.commit_sum_us, us);
}

void kvn_metric_start(void)
{
	uint64_t zero = 0;
	uint64_t now = kvn_now_ms();
	if (__atomic_compare_exchange_n(&kvn_metrics_g.start_mono_ms, &zero, now ? now : 1, 0, __ATOMIC_RELAXED,
					__ATOMIC_RELAXED))
		__atomic_store_n(&kvn_metrics_g.start_wall_ms, kvn_wall_ms(), __ATOMIC_RELAXED);
}

uint64_t kvn_metric_uptime_ms(void)
{
	uint64_t s = __atomic_load_n(&kvn_metrics_g.start_mono_ms, __ATOMIC_RELAXED);
	uint64_t now = kvn_now_ms();
	return s && now > s ? now - s : 0;
}
