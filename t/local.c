/* t/local: the same-host path (issue 17) through real kvnode processes.
 * matrix: put, get, batch put, batch get (allocating), exists, get by
 * generation and remove on both transports (client.local = auto reads the
 * arena, off stays on TCP), each checked to have taken the path it says.
 * lease_race: a lease that expires in the middle of a copy, its pages
 * reused by other values before the copy reads them: the get never returns
 * those bytes (the copy fails its stamp check and is read again).  killed: a
 * local client killed (SIGKILL) while it holds a read lease, PENDING slots
 * and a staging region leaves nothing behind after the TTLs.  fallback: a
 * host id that is not ours, a socket that is gone, a map side channel that
 * is gone: the client works over TCP, with at most one log line.
 * verify: client.local_verify: puts of a stamp client (no client-side
 * hashing: the peer sums the bytes as it stores them) read back over TCP
 * and by a checksum client, which check the stored sum, and the other
 * way round.  small: with the default client.local_min_size, small values
 * go through the master in one round trip and large ones take the
 * same-host path, by the client's counters. */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "client/client.h"
#include "kvnode.h"
#include "proc.h"
#include "tap.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

static const char *node_of(struct kvn_client *c, char *out, size_t cap)
{
	struct kvn_node_stat st[2];
	size_t n = 0;
	uint64_t objs;
	out[0] = '\0';
	if (kvn_stat(c, st, 2, &n, &objs) == 0 && n >= 1)
		snprintf(out, cap, "%s", st[0].node_id);
	return out;
}

static struct kvn_client *connect_with(const char *conf, const char *local);
/* A client with client.local = auto and local_verify = verify. */
static struct kvn_client *connect_verify(const char *conf, const char *verify)
{
	char local[64];
	snprintf(local, sizeof local, "auto\nlocal_verify = %s", verify);
	return connect_with(conf, local);
}

static struct kvn_client *connect_raw(const char *conf, const char *local, const char *extra);
/* The transport itself: every value size takes the path named
 * (client.local_min_size = 0; the case small tests the default). */
static struct kvn_client *connect_with(const char *conf, const char *local)
{
	return connect_raw(conf, local, "local_min_size = 0\n");
}

static struct kvn_client *connect_raw(const char *conf, const char *local, const char *extra)
{
	char path[400];
	FILE *in = fopen(conf, "r"), *out;
	char buf[4096];
	size_t k;
	snprintf(path, sizeof path, "%s.%.8s", conf, local);
	path[strcspn(path, "\n")] = '\0';
	if (!*extra)
		strncat(path, ".default", sizeof path - strlen(path) - 1);
	out = fopen(path, "w");
	if (!in || !out)
		kvn_fatal("cannot copy %s", conf);
	while ((k = fread(buf, 1, sizeof buf, in)) > 0)
		fwrite(buf, 1, k, out);
	fprintf(out, "[client]\nlocal = %s\n%s", local, extra);
	fclose(in);
	fclose(out);
	return proc_connect_ready(path, 1);
}

static uint64_t cstat(struct kvn_client *c, const char *name)
{
	struct client_stats st;
	client_get_stats(c, &st);
	if (strcmp(name, "via_get_served") == 0)
		return st.via_get_served;
	if (strcmp(name, "via_put_stored") == 0)
		return st.via_put_stored;
	if (strcmp(name, "local_gets") == 0)
		return st.local_gets;
	if (strcmp(name, "local_puts") == 0)
		return st.local_puts;
	if (strcmp(name, "local_stale") == 0)
		return st.local_stale;
	if (strcmp(name, "local_fallbacks") == 0)
		return st.local_fallbacks;
	return UINT64_MAX;
}

/* ---- matrix ---- */

static void matrix_on(const char *conf, const char *local)
{
	int on = strcmp(local, "auto") == 0;
	struct kvn_client *c = connect_with(conf, local);
	char node[65], key[32];
	ok(c != NULL, "%s: client connected", local);
	if (!c)
		return;
	node_of(c, node, sizeof node);
	uint8_t *v = kvn_xmalloc(MIB), *g = kvn_xmalloc(MIB);
	proc_fill(v, MIB, on ? 1 : 2);
	size_t vlen = 0;
	is_int(kvn_put(c, "m-big", 5, v, MIB, 0), 0, "%s: put 1 MiB", local);
	is_int(kvn_put(c, "m-small", 7, "abc", 3, 0), 0, "%s: put 3 bytes", local);
	is_int(kvn_put(c, "m-empty", 7, "", 0, 0), 0, "%s: put an empty value", local);
	is_int(client_local_active(c, node), on, "%s: the same-host path is %s", local, on ? "used" : "not used");
	memset(g, 0, MIB);
	ok(kvn_get(c, "m-big", 5, g, MIB, &vlen) == 0 && vlen == MIB && memcmp(g, v, MIB) == 0,
	   "%s: get 1 MiB, byte for byte", local);
	ok(kvn_get(c, "m-small", 7, g, 16, &vlen) == 0 && vlen == 3 && memcmp(g, "abc", 3) == 0, "%s: get 3 bytes",
	   local);
	ok(kvn_get(c, "m-empty", 7, g, 16, &vlen) == 0 && vlen == 0, "%s: get an empty value", local);
	is_int(kvn_get(c, "m-big", 5, g, 100, &vlen), KVN_ERANGE, "%s: a small buffer: KVN_ERANGE", local);
	is_int(vlen, MIB, "%s: ... with the size", local);
	is_int(kvn_get(c, "m-none", 6, g, 16, &vlen), KVN_ENOTFOUND, "%s: a missing key", local);
	/* batches */
	enum { N = 8 };
	struct kvn_item it[N];
	char keys[N][16];
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof keys[i], "m-b%d", i);
		it[i] = (struct kvn_item){ .key = keys[i], .klen = strlen(keys[i]), .val = v + i * 64 * KIB,
					   .vlen = 64 * KIB };
	}
	is_int(kvn_batch_put(c, it, N, 0), 0, "%s: batch put of 8", local);
	for (int i = 0; i < N; i++)
		it[i] = (struct kvn_item){ .key = keys[i], .klen = strlen(keys[i]) };
	is_int(kvn_batch_get(c, it, N), 0, "%s: batch get of 8 (allocating)", local);
	int good = 0;
	for (int i = 0; i < N; i++) {
		good += it[i].status == 0 && it[i].vlen == 64 * KIB && memcmp(it[i].val, v + i * 64 * KIB, 64 * KIB) == 0;
		free(it[i].val);
	}
	is_int(good, N, "%s: every value byte for byte", local);
	for (int i = 0; i < N; i++)
		it[i] = (struct kvn_item){ .key = keys[i], .klen = strlen(keys[i]) };
	is_int(kvn_batch_exists(c, it, N), 0, "%s: batch exists", local);
	/* by generation: the old one is gone after a re-put */
	uint64_t g1 = 0, g2 = 0;
	snprintf(key, sizeof key, "m-ref");
	is_int(kvn_put_gen(c, key, 5, v, 4096, 0, &g1), 0, "%s: put (gen)", local);
	is_int(kvn_put_gen(c, key, 5, v + 1, 4096, 0, &g2), 0, "%s: re-put (gen)", local);
	ok(kvn_get_gen(c, key, 5, g2, g, 4096, &vlen) == 0 && memcmp(g, v + 1, 4096) == 0, "%s: get by gen", local);
	is_int(kvn_get_gen(c, key, 5, g1, g, 4096, &vlen), KVN_ESTALE, "%s: the old gen: KVN_ESTALE", local);
	is_int(kvn_remove(c, "m-big", 5), 0, "%s: remove", local);
	is_int(kvn_get(c, "m-big", 5, g, MIB, &vlen), KVN_ENOTFOUND, "%s: removed", local);
	/* the transport really was the one named */
	if (on) {
		ok(cstat(c, "local_gets") >= 12, "auto: the gets read the shared arena (%llu)",
		   (unsigned long long)cstat(c, "local_gets"));
		ok(cstat(c, "local_puts") >= 12, "auto: the puts went through the staging region (%llu)",
		   (unsigned long long)cstat(c, "local_puts"));
	} else {
		is_int(cstat(c, "local_gets") + cstat(c, "local_puts"), 0, "off: nothing went through shared memory");
	}
	is_int(cstat(c, "local_stale"), 0, "%s: no copy failed its check", local);
	kvn_close(c);
	free(v);
	free(g);
}

static void t_matrix(void)
{
	char conf[300];
	proc_start_node("mx", "32MiB", "[peer]\nhugepages = off\n", conf, sizeof conf);
	matrix_on(conf, "auto");
	matrix_on(conf, "off");
}

/* ---- small ---- */

/* The counters of c that say which path its items took. */
struct paths {
	uint64_t vg, vp, lg, lp;
};

static struct paths paths_of(struct kvn_client *c)
{
	return (struct paths){ cstat(c, "via_get_served"), cstat(c, "via_put_stored"), cstat(c, "local_gets"),
			       cstat(c, "local_puts") };
}

/* How many items took each path since *was; *was moves on. */
static void took(struct kvn_client *c, struct paths *was, const char *what, uint64_t vg, uint64_t vp, uint64_t lg,
		 uint64_t lp)
{
	struct paths now = paths_of(c);
	ok(now.vg - was->vg == vg && now.vp - was->vp == vp && now.lg - was->lg == lg && now.lp - was->lp == lp,
	   "%s: via-master get %llu put %llu, same-host get %llu put %llu (want %llu %llu %llu %llu)", what,
	   (unsigned long long)(now.vg - was->vg), (unsigned long long)(now.vp - was->vp),
	   (unsigned long long)(now.lg - was->lg), (unsigned long long)(now.lp - was->lp), (unsigned long long)vg,
	   (unsigned long long)vp, (unsigned long long)lg, (unsigned long long)lp);
	*was = now;
}

static void async_done(void *arg, int status)
{
	*(int *)arg = status;
}

/* client.local_min_size (default 256 KiB) on an all-in-one node: values
 * below it go through the master in one round trip (counted as served or
 * stored by the master's peer), larger ones, and gets into a buffer the
 * library allocates, take the same-host path. */
static void t_small(void)
{
	char conf[300], node[65];
	proc_start_node("small", "32MiB", "[peer]\nhugepages = off\n", conf, sizeof conf);
	struct kvn_client *c = connect_raw(conf, "auto", "");
	ok(c != NULL, "a client with the default client.local_min_size");
	if (!c)
		return;
	uint8_t *v = kvn_xmalloc(2 * MIB), *g = kvn_xmalloc(MIB);
	size_t vlen = 0;
	proc_fill(v, 2 * MIB, 9);
	/* the first put learns the route (ROUTE_PUT), after which puts may go
	 * through the master */
	is_int(kvn_put(c, "s-first", 7, v, 4 * KIB, 0), 0, "first put");
	is_int(client_local_active(c, node_of(c, node, sizeof node)), 1, "the same-host path is attached");
	struct paths was = paths_of(c);
	is_int(kvn_put(c, "s-4k", 4, v, 4 * KIB, 0), 0, "put 4 KiB");
	took(c, &was, "put 4 KiB", 0, 1, 0, 0);
	is_int(kvn_put(c, "s-255k", 6, v, 256 * KIB - 1, 0), 0, "put 256 KiB - 1");
	took(c, &was, "put 256 KiB - 1", 0, 1, 0, 0);
	is_int(kvn_put(c, "s-1m", 4, v + 1, MIB, 0), 0, "put 1 MiB");
	took(c, &was, "put 1 MiB", 0, 0, 0, 1);
	ok(kvn_get(c, "s-4k", 4, g, 4 * KIB, &vlen) == 0 && vlen == 4 * KIB && memcmp(g, v, vlen) == 0,
	   "get 4 KiB into 4 KiB, byte for byte");
	took(c, &was, "get into 4 KiB", 1, 0, 0, 0);
	ok(kvn_get(c, "s-1m", 4, g, MIB, &vlen) == 0 && vlen == MIB && memcmp(g, v + 1, vlen) == 0,
	   "get 1 MiB into 1 MiB, byte for byte");
	took(c, &was, "get into 1 MiB", 0, 0, 1, 0);
	/* a get's size is its buffer's */
	ok(kvn_get(c, "s-4k", 4, g, MIB, &vlen) == 0 && vlen == 4 * KIB && memcmp(g, v, vlen) == 0,
	   "get 4 KiB into 1 MiB");
	took(c, &was, "a small value into a large buffer", 0, 0, 1, 0);
	is_int(kvn_get(c, "s-1m", 4, g, 4 * KIB, &vlen), KVN_ERANGE, "get 1 MiB into 4 KiB: KVN_ERANGE");
	is_int(vlen, MIB, "... with the size");
	void *a = NULL;
	ok(kvn_get_alloc(c, "s-4k", 4, &a, &vlen) == 0 && vlen == 4 * KIB && memcmp(a, v, vlen) == 0,
	   "get 4 KiB, allocating");
	free(a);
	took(c, &was, "an allocating get", 0, 0, 1, 0);
	/* batches: each item by its own size */
	struct kvn_item it[4] = {
		{ .key = "s-b0", .klen = 4, .val = v + 2, .vlen = 4 * KIB },
		{ .key = "s-b1", .klen = 4, .val = v + 3, .vlen = MIB },
		{ .key = "s-b2", .klen = 4, .val = v + 4, .vlen = 64 * KIB },
		{ .key = "s-b3", .klen = 4, .val = v + 5, .vlen = 2 * MIB - 5 },
	};
	is_int(kvn_batch_put(c, it, 4, 0), 0, "batch put 4 KiB, 1 MiB, 64 KiB, 2 MiB");
	took(c, &was, "the batch put", 0, 2, 0, 2);
	uint8_t *bufs[4];
	size_t caps[4] = { 4 * KIB, MIB, 64 * KIB, 2 * MIB };
	for (int i = 0; i < 4; i++) {
		bufs[i] = kvn_xmalloc(caps[i]);
		it[i].val = bufs[i];
		it[i].cap = caps[i];
		it[i].vlen = 0;
	}
	is_int(kvn_batch_get(c, it, 4), 0, "batch get of the four");
	int good = 0;
	for (int i = 0; i < 4; i++) {
		size_t want = i == 3 ? 2 * MIB - 5 : caps[i];
		good += it[i].status == 0 && it[i].vlen == want && memcmp(bufs[i], v + 2 + i, want) == 0;
		free(bufs[i]);
	}
	is_int(good, 4, "every value byte for byte");
	took(c, &was, "the batch get", 2, 0, 2, 0);
	/* async puts choose the same way (a large one goes to the peer: async
	 * puts have no same-host path) */
	int s1 = 1, s2 = 1;
	is_int(kvn_put_async(c, "s-a0", 4, v, 4 * KIB, 0, async_done, &s1), 0, "async put 4 KiB");
	is_int(kvn_put_async(c, "s-a1", 4, v, MIB, 0, async_done, &s2), 0, "async put 1 MiB");
	is_int(kvn_drain(c), 2, "drained: two callbacks");
	ok(s1 == 0 && s2 == 0, "both stored");
	took(c, &was, "the async puts", 0, 1, 0, 0);
	is_int(cstat(c, "local_stale"), 0, "no copy failed its check");
	kvn_close(c);
	free(v);
	free(g);
}

/* ---- lease_race ---- */

struct race {
	struct kvn_client *other;
	uint8_t *fill;
	int fired;
};

/* Runs after the peer granted the lease, before the copy: wait until the
 * lease has expired (peer.read_lease_ttl 100 ms), then make the pages be
 * reused: remove the value, write twice the arena's size of other values,
 * and put a new value under the key. */
static void race_hook(void *arg, const void *key, size_t klen)
{
	struct race *r = arg;
	if (r->fired || klen != 4 || memcmp(key, "race", 4) != 0)
		return;
	r->fired = 1;
	usleep(400 * 1000);
	(void)kvn_remove(r->other, "race", 4);
	for (int i = 0; i < 8; i++) {
		char k[16];
		snprintf(k, sizeof k, "fill%d", i);
		proc_fill(r->fill, MIB, 100 + (uint64_t)i);
		(void)kvn_put(r->other, k, strlen(k), r->fill, MIB, 0);
	}
	proc_fill(r->fill, MIB, 7);
	(void)kvn_put(r->other, "race", 4, r->fill, MIB, 0);
}

static void t_lease_race(void)
{
	char conf[300];
	struct race r = { 0 };
	proc_start_node("race", "4MiB", "[peer]\nhugepages = off\nread_lease_ttl = 100ms\n", conf, sizeof conf);
	struct kvn_client *c = connect_with(conf, "auto");
	r.other = connect_with(conf, "auto");
	ok(c && r.other, "node with a 4 MiB arena and 100 ms read leases; two clients");
	if (!c || !r.other)
		return;
	uint8_t *v = kvn_xmalloc(MIB), *g = kvn_xmalloc(MIB), *want = kvn_xmalloc(MIB);
	r.fill = kvn_xmalloc(MIB);
	proc_fill(v, MIB, 5);
	proc_fill(want, MIB, 7);
	is_int(kvn_put(c, "race", 4, v, MIB, 0), 0, "put 1 MiB");
	size_t vlen = 0;
	client_set_local_copy_hook(c, race_hook, &r);
	int rc = kvn_get(c, "race", 4, g, MIB, &vlen);
	client_set_local_copy_hook(c, NULL, NULL);
	ok(r.fired, "the hook ran between the lease and the copy");
	is_int(cstat(c, "local_stale"), 1, "the copy failed its stamp check: the pages had been reused");
	is_int(rc, 0, "the get still answers");
	ok(vlen == MIB && memcmp(g, want, MIB) == 0, "with the value put last, never the reused pages' bytes");
	ok(memcmp(g, v, MIB) != 0, "(not the value whose lease ran out either: it was removed)");
	kvn_close(r.other);
	kvn_close(c);
	free(v);
	free(g);
	free(want);
	free(r.fill);
}

/* ---- verify ---- */

/* Put with w (1 MiB and a batch of three 64 KiB values), read with r: 0 or
 * the first error, every byte compared. */
static int put_read(struct kvn_client *w, struct kvn_client *r, const char *tag, uint8_t *v, uint8_t *g)
{
	char k[32];
	size_t vlen = 0;
	int rc;
	snprintf(k, sizeof k, "%s-big", tag);
	proc_fill(v, MIB, (uint64_t)strlen(tag) * 31 + (uint64_t)tag[0]);
	if ((rc = kvn_put(w, k, strlen(k), v, MIB, 0)) != 0)
		return rc;
	if ((rc = kvn_get(r, k, strlen(k), g, MIB, &vlen)) != 0)
		return rc;
	if (vlen != MIB || memcmp(g, v, MIB) != 0)
		return KVN_EPROTO;
	struct kvn_item it[3];
	char keys[3][32];
	for (int i = 0; i < 3; i++) {
		snprintf(keys[i], sizeof keys[i], "%s-b%d", tag, i);
		it[i] = (struct kvn_item){ .key = keys[i], .klen = strlen(keys[i]), .val = v + i * 64 * KIB,
					   .vlen = 64 * KIB };
	}
	if ((rc = kvn_batch_put(w, it, 3, 0)) != 0)
		return rc;
	for (int i = 0; i < 3; i++) {
		it[i] = (struct kvn_item){ .key = keys[i], .klen = strlen(keys[i]), .val = g + i * 64 * KIB,
					   .cap = 64 * KIB };
	}
	if ((rc = kvn_batch_get(r, it, 3)) != 0)
		return rc;
	return memcmp(g, v, 3 * 64 * KIB) == 0 ? 0 : KVN_EPROTO;
}

static void t_verify(void)
{
	char conf[300];
	proc_start_node("vf", "32MiB", "[peer]\nhugepages = off\n", conf, sizeof conf);
	struct kvn_client *st = connect_verify(conf, "stamp"), *cs = connect_verify(conf, "checksum"),
			  *tcp = connect_with(conf, "off");
	ok(st && cs && tcp, "clients: local stamp, local checksum, TCP");
	if (!st || !cs || !tcp)
		return;
	uint8_t *v = kvn_xmalloc(MIB), *g = kvn_xmalloc(MIB);
	is_int(put_read(st, tcp, "st-tcp", v, g), 0, "stamp puts (the peer sums), TCP gets (check the sum)");
	is_int(put_read(st, cs, "st-cs", v, g), 0, "stamp puts, checksum gets (check the sum on the copy)");
	is_int(put_read(cs, st, "cs-st", v, g), 0, "checksum puts, stamp gets");
	is_int(put_read(tcp, st, "tcp-st", v, g), 0, "TCP puts, stamp gets");
	ok(cstat(st, "local_puts") >= 4 && cstat(st, "local_gets") >= 4 && cstat(cs, "local_gets") >= 4,
	   "the local clients took the local path");
	is_int(cstat(st, "local_stale") + cstat(cs, "local_stale"), 0, "no copy failed its check");
	kvn_close(st);
	kvn_close(cs);
	kvn_close(tcp);
	free(v);
	free(g);
}

/* ---- killed ---- */

/* The peer's gauge `name` from its HTTP endpoint (GET /metrics). */
static long long metric(uint16_t port, const char *name)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	static char buf[1 << 20];
	size_t n = 0;
	ssize_t k;
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	const char *req = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
	if (write(fd, req, strlen(req)) < 0) {
		close(fd);
		return -1;
	}
	while (n < sizeof buf - 1 && (k = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
		n += (size_t)k;
	close(fd);
	buf[n] = '\0';
	char pat[128];
	snprintf(pat, sizeof pat, "\n%s ", name);
	char *p = strstr(buf, pat);
	return p ? atoll(p + strlen(pat)) : -1;
}

/* Descriptors of pid that are staging memfds. */
static int staging_fds(pid_t pid)
{
	char dir[64], path[384], link[256];
	int n = 0;
	snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
	DIR *d = opendir(dir);
	struct dirent *e;
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		ssize_t k = readlink(path, link, sizeof link - 1);
		if (k > 0) {
			link[k] = '\0';
			n += strstr(link, "kvnode-staging") != NULL;
		}
	}
	closedir(d);
	return n;
}

static void die_now(void *arg, const void *key, size_t klen)
{
	(void)arg;
	(void)key;
	(void)klen;
	raise(SIGKILL); /* holding the read lease, before any release */
}

static void t_killed(void)
{
	char conf[300], extra[300];
	uint16_t http = proc_free_port();
	snprintf(extra, sizeof extra,
		 "[peer]\nhugepages = off\nread_lease_ttl = 300ms\npending_ttl = 1s\nhttp = 127.0.0.1:%u\n", http);
	pid_t node = proc_start_node("kill", "16MiB", extra, conf, sizeof conf);
	struct kvn_client *c = connect_with(conf, "off");
	ok(c != NULL, "node up; a TCP client to watch");
	if (!c)
		return;
	fflush(stdout);
	pid_t child = fork();
	if (child == 0) {
		struct kvn_client *lc = connect_with(conf, "auto");
		static uint8_t v[MIB];
		if (!lc || kvn_put(lc, "kv", 2, v, MIB, 0) != 0)
			_exit(2);
		struct kvn_slot s[2] = { { .key = "ks0", .klen = 3, .size = 64 * KIB },
					 { .key = "ks1", .klen = 3, .size = 64 * KIB } };
		if (kvn_alloc_slots(lc, s, 2) != 0)
			_exit(3);
		client_set_local_copy_hook(lc, die_now, NULL);
		size_t vlen;
		(void)kvn_get(lc, "kv", 2, v, MIB, &vlen);
		_exit(4); /* not reached: the hook killed us */
	}
	int status = 0;
	ok(proc_wait(child, 20000, &status) == 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	   "the local client put, reserved two slots, took a lease and was killed");
	/* the peer saw the connection close: its staging region is gone */
	int fds = -1;
	for (int i = 0; i < 100 && (fds = staging_fds(node)) != 0; i++)
		usleep(20000);
	is_int(fds, 0, "the peer holds no staging region any more");
	ok(metric(http, "kvnode_dram_pending_bytes") > 0, "right after: the PENDING slots still hold pages");
	is_int(kvn_remove(c, "kv", 2), 0, "the value it was reading is removed");
	/* past both TTLs (300 ms) and a few heartbeats */
	long long used = -1, pend = -1;
	for (int i = 0; i < 100; i++) {
		used = metric(http, "kvnode_dram_used_bytes");
		pend = metric(http, "kvnode_dram_pending_bytes");
		if (used == 0 && pend == 0)
			break;
		usleep(50000);
	}
	is_int(pend, 0, "after the TTLs: no PENDING slot is left");
	is_int(used, 0, "... and every arena page is free again (no lease keeps the removed value)");
	kvn_close(c);
}

/* ---- fallback ---- */

/* Run fn with this process's stderr in a file; how many lines of it
 * contain text. */
static int count_stderr(void (*fn)(void *), void *arg, const char *text)
{
	char path[300], line[1024];
	snprintf(path, sizeof path, "%s/stderr.txt", proc_tmp);
	fflush(stderr);
	int saved = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 2);
	close(fd);
	fn(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	FILE *f = fopen(path, "r");
	int n = 0;
	while (f && fgets(line, sizeof line, f))
		n += strstr(line, text) != NULL;
	if (f)
		fclose(f);
	return n;
}

struct fb {
	const char *conf, *host, *what;
	int worked, active, fallbacks;
};

static void fb_run(void *arg)
{
	struct fb *f = arg;
	struct kvn_client *c = connect_with(f->conf, "auto");
	char node[65];
	uint8_t g[64];
	size_t vlen = 0;
	if (!c)
		return;
	if (f->host)
		client_set_test_host(c, f->host);
	node_of(c, node, sizeof node);
	f->worked = 1;
	for (int i = 0; i < 3; i++) {
		char k[16];
		snprintf(k, sizeof k, "fb%d", i);
		f->worked &= kvn_put(c, k, strlen(k), "value", 5, 0) == 0;
		f->worked &= kvn_get(c, k, strlen(k), g, sizeof g, &vlen) == 0 && vlen == 5 && memcmp(g, "value", 5) == 0;
	}
	f->active = client_local_active(c, node);
	f->fallbacks = (int)cstat(c, "local_fallbacks");
	kvn_close(c);
}

static void t_fallback(void)
{
	char conf[300], conf2[300], path[400];
	proc_start_node("fb", "16MiB", "[peer]\nhugepages = off\n", conf, sizeof conf);
	proc_start_node("fb2", "16MiB", "[peer]\nhugepages = off\n", conf2, sizeof conf2);
	struct kvn_client *w = proc_connect_ready(conf, 1), *w2 = proc_connect_ready(conf2, 1);
	ok(w && w2, "two nodes up");
	if (!w || !w2)
		return;
	kvn_close(w);
	kvn_close(w2);

	struct fb f = { .conf = conf, .host = "0badc0de-not-this-host", .what = "another host" };
	int lines = count_stderr(fb_run, &f, "same-host path failed");
	ok(f.worked, "a peer that says it is on another host: puts and gets work");
	is_int(f.active, 0, "over TCP");
	is_int(lines, 0, "not a failure: no line");

	snprintf(path, sizeof path, "%s/var-fb/peer.sock", proc_tmp);
	is_int(unlink(path), 0, "the peer's socket is removed");
	f = (struct fb){ .conf = conf, .what = "no socket" };
	lines = count_stderr(fb_run, &f, "same-host path failed");
	ok(f.worked, "no socket: puts and gets work");
	is_int(f.active, 0, "over TCP");
	is_int(f.fallbacks, 1, "one failed attempt (the next waits for its pause)");
	is_int(lines, 1, "one log line");

	snprintf(path, sizeof path, "%s/var-fb2/peer.sock.map", proc_tmp);
	is_int(unlink(path), 0, "the other peer's map side channel is removed");
	f = (struct fb){ .conf = conf2, .what = "no map" };
	lines = count_stderr(fb_run, &f, "same-host path failed");
	ok(f.worked, "the map refused: puts and gets work");
	is_int(f.active, 0, "over TCP");
	is_int(lines, 1, "one log line");
}

/* The map side channel holds at most 64 requests at once: idle
 * connections of a misbehaving same-user process pin no more fds than
 * that; the next is closed at accept, clients fall back to TCP meanwhile
 * and come back to the local path once the channel is free. */
static void t_map_cap(void)
{
	char conf[300], path[400];
	enum { HOLD = 64 };
	int fds[HOLD], held = 0;
	proc_start_node("cap", "16MiB", "[peer]\nhugepages = off\n", conf, sizeof conf);
	struct kvn_client *w = proc_connect_ready(conf, 1);
	ok(w != NULL, "node up");
	if (!w)
		return;
	kvn_close(w);
	snprintf(path, sizeof path, "%s/var-cap/peer.sock.map", proc_tmp);
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	if (!ok(strlen(path) < sizeof un.sun_path, "the channel's path fits a Unix socket address"))
		return;
	memcpy(un.sun_path, path, strlen(path) + 1);
	for (int i = 0; i < HOLD; i++) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&un, sizeof un) == 0)
			fds[held++] = fd;
		else if (fd >= 0)
			close(fd);
	}
	is_int(held, HOLD, "%d idle connections to the map channel", HOLD);
	usleep(200 * 1000); /* the peer's loop accepts them */
	int extra = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ok(extra >= 0 && connect(extra, (struct sockaddr *)&un, sizeof un) == 0, "one more connects (the backlog)");
	struct pollfd pf = { .fd = extra, .events = POLLIN };
	char b;
	ok(poll(&pf, 1, 3000) == 1 && read(extra, &b, 1) == 0, "and is closed at once, not held");
	close(extra);
	struct fb f = { .conf = conf, .what = "channel full" };
	fb_run(&f);
	ok(f.worked, "a client meanwhile: puts and gets work");
	is_int(f.active, 0, "over TCP");
	for (int i = 0; i < held; i++)
		close(fds[i]);
	usleep(200 * 1000);
	f = (struct fb){ .conf = conf, .what = "channel free" };
	fb_run(&f);
	ok(f.worked && f.active == 1, "once they are gone, a new client takes the same-host path");
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "matrix", t_matrix },
		{ "lease_race", t_lease_race },
		{ "killed", t_killed },
		{ "fallback", t_fallback },
		{ "map_cap", t_map_cap },
		{ "verify", t_verify },
		{ "small", t_small },
		{ NULL, NULL },
	};

	if (proc_init("local") != 0)
		return 1;
	proc_logs_on_failure = 1;
	proc_watchdog(120);
	return tap_run(tests, argc, argv);
}
