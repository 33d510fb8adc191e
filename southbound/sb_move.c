/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * service Move and the peer channel: moving and copying flows between
 * instances, peer to peer (proto/mbx/v1/move.proto, docs/migration.md).
 *
 * Source (StartMove): connect to the destination's peer listener; put a
 * REDIRECT rule on the filter (DROP for guarantee none, nothing for a copy)
 * whose packets wait on the move's ring; export the state -- the all-flows
 * pieces the NFs want moved, then worker by worker the multi-flow pieces and
 * the flows -- onto the peer stream, keeping the flows; wait until the
 * destination installed it (STATE_SENT: the controller reroutes now); delete
 * the exported flows while streaming the ring in order; once every worker
 * has met the move's marker, send END; once the destination acknowledged it
 * and the flows are gone here (the rule stays until then), the move is DONE.
 * Until the destination acknowledged the state, any failure rolls back: the
 * flows are still here, and the held packets go back to their workers, in
 * order.
 *
 * Destination (ExpectMove, then the peer stream): hold the filter's packets
 * that arrive directly (a BUFFER rule); install the state as it comes (all
 * or nothing: undone if any of it is refused); inject the redirected
 * packets, in stream order, into the hand-off rings of the workers that own
 * their flows, flagged so the BUFFER rule lets them by; release the held
 * packets in arrival order after the state (loss-free, none) or after END
 * (loss-free and order-preserving).
 *
 * Main lcore only, driven by the control loop: a move's steps are events.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <unistd.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <rte_cycles.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_ring.h>

#include "mbx/v1/move.pb-c.h"
#include "mbx_ctrl.h"
#include "mbx_frame.h"
#include "mbx_marker.h"
#include "mbx_move.h"
#include "mbx_sb.h"
#include "mbx_state.h"
#include "mbx_wire.h"

RTE_LOG_REGISTER(move_logtype, user.mbx.move, NOTICE);
#define MOVE_LOG(level, fmt, ...) \
	rte_log(RTE_LOG_##level, move_logtype, "mbx.move: " fmt "\n", ##__VA_ARGS__)

#define PEER_METHOD	   "/mbx.v1.Peer/Stream"
#define PEER_FRAME_MAX	   (64u << 20)
#define PEER_OUT_HIGH	   (8u << 20)
#define PEER_OUT_LOW	   (1u << 20)
#define PEER_IO_MAX	   (1u << 20) /* per read (sb_read_pending) or write call */
#define STATE_BYTES	   (1u << 20) /* state per peer frame */
#define SLICE_SLOTS	   (1u << 20) /* table slots per export slice (a bitmap walk) */
#define SLICE_FLOWS	   2048	      /* flows per export slice */
#define PKTS_PER_FRAME	   256
#define STREAM_FRAMES	   256 /* frames of the ring per turn of the loop, at most */
#define DEFAULT_LIMIT	   65536u
#define DEFAULT_TIMEOUT_MS 10000
#define SRC_IDLE_US	   100	/* its poll of an empty redirect ring, without an eventfd */
#define ROLLBACK_SLACK	   4096 /* packets of a rolled-back filter arriving meanwhile */
#define SRC_WAIT_US	   1000 /* its watch of the buffer while the destination is busy */
#define EXPORT_TICKS_PER_S 5000 /* 200 µs of export steps between two turns of the loop */
#define MARKERS_MAX	   64	/* marker copies per worker (TX paths of the steering port) */

enum role {
	ROLE_SRC,
	ROLE_DST,
};

enum src_step {
	SRC_EXPORT,
	SRC_WAIT_STATE,
	SRC_STREAM,
	SRC_WAIT_END,
};

struct peer_conn;

struct move {
	uint64_t id;
	enum role role;
	struct mbx_filter filter;
	Mbx__V1__Guarantee guarantee;
	bool copy;
	struct peer_conn *conn;
	struct event *tick;	/* the next step (source) or pending injections (destination) */
	struct event *deadline; /* gives up */
	struct timeval timeout; /* the source: of the whole move; the destination: of silence */
	uint64_t tsc_start, tsc_connected, tsc_state, tsc_marked, tsc_end;
	uint64_t start_unix_us;
	uint64_t flows, chunks, state_bytes, redirected, buffered, dropped;
	bool failed;
	/* source */
	struct sb_call *call; /* the StartMove stream; NULL once its client left */
	enum src_step step;
	struct mbx_move_rt rt;
	bool rt_added;
	uint32_t rule;
	uint64_t drops_before; /* event_dropped when a DROP rule started */
	int stage;	       /* export: all-flows (per NF), then per worker */
	int nf;
	uint16_t worker;
	bool multi_sent; /* the export's worker gave its multi-flow pieces */
	struct mbx_export x;
	struct event *woken; /* the source: rt.wake's eventfd */
	uint8_t *scratch;    /* PeerMessages written by hand */
	size_t scratch_cap;
	struct mbx_export del; /* deleting the exported flows, after the acknowledgement */
	bool deleting;
	bool end_acked; /* the destination acknowledged END: the move cannot fail any more */
	uint16_t marker_count;
	uint64_t markers_seen[RTE_MAX_LCORE]; /* bit per marker index, per worker */
	uint32_t workers_marked;
	/* destination */
	uint32_t buffer_rule;
	struct sb_import *im;
	struct rte_mbuf **pend; /* redirected packets waiting for room in a hand-off ring */
	size_t pend_head, pend_tail, pend_cap;
	bool state_acked; /* the flows are ours: never undone from here on */
	bool ended;
};

struct peer_conn {
	struct bufferevent *bev;
	struct move *mv; /* NULL until the destination reads the hello */
	bool closing;	 /* free once the output is sent */
	bool busy;	 /* in a callback that frees a released connection itself */
};

static struct {
	struct evconnlistener *listener;
	char addr[64];
	struct move *moves[MBX_MOVES_MAX];
	uint64_t seq;
} mv_g;

static double
ms_between(uint64_t a, uint64_t b)
{
	return a == 0 || b < a ? 0.0 : (double)(b - a) * 1000.0 / (double)rte_get_timer_hz();
}

/* The move's steps with their time, at debug level (--log-level user.mbx.move:debug). */
#define MOVE_TRACE(mv, fmt, ...)                                     \
	MOVE_LOG(DEBUG, "move %" PRIu64 " +%.3f ms: " fmt, (mv)->id, \
		 ms_between((mv)->tsc_start, rte_get_timer_cycles()), ##__VA_ARGS__)

const char *
sb_move_peer_addr(void)
{
	return mv_g.addr;
}

static struct move *
find_move(uint64_t id, enum role role)
{
	for (int i = 0; i < MBX_MOVES_MAX; i++)
		if (mv_g.moves[i] != NULL && mv_g.moves[i]->id == id && mv_g.moves[i]->role == role)
			return mv_g.moves[i];
	return NULL;
}

/* Any running move whose flows may overlap @f? */
static bool
overlaps(const struct mbx_filter *f)
{
	for (int i = 0; i < MBX_MOVES_MAX; i++)
		if (mv_g.moves[i] != NULL && mbx_filter_overlap(&mv_g.moves[i]->filter, f))
			return true;
	return false;
}

static void
conn_free(struct peer_conn *c)
{
	if (c == NULL)
		return;
	bufferevent_free(c->bev);
	free(c);
}

/* Detach the connection from its move; close it once what is queued is sent. */
static void
conn_release(struct peer_conn *c)
{
	if (c == NULL)
		return;
	c->mv = NULL;
	c->closing = true;
	if (!c->busy && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_free(c);
}

/* Frame @p payload, a packed PeerMessage, onto @p c's stream. */
static int
peer_send_payload(struct peer_conn *c, uint64_t move_id, const uint8_t *payload, size_t len)
{
	Mbx__V1__Envelope env = MBX__V1__ENVELOPE__INIT;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct evbuffer_iovec v;

	env.call_id = move_id;
	env.method = PEER_METHOD;
	env.payload = (ProtobufCBinaryData){len, (uint8_t *)(uintptr_t)payload};
	if (evbuffer_reserve_space(out, mbx_frame_size(&env), &v, 1) < 1)
		return -ENOMEM;
	v.iov_len = mbx_frame_pack(&env, v.iov_base);
	evbuffer_commit_space(out, &v, 1);
	return 0;
}

static int
peer_send(struct peer_conn *c, Mbx__V1__PeerMessage *msg)
{
	size_t len = mbx__v1__peer_message__get_packed_size(msg);
	uint8_t small[512], *buf = len <= sizeof(small) ? small : malloc(len);
	int rc;

	if (buf == NULL)
		return -ENOMEM;
	mbx__v1__peer_message__pack(msg, buf);
	rc = peer_send_payload(c, msg->move_id, buf, len);
	if (buf != small)
		free(buf);
	return rc;
}

/* Room for @p n bytes in the move's scratch buffer, for messages written by hand. */
static uint8_t *
scratch(struct move *mv, size_t n)
{
	if (n > mv->scratch_cap) {
		uint8_t *b = realloc(mv->scratch, n);

		if (b == NULL)
			return NULL;
		mv->scratch = b;
		mv->scratch_cap = n;
	}
	return mv->scratch;
}

/*
 * A PeerMessage whose body (@p body: PeerState or PeerPackets) is one
 * repeated message field, written by hand (mbx_wire.h) into the scratch
 * buffer as protobuf-c would pack it: the chunks and packets are copied
 * once, never made into protobuf-c structures. @return where the items go
 * (@p items bytes of them), or NULL.
 */
static uint8_t *
peer_msg_begin(struct move *mv, uint32_t body, size_t items, uint8_t **start)
{
	uint8_t *o = scratch(mv, mbx_wire_uint_size(1, mv->id) + mbx_wire_len_size(body, items));

	if (o == NULL)
		return NULL;
	*start = o;
	o = mbx_wire_put_uint(o, 1, mv->id);
	return mbx_wire_put_len_hdr(o, body, items);
}

static void
send_ack(struct move *mv, int err, const char *why, bool end)
{
	Mbx__V1__PeerMessage m = MBX__V1__PEER_MESSAGE__INIT;
	Mbx__V1__PeerAck ack = MBX__V1__PEER_ACK__INIT;
	Mbx__V1__Status st = MBX__V1__STATUS__INIT;

	st.code = err;
	st.message = (char *)(uintptr_t)(why ? why : "");
	ack.status = &st;
	ack.end = end;
	ack.buffered = mv->buffered;
	ack.dropped = mv->dropped;
	m.move_id = mv->id;
	m.body_case = MBX__V1__PEER_MESSAGE__BODY_ACK;
	m.ack = &ack;
	peer_send(mv->conn, &m);
}

static bool
peer_congested(const struct move *mv)
{
	return evbuffer_get_length(bufferevent_get_output(mv->conn->bev)) > PEER_OUT_HIGH;
}

/* Source: tell the StartMove client where the move is. */
static void
report(struct move *mv, Mbx__V1__MovePhase phase, bool last, int err, const char *why)
{
	Mbx__V1__StartMoveResponse r = MBX__V1__START_MOVE_RESPONSE__INIT;
	Mbx__V1__Status st = MBX__V1__STATUS__INIT;
	Mbx__V1__MoveSummary s = MBX__V1__MOVE_SUMMARY__INIT;

	if (mv->call == NULL)
		return;
	st.code = err;
	st.message = (char *)(uintptr_t)(why ? why : "");
	r.status = &st;
	r.phase = phase;
	if (last) {
		s.move_id = mv->id;
		s.flows = mv->flows;
		s.chunks = mv->chunks;
		s.state_bytes = mv->state_bytes;
		s.redirected = mv->redirected;
		s.buffered = mv->buffered;
		s.dropped = mv->dropped;
		s.connect_ms = ms_between(mv->tsc_start, mv->tsc_connected);
		s.state_ms = ms_between(mv->tsc_connected, mv->tsc_state);
		s.marker_ms = ms_between(mv->tsc_state, mv->tsc_marked);
		s.end_ms = ms_between(mv->tsc_marked ? mv->tsc_marked : mv->tsc_state, mv->tsc_end);
		s.total_ms = ms_between(mv->tsc_start,
					mv->tsc_end ? mv->tsc_end : rte_get_timer_cycles());
		s.start_unix_us = mv->start_unix_us;
		s.rolled_back = mv->failed && mv->step <= SRC_WAIT_STATE;
		r.summary = &s;
	}
	if (sb_reply(mv->call, &r.base, !last) < 0 || last)
		mv->call = NULL;
}

static void
forget(struct move *mv)
{
	for (int i = 0; i < MBX_MOVES_MAX; i++)
		if (mv_g.moves[i] == mv)
			mv_g.moves[i] = NULL;
	if (mv->tick != NULL)
		event_free(mv->tick);
	if (mv->deadline != NULL)
		event_free(mv->deadline);
	if (mv->woken != NULL)
		event_free(mv->woken);
	mbx_wake_fini(&mv->rt.wake);
	conn_release(mv->conn);
	free(mv->x.buf);
	free(mv->scratch);
	sb_import_free(mv->im);
	for (size_t i = mv->pend_head; i < mv->pend_tail; i++)
		rte_pktmbuf_free(mv->pend[i]);
	free(mv->pend);
	free(mv);
}

static int
noop_parked(struct mbx_dp *dp, void *arg)
{
	(void)dp;
	(void)arg;
	return 0;
}

/* Source: drop the redirect (or drop) rule and the ring, counting what is left. */
static void
src_teardown(struct move *mv)
{
	void *e;

	if (mv->rt_added)
		mbx_move_rt_del(&mv->rt); /* markers of this move are no longer looked for */
	/* once every worker answered a request after this, none holds the rule or the move */
	if (mv->rule != 0)
		sb_rule_remove(mv->rule, NULL, true, NULL, NULL, NULL);
	else if (mv->rt_added)
		mbx_ctrl_park_all(sb_dp(), noop_parked, NULL);
	mv->rule = 0;
	mv->rt_added = false;
	if (mv->rt.ring != NULL) {
		while (rte_ring_dequeue(mv->rt.ring, &e) == 0) {
			uint16_t w, i, n;

			if (!mbx_move_token(e, &w, &i, &n)) {
				rte_pktmbuf_free(e);
				mv->dropped++;
			}
		}
		sb_ring_free_later(mv->rt.ring);
		mv->rt.ring = NULL;
	}
	mv->dropped += atomic_load(&mv->rt.overflow);
	if (mv->guarantee == MBX__V1__GUARANTEE__GUARANTEE_NONE && !mv->copy)
		mv->dropped += mbx_dp_stat(sb_dp(), MBX_WSTAT_EV_DROPPED) - mv->drops_before;
}

struct rollback {
	struct move *mv;
	struct rte_ring *bufs[RTE_MAX_LCORE]; /* per worker, what the ring held for it */
};

/*
 * Workers parked: the REDIRECT rule becomes a BUFFER rule holding what was
 * redirected, per owner worker, in order; its in-order release then has each
 * worker process them before anything it receives later.
 */
static int
rollback_parked(struct mbx_dp *dp, void *arg)
{
	struct rollback *rb = arg;
	struct move *mv = rb->mv;
	void *e;

	for (uint16_t w = 0; w < dp->nb_workers; w++) {
		struct mbx_events *ev = &dp->workers[w]->ev;

		for (uint16_t i = 0; i < ev->n; i++)
			if (ev->rules[i].id == mv->rule) {
				ev->rules[i].action = MBX_ACTION_BUFFER;
				ev->rules[i].buf = rb->bufs[w];
				ev->rules[i].redirect = NULL;
			}
	}
	while (rte_ring_sc_dequeue(mv->rt.ring, &e) == 0) {
		uint16_t w, i, n;

		if (mbx_move_token(e, &w, &i, &n))
			continue;
		if (rte_ring_sp_enqueue(rb->bufs[mbx_owner(dp, mbx_pkt(e))], e) != 0) {
			rte_pktmbuf_free(e);
			mv->dropped++;
		}
	}
	return 0;
}

/*
 * Source: the destination does not have the flows; they never left (the
 * export keeps them until the acknowledgement). What was redirected goes
 * back to the workers that own those flows, in order.
 */
static void
src_rollback(struct move *mv)
{
	struct mbx_dp *dp = sb_dp();
	struct rollback rb = {.mv = mv};
	/* all the ring may hold by the time the workers park, and what comes meanwhile */
	unsigned int cap = rte_ring_get_capacity(mv->rt.ring) + ROLLBACK_SLACK;
	char name[RTE_RING_NAMESIZE];
	uint64_t overflow = 0;
	uint16_t w;

	if (mv->rule == 0)
		return;
	for (w = 0; w < dp->nb_workers; w++) {
		snprintf(name, sizeof(name), "mbx_rb_%" PRIu64 "_%u", ++mv_g.seq, w);
		rb.bufs[w] = rte_ring_create(name, cap, rte_socket_id(),
					     RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
		if (rb.bufs[w] == NULL)
			break;
	}
	if (w < dp->nb_workers) {
		/* no memory: the redirected packets are dropped (and counted) */
		MOVE_LOG(ERR, "move %" PRIu64 ": no memory to give back %u packets", mv->id,
			 rte_ring_count(mv->rt.ring));
		while (w > 0)
			rte_ring_free(rb.bufs[--w]);
		return;
	}
	mbx_ctrl_park_all(dp, rollback_parked, &rb);
	/* the rings go with the rule: its release processes them, then frees them */
	sb_rule_remove(mv->rule, NULL, false, NULL, NULL, &overflow);
	mv->dropped += overflow; /* what came meanwhile and found them full */
	mv->rule = 0;
}

/*
 * Source, once the destination has the flows: delete one slice of them.
 * @return true when every worker is done.
 */
static bool
src_delete_step(struct move *mv)
{
	struct mbx_dp *dp = sb_dp();

	if (mv->worker < dp->nb_workers) {
		if (mbx_ctrl_call(dp->workers[mv->worker], mbx_state_export_slice, &mv->del) < 0) {
			MOVE_LOG(ERR, "move %" PRIu64 ": worker %u could not delete moved flows",
				 mv->id, mv->worker);
			mv->del.cursor = UINT32_MAX;
		}
		if (mv->del.cursor == UINT32_MAX) {
			mv->worker++;
			mv->del.cursor = 0;
		}
	}
	if (mv->worker < dp->nb_workers)
		return false;
	MOVE_TRACE(mv, "moved flows deleted");
	mv->deleting = false;
	return true;
}

/* The destination may have acknowledged a state this source never saw acknowledged. */
static void
src_send_abort(struct move *mv, const char *why)
{
	Mbx__V1__PeerMessage m = MBX__V1__PEER_MESSAGE__INIT;
	Mbx__V1__PeerAbort a = MBX__V1__PEER_ABORT__INIT;

	if (mv->conn == NULL)
		return; /* queued behind the hello and state it cancels, connected or not */
	a.reason = (char *)(uintptr_t)why;
	m.move_id = mv->id;
	m.body_case = MBX__V1__PEER_MESSAGE__BODY_ABORT;
	m.abort = &a;
	peer_send(mv->conn, &m);
}

static void
src_finish(struct move *mv, int err, const char *why)
{
	mv->failed = err != 0;
	if (mv->failed) {
		MOVE_LOG(WARNING, "move %" PRIu64 " failed: %s", mv->id, why);
		if (mv->step <= SRC_WAIT_STATE && !mv->copy) {
			src_rollback(mv);
			src_send_abort(mv, why);
		}
	}
	/* failed after the acknowledgement: the flows are the destination's */
	while (mv->deleting && !src_delete_step(mv))
		;
	src_teardown(mv);
	mv->tsc_end = rte_get_timer_cycles();
	report(mv,
	       mv->failed ? MBX__V1__MOVE_PHASE__MOVE_PHASE_FAILED
			  : MBX__V1__MOVE_PHASE__MOVE_PHASE_DONE,
	       true, err, why);
	forget(mv);
}

/* Destination: stop holding; what was held is processed in order. */
static void
dst_release(struct move *mv)
{
	uint64_t released = 0, overflow = 0;

	if (mv->buffer_rule == 0)
		return;
	sb_rule_remove(mv->buffer_rule, NULL, false, &released, NULL, &overflow);
	mv->buffered += released;
	mv->dropped += overflow; /* the buffer was full: reported to the source in the END's ack */
	mv->buffer_rule = 0;
}

static void
dst_finish(struct move *mv, const char *why)
{
	if (why != NULL && mv->state_acked)
		MOVE_LOG(WARNING,
			 "move %" PRIu64 " (destination): %s; the %" PRIu64
			 " flows acknowledged stay here",
			 mv->id, why, mv->flows);
	else if (why != NULL)
		MOVE_LOG(WARNING, "move %" PRIu64 " (destination): %s; nothing installed", mv->id,
			 why);
	if (!mv->state_acked && mv->im != NULL && why != NULL)
		sb_import_undo(mv->im); /* the source takes the flows back */
	dst_release(mv);
	forget(mv);
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct move *mv = arg;

	(void)fd;
	(void)what;
	if (mv->role == ROLE_SRC)
		src_finish(mv, ETIMEDOUT, "timed out waiting for the destination or the marker");
	else
		dst_finish(mv, "timed out waiting for the source");
}

/* Destination: hand pending redirected packets to their workers, in order. @return left. */
static size_t
dst_inject_pending(struct move *mv)
{
	struct mbx_dp *dp = sb_dp();
	size_t first = mv->pend_head;

	while (mv->pend_head < mv->pend_tail) {
		struct rte_mbuf *m = mv->pend[mv->pend_head];

		if (rte_ring_mp_enqueue(dp->workers[mbx_owner(dp, mbx_pkt(m))]->handoff, m) != 0)
			break; /* that worker's ring is full: later, to keep the order */
		mv->pend_head++;
	}
	/* whichever workers sleep wake up (for one that got nothing, one idle loop) */
	for (uint16_t w = 0; mv->pend_head != first && w < dp->nb_workers; w++)
		mbx_wake(&dp->workers[w]->wake);
	if (mv->pend_head == mv->pend_tail)
		mv->pend_head = mv->pend_tail = 0;
	return mv->pend_tail - mv->pend_head;
}

static void
dst_tick(evutil_socket_t fd, short what, void *arg)
{
	struct move *mv = arg;
	struct timeval tv = {.tv_usec = 50};

	(void)fd;
	(void)what;
	if (dst_inject_pending(mv) > 0)
		event_add(mv->tick, &tv);
}

/* Destination: one redirected packet, as it arrived at the source. */
static void
dst_inject(struct move *mv, const uint8_t *frame, size_t len, uint32_t port)
{
	struct mbx_dp *dp = sb_dp();
	struct rte_mbuf *m = rte_pktmbuf_alloc(dp->mp);
	uint16_t in_port = port < dp->nb_ports ? (uint16_t)port : 0;
	struct mbx_pkt *p;
	char *d;

	if (m == NULL || len > UINT16_MAX || (d = rte_pktmbuf_append(m, (uint16_t)len)) == NULL) {
		rte_pktmbuf_free(m);
		mv->dropped++;
		return;
	}
	memcpy(d, frame, len);
	p = mbx_pkt(m);
	if (mbx_parse(m) != MBX_PARSE_OK) {
		rte_pktmbuf_free(m);
		mv->dropped++;
		return;
	}
	p->in_port = (uint8_t)in_port;
	p->side = mbx_port_side(in_port);
	p->out_port = (uint8_t)mbx_default_out(dp, in_port);
	p->flow = NULL;
	p->flow_new = 0;
	p->drop = 0;
	m->port = in_port;
	m->ol_flags |= mbx_flag_redirected;
	if (mv->pend_tail == mv->pend_cap) {
		size_t cap = mv->pend_cap ? mv->pend_cap * 2 : 1024;
		struct rte_mbuf **b = realloc(mv->pend, cap * sizeof(*b));

		if (b == NULL) {
			rte_pktmbuf_free(m);
			mv->dropped++;
			return;
		}
		mv->pend = b;
		mv->pend_cap = cap;
	}
	mv->pend[mv->pend_tail++] = m;
	mv->redirected++;
}

/*
 * Destination: a PeerState or PeerPackets body from the wire, each item (a
 * StateChunk or a PeerPacket, field 1 of every occurrence of field @p body
 * from @p p on) straight into an import record or a packet buffer.
 * @return 0, or -1 if the message is malformed.
 */
static int
dst_on_items(struct move *mv, uint32_t body, const uint8_t *from, const uint8_t *end)
{
	struct mbx_wire_items it;
	const uint8_t *item, *frame;
	size_t len, frame_len;
	uint32_t port;
	char msg[256];
	int rc;

	mbx_wire_items_init(&it, body, from, end);
	while ((rc = mbx_wire_items_next(&it, &item, &len)) > 0) {
		int err;

		if (body == MBX__V1__PEER_MESSAGE__BODY_PACKETS) {
			if (mbx_wire_peer_packet(item, len, &frame, &frame_len, &port) < 0)
				return -1;
			dst_inject(mv, frame, frame_len, port);
			continue;
		}
		err = sb_import_add_wire(mv->im, item, len, -1, msg, sizeof(msg));
		if (err != 0) {
			send_ack(mv, err, msg, false);
			dst_finish(mv, msg);
			return 0;
		}
	}
	if (rc < 0)
		return -1;
	if (body == MBX__V1__PEER_MESSAGE__BODY_PACKETS) {
		if (dst_inject_pending(mv) > 0)
			event_active(mv->tick, EV_TIMEOUT, 0);
		return 0;
	}
	rc = sb_import_run(mv->im, msg, sizeof(msg));
	MOVE_TRACE(mv, "state frame in");
	if (rc < 0) {
		send_ack(mv, -rc, msg, false);
		dst_finish(mv, msg);
	}
	return 0;
}

static void
dst_on_message(struct move *mv, const Mbx__V1__PeerMessage *m)
{
	char msg[256];

	switch (m->body_case) {
	case MBX__V1__PEER_MESSAGE__BODY_STATE_DONE:
		mv->flows = m->state_done->flows;
		MOVE_TRACE(mv, "state in (%" PRIu64 " flows)", mv->flows);
		send_ack(mv, 0, NULL, false);
		mv->state_acked = true;
		/* without order to keep, what arrived directly goes as soon as the state is in */
		if (mv->guarantee != MBX__V1__GUARANTEE__GUARANTEE_LOSS_FREE_ORDER_PRESERVING)
			dst_release(mv);
		return;
	case MBX__V1__PEER_MESSAGE__BODY_END: {
		uint64_t deadline = rte_get_timer_cycles() + rte_get_timer_hz();

		MOVE_TRACE(mv, "end");
		/* every redirected packet is with its worker before the held ones are released */
		while (dst_inject_pending(mv) > 0 && rte_get_timer_cycles() < deadline)
			rte_delay_us_sleep(10); /* the workers drain their rings */
		mv->dropped += mv->pend_tail - mv->pend_head;
		mv->ended = true;
		dst_release(mv);
		send_ack(mv, 0, NULL, true);
		MOVE_LOG(INFO,
			 "move %" PRIu64 ": %" PRIu64 " flows in, %" PRIu64 " redirected, %" PRIu64
			 " held",
			 mv->id, mv->flows, mv->redirected, mv->buffered);
		dst_finish(mv, NULL);
		return;
	}
	case MBX__V1__PEER_MESSAGE__BODY_ABORT:
		snprintf(msg, sizeof(msg), "the source took the flows back: %s", m->abort->reason);
		mv->state_acked = false; /* undo the import */
		dst_finish(mv, msg);
		return;
	default:
		dst_finish(mv, "unexpected message on the peer stream");
	}
}

static void src_tick(evutil_socket_t fd, short what, void *arg);

/*
 * The next step after the loop polled its sockets (a timer, even of 0 µs:
 * a callback that activated itself would run again before any I/O).
 */
static void
src_again(struct move *mv, long us)
{
	struct timeval tv = {.tv_sec = 0, .tv_usec = us};

	evtimer_add(mv->tick, &tv);
}

static void
src_on_message(struct move *mv, const Mbx__V1__PeerMessage *m)
{
	const Mbx__V1__PeerAck *ack = m->ack;

	if (m->body_case != MBX__V1__PEER_MESSAGE__BODY_ACK || ack == NULL) {
		src_finish(mv, EPROTO, "unexpected message from the destination");
		return;
	}
	if (ack->status != NULL && ack->status->code != 0) {
		char why[320];

		snprintf(why, sizeof(why), "the destination refused the state: %s",
			 ack->status->message);
		src_finish(mv, ack->status->code, why);
		return;
	}
	MOVE_TRACE(mv, "ack%s", ack->end ? " of the end" : "");
	if (!ack->end && mv->step == SRC_WAIT_STATE) {
		/* the destination has the flows: no rollback from here on */
		mv->tsc_state = rte_get_timer_cycles();
		if (!mv->copy) {
			/* they live on here, redirected, until deleted slice by slice */
			mv->deleting = true;
			mv->worker = 0;
			mv->del = (struct mbx_export){.filter = mv->filter,
						      .nf = -1,
						      .del = true,
						      .max_slots = SLICE_SLOTS,
						      .max_flows = SLICE_FLOWS};
		}
		mv->step = SRC_STREAM;
		report(mv, MBX__V1__MOVE_PHASE__MOVE_PHASE_STATE_SENT, false, 0, NULL);
		/* after the loop wrote STATE_SENT out: the controller reroutes meanwhile */
		src_again(mv, 0);
		return;
	}
	if (ack->end && mv->step == SRC_WAIT_END) {
		mv->buffered = ack->buffered;
		mv->dropped += ack->dropped;
		mv->end_acked = true;
		event_del(mv->deadline); /* the flows are the destination's: nothing can fail now */
		if (!mv->deleting)
			src_finish(mv, 0, NULL);
		return;
	}
	src_finish(mv, EPROTO, "acknowledgement out of turn");
}

/* The frames in c's input, each to its move, until one ends the stream. */
static void
peer_read_frames(struct peer_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	while (!c->closing) {
		uint8_t hdr[MBX_FRAME_HDR_LEN];
		size_t avail = evbuffer_get_length(in), len = 0;
		const uint8_t *frame = NULL, *payload = NULL, *from;
		Mbx__V1__PeerMessage *m = NULL;
		struct move *mv;
		uint32_t body;
		bool bad;
		long n;

		if (avail < MBX_FRAME_HDR_LEN)
			return;
		evbuffer_copyout(in, hdr, sizeof(hdr));
		n = mbx_frame_peek(hdr, sizeof(hdr), PEER_FRAME_MAX);
		if (n > 0 && avail < (size_t)n)
			return;
		if (n > 0)
			frame = evbuffer_pullup(in, n);
		mv = c->mv;
		/* the frame is read in place, and drained once its message is done with */
		bad = frame == NULL ||
		      mbx_wire_envelope_payload(frame + MBX_FRAME_HDR_LEN,
						(size_t)n - MBX_FRAME_HDR_LEN, &payload,
						&len) < 0 ||
		      mbx_wire_peer_body(payload, len, &body, &from) < 0;
		if (!bad && mv != NULL && mv->role == ROLE_DST &&
		    (body == MBX__V1__PEER_MESSAGE__BODY_STATE ||
		     body == MBX__V1__PEER_MESSAGE__BODY_PACKETS)) {
			/* the bulk of a move, read without protobuf-c */
			bad = dst_on_items(mv, body, from, payload + len) < 0;
		} else if (!bad) {
			m = mbx__v1__peer_message__unpack(NULL, len, payload);
			bad = m == NULL;
		}
		if (frame != NULL)
			evbuffer_drain(in, (size_t)n);
		if (bad) {
			MOVE_LOG(WARNING, "peer stream: bad frame; closing it");
			if (mv != NULL && mv->role == ROLE_SRC)
				src_finish(mv, EPROTO, "bad frame from the destination");
			else if (mv != NULL)
				dst_finish(mv, "bad frame from the source");
			else
				c->closing = true;
			return;
		}
		if (m == NULL) {
			/* read from the wire above */
		} else if (mv == NULL) {
			/* a new stream: its first message names the move it belongs to */
			mv = m->body_case == MBX__V1__PEER_MESSAGE__BODY_HELLO
				     ? find_move(m->move_id, ROLE_DST)
				     : NULL;
			if (mv == NULL || mv->conn != NULL) {
				MOVE_LOG(WARNING, "peer stream for unexpected move %" PRIu64,
					 m->move_id);
				mbx__v1__peer_message__free_unpacked(m, NULL);
				c->closing = true;
				return;
			}
			mv->conn = c;
			c->mv = mv;
			mv->tsc_connected = rte_get_timer_cycles();
			MOVE_TRACE(mv, "the source is here");
		} else if (mv->role == ROLE_SRC) {
			src_on_message(mv, m);
		} else {
			dst_on_message(mv, m);
		}
		if (c->mv != NULL && c->mv->role == ROLE_DST)
			event_add(c->mv->deadline, &c->mv->timeout); /* the source is alive */
		if (m != NULL)
			mbx__v1__peer_message__free_unpacked(m, NULL);
	}
}

static void
on_peer_read(struct bufferevent *bev, void *arg)
{
	struct peer_conn *c = arg;

	c->busy = true;
	sb_read_pending(bev, PEER_IO_MAX);
	peer_read_frames(c);
	c->busy = false;
	/* a move that ended here released c: free it unless output is queued */
	if (c->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_free(c);
}

static void
on_peer_write(struct bufferevent *bev, void *arg)
{
	struct peer_conn *c = arg;

	if (c->closing) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			conn_free(c);
		return;
	}
	/* below the low watermark: a paused source goes on */
	if (c->mv != NULL && c->mv->role == ROLE_SRC)
		event_active(c->mv->tick, EV_TIMEOUT, 0);
}

static void
on_peer_event(struct bufferevent *bev, short what, void *arg)
{
	struct peer_conn *c = arg;
	struct move *mv = c->mv;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		/* what the source wrote meanwhile (hello, state) goes out now; a move that
		 * failed meanwhile left its ABORT behind them (conn_release) */
		if (mv != NULL) {
			mv->tsc_connected = rte_get_timer_cycles();
			MOVE_TRACE(mv, "connected");
		}
		return;
	}
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	/* the stream is over: end its move, then close it whatever is queued */
	c->busy = true;
	if (mv != NULL && mv->role == ROLE_DST)
		dst_finish(mv, "the source closed the peer stream before the end");
	else if (mv != NULL && mv->end_acked) {
		/* the destination is done with the stream; the deletion goes on without it */
		mv->conn = NULL;
		c->mv = NULL;
		if (!mv->deleting)
			src_finish(mv, 0, NULL);
	} else if (mv != NULL)
		src_finish(
			mv, ECONNRESET,
			mv->tsc_connected == 0 ? "the destination is unreachable"
			: mv->step <= SRC_WAIT_STATE
				? "the destination closed the peer stream; the flows stay here"
				: "the destination closed the peer stream after taking the state");
	conn_free(c);
}

static struct peer_conn *
conn_new(struct bufferevent *bev, struct move *mv)
{
	struct peer_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->bev = bev;
	c->mv = mv;
	bufferevent_setcb(bev, on_peer_read, on_peer_write, on_peer_event, c);
	bufferevent_setwatermark(bev, EV_WRITE, PEER_OUT_LOW, 0);
	/* a loop turn may block on a worker for a slice: it should write more than libevent's
	 * 16 KiB (reads: sb_read_pending(), libevent 2.1 reads 4 KiB whatever it is told) */
	bufferevent_set_max_single_write(bev, PEER_IO_MAX);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	return c;
}

static void
on_peer_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
	       void *arg)
{
	struct bufferevent *bev;

	sb_nodelay(fd);
	bev = bufferevent_socket_new(sb_base(), fd, BEV_OPT_CLOSE_ON_FREE);
	(void)l;
	(void)sa;
	(void)salen;
	(void)arg;
	if (bev == NULL || conn_new(bev, NULL) == NULL) {
		if (bev != NULL)
			bufferevent_free(bev);
		else
			evutil_closesocket(fd);
	}
}

/* Source: records to PeerState frames of at most about STATE_BYTES. */
static int
src_send_records(struct move *mv, const uint8_t *buf, size_t used)
{
	const struct mbx_chain *ch = &sb_dp()->chain;
	const struct mbx_state_rec *rec = (const void *)buf, *end = (const void *)(buf + used);

	while (rec < end) {
		const struct mbx_state_rec *first = rec;
		size_t items = 0;
		uint8_t *start, *o;

		for (; rec < end; rec = mbx_state_rec_next(rec)) {
			const struct mbx_nf_ops *ops = ch->nf[rec->nf].ops;
			size_t n = mbx_wire_len_size(
				1, sb_chunk_size(rec, ops->name, ops->state_version));

			if (items > 0 && items + n > STATE_BYTES)
				break;
			items += n;
		}
		o = peer_msg_begin(mv, MBX__V1__PEER_MESSAGE__BODY_STATE, items, &start);
		if (o == NULL)
			return -ENOMEM;
		for (const struct mbx_state_rec *r = first; r < rec; r = mbx_state_rec_next(r)) {
			const struct mbx_nf_ops *ops = ch->nf[r->nf].ops;
			size_t n = sb_chunk_size(r, ops->name, ops->state_version);

			o = sb_chunk_put(mbx_wire_put_len_hdr(o, 1, n), r, ops->name,
					 ops->state_version);
			mv->state_bytes += r->state_len;
			mv->chunks++;
		}
		if (peer_send_payload(mv->conn, mv->id, start, (size_t)(o - start)) < 0)
			return -ENOMEM;
	}
	return 0;
}

static bool
moves_scope(int nf, enum mbx_scope scope)
{
	uint8_t s = sb_dp()->chain.nf[nf].ops->move_scopes;

	if (s == 0)
		s = 1u << MBX_SCOPE_PER_FLOW | 1u << MBX_SCOPE_MULTI_FLOW;
	return s & (1u << scope);
}

/* A worker's multi-flow pieces, then its first slice of flows: one request. */
struct export_first {
	struct mbx_export *x;
	uint32_t multi; /* bit per chain index: the NFs whose multi-flow state moves */
};

static int
export_first(struct mbx_worker *w, void *arg)
{
	struct export_first *ef = arg;
	struct mbx_export *x = ef->x;
	struct mbx_multi_get g = {.filter = x->filter};
	size_t used = 0;
	int rc;

	for (int nf = 0; nf < w->dp->chain.n; nf++) {
		if (!(ef->multi & 1u << nf))
			continue;
		g.nf = nf;
		g.buf = x->buf + used;
		g.cap = x->cap - used;
		rc = mbx_state_multi_get(w, &g);
		if (rc < 0)
			return rc;
		used += g.used;
	}
	x->buf += used;
	x->cap -= used;
	rc = mbx_state_export_slice(w, x);
	x->buf -= used;
	x->cap += used;
	x->used += used;
	/* no room left for a flow after the multi-flow pieces: the next slice has it */
	return rc == -EMSGSIZE && used > 0 ? 0 : rc;
}

/* Source, SRC_EXPORT: one slice of state onto the peer stream. @return 0, or -errno. */
static int
src_export_step(struct move *mv)
{
	Mbx__V1__PeerMessage m = MBX__V1__PEER_MESSAGE__INIT;
	Mbx__V1__PeerStateDone done = MBX__V1__PEER_STATE_DONE__INIT;
	struct mbx_dp *dp = sb_dp();
	int rc;

	if (mv->stage == MBX_SCOPE_ALL_FLOWS) {
		long n = 0;

		for (; mv->nf < dp->chain.n && n == 0; mv->nf++)
			if (moves_scope(mv->nf, MBX_SCOPE_ALL_FLOWS))
				n = mbx_state_all_get(dp, mv->nf, mv->x.buf, STATE_BYTES);
		if (n < 0)
			return (int)n;
		if (n > 0)
			return src_send_records(mv, mv->x.buf, (size_t)n);
		mv->stage = MBX_SCOPE_PER_FLOW;
		mv->worker = 0;
		mv->x.cursor = 0;
		return 0;
	}
	if (mv->worker < dp->nb_workers) {
		struct mbx_worker *w = dp->workers[mv->worker];
		struct export_first ef = {.x = &mv->x};

		/* each worker's multi-flow pieces (a NAT host's ports) precede its flows */
		for (int nf = 0; !mv->multi_sent && nf < dp->chain.n; nf++)
			if (moves_scope(nf, MBX_SCOPE_MULTI_FLOW))
				ef.multi |= 1u << nf;
		rc = !mv->multi_sent ? mbx_ctrl_call(w, export_first, &ef)
				     : mbx_ctrl_call(w, mbx_state_export_slice, &mv->x);
		if (rc < 0)
			return rc;
		mv->multi_sent = true;
		MOVE_TRACE(mv, "worker %u: %u flows exported", mv->worker, mv->x.flows);
		mv->flows += mv->x.flows;
		rc = src_send_records(mv, mv->x.buf, mv->x.used);
		if (mv->x.cursor == UINT32_MAX) {
			mv->worker++;
			mv->x.cursor = 0;
			mv->multi_sent = false;
		}
		return rc;
	}
	done.flows = mv->flows;
	MOVE_TRACE(mv, "%" PRIu64 " flows, %" PRIu64 " chunks sent", mv->flows, mv->chunks);
	m.move_id = mv->id;
	m.body_case = MBX__V1__PEER_MESSAGE__BODY_STATE_DONE;
	m.state_done = &done;
	mv->step = SRC_WAIT_STATE;
	return peer_send(mv->conn, &m);
}

/* Bytes of PeerPacket @p m (frame 1, in_port 2). */
static size_t
packet_size(struct rte_mbuf *m)
{
	return mbx_wire_len_size(1, rte_pktmbuf_data_len(m)) +
	       mbx_wire_uint_size(2, mbx_pkt(m)->in_port);
}

/* Source, SRC_STREAM: a frame of the ring onto the peer stream, markers counted.
 * @return what it took off the ring. */
static unsigned int
src_stream_step(struct move *mv)
{
	struct mbx_dp *dp = sb_dp();
	struct rte_mbuf *held[PKTS_PER_FRAME];
	void *e[PKTS_PER_FRAME];
	unsigned int n, np = 0;
	size_t items = 0;
	uint8_t *start, *o;

	n = rte_ring_sc_dequeue_burst(mv->rt.ring, e, PKTS_PER_FRAME, NULL);
	for (unsigned int i = 0; i < n; i++) {
		uint16_t w, idx, count;

		if (mbx_move_token(e[i], &w, &idx, &count)) {
			if (count > 0 && count <= MARKERS_MAX && idx < count &&
			    w < dp->nb_workers) {
				mv->marker_count = count;
				mv->markers_seen[w] |= 1ULL << idx;
				if (mv->markers_seen[w] ==
				    (count == 64 ? ~0ULL : (1ULL << count) - 1))
					mv->workers_marked |= 1u << w;
			}
			continue;
		}
		held[np] = e[i];
		items += mbx_wire_len_size(1, packet_size(held[np++]));
	}
	if (np == 0)
		return n;
	o = peer_msg_begin(mv, MBX__V1__PEER_MESSAGE__BODY_PACKETS, items, &start);
	for (unsigned int i = 0; o != NULL && i < np; i++) {
		uint16_t len = rte_pktmbuf_data_len(held[i]);
		uint8_t port = mbx_pkt(held[i])->in_port;

		o = mbx_wire_put_len_hdr(o, 1, packet_size(held[i]));
		o = mbx_wire_put_bytes(o, 1, rte_pktmbuf_mtod(held[i], const uint8_t *), len);
		o = mbx_wire_put_uint(o, 2, port);
	}
	if (o == NULL || peer_send_payload(mv->conn, mv->id, start, (size_t)(o - start)) < 0)
		mv->dropped += np; /* out of memory: counted, as a full buffer */
	else
		mv->redirected += np;
	rte_pktmbuf_free_bulk(held, np);
	return n;
}

static void
src_send_end(struct move *mv)
{
	Mbx__V1__PeerMessage m = MBX__V1__PEER_MESSAGE__INIT;
	Mbx__V1__PeerEnd end = MBX__V1__PEER_END__INIT;

	end.redirected = mv->redirected;
	m.move_id = mv->id;
	m.body_case = MBX__V1__PEER_MESSAGE__BODY_END;
	m.end = &end;
	peer_send(mv->conn, &m);
	mv->step = SRC_WAIT_END;
}

/* Source: the workers put packets or a token on the ring while the loop slept. */
static void
src_woken(evutil_socket_t fd, short what, void *arg)
{
	struct move *mv = arg;
	uint64_t v;
	ssize_t rd = read(fd, &v, sizeof(v));

	(void)rd;
	(void)what;
	event_active(mv->tick, EV_TIMEOUT, 0);
}

static void
src_tick(evutil_socket_t fd, short what, void *arg)
{
	struct move *mv = arg;
	uint32_t all = (uint32_t)((1ULL << sb_dp()->nb_workers) - 1);
	int rc;

	(void)fd;
	(void)what;
	atomic_store_explicit(&mv->rt.wake.asleep, false, memory_order_relaxed);
	if (mv->step == SRC_WAIT_END) {
		/* END is out (the stream may be closed already); the moved flows go on
		 * being deleted here, a slice per turn of the loop */
		if (mv->deleting && !src_delete_step(mv))
			src_again(mv, 0);
		else if (mv->end_acked)
			src_finish(mv, 0, NULL);
		return;
	}
	if (mv->conn == NULL)
		return;
	if (atomic_load(&mv->rt.overflow) > 0 && mv->step <= SRC_WAIT_STATE) {
		char why[128];

		snprintf(why, sizeof(why),
			 "the redirect buffer filled (%" PRIu64
			 " packets dropped so far); rolled back",
			 (uint64_t)atomic_load(&mv->rt.overflow));
		src_finish(mv, ENOBUFS, why);
		return;
	}
	if (peer_congested(mv) || mv->step == SRC_WAIT_STATE) {
		/* on_peer_write or the ack wakes us; meanwhile watch the buffer */
		src_again(mv, SRC_WAIT_US);
		return;
	}
	switch (mv->step) {
	case SRC_EXPORT: {
		/* steps for 1/EXPORT_TICKS_PER_S s; then the loop writes the stream, watches the
		 * ring */
		uint64_t until = rte_get_timer_cycles() + rte_get_timer_hz() / EXPORT_TICKS_PER_S;

		do
			rc = src_export_step(mv);
		while (rc == 0 && mv->step == SRC_EXPORT && !peer_congested(mv) &&
		       rte_get_timer_cycles() < until);
		if (rc < 0) {
			src_finish(mv, -rc, "exporting the state failed");
			return;
		}
		src_again(mv, 0);
		return;
	}
	case SRC_STREAM:
		/* the whole ring before a delete slice: the markers' tokens are behind it */
		for (int i = 0; i < STREAM_FRAMES && src_stream_step(mv) == PKTS_PER_FRAME &&
				!peer_congested(mv);
		     i++)
			;
		if (mv->tsc_marked == 0 && mv->workers_marked == all) {
			MOVE_TRACE(mv, "marked");
			mv->tsc_marked = rte_get_timer_cycles();
			report(mv, MBX__V1__MOVE_PHASE__MOVE_PHASE_MARKED, false, 0, NULL);
		}
		/* copies end with the state, moves when the old path is empty (the marker);
		 * the rule stays until the flows are gone here, so that a late packet of a
		 * moved flow cannot start new state here (it is dropped, counted) */
		if (mv->copy || mv->workers_marked == all) {
			src_stream_step(mv); /* what the workers put behind their tokens */
			src_send_end(mv);
			if (mv->deleting)
				src_again(mv, 0);
			return;
		}
		if (mv->deleting && !src_delete_step(mv)) {
			src_again(mv, 0); /* the ring streams between the slices */
			return;
		}
		/* an empty ring: wait until the workers put something on it (src_woken) */
		atomic_store(&mv->rt.wake.asleep, true);
		src_again(mv, !rte_ring_empty(mv->rt.ring) ? 0
			      : mv->woken != NULL	   ? SRC_WAIT_US
							   : SRC_IDLE_US);
		return;
	default:
		return;
	}
}

/*
 * Source: while the connection is being made, the hello and the state queue
 * up behind it; redirect (or drop) the filter's packets before the first
 * flow is exported.
 */
static void
src_begin(struct move *mv)
{
	Mbx__V1__PeerMessage m = MBX__V1__PEER_MESSAGE__INIT;
	Mbx__V1__PeerHello hello = MBX__V1__PEER_HELLO__INIT;
	struct mbx_pb_filter f;

	sb_nodelay(bufferevent_getfd(mv->conn->bev));
	hello.filter = mbx_filter_to_pb(&mv->filter, &f);
	hello.guarantee = mv->guarantee;
	hello.copy = mv->copy;
	m.move_id = mv->id;
	m.body_case = MBX__V1__PEER_MESSAGE__BODY_HELLO;
	m.hello = &hello;
	peer_send(mv->conn, &m);
	report(mv, MBX__V1__MOVE_PHASE__MOVE_PHASE_STARTED, false, 0, NULL);
	if (!mv->copy) {
		bool none = mv->guarantee == MBX__V1__GUARANTEE__GUARANTEE_NONE;
		char msg[128];

		mv->drops_before = mbx_dp_stat(sb_dp(), MBX_WSTAT_EV_DROPPED);
		mv->rule = sb_rule_add(none ? MBX_ACTION_DROP : MBX_ACTION_REDIRECT, &mv->filter, 0,
				       none ? NULL : mbx_move_redirect, &mv->rt, msg, sizeof(msg));
		if (mv->rule == 0) {
			src_finish(mv, ENOSPC, msg);
			return;
		}
	}
	mv->step = SRC_EXPORT;
	report(mv, MBX__V1__MOVE_PHASE__MOVE_PHASE_REDIRECTING, false, 0, NULL);
	event_active(mv->tick, EV_TIMEOUT, 0);
}

static void
on_client_gone(struct sb_call *call, void *arg)
{
	struct move *mv = arg;

	(void)call;
	/* the move goes on to its end; nobody listens any more */
	for (int i = 0; i < MBX_MOVES_MAX; i++)
		if (mv_g.moves[i] == mv)
			mv->call = NULL;
}

static struct move *
move_new(uint64_t id, enum role role, const Mbx__V1__Filter *filter, uint32_t timeout_ms,
	 struct sb_call *call, int *err, const char **why)
{
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	struct move *mv;
	int slot = -1;

	for (int i = 0; i < MBX_MOVES_MAX; i++)
		if (mv_g.moves[i] == NULL)
			slot = i;
	*err = 0;
	if (slot < 0) {
		*err = EBUSY;
		*why = "too many moves at once";
		return NULL;
	}
	mv = calloc(1, sizeof(*mv));
	if (mv == NULL) {
		*err = ENOMEM;
		*why = "out of memory";
		return NULL;
	}
	mv->id = id;
	mv->role = role;
	mv->call = call;
	if (mbx_filter_from_pb(filter, &mv->filter) < 0) {
		*err = EINVAL;
		*why = "bad filter";
	} else if (find_move(id, role) != NULL || overlaps(&mv->filter)) {
		*err = EBUSY;
		*why = "a move of overlapping flows is running";
	}
	if (*err != 0) {
		free(mv);
		return NULL;
	}
	mv->rt.wake.fd = -1;
	mv->tick = event_new(sb_base(), -1, 0, role == ROLE_SRC ? src_tick : dst_tick, mv);
	mv->deadline = event_new(sb_base(), -1, 0, on_deadline, mv);
	mv->timeout = tv;
	event_add(mv->deadline, &tv);
	mv->tsc_start = rte_get_timer_cycles();
	{
		struct timeval now;

		gettimeofday(&now, NULL);
		mv->start_unix_us = (uint64_t)now.tv_sec * 1000000 + (uint64_t)now.tv_usec;
	}
	mv_g.moves[slot] = mv;
	return mv;
}

static int
expect_move(struct sb_call *call, const uint8_t *payload, size_t len)
{
	Mbx__V1__ExpectMoveRequest *req = mbx__v1__expect_move_request__unpack(NULL, len, payload);
	Mbx__V1__ExpectMoveResponse r = MBX__V1__EXPECT_MOVE_RESPONSE__INIT;
	Mbx__V1__Status st = MBX__V1__STATUS__INIT;
	const char *why = NULL;
	char msg[128];
	struct move *mv;
	int err;

	if (req == NULL)
		return -EBADMSG;
	mv = move_new(req->move_id, ROLE_DST, req->filter, DEFAULT_TIMEOUT_MS, NULL, &err, &why);
	if (mv != NULL) {
		mv->guarantee = req->guarantee;
		mv->copy = req->copy;
		mv->im = sb_import_new();
		if (mv->im == NULL) {
			err = ENOMEM;
			why = "out of memory";
		} else if (!mv->copy) {
			/* hold what arrives directly until the flows are here */
			mv->buffer_rule =
				sb_rule_add(MBX_ACTION_BUFFER, &mv->filter,
					    req->buffer_limit ? req->buffer_limit : DEFAULT_LIMIT,
					    NULL, NULL, msg, sizeof(msg));
			if (mv->buffer_rule == 0) {
				err = ENOSPC;
				why = msg;
			}
		}
		if (err != 0)
			forget(mv);
	}
	mbx__v1__expect_move_request__free_unpacked(req, NULL);
	if (err != 0)
		return sb_reply_error(call, err, "%s", why);
	r.status = &st;
	r.peer_addr = mv_g.addr;
	sb_reply(call, &r.base, false);
	return 0;
}

static int
start_move(struct sb_call *call, const uint8_t *payload, size_t len)
{
	Mbx__V1__StartMoveRequest *req = mbx__v1__start_move_request__unpack(NULL, len, payload);
	struct sockaddr_storage ss;
	int salen = sizeof(ss), err;
	struct bufferevent *bev;
	const char *why = NULL;
	uint32_t limit, room;
	char name[RTE_RING_NAMESIZE];
	struct move *mv;

	if (req == NULL)
		return -EBADMSG;
	if (evutil_parse_sockaddr_port(req->peer_addr, (struct sockaddr *)&ss, &salen) < 0) {
		mbx__v1__start_move_request__free_unpacked(req, NULL);
		return sb_reply_error(call, EINVAL, "bad peer address '%s'", req->peer_addr);
	}
	mv = move_new(req->move_id, ROLE_SRC, req->filter,
		      req->timeout_ms ? req->timeout_ms : DEFAULT_TIMEOUT_MS, call, &err, &why);
	if (mv == NULL) {
		mbx__v1__start_move_request__free_unpacked(req, NULL);
		return sb_reply_error(call, err, "%s", why);
	}
	mv->guarantee = req->guarantee;
	mv->copy = req->copy;
	mv->rt.id = mv->id;
	mv->stage = MBX_SCOPE_ALL_FLOWS;
	mv->x.filter = mv->filter;
	mv->x.nf = -1;
	/* the flows stay until the destination has them (no rollback to do) */
	mv->x.del = false;
	mv->x.max_slots = SLICE_SLOTS;
	mv->x.max_flows = SLICE_FLOWS;
	mv->x.cap = STATE_BYTES;
	mv->x.buf = malloc(STATE_BYTES);
	/*
	 * The buffer holds packet buffers of the pool RX takes from: it may use
	 * half of what is free, never so many that RX starves and every flow,
	 * moved or not, loses packets. Beyond, the move fails (ENOBUFS). Only a
	 * limit the caller asked for is worth a warning when it is cut.
	 */
	room = RTE_MAX(rte_mempool_avail_count(sb_dp()->mp) / 2, 1u);
	limit = req->redirect_limit ? req->redirect_limit : RTE_MIN(DEFAULT_LIMIT, room);
	if (limit > room) {
		MOVE_LOG(WARNING,
			 "move %" PRIu64 ": redirect buffer of %u packets cut to %u, half the free "
			 "packet buffers (more with --mbufs)",
			 mv->id, limit, room);
		limit = room;
	}
	mbx__v1__start_move_request__free_unpacked(req, NULL);
	snprintf(name, sizeof(name), "mbx_mv_%" PRIu64, ++mv_g.seq);
	mv->rt.ring =
		rte_ring_create(name, limit, rte_socket_id(), RING_F_SC_DEQ | RING_F_EXACT_SZ);
	if (mv->x.buf == NULL || mv->rt.ring == NULL || mbx_move_rt_add(&mv->rt) < 0) {
		rte_ring_free(mv->rt.ring);
		mv->rt.ring = NULL;
		forget(mv);
		return sb_reply_error(call, ENOMEM, "no memory for the move");
	}
	mv->rt_added = true;
	/* without an eventfd the loop polls the ring every SRC_IDLE_US */
	mbx_wake_init(&mv->rt.wake);
	if (mv->rt.wake.fd >= 0) {
		mv->woken =
			event_new(sb_base(), mv->rt.wake.fd, EV_READ | EV_PERSIST, src_woken, mv);
		if (mv->woken != NULL)
			event_add(mv->woken, NULL);
	}
	sb_call_keep(call, on_client_gone, mv);
	bev = bufferevent_socket_new(sb_base(), -1, BEV_OPT_CLOSE_ON_FREE);
	mv->conn = bev != NULL ? conn_new(bev, mv) : NULL;
	if (mv->conn == NULL || bufferevent_socket_connect(bev, (struct sockaddr *)&ss, salen) < 0)
		src_finish(mv, EHOSTUNREACH, "the destination is unreachable");
	else
		src_begin(mv);
	return 0;
}

int
sb_move_init(const char *addr)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[64] = "127.0.0.1", port[16] = "0", h[INET6_ADDRSTRLEN];
	const char *colon;

	if (addr != NULL) {
		colon = strrchr(addr, ':');
		if (colon == NULL || colon == addr || (size_t)(colon - addr) >= sizeof(host)) {
			MOVE_LOG(ERR, "--peer %s: expected HOST:PORT", addr);
			return -EINVAL;
		}
		snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
		snprintf(port, sizeof(port), "%s", colon + 1);
	}
	if (getaddrinfo(host, port, &hints, &res) != 0) {
		MOVE_LOG(ERR, "--peer %s:%s: cannot resolve", host, port);
		return -EINVAL;
	}
	mv_g.listener = evconnlistener_new_bind(sb_base(), on_peer_accept, NULL,
						LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
							LEV_OPT_CLOSE_ON_EXEC,
						64, res->ai_addr, (int)res->ai_addrlen);
	freeaddrinfo(res);
	if (mv_g.listener == NULL) {
		MOVE_LOG(ERR, "--peer %s:%s: %s", host, port, strerror(errno));
		return -errno;
	}
	getsockname(evconnlistener_get_fd(mv_g.listener), (struct sockaddr *)&ss, &sl);
	if (ss.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, h, sizeof(h));
		snprintf(mv_g.addr, sizeof(mv_g.addr), "[%s]:%u", h,
			 ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
	} else {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, h, sizeof(h));
		snprintf(mv_g.addr, sizeof(mv_g.addr), "%s:%u", h,
			 ntohs(((struct sockaddr_in *)&ss)->sin_port));
	}
	mbx_marker_set_hook(mbx_move_marker);
	MOVE_LOG(NOTICE, "peer listener on %s", mv_g.addr);
	return 0;
}

void
sb_move_fini(void)
{
	for (int i = 0; i < MBX_MOVES_MAX; i++) {
		struct move *mv = mv_g.moves[i];

		if (mv == NULL)
			continue;
		if (mv->role == ROLE_SRC && mv->end_acked)
			src_finish(mv, 0, NULL); /* done but for deleting its copies */
		else if (mv->role == ROLE_SRC)
			src_finish(mv, ECANCELED, "mbxd is stopping");
		else
			dst_finish(mv, "mbxd is stopping");
	}
	mbx_marker_set_hook(NULL);
	if (mv_g.listener != NULL)
		evconnlistener_free(mv_g.listener);
	mv_g.listener = NULL;
}

const struct sb_method sb_move_methods[] = {
	{"/mbx.v1.Move/ExpectMove", expect_move},
	{"/mbx.v1.Move/StartMove", start_move},
	{NULL, NULL},
};
