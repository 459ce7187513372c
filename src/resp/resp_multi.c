/*
 * resp_multi: MULTI / EXEC / DISCARD, because redis-py's pipeline() is a
 * transaction by default.  The queued commands are kept re-encoded as RESP
 * in the connection's own buffer (the input they came from is reused),
 * and EXEC runs them as one parse round (so GETs and SETs batch as in a
 * pipeline) under the gateway's write lock: no write of another client of
 * this gateway lands between them.  Not isolated from readers, and not
 * all-or-nothing when the cluster fails midway: each command's reply says
 * how it went, as Redis's EXEC does for errors at run time.
 */
#include "config.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "resp/resp_int.h"

static void multi_reset(struct resp_conn *c)
{
	if (c->mq)
		evbuffer_free(c->mq);
	c->mq = NULL;
	c->multi = 0;
	c->mq_n = 0;
	c->mq_bad = 0;
}

int resp_cmd_multi(struct resp_conn *c, const struct resp_arg *a, size_t n)
{
	(void)a;
	(void)n;
	if (c->multi) {
		RESP_COUNT(c->w->srv, total_error_replies, 1);
		resp_put_error(c->out, "ERR MULTI calls can not be nested");
		return 0;
	}
	c->mq = evbuffer_new();
	if (!c->mq)
		kvn_fatal("out of memory");
	c->multi = 1;
	resp_put_simple(c->out, "OK");
	return 0;
}

int resp_cmd_discard(struct resp_conn *c, const struct resp_arg *a, size_t n)
{
	(void)a;
	(void)n;
	if (!c->multi) {
		RESP_COUNT(c->w->srv, total_error_replies, 1);
		resp_put_error(c->out, "ERR DISCARD without MULTI");
		return 0;
	}
	multi_reset(c);
	resp_put_simple(c->out, "OK");
	return 0;
}

int resp_multi_queue(struct resp_conn *c, const struct resp_arg *a, size_t n, const struct resp_cmd_def *d)
{
	struct resp_srv *srv = c->w->srv;

	if (!c->multi || resp_is(&a[0], "EXEC") || resp_is(&a[0], "DISCARD") || resp_is(&a[0], "MULTI") ||
	    resp_is(&a[0], "QUIT"))
		return 0;
	if (!d || (d->arity > 0 && n != (size_t)d->arity) || (d->arity < 0 && n < (size_t)-d->arity)) {
		c->mq_bad = 1; /* EXEC then answers EXECABORT, as Redis */
		RESP_COUNT(srv, total_error_replies, 1);
		resp_put_error(c->out, d ? "ERR wrong number of arguments" : "ERR unknown command");
		return 1;
	}
	size_t bytes = 16;
	for (size_t i = 0; i < n; i++)
		bytes += a[i].len + 24;
	if (evbuffer_get_length(c->mq) + bytes > srv->conf.resp_max_input) {
		c->mq_bad = 1;
		RESP_COUNT(srv, total_error_replies, 1);
		resp_put_error(c->out, "ERR transaction too large (over resp.max_input)");
		return 1;
	}
	resp_put_array(c->mq, n);
	for (size_t i = 0; i < n; i++)
		resp_put_bulk(c->mq, a[i].p, a[i].len);
	c->mq_n++;
	resp_put_simple(c->out, "QUEUED");
	return 1;
}

int resp_cmd_exec(struct resp_conn *c, const struct resp_arg *a, size_t n)
{
	struct resp_worker *w = c->w;
	struct resp_srv *srv = w->srv;
	struct resp_argv av = { 0 }, keep;
	struct resp_cmd *cmds;
	size_t ncmd = 0, pos = 0, used, need;
	const char *why;

	(void)a;
	(void)n;
	if (!c->multi) {
		RESP_COUNT(srv, total_error_replies, 1);
		resp_put_error(c->out, "ERR EXEC without MULTI");
		return 0;
	}
	if (c->mq_bad) {
		multi_reset(c);
		RESP_COUNT(srv, total_error_replies, 1);
		resp_put_error(c->out, "EXECABORT Transaction discarded because of previous errors.");
		return 0;
	}
	struct evbuffer *q = c->mq;
	size_t len = evbuffer_get_length(q);
	const char *buf = len ? (const char *)evbuffer_pullup(q, -1) : "";
	struct resp_limits lim = { .max_bulk = UINT64_MAX, .max_request = UINT64_MAX };
	cmds = kvn_xcalloc(c->mq_n ? c->mq_n : 1, sizeof *cmds);
	while (ncmd < c->mq_n) {
		size_t arg0 = av.n;
		/* our own encoding: it parses */
		if (resp_parse(buf + pos, len - pos, &lim, &av, &used, &need, &why) != RESP_CMD)
			break;
		pos += used;
		cmds[ncmd++] = (struct resp_cmd){ arg0, av.n - arg0 };
	}
	c->mq = NULL;
	c->multi = 0;
	c->mq_n = 0;
	resp_put_array(c->out, ncmd);
	/* the round runs on the queued arguments; the caller's round (this
	 * EXEC's) is restored after */
	keep = w->av;
	w->av = av;
	c->in_exec = 1;
	pthread_rwlock_wrlock(&srv->cond_lock);
	size_t ran = resp_exec(c, cmds, ncmd);
	pthread_rwlock_unlock(&srv->cond_lock);
	c->in_exec = 0;
	av = w->av;
	w->av = keep;
	for (; ran < ncmd; ran++) /* after a QUIT that was queued: every reply still owed */
		resp_put_error(c->out, "ERR not run: the transaction quit");
	resp_argv_free(&av);
	free(cmds);
	evbuffer_free(q);
	return 0;
}

void resp_multi_free(struct resp_conn *c)
{
	multi_reset(c);
}
