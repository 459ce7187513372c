/*
 * resp_info: the commands about the server rather than values: AUTH and
 * HELLO, INFO, COMMAND (enough for redis-cli and redis-py), CONFIG GET
 * (what redis-benchmark asks at start), CLIENT, DBSIZE, and SCAN over
 * kvn_list with Redis's MATCH glob.
 */
#include "config.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resp/resp_int.h"

/* Redis's version the gateway claims: clients gate features on it, and
 * the commands here behave as 7.0's. */
#define COMPAT_VERSION "7.0.0"

static void put_err(struct resp_conn *c, const char *s)
{
	RESP_COUNT(c->w->srv, total_error_replies, 1);
	resp_put_error(c->out, s);
}

int resp_auth(struct resp_conn *c, const struct resp_arg *tok)
{
	struct resp_worker *w = c->w;
	uint64_t sup = 0;

	if (auth_resp_token_check(&w->srv->ring, tok->p, tok->len) == 0) {
		c->authed = 1;
		return 0;
	}
	c->authed = 0;
	if (kvn_ratelimit_ok(&w->rl_auth, &sup))
		log_warn("AUTH refused from %s: not the token of a client secret (%llu more like this "
			 "suppressed)",
			 c->addr, (unsigned long long)sup);
	put_err(c, "WRONGPASS invalid username-password pair or user is disabled.");
	return -1;
}

/* HELLO [2|3 [AUTH user token] [SETNAME name]] */
int resp_cmd_hello(struct resp_conn *c, const struct resp_arg *a, size_t n)
{
	int proto = c->proto;
	size_t i = 1;

	if (n > 1) {
		if (resp_is(&a[1], "2"))
			proto = 2;
		else if (resp_is(&a[1], "3"))
			proto = 3;
		else {
			put_err(c, "NOPROTO unsupported protocol version");
			return 0;
		}
		i = 2;
	}
	for (; i < n; i++) {
		if (resp_is(&a[i], "AUTH") && i + 2 < n) {
			if (resp_auth(c, &a[i + 2]) != 0)
				return 0;
			i += 2;
		} else if (resp_is(&a[i], "SETNAME") && i + 1 < n && a[i + 1].len < sizeof c->name) {
			memcpy(c->name, a[i + 1].p, a[i + 1].len);
			c->name[a[i + 1].len] = '\0';
			i++;
		} else {
			put_err(c, "ERR syntax error in HELLO option");
			return 0;
		}
	}
	c->proto = proto;
	resp_put_map(c->out, 7, proto);
	resp_put_str(c->out, "server");
	resp_put_str(c->out, "redis");
	resp_put_str(c->out, "version");
	resp_put_str(c->out, COMPAT_VERSION);
	resp_put_str(c->out, "proto");
	resp_put_int(c->out, proto);
	resp_put_str(c->out, "id");
	resp_put_int(c->out, (long long)c->id);
	resp_put_str(c->out, "mode");
	resp_put_str(c->out, "standalone");
	resp_put_str(c->out, "role");
	resp_put_str(c->out, "master");
	resp_put_str(c->out, "modules");
	resp_put_array(c->out, 0);
	return 0;
}

/* ---- INFO ---- */

struct info_ctx {
	struct evbuffer *b;
};

static void info_stat(void *arg, const char *name, const char *doc, uint64_t value)
{
	struct info_ctx *x = arg;
	(void)doc;
	evbuffer_add_printf(x->b, "%s:%llu\r\n", name, (unsigned long long)value);
}

static int want(const struct resp_arg *a, size_t n, const char *section)
{
	if (n <= 1)
		return 1;
	for (size_t i = 1; i < n; i++)
		if (resp_is(&a[i], section) || resp_is(&a[i], "all") || resp_is(&a[i], "default") ||
		    resp_is(&a[i], "everything"))
			return 1;
	return 0;
}

int resp_cmd_info(struct resp_conn *c, const struct resp_arg *a, size_t n)
{
	struct resp_srv *srv = c->w->srv;
	struct evbuffer *b = evbuffer_new();
	uint64_t up = (kvn_now_ms() - srv->start_ms) / 1000;
	struct kvn_client *kc;
	struct kvn_cluster_stat cs;
	struct kvn_node_stat nodes[64];
	int have_cs = 0;

	if (!b)
		kvn_fatal("out of memory");
	if ((want(a, n, "memory") || want(a, n, "keyspace")) && resp_client(c->w, &kc) == 0 &&
	    kvn_stat_cluster(kc, &cs, nodes, 64) == 0)
		have_cs = 1;
	if (want(a, n, "server"))
		evbuffer_add_printf(b,
				    "# Server\r\nredis_version:%s\r\nkvnode_version:%s\r\nredis_mode:standalone\r\n"
				    "process_id:%ld\r\ntcp_port:%s\r\nuptime_in_seconds:%llu\r\n"
				    "uptime_in_days:%llu\r\nio_threads_active:%llu\r\n\r\n",
				    COMPAT_VERSION, PACKAGE_VERSION, (long)getpid(),
				    strrchr(srv->conf.resp_listen, ':') ? strrchr(srv->conf.resp_listen, ':') + 1 : "",
				    (unsigned long long)up, (unsigned long long)up / 86400,
				    (unsigned long long)srv->conf.resp_threads);
	if (want(a, n, "clients"))
		evbuffer_add_printf(b, "# Clients\r\nconnected_clients:%u\r\nmaxclients:%llu\r\n\r\n",
				    __atomic_load_n(&srv->nconns, __ATOMIC_RELAXED),
				    (unsigned long long)srv->conf.resp_max_clients);
	if (want(a, n, "stats")) {
		struct resp_stats snap, *st = &snap, *src = &srv->st;
		struct info_ctx x = { b };
		kvn_stat_fn fn = info_stat;
		void *arg = &x;
		RESP_STATS_FIELDS(KVN_STAT_LOAD)
		evbuffer_add_printf(b, "# Stats\r\n");
		RESP_STATS_FIELDS(KVN_STAT_VISIT)
		evbuffer_add_printf(b, "\r\n");
	}
	if (want(a, n, "memory")) {
		uint64_t used = 0, total = 0;
		char h[32];
		for (size_t i = 0; have_cs && i < cs.nodes && i < 64; i++)
			if (nodes[i].alive) {
				used += nodes[i].dram_used;
				total += nodes[i].dram_total;
			}
		kvn_format_size_human(h, sizeof h, used);
		/* the cluster's DRAM tier, not this process */
		evbuffer_add_printf(b,
				    "# Memory\r\nused_memory:%llu\r\nused_memory_human:%s\r\nmaxmemory:%llu\r\n"
				    "maxmemory_policy:allkeys-lru\r\nkvnode_value_bytes:%llu\r\n\r\n",
				    (unsigned long long)used, h, (unsigned long long)total,
				    (unsigned long long)(have_cs ? cs.bytes : 0));
	}
	if (want(a, n, "keyspace")) {
		evbuffer_add_printf(b, "# Keyspace\r\n");
		if (have_cs && cs.objects > 0)
			evbuffer_add_printf(b, "db0:keys=%llu,expires=0,avg_ttl=0\r\n",
					    (unsigned long long)cs.objects);
	}
	evbuffer_add_printf(c->out, "$%zu\r\n", evbuffer_get_length(b));
	evbuffer_add_buffer(c->out, b);
	evbuffer_add(c->out, "\r\n", 2);
	evbuffer_free(b);
	return 0;
}

/* ---- COMMAND ---- */

static void put_cmd_entry(struct resp_conn *c, const struct resp_cmd_def *d)
{
	char flags[128];
	size_t nf = 0;

	snprintf(flags, sizeof flags, "%s", d->flags);
	for (char *save = NULL, *t = strtok_r(flags, " ", &save); t; t = strtok_r(NULL, " ", &save))
		if (strcmp(t, "noauth") != 0)
			nf++;
	resp_put_array(c->out, 7);
	resp_put_str(c->out, d->name);
	resp_put_int(c->out, d->arity);
	resp_put_array(c->out, nf);
	snprintf(flags, sizeof flags, "%s", d->flags);
	for (char *save = NULL, *t = strtok_r(flags, " ", &save); t; t = strtok_r(NULL, " ", &save))
		if (strcmp(t, "noauth") != 0)
			resp_put_simple(c->out, t);
	resp_put_int(c->out, d->first);
	resp_put_int(c->out, d->last);
	resp_put_int(c->out, d->step);
	resp_put_array(c->out, 0);
}

static const struct resp_cmd_def *find_def(const struct resp_arg *a)
{
	for (size_t i = 0; i < resp_ncmd_defs; i++)
		if (resp_is(a, resp_cmd_defs[i].name))
			return &resp_cmd_defs[i];
	return NULL;
}

int resp_cmd_command(struct resp_conn *c, const struct resp_arg *a, size_t n)
{
	if (n == 1) {
		resp_put_array(c->out, resp_ncmd_defs);
		for (size_t i = 0; i < resp_ncmd_defs; i++)
			put_cmd_entry(c, &resp_cmd_defs[i]);
	} else if (resp_is(&a[1], "COUNT") && n == 2) {
		resp_put_int(c->out, (long long)resp_ncmd_defs);
	} else if (resp_is(&a[1], "LIST") && n == 2) {
		resp_put_array(c->out, resp_ncmd_defs);
		for (size_t i = 0; i < resp_ncmd_defs; i++)
			resp_put_str(c->out, resp_cmd_defs[i].name);
	} else if (resp_is(&a[1], "INFO")) {
		resp_put_array(c->out, n - 2);
		for (size_t i = 2; i < n; i++) {
			const struct resp_cmd_def *d = find_def(&a[i]);
			if (d)
				put_cmd_entry(c, d);
			else
				resp_put_null(c->out, c->proto);
		}
	} else if (resp_is(&a[1], "DOCS")) {
		/* no docs: redis-cli then uses the help it was built with */
		resp_put_map(c->out, 0, c->proto);
	} else {
		put_err(c, "ERR unknown subcommand of COMMAND (COUNT, DOCS, INFO, LIST)");
	}
	return 0;
}

/* ---- CONFIG GET: the parameters clients look at ---- */

int resp_cmd_config(struct resp_conn *c, const struct resp_arg *a, size_t n)
{
	struct resp_srv *srv = c->w->srv;
	char maxclients[24], maxmem[24];
	struct {
		const char *name, *value;
	} params[] = {
		{ "save", "" },        /* redis-benchmark asks: nothing to fork */
		{ "appendonly", "no" },
		{ "databases", "1" },
		{ "maxclients", maxclients },
		{ "proto-max-bulk-len", maxmem },
	};
	size_t np = sizeof params / sizeof params[0], hits = 0;

	if (!resp_is(&a[1], "GET") || n < 3) {
		put_err(c, "ERR only CONFIG GET is supported by kvnode's RESP gateway (its settings are "
			   "the resp.* keys of kvnode.conf)");
		return 0;
	}
	snprintf(maxclients, sizeof maxclients, "%llu", (unsigned long long)srv->conf.resp_max_clients);
	snprintf(maxmem, sizeof maxmem, "%llu", (unsigned long long)srv->conf.node_max_value_size);
	int *hit = kvn_xcalloc(np, sizeof *hit);
	for (size_t j = 0; j < np; j++)
		for (size_t i = 2; i < n && !hit[j]; i++)
			if (resp_glob(a[i].p, a[i].len, params[j].name, strlen(params[j].name)))
				hit[j] = 1, hits++;
	resp_put_map(c->out, hits, c->proto);
	for (size_t j = 0; j < np; j++)
		if (hit[j]) {
			resp_put_str(c->out, params[j].name);
			resp_put_str(c->out, params[j].value);
		}
	free(hit);
	return 0;
}

/* ---- CLIENT ---- */

int resp_cmd_client(struct resp_conn *c, const struct resp_arg *a, size_t n)
{
	if (resp_is(&a[1], "SETNAME") && n == 3) {
		if (a[2].len >= sizeof c->name) {
			put_err(c, "ERR client name too long");
			return 0;
		}
		for (size_t i = 0; i < a[2].len; i++)
			if (a[2].p[i] <= ' ' || a[2].p[i] > '~') {
				put_err(c, "ERR Client names cannot contain spaces, newlines or special characters.");
				return 0;
			}
		memcpy(c->name, a[2].p, a[2].len);
		c->name[a[2].len] = '\0';
		resp_put_simple(c->out, "OK");
	} else if (resp_is(&a[1], "GETNAME") && n == 2) {
		if (c->name[0])
			resp_put_str(c->out, c->name);
		else
			resp_put_null(c->out, c->proto);
	} else if (resp_is(&a[1], "ID") && n == 2) {
		resp_put_int(c->out, (long long)c->id);
	} else if (resp_is(&a[1], "SETINFO") && n == 4) {
		resp_put_simple(c->out, "OK"); /* redis-py 5 sends its name and version */
	} else if ((resp_is(&a[1], "INFO") || resp_is(&a[1], "LIST")) && n == 2) {
		/* this connection only: the others live on other threads */
		char line[320];
		snprintf(line, sizeof line, "id=%llu addr=%s name=%s db=0 resp=%d\n", (unsigned long long)c->id,
			 c->addr, c->name, c->proto);
		resp_put_str(c->out, line);
	} else {
		put_err(c, "ERR unknown subcommand or wrong number of arguments for 'client' (SETNAME, "
			   "GETNAME, ID, SETINFO, INFO, LIST)");
	}
	return 0;
}

/* ---- DBSIZE, SCAN ---- */

int resp_cmd_dbsize(struct resp_conn *c, const struct resp_arg *a, size_t n)
{
	struct kvn_client *kc;
	struct kvn_cluster_stat cs;
	int rc = resp_client(c->w, &kc);

	(void)a;
	(void)n;
	if (rc == 0)
		rc = kvn_stat_cluster(kc, &cs, NULL, 0);
	if (rc)
		resp_put_kvn_error(c, rc);
	else
		resp_put_int(c->out, (long long)cs.objects);
	return 0;
}

/* A decimal argument into *v: 0, or -1. */
static int arg_u64(const struct resp_arg *a, uint64_t *v)
{
	char num[24];
	const char *why;
	if (a->len == 0 || a->len >= sizeof num)
		return -1;
	memcpy(num, a->p, a->len);
	num[a->len] = '\0';
	for (size_t i = 0; i < a->len; i++)
		if (num[i] < '0' || num[i] > '9')
			return -1;
	return kvn_parse_uint(num, v, &why) == 0 ? 0 : -1;
}

/* SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]: one kvn_list page of
 * the keys starting with the pattern's literal prefix, filtered by the
 * pattern.  The cursor is kvn_list's. */
int resp_cmd_scan(struct resp_conn *c, const struct resp_arg *a, size_t n)
{
	const struct resp_arg *match = NULL;
	uint64_t cursor, count = 10;
	int other_type = 0;
	struct kvn_client *kc;

	if (arg_u64(&a[1], &cursor) != 0) {
		put_err(c, "ERR invalid cursor");
		return 0;
	}
	for (size_t i = 2; i < n; i++) {
		if (resp_is(&a[i], "MATCH") && i + 1 < n)
			match = &a[++i];
		else if (resp_is(&a[i], "COUNT") && i + 1 < n) {
			if (arg_u64(&a[++i], &count) != 0) {
				put_err(c, "ERR value is not an integer or out of range");
				return 0;
			}
			if (count == 0) {
				put_err(c, "ERR syntax error");
				return 0;
			}
		} else if (resp_is(&a[i], "TYPE") && i + 1 < n) {
			other_type = !resp_is(&a[++i], "string"); /* every kvnode value is a string */
		} else {
			put_err(c, "ERR syntax error");
			return 0;
		}
	}
	if (count > KVN_LIST_MAX)
		count = KVN_LIST_MAX;
	size_t plen = match ? resp_glob_prefix(match->p, match->len) : 0;
	if (plen > KVN_MAX_KEY) {
		/* no key is that long: the listing is empty */
		resp_put_array(c->out, 2);
		resp_put_str(c->out, "0");
		resp_put_array(c->out, 0);
		return 0;
	}
	struct kvn_listed *page = NULL;
	size_t np = 0, hits = 0;
	int rc = resp_client(c->w, &kc);
	if (rc == 0)
		rc = kvn_list(kc, match ? match->p : NULL, plen, &cursor, (size_t)count, &page, &np);
	if (rc == KVN_EINVAL) {
		put_err(c, "ERR invalid cursor");
		return 0;
	}
	if (rc) {
		resp_put_kvn_error(c, rc);
		return 0;
	}
	char *keep = kvn_xcalloc(np ? np : 1, 1);
	for (size_t i = 0; i < np; i++)
		if (!other_type && (!match || resp_glob(match->p, match->len, page[i].key, page[i].klen)))
			keep[i] = 1, hits++;
	char cur[24];
	snprintf(cur, sizeof cur, "%llu", (unsigned long long)cursor);
	resp_put_array(c->out, 2);
	resp_put_str(c->out, cur);
	resp_put_array(c->out, hits);
	for (size_t i = 0; i < np; i++)
		if (keep[i])
			resp_put_bulk(c->out, page[i].key, page[i].klen);
	free(keep);
	kvn_list_free(page);
	return 0;
}
