/*
 * util: monotonic time, checked allocation for bookkeeping, random bytes,
 * hex, address splitting, the project's one key hash and the text form of
 * a counter.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <xxhash.h>
#if (defined(__x86_64__) || defined(__i386__)) && defined(__has_include)
#if __has_include(<xxh_x86dispatch.h>)
#define XXH_DISPATCH_DISABLE_REPLACE /* kvn_xxh3 says which one it calls */
#include <xxh_x86dispatch.h>
#define XXH3_DISPATCH 1
#endif
#endif

#include "base.h"

static const uint64_t *virtual_now_ms;

void kvn_clock_virtual(const uint64_t *now_ms)
{
	__atomic_store_n(&virtual_now_ms, now_ms, __ATOMIC_RELEASE);
}

uint64_t kvn_now_ns(void)
{
	struct timespec ts;
	const uint64_t *v = __atomic_load_n(&virtual_now_ms, __ATOMIC_ACQUIRE);
	if (v)
		return *v * 1000000ull;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t kvn_now_ms(void)
{
	return kvn_now_ns() / 1000000ull;
}

uint64_t kvn_wall_ms(void)
{
	struct timespec ts;
	const uint64_t *v = __atomic_load_n(&virtual_now_ms, __ATOMIC_ACQUIRE);
	/* under a virtual clock (the simulation) records and deadlines move
	 * with it too, from a fixed wall-clock-like origin (2025-01-01) */
	if (v)
		return 1735689600000ull + *v;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

void *kvn_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		kvn_fatal("out of memory allocating %zu bytes", n);
	return p;
}

void *kvn_xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz ? sz : 1);
	if (!p)
		kvn_fatal("out of memory allocating %zu x %zu bytes", n, sz);
	return p;
}

char *kvn_xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");
	if (!p)
		kvn_fatal("out of memory");
	return p;
}

int kvn_random(void *buf, size_t n)
{
	unsigned char *p = buf;
	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return KVN_EIO;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

void kvn_stat_fprint(void *arg, const char *name, const char *doc, uint64_t value)
{
	(void)doc;
	fprintf(arg, "%s %" PRIu64 "\n", name, value);
}

void kvn_stat_sprint(void *arg, const char *name, const char *doc, uint64_t value)
{
	struct kvn_stat_text *t = arg;
	int n;

	(void)doc;
	if (t->rc || t->cap == 0)
		return;
	n = snprintf(t->buf + t->len, t->cap - t->len, "%s %" PRIu64 "\n", name, value);
	if (n < 0 || (size_t)n >= t->cap - t->len) {
		t->buf[t->len] = '\0'; /* whole lines only */
		t->rc = KVN_ERANGE;
		return;
	}
	t->len += (size_t)n;
}

void kvn_hex(char *out, const void *s, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = s;
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

void kvn_key_printable(char *out, size_t cap, const void *key, size_t klen)
{
	const unsigned char *k = key;
	int printable = 1;
	size_t i;

	if (cap == 0)
		return;
	for (i = 0; i < klen; i++)
		if (k[i] < 0x20 || k[i] > 0x7e) {
			printable = 0;
			break;
		}
	if (printable) {
		size_t n = klen < cap - 1 ? klen : cap - 1;
		memcpy(out, k, n);
		out[n] = '\0';
		if (klen > n && cap > 4)
			memcpy(out + cap - 4, "...", 4);
		return;
	}
	if (cap < 6) {
		out[0] = '\0';
		return;
	}
	memcpy(out, "hex:", 4);
	size_t room = (cap - 5) / 2;
	size_t n = klen < room ? klen : room;
	kvn_hex(out + 4, k, n);
}

void kvn_str_quote(char *out, size_t cap, const void *s, size_t len)
{
	static const char hexd[] = "0123456789abcdef";
	const unsigned char *p = s;
	size_t o = 0, i;

	if (cap < 8) {
		if (cap)
			out[0] = '\0';
		return;
	}
	out[o++] = '"';
	for (i = 0; i < len; i++) {
		char tmp[4];
		size_t n;
		if (p[i] == '"' || p[i] == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)p[i];
			n = 2;
		} else if (p[i] >= 0x20 && p[i] <= 0x7e) {
			tmp[0] = (char)p[i];
			n = 1;
		} else {
			tmp[0] = '\\';
			tmp[1] = 'x';
			tmp[2] = hexd[p[i] >> 4];
			tmp[3] = hexd[p[i] & 15];
			n = 4;
		}
		/* room for this, the closing quote and NUL, and "..." if more follows */
		if (o + n + 2 + (i + 1 < len ? 3 : 0) > cap) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(out + o, tmp, n);
		o += n;
	}
	out[o++] = '"';
	out[o] = '\0';
}

/* A name made only of node.id's characters (letters, digits, '.', '_',
 * '-') cannot be mistaken for anything else in a line and stays as it is,
 * so logs read `node p1 attached`; anything else is quoted and escaped. */
const char *kvn_str_q(char out[KVN_Q_CAP], const char *s)
{
	size_t n = s ? strlen(s) : 0, i;

	for (i = 0; i < n && n < KVN_Q_CAP; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '.' || s[i] == '_' || s[i] == '-'))
			break;
	if (n > 0 && i == n && n < KVN_Q_CAP) {
		memcpy(out, s, n + 1);
		return out;
	}
	kvn_str_quote(out, KVN_Q_CAP, s ? s : "", n);
	return out;
}

int kvn_split_hostport(const char *addr, char *host, size_t hostcap, uint16_t *port)
{
	const char *colon, *hs, *he;
	char *end;
	unsigned long p;

	if (!addr || !*addr)
		return KVN_EINVAL;
	if (addr[0] == '[') {
		he = strchr(addr, ']');
		if (!he || he[1] != ':')
			return KVN_EINVAL;
		hs = addr + 1;
		colon = he + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || strchr(addr, ':') != colon)
			return KVN_EINVAL;
		hs = addr;
		he = colon;
	}
	if (he == hs || (size_t)(he - hs) >= hostcap)
		return KVN_EINVAL;
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || p > 65535)
		return KVN_EINVAL;
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	*port = (uint16_t)p;
	return 0;
}

uint64_t kvn_hash64(const void *key, size_t len)
{
	return XXH64(key, len, 0);
}

uint64_t kvn_xxh3(const void *p, size_t n)
{
#if XXH3_DISPATCH
	return XXH3_64bits_dispatch(p, n);
#else
	return XXH3_64bits(p, n);
#endif
}

void kvn_xxh3_update(void *state, const void *p, size_t n)
{
#if XXH3_DISPATCH
	XXH3_64bits_update_dispatch(state, p, n);
#else
	XXH3_64bits_update(state, p, n);
#endif
}

int kvn_boot_id(char *out, size_t cap)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
	if (!f)
		return KVN_EIO;
	char *ok = fgets(out, (int)cap, f);
	fclose(f);
	if (!ok)
		return KVN_EIO;
	out[strcspn(out, "\n")] = '\0';
	return out[0] ? 0 : KVN_EIO;
}
