/*
 * accept_guard: pauses a listener whose accept() keeps failing
 * (accept_guard.h says why).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "base/accept_guard.h"

#define PAUSE_MIN_MS 100
#define PAUSE_MAX_MS 2000

static void resume(evutil_socket_t fd, short what, void *arg)
{
	struct kvn_accept_guard *g = arg;

	(void)fd;
	(void)what;
	g->paused = 0;
	evconnlistener_enable(g->l);
}

int kvn_accept_guard_init(struct kvn_accept_guard *g, struct event_base *base, struct evconnlistener *l,
			  const char *what)
{
	memset(g, 0, sizeof *g);
	g->timer = evtimer_new(base, resume, g);
	if (!g->timer)
		return KVN_ENOMEM;
	g->l = l;
	kvn_backoff_init(&g->bo, PAUSE_MIN_MS, PAUSE_MAX_MS);
	kvn_ratelimit_init(&g->rl, 10000, 1);
	snprintf(g->what, sizeof g->what, "%s", what);
	return 0;
}

void kvn_accept_guard_on_error(struct kvn_accept_guard *g)
{
	int err = EVUTIL_SOCKET_ERROR();
	uint64_t sup = 0;

	if (g->paused)
		return;
	/* failures one pause after another double it; the first failure
	 * after a quiet spell starts from the shortest again */
	if (g->bo.attempts > 0 && kvn_now_ms() - g->last_ms > 2 * PAUSE_MAX_MS)
		kvn_backoff_reset(&g->bo);
	uint64_t ms = kvn_backoff_next(&g->bo);
	g->last_ms = kvn_now_ms();
	if (kvn_ratelimit_ok(&g->rl, &sup))
		log_warn("%s: accept failed: %s; not accepting new connections for %llu ms (they wait in the "
			 "backlog; %llu more like this suppressed)",
			 g->what, strerror(err), (unsigned long long)ms, (unsigned long long)sup);
	evconnlistener_disable(g->l);
	g->paused = 1;
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000 };
	evtimer_add(g->timer, &tv);
}

void kvn_accept_guard_fini(struct kvn_accept_guard *g)
{
	if (g->timer)
		event_free(g->timer);
	g->timer = NULL;
}
