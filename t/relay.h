/* t/relay.h: a loopback relay between a client and a peer, for tests that
 * need the wire to misbehave: it "dies" after die_after client bytes (FIN,
 * then RST on what comes next), flips one byte of the client's stream
 * (flip_at), or stalls (stall_after: forwards that many client bytes, then
 * reads no more from the client and keeps both sockets open until the peer
 * closes its side or 10 s pass).  One connection per relay. */
#ifndef T_RELAY_H
#define T_RELAY_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Why the death is staged:
 *
 * The peer's death the host program must survive: it closes its end after
 * reading what had arrived (FIN), and resets the connection when more comes
 * (RST).  A client that writes after that gets EPIPE, and without
 * MSG_NOSIGNAL the kernel raises SIGPIPE.  A real kvnode killed with -9
 * mostly resets at once (its unread bytes), so the order is made here. */
struct relay {
	int lfd;
	uint16_t port, to_port;
	uint64_t die_after; /* client bytes forwarded before it dies */
	uint64_t flip_at;   /* non-zero: this byte of the client's stream is flipped */
	uint64_t stall_after; /* non-zero: client bytes forwarded before it stalls */
	int peer_closed;      /* stall: the peer closed its side while stalled */
	int sessions;         /* most connections served one after the other (0: 1) */
	int first_done;
	int served;           /* connections accepted so far */
	pthread_t th;
};

static inline int relay_send_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* 0 when no connection came (accept failed or timed out). */
static inline int relay_session(struct relay *r)
{
	static uint8_t buf[1 << 16];
	uint64_t fwd = 0;
	int cfd = accept(r->lfd, NULL, NULL);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(r->to_port) };
	int pfd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (cfd < 0) {
		close(pfd);
		return 0;
	}
	__atomic_add_fetch(&r->served, 1, __ATOMIC_RELAXED);
	if (connect(pfd, (struct sockaddr *)&sa, sizeof sa) != 0)
		goto out;
	while (fwd < r->die_after) {
		if (r->stall_after && fwd >= r->stall_after) {
			/* stalled: the peer sees a payload that stops coming */
			struct pollfd pp = { .fd = pfd, .events = POLLIN };
			for (int i = 0; i < 100; i++) {
				if (poll(&pp, 1, 100) > 0 && recv(pfd, buf, sizeof buf, 0) <= 0) {
					r->peer_closed = 1;
					break;
				}
			}
			goto out;
		}
		struct pollfd pf[2] = { { .fd = cfd, .events = POLLIN }, { .fd = pfd, .events = POLLIN } };
		if (poll(pf, 2, 5000) <= 0)
			break;
		if (pf[0].revents) {
			size_t want = sizeof buf;
			if (r->stall_after && r->stall_after - fwd < want)
				want = (size_t)(r->stall_after - fwd);
			ssize_t n = recv(cfd, buf, want, 0);
			if (n > 0 && r->flip_at && r->flip_at >= fwd && r->flip_at < fwd + (uint64_t)n)
				buf[r->flip_at - fwd] ^= 0x01;
			if (n <= 0 || relay_send_all(pfd, buf, (size_t)n) != 0)
				break;
			fwd += (uint64_t)n;
		}
		if (pf[1].revents) {
			ssize_t n = recv(pfd, buf, sizeof buf, 0);
			if (n <= 0 || relay_send_all(cfd, buf, (size_t)n) != 0)
				break;
		}
	}
	/* die: read what arrived so the close is a FIN, then reset on the
	 * bytes that come after it */
	while (recv(cfd, buf, sizeof buf, MSG_DONTWAIT) > 0)
		;
	shutdown(cfd, SHUT_WR);
	usleep(100000);
out:
	close(cfd);
	close(pfd);
	return 1;
}

/* One connection, or with `sessions` > 1 up to that many one after the
 * other, until one does not come (shutdown(lfd) ends the wait); the later
 * ones plain: no stall, no flip.  first_done is set when the first ends. */
static inline void *relay_main(void *arg)
{
	struct relay *r = arg;

	/* sessions (like stall_after) is read once a connection came: a test
	 * sets it after relay_start */
	for (int i = 0; i == 0 || i < r->sessions; i++) {
		if (!relay_session(r) && i > 0)
			break;
		if (i == 0) {
			r->stall_after = 0;
			r->flip_at = 0;
			__atomic_store_n(&r->first_done, 1, __ATOMIC_RELEASE);
		}
	}
	return NULL;
}

static inline int relay_start(struct relay *r, uint16_t to_port, uint64_t die_after)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof sa;

	r->to_port = to_port;
	r->die_after = die_after;
	r->flip_at = 0;
	r->stall_after = 0;
	r->peer_closed = 0;
	r->sessions = 0;
	r->first_done = 0;
	r->served = 0;
	r->lfd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(r->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(r->lfd, 4) != 0 ||
	    getsockname(r->lfd, (struct sockaddr *)&sa, &len) != 0)
		return -1;
	r->port = ntohs(sa.sin_port);
	/* bounded: a test whose client never comes still ends */
	struct timeval tv = { .tv_sec = 20 };
	setsockopt(r->lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return pthread_create(&r->th, NULL, relay_main, r);
}

#endif
