/* t/tier_api: issue 13's client API from the outside: a program using only
 * include/kvnode.h (t/proc.h starts the node: an all-in-one kvnode with an
 * 8 MiB DRAM tier and no disk tier; a second one with peer.pin_ttl_max =
 * 1s for the pin TTL cap).  It checks:
 *   - kvn_put_opts / kvn_batch_put_opts with a TTL: readable at once,
 *     KVN_ENOTFOUND (and kvn_exists 0) once it passed; ttl 0 never expires;
 *   - pins of many keys survive 10x dram_size of other puts; a batch evict
 *     of pinned keys answers KVN_EHELD per item and leaves them; unpinned,
 *     the same batch evict drops them (no disk tier: KVN_ENOTFOUND after);
 *   - a mixed batch evict reports each item's own outcome;
 *   - a pin TTL above peer.pin_ttl_max is cut to it (not refused): the pin
 *     holds, then ends by itself; a short pin ends by itself too;
 *   - edges: pin TTL 0 is KVN_EINVAL, n = 0 is a no-op even with NULL
 *     items, NULL items with n > 0 KVN_EINVAL, bad keys per item;
 *   - a leased value survives an eviction storm: a reader process stopped
 *     in the middle of a GET reply (as in t/lease) holds a read lease while
 *     10x dram_size of other values is put; let go, it receives the value's
 *     exact bytes (its own node: DRAM of a few values, read_lease_ttl 60s).
 * Every case starts the node when it first needs it, so a case runs alone
 * (t/each_case.sh). */
#include "config.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "kvnode.h"
#include "proc.h"
#include "tap.h"

#define DRAM (8u << 20)
#define NPIN 48                 /* pinned values of PIN_SZ: 3 MiB of the 8 */
#define PIN_SZ (64u << 10)
#define FILL_SZ (256u << 10)    /* the eviction storm's values */
#define FILL_BATCH 8
#define PIN_TTL_MAX_MS 1000     /* peer.pin_ttl_max of the second node */

#define CONF_CAP 300
static char conf[CONF_CAP], conf_cap[CONF_CAP];
static struct kvn_client *cl, *cl_cap;

static struct kvn_client *start(struct kvn_client **c, const char *name, char *cf, const char *extra)
{
	char text[300];
	if (*c)
		return *c;
	snprintf(text, sizeof text, "[peer]\npage_size = 4KiB\nhugepages = off\nevict = lru\n%s", extra);
	proc_start_node(name, "8MiB", text, cf, CONF_CAP);
	*c = proc_connect_ready(cf, 1);
	if (!*c)
		kvn_fatal("node %s did not come up within 20 s (see its log)", name);
	return *c;
}

/* The node and a client attached to it, started on first use. */
static struct kvn_client *node(void)
{
	return start(&cl, "aio", conf, "");
}

/* The node whose pins last PIN_TTL_MAX_MS at most. */
static struct kvn_client *node_capped(void)
{
	return start(&cl_cap, "capped", conf_cap, "pin_ttl_max = 1s\n");
}

/* Items keyed "<prefix><i>", i in [0, n), keys in keys[], values (when v is
 * not NULL) sz bytes each from seed + i in v + i * sz. */
static void items_of(struct kvn_item *it, char (*keys)[32], int n, const char *prefix, uint8_t *v, size_t sz,
		     uint64_t seed)
{
	for (int i = 0; i < n; i++) {
		snprintf(keys[i], sizeof keys[i], "%s%d", prefix, i);
		memset(&it[i], 0, sizeof it[i]);
		it[i].key = keys[i];
		it[i].klen = strlen(keys[i]);
		if (v) {
			proc_fill(v + (size_t)i * sz, sz, seed + (uint64_t)i);
			it[i].val = v + (size_t)i * sz;
			it[i].vlen = sz;
		}
	}
}

/* Statuses no call writes (not 0, not a KVN_E* code): a "per item"
 * assertion then fails when the call left an item untouched. */
static struct kvn_item *poison(struct kvn_item *it, int n)
{
	for (int i = 0; i < n; i++)
		it[i].status = 1;
	return it;
}

/* How many of items[0..n) have status want. */
static int count_status(const struct kvn_item *it, int n, int want)
{
	int k = 0;
	for (int i = 0; i < n; i++)
		k += it[i].status == want;
	return k;
}

/* Get each key of it[0..n) into a malloc'd copy; how many came back with
 * v's bytes (sz each).  statuses stay in it[].status. */
static int good_back(struct kvn_client *c, struct kvn_item *it, int n, const uint8_t *v, size_t sz)
{
	int good = 0;
	for (int i = 0; i < n; i++) {
		it[i].val = NULL;
		it[i].cap = 0;
		it[i].vlen = 0;
	}
	kvn_batch_get(c, it, (size_t)n);
	for (int i = 0; i < n; i++) {
		good += it[i].status == 0 && it[i].vlen == sz && memcmp(it[i].val, v + (size_t)i * sz, sz) == 0;
		free(it[i].val);
		it[i].val = NULL;
	}
	return good;
}

/* Put `bytes` of FILL_SZ values under keys "<prefix><i>" in batches; how
 * many batches failed (the first failure's code in *first).  The values
 * are made once (nothing reads them back): a storm of a GiB stays quick. */
static int storm(struct kvn_client *c, const char *prefix, uint64_t bytes, int *first)
{
	static uint8_t v[FILL_BATCH * FILL_SZ];
	static int made;
	struct kvn_item it[FILL_BATCH];
	char keys[FILL_BATCH][32];
	int failed = 0;
	*first = 0;
	for (uint64_t done = 0, b = 0; done < bytes; done += FILL_BATCH * FILL_SZ, b++) {
		char pre[24];
		snprintf(pre, sizeof pre, "%s%llu.", prefix, (unsigned long long)b);
		items_of(it, keys, FILL_BATCH, pre, made ? NULL : v, FILL_SZ, 1000);
		made = 1;
		for (int i = 0; i < FILL_BATCH; i++) {
			it[i].val = v + (size_t)i * FILL_SZ;
			it[i].vlen = FILL_SZ;
		}
		int rc = kvn_batch_put(c, it, FILL_BATCH, 0);
		if (rc) {
			failed++;
			if (!*first)
				*first = rc;
		}
	}
	return failed;
}

static void t_put_ttl(void)
{
	struct kvn_client *c = node();
	uint8_t v[5000], g[5000];
	size_t vlen = 0;
	struct kvn_put_opts o;

	proc_fill(v, sizeof v, 1);
	memset(&o, 0, sizeof o);
	o.ttl_ms = 500;
	is_int(kvn_put_opts(c, "ttl1", 4, v, sizeof v, &o), 0, "kvn_put_opts with ttl 500 ms");
	ok(o.gen > 0, "it reports the generation stored (%llu)", (unsigned long long)o.gen);
	is_int(kvn_get(c, "ttl1", 4, g, sizeof g, &vlen), 0, "readable at once");
	ok(vlen == sizeof v && memcmp(g, v, sizeof v) == 0, "with its bytes");
	memset(&o, 0, sizeof o);
	is_int(kvn_put_opts(c, "ttl0", 4, v, sizeof v, &o), 0, "kvn_put_opts with ttl 0 (none)");
	o.flags = 1u << 30;
	is_int(kvn_put_opts(c, "ttlx", 4, v, sizeof v, &o), KVN_EINVAL, "an unknown flag bit: KVN_EINVAL");
	o.flags = 0;
	is_int(kvn_put_opts(c, "", 0, v, sizeof v, &o), KVN_EKEYLEN, "an empty key: KVN_EKEYLEN");
	usleep(1200 * 1000);
	is_int(kvn_get(c, "ttl1", 4, g, sizeof g, &vlen), KVN_ENOTFOUND, "past its TTL: KVN_ENOTFOUND");
	is_int(kvn_exists(c, "ttl1", 4), 0, "and kvn_exists says 0");
	is_int(kvn_get(c, "ttl0", 4, g, sizeof g, &vlen), 0, "ttl 0 has not expired");
	/* a TTL put over a plain value replaces it, TTL included */
	o.ttl_ms = 300;
	is_int(kvn_put_opts(c, "ttl0", 4, v, 100, &o), 0, "overwrite it with a 300 ms TTL");
	usleep(800 * 1000);
	is_int(kvn_exists(c, "ttl0", 4), 0, "the new generation's TTL applies");
}

static void t_batch_put_ttl(void)
{
	struct kvn_client *c = node();
	enum { N = 16, SZ = 20000 };
	static uint8_t v[N * SZ];
	struct kvn_item it[N];
	char keys[N][32];
	struct kvn_put_opts o;

	memset(&o, 0, sizeof o);
	o.ttl_ms = 500;
	items_of(it, keys, N, "bttl", v, SZ, 100);
	is_int(kvn_batch_put_opts(c, it, N, &o), 0, "kvn_batch_put_opts of %d items with ttl 500 ms", N);
	is_int(good_back(c, it, N, v, SZ), N, "every item reads back at once");
	usleep(1200 * 1000);
	good_back(c, it, N, v, SZ);
	is_int(count_status(it, N, KVN_ENOTFOUND), N, "past the TTL every item is KVN_ENOTFOUND");
	is_int(kvn_batch_put_opts(c, NULL, 0, &o), 0, "n = 0 with NULL items: nothing to do");
	is_int(kvn_batch_put_opts(c, NULL, 2, &o), KVN_EINVAL, "NULL items with n = 2: KVN_EINVAL");
}

static void t_pin_storm(void)
{
	struct kvn_client *c = node();
	static uint8_t v[NPIN * PIN_SZ];
	struct kvn_item it[NPIN];
	char keys[NPIN][32];
	int first = 0;

	items_of(it, keys, NPIN, "pin", v, PIN_SZ, 200);
	is_int(kvn_batch_put(c, it, NPIN, 0), 0, "put %d values of 64 KiB", NPIN);
	is_int(kvn_batch_pin(c, poison(it, NPIN), NPIN, 120000), 0, "pin all of them for 2 minutes");
	is_int(count_status(it, NPIN, 0), NPIN, "every item pinned");
	int failed = storm(c, "st", 10ull * DRAM, &first);
	is_int(failed, 0, "10x dram_size of other puts all succeed beside the pins (first error %s)",
	       first ? kvn_strerror(first) : "none");
	is_int(good_back(c, it, NPIN, v, PIN_SZ), NPIN, "every pinned value reads back byte for byte");

	int rc = kvn_batch_evict(c, poison(it, NPIN), NPIN);
	is_int(rc, KVN_EHELD, "kvn_batch_evict of pinned values: KVN_EHELD");
	is_int(count_status(it, NPIN, KVN_EHELD), NPIN, "for every item");
	is_int(good_back(c, it, NPIN, v, PIN_SZ), NPIN, "and they are still there");

	is_int(kvn_batch_unpin(c, poison(it, NPIN), NPIN), 0, "unpin them");
	is_int(count_status(it, NPIN, 0), NPIN, "every item unpinned");
	is_int(kvn_batch_evict(c, poison(it, NPIN), NPIN), 0, "now kvn_batch_evict succeeds");
	is_int(count_status(it, NPIN, 0), NPIN, "for every item");
	good_back(c, it, NPIN, v, PIN_SZ);
	is_int(count_status(it, NPIN, KVN_ENOTFOUND), NPIN, "no disk tier: evicted values are gone (KVN_ENOTFOUND)");
}

static void t_evict_mixed(void)
{
	struct kvn_client *c = node();
	enum { SZ = 10000 };
	static uint8_t v[3 * SZ];
	struct kvn_item it[3];
	char keys[3][32];

	items_of(it, keys, 2, "mix", v, SZ, 300); /* mix0 plain, mix1 pinned */
	is_int(kvn_batch_put(c, it, 2, 0), 0, "put two values");
	is_int(kvn_batch_pin(c, &it[1], 1, 30000), 0, "pin the second");
	items_of(it, keys, 3, "mix", NULL, 0, 0);
	snprintf(keys[2], sizeof keys[2], "mix-missing");
	it[2].klen = strlen(keys[2]);
	int rc = kvn_batch_evict(c, poison(it, 3), 3);
	ok(rc == KVN_EHELD || rc == KVN_ENOTFOUND, "a mixed batch evict returns an item's error (%s)",
	   kvn_strerror(rc));
	is_int(it[0].status, 0, "the plain value is evicted");
	is_int(it[1].status, KVN_EHELD, "the pinned one is refused: KVN_EHELD");
	is_int(it[2].status, KVN_ENOTFOUND, "the missing one: KVN_ENOTFOUND");
	is_int(kvn_exists(c, "mix0", 4), 0, "the evicted value is gone");
	is_int(kvn_exists(c, "mix1", 4), 1, "the pinned one is not");
	kvn_batch_unpin(c, &it[1], 1);
}

static void t_pin_ttl(void)
{
	struct kvn_client *c = node_capped();
	uint8_t v[4096];
	struct kvn_item it;
	uint64_t t0;
	int rc = KVN_EHELD;

	proc_fill(v, sizeof v, 400);
	memset(&it, 0, sizeof it);
	it.key = "capped";
	it.klen = 6;
	is_int(kvn_put(c, "capped", 6, v, sizeof v, 0), 0, "put a value");
	t0 = kvn_now_ms();
	is_int(kvn_batch_pin(c, &it, 1, UINT64_MAX), 0, "pin it with ttl UINT64_MAX: cut to pin_ttl_max, not refused");
	is_int(kvn_batch_evict(c, &it, 1), KVN_EHELD, "the pin holds");
	while (rc == KVN_EHELD && kvn_now_ms() - t0 < PIN_TTL_MAX_MS + 4000) {
		usleep(100 * 1000);
		rc = kvn_batch_evict(c, &it, 1);
	}
	uint64_t dt = kvn_now_ms() - t0;
	is_int(rc, 0, "it ends by itself: evict succeeds after %llu ms", (unsigned long long)dt);
	ok(dt >= PIN_TTL_MAX_MS / 2, "not before pin_ttl_max could have passed (%llu ms)", (unsigned long long)dt);

	is_int(kvn_put(c, "short", 5, v, sizeof v, 0), 0, "put another");
	it.key = "short";
	it.klen = 5;
	is_int(kvn_batch_pin(c, &it, 1, 200), 0, "pin it for 200 ms");
	usleep(900 * 1000);
	is_int(kvn_batch_evict(c, &it, 1), 0, "after it passed, evict succeeds");
}

static void t_edges(void)
{
	struct kvn_client *c = node();
	uint8_t v[100] = { 1 };
	struct kvn_item it[3];

	memset(it, 0, sizeof it);
	it[0].key = "edge";
	it[0].klen = 4;
	is_int(kvn_put(c, "edge", 4, v, sizeof v, 0), 0, "put a value");
	is_int(kvn_batch_pin(c, it, 1, 0), KVN_EINVAL, "pin ttl 0: KVN_EINVAL");
	is_int(kvn_batch_evict(c, it, 1), 0, "so it was not pinned: evict succeeds");
	is_int(kvn_batch_pin(c, NULL, 0, 1000), 0, "pin n = 0, NULL items: nothing to do");
	is_int(kvn_batch_unpin(c, NULL, 0), 0, "unpin n = 0, NULL items");
	is_int(kvn_batch_evict(c, NULL, 0), 0, "evict n = 0, NULL items");
	is_int(kvn_batch_pin(c, NULL, 2, 1000), KVN_EINVAL, "pin NULL items, n = 2: KVN_EINVAL");
	is_int(kvn_batch_unpin(c, NULL, 2), KVN_EINVAL, "unpin NULL items, n = 2: KVN_EINVAL");
	is_int(kvn_batch_evict(c, NULL, 2), KVN_EINVAL, "evict NULL items, n = 2: KVN_EINVAL");
	is_int(kvn_batch_pin(NULL, it, 1, 1000), KVN_EINVAL, "pin with a NULL client: KVN_EINVAL");

	static char longkey[KVN_MAX_KEY + 2];
	memset(longkey, 'k', sizeof longkey - 1);
	memset(it, 0, sizeof it);
	it[0].key = "no-such-key";
	it[0].klen = strlen("no-such-key");
	it[1].key = "";
	it[1].klen = 0;
	it[2].key = longkey;
	it[2].klen = KVN_MAX_KEY + 1;
	int rc = kvn_batch_pin(c, poison(it, 3), 3, 1000);
	ok(rc < 0, "a pin batch of bad items fails (%s)", kvn_strerror(rc));
	is_int(it[0].status, KVN_ENOTFOUND, "pin of a missing key: KVN_ENOTFOUND");
	is_int(it[1].status, KVN_EKEYLEN, "an empty key: KVN_EKEYLEN");
	is_int(it[2].status, KVN_EKEYLEN, "a key over KVN_MAX_KEY: KVN_EKEYLEN");
	kvn_batch_evict(c, poison(it, 3), 3);
	is_int(it[0].status, KVN_ENOTFOUND, "evict of a missing key: KVN_ENOTFOUND");
	is_int(it[1].status, KVN_EKEYLEN, "evict of an empty key: KVN_EKEYLEN");
	it[0].key = NULL;
	is_int(kvn_batch_unpin(c, it, 1), KVN_EINVAL, "unpin of a NULL key: KVN_EINVAL");
	is_str(kvn_strerror(KVN_EHELD), "value is pinned or leased", "KVN_EHELD has its text");
}

/* ---- a leased value in an eviction storm (the t/lease technique) ----
 *
 * The reader's buffer is shared with this process: rd->buf[MARK_LO] set
 * and rd->buf[mark_hi] not yet set means it is inside a reply with more
 * left unsent than the sockets' buffers hold, so once stopped there the
 * peer's write stalls and the reply's read lease stays held. */
#define MARK_LO (1u << 20)
struct reader {
	volatile uint64_t seq; /* gets finished */
	volatile int freeze;   /* set: no next get after this one (buf stays as it is) */
	volatile int rc;       /* the last one's result */
	volatile uint64_t vlen;
	uint8_t buf[];
};
static struct reader *rd;
static size_t lease_val, mark_hi;
static char conf_lease[CONF_CAP];

static void reader_main(void)
{
	struct kvn_options o = { .config_path = conf_lease };
	struct kvn_client *c = NULL;
	for (;;) {
		size_t vlen = 0;
		if (!c && kvn_connect(&o, &c) != 0) {
			c = NULL;
			usleep(50000);
			continue;
		}
		rd->buf[MARK_LO] = 0;
		rd->buf[mark_hi] = 0;
		int rc = kvn_get(c, "leased", 6, rd->buf, lease_val, &vlen);
		rd->rc = rc;
		rd->vlen = vlen;
		__atomic_add_fetch(&rd->seq, 1, __ATOMIC_SEQ_CST);
		while (rd->freeze) /* the parent compares buf now: no next get over it */
			usleep(1000);
		usleep(20000);
	}
}

/* Stop the reader inside a reply, early enough: 1, 0 if it was not (it
 * runs again then), -1 if it is gone. */
static int stop_mid_reply(pid_t pid, uint64_t timeout_ms)
{
	uint64_t until = kvn_now_ms() + timeout_ms;
	int st;
	while (!(rd->buf[MARK_LO] != 0 && rd->buf[mark_hi] == 0))
		if (kvn_now_ms() >= until)
			return 0;
		else
			usleep(200);
	kill(pid, SIGSTOP);
	if (waitpid(pid, &st, WUNTRACED) != pid || !WIFSTOPPED(st))
		return -1;
	if (rd->buf[MARK_LO] != 0 && rd->buf[mark_hi] == 0)
		return 1;
	kill(pid, SIGCONT);
	return 0;
}

static void t_lease_storm(void)
{
	unsigned long long a, b, rmax = 0, wmax = 0;
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_rmem", "r");
	if (f) {
		if (fscanf(f, "%llu %llu %llu", &a, &b, &rmax) != 3)
			rmax = 0;
		fclose(f);
	}
	if ((f = fopen("/proc/sys/net/ipv4/tcp_wmem", "r"))) {
		if (fscanf(f, "%llu %llu %llu", &a, &b, &wmax) != 3)
			wmax = 0;
		fclose(f);
	}
	/* more than both sockets' buffers hold, with 4 MiB to spare past mark_hi */
	lease_val = (size_t)(2 * rmax + wmax + (16u << 20));
	lease_val = (lease_val + (1u << 20) - 1) & ~(size_t)((1u << 20) - 1);
	mark_hi = lease_val - (size_t)(rmax + wmax) - (4u << 20);
	if (lease_val > (256u << 20)) {
		tap_skip(6, "net.ipv4.tcp_rmem's maximum is too large to stall a GET reply here");
		return;
	}
	void *shared = mmap(NULL, sizeof *rd + lease_val, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		kvn_fatal("mmap of %zu bytes failed", lease_val);
	rd = shared;

	/* DRAM: the leased value and a third of it again, so the storm must
	 * evict; the lease outlives the storm */
	char text[300], dram[32];
	uint64_t dram_b = ((uint64_t)lease_val * 4 / 3 + (1u << 20)) & ~(uint64_t)((1u << 20) - 1);
	snprintf(dram, sizeof dram, "%lluMiB", (unsigned long long)(dram_b >> 20));
	snprintf(text, sizeof text,
		 "[node]\nmax_value_size = %zuMiB\n[peer]\nhugepages = off\nevict = lru\nread_lease_ttl = 60s\n"
		 "[client]\ntimeout = 20s\n",
		 (lease_val >> 20) + 1);
	pid_t node_pid = proc_start_node("lease", dram, text, conf_lease, CONF_CAP);
	/* forked before this process starts any client thread */
	pid_t pid = fork();
	if (pid == 0)
		reader_main();
	for (int i = 0; pid > 0 && i <= proc_npids && i < PROC_MAX; i++) {
		if (i == proc_npids)
			proc_npids++;
		if (proc_pids[i] == 0) {
			proc_pids[i] = pid; /* killed at exit like the node */
			break;
		}
	}
	struct kvn_client *c = proc_connect_ready(conf_lease, 1);
	ok(pid > 0 && c != NULL, "node (%s of DRAM) and reader up", dram);
	if (pid <= 0 || !c)
		return;
	uint8_t *v = malloc(lease_val);
	proc_fill(v, lease_val, 500);
	is_int(kvn_put(c, "leased", 6, v, lease_val, 0), 0, "put a %zu MiB value", lease_val >> 20);
	int stopped = 0;
	for (int attempt = 0; attempt < 20 && stopped == 0; attempt++)
		stopped = stop_mid_reply(pid, 5000);
	ok(stopped == 1, "a reader is stopped inside its GET reply (the reply's lease is held)");
	if (stopped != 1) {
		free(v);
		kvn_close(c);
		return;
	}
	uint64_t seq0 = rd->seq;
	int first = 0;
	int failed = storm(c, "ls", 10 * dram_b, &first);
	is_int(failed, 0, "10x dram_size of other puts all succeed while the lease is held (first error %s)",
	       first ? kvn_strerror(first) : "none");
	rd->freeze = 1; /* the get under way is the last one */
	kill(pid, SIGCONT);
	uint64_t until = kvn_now_ms() + 20000;
	while (rd->seq == seq0 && kvn_now_ms() < until)
		usleep(10000);
	ok(rd->seq != seq0, "let go, the reader's get finishes");
	ok(rd->rc == 0 && rd->vlen == lease_val && memcmp(rd->buf, v, lease_val) == 0,
	   "with the leased value's exact bytes (%s, %llu bytes)", kvn_strerror(rd->rc), (unsigned long long)rd->vlen);
	kill(pid, SIGKILL);
	proc_wait(pid, 5000, NULL);
	free(v);
	kvn_close(c);
	proc_stop(node_pid, SIGTERM, 10000, NULL); /* its DRAM back for the other cases */
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		/* first: it forks its reader before any client thread runs */
		{ "lease_storm", t_lease_storm },
		{ "put_ttl", t_put_ttl },
		{ "batch_put_ttl", t_batch_put_ttl },
		{ "pin_storm", t_pin_storm },
		{ "evict_mixed", t_evict_mixed },
		{ "pin_ttl", t_pin_ttl },
		{ "edges", t_edges },
		{ NULL, NULL },
	};
	int rc;

	if (proc_init("tier_api") != 0)
		return 1;
	proc_logs_on_failure = 1;
	proc_watchdog(90);
	rc = tap_run(tests, argc, argv);
	kvn_close(cl);
	kvn_close(cl_cap);
	return rc;
}
