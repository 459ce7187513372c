/*
 * resp_cmd: the command table and how a parse round runs.  Consecutive
 * GET/MGET commands become one kvn_batch_get, consecutive plain SET/MSET
 * (same TTL) one kvn_batch_put_opts, replies in order; the other commands
 * run one by one.  SET NX/XX is a check then a put: the cluster has no
 * conditional put, so they are serialised with every write of this
 * gateway (srv->cond_lock), and atomic only among clients of one gateway.
 */
#include "config.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/client.h"
#include "resp/resp_int.h"

#define GROUP_MAX 1024 /* keys of one batch call */

int resp_client(struct resp_worker *w, struct kvn_client **out)
{
	struct kvn_conf cc;
	uint64_t now = kvn_now_ms(), sup = 0;

	if (w->c) {
		*out = w->c;
		return 0;
	}
	/* in a pause after a failure, unless another worker has reached the
	 * cluster since: it is back, so try now rather than answer -ERR */
	if (now < w->retry_ms && __atomic_load_n(&w->srv->connected_ms, __ATOMIC_RELAXED) <= w->fail_ms)
		return w->last_err;
	kvn_conf_copy(&cc, &w->srv->conf); /* client_connect_conf takes its strings */
	int rc = client_connect_conf(&cc, &w->c);
	if (rc) {
		w->c = NULL;
		w->last_err = rc;
		w->fail_ms = kvn_now_ms();
		w->retry_ms = w->fail_ms + kvn_backoff_next(&w->bo);
		if (kvn_ratelimit_ok(&w->rl, &sup))
			log_warn("cannot reach the cluster at %s: %s (%s); answering -ERR until it can (%llu "
				 "more like this suppressed)",
				 w->srv->conf.client_master, kvn_strerror(rc), kvn_last_detail(NULL),
				 (unsigned long long)sup);
		return rc;
	}
	kvn_backoff_reset(&w->bo);
	__atomic_store_n(&w->srv->connected_ms, kvn_now_ms(), __ATOMIC_RELAXED);
	*out = w->c;
	return 0;
}

void resp_put_kvn_error(struct resp_conn *c, int rc)
{
	const char *name = kvn_err_name(rc);

	RESP_COUNT(c->w->srv, total_error_replies, 1);
	switch (rc) {
	case KVN_EFULL:
	case KVN_ENOSPC:
		resp_put_errorf(c->out, "OOM no node of the kvnode cluster has room for the value (%s)", name);
		break;
	case KVN_ETOOBIG:
		resp_put_errorf(c->out, "ERR value too large for the kvnode cluster (%s)", name);
		break;
	case KVN_EKEYLEN:
		resp_put_errorf(c->out, "ERR kvnode keys are 1 to %d bytes (%s)", KVN_MAX_KEY, name);
		break;
	default:
		resp_put_errorf(c->out, "ERR kvnode: %s (%s)", kvn_strerror(rc), name);
	}
}

int resp_is(const struct resp_arg *a, const char *word)
{
	size_t n = strlen(word);
	return a->len == n && strncasecmp(a->p, word, n) == 0;
}

static void put_wrong_args(struct resp_conn *c, const char *cmd)
{
	RESP_COUNT(c->w->srv, total_error_replies, 1);
	resp_put_errorf(c->out, "ERR wrong number of arguments for '%s' command", cmd);
}

static void put_syntax(struct resp_conn *c)
{
	RESP_COUNT(c->w->srv, total_error_replies, 1);
	resp_put_error(c->out, "ERR syntax error");
}

/* The gateway's write lock (srv->cond_lock): shared for plain writes,
 * exclusive for a check-then-put; an EXEC holds it exclusively already. */
static void lock_writes(struct resp_conn *c, int excl)
{
	if (c->in_exec)
		return;
	if (excl)
		pthread_rwlock_wrlock(&c->w->srv->cond_lock);
	else
		pthread_rwlock_rdlock(&c->w->srv->cond_lock);
}

static void unlock_writes(struct resp_conn *c)
{
	if (!c->in_exec)
		pthread_rwlock_unlock(&c->w->srv->cond_lock);
}

/* ---- SET's options ---- */

struct set_opts {
	int nx, xx;
	uint64_t ttl_ms;
};

/* a[3..n): NX XX EX s PX ms.  0, or -1 after answering why not (c NULL:
 * without answering). */
static int set_opts_parse(struct resp_conn *c, const struct resp_arg *a, size_t n, struct set_opts *o)
{
	memset(o, 0, sizeof *o);
	for (size_t i = 3; i < n; i++) {
		if (resp_is(&a[i], "NX") && !o->xx)
			o->nx = 1;
		else if (resp_is(&a[i], "XX") && !o->nx)
			o->xx = 1;
		else if ((resp_is(&a[i], "EX") || resp_is(&a[i], "PX")) && !o->ttl_ms && i + 1 < n) {
			char num[24];
			uint64_t v;
			const char *why;
			int ex = resp_is(&a[i], "EX");
			i++;
			if (a[i].len == 0 || a[i].len >= sizeof num)
				goto bad_ttl;
			memcpy(num, a[i].p, a[i].len);
			num[a[i].len] = '\0';
			/* the tiers' limit: 10 years */
			if (kvn_parse_uint(num, &v, &why) != 0 || v == 0 ||
			    v > (ex ? 10ull * 366 * 86400 : 10ull * 366 * 86400 * 1000))
				goto bad_ttl;
			o->ttl_ms = ex ? v * 1000 : v;
		} else {
			if (c)
				put_syntax(c);
			return -1;
		}
	}
	return 0;
bad_ttl:
	if (c) {
		RESP_COUNT(c->w->srv, total_error_replies, 1);
		resp_put_error(c->out, "ERR invalid expire time in 'set' command");
	}
	return -1;
}

/* ---- batched GET/MGET and SET/MSET ---- */

static void free_ref(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)data);
}

static void put_item_value(struct resp_conn *c, struct kvn_item *it)
{
	struct resp_srv *srv = c->w->srv;
	if (it->status == 0) {
		RESP_COUNT(srv, keyspace_hits, 1);
		evbuffer_add_printf(c->out, "$%zu\r\n", it->vlen);
		/* the library's malloc'd copy goes out as it is */
		if (it->vlen > 0 && evbuffer_add_reference(c->out, it->val, it->vlen, free_ref, NULL) == 0)
			it->val = NULL;
		evbuffer_add(c->out, "\r\n", 2);
	} else if (it->status == KVN_ENOTFOUND) {
		RESP_COUNT(srv, keyspace_misses, 1);
		resp_put_null(c->out, c->proto);
	} else {
		resp_put_kvn_error(c, it->status);
	}
	free(it->val);
	it->val = NULL;
}

/* cmds[0..n): GET or MGET, at most GROUP_MAX keys in all. */
static void exec_gets(struct resp_conn *c, const struct resp_cmd *cmds, size_t n, size_t nkeys)
{
	struct resp_worker *w = c->w;
	struct kvn_item *items = kvn_xcalloc(nkeys, sizeof *items);
	struct kvn_client *kc;
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		for (size_t j = 1; j < cmds[i].argc; j++, k++) {
			items[k].key = w->av.a[cmds[i].arg0 + j].p;
			items[k].klen = w->av.a[cmds[i].arg0 + j].len;
		}
	int rc = resp_client(w, &kc);
	if (rc) {
		/* no cluster: one error per command, not an array of them */
		for (size_t i = 0; i < n; i++)
			resp_put_kvn_error(c, rc);
		free(items);
		return;
	}
	(void)kvn_batch_get(kc, items, nkeys);
	RESP_COUNT(w->srv, batches, 1);
	RESP_COUNT(w->srv, batched_keys, nkeys);
	k = 0;
	for (size_t i = 0; i < n; i++) {
		const struct resp_arg *a0 = &w->av.a[cmds[i].arg0];
		if (resp_is(a0, "GET")) {
			put_item_value(c, &items[k++]);
			continue;
		}
		resp_put_array(c->out, cmds[i].argc - 1);
		for (size_t j = 1; j < cmds[i].argc; j++)
			put_item_value(c, &items[k++]);
	}
	free(items);
}

struct dup_key {
	uint64_t h;
	size_t i;
	const struct kvn_item *it;
};

static int dup_cmp(const void *x, const void *y)
{
	const struct dup_key *a = x, *b = y;
	if (a->h != b->h)
		return a->h < b->h ? -1 : 1;
	if (a->it->klen != b->it->klen)
		return a->it->klen < b->it->klen ? -1 : 1;
	int m = memcmp(a->it->key, b->it->key, a->it->klen);
	if (m)
		return m;
	return a->i < b->i ? -1 : 1;
}

/* A batch stores its items in no particular order, Redis in command
 * order: of several puts of one key only the last is sent (skip[i] set for
 * the others, which count as written and overwritten at once). */
static void dedup(const struct kvn_item *items, size_t n, char *skip)
{
	struct dup_key *d = kvn_xcalloc(n, sizeof *d);
	for (size_t i = 0; i < n; i++)
		d[i] = (struct dup_key){ kvn_hash64(items[i].key, items[i].klen), i, &items[i] };
	qsort(d, n, sizeof *d, dup_cmp);
	for (size_t i = 0; i + 1 < n; i++)
		if (d[i].h == d[i + 1].h && d[i].it->klen == d[i + 1].it->klen &&
		    memcmp(d[i].it->key, d[i + 1].it->key, d[i].it->klen) == 0)
			skip[d[i].i] = 1;
	free(d);
}

/* cmds[0..n): plain SET (argument 3 onwards: a TTL of ttl_ms) or MSET. */
static void exec_puts(struct resp_conn *c, const struct resp_cmd *cmds, size_t n, size_t nkeys, uint64_t ttl_ms)
{
	struct resp_worker *w = c->w;
	struct kvn_item *items = kvn_xcalloc(nkeys, sizeof *items), *send = kvn_xcalloc(nkeys, sizeof *send);
	char *skip = kvn_xcalloc(nkeys, 1);
	struct kvn_put_opts o = { .ttl_ms = ttl_ms };
	struct kvn_client *kc;
	size_t k = 0, ns = 0;

	for (size_t i = 0; i < n; i++) {
		const struct resp_arg *a = &w->av.a[cmds[i].arg0];
		size_t pairs = resp_is(&a[0], "SET") ? 1 : (cmds[i].argc - 1) / 2;
		for (size_t j = 0; j < pairs; j++, k++) {
			items[k].key = a[1 + 2 * j].p;
			items[k].klen = a[1 + 2 * j].len;
			items[k].val = (void *)a[2 + 2 * j].p;
			items[k].vlen = a[2 + 2 * j].len;
		}
	}
	dedup(items, nkeys, skip);
	for (k = 0; k < nkeys; k++)
		if (!skip[k])
			send[ns++] = items[k];
	int rc = resp_client(w, &kc);
	if (rc == 0) {
		lock_writes(c, 0);
		(void)kvn_batch_put_opts(kc, send, ns, &o);
		unlock_writes(c);
		RESP_COUNT(w->srv, batches, 1);
		RESP_COUNT(w->srv, batched_keys, ns);
	} else {
		for (k = 0; k < ns; k++)
			send[k].status = rc;
	}
	for (k = 0, ns = 0; k < nkeys; k++)
		items[k].status = skip[k] ? 0 : send[ns++].status;
	k = 0;
	for (size_t i = 0; i < n; i++) {
		const struct resp_arg *a = &w->av.a[cmds[i].arg0];
		size_t pairs = resp_is(&a[0], "SET") ? 1 : (cmds[i].argc - 1) / 2;
		int first = 0;
		for (size_t j = 0; j < pairs; j++, k++)
			if (!first && items[k].status)
				first = items[k].status;
		if (first)
			resp_put_kvn_error(c, first);
		else
			resp_put_simple(c->out, "OK");
	}
	free(skip);
	free(send);
	free(items);
}

/* ---- the other data commands ---- */

/* SET with NX or XX (and SETNX): check, then put, under the write lock. */
static int cond_set(struct resp_conn *c, const struct resp_arg *a, const struct set_opts *o, int as_int)
{
	struct kvn_client *kc;
	struct kvn_put_opts po = { .ttl_ms = o->ttl_ms };
	int rc = resp_client(c->w, &kc);

	if (rc == 0) {
		lock_writes(c, 1);
		rc = kvn_exists(kc, a[1].p, a[1].len);
		if (rc >= 0) {
			int go = o->nx ? rc == 0 : rc == 1;
			rc = go ? kvn_put_opts(kc, a[1].p, a[1].len, a[2].p, a[2].len, &po) : 1;
		}
		unlock_writes(c);
	}
	if (rc < 0)
		resp_put_kvn_error(c, rc);
	else if (as_int)
		resp_put_int(c->out, rc == 0);
	else if (rc == 0)
		resp_put_simple(c->out, "OK");
	else
		resp_put_null(c->out, c->proto);
	return 0;
}

static int cmd_setnx(struct resp_conn *c, const struct resp_arg *a, size_t n)
{
	struct set_opts o = { .nx = 1 };
	(void)n;
	return cond_set(c, a, &o, 1);
}

/* DEL, UNLINK and EXISTS: a batch of keys, answered with a count. */
static int count_keys(struct resp_conn *c, const struct resp_arg *a, size_t n, int del)
{
	struct kvn_item *items = kvn_xcalloc(n - 1, sizeof *items);
	struct kvn_client *kc;
	long long count = 0;
	int rc = resp_client(c->w, &kc), bad = 0;

	for (size_t i = 1; i < n; i++) {
		items[i - 1].key = a[i].p;
		items[i - 1].klen = a[i].len;
	}
	if (rc == 0 && del) {
		lock_writes(c, 0);
		(void)kvn_batch_remove(kc, items, n - 1);
		unlock_writes(c);
	} else if (rc == 0) {
		(void)kvn_batch_exists(kc, items, n - 1);
	}
	for (size_t i = 0; rc == 0 && i < n - 1; i++) {
		int st = items[i].status;
		if (st == 0)
			count += del ? 1 : items[i].exists;
		else if (st != KVN_ENOTFOUND && st != KVN_EKEYLEN && !bad)
			bad = st;
	}
	free(items);
	if (rc || bad)
		resp_put_kvn_error(c, rc ? rc : bad);
	else
		resp_put_int(c->out, count);
	return 0;
}

static int cmd_del(struct resp_conn *c, const struct resp_arg *a, size_t n)
{
	return count_keys(c, a, n, 1);
}

static int cmd_exists(struct resp_conn *c, const struct resp_arg *a, size_t n)
{
	return count_keys(c, a, n, 0);
}

/* STRLEN: the size the master knows, no bytes moved. */
static int cmd_strlen(struct resp_conn *c, const struct resp_arg *a, size_t n)
{
	struct kvn_slot s;
	struct kvn_client *kc;
	int rc = resp_client(c->w, &kc);

	(void)n;
	memset(&s, 0, sizeof s);
	s.key = a[1].p;
	s.klen = a[1].len;
	if (rc == 0)
		rc = kvn_resolve(kc, &s, 1);
	if (rc == 0)
		rc = s.status;
	if (rc == KVN_ENOTFOUND || rc == KVN_EKEYLEN)
		resp_put_int(c->out, 0);
	else if (rc)
		resp_put_kvn_error(c, rc);
	else
		resp_put_int(c->out, (long long)s.size);
	return 0;
}

static int cmd_type(struct resp_conn *c, const struct resp_arg *a, size_t n)
{
	struct kvn_client *kc;
	int rc = resp_client(c->w, &kc);

	(void)n;
	if (rc == 0)
		rc = kvn_exists(kc, a[1].p, a[1].len);
	if (rc < 0 && rc != KVN_EKEYLEN)
		resp_put_kvn_error(c, rc);
	else
		resp_put_simple(c->out, rc == 1 ? "string" : "none");
	return 0;
}

/* ---- connection commands ---- */

static int cmd_ping(struct resp_conn *c, const struct resp_arg *a, size_t n)
{
	if (n > 2)
		put_wrong_args(c, "ping");
	else if (n == 2)
		resp_put_bulk(c->out, a[1].p, a[1].len);
	else
		resp_put_simple(c->out, "PONG");
	return 0;
}

static int cmd_echo(struct resp_conn *c, const struct resp_arg *a, size_t n)
{
	(void)n;
	resp_put_bulk(c->out, a[1].p, a[1].len);
	return 0;
}

static int cmd_select(struct resp_conn *c, const struct resp_arg *a, size_t n)
{
	(void)n;
	if (a[1].len == 1 && a[1].p[0] == '0')
		resp_put_simple(c->out, "OK");
	else {
		RESP_COUNT(c->w->srv, total_error_replies, 1);
		resp_put_error(c->out, "ERR DB index is out of range (kvnode has one database, 0)");
	}
	return 0;
}

static int cmd_quit(struct resp_conn *c, const struct resp_arg *a, size_t n)
{
	(void)a;
	(void)n;
	resp_put_simple(c->out, "OK");
	c->closing = 1;
	return 0;
}

static int cmd_auth(struct resp_conn *c, const struct resp_arg *a, size_t n)
{
	if (n > 3) {
		put_syntax(c);
		return 0;
	}
	/* AUTH token, AUTH user token: any user name */
	if (resp_auth(c, &a[n - 1]) == 0)
		resp_put_simple(c->out, "OK");
	return 0;
}

static int cmd_set(struct resp_conn *c, const struct resp_arg *a, size_t n)
{
	struct set_opts o;
	if (set_opts_parse(c, a, n, &o) != 0)
		return 0;
	return cond_set(c, a, &o, 0); /* resp_exec sends plain ones to exec_puts */
}

const struct resp_cmd_def resp_cmd_defs[] = {
	{ "get", 2, "readonly fast", 1, 1, 1, NULL },
	{ "mget", -2, "readonly fast", 1, -1, 1, NULL },
	{ "set", -3, "write denyoom", 1, 1, 1, cmd_set },
	{ "mset", -3, "write denyoom", 1, -1, 2, NULL },
	{ "setnx", 3, "write denyoom fast", 1, 1, 1, cmd_setnx },
	{ "del", -2, "write", 1, -1, 1, cmd_del },
	{ "unlink", -2, "write fast", 1, -1, 1, cmd_del },
	{ "exists", -2, "readonly fast", 1, -1, 1, cmd_exists },
	{ "strlen", 2, "readonly fast", 1, 1, 1, cmd_strlen },
	{ "type", 2, "readonly fast", 1, 1, 1, cmd_type },
	{ "scan", -2, "readonly", 0, 0, 0, resp_cmd_scan },
	{ "dbsize", 1, "readonly fast", 0, 0, 0, resp_cmd_dbsize },
	{ "ping", -1, "fast noauth", 0, 0, 0, cmd_ping },
	{ "echo", 2, "fast", 0, 0, 0, cmd_echo },
	{ "auth", -2, "noscript loading stale fast noauth", 0, 0, 0, cmd_auth },
	{ "hello", -1, "noscript loading stale fast noauth", 0, 0, 0, resp_cmd_hello },
	{ "quit", -1, "noscript loading stale fast noauth", 0, 0, 0, cmd_quit },
	{ "select", 2, "loading stale fast", 0, 0, 0, cmd_select },
	{ "info", -1, "loading stale", 0, 0, 0, resp_cmd_info },
	{ "command", -1, "loading stale", 0, 0, 0, resp_cmd_command },
	{ "config", -2, "admin loading stale", 0, 0, 0, resp_cmd_config },
	{ "client", -2, "loading stale", 0, 0, 0, resp_cmd_client },
	{ "multi", 1, "noscript loading stale fast", 0, 0, 0, resp_cmd_multi },
	{ "exec", 1, "noscript loading stale", 0, 0, 0, resp_cmd_exec },
	{ "discard", 1, "noscript loading stale fast", 0, 0, 0, resp_cmd_discard },
};
const size_t resp_ncmd_defs = sizeof resp_cmd_defs / sizeof resp_cmd_defs[0];

static const struct resp_cmd_def *lookup(const struct resp_arg *a)
{
	for (size_t i = 0; i < resp_ncmd_defs; i++)
		if (resp_is(a, resp_cmd_defs[i].name))
			return &resp_cmd_defs[i];
	return NULL;
}

enum kind { K_GET, K_PUT, K_OTHER };

/* What cmd is for batching: K_GET (GET, MGET), K_PUT (MSET, or SET
 * without NX/XX, its TTL in *ttl), else K_OTHER (run alone, which also
 * answers its errors).  *nkeys: the keys it adds to a batch. */
static enum kind classify(struct resp_conn *c, const struct resp_cmd *cmd, uint64_t *ttl, size_t *nkeys)
{
	const struct resp_arg *a = &c->w->av.a[cmd->arg0];
	size_t n = cmd->argc;

	if (!c->authed)
		return K_OTHER;
	if ((resp_is(&a[0], "GET") && n == 2) || (resp_is(&a[0], "MGET") && n >= 2)) {
		*nkeys = n - 1;
		return K_GET;
	}
	if (resp_is(&a[0], "MSET") && n >= 3 && n % 2 == 1) {
		*ttl = 0;
		*nkeys = (n - 1) / 2;
		return K_PUT;
	}
	if (resp_is(&a[0], "SET") && n >= 3) {
		struct set_opts o;
		/* quietly: a bad one runs alone and answers then */
		if (set_opts_parse(NULL, a, n, &o) != 0 || o.nx || o.xx)
			return K_OTHER;
		*ttl = o.ttl_ms;
		*nkeys = 1;
		return K_PUT;
	}
	return K_OTHER;
}

size_t resp_exec(struct resp_conn *c, const struct resp_cmd *cmds, size_t n)
{
	struct resp_worker *w = c->w;
	size_t i = 0;

	while (i < n && !c->closing) {
		const struct resp_arg *a = &w->av.a[cmds[i].arg0];
		size_t argc = cmds[i].argc, nk = 0, j, total;
		uint64_t ttl = 0, ttl2;

		if (c->multi && c->authed && resp_multi_queue(c, a, argc, lookup(&a[0]))) {
			RESP_COUNT(w->srv, total_commands_processed, 1);
			i++;
			continue;
		}
		enum kind k = classify(c, &cmds[i], &ttl, &nk);

		if (k != K_OTHER) {
			/* the run of commands of the same kind (and TTL) */
			total = nk;
			for (j = i + 1; j < n; j++) {
				size_t nk2 = 0;
				ttl2 = 0;
				if (c->multi || classify(c, &cmds[j], &ttl2, &nk2) != k || ttl2 != ttl ||
				    total + nk2 > GROUP_MAX)
					break;
				total += nk2;
			}
			if (k == K_GET)
				exec_gets(c, &cmds[i], j - i, total);
			else
				exec_puts(c, &cmds[i], j - i, total, ttl);
			RESP_COUNT(w->srv, total_commands_processed, j - i);
			i = j;
			continue;
		}
		const struct resp_cmd_def *d = lookup(&a[0]);
		RESP_COUNT(w->srv, total_commands_processed, 1);
		i++;
		if (!d) {
			char q[80];
			kvn_str_quote(q, sizeof q, a[0].p, a[0].len);
			RESP_COUNT(w->srv, total_error_replies, 1);
			resp_put_errorf(c->out, "ERR unknown command %s", q);
			continue;
		}
		if ((d->arity > 0 && argc != (size_t)d->arity) || (d->arity < 0 && argc < (size_t)-d->arity)) {
			put_wrong_args(c, d->name);
			continue;
		}
		if (!c->authed && !strstr(d->flags, "noauth")) {
			RESP_COUNT(w->srv, total_error_replies, 1);
			resp_put_error(c->out, "NOAUTH Authentication required.");
			continue;
		}
		if (d->fn)
			d->fn(c, a, argc);
		else if (resp_is(&a[0], "MSET"))
			put_wrong_args(c, d->name); /* an even count: classify refused it */
		else
			put_syntax(c);
	}
	return i;
}
