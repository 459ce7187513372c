/*
 * bench_sock: the redis (RESP2) and memcached (text protocol) targets of
 * `kvnode bench`, spoken directly over one blocking TCP socket per handle,
 * so the peers are measured with the same loop, buffers and clock as kvnode.
 *
 * Why hand-written protocol code rather than hiredis/libmemcached: both
 * libraries copy every reply into memory they allocate, which would charge
 * the peers for a copy and a malloc per value that kvnode does not pay.
 * Here batches are pipelined (all requests written, then all replies read),
 * values are sent from the caller's buffer with sendmsg (no copy) and large
 * values are received straight into the caller's buffer; only headers and
 * small values pass through the line buffer.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli.h"

/* ---- a blocking socket with a line buffer --------------------------------- */

#define SOCK_RBUF (64 * 1024)
/* Values at least this large are received straight into the caller's
 * buffer: header reads then ask the kernel for only SOCK_HDR_FILL bytes, so
 * at most that much of a value lands in the line buffer and is copied. */
#define SOCK_DIRECT_MIN (16 * 1024)
#define SOCK_HDR_FILL 512
#define SOCK_MAX_IOV 1024 /* IOV_MAX on Linux */

struct sock {
	int fd;
	int mc; /* memcached text protocol, else redis RESP2 */
	uint64_t timeout_ns;
	uint64_t deadline; /* of the call in progress */
	size_t hdr_fill;   /* recv size while looking for a header line */
	size_t max_batch, max_klen;
	char *rbuf;
	size_t rpos, rlen;
	char *wbuf; /* request headers of one call */
	size_t wcap;
	struct iovec *iov; /* 2 * max_batch + 1 */
	char detail[256];
};

static void sock_detail(struct sock *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sock_detail(struct sock *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->detail, sizeof(s->detail), fmt, ap);
	va_end(ap);
}

/* A transport failure leaves the stream at an unknown position: drop the
 * connection so no later reply is read out of step. */
static int sock_break(struct sock *s, int rc, const char *what)
{
	sock_detail(s, "%s", what);
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	return rc;
}

static int sock_begin(struct sock *s)
{
	if (s->fd < 0) {
		sock_detail(s, "connection closed after an earlier error");
		return KVN_ECONN;
	}
	s->detail[0] = '\0';
	s->deadline = kvn_now_ns() + s->timeout_ns;
	return 0;
}

static int sock_errno(struct sock *s, const char *op)
{
	char msg[128];
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		snprintf(msg, sizeof(msg), "%s: timed out", op);
		return sock_break(s, KVN_ETIMEDOUT, msg);
	}
	snprintf(msg, sizeof(msg), "%s: %s", op, strerror(errno));
	return sock_break(s, KVN_ECONN, msg);
}

static int sock_late(struct sock *s)
{
	if (kvn_now_ns() > s->deadline)
		return sock_break(s, KVN_ETIMEDOUT, "deadline passed");
	return 0;
}

/* Send every byte of iov[0..n) (modified in place). */
static int sock_writev(struct sock *s, struct iovec *iov, size_t n)
{
	while (n > 0) {
		struct msghdr m;
		ssize_t w;
		int rc = sock_late(s);
		if (rc)
			return rc;
		memset(&m, 0, sizeof(m));
		m.msg_iov = iov;
		m.msg_iovlen = n < SOCK_MAX_IOV ? n : SOCK_MAX_IOV;
		w = sendmsg(s->fd, &m, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return sock_errno(s, "send");
		}
		size_t left = (size_t)w;
		while (n > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

/* One recvmsg into iov[0..n): 0 with *got > 0, or a transport error. */
static int sock_recv(struct sock *s, struct iovec *iov, size_t n, size_t *got)
{
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = n };
	for (;;) {
		int rc = sock_late(s);
		if (rc)
			return rc;
		ssize_t r = recvmsg(s->fd, &m, 0);
		if (r > 0) {
			*got = (size_t)r;
			return 0;
		}
		if (r == 0)
			return sock_break(s, KVN_ECONN, "connection closed by the server");
		if (errno != EINTR)
			return sock_errno(s, "recv");
	}
}

/* Read more into the line buffer, at most `want` bytes. */
static int sock_fill(struct sock *s, size_t want)
{
	size_t got = 0;
	int rc;
	struct iovec iov;

	if (s->rpos == s->rlen) {
		s->rpos = s->rlen = 0;
	} else if (s->rpos > 0 && SOCK_RBUF - s->rlen < want) {
		memmove(s->rbuf, s->rbuf + s->rpos, s->rlen - s->rpos);
		s->rlen -= s->rpos;
		s->rpos = 0;
	}
	if (want > SOCK_RBUF - s->rlen)
		want = SOCK_RBUF - s->rlen;
	if (want == 0)
		return sock_break(s, KVN_EPROTO, "reply line longer than the line buffer");
	iov = (struct iovec){ s->rbuf + s->rlen, want };
	rc = sock_recv(s, &iov, 1, &got);
	if (rc)
		return rc;
	s->rlen += got;
	return 0;
}

/* Next "\r\n"-terminated line: *line points into the line buffer (valid
 * until the next read), *len excludes the terminator. */
static int sock_line(struct sock *s, char **line, size_t *len)
{
	size_t scanned = s->rpos;
	for (;;) {
		char *p = scanned < s->rlen ? memchr(s->rbuf + scanned, '\n', s->rlen - scanned) : NULL;
		if (p) {
			char *start = s->rbuf + s->rpos;
			if (p == start || p[-1] != '\r')
				return sock_break(s, KVN_EPROTO, "reply line not ended by CRLF");
			*line = start;
			*len = (size_t)(p - 1 - start);
			s->rpos = (size_t)(p + 1 - s->rbuf);
			return 0;
		}
		scanned = s->rlen;
		size_t off = scanned - s->rpos;
		int rc = sock_fill(s, s->hdr_fill);
		if (rc)
			return rc;
		scanned = s->rpos + off; /* the fill may have moved the data */
	}
}

/* Exactly n bytes into dst: what the line buffer holds first, then straight
 * from the socket.  Each recvmsg also offers the (then empty) line buffer
 * behind dst, so the bytes after the value (CRLF, the next header) arrive
 * in the same system call. */
static int sock_read_into(struct sock *s, void *dst, size_t n)
{
	char *d = dst;
	size_t have = s->rlen - s->rpos;
	if (have > n)
		have = n;
	memcpy(d, s->rbuf + s->rpos, have);
	s->rpos += have;
	d += have;
	n -= have;
	while (n > 0) {
		struct iovec iov[2] = { { d, n }, { s->rbuf, s->hdr_fill } };
		size_t got = 0;
		int rc = sock_recv(s, iov, 2, &got);
		if (rc)
			return rc;
		if (got > n) { /* the buffer was empty: it now holds the rest */
			s->rpos = 0;
			s->rlen = got - n;
			return 0;
		}
		d += got;
		n -= got;
	}
	return 0;
}

/* Discard n bytes (a value larger than the caller's buffer). */
static int sock_skip(struct sock *s, size_t n)
{
	while (n > 0) {
		if (s->rpos == s->rlen) {
			int rc = sock_fill(s, SOCK_RBUF);
			if (rc)
				return rc;
		}
		size_t have = s->rlen - s->rpos;
		if (have > n)
			have = n;
		s->rpos += have;
		n -= have;
	}
	return 0;
}

static int sock_crlf(struct sock *s)
{
	while (s->rlen - s->rpos < 2) {
		int rc = sock_fill(s, SOCK_HDR_FILL);
		if (rc)
			return rc;
	}
	if (s->rbuf[s->rpos] != '\r' || s->rbuf[s->rpos + 1] != '\n')
		return sock_break(s, KVN_EPROTO, "value not followed by CRLF");
	s->rpos += 2;
	return 0;
}

/* Strict decimal: digits only, no sign, no overflow. */
static int parse_len(const char *p, size_t n, size_t *out)
{
	size_t v = 0;
	if (n == 0 || n > 19)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (size_t)(p[i] - '0');
	}
	*out = v;
	return 0;
}

static int sock_connect_to(struct sock *s, const struct cli_bench_cfg *cfg, char *err,
			   size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	char port[8];
	int rc, last = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", (unsigned)cfg->port);
	rc = getaddrinfo(cfg->host, port, &hints, &res);
	if (rc) {
		snprintf(err, errlen, "%s: %s", cfg->host, gai_strerror(rc));
		return KVN_ECONN;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
				ai->ai_protocol);
		if (fd < 0) {
			last = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			last = errno;
			close(fd);
			continue;
		}
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		int pr = poll(&pfd, 1, (int)(cfg->timeout_ms > INT_MAX ? INT_MAX : cfg->timeout_ms));
		if (pr <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
			last = pr == 0 ? ETIMEDOUT : soerr ? soerr : errno;
			close(fd);
			continue;
		}
		s->fd = fd;
		break;
	}
	freeaddrinfo(res);
	if (s->fd < 0) {
		snprintf(err, errlen, "connect %s:%u: %s", cfg->host, (unsigned)cfg->port,
			 strerror(last ? last : ECONNREFUSED));
		return last == ETIMEDOUT ? KVN_ETIMEDOUT : KVN_ECONN;
	}

	/* Blocking from here on; SO_RCVTIMEO/SO_SNDTIMEO bound every wait. */
	int one = 1;
	struct timeval tv = { .tv_sec = (time_t)(cfg->timeout_ms / 1000),
			      .tv_usec = (suseconds_t)(cfg->timeout_ms % 1000) * 1000 };
	if (fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) & ~O_NONBLOCK) < 0 ||
	    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
	    setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		snprintf(err, errlen, "socket options: %s", strerror(errno));
		close(s->fd);
		s->fd = -1;
		return KVN_ECONN;
	}
	return 0;
}

static void sock_free(struct sock *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	free(s->rbuf);
	free(s->wbuf);
	free(s->iov);
	free(s);
}

/* Per item a request header is at most this much plus the key. */
#define SOCK_HDR_MAX 96

static int sock_open(const struct cli_bench_cfg *cfg, void **out, char *err, size_t errlen,
		     int mc)
{
	struct sock *s = kvn_xcalloc(1, sizeof(*s));
	int rc;

	s->fd = -1;
	s->mc = mc;
	s->timeout_ns = cfg->timeout_ms * 1000000ull;
	s->max_batch = cfg->max_batch ? cfg->max_batch : 1;
	s->max_klen = cfg->max_klen ? cfg->max_klen : KVN_MAX_KEY;
	s->hdr_fill = cfg->value_size >= SOCK_DIRECT_MIN ? SOCK_HDR_FILL : SOCK_RBUF;
	s->rbuf = kvn_xmalloc(SOCK_RBUF);
	s->wcap = s->max_batch * (SOCK_HDR_MAX + s->max_klen) + SOCK_HDR_MAX;
	s->wbuf = kvn_xmalloc(s->wcap);
	s->iov = kvn_xcalloc(2 * s->max_batch + 1, sizeof(*s->iov));
	/* Touch the scratch once so no call pays for first faults. */
	memset(s->rbuf, 0, SOCK_RBUF);
	memset(s->wbuf, 0, s->wcap);
	rc = sock_connect_to(s, cfg, err, errlen);
	if (rc) {
		sock_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

static int redis_open(const struct cli_bench_cfg *cfg, void **out, char *err, size_t errlen)
{
	return sock_open(cfg, out, err, errlen, 0);
}

static int mc_open(const struct cli_bench_cfg *cfg, void **out, char *err, size_t errlen)
{
	return sock_open(cfg, out, err, errlen, 1);
}

/* Checked before anything is sent.  memcached text keys also may not hold
 * spaces or control bytes and are at most 250 bytes. */
static int sock_check(struct sock *s, const struct kvn_item *items, size_t n)
{
	if (n > s->max_batch) {
		sock_detail(s, "batch of %zu exceeds the configured %zu", n, s->max_batch);
		return KVN_EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		const unsigned char *k = items[i].key;
		size_t kl = items[i].klen;
		if (kl == 0 || kl > s->max_klen || (s->mc && kl > 250)) {
			sock_detail(s, "key length %zu out of range", kl);
			return KVN_EKEYLEN;
		}
		for (size_t j = 0; s->mc && j < kl; j++)
			if (k[j] <= ' ' || k[j] == 0x7f) {
				sock_detail(s, "memcached keys may not hold spaces or control bytes");
				return KVN_EINVAL;
			}
	}
	return 0;
}

static const char *sock_get_detail(void *h)
{
	return ((struct sock *)h)->detail;
}

static void sock_close(void *h)
{
	sock_free(h);
}

/* Mark items [from, n) with rc (a transport failure ends the batch). */
static int batch_fail(struct kvn_item *items, size_t from, size_t n, int rc)
{
	for (size_t i = from; i < n; i++)
		items[i].status = rc;
	return rc;
}

/* ---- replies ---------------------------------------------------------------
 * An error reply (redis "-ERR ...", memcached SERVER_ERROR) keeps the stream
 * in step: report it and go on.  Anything unexpected may not: break. */

static int redis_error_line(struct sock *s, const char *line, size_t len)
{
	sock_detail(s, "redis: %.*s", (int)(len > 200 ? 200 : len), line);
	return len >= 4 && memcmp(line, "-OOM", 4) == 0 ? KVN_ENOSPC : KVN_EIO;
}

static int mc_bad_line(struct sock *s, const char *line, size_t len)
{
	int l = (int)(len > 200 ? 200 : len);
	char msg[256];
	if (len >= 12 && memcmp(line, "SERVER_ERROR", 12) == 0) { /* value swallowed */
		sock_detail(s, "memcached: %.*s", l, line);
		return memmem(line, len, "too large", 9)       ? KVN_ETOOBIG
		       : memmem(line, len, "out of memory", 13) ? KVN_ENOSPC
								: KVN_EIO;
	}
	if (len == 10 && memcmp(line, "NOT_STORED", 10) == 0) {
		sock_detail(s, "memcached: NOT_STORED");
		return KVN_EIO;
	}
	snprintf(msg, sizeof(msg), "memcached: unexpected reply '%.*s'", l, line);
	return sock_break(s, KVN_EPROTO, msg);
}

/* The reply to one store: redis "+OK", memcached "STORED". */
static int sock_store_reply(struct sock *s)
{
	char *line;
	size_t len;
	int rc = sock_line(s, &line, &len);
	if (rc)
		return rc;
	if (s->mc)
		return len == 6 && memcmp(line, "STORED", 6) == 0 ? 0 : mc_bad_line(s, line, len);
	if (len == 3 && memcmp(line, "+OK", 3) == 0)
		return 0;
	if (len > 0 && line[0] == '-')
		return redis_error_line(s, line, len);
	return sock_break(s, KVN_EPROTO, "redis: unexpected reply to SET");
}

/* A value of n bytes, then CRLF, into buf (cap bytes); a larger one is
 * drained and answers KVN_ERANGE. */
static int sock_value(struct sock *s, void *buf, size_t cap, size_t n)
{
	int rc = n > cap ? sock_skip(s, n) : sock_read_into(s, buf, n);
	if (!rc)
		rc = sock_crlf(s);
	if (!rc && n > cap) {
		sock_detail(s, "value of %zu bytes, buffer of %zu", n, cap);
		rc = KVN_ERANGE;
	}
	return rc;
}

/* ---- stores: pipelined SET / set -------------------------------------------- */

/* Every header and value of the batch in one sendmsg train (values are not
 * copied), then one reply per item, in order.  A header's leading CRLF ends
 * the previous value. */
static int sock_batch_put(void *h, struct kvn_item *items, size_t n)
{
	struct sock *s = h;
	size_t o = 0, ni = 0;
	int rc = sock_begin(s), first = 0;

	if (!rc)
		rc = sock_check(s, items, n);
	if (rc)
		return batch_fail(items, 0, n, rc);
	for (size_t i = 0; i < n; i++) {
		char *w = s->wbuf + o;
		size_t l = (size_t)sprintf(w, "%s", i > 0 ? "\r\n" : "");
		if (s->mc) {
			l += (size_t)sprintf(w + l, "set ");
			memcpy(w + l, items[i].key, items[i].klen);
			l += items[i].klen;
			l += (size_t)sprintf(w + l, " 0 0 %zu\r\n", items[i].vlen);
		} else {
			l += (size_t)sprintf(w + l, "*3\r\n$3\r\nSET\r\n$%zu\r\n", items[i].klen);
			memcpy(w + l, items[i].key, items[i].klen);
			l += items[i].klen;
			l += (size_t)sprintf(w + l, "\r\n$%zu\r\n", items[i].vlen);
		}
		s->iov[ni++] = (struct iovec){ w, l };
		s->iov[ni++] = (struct iovec){ items[i].val, items[i].vlen };
		o += l;
	}
	s->iov[ni++] = (struct iovec){ (void *)"\r\n", 2 };
	rc = sock_writev(s, s->iov, ni);
	if (rc)
		return batch_fail(items, 0, n, rc);
	for (size_t i = 0; i < n; i++) {
		items[i].status = rc = sock_store_reply(s);
		if (rc && !first)
			first = rc;
		if (s->fd < 0)
			return batch_fail(items, i + 1, n, rc);
	}
	return first;
}

/* ---- redis: pipelined GET ------------------------------------------------------ */

static int redis_bulk_reply(struct sock *s, void *buf, size_t cap, size_t *vlen)
{
	char *line;
	size_t len, n;
	int rc = sock_line(s, &line, &len);
	if (rc)
		return rc;
	if (len > 0 && line[0] == '-')
		return redis_error_line(s, line, len);
	if (len == 0 || line[0] != '$')
		return sock_break(s, KVN_EPROTO, "redis: unexpected reply to GET");
	if (len == 3 && memcmp(line, "$-1", 3) == 0) {
		sock_detail(s, "redis: nil");
		return KVN_ENOTFOUND;
	}
	if (parse_len(line + 1, len - 1, &n))
		return sock_break(s, KVN_EPROTO, "redis: bad bulk length");
	*vlen = n;
	return sock_value(s, buf, cap, n);
}

static int redis_batch_get(struct sock *s, struct kvn_item *items, size_t n)
{
	size_t o = 0;
	int rc, first = 0;

	for (size_t i = 0; i < n; i++) {
		o += (size_t)sprintf(s->wbuf + o, "*2\r\n$3\r\nGET\r\n$%zu\r\n", items[i].klen);
		memcpy(s->wbuf + o, items[i].key, items[i].klen);
		memcpy(s->wbuf + o + items[i].klen, "\r\n", 2);
		o += items[i].klen + 2;
	}
	s->iov[0] = (struct iovec){ s->wbuf, o };
	rc = sock_writev(s, s->iov, 1);
	if (rc)
		return batch_fail(items, 0, n, rc);
	for (size_t i = 0; i < n; i++) {
		items[i].status = rc = redis_bulk_reply(s, items[i].val, items[i].cap, &items[i].vlen);
		if (rc && !first)
			first = rc;
		if (s->fd < 0)
			return batch_fail(items, i + 1, n, rc);
	}
	return first;
}

/* ---- memcached: "get k1 k2 ..." ------------------------------------------------ */

/* Keys per "get" line: keeps request lines short. */
#define MC_GET_GROUP 64

/* Read the replies to one "get" line for items[0..n): VALUE blocks for the
 * hits in request order (misses are simply absent), then END. */
static int mc_read_group(struct sock *s, struct kvn_item *items, size_t n, int *first)
{
	size_t next = 0;
	for (;;) {
		char *line, key[251], num[20];
		size_t len, vlen, kl;
		int rc = sock_line(s, &line, &len);
		if (rc)
			return rc;
		if (len == 3 && memcmp(line, "END", 3) == 0)
			break;
		if (len < 6 || memcmp(line, "VALUE ", 6) != 0)
			return mc_bad_line(s, line, len);
		/* VALUE <key> <flags> <bytes> [<cas>]; the line is consumed, so its
		 * CR may become the NUL that sscanf needs. */
		line[len] = '\0';
		if (sscanf(line, "VALUE %250s %*[0-9] %19[0-9]", key, num) != 2 ||
		    parse_len(num, strlen(num), &vlen))
			return sock_break(s, KVN_EPROTO, "memcached: bad VALUE line");
		kl = strlen(key);
		while (next < n && !(items[next].klen == kl && memcmp(items[next].key, key, kl) == 0))
			items[next++].status = KVN_ENOTFOUND;
		if (next == n)
			return sock_break(s, KVN_EPROTO, "memcached: VALUE for a key not asked");
		struct kvn_item *it = &items[next++];
		it->vlen = vlen;
		it->status = rc = sock_value(s, it->val, it->cap, vlen);
		if (rc && s->fd < 0)
			return rc;
	}
	for (; next < n; next++)
		items[next].status = KVN_ENOTFOUND;
	for (size_t i = 0; i < n; i++)
		if (items[i].status && !*first)
			*first = items[i].status;
	return 0;
}

static int mc_batch_get(struct sock *s, struct kvn_item *items, size_t n)
{
	size_t o = 0;
	int rc, first = 0;

	for (size_t i = 0; i < n; i++) {
		if (i % MC_GET_GROUP == 0)
			o += (size_t)sprintf(s->wbuf + o, "%sget", i ? "\r\n" : "");
		s->wbuf[o++] = ' ';
		memcpy(s->wbuf + o, items[i].key, items[i].klen);
		o += items[i].klen;
		items[i].status = 0;
	}
	memcpy(s->wbuf + o, "\r\n", 2);
	s->iov[0] = (struct iovec){ s->wbuf, o + 2 };
	rc = sock_writev(s, s->iov, 1);
	if (rc)
		return batch_fail(items, 0, n, rc);
	for (size_t g = 0; g < n; g += MC_GET_GROUP) {
		rc = mc_read_group(s, items + g, n - g < MC_GET_GROUP ? n - g : MC_GET_GROUP, &first);
		if (rc)
			return batch_fail(items, g, n, rc);
	}
	if (first == KVN_ENOTFOUND && !s->detail[0])
		sock_detail(s, "memcached: miss");
	return first;
}

/* ---- exists: redis EXISTS, memcached meta "mg <key>" ---------------------------
 * Pipelined like the gets; no value crosses the wire either way.  memcached's
 * mg with no flags answers HD (hit) or EN (miss), a key lookup like kvnode's. */

static int sock_exists_reply(struct sock *s, int *exists)
{
	char *line;
	size_t len;
	int rc = sock_line(s, &line, &len);
	if (rc)
		return rc;
	if (s->mc) {
		if (len == 2 && (memcmp(line, "HD", 2) == 0 || memcmp(line, "EN", 2) == 0)) {
			*exists = line[0] == 'H';
			return 0;
		}
		return mc_bad_line(s, line, len);
	}
	if (len == 2 && line[0] == ':' && (line[1] == '0' || line[1] == '1')) {
		*exists = line[1] == '1';
		return 0;
	}
	if (len > 0 && line[0] == '-')
		return redis_error_line(s, line, len);
	return sock_break(s, KVN_EPROTO, "redis: unexpected reply to EXISTS");
}

static int sock_batch_exists(void *h, struct kvn_item *items, size_t n)
{
	struct sock *s = h;
	size_t o = 0;
	int rc = sock_begin(s), first = 0;

	if (!rc)
		rc = sock_check(s, items, n);
	if (rc)
		return batch_fail(items, 0, n, rc);
	for (size_t i = 0; i < n; i++) {
		if (s->mc)
			o += (size_t)sprintf(s->wbuf + o, "mg ");
		else
			o += (size_t)sprintf(s->wbuf + o, "*2\r\n$6\r\nEXISTS\r\n$%zu\r\n", items[i].klen);
		memcpy(s->wbuf + o, items[i].key, items[i].klen);
		memcpy(s->wbuf + o + items[i].klen, "\r\n", 2);
		o += items[i].klen + 2;
		items[i].exists = 0;
	}
	s->iov[0] = (struct iovec){ s->wbuf, o };
	rc = sock_writev(s, s->iov, 1);
	if (rc)
		return batch_fail(items, 0, n, rc);
	for (size_t i = 0; i < n; i++) {
		items[i].status = rc = sock_exists_reply(s, &items[i].exists);
		if (rc && !first)
			first = rc;
		if (s->fd < 0)
			return batch_fail(items, i + 1, n, rc);
	}
	return first;
}

static int sock_exists(void *h, const void *key, size_t klen)
{
	struct kvn_item it = { .key = key, .klen = klen };
	int rc = sock_batch_exists(h, &it, 1);
	return rc ? rc : it.exists;
}

/* ---- the socket targets' entry points ------------------------------------------ */

static int sock_batch_get(void *h, struct kvn_item *items, size_t n)
{
	struct sock *s = h;
	int rc = sock_begin(s);
	if (!rc)
		rc = sock_check(s, items, n);
	if (rc)
		return batch_fail(items, 0, n, rc);
	for (size_t i = 0; i < n; i++)
		items[i].vlen = 0;
	return s->mc ? mc_batch_get(s, items, n) : redis_batch_get(s, items, n);
}

static int sock_put(void *h, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct kvn_item it = { .key = key, .klen = klen, .val = (void *)val, .vlen = vlen };
	return sock_batch_put(h, &it, 1);
}

static int sock_get(void *h, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen)
{
	struct kvn_item it = { .key = key, .klen = klen, .val = buf, .cap = cap };
	int rc = sock_batch_get(h, &it, 1);
	*vlen = it.vlen;
	return rc;
}

/* Neither defers work past its reply (redis runs without persistence here):
 * no settle. */
const struct cli_bench_target cli_bench_redis = {
	.name = "redis", .connect = redis_open, .put = sock_put, .get = sock_get,
	.batch_put = sock_batch_put, .batch_get = sock_batch_get, .exists = sock_exists,
	.batch_exists = sock_batch_exists, .detail = sock_get_detail, .close = sock_close,
};

const struct cli_bench_target cli_bench_memcached = {
	.name = "memcached", .connect = mc_open, .put = sock_put, .get = sock_get,
	.batch_put = sock_batch_put, .batch_get = sock_batch_get, .exists = sock_exists,
	.batch_exists = sock_batch_exists, .detail = sock_get_detail, .close = sock_close,
};
