/*
 * bench_stats: the load generator's measuring tools: a log-linear latency
 * histogram (under 0.4% error from 1 ns to 2^40 ns, merged across threads),
 * the value pattern that lets every get be checked against its key, and the
 * run's key prefix and key names.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

/* ---- latency histogram ------------------------------------------------------
 * Log-linear like HdrHistogram: exact below 256 ns, then 128 linear buckets
 * per power of two, so a bucket spans < 1/128 of its value; reporting the
 * bucket's middle keeps the error under 0.4%. */
static size_t hist_index(uint64_t v)
{
	if (v < H_SUB)
		return (size_t)v;
	int msb = 63 - __builtin_clzll(v);
	int shift = msb - (H_BITS - 1);
	return H_SUB + (size_t)(msb - H_BITS) * H_HALF + (size_t)((v >> shift) - H_HALF);
}

void bench_hist_add(struct hist *h, uint64_t v)
{
	h->b[hist_index(v)]++;
	h->max = v > h->max ? v : h->max;
	h->n++;
	h->sum += v;
}

void bench_hist_merge(struct hist *into, const struct hist *h)
{
	for (size_t i = 0; i < H_BUCKETS; i++)
		into->b[i] += h->b[i];
	into->max = h->max > into->max ? h->max : into->max;
	into->n += h->n;
	into->sum += h->sum;
}

/* Value at quantile q (0..1]: the middle of its bucket, at most the max. */
uint64_t bench_hist_quantile(const struct hist *h, double q)
{
	uint64_t rank = (uint64_t)(q * (double)h->n + 0.999999), seen = 0;
	if (h->n == 0)
		return 0;
	if (rank < 1)
		rank = 1;
	for (size_t i = 0; i < H_BUCKETS; i++) {
		seen += h->b[i];
		if (seen < rank)
			continue;
		uint64_t lo = i, width = 1;
		if (i >= H_SUB) {
			size_t j = i - H_SUB;
			int shift = (int)(j / H_HALF) + 1;
			lo = (uint64_t)(H_HALF + j % H_HALF) << shift;
			width = 1ull << shift;
		}
		uint64_t v = lo + (width - 1) / 2;
		return v > h->max ? h->max : v;
	}
	return h->max;
}

/* ---- values: a fixed pseudo-random base stamped per key ---------------------
 * Every PATTERN_BLOCK bytes start with tag(key) ^ offset and the last 8 bytes
 * hold ~tag(key), so a value of the wrong key, a misplaced block or a
 * truncated tail all show.  Stamping costs one store per block, which keeps
 * it off the critical path even at 16 MiB. */
uint64_t bench_key_tag(uint64_t k)
{
	uint64_t z = k + 0x9e3779b97f4a7c15ull; /* splitmix64 */
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void bench_pattern_base(unsigned char *v, size_t n)
{
	uint64_t x = 0x6b766e6f64652121ull;
	for (size_t o = 0; o < n; o += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(v + o, &x, n - o < 8 ? n - o : 8);
	}
}

void bench_pattern_stamp(unsigned char *v, size_t n, uint64_t k)
{
	uint64_t tag = bench_key_tag(k), w;
	if (n < 8) {
		memcpy(v, &tag, n);
		return;
	}
	for (size_t o = 0; o + 8 <= n; o += PATTERN_BLOCK) {
		w = tag ^ o;
		memcpy(v + o, &w, 8);
	}
	if (n >= 16) {
		w = ~tag;
		memcpy(v + n - 8, &w, 8);
	}
}

/* O(1) check used on the timed path: head and tail stamps. */
int bench_pattern_quick_ok(const unsigned char *v, size_t n, uint64_t k)
{
	uint64_t tag = bench_key_tag(k), w;
	if (n < 8)
		return memcmp(v, &tag, n) == 0;
	memcpy(&w, v, 8);
	if (w != tag)
		return 0;
	if (n >= 16) {
		memcpy(&w, v + n - 8, 8);
		return w == ~tag;
	}
	return 1;
}

/* ---- key names ---- */

/* Set once by bench_prefix_set before any thread starts, read-only after. */
static char prefix[BENCH_PREFIX_MAX + 1];
static size_t prefix_len;

int bench_prefix_ok(const char *p)
{
	size_t n = strlen(p);
	/* what a memcached key and a command line take without quoting */
	return n >= 1 && n <= BENCH_PREFIX_MAX &&
	       strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-/") == n;
}

void bench_prefix_set(const char *given)
{
	char host[33] = "";

	if (given) {
		snprintf(prefix, sizeof prefix, "%s", given);
	} else {
		/* the host's name as far as it is a plain name: a key never needs quoting */
		if (gethostname(host, sizeof host - 1) != 0)
			host[0] = '\0';
		host[sizeof host - 1] = '\0';
		host[strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")] = '\0';
		snprintf(prefix, sizeof prefix, "bench-%s-%ld-", host[0] ? host : "host", (long)getpid());
	}
	prefix_len = strlen(prefix);
}

const char *bench_prefix(void)
{
	return prefix;
}

/* prefix + decimal k without printf: this runs once per item on the timed
 * path. */
size_t bench_key_format(char *out, uint64_t k)
{
	char d[24], *p = d + sizeof(d);
	do
		*--p = (char)('0' + k % 10);
	while (k /= 10);
	memcpy(out, prefix, prefix_len);
	memcpy(out + prefix_len, p, (size_t)(d + sizeof(d) - p));
	return prefix_len + (size_t)(d + sizeof(d) - p);
}


int bench_settle_key(char *out, size_t cap, unsigned client)
{
	return snprintf(out, cap, "%ssettle-%u", prefix, client);
}
