/* t/list: kvn_list (the master's cursor listing) and kvn_counter through
 * real kvnode processes on loopback (issue 18).  A full listing in small
 * pages returns the key set exactly once; prefixes (empty, NULL, none
 * matching, one that is a whole key); keys removed and added mid-listing
 * (those present throughout exactly once, no key ever twice); a listing
 * that goes on across index growth from 10 keys to 20000, and across a
 * kill -9 and restart of a master-only process; the API's edge values;
 * LIST frames out of range sent to the master by a connection holding the
 * client secret (an error reply, the master lives on); kvn_counter's names; bounce_bytes 0 for same-host gets and
 * above 0 for gets over TCP (direct and through submissions) and for an
 * embedded node's payload replies (bounce_embed).  t/list_model checks
 * the master's page function and the decoders without processes. */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uthash.h>

#include "actors/actor.h"
#include "auth/auth.h"
#include "base/base.h"
#include "base/ptab.h"
#include "client/client.h"
#include "kvnode.h"
#include "kvnode-embed.h"
#include "list_env.h"
#include "raw.h"
#include "net/net.h"
#include "net/proto.h"
#include "proc.h"
#include "tap.h"

#define KIB 1024u

static char conf_a[300];
static struct kvn_client *ca;
static uint16_t port_a, port_p; /* the fixture's master and peer ports */

static void fixture(void)
{
	static int up;
	char data[300];

	if (up)
		return;
	up = 1;
	/* the bounce case needs the same-host path (t/tcp_matrix.sh sets
	 * client.local = off for the data-path tests; this file sets its own) */
	uint16_t mp = proc_free_port(), pp = proc_free_port();
	port_a = mp;
	port_p = pp;
	snprintf(conf_a, sizeof conf_a, "%s/aio.conf", proc_tmp);
	snprintf(data, sizeof data, "%s/var-aio", proc_tmp);
	proc_write_conf(conf_a, mp, pp, data, "128MiB", "[client]\nlocal = auto\n");
	const char *args[] = { "--config", conf_a, NULL };
	proc_spawn("aio", args);
	ca = proc_connect_ready(conf_a, 1);
	ok(ca != NULL, "all-in-one node up, client connected");
	if (!ca)
		exit(1);
}

/* ---- keys and what a listing saw ---- */

/* Put "<fam><i>" for i in [from, to), value: the key's bytes repeated to
 * vlen.  The number of failed batches. */
static int put_keys(struct kvn_client *c, const char *fam, uint32_t from, uint32_t to, size_t vlen)
{
	enum { B = 500 };
	static struct kvn_item it[B];
	static char keys[B][48];
	static uint8_t vals[B][64];
	int bad = 0;

	for (uint32_t b = from; b < to; b += B) {
		uint32_t n = to - b < B ? to - b : B;
		memset(it, 0, sizeof it);
		for (uint32_t j = 0; j < n; j++) {
			it[j].klen = (size_t)snprintf(keys[j], sizeof keys[j], "%s%u", fam, b + j);
			it[j].key = keys[j];
			for (size_t k = 0; k < vlen && k < sizeof vals[j]; k++)
				vals[j][k] = (uint8_t)keys[j][k % it[j].klen];
			it[j].val = vals[j];
			it[j].vlen = vlen;
		}
		bad += kvn_batch_put(c, it, n, 0) != 0;
	}
	return bad;
}

static int rm_keys(struct kvn_client *c, const char *fam, uint32_t from, uint32_t to)
{
	enum { B = 500 };
	static struct kvn_item it[B];
	static char keys[B][48];
	int bad = 0;

	for (uint32_t b = from; b < to; b += B) {
		uint32_t n = to - b < B ? to - b : B;
		memset(it, 0, sizeof it);
		for (uint32_t j = 0; j < n; j++) {
			it[j].klen = (size_t)snprintf(keys[j], sizeof keys[j], "%s%u", fam, b + j);
			it[j].key = keys[j];
		}
		bad += kvn_batch_remove(c, it, n) != 0;
	}
	return bad;
}

struct seen_key {
	UT_hash_handle hh;
	int count;
	uint64_t size, gen;
	size_t klen;
	char key[];
};

struct listing {
	struct seen_key *set;
	uint32_t pages, keys, twice, over_max, empty_pages;
	uint32_t bad_size; /* entries with size != want_size (when set) */
	uint64_t want_size;
};

static void listing_free(struct listing *l)
{
	struct seen_key *e, *tmp;
	HASH_ITER(hh, l->set, e, tmp) {
		HASH_DEL(l->set, e);
		free(e);
	}
	memset(l, 0, sizeof *l);
}

static void listing_add(struct listing *l, const struct kvn_listed *p)
{
	struct seen_key *e;
	HASH_FIND(hh, l->set, p->key, p->klen, e);
	if (!e) {
		e = kvn_xcalloc(1, sizeof *e + p->klen);
		memcpy(e->key, p->key, p->klen);
		e->klen = p->klen;
		e->size = p->size;
		e->gen = p->gen;
		HASH_ADD(hh, l->set, key[0], e->klen, e);
	}
	if (++e->count == 2)
		l->twice++;
	if (l->want_size && p->size != l->want_size)
		l->bad_size++;
	l->keys++;
}

static int listing_count(const struct listing *l, const char *key)
{
	struct seen_key *e;
	HASH_FIND(hh, l->set, key, strlen(key), e);
	return e ? e->count : 0;
}

/* How many of "<fam><i>", i in [from, to), the listing saw exactly once. */
static uint32_t listing_once(const struct listing *l, const char *fam, uint32_t from, uint32_t to)
{
	char k[48];
	uint32_t n = 0;
	for (uint32_t i = from; i < to; i++) {
		snprintf(k, sizeof k, "%s%u", fam, i);
		n += listing_count(l, k) == 1;
	}
	return n;
}

/* Keys the listing saw that do not start with fam. */
static uint32_t listing_outside(const struct listing *l, const char *fam)
{
	const struct seen_key *e;
	uint32_t n = 0;
	size_t fl = strlen(fam);
	for (e = l->set; e; e = e->hh.next)
		n += e->klen < fl || memcmp(e->key, fam, fl) != 0;
	return n;
}

/* Up to npages pages (0: until the listing ends) from *cursor into l.
 * 0, or the first error. */
static int list_pages(struct kvn_client *c, const char *prefix, size_t max, uint64_t *cursor, uint32_t npages,
		      struct listing *l)
{
	size_t plen = prefix ? strlen(prefix) : 0;
	uint32_t done = 0;

	do {
		struct kvn_listed *page = NULL;
		size_t n = 0;
		int rc = kvn_list(c, prefix, plen, cursor, max, &page, &n);
		if (rc)
			return rc;
		l->pages++;
		l->over_max += n > max;
		l->empty_pages += n == 0;
		for (size_t i = 0; i < n; i++)
			listing_add(l, &page[i]);
		kvn_list_free(page);
		done++;
	} while (*cursor != 0 && (npages == 0 || done < npages));
	return 0;
}


/* ---- cases ---- */

static void t_start(void)
{
	fixture();
}

/* The API's edge values, answered before anything is sent. */
static void t_args(void)
{
	struct kvn_listed *page = (struct kvn_listed *)1;
	size_t n = 99;
	uint64_t cur = 0;
	static char big[KVN_MAX_KEY + 1];
	fixture();

	memset(big, 'p', sizeof big);
	is_int(kvn_list(ca, NULL, 0, &cur, 0, &page, &n), KVN_EINVAL, "max 0: KVN_EINVAL");
	ok(page == NULL && n == 0, "and *out NULL, *n 0");
	is_int(kvn_list(ca, NULL, 0, &cur, KVN_LIST_MAX + 1, &page, &n), KVN_EINVAL, "max KVN_LIST_MAX+1: KVN_EINVAL");
	cur = 1ull << 32;
	is_int(kvn_list(ca, NULL, 0, &cur, 10, &page, &n), KVN_EINVAL, "cursor 2^32: KVN_EINVAL");
	cur = UINT64_MAX;
	is_int(kvn_list(ca, NULL, 0, &cur, 10, &page, &n), KVN_EINVAL, "cursor 2^64-1: KVN_EINVAL");
	cur = 0;
	is_int(kvn_list(ca, big, KVN_MAX_KEY + 1, &cur, 10, &page, &n), KVN_EKEYLEN,
	       "a prefix over KVN_MAX_KEY: KVN_EKEYLEN");
	is_int(kvn_list(ca, NULL, 3, &cur, 10, &page, &n), KVN_EINVAL, "plen 3 with a NULL prefix: KVN_EINVAL");
	is_int(kvn_list(ca, NULL, 0, NULL, 10, &page, &n), KVN_EINVAL, "NULL cursor: KVN_EINVAL");
	is_int(kvn_list(ca, NULL, 0, &cur, 10, NULL, &n), KVN_EINVAL, "NULL out: KVN_EINVAL");
	is_int(kvn_list(ca, NULL, 0, &cur, 10, &page, NULL), KVN_EINVAL, "NULL n: KVN_EINVAL");
	is_int(kvn_list(NULL, NULL, 0, &cur, 10, &page, &n), KVN_EINVAL, "NULL client: KVN_EINVAL");
	kvn_list_free(NULL); /* a no-op, as free(NULL) (a crash would end the case) */

	/* the largest values that are valid */
	cur = (1ull << 32) - 1;
	int rc = kvn_list(ca, big, KVN_MAX_KEY, &cur, KVN_LIST_MAX, &page, &n);
	is_int(rc, 0, "cursor 2^32-1, a 1 KiB prefix, max KVN_LIST_MAX: accepted (%s)", kvn_strerror(rc));
	ok(page != NULL && n == 0 && cur == 0, "an empty last page: cursor back to 0");
	kvn_list_free(page);
}

#define NFULL 3000
#define NOTHER 500

/* A whole listing in pages of 7 is the key set exactly once. */
static void t_full(void)
{
	struct listing l = { .want_size = 24 };
	uint64_t cur = 0;
	fixture();

	is_int(put_keys(ca, "f/", 0, NFULL, 24), 0, "%d keys f/<i> put", NFULL);
	is_int(put_keys(ca, "g/", 0, NOTHER, 24), 0, "%d keys g/<i> put", NOTHER);
	int rc = list_pages(ca, "f/", 7, &cur, 0, &l);
	is_int(rc, 0, "listing f/ in pages of 7 ends (%s)", kvn_strerror(rc));
	is_int(listing_once(&l, "f/", 0, NFULL), NFULL, "every f/ key exactly once");
	is_int(l.keys, NFULL, "and nothing else (%u pages)", l.pages);
	is_int(l.twice, 0, "no key twice");
	is_int(l.over_max, 0, "no page over max");
	is_int(l.bad_size, 0, "each entry's size is its value's (24)");
	ok(l.pages >= NFULL / 7, "at least %d pages (%u)", NFULL / 7, l.pages);
	ok(l.set && l.set->gen != 0, "entries carry their generation");
	listing_free(&l);

	/* no prefix, NULL and "" alike: every key, f/ and g/ among them */
	cur = 0;
	rc = list_pages(ca, NULL, 1000, &cur, 0, &l);
	is_int(rc, 0, "listing everything (prefix NULL, pages of 1000) ends (%s)", kvn_strerror(rc));
	ok(listing_once(&l, "f/", 0, NFULL) == NFULL && listing_once(&l, "g/", 0, NOTHER) == NOTHER,
	   "every f/ and g/ key exactly once");
	is_int(l.twice, 0, "no key twice among %u", l.keys);
	uint32_t all = l.keys;
	listing_free(&l);
	cur = 0;
	struct kvn_listed *page;
	size_t n;
	rc = kvn_list(ca, "", 0, &cur, KVN_LIST_MAX, &page, &n);
	is_int(rc, 0, "prefix \"\" with plen 0 is no prefix");
	for (size_t i = 0; rc == 0 && i < n; i++)
		listing_add(&l, &page[i]);
	kvn_list_free(page);
	if (cur)
		list_pages(ca, "", KVN_LIST_MAX, &cur, 0, &l);
	is_int(l.keys, all, "the same %u keys in pages of KVN_LIST_MAX", all);
	listing_free(&l);
}

static void t_prefix(void)
{
	struct listing l = { 0 };
	uint64_t cur = 0;
	fixture();

	if (put_keys(ca, "g/", 0, NOTHER, 24) != 0)
		ok(0, "g/ keys put");
	int rc = list_pages(ca, "g/", 50, &cur, 0, &l);
	is_int(rc, 0, "listing g/ ends");
	is_int(listing_once(&l, "g/", 0, NOTHER), NOTHER, "every g/ key once");
	is_int(l.keys, NOTHER, "and only them");
	listing_free(&l);
	/* a prefix that is itself a key: the key and the longer ones */
	cur = 0;
	list_pages(ca, "g/1", 50, &cur, 0, &l);
	is_int(l.keys, 1 + 10 + 100, "g/1: g/1, g/10..19, g/100..199 (111 keys)");
	is_int(listing_count(&l, "g/1"), 1, "the key equal to the prefix is listed");
	is_int(listing_outside(&l, "g/1"), 0, "no key without the prefix");
	listing_free(&l);
	cur = 0;
	rc = list_pages(ca, "zz-none/", 100, &cur, 0, &l);
	is_int(rc, 0, "a prefix nothing has: the listing ends");
	is_int(l.keys, 0, "with no key");
	ok(l.pages >= 1, "in %u pages (the master bounds the slots one call scans)", l.pages);
	listing_free(&l);
}

/* Keys removed and added while a listing is in progress. */
static void t_churn(void)
{
	struct listing l = { 0 };
	uint64_t cur = 0;
	fixture();

	is_int(put_keys(ca, "c/", 0, 2000, 8), 0, "2000 keys c/<i>");
	int rc = list_pages(ca, "c/", 50, &cur, 5, &l);
	ok(rc == 0 && cur != 0, "5 pages of 50 listed, the listing goes on");
	is_int(rm_keys(ca, "c/", 0, 500), 0, "c/0..499 removed mid-listing");
	is_int(put_keys(ca, "c/n", 0, 1000, 8), 0, "c/n0..999 added mid-listing");
	rc = list_pages(ca, "c/", 50, &cur, 0, &l);
	is_int(rc, 0, "the listing ends");
	is_int(listing_once(&l, "c/", 500, 2000), 1500, "each key present throughout (c/500..1999) exactly once");
	is_int(l.twice, 0, "no key twice (removed, added or kept)");
	is_int(listing_outside(&l, "c/"), 0, "nothing without the prefix");
	tap_diag("removed keys listed: %u of 500; added keys listed: %u of 1000", listing_once(&l, "c/", 0, 500),
		 listing_once(&l, "c/n", 0, 1000));
	listing_free(&l);
	/* afterwards: exactly what is there */
	cur = 0;
	list_pages(ca, "c/", 300, &cur, 0, &l);
	is_int(l.keys, 2500, "a new listing: 1500 kept + 1000 added");
	is_int(listing_once(&l, "c/", 0, 500), 0, "none of the removed ones");
	listing_free(&l);
}

/* The index grows from 16 slots to tens of thousands mid-listing. */
static void t_growth(void)
{
	char conf[300];
	struct listing l = { 0 };
	uint64_t cur = 0;
	enum { FEW = 10, MANY = 12000 }; /* 4 KiB pages each: within 96 MiB, no eviction */

	pid_t node = proc_start_node("grow", "96MiB", "[client]\ntimeout = 10s\n", conf, sizeof conf);
	struct kvn_client *c = proc_connect_ready(conf, 1);
	ok(c != NULL, "a fresh node for the growth case");
	if (!c)
		return;
	is_int(put_keys(c, "k/", 0, FEW, 4), 0, "%d keys", FEW);
	int rc = list_pages(c, NULL, 3, &cur, 1, &l);
	ok(rc == 0 && cur != 0 && l.keys >= 1 && l.keys <= 3, "a first page of at most 3 (%u), the listing goes on",
	   l.keys);
	is_int(put_keys(c, "k/", FEW, FEW + MANY, 4), 0, "%d more keys: the index grows past 16 slots many times",
	       MANY);
	rc = list_pages(c, NULL, 500, &cur, 0, &l);
	is_int(rc, 0, "the listing ends (%u pages)", l.pages);
	is_int(listing_once(&l, "k/", 0, FEW), FEW, "each of the first %d keys exactly once", FEW);
	is_int(l.twice, 0, "no key twice among %u", l.keys);
	ok(l.keys <= FEW + MANY, "no key that is not there");
	listing_free(&l);
	cur = 0;
	rc = list_pages(c, NULL, 7, &cur, 0, &l);
	ok(rc == 0 && listing_once(&l, "k/", 0, FEW + MANY) == FEW + MANY && l.keys == FEW + MANY,
	   "then a full listing in pages of 7: all %d exactly once", FEW + MANY);
	is_int(l.over_max, 0, "no page over 7");
	tap_diag("pages: %u, of which empty: %u", l.pages, l.empty_pages);
	listing_free(&l);
	kvn_close(c);
	proc_stop(node, SIGKILL, 5000, NULL);
}

/* A listing goes on across kill -9 and restart of a master-only process.
 * The peer, another process, keeps its values; master.commit_linger 1s
 * and a peer stopped (SIGSTOP) across the restart make the new master
 * start with an index that lacks most keys (master.db had not committed
 * them) and a node that has not re-synced: LIST must wait for it
 * (KVN_EBUSY, asked again by the library) rather than page through an
 * index that misses keys present throughout. */
static void *cont_later(void *arg)
{
	usleep(400000);
	kill(*(pid_t *)arg, SIGCONT);
	return NULL;
}

/* "N objects loaded" of a master's start line in log NAME, or -1. */
static long loaded_objects(const char *name)
{
	char path[512], line[2048];
	long n = -1;
	snprintf(path, sizeof path, "%s/%s.log", proc_tmp, name);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof line, f)) {
		const char *p = strstr(line, " nodes and ");
		if (p && strstr(p, "objects loaded"))
			n = strtol(p + strlen(" nodes and "), NULL, 10);
	}
	if (f)
		fclose(f);
	return n;
}

static void t_restart(void)
{
	char conf[300], data[300];
	struct listing l = { 0 };
	uint64_t cur = 0;
	int st = 0;
	pthread_t th;
	enum { N = 3000 };

	uint16_t mp = proc_free_port(), pp = proc_free_port();
	snprintf(conf, sizeof conf, "%s/rs.conf", proc_tmp);
	snprintf(data, sizeof data, "%s/var-rs", proc_tmp);
	proc_write_conf(conf, mp, pp, data, "64MiB", "[client]\ntimeout = 3s\n[master]\ncommit_linger = 1s\n");
	const char *am[] = { "--role", "master", "--config", conf, NULL };
	const char *ap[] = { "--role", "peer", "--config", conf, "--set", "node.id=rs-p", NULL };
	pid_t m = proc_spawn("rs-m", am);
	ok(proc_wait_log("rs-m", "kvnode ready", 1, 15000) == 0, "master-only process up");
	pid_t p = proc_spawn("rs-p", ap);
	struct kvn_client *c = proc_connect_ready(conf, 1);
	ok(c != NULL, "its peer attached");
	if (!c)
		return;
	is_int(put_keys(c, "r/", 0, N, 4), 0, "%d keys (not durable)", N);
	int rc = list_pages(c, "r/", 100, &cur, 3, &l);
	ok(rc == 0 && cur != 0, "3 pages of 100 listed, the listing goes on");
	kill(p, SIGSTOP);
	ok(proc_stop(m, SIGKILL, 5000, &st) == 0, "peer stopped, kill -9 the master");
	m = proc_spawn("rs-m2", am);
	ok(proc_wait_log("rs-m2", "kvnode ready", 1, 15000) == 0, "master restarted on its data dir");
	long loaded = loaded_objects("rs-m2");
	ok(loaded >= 0 && loaded < N, "it loaded %ld of the %d keys from master.db (the rest only on the peer)", loaded,
	   N);
	/* while the peer stays stopped: the call waits out its deadline */
	struct kvn_listed *pg = NULL;
	size_t pn = 0;
	uint64_t cur2 = cur;
	client_conf(c)->client_timeout = 400;
	for (int i = 0; i < 3; i++)
		if ((rc = kvn_list(c, "r/", 2, &cur2, 100, &pg, &pn)) != KVN_ECONN)
			break;
	is_int(rc, KVN_ETIMEDOUT, "a call while the peer has not re-synced: KVN_ETIMEDOUT (%s)", kvn_last_detail(c));
	ok(pg == NULL && cur2 == cur, "no page, the cursor unchanged");
	client_conf(c)->client_timeout = 3000;
	if (pthread_create(&th, NULL, cont_later, &p) != 0)
		kvn_fatal("pthread_create");
	/* calls may fail (connection, deadline) until the master is back and
	 * the peer re-synced; the cursor is the caller's and stays valid */
	uint64_t until = kvn_now_ms() + 30000;
	int errs = 0;
	do {
		rc = list_pages(c, "r/", 100, &cur, 0, &l);
		errs += rc != 0;
		if (rc)
			usleep(100000);
	} while (rc != 0 && (rc == KVN_ECONN || rc == KVN_ETIMEDOUT || rc == KVN_EBUSY) && kvn_now_ms() < until);
	pthread_join(th, NULL);
	is_int(rc, 0, "the listing ends after the restart (%d calls failed meanwhile; last: %s)", errs,
	       kvn_strerror(rc));
	is_int(listing_once(&l, "r/", 0, N), N, "every key exactly once across the restart");
	is_int(l.keys, N, "nothing else");
	ok(proc_log_count("rs-m2", "rs-p: full sync applied") >= 1, "the peer re-synced meanwhile");
	listing_free(&l);
	kvn_close(c);
	proc_stop(m, SIGKILL, 5000, NULL);
	proc_stop(p, SIGKILL, 5000, NULL);
}

/* ---- raw LIST frames from a connection holding the client secret ---- */

static void t_raw(void)
{
	char path[400], addr[64];
	static uint8_t big[WIRE_MAX_KEY + 1];
	fixture();

	memset(big, 'r', sizeof big);
	snprintf(path, sizeof path, "%s/var-aio/client.secret", proc_tmp);
	snprintf(addr, sizeof addr, "127.0.0.1:%u", port_a);
	actor_id proxy = raw_connect(addr, AUTH_ROLE_CLIENT, path, "t-raw-list");

	is_int(raw_call(proxy, list_msg(0, 10, 0, NULL, 0)), 0, "a valid raw LIST is answered");
	uint64_t next;
	uint32_t n;
	struct wire_r r;
	ok(R.reply && proto_list_reply_open(&r, R.reply, &next, &n) == 0 && n <= 10, "with a page of at most 10");
	is_int(raw_call(proxy, list_msg(1ull << 32, 10, 0, NULL, 0)), KVN_EPROTO, "cursor 2^32: KVN_EPROTO");
	is_int(raw_call(proxy, list_msg(UINT64_MAX, 10, 0, NULL, 0)), KVN_EPROTO, "cursor 2^64-1: KVN_EPROTO");
	is_int(raw_call(proxy, list_msg(0, 0, 0, NULL, 0)), KVN_EPROTO, "max 0: KVN_EPROTO");
	is_int(raw_call(proxy, list_msg(0, KVN_LIST_MAX + 1, 0, NULL, 0)), KVN_EPROTO, "max KVN_LIST_MAX+1: KVN_EPROTO");
	is_int(raw_call(proxy, list_msg(0, UINT32_MAX, 0, NULL, 0)), KVN_EPROTO, "max 2^32-1: KVN_EPROTO");
	is_int(raw_call(proxy, list_msg(0, 10, WIRE_MAX_KEY + 1, big, 0)), KVN_EPROTO,
	       "a prefix of 1025 bytes: KVN_EPROTO");
	is_int(raw_call(proxy, list_msg(0, 10, UINT32_MAX, NULL, 0)), KVN_EPROTO,
	       "a prefix length of 2^32-1 with no bytes: KVN_EPROTO");
	is_int(raw_call(proxy, list_msg(0, 10, 2, "ab", 1)), KVN_EPROTO, "a byte too many: KVN_EPROTO");
	struct actor_msg *m = actor_msg_new(WIRE_LIST);
	is_int(raw_call(proxy, m), KVN_EPROTO, "no metadata at all: KVN_EPROTO");
	is_int(raw_call(proxy, list_msg(0, 10, 0, NULL, 0)), 0, "the same connection still answers a valid LIST");
	is_int(kvn_ping(ca, NULL, NULL), 0, "and the master lives on for other clients");
	net_close(proxy);
	raw_stop();
}

/* ---- counters ---- */

static const char *const counter_names[] = {
	"via_get_sent", "via_get_served", "via_put_sent", "via_put_stored", "spec_sent",   "spec_served",
	"corrupt_gets", "local_peers",    "local_fallbacks", "local_gets",  "local_stale", "local_puts",
	"bounce_bytes",
};

static void t_counters(void)
{
	uint64_t v = 7;
	fixture();

	int bad = 0;
	for (size_t i = 0; i < sizeof counter_names / sizeof counter_names[0]; i++)
		bad += kvn_counter(ca, counter_names[i], &v) != 0;
	is_int(bad, 0, "every counter of client.h by name");
	v = 7;
	is_int(kvn_counter(ca, "no_such_counter", &v), KVN_ENOTFOUND, "an unknown name: KVN_ENOTFOUND");
	is_int(v, 0, "and *value 0");
	is_int(kvn_counter(ca, "bounce", &v), KVN_ENOTFOUND, "a name's prefix is not the name");
	is_int(kvn_counter(ca, "", &v), KVN_ENOTFOUND, "the empty name: KVN_ENOTFOUND");
	is_int(kvn_counter(ca, NULL, &v), KVN_EINVAL, "NULL name: KVN_EINVAL");
	is_int(kvn_counter(ca, "local_gets", NULL), KVN_EINVAL, "NULL value: KVN_EINVAL");
	is_int(kvn_counter(NULL, "local_gets", &v), KVN_EINVAL, "NULL client: KVN_EINVAL");
}

static uint64_t counter(struct kvn_client *c, const char *name)
{
	uint64_t v = 0;
	if (kvn_counter(c, name, &v) != 0)
		kvn_fatal("kvn_counter %s", name);
	return v;
}

/* bounce_bytes: 0 for same-host gets (the arena is copied straight into
 * the caller's buffer), above 0 for a small value over TCP (it arrives in
 * the connection's read-ahead with the reply's header and is copied from
 * there into the caller's buffer). */
static void t_bounce(void)
{
	enum { BIG = 512 * KIB, SMALL = 100, NBIG = 4 };
	char conf_tcp[300];
	uint8_t *v = kvn_xmalloc(BIG), *g = kvn_xmalloc(BIG);
	size_t got = 0;
	fixture();

	proc_fill(v, BIG, 3);
	int bad = 0;
	for (int i = 0; i < NBIG; i++) {
		char k[32];
		snprintf(k, sizeof k, "bounce/big%d", i);
		bad += kvn_put(ca, k, strlen(k), v, BIG, 0) != 0;
	}
	is_int(bad, 0, "%d values of 512 KiB put", NBIG);
	is_int(kvn_put(ca, "bounce/small", 12, v, SMALL, 0), 0, "a value of 100 bytes put");

	/* same host: client.local = auto, values over local_min_size */
	uint64_t b0 = counter(ca, "bounce_bytes"), l0 = counter(ca, "local_gets");
	bad = 0;
	for (int i = 0; i < NBIG; i++) {
		char k[32];
		snprintf(k, sizeof k, "bounce/big%d", i);
		bad += kvn_get(ca, k, strlen(k), g, BIG, &got) != 0 || got != BIG || memcmp(g, v, BIG) != 0;
	}
	is_int(bad, 0, "%d gets of 512 KiB on the same host, byte for byte", NBIG);
	ok(counter(ca, "local_gets") - l0 >= NBIG, "they took the same-host path (local_gets +%llu)",
	   (unsigned long long)(counter(ca, "local_gets") - l0));
	is_int(counter(ca, "bounce_bytes") - b0, 0, "bounce_bytes stayed 0");

	/* the same values over TCP: a client of the same node with local = off */
	snprintf(conf_tcp, sizeof conf_tcp, "%s/aio-tcp.conf", proc_tmp);
	{
		char data[300];
		snprintf(data, sizeof data, "%s/var-aio", proc_tmp);
		proc_write_conf(conf_tcp, port_a, port_p, data, "128MiB", "[client]\nlocal = off\n");
	}
	struct kvn_options o = { .config_path = conf_tcp };
	struct kvn_client *ct = NULL;
	is_int(kvn_connect(&o, &ct), 0, "a TCP-only client (client.local = off)");
	if (!ct)
		goto out;
	b0 = counter(ct, "bounce_bytes");
	is_int(kvn_get(ct, "bounce/small", 12, g, BIG, &got), 0, "a get of 100 bytes over TCP");
	uint64_t small_b = counter(ct, "bounce_bytes") - b0;
	ok(small_b > 0 && small_b <= SMALL, "bounce_bytes counted it (+%llu, at most the value's 100)",
	   (unsigned long long)small_b);
	b0 = counter(ct, "bounce_bytes");
	is_int(kvn_get(ct, "bounce/big0", 11, g, BIG, &got), 0, "a get of 512 KiB over TCP");
	uint64_t big_b = counter(ct, "bounce_bytes") - b0;
	ok(big_b <= BIG, "bounce_bytes +%llu: at most the value (the rest read straight into the buffer)",
	   (unsigned long long)big_b);
	tap_diag("TCP: 100-byte get bounced %llu bytes, 512 KiB get bounced %llu bytes", (unsigned long long)small_b,
		 (unsigned long long)big_b);
	is_int(counter(ct, "local_gets"), 0, "no same-host get on this client");

	/* submissions run on an internal client: their copies count too */
	struct kvn_item it = { .key = "bounce/small", .klen = 12, .val = g, .cap = BIG };
	struct kvn_completion comp;
	uint64_t id = 0;
	b0 = counter(ct, "bounce_bytes");
	is_int(kvn_submit_get(ct, &it, 1, &id), 0, "a submitted get of 100 bytes over TCP");
	uint64_t until = kvn_now_ms() + 5000;
	int reaped = 0;
	while (!reaped && kvn_now_ms() < until) {
		reaped = kvn_reap(ct, &comp, 1);
		if (!reaped)
			usleep(5000);
	}
	ok(reaped == 1 && comp.status == 0 && it.vlen == SMALL, "reaped, 100 bytes");
	ok(counter(ct, "bounce_bytes") - b0 > 0, "its copy shows in the caller's client's bounce_bytes (+%llu)",
	   (unsigned long long)(counter(ct, "bounce_bytes") - b0));
	kvn_close(ct);
out:
	free(v);
	free(g);
}

/* The embedded node's in-process links: with client.local = off a get's
 * reply carries the value as a payload buffer, and the client copies it
 * out (all of it counts); with the same-host path (the default, no
 * socket) a get of 512 KiB copies the arena straight in (0). */
static void t_bounce_embed(void)
{
	enum { BIG = 512 * KIB };
	const char *confs[] = { "[client]\nlocal = off\n", "" };
	uint8_t *v = kvn_xmalloc(BIG), *g = kvn_xmalloc(BIG);

	proc_fill(v, BIG, 5);
	for (int off = 1; off >= 0; off--) {
		char dir[300], cpath[320];
		const char *what = off ? "local = off" : "local = auto";
		snprintf(dir, sizeof dir, "%s/embed-%d", proc_tmp, off);
		snprintf(cpath, sizeof cpath, "%s/embed-%d.conf", proc_tmp, off);
		FILE *f = fopen(cpath, "w");
		if (!f)
			kvn_fatal("cannot write %s", cpath);
		fputs(confs[off ? 0 : 1], f);
		fclose(f);
		struct kvn_embed_options o = { .config_path = cpath, .data_dir = dir, .dram_size = 32u << 20,
					       .timeout_ms = 10000 };
		struct kvn_embed *e = NULL;
		int rc = kvn_embed_open(&o, &e);
		is_int(rc, 0, "%s: an embedded node opens", what);
		if (rc) {
			tap_diag("kvn_embed_open: %s", kvn_last_detail(NULL));
			continue;
		}
		struct kvn_client *c = kvn_embed_client(e);
		size_t got = 0;
		is_int(kvn_put(c, "eb", 2, v, BIG, 0), 0, "%s: 512 KiB put", what);
		uint64_t b0 = counter(c, "bounce_bytes"), l0 = counter(c, "local_gets");
		rc = kvn_get(c, "eb", 2, g, BIG, &got);
		ok(rc == 0 && got == BIG && memcmp(g, v, BIG) == 0, "%s: got back byte for byte", what);
		uint64_t b = counter(c, "bounce_bytes") - b0, l = counter(c, "local_gets") - l0;
		if (off) {
			is_int(b, BIG, "%s: the payload copied out: bounce_bytes +512 KiB", what);
			is_int(l, 0, "%s: no same-host get", what);
		} else {
			is_int(b, 0, "%s: copied from the arena: bounce_bytes +0", what);
			is_int(l, 1, "%s: one same-host get", what);
		}
		kvn_embed_close(e);
	}
	free(v);
	free(g);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "start", t_start },	    { "args", t_args },
		{ "full", t_full },	  { "prefix", t_prefix },   { "churn", t_churn },
		{ "growth", t_growth },	  { "restart", t_restart }, { "raw", t_raw },
		{ "counters", t_counters }, { "bounce", t_bounce }, { "bounce_embed", t_bounce_embed },
		{ NULL, NULL },
	};
	int rc;

	if (proc_init("list") != 0)
		return 1;
	proc_logs_on_failure = 1;
	proc_watchdog(300);
	rc = tap_run(tests, argc, argv);
	kvn_close(ca);
	return rc;
}
