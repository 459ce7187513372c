/* t/net: authenticated connections over loopback TCP, end to end: request
 * and reply through proxies, payloads into a sink and into buffers, role
 * scoped secrets, rotation, and a frame-aware man in the middle that flips a
 * byte, replays a frame or swaps two frames (each must close the connection
 * and be counted).  Also: handshake timeout, unauthenticated frames,
 * connection loss failing pending calls at once, and the simulated network. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xxhash.h>

#include "actors/actor.h"
#include "auth/auth.h"
#include "base/base.h"
#include "net/net.h"
#include "tap.h"
#include "net_env.h"


/* ---- fixtures ---- */

static struct auth_keyring peer_kr, client_kr, other_kr;
static struct auth_policy pol;
static struct actor_loop *srv_loop;
static struct actor *srv_actor;
static struct server *srv_state;
static struct net_listener *lst, *cap_lst, *frame_lst;
static uint16_t srv_port, cap_port, frame_port;


static void start_server(void)
{
	struct net_opts o;
	char err[256];

	make_ring(&peer_kr, 0x11);
	make_ring(&client_kr, 0x22);
	make_ring(&other_kr, 0x33);
	memset(&pol, 0, sizeof pol);
	pol.peer = &peer_kr;
	pol.client = &client_kr;
	snprintf(pol.server_id, sizeof pol.server_id, "test-master");
	srv_loop = actor_loop_new("t-srv");
	srv_state = kvn_xcalloc(1, sizeof *srv_state);
	actor_spawn(srv_loop, &srv_ops, srv_state, 4096, &srv_actor);
	net_opts_default(&o);
	o.handshake_timeout_ms = 300;
	o.max_payload = 8 << 20;
	/* the listener belongs to the server loop; create it before the thread runs */
	if (net_listen(srv_actor, "127.0.0.1:0", &pol, &o, &lst, err, sizeof err) != 0)
		kvn_fatal("listen: %s", err);
	srv_port = net_listener_port(lst);
	/* a second listener with tiny limits, for t_max_connections */
	o.max_conns = 2;
	o.max_preauth = 4;
	o.max_preauth_per_ip = 4;
	o.handshake_timeout_ms = 10000; /* idle sockets stay for the whole case */
	if (net_listen(srv_actor, "127.0.0.1:0", &pol, &o, &cap_lst, err, sizeof err) != 0)
		kvn_fatal("listen: %s", err);
	cap_port = net_listener_port(cap_lst);
	/* a third in integrity mode frame (the others are in header mode) */
	net_opts_default(&o);
	o.handshake_timeout_ms = 300;
	o.max_payload = 8 << 20;
	o.integrity = KVN_INTEGRITY_FRAME;
	if (net_listen(srv_actor, "127.0.0.1:0", &pol, &o, &frame_lst, err, sizeof err) != 0)
		kvn_fatal("listen: %s", err);
	frame_port = net_listener_port(frame_lst);
	actor_loop_start(srv_loop);
}


/* ---- tests ---- */

static void t_roundtrip(void)
{
	struct cli_fix f;
	uint8_t pay[3000];

	for (size_t i = 0; i < sizeof pay; i++)
		pay[i] = (uint8_t)(i * 7);
	cli_open(&f, srv_port, AUTH_ROLE_CLIENT, &client_kr.s[0]);
	is_int(ping(&f, 0x1234, NULL, 0, 2000), 0, "ping with the client secret succeeds");
	ok(f.st.meta_v == 0x1234, "metadata came back");
	is_int(f.st.ups, 1, "owner was told the connection is up");
	is_int(ping(&f, 7, pay, sizeof pay, 2000), 0, "ping with a payload");
	ok(f.st.paylen == sizeof pay && memcmp(f.st.payload, pay, sizeof pay) == 0, "payload echoed intact");
	for (int i = 0; i < 50; i++)
		if (ping(&f, (uint64_t)i, NULL, 0, 2000) != 0 || f.st.meta_v != (uint64_t)i)
			break;
	ok(f.st.meta_v == 49, "50 sequential requests, each tag verified");
	cli_close(&f);
}

static void t_sink(void)
{
	struct cli_fix f;
	static uint8_t big[200000];
	struct actor_msg *m;

	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 13 + 1);
	cli_open(&f, srv_port, AUTH_ROLE_CLIENT, &client_kr.s[0]);
	m = actor_msg_new(WIRE_PUT);
	m->payload = evbuffer_new();
	evbuffer_add_reference(m->payload, big, sizeof big, NULL, NULL);
	f.st.done = 0;
	int before = srv_state->sunk;
	actor_call(f.a, f.proxy, m, 2000, on_reply, &f.st);
	actor_loop_run_until(f.loop, &f.st.done, kvn_now_ms() + 4000);
	ok(f.st.done && f.st.err == 0, "PUT with a 200 KB payload answered");
	is_int(srv_state->sunk - before, (int)sizeof big, "payload went through the receiver's sink");
	size_t half = sizeof big / 2;
	ok(memcmp(srv_state->sinkbuf, big, half) == 0 &&
		   memcmp(srv_state->sinkbuf + half + 7, big + half, sizeof big - half) == 0,
	   "bytes landed exactly in the two iovecs the sink gave");
	ok(srv_state->delivered_seg_done, "the connection summed the sink's runs before delivering");
	ok(srv_state->seg_sum[0] == XXH3_64bits(big, half) && srv_state->seg_sum[1] == XXH3_64bits(NULL, 0) &&
		   srv_state->seg_sum[2] == XXH3_64bits(big + half, sizeof big - half),
	   "each run's sum is the XXH3-64 of its bytes (the empty run's too)");
	cli_close(&f);
}

/* Frames with large payloads back to back, both ways: a payload's last
 * read also takes the tag and the start of the next frame (conn_read.c's
 * read_direct), which must then parse exactly as if read on its own. */
#define B2B_N 8
#define B2B_LEN (100 * 1000 + 13) /* odd: the tag and next header land unaligned */

struct b2b {
	int done, good;
};

static void b2b_fill(uint8_t *p, size_t n, int i)
{
	for (size_t k = 0; k < n; k++)
		p[k] = (uint8_t)(k * 31 + (size_t)i * 7 + 1);
}

static int on_b2b(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct b2b *b = arg;
	static uint8_t want[B2B_LEN], got[B2B_LEN];
	uint64_t i = 0;
	(void)self;
	b->done++;
	if (err || !reply || reply->status || reply->meta_len != 8 || !reply->payload ||
	    evbuffer_get_length(reply->payload) != B2B_LEN)
		return 0;
	memcpy(&i, reply->meta, 8);
	b2b_fill(want, sizeof want, (int)i);
	evbuffer_copyout(reply->payload, got, sizeof got);
	if (memcmp(want, got, sizeof got) == 0)
		b->good++;
	return 0;
}

static void t_back_to_back(void)
{
	struct cli_fix f;
	static uint8_t pay[B2B_LEN];
	struct b2b b = { 0, 0 };

	cli_open(&f, srv_port, AUTH_ROLE_CLIENT, &client_kr.s[0]);
	is_int(ping(&f, 1, NULL, 0, 2000), 0, "connected");
	for (int i = 0; i < B2B_N; i++) {
		struct actor_msg *m = actor_msg_new(WIRE_PING);
		uint64_t v = (uint64_t)i;
		m->meta = kvn_xmalloc(8);
		memcpy(m->meta, &v, 8);
		m->meta_len = 8;
		b2b_fill(pay, sizeof pay, i);
		m->payload = evbuffer_new();
		evbuffer_add(m->payload, pay, sizeof pay);
		if (actor_call(f.a, f.proxy, m, 5000, on_b2b, &b) != 0)
			actor_msg_free(m);
	}
	for (uint64_t until = kvn_now_ms() + 8000; b.done < B2B_N && kvn_now_ms() < until;)
		settle(&f, 20);
	is_int(b.done, B2B_N, "%d pings of %d bytes in flight together: all answered", B2B_N, B2B_LEN);
	is_int(b.good, B2B_N, "every echo byte for byte, each tag verified");
	cli_close(&f);
}

static void t_auth_failures(void)
{
	struct cli_fix f;
	struct net_stats before, after;

	net_get_stats(&before);
	cli_open(&f, srv_port, AUTH_ROLE_CLIENT, &other_kr.s[0]);
	is_int(ping(&f, 1, NULL, 0, 3000), KVN_EAUTH, "a wrong secret is refused with KVN_EAUTH");
	cli_close(&f);
	net_get_stats(&after);
	ok(after.auth_fail > before.auth_fail, "refusal counted");

	cli_open(&f, srv_port, AUTH_ROLE_PEER, &client_kr.s[0]);
	is_int(ping(&f, 1, NULL, 0, 3000), KVN_EAUTH, "the client secret cannot attach as a peer");
	cli_close(&f);
	cli_open(&f, srv_port, AUTH_ROLE_CLIENT, &peer_kr.s[0]);
	is_int(ping(&f, 1, NULL, 0, 3000), KVN_EAUTH, "the peer secret cannot attach as a client");
	cli_close(&f);
	cli_open(&f, srv_port, AUTH_ROLE_PEER, &peer_kr.s[0]);
	is_int(ping(&f, 1, NULL, 0, 3000), 0, "the peer secret attaches as a peer");
	settle(&f, 20);
	is_int(srv_state->last_role, AUTH_ROLE_PEER, "the server sees the authenticated role");
	cli_close(&f);
}

static void t_rotation(void)
{
	struct cli_fix f;
	struct auth_keyring old = client_kr;

	/* server accepts {new, old}; a client still holding old attaches */
	make_ring(&client_kr, 0x44);
	client_kr.s[1] = old.s[0];
	client_kr.n = 2;
	cli_open(&f, srv_port, AUTH_ROLE_CLIENT, &old.s[0]);
	is_int(ping(&f, 1, NULL, 0, 3000), 0, "old secret still accepted during rotation");
	cli_close(&f);
	cli_open(&f, srv_port, AUTH_ROLE_CLIENT, &client_kr.s[0]);
	is_int(ping(&f, 1, NULL, 0, 3000), 0, "new secret accepted");
	cli_close(&f);
	client_kr.n = 1; /* rotation finished: old removed */
	cli_open(&f, srv_port, AUTH_ROLE_CLIENT, &old.s[0]);
	is_int(ping(&f, 1, NULL, 0, 3000), KVN_EAUTH, "old secret refused once removed");
	cli_close(&f);
}

/* ---- the man in the middle ---- */

enum mitm_mode { MITM_FLIP = 1, MITM_REPLAY, MITM_SWAP, MITM_DROP_TAG_BYTE, MITM_FLIP_PAYLOAD };

struct mitm {
	int lfd;
	uint16_t port, to_port;
	int mode;
	int done;
	pthread_t th;
};


/* Relays client->server frame by frame, tampering with the data frames
 * (the ones after the handshake); server->client bytes are relayed by a
 * helper loop in the same thread with poll. */
static void *mitm_main(void *arg)
{
	struct mitm *mm = arg;
	static uint8_t f1[1 << 16], f2[1 << 16];
	int cfd = accept(mm->lfd, NULL, NULL);
	int sfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(mm->to_port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (cfd < 0 || connect(sfd, (struct sockaddr *)&sa, sizeof sa) != 0)
		goto out;
	/* handshake: HELLO and PROOF from the client, untagged; relay replies */
	for (int i = 0; i < 2; i++) {
		ssize_t n = read_frame(cfd, f1, sizeof f1, 0);
		if (n < 0 || write_full(sfd, f1, (size_t)n) != 0)
			goto out;
		n = read_frame(sfd, f2, sizeof f2, 0);
		if (n < 0 || write_full(cfd, f2, (size_t)n) != 0)
			goto out;
	}
	/* first data frame from the client */
	ssize_t n1 = read_frame(cfd, f1, sizeof f1, 1);
	if (n1 < 0)
		goto out;
	if (mm->mode == MITM_FLIP) {
		f1[WIRE_HDR_LEN + 3] ^= 0x01; /* a metadata byte */
		write_full(sfd, f1, (size_t)n1);
	} else if (mm->mode == MITM_FLIP_PAYLOAD) {
		f1[n1 - WIRE_TAG_LEN - 1] ^= 0x01; /* the payload's last byte */
		write_full(sfd, f1, (size_t)n1);
		/* answered (2: relay the answer) or closed on (1) */
		ssize_t n = read_frame(sfd, f2, sizeof f2, 1);
		if (n > 0) {
			write_full(cfd, f2, (size_t)n);
			mm->done = 2;
			usleep(100000); /* the client reads it before the close */
			goto out;
		}
	} else if (mm->mode == MITM_DROP_TAG_BYTE) {
		f1[n1 - 1] ^= 0x80;
		write_full(sfd, f1, (size_t)n1);
	} else if (mm->mode == MITM_REPLAY) {
		write_full(sfd, f1, (size_t)n1);
		ssize_t n = read_frame(sfd, f2, sizeof f2, 1);
		if (n > 0)
			write_full(cfd, f2, (size_t)n);
		write_full(sfd, f1, (size_t)n1); /* the same frame again */
	} else if (mm->mode == MITM_SWAP) {
		ssize_t n2 = read_frame(cfd, f2, sizeof f2, 1);
		if (n2 < 0)
			goto out;
		write_full(sfd, f2, (size_t)n2);
		write_full(sfd, f1, (size_t)n1);
	}
	/* the server must now close: wait for EOF (bounded) */
	{
		uint8_t b[4096];
		for (int i = 0; i < 50; i++) {
			struct pollfd pfd = { .fd = sfd, .events = POLLIN };
			if (poll(&pfd, 1, 100) > 0) {
				ssize_t r = read(sfd, b, sizeof b);
				if (r <= 0) {
					mm->done = 1; /* closed by the server */
					break;
				}
				write_full(cfd, b, (size_t)r);
			}
		}
	}
out:
	if (cfd >= 0)
		close(cfd);
	close(sfd);
	return NULL;
}

static void mitm_start_to(struct mitm *mm, int mode, uint16_t to_port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof sa;
	memset(mm, 0, sizeof *mm);
	mm->mode = mode;
	mm->to_port = to_port;
	mm->lfd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(mm->lfd, (struct sockaddr *)&sa, sizeof sa);
	listen(mm->lfd, 4);
	getsockname(mm->lfd, (struct sockaddr *)&sa, &len);
	mm->port = ntohs(sa.sin_port);
	pthread_create(&mm->th, NULL, mitm_main, mm);
}

static void mitm_start(struct mitm *mm, int mode)
{
	mitm_start_to(mm, mode, srv_port);
}

static void mitm_case(int mode, const char *what)
{
	struct mitm mm;
	struct cli_fix f;
	struct net_stats before, after;

	net_get_stats(&before);
	mitm_start(&mm, mode);
	cli_open(&f, mm.port, AUTH_ROLE_CLIENT, &client_kr.s[0]);
	if (mode == MITM_SWAP) {
		/* two requests in flight, so there are two frames to swap */
		struct actor_msg *m1 = actor_msg_new(WIRE_PING), *m2 = actor_msg_new(WIRE_PING);
		struct client st2 = { 0 };
		f.st.done = 0;
		actor_call(f.a, f.proxy, m1, 3000, on_reply, &f.st);
		actor_call(f.a, f.proxy, m2, 3000, on_reply, &st2);
		actor_loop_run_until(f.loop, &st2.done, kvn_now_ms() + 5000);
		actor_loop_run_until(f.loop, &f.st.done, kvn_now_ms() + 5000);
		ok(f.st.done && st2.done && f.st.status == KVN_ECONN && st2.status == KVN_ECONN,
		   "%s: both calls fail with KVN_ECONN (%d, %d)", what, f.st.status, st2.status);
	} else {
		int rc = ping(&f, 99, NULL, 0, 3000);
		if (mode == MITM_REPLAY)
			is_int(rc, 0, "%s: the original request is answered", what);
		else
			is_int(rc, KVN_ECONN, "%s: the call fails with KVN_ECONN", what);
	}
	pthread_join(mm.th, NULL);
	close(mm.lfd);
	ok(mm.done, "%s: the server closed the connection", what);
	net_get_stats(&after);
	ok(after.auth_fail > before.auth_fail, "%s: counted as an authentication failure", what);
	cli_close(&f);
}

static void t_tamper(void)
{
	mitm_case(MITM_FLIP, "flipped metadata byte");
	mitm_case(MITM_DROP_TAG_BYTE, "flipped tag byte");
	mitm_case(MITM_REPLAY, "replayed frame");
	mitm_case(MITM_SWAP, "reordered frames");
}


/* ms until the server closes fd, or -1 after limit_ms */
static int wait_closed(int fd, int limit_ms)
{
	uint64_t t0 = kvn_now_ms();
	uint8_t b[256];
	while (kvn_now_ms() - t0 < (uint64_t)limit_ms) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, 50) > 0 && read(fd, b, sizeof b) <= 0)
			return (int)(kvn_now_ms() - t0);
	}
	return -1;
}

/* auth.integrity.  Header mode tags a frame's header and metadata, not its
 * payload: a payload byte flipped in flight reaches the receiving role,
 * whose value checksum must catch it (t/datapath tampered_put shows the
 * peer does).  Frame mode tags the payload too: the same flip closes the
 * connection.  (t_tamper shows both modes refuse a flipped metadata or tag
 * byte, a replay and a reorder: it runs in header mode.) */
static void integrity_flip(int frame)
{
	struct mitm mm;
	struct cli_fix f;
	struct net_stats before, after;
	uint8_t pay[64];

	for (size_t i = 0; i < sizeof pay; i++)
		pay[i] = (uint8_t)(i * 7 + 1);
	net_get_stats(&before);
	mitm_start_to(&mm, MITM_FLIP_PAYLOAD, frame ? frame_port : srv_port);
	cli_open_mode(&f, mm.port, AUTH_ROLE_CLIENT, &client_kr.s[0],
		      frame ? KVN_INTEGRITY_FRAME : KVN_INTEGRITY_HEADER);
	int rc = ping(&f, 7, pay, sizeof pay, 3000);
	pthread_join(mm.th, NULL);
	close(mm.lfd);
	net_get_stats(&after);
	if (frame) {
		is_int(rc, KVN_ECONN, "frame: a flipped payload byte fails the call (%s)", kvn_strerror(rc));
		is_int(mm.done, 1, "frame: the server closed the connection instead of answering");
		ok(after.auth_fail > before.auth_fail, "frame: counted as an authentication failure");
	} else {
		is_int(rc, 0, "header: a flipped payload byte passes the tag: answered");
		pay[sizeof pay - 1] ^= 0x01;
		ok(f.st.paylen == sizeof pay && memcmp(f.st.payload, pay, sizeof pay) == 0,
		   "header: the echo carries the flipped byte (the value checksum's job, not the tag's)");
		ok(after.auth_fail == before.auth_fail, "header: no authentication failure counted");
	}
	cli_close(&f);
}

/* One mode per cluster: either side of a mismatch refuses the attach. */
static void integrity_mismatch(int client_mode, uint16_t port, const char *what)
{
	struct cli_fix f;

	cli_open_mode(&f, port, AUTH_ROLE_CLIENT, &client_kr.s[0], client_mode);
	int rc = ping(&f, 1, NULL, 0, 3000);
	is_int(rc, KVN_ECONFIG, "%s: the attach is refused with KVN_ECONFIG (%s)", what, kvn_strerror(rc));
	cli_close(&f);
	cli_open_mode(&f, port, AUTH_ROLE_CLIENT, &client_kr.s[0], !client_mode);
	is_int(ping(&f, 2, "ok", 2, 3000), 0, "%s: the same server takes a client in its own mode", what);
	cli_close(&f);
}

static void t_integrity(void)
{
	integrity_flip(0);
	integrity_flip(1);
	integrity_mismatch(KVN_INTEGRITY_FRAME, srv_port, "frame client, header server");
	integrity_mismatch(KVN_INTEGRITY_HEADER, frame_port, "header client, frame server");
}

/* WIRE_VERSION 4: a HELLO of version 3 (a client or peer of the previous
 * release) is answered REJECT with KVN_EVERSION, then closed. */
static void t_old_version(void)
{
	int fd = raw_connect(srv_port);
	struct wire_hdr h = { .magic = WIRE_MAGIC, .type = WIRE_HELLO, .meta_len = 4 };
	uint8_t buf[256];

	ok(fd >= 0, "connected");
	if (fd < 0)
		return;
	wire_hdr_encode(&h, buf);
	is_int(buf[4], WIRE_VERSION, "byte 4 of the header is the version");
	buf[4] = WIRE_VERSION - 1;
	memset(buf + WIRE_HDR_LEN, 0, 4);
	ok(write_full(fd, buf, WIRE_HDR_LEN + 4) == 0, "a HELLO of the previous version sent");
	ssize_t n = read_frame(fd, buf, sizeof buf, 0);
	ok(n >= WIRE_HDR_LEN, "the server answers");
	if (n >= WIRE_HDR_LEN) {
		ok(wire_hdr_decode(buf, 0, &h) == 0 && h.type == WIRE_REJECT, "with a REJECT");
		is_int(h.status, KVN_EVERSION, "saying KVN_EVERSION");
	}
	ok(wait_closed(fd, 2000) >= 0, "and closes the connection");
	close(fd);
}

static void t_handshake_timeout(void)
{
	int fd = raw_connect(srv_port);
	ok(fd >= 0, "raw connect");
	int ms = wait_closed(fd, 3000);
	ok(ms >= 250 && ms < 2000, "a silent connection is closed after handshake_timeout (%d ms)", ms);
	close(fd);
}

static void t_unauthenticated(void)
{
	struct wire_hdr h = { .type = WIRE_PING };
	uint8_t raw[WIRE_HDR_LEN];
	struct net_stats before, after;

	net_get_stats(&before);
	int fd = raw_connect(srv_port);
	wire_hdr_encode(&h, raw);
	write_full(fd, raw, sizeof raw);
	int ms = wait_closed(fd, 2000);
	ok(ms >= 0 && ms < 250, "a data frame before the handshake closes at once (%d ms)", ms);
	close(fd);
	net_get_stats(&after);
	ok(after.auth_fail > before.auth_fail, "counted");

	/* garbage bytes: closed, counted as a protocol error */
	fd = raw_connect(srv_port);
	const char *junk = "GET / HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";
	write_full(fd, (const uint8_t *)junk, strlen(junk));
	ms = wait_closed(fd, 2000);
	ok(ms >= 0 && ms < 250, "garbage closes the connection (%d ms)", ms);
	close(fd);
	net_get_stats(&after);
	ok(after.proto_err > before.proto_err, "protocol error counted");
}

static void t_deadline_and_loss(void)
{
	struct cli_fix f;

	cli_open(&f, srv_port, AUTH_ROLE_CLIENT, &client_kr.s[0]);
	is_int(ping(&f, 1, NULL, 0, 2000), 0, "up");
	struct actor_msg *m = actor_msg_new(WIRE_STAT); /* the server never answers STAT */
	f.st.done = 0;
	uint64_t t0 = kvn_now_ms();
	actor_call(f.a, f.proxy, m, 200, on_reply, &f.st);
	actor_loop_run_until(f.loop, &f.st.done, kvn_now_ms() + 3000);
	uint64_t dt = kvn_now_ms() - t0;
	ok(f.st.done && f.st.err == KVN_ETIMEDOUT && dt < 1000, "an unanswered request times out at its deadline");
	cli_close(&f);

	/* a connection to a port nobody listens on fails fast, not at the deadline */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof sa;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&sa, sizeof sa);
	getsockname(fd, (struct sockaddr *)&sa, &len);
	uint16_t dead = ntohs(sa.sin_port);
	close(fd);
	cli_open(&f, dead, AUTH_ROLE_CLIENT, &client_kr.s[0]);
	t0 = kvn_now_ms();
	int rc = ping(&f, 1, NULL, 0, 5000);
	dt = kvn_now_ms() - t0;
	is_int(rc, KVN_ECONN, "connection refused -> KVN_ECONN");
	ok(dt < 1000, "promptly (%llu ms), not at the 5 s deadline", (unsigned long long)dt);
	cli_close(&f);
}

/* Idle unauthenticated sockets do not count against max_connections
 * (they have a pool of their own); authenticated connections still do. */
static void t_max_connections(void)
{
	struct cli_fix a, b, c;
	int idle[6], nidle = 0;

	for (int i = 0; i < 6; i++)
		if ((idle[nidle] = raw_connect(cap_port)) >= 0)
			nidle++;
	is_int(nidle, 6, "6 idle sockets: more than max_connections (2) and the pre-auth pool (4)");
	cli_open(&a, cap_port, AUTH_ROLE_CLIENT, &client_kr.s[0]);
	is_int(ping(&a, 1, NULL, 0, 3000), 0, "an authenticated connection gets in");
	cli_open(&b, cap_port, AUTH_ROLE_CLIENT, &client_kr.s[0]);
	is_int(ping(&b, 2, NULL, 0, 3000), 0, "and a second one: max_connections counts authenticated ones");
	cli_open(&c, cap_port, AUTH_ROLE_CLIENT, &client_kr.s[0]);
	ok(ping(&c, 3, NULL, 0, 3000) != 0, "a third authenticated one is refused (max_connections 2)");
	cli_close(&c);
	cli_close(&a);
	int rc = -1;
	uint64_t until = kvn_now_ms() + 3000;
	while (rc != 0 && kvn_now_ms() < until) {
		cli_open(&c, cap_port, AUTH_ROLE_CLIENT, &client_kr.s[0]);
		rc = ping(&c, 4, NULL, 0, 1000);
		cli_close(&c);
		if (rc)
			usleep(20000);
	}
	is_int(rc, 0, "once one closed, another gets in");
	cli_close(&b);
	int open = 0;
	for (int i = 0; i < nidle; i++) {
		struct pollfd pfd = { .fd = idle[i], .events = POLLIN };
		uint8_t buf[8];
		open += !(poll(&pfd, 1, 0) > 0 && read(idle[i], buf, sizeof buf) <= 0);
		close(idle[i]);
	}
	ok(open <= 4, "the listener kept at most max_preauth of the idle sockets (%d)", open);
}

/* ---- simulated network ---- */

static void t_sim(void)
{
	struct actor_loop *l = actor_loop_new("t-sim");
	struct server *s = kvn_xcalloc(1, sizeof *s);
	struct client c = { 0 };
	struct actor *sa, *ca;
	actor_id proxy;
	struct net_sim_faults faults = { .drop_pm = 200, .dup_pm = 200, .delay_pm = 500, .max_delay_ms = 5 };
	struct net_sim *sim = net_sim_new(12345, &faults);
	int answered = 0, timed_out = 0, wrong = 0;

	actor_spawn(l, &srv_ops, s, 4096, &sa);
	actor_spawn(l, &cli_ops, &c, 4096, &ca);
	is_int(net_sim_connect(sim, ca, 1, actor_id_of(sa), 2, AUTH_ROLE_CLIENT, &proxy), 0, "sim link");
	for (uint64_t i = 0; i < 200; i++) {
		struct actor_msg *m = actor_msg_new(WIRE_PING);
		m->meta = kvn_xmalloc(8);
		memcpy(m->meta, &i, 8);
		m->meta_len = 8;
		c.done = 0;
		actor_call(ca, proxy, m, 50, on_reply, &c);
		actor_loop_run_until(l, &c.done, kvn_now_ms() + 1000);
		if (c.err == 0 && c.done) {
			answered++;
			if (c.meta_v != i)
				wrong++;
		} else if (c.err == KVN_ETIMEDOUT)
			timed_out++;
	}
	struct net_sim_stats st;
	net_sim_get_stats(sim, &st);
	ok(st.dropped > 0 && st.duplicated > 0 && st.delayed > 0, "faults injected (drop %llu dup %llu delay %llu)",
	   (unsigned long long)st.dropped, (unsigned long long)st.duplicated, (unsigned long long)st.delayed);
	ok(answered > 100 && timed_out > 10, "lost messages time out, others are answered (%d/%d)", answered,
	   timed_out);
	is_int(wrong, 0, "duplicates never answer a later call with an earlier reply");
	is_int(answered + timed_out, 200, "every call ended exactly once");

	net_sim_partition(sim, 2, 1);
	c.done = 0;
	actor_call(ca, proxy, actor_msg_new(WIRE_PING), 50, on_reply, &c);
	actor_loop_run_until(l, &c.done, kvn_now_ms() + 1000);
	is_int(c.err, KVN_ETIMEDOUT, "partitioned node: the call times out");
	net_sim_partition(sim, 2, 0);
	c.done = 0;
	int rc = KVN_ETIMEDOUT;
	for (int i = 0; i < 20 && rc != 0; i++) {
		c.done = 0;
		actor_call(ca, proxy, actor_msg_new(WIRE_PING), 50, on_reply, &c);
		actor_loop_run_until(l, &c.done, kvn_now_ms() + 1000);
		rc = c.err;
	}
	is_int(rc, 0, "healed: calls get through again");

	/* same seed, same faults */
	struct net_sim *a = net_sim_new(7, &faults), *b = net_sim_new(7, &faults);
	int same = 1;
	for (int i = 0; i < 1000; i++)
		if (net_sim_rand(a) != net_sim_rand(b))
			same = 0;
	ok(same, "a seed replays the same decisions");
	net_sim_free(a);
	net_sim_free(b);
	net_sim_free(sim);
	actor_loop_free(l);
	free(s);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "roundtrip", t_roundtrip },
		{ "sink", t_sink },
		{ "back_to_back", t_back_to_back },
		{ "auth_failures", t_auth_failures },
		{ "rotation", t_rotation },
		{ "tamper", t_tamper },
		{ "integrity", t_integrity },
		{ "old_version", t_old_version },
		{ "handshake_timeout", t_handshake_timeout },
		{ "unauthenticated", t_unauthenticated },
		{ "deadline_and_loss", t_deadline_and_loss },
		{ "max_connections", t_max_connections },
		{ "sim", t_sim },
		{ NULL, NULL },
	};
	int rc;

	kvn_log_set_level(getenv("KVN_TEST_VERBOSE") ? KVN_LOG_DEBUG : KVN_LOG_ERROR);
	start_server();
	rc = tap_run(tests, argc, argv);
	actor_loop_stop(srv_loop);
	actor_loop_join(srv_loop);
	net_listener_free(lst);
	net_listener_free(cap_lst);
	actor_loop_free(srv_loop);
	free(srv_state);
	return rc;
}
