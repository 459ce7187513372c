/*
 * fuzz_peer: the peer's message handlers (src/actors/peer*.c) behind
 * authentication.  The transport is bypassed the way t/peer.c and
 * t/sim_world.c drive a peer in-process: one virtual-time loop holds a peer,
 * a stub master and a client actor, and every message arrives as it would
 * from an authenticated connection (src_role CLIENT for the data path, the
 * master's own id for DROP_GEN / DURABLE), its PUT and COMMIT_SLOT payloads
 * either buffered or written into the peer's own payload sink exactly as
 * conn_read.c does.  The input is a script of operations; each message is
 * built with the proto.h encoders from fields at their edges (generations
 * 0, 1, 2^32, 2^63-1, 2^63, 2^64-1; sizes around the page, max_value_size and
 * far beyond; counts 0, 1, 4096, 4097), with keys from a small pool so later
 * operations meet earlier ones.
 *
 * Tiers (issue 13): the peer has a disk tier on its own loop (a fresh
 * directory per input, on /dev/shm when there is one), a 384 KiB arena
 * with watermarks at 50% / 25% and peer.flush_on_stop on, so eviction,
 * offload, GETs of disk-only values and promotion are reached.  PUT items
 * mostly carry the true checksum of their payload (every payload byte of
 * a message is W.fill), else any value, which the disk writer refuses.
 * Operations also send PIN (with a TTL at its edges), UNPIN and EVICT_KEY,
 * make the disk fail its next opens, writes, fsyncs, renames, directory
 * syncs or reads (peer_disk_fault), and ask for the clean stop
 * (peer_leave: flush, ship, PEER_LEAVE, which the stub master acks).
 * fuzz/mkseeds.py writes tier-* seeds that reach each of these.
 *
 * Invariants (a violation aborts, so libFuzzer keeps the input):
 *  - no crash, no sanitizer report, memory bounded (-rss_limit_mb);
 *  - every EVENTS batch and FULL_SYNC chunk the peer sends decodes, and every
 *    event in it passes master_event_ok (src/actors/master.c): whatever a
 *    client sends, the peer never emits an event the master refuses;
 *  - no message storm: the peer never sends the master more than STORM_MAX
 *    messages at one instant (a re-ship loop without a timer).
 *
 * Grants: the stub master derives the grant key of the in-process peer as
 * the real master does (auth_grant_local_material of the peer's boot id),
 * and PUT and ALLOC_SLOT items carry a grant the input picks: mostly the
 * master's valid one, else none, a zero one, one for another gen or size,
 * or one with a flipped bit.  Since grants, an event whose generation the
 * master never handed out is a violation like any other (issue 11 item 1;
 * fuzz/crashes/peer-item1-* replay it), and items may claim any size (a
 * size over the payload is refused before anything is reserved:
 * fuzz/crashes/peer-put-huge-size-oom).
 */
#include "config.h"

#include <errno.h>
#include <event2/buffer.h>
#include <ftw.h>
#include <unistd.h>
#include <xxhash.h>

#include "fuzz_common.h"

#include "actors/actor.h"
#include "master/master_int.h"
#include "net/proto.h"
#include "peer/peer.h"
#include "auth/auth.h"
#include "net/net.h"
#include "store/disk.h"

#define T0 1000000ull
#define MAXV (128u << 10)     /* peer.max_value_size */
#define ARENA (384u << 10)    /* peer.dram_size: three values of MAXV fill it */
#define PAYLOAD_CAP (1u << 20) /* bytes a message of this harness carries at most */
#define META_CAP 60000u       /* items written into one message at most (frame: 64 KiB) */
#define MAX_OPS 48
#define STORM_MAX 2000
#define EVENT_BUDGET 200000
#define DISK (2u << 20)       /* peer.disk_size: four times DRAM */

/* The disk tier's directory and peer.db, fresh for every input (on
 * /dev/shm when there is one, so fsync costs nothing). */
static char dir[128], disk_dir[160], disk_db[160];

/* the grant key the stub master signs with (made at the peer's attach) */
static struct auth_grant_key *gkey;
static uint64_t gkey_boot;

struct stub {
	uint64_t applied;
	int hold;       /* do not answer EVENTS / HEARTBEAT / ATTACH */
	int need_sync;  /* answer the next ATTACH or EVENTS with need_full_sync */
	int sync_due;   /* a gap was seen: need_full_sync until a full sync ends */
	int err_next;   /* answer the next EVENTS with this status */
	uint64_t at_ms; /* the instant of the last message */
	uint32_t at_count;
	struct actor_msg *held[8];
	int nheld;
};

static struct {
	struct actor_loop *l;
	struct actor *peer, *master, *cli;
	struct stub st;
	/* (key, gen) pairs seen in PUTs and ALLOC_SLOTs, so later operations find them */
	struct {
		char key[8];
		uint64_t gen;
	} seen[16];
	int nseen;
	uint8_t fill; /* the byte every payload of the next message is made of */
} W;

static const char *const keys[] = { "a", "b", "key-3", "k4" };

/* ---- the stub master ---- */

/* An event the master would refuse.  Returns 0 ok, 1 bad generation only
 * (item 1), 2 anything else. */
static int event_class(const struct proto_event *e)
{
	if (master_event_ok(e))
		return 0;
	struct proto_event fixed = *e;
	fixed.gen = 1;
	return master_event_ok(&fixed) ? 1 : 2;
}

static void event_bad(const struct proto_event *e, const char *where)
{
	int cls = event_class(e);
	if (cls == 0)
		return;
	fz_violation("the peer sent the master a %s event it refuses (master_event_ok): kind %u gen %llu "
		     "tier %u size %llu%s",
		     where, e->kind, (unsigned long long)e->gen, e->tier, (unsigned long long)e->size,
		     cls == 1 ? " [issue 11 item 1: client-chosen generation]" : "");
}

static void storm_check(struct stub *s)
{
	uint64_t now = kvn_now_ms();
	if (now != s->at_ms) {
		s->at_ms = now;
		s->at_count = 0;
	}
	if (++s->at_count > STORM_MAX)
		fz_violation("message storm: more than %d messages from the peer to the master at one instant",
			     STORM_MAX);
}

/* The master's answer (master_reply_ack): the ack, with KVN_ESTATE when it
 * asks for a full sync after a gap. */
static void ack(struct actor *self, struct actor_msg *m, struct stub *s, int status)
{
	struct proto_ack a = { .applied_seq = s->applied, .durable_seq = s->applied, .epoch = 1 };
	struct actor_msg *r = actor_msg_new(m->type);
	if (s->need_sync || (s->sync_due && m->type != WIRE_FULL_SYNC)) {
		a.need_full_sync = 1;
		s->need_sync = 0;
		if (m->type == WIRE_EVENTS && status == 0)
			status = KVN_ESTATE;
	}
	if (status == 0 || status == KVN_ESTATE || status == KVN_EBUSY)
		proto_ack_enc(r, &a);
	actor_reply(self, m, r, status);
}

/* Check every event; apply them as the master does (on_events in
 * master.c): duplicates skipped, a gap ends the batch and asks for a full
 * sync.  Returns 1 on a gap. */
static int check_events(struct actor_msg *m, struct stub *s)
{
	struct wire_r r;
	struct proto_event e;
	char node[65];
	uint64_t boot;
	uint32_t n;
	int gap = 0;
	int rc = proto_events_open(&r, m, node, sizeof node, &boot, &n);
	if (rc)
		fz_violation("an EVENTS batch from the peer does not decode: %d", rc);
	for (uint32_t i = 0; i < n; i++) {
		rc = proto_events_next(&r, &e);
		if (rc)
			fz_violation("event %u of %u from the peer does not decode: %d", i, n, rc);
		event_bad(&e, e.kind == PROTO_EV_ADD ? "ADD" : "REMOVE");
		if (gap || e.seq <= s->applied)
			continue;
		if (e.seq == s->applied + 1)
			s->applied = e.seq;
		else
			gap = 1;
	}
	if (wire_r_end(&r) != 0)
		fz_violation("an EVENTS batch from the peer has trailing bytes");
	return gap;
}

static void check_sync(struct actor_msg *m, struct stub *s)
{
	struct wire_r r;
	struct proto_sync_hdr h;
	struct proto_event e;
	int rc = proto_sync_open(&r, m, &h);
	if (rc)
		fz_violation("a FULL_SYNC chunk from the peer does not decode: %d", rc);
	for (uint32_t i = 0; i < h.n; i++) {
		rc = proto_sync_next(&r, &e);
		if (rc)
			fz_violation("full-sync entry %u of %u does not decode: %d", i, h.n, rc);
		e.kind = PROTO_EV_ADD;
		event_bad(&e, "FULL_SYNC");
	}
	if (wire_r_end(&r) != 0)
		fz_violation("a FULL_SYNC chunk from the peer has trailing bytes");
	if (h.last) {
		s->applied = h.seq; /* the snapshot is as of seq (master_sync.c) */
		s->sync_due = 0;
	}
}

static int stub_handle(struct actor *self, struct actor_msg *m)
{
	struct stub *s = actor_state(self);
	struct proto_node nd;

	if (m->flags & WIRE_F_REPLY)
		return 0;
	storm_check(s);
	switch (m->type) {
	case WIRE_PEER_ATTACH:
	case WIRE_HEARTBEAT:
		if (proto_node_dec(m, &nd) != 0)
			fz_violation("the peer's %s does not decode", wire_type_name(m->type));
		if (m->type == WIRE_PEER_ATTACH && nd.last_seq < s->applied)
			s->applied = nd.last_seq; /* a restarted numbering: follow it */
		if (m->type == WIRE_PEER_ATTACH && (!gkey || nd.boot_id != gkey_boot)) {
			uint8_t mat[AUTH_MAC_LEN];
			auth_grant_key_free(gkey);
			gkey = NULL;
			gkey_boot = nd.boot_id;
			if (auth_grant_local_material(nd.boot_id, mat) == 0)
				auth_grant_key_new(mat, &gkey);
		}
		break;
	case WIRE_EVENTS:
		if (check_events(m, s)) {
			s->sync_due = 1; /* as the master's n->sync_due */
			ack(self, m, s, 0);
			return 0;
		}
		if (s->err_next) {
			int st = s->err_next;
			s->err_next = 0;
			actor_reply_status(self, m, st);
			return 0;
		}
		break;
	case WIRE_FULL_SYNC:
		check_sync(m, s);
		break;
	case WIRE_PEER_LEAVE: /* the master drops the node's locations: ok */
		if (proto_node_dec(m, &nd) != 0)
			fz_violation("the peer's PEER_LEAVE does not decode");
		actor_reply_status(self, m, 0);
		return 0;
	default:
		fz_violation("the peer sent its master a %s", wire_type_name(m->type));
	}
	if (s->hold && s->nheld < (int)(sizeof s->held / sizeof s->held[0])) {
		s->held[s->nheld++] = m;
		return ACTOR_KEEP;
	}
	ack(self, m, s, 0);
	return 0;
}

static void stub_release(void)
{
	struct stub *s = &W.st;
	for (int i = 0; i < s->nheld; i++) {
		ack(W.master, s->held[i], s, 0);
		actor_msg_free(s->held[i]);
	}
	s->nheld = 0;
}

static const struct actor_ops stub_ops = { .name = "fz-master", .handle = stub_handle };

static int sink_handle(struct actor *self, struct actor_msg *m)
{
	return 0;
}

static const struct actor_ops cli_ops = { .name = "fz-client", .handle = sink_handle };

static int on_reply(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	return 0;
}

/* ---- message building ---- */

static void put_key(struct fz *f, struct wire_w *w, char *used, size_t cap)
{
	uint8_t sel = fz_u8(f);
	const char *k;
	if (sel < 200) {
		k = keys[sel % 4];
	} else if (sel < 215 && W.nseen) {
		k = W.seen[sel % W.nseen].key;
	} else {
		/* lengths at the edges: 0, 1024, 1025, or from the input */
		static uint8_t big[1100];
		uint16_t len = sel == 250 ? 0 : sel == 251 ? 1024 : sel == 252 ? 1025 : fz_u8(f) % 40;
		memset(big, 'z', sizeof big);
		wire_w_u16(w, len);
		wire_w_raw(w, big, len);
		if (used)
			snprintf(used, cap, "z");
		return;
	}
	wire_w_key(w, k, strlen(k));
	if (used)
		snprintf(used, cap, "%s", k);
}

static uint64_t pick_gen(struct fz *f)
{
	uint8_t sel = fz_u8(f);
	if (sel < 64 && W.nseen)
		return W.seen[sel % W.nseen].gen;
	return fz_edge64(f);
}

static void remember(const char *k, uint64_t gen)
{
	int i = W.nseen < 16 ? W.nseen++ : (int)(gen % 16);
	snprintf(W.seen[i].key, sizeof W.seen[i].key, "%s", k);
	W.seen[i].gen = gen;
}

/* The checksum a writer computes for an item of `size` bytes of W.fill
 * (what client_send's payloads are made of), so most values are stored
 * with their true checksum and the disk writer accepts them. */
static uint64_t fill_sum(uint64_t size)
{
	static uint8_t buf[MAXV + 1];
	if (size > sizeof buf)
		return size;
	memset(buf, W.fill, (size_t)size);
	return XXH3_64bits(buf, (size_t)size);
}

/* A data-path item batch (PUT, GET, REMOVE, ALLOC_SLOT, COMMIT_SLOT,
 * ABORT_SLOT, DROP_GEN): flags, a declared count, then as many items as
 * the input and the frame allow.  *sum gets the sum of the sizes. */
static struct actor_msg *items_msg(struct fz *f, uint16_t type, int sized, uint64_t *sum)
{
	struct wire_w w;
	struct actor_msg *m = actor_msg_new(type);
	uint8_t flags = fz_u8(f);
	uint32_t declared = fz_count(f), n = declared;
	uint64_t total = 0, budget = UINT64_MAX;
	int granted = type == WIRE_PUT || type == WIRE_ALLOC_SLOT;
	struct {
		char k[8];
		uint64_t gen, size;
	} g_items[64];
	uint32_t ng = 0;

	flags = flags < 64 ? 0 : flags < 128 ? PROTO_ITEMS_SUM : flags < 200 ? PROTO_PUT_DURABLE | PROTO_ITEMS_SUM : flags;
	W.fill = fz_u8(f);
	if (fz_u8(f) < 16) /* a declared count the items do not match */
		n = declared + (fz_u8(f) & 1 ? 1 : (uint32_t)-1);
	if (n > 4097)
		n = 4097;
	wire_w_init(&w);
	wire_w_u8(&w, flags);
	wire_w_u32(&w, declared);
	for (uint32_t i = 0; i < n && w.len < META_CAP && !w.err; i++) {
		char k[8] = "";
		uint64_t gen = pick_gen(f);
		uint64_t size = sized ? fz_size(f, MAXV) : fz_u8(f) < 8 ? fz_edge64(f) : 0;
		if (sized && size > budget - total)
			size = budget - total;
		total += size;
		put_key(f, &w, k, sizeof k);
		wire_w_u64(&w, gen);
		wire_w_u64(&w, size);
		if (flags & PROTO_ITEMS_SUM) { /* checksum, then a TTL (sometimes out of range) */
			wire_w_u64(&w, sized && fz_u8(f) < 200 ? fill_sum(size) : fz_edge64(f));
			wire_w_u64(&w, fz_u8(f) < 8 ? fz_edge64(f) : 0);
		}
		if (sized && k[0] && k[0] != 'z')
			remember(k, gen);
		if (granted && ng < 64) {
			memcpy(g_items[ng].k, k, sizeof k);
			g_items[ng].gen = gen;
			g_items[ng++].size = size;
		}
	}
	/* the grants, one per item (the master's answer to ROUTE_PUT), unless
	 * the input leaves them out */
	if (granted && ng == n && fz_u8(f) < 240) {
		for (uint32_t i = 0; i < ng; i++) {
			struct proto_grant g = { .expiry_ms = kvn_wall_ms() + PROTO_GRANT_TTL_MS,
						 .size = g_items[i].size };
			uint8_t how = fz_u8(f);
			uint64_t gen = g_items[i].gen + (how >= 232 && how < 240);
			if (how >= 240 && how < 248)
				g.size++;
			if (how < 248 && gkey)
				auth_grant_sign(gkey, "fz-peer", g_items[i].k, strnlen(g_items[i].k, sizeof g_items[i].k),
						gen, g_items[i].size, g.expiry_ms, g.mac);
			if (how >= 224 && how < 232)
				g.mac[how & 15] ^= 1;
			if (how >= 248)
				memset(&g, 0, sizeof g);
			proto_grants_add(&w, &g);
		}
	}
	if (type == WIRE_PIN && fz_u8(f) < 240) /* the pin's TTL: mostly short, else at the edges */
		proto_pin_end(&w, fz_u8(f) < 200 ? fz_u16(f) : fz_edge64(f));
	if (fz_u8(f) == 0xff)
		wire_w_u8(&w, 0); /* a trailing byte */
	if (w.err || wire_w_to_msg(&w, m) != 0)
		wire_w_fini(&w);
	*sum = total;
	return m;
}

/* Keys-only batch (RESOLVE_KEY, EXISTS is items). */
static struct actor_msg *keys_msg(struct fz *f, uint16_t type)
{
	struct wire_w w;
	struct actor_msg *m = actor_msg_new(type);
	uint32_t declared = fz_count(f), n = declared > 4097 ? 4097 : declared;

	wire_w_init(&w);
	wire_w_u32(&w, declared);
	for (uint32_t i = 0; i < n && w.len < META_CAP && !w.err; i++)
		put_key(f, &w, NULL, 0);
	if (w.err || wire_w_to_msg(&w, m) != 0)
		wire_w_fini(&w);
	return m;
}

/* The payload length a client would send: the sum of the sizes, or (input's
 * choice, or when the sum is too big to carry) something else. */
static uint64_t payload_len(struct fz *f, uint64_t sum)
{
	uint8_t sel = fz_u8(f);
	if (sum <= PAYLOAD_CAP && sel < 200)
		return sum;
	if (sel < 220 && sum > 0 && sum - 1 <= PAYLOAD_CAP)
		return sum - 1;
	if (sel < 240 && sum + 1 <= PAYLOAD_CAP)
		return sum + 1;
	return fz_u32(f) % (PAYLOAD_CAP + 1);
}

/* Deliver m to the peer as a client request over an authenticated
 * connection.  With sink, the payload goes through the peer's sink hook the
 * way conn_read.c's payload_begin / deliver do it. */
static void client_send(struct fz *f, struct actor_msg *m, uint64_t plen, int sink, uint8_t role)
{
	m->src_role = role;
	if (plen && sink) {
		struct actor_frame h = { .type = m->type, .meta_len = m->meta_len, .payload_len = plen, .corr = 1 };
		struct actor_sink sk = { 0 };
		int rc = actor_sink_ask(W.peer, actor_id_of(W.cli), &h, m->meta, &sk);
		if (rc == 0) {
			uint64_t total = 0;
			for (int i = 0; i < sk.niov; i++)
				total += sk.iov[i].iov_len;
			if (total != plen) {
				actor_sink_abort(W.peer, sk.cookie);
				m->sink_err = KVN_EIO;
			} else if (fz_u8(f) == 0xfe) {
				/* the frame's tag fails after the payload arrived */
				actor_sink_abort(W.peer, sk.cookie);
				actor_msg_free(m);
				return;
			} else {
				for (int i = 0; i < sk.niov; i++)
					memset(sk.iov[i].iov_base, W.fill, sk.iov[i].iov_len);
				m->sink_cookie = sk.cookie;
			}
			m->payload_len = plen;
		} else if (rc < 0) {
			m->sink_err = rc;
			m->payload_len = plen;
		} else {
			sink = 0;
		}
	}
	if (plen && !sink) {
		uint8_t *buf = kvn_xmalloc(plen);
		memset(buf, W.fill, plen);
		m->payload = evbuffer_new();
		evbuffer_add(m->payload, buf, plen);
		free(buf);
		m->payload_len = plen;
	}
	if (actor_call(W.cli, actor_id_of(W.peer), m, 1000 + fz_u8(f) * 20ull, on_reply, NULL) != 0) {
		if (m->sink_cookie)
			actor_sink_abort(W.peer, m->sink_cookie);
		actor_msg_free(m);
	}
}

static void master_send(struct actor_msg *m)
{
	m->src = actor_id_of(W.master);
	m->src_role = AUTH_ROLE_MASTER;
	if (actor_send(actor_id_of(W.peer), m) != 0)
		actor_msg_free(m);
}

static void on_leave(void *arg, int status)
{
}

static void run_for(uint64_t ms)
{
	uint64_t until = actor_loop_vnow(W.l) + ms;
	actor_loop_sim_run(W.l, until, EVENT_BUDGET);
}

static void one_op(struct fz *f)
{
	static const uint8_t roles[] = { AUTH_ROLE_CLIENT, AUTH_ROLE_CLIENT, AUTH_ROLE_CLIENT, AUTH_ROLE_INTERNAL,
					 AUTH_ROLE_PEER, AUTH_ROLE_MASTER, AUTH_ROLE_NONE, 77 };
	uint8_t op = fz_u8(f);
	uint8_t role = op & 0x80 ? roles[fz_u8(f) % 8] : AUTH_ROLE_CLIENT;
	uint64_t sum = 0;
	struct actor_msg *m;

	switch (op & 0x7f) {
	case 0: case 1: case 2: case 3: case 4: case 5:
		m = items_msg(f, WIRE_PUT, 1, &sum);
		client_send(f, m, payload_len(f, sum), (op & 0x7f) >= 3, role);
		break;
	case 6: case 7:
		client_send(f, items_msg(f, WIRE_GET, 0, &sum), 0, 0, role);
		break;
	case 8:
		client_send(f, items_msg(f, WIRE_EXISTS, 0, &sum), 0, 0, role);
		break;
	case 9: case 10:
		client_send(f, items_msg(f, WIRE_REMOVE, 0, &sum), 0, 0, role);
		break;
	case 11: case 12:
		client_send(f, items_msg(f, WIRE_ALLOC_SLOT, 1, &sum), 0, 0, role);
		break;
	case 13: case 14: case 15:
		m = items_msg(f, WIRE_COMMIT_SLOT, 1, &sum);
		client_send(f, m, payload_len(f, sum), (op & 0x7f) != 13, role);
		break;
	case 16:
		client_send(f, items_msg(f, WIRE_ABORT_SLOT, 0, &sum), 0, 0, role);
		break;
	case 17:
		client_send(f, keys_msg(f, WIRE_RESOLVE_KEY), 0, 0, role);
		break;
	case 18:
		master_send(items_msg(f, WIRE_DROP_GEN, 0, &sum));
		break;
	case 19: {
		m = actor_msg_new(WIRE_DURABLE);
		proto_durable_enc(m, fz_u8(f) < 128 ? W.st.applied : fz_edge64(f));
		master_send(m);
		break;
	}
	case 20: /* the master connection drops and comes back */
		master_send(actor_msg_new(NET_DOWN));
		if (fz_u8(f) & 1)
			master_send(actor_msg_new(NET_UP));
		break;
	case 21:
		W.st.hold = !W.st.hold;
		if (!W.st.hold)
			stub_release();
		break;
	case 22:
		W.st.need_sync = 1;
		break;
	case 23: {
		static const int errs[] = { KVN_EPROTO, KVN_ESTATE, KVN_EBUSY, KVN_EDB };
		W.st.err_next = errs[fz_u8(f) % 4];
		break;
	}
	case 24: { /* arbitrary metadata of any type */
		const uint8_t *p;
		static const uint16_t types[] = { WIRE_PUT, WIRE_GET, WIRE_EXISTS, WIRE_REMOVE, WIRE_ALLOC_SLOT,
						  WIRE_COMMIT_SLOT, WIRE_ABORT_SLOT, WIRE_RESOLVE_KEY,
						  WIRE_PING, WIRE_EVENTS, 999, WIRE_PIN, WIRE_UNPIN, WIRE_EVICT_KEY };
		m = actor_msg_new(types[fz_u8(f) % 14]);
		size_t n = fz_bytes(f, 2048, &p);
		if (n) {
			m->meta = kvn_xmalloc(n);
			memcpy(m->meta, p, n);
			m->meta_len = (uint32_t)n;
		}
		client_send(f, m, fz_u8(f) < 16 ? fz_u16(f) : 0, fz_u8(f) & 1, role);
		break;
	}
	case 25:
		client_send(f, items_msg(f, WIRE_PIN, 0, &sum), 0, 0, role);
		break;
	case 26:
		client_send(f, items_msg(f, WIRE_UNPIN, 0, &sum), 0, 0, role);
		break;
	case 27: case 28: /* EVICT_KEY: DRAM copies go, disk-only values stay */
		client_send(f, items_msg(f, WIRE_EVICT_KEY, 0, &sum), 0, 0, role);
		break;
	case 29: { /* the disk fails the next operations of one kind */
		static const int errs[] = { EIO, ENOSPC, EIO, EROFS }; /* errno values */
		uint8_t b = fz_u8(f), skip = fz_u8(f) % 4, e = fz_u8(f) % 4;
		peer_disk_fault(W.peer, b % DISK_OP_MAX, skip, 1 + b / DISK_OP_MAX % 4, errs[e]);
		break;
	}
	case 30: /* a clean stop: flush, ship, PEER_LEAVE (the peer never attaches again) */
		peer_leave(W.peer, kvn_now_ms() + fz_u16(f) % 3000, on_leave, NULL);
		break;
	default: /* time passes: heartbeats, shipping, reaping, lease expiry */
		run_for(fz_u16(f) % 3000);
		return;
	}
	run_for(fz_u8(f) % 4);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	if (ftw->level > 0)
		remove(path);
	return 0;
}

/* Empty dir (the disk tier and peer.db of the last input). */
static void rm_disk(void)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void cleanup(void)
{
	rm_disk();
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char **argv[])
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	fz_quiet();
	snprintf(dir, sizeof dir, "%s/kvn-fuzz-peer-XXXXXX", base);
	if (!mkdtemp(dir))
		kvn_fatal("mkdtemp %s: %s", dir, strerror(errno));
	snprintf(disk_dir, sizeof disk_dir, "%s/disk", dir);
	snprintf(disk_db, sizeof disk_db, "%s/peer.db", dir);
	atexit(cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct peer_opts o = {
		.node_id = "fz-peer", .advertise = "127.0.0.1:1", .dram_size = ARENA, .page_size = 4096,
		.heartbeat_ms = 50, .pending_ttl_ms = 500, .read_lease_ttl_ms = 1000,
		.max_value_size = MAXV, .mailbox = 4096, .call_timeout_ms = 300,
		/* a disk tier on the peer's loop (offload auto: on-evict), so
		 * eviction, offload, cold GETs and EVICT_KEY are reached; a
		 * small batch so rounds repeat */
		.disk_dir = disk_dir, .disk_db = disk_db, .disk_size = DISK, .evict_batch = 4,
		.high_watermark = 500000, .low_watermark = 250000,
		.flush_on_stop = 1,
	};
	char err[256];
	struct fz f;

	fz_init(&f, data, size);
	memset(&W, 0, sizeof W);
	rm_disk();
	W.l = actor_loop_new("fz-peer");
	actor_loop_set_virtual(W.l, T0);
	actor_spawn(W.l, &stub_ops, &W.st, 4096, &W.master);
	actor_spawn(W.l, &cli_ops, NULL, 4096, &W.cli);
	if (peer_start(W.l, &o, &W.peer, err, sizeof err) != 0)
		kvn_fatal("peer_start: %s", err);
	peer_set_master(W.peer, actor_id_of(W.master));
	run_for(10); /* attached */

	for (int i = 0; i < MAX_OPS && fz_left(&f); i++)
		one_op(&f);

	/* the master answers everything again: what is queued ships */
	W.st.hold = 0;
	stub_release();
	run_for(1500);
	for (int i = 0; i < W.st.nheld; i++)
		actor_msg_free(W.st.held[i]);
	actor_loop_free(W.l);
	return 0;
}
