/*
 * xfer_shm: the shared-memory provider of the one-sided transport (xfer.h).
 * Owns region mapping (a memfd received from a peer, or memory wrapped in
 * process), range-checked reads and writes, sealed memfds, and the map side
 * channel that hands descriptors over a Unix socket (SCM_RIGHTS) against a
 * single-use token: the client side blocking with deadlines, the peer side
 * on its libevent loop so a slow or silent client never stalls it.
 */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/accept_guard.h"
#include "net/xfer.h"

/* ---- regions ---- */

int net_region_wrap(struct net_region *r, void *base, uint64_t len, uint32_t id, int writable)
{
	memset(r, 0, sizeof *r);
	if (!base || len == 0)
		return KVN_EINVAL;
	r->base = base;
	r->len = len;
	r->id = id;
	r->writable = writable;
	return 0;
}

int net_region_map(struct net_region *r, int fd, uint64_t len, uint32_t id, int writable)
{
	struct stat st;
	int seals;

	memset(r, 0, sizeof *r);
	if (fd < 0 || len == 0 || len > (uint64_t)SIZE_MAX / 2)
		return KVN_EINVAL;
	/* A file that could shrink under the mapping would fault (SIGBUS) on
	 * a read past its new end: only a sealed one of the size we were told
	 * is mapped. */
	seals = fcntl(fd, F_GET_SEALS);
	if (fstat(fd, &st) != 0 || (uint64_t)st.st_size < len || seals < 0 || !(seals & F_SEAL_SHRINK))
		return KVN_EPROTO;
	void *p = mmap(NULL, (size_t)len, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return KVN_ENOMEM;
	r->base = p;
	r->len = len;
	r->id = id;
	r->writable = writable;
	r->mapped = 1;
	return 0;
}

void net_region_unmap(struct net_region *r)
{
	if (r->mapped && r->base)
		munmap(r->base, (size_t)r->len);
	memset(r, 0, sizeof *r);
}

int net_xfer_read(const struct net_region *r, const struct net_extent *ext, int n, void *dst, uint64_t cap)
{
	uint64_t total = 0;

	/* every extent is checked before any byte is copied */
	for (int i = 0; i < n; i++) {
		if (ext[i].off > r->len || ext[i].len > r->len - ext[i].off || ext[i].len > cap - total)
			return KVN_EPROTO;
		total += ext[i].len;
	}
	uint8_t *d = dst;
	for (int i = 0; i < n; i++) {
		memcpy(d, r->base + ext[i].off, (size_t)ext[i].len);
		d += ext[i].len;
	}
	return 0;
}

int net_xfer_write(struct net_region *r, uint64_t off, const void *src, uint64_t len)
{
	if (!r->writable)
		return KVN_EPERM;
	if (off > r->len || len > r->len - off)
		return KVN_EPROTO;
	memcpy(r->base + off, src, (size_t)len);
	return 0;
}

/* ---- lease stamps ---- */

static _Atomic uint64_t *stamp_word(const struct net_region *r, uint32_t slot)
{
	if (!r->base || (uint64_t)slot >= r->len / NET_STAMP_SIZE)
		return NULL;
	return (_Atomic uint64_t *)(void *)(r->base + (uint64_t)slot * NET_STAMP_SIZE);
}

int net_stamp_set(struct net_region *r, uint32_t slot, uint64_t id)
{
	_Atomic uint64_t *w = stamp_word(r, slot);
	if (!r->writable)
		return KVN_EPERM;
	if (!w)
		return KVN_EPROTO;
	/* seq_cst: no later store of this thread (a page handed to the next
	 * value, a lock released so another thread may take it) is seen
	 * before this one */
	atomic_store_explicit(w, id, memory_order_seq_cst);
	return 0;
}

int net_xfer_read_stamped(const struct net_region *r, const struct net_extent *ext, int n, void *dst,
			  uint64_t cap, const struct net_region *stamps, uint32_t slot, uint64_t id)
{
	_Atomic uint64_t *w = stamp_word(stamps, slot);
	if (!w || id == NET_STAMP_NONE)
		return KVN_EPROTO;
	int rc = net_xfer_read(r, ext, n, dst, cap);
	if (rc)
		return rc;
	/* the copy's loads are done before the word is read (seqlock reader) */
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(w, memory_order_relaxed) == id ? 0 : KVN_ESTALE;
}

/* ---- memfds ---- */

int net_memfd_new(const char *name, uint64_t len, int *fd)
{
	int f = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (f < 0)
		return KVN_ENOMEM;
	if (ftruncate(f, (off_t)len) != 0 || fcntl(f, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
		close(f);
		return KVN_ENOMEM;
	}
	*fd = f;
	return 0;
}

int net_fd_reopen_ro(int fd, int *ro)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	int f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return KVN_EIO;
	*ro = f;
	return 0;
}

/* ---- the map side channel: client ---- */

static int wait_fd(int fd, short ev, uint64_t deadline_ms)
{
	for (;;) {
		uint64_t now = kvn_now_ms();
		if (now >= deadline_ms)
			return KVN_ETIMEDOUT;
		struct pollfd pfd = { .fd = fd, .events = ev };
		int rc = poll(&pfd, 1, (int)(deadline_ms - now));
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return KVN_ECONN;
	}
}

int net_map_fetch(const char *path, const uint8_t token[NET_MAP_TOKEN], uint64_t timeout_ms, int *fds,
		  int *nfds)
{
	struct sockaddr_un un;
	uint8_t req[8 + NET_MAP_TOKEN], ans[8];
	uint64_t deadline = kvn_now_ms() + timeout_ms;
	int fd, rc;

	*nfds = 0;
	memset(&un, 0, sizeof un);
	un.sun_family = AF_UNIX;
	if (snprintf(un.sun_path, sizeof un.sun_path, "%s%s", path, NET_MAP_SUFFIX) >= (int)sizeof un.sun_path)
		return KVN_EINVAL;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return KVN_ECONN;
	if (connect(fd, (struct sockaddr *)&un, sizeof un) != 0 && errno != EINPROGRESS && errno != EAGAIN) {
		close(fd);
		return KVN_ECONN;
	}
	memcpy(req, NET_MAP_MAGIC, 8);
	memcpy(req + 8, token, NET_MAP_TOKEN);
	size_t sent = 0;
	while (sent < sizeof req) {
		if ((rc = wait_fd(fd, POLLOUT, deadline)) != 0)
			goto fail;
		ssize_t k = send(fd, req + sent, sizeof req - sent, MSG_NOSIGNAL);
		if (k < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (k <= 0) {
			rc = KVN_ECONN;
			goto fail;
		}
		sent += (size_t)k;
	}
	/* one message: the 8-byte answer with the descriptors attached */
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * NET_MAP_MAX_FDS)];
	} cm;
	struct iovec iov = { .iov_base = ans, .iov_len = sizeof ans };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf };
	ssize_t k;
	for (;;) {
		if ((rc = wait_fd(fd, POLLIN, deadline)) != 0)
			goto fail;
		k = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
		if (k < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		break;
	}
	int got[NET_MAP_MAX_FDS], ngot = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int m = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			for (int i = 0; i < m && ngot < NET_MAP_MAX_FDS; i++)
				memcpy(&got[ngot++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
		}
	if (k != (ssize_t)sizeof ans || (mh.msg_flags & MSG_CTRUNC)) {
		rc = k <= 0 ? KVN_ECONN : KVN_EPROTO;
	} else {
		int32_t st;
		uint32_t n;
		memcpy(&st, ans, 4);
		memcpy(&n, ans + 4, 4);
		if (st != 0)
			rc = st < 0 && st > -100 ? st : KVN_EPROTO;
		else if (n != (uint32_t)ngot || n == 0)
			rc = KVN_EPROTO;
		else
			rc = 0;
	}
	if (rc) {
		for (int i = 0; i < ngot; i++)
			close(got[i]);
		goto fail;
	}
	memcpy(fds, got, (size_t)ngot * sizeof *got);
	*nfds = ngot;
	close(fd);
	return 0;
fail:
	close(fd);
	return rc;
}

/* ---- the map side channel: peer ---- */

struct map_conn {
	struct net_map_srv *srv;
	struct event *ev;
	int fd;
	size_t have;
	uint8_t buf[8 + NET_MAP_TOKEN];
	struct map_conn *next, *prev;
};

struct net_map_srv {
	struct evconnlistener *lev;
	struct event_base *base;
	char path[108];
	uint64_t timeout_ms;
	net_map_fn fn;
	void *arg;
	struct map_conn *conns;
	uint32_t nconns;
	struct kvn_accept_guard guard; /* out of descriptors: pause, not spin */
};
/* Map requests open at once; beyond, a new one is closed at accept.  A
 * client opens one per attach and holds it for a round trip, so this only
 * bounds what a misbehaving process of the same user can pin (fds, memory)
 * for up to the timeout each. */
#define MAP_CONNS_MAX 64

static void mc_free(struct map_conn *mc)
{
	struct net_map_srv *s = mc->srv;
	if (mc->prev)
		mc->prev->next = mc->next;
	else
		s->conns = mc->next;
	if (mc->next)
		mc->next->prev = mc->prev;
	s->nconns--;
	event_free(mc->ev);
	close(mc->fd);
	free(mc);
}

static void mc_answer(struct map_conn *mc, int32_t status, const int *fds, int nfds)
{
	uint8_t ans[8];
	uint32_t n = status ? 0 : (uint32_t)nfds;
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * NET_MAP_MAX_FDS)];
	} cm;
	struct iovec iov = { .iov_base = ans, .iov_len = sizeof ans };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	memcpy(ans, &status, 4);
	memcpy(ans + 4, &n, 4);
	if (n > 0) {
		memset(&cm, 0, sizeof cm);
		mh.msg_control = cm.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	}
	/* 8 bytes into an empty socket buffer: never partial; a client that
	 * went away just misses it */
	(void)sendmsg(mc->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void mc_cb(evutil_socket_t fd, short what, void *arg)
{
	struct map_conn *mc = arg;
	(void)fd;
	if (what & EV_TIMEOUT) {
		mc_free(mc);
		return;
	}
	ssize_t k = recv(mc->fd, mc->buf + mc->have, sizeof mc->buf - mc->have, MSG_DONTWAIT);
	if (k < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (k <= 0) {
		mc_free(mc);
		return;
	}
	mc->have += (size_t)k;
	if (mc->have < sizeof mc->buf)
		return;
	if (memcmp(mc->buf, NET_MAP_MAGIC, 8) != 0) {
		mc_answer(mc, KVN_EPROTO, NULL, 0);
	} else {
		int fds[NET_MAP_MAX_FDS], nfds = 0;
		int rc = mc->srv->fn(mc->srv->arg, mc->buf + 8, fds, &nfds);
		if (rc == 0 && (nfds <= 0 || nfds > NET_MAP_MAX_FDS))
			rc = KVN_EPROTO;
		mc_answer(mc, rc, fds, nfds);
	}
	mc_free(mc);
}

static void map_accept_err_cb(struct evconnlistener *lev, void *arg)
{
	struct net_map_srv *s = arg;
	(void)lev;
	kvn_accept_guard_on_error(&s->guard);
}

static void map_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
			  void *arg)
{
	struct net_map_srv *s = arg;
	(void)lev;
	(void)sa;
	(void)salen;
	if (s->nconns >= MAP_CONNS_MAX) {
		close(fd); /* the client sees the channel close: TCP for now */
		return;
	}
	struct map_conn *mc = kvn_xcalloc(1, sizeof *mc);
	mc->srv = s;
	mc->fd = fd;
	mc->ev = event_new(s->base, fd, EV_READ | EV_PERSIST, mc_cb, mc);
	if (!mc->ev)
		kvn_fatal("out of memory");
	struct timeval tv = { .tv_sec = (time_t)(s->timeout_ms / 1000),
			      .tv_usec = (suseconds_t)(s->timeout_ms % 1000) * 1000 };
	mc->next = s->conns;
	if (s->conns)
		s->conns->prev = mc;
	s->conns = mc;
	s->nconns++;
	event_add(mc->ev, &tv);
}

int net_unix_alive(const char *path)
{
	struct sockaddr_un un;
	struct stat st;
	if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode) || strlen(path) >= sizeof un.sun_path)
		return 0;
	memset(&un, 0, sizeof un);
	un.sun_family = AF_UNIX;
	memcpy(un.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	/* a local connect answers at once: accepted, or ECONNREFUSED */
	int alive = connect(fd, (struct sockaddr *)&un, sizeof un) == 0;
	close(fd);
	return alive;
}

int net_map_listen(struct event_base *base, const char *path, uint64_t timeout_ms, net_map_fn fn, void *arg,
		   struct net_map_srv **out, char *err, size_t errlen)
{
	struct sockaddr_un un;
	struct stat st;
	struct net_map_srv *s = kvn_xcalloc(1, sizeof *s);
	int fd;

	memset(&un, 0, sizeof un);
	un.sun_family = AF_UNIX;
	if (snprintf(un.sun_path, sizeof un.sun_path, "%s%s", path, NET_MAP_SUFFIX) >= (int)sizeof un.sun_path) {
		snprintf(err, errlen, "%s%s: path too long for a Unix socket", path, NET_MAP_SUFFIX);
		free(s);
		return KVN_EINVAL;
	}
	snprintf(s->path, sizeof s->path, "%s", un.sun_path);
	s->base = base;
	s->timeout_ms = timeout_ms ? timeout_ms : 1;
	s->fn = fn;
	s->arg = arg;
	if (net_unix_alive(s->path)) {
		snprintf(err, errlen, "%s: another process listens there", s->path);
		free(s);
		return KVN_EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && lstat(s->path, &st) == 0 && S_ISSOCK(st.st_mode))
		(void)unlink(s->path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&un, sizeof un) != 0 || chmod(s->path, 0600) != 0 ||
	    listen(fd, 64) != 0 ||
	    !(s->lev = evconnlistener_new(base, map_accept_cb, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
					  -1, fd))) {
		snprintf(err, errlen, "%s: cannot listen: %s", s->path, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(s);
		return KVN_EIO;
	}
	if (kvn_accept_guard_init(&s->guard, base, s->lev, "net: map channel") == 0)
		evconnlistener_set_error_cb(s->lev, map_accept_err_cb);
	*out = s;
	return 0;
}

void net_map_srv_free(struct net_map_srv *s)
{
	if (!s)
		return;
	while (s->conns)
		mc_free(s->conns);
	kvn_accept_guard_fini(&s->guard);
	evconnlistener_free(s->lev);
	(void)unlink(s->path);
	free(s);
}
