/*
 * accept_guard: what a listener does when accept() fails for a reason that
 * will not pass by itself (EMFILE, ENFILE, ENOBUFS, ENOMEM).  libevent's
 * listener, with no error callback, warns and returns, and its
 * level-triggered read event fires again at once: a busy loop that floods
 * the log for as long as the process is out of descriptors.  The guard
 * stops accepting for a pause (doubling with jitter while the failures go
 * on, back to the shortest after a pause that ended in an accept), logs
 * one rate-limited warning, and lets the pending connections wait in the
 * kernel's backlog meanwhile.  The owner embeds the guard, calls
 * kvn_accept_guard_on_error from its listener's error callback (libevent
 * passes the listener's own argument there, so the owner finds its guard)
 * and kvn_accept_guard_fini before freeing the listener.  One loop only.
 */
#ifndef KVN_ACCEPT_GUARD_H
#define KVN_ACCEPT_GUARD_H

#include <event2/event.h>
#include <event2/listener.h>

#include "base/base.h"

struct kvn_accept_guard {
	struct evconnlistener *l;
	struct event *timer;
	struct kvn_backoff bo;
	struct kvn_ratelimit rl;
	int paused;
	uint64_t last_ms; /* when the last pause started */
	char what[64]; /* for the log: the config key of the address */
};

/* Guard l (accepting on base) as `what`.  0, or KVN_ENOMEM. */
int kvn_accept_guard_init(struct kvn_accept_guard *g, struct event_base *base, struct evconnlistener *l,
			  const char *what);
/* The listener's error callback: pause accepting, warn (rate-limited). */
void kvn_accept_guard_on_error(struct kvn_accept_guard *g);
/* Before the listener is freed.  A guard never initialised (all zero) is ok. */
void kvn_accept_guard_fini(struct kvn_accept_guard *g);

#endif
