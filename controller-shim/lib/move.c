/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libmbxctl: the move orchestration (see mbxctl.h and docs/migration.md).
 *
 * A move is three calls: ExpectMove on the destination, StartMove on the
 * source (a stream of phases), and, when the source reports STATE_SENT,
 * Steer.SetRoute with the move's id as marker. In controller mode the peer
 * stream goes through a relay in this process (a thread) that plays
 * OpenNF's controller: it collects the state, then puts it; it holds the
 * redirected packets until the destination has the state, then sends them
 * on one per message (relay_frame).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "mbx/v1/move.pb-c.h"
#include "mbx/v1/steer.pb-c.h"
#include "mbx_frame.h"
#include "mbxctl.h"

#define RELAY_FRAME_MAX (64u << 20)

/* A frame the relay holds back, raw, in arrival order. */
struct held {
	uint8_t *buf;
	size_t len;
};

struct relay {
	int listen_fd;
	char dst[128];
	char addr[64];
	pthread_t thread;
	uint64_t packets; /* redirected packets that passed through */
	uint64_t frames;
	int err;
	/* OpenNF's controller: it gets the whole state before it puts it, and
	 * holds the packets until the destination has the state */
	struct held *state, *pkts;
	size_t n_state, cap_state, n_pkts, cap_pkts;
	bool state_acked;
};

static int
read_full(int fd, uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, p, n);

		if (r <= 0)
			return r == 0 ? -ECONNRESET : -errno;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int
write_full(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w <= 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
hold(struct held **q, size_t *n, size_t *cap, uint8_t *buf, size_t len)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		struct held *b = realloc(*q, c * sizeof(*b));

		if (b == NULL)
			return -ENOMEM;
		*q = b;
		*cap = c;
	}
	(*q)[(*n)++] = (struct held){buf, len};
	return 0;
}

/* Send (unless @to is -1) and free what was held, in order. */
static int
flush(struct held *q, size_t *n, int to)
{
	int rc = 0;

	for (size_t i = 0; i < *n; i++) {
		if (rc == 0 && to >= 0)
			rc = write_full(to, q[i].buf, q[i].len);
		free(q[i].buf);
	}
	*n = 0;
	return rc;
}

/* Hold message @m as one frame. */
static int
hold_msg(struct held **q, size_t *n, size_t *cap, const Mbx__V1__PeerMessage *m,
	 const Mbx__V1__Envelope *env)
{
	Mbx__V1__Envelope e = *env;
	size_t plen = mbx__v1__peer_message__get_packed_size(m), flen;
	uint8_t *payload = malloc(plen + 1), *frame = NULL;
	int rc = -ENOMEM;

	if (payload != NULL) {
		mbx__v1__peer_message__pack(m, payload);
		e.payload = (ProtobufCBinaryData){plen, payload};
		flen = mbx_frame_size(&e);
		frame = malloc(flen);
	}
	if (frame != NULL)
		rc = hold(q, n, cap, frame, mbx_frame_pack(&e, frame));
	free(payload);
	return rc;
}

/*
 * Hold each flow's state or each packet of @m as a message of its own, as
 * OpenNF's controller puts state per flow and re-injects packets one
 * packet-out at a time.
 */
static int
hold_each(struct relay *r, Mbx__V1__PeerMessage *m, const Mbx__V1__Envelope *env)
{
	bool state = m->body_case == MBX__V1__PEER_MESSAGE__BODY_STATE;
	Mbx__V1__PeerState *st = m->state, st1 = MBX__V1__PEER_STATE__INIT;
	Mbx__V1__PeerPackets *pk = m->packets, pk1 = MBX__V1__PEER_PACKETS__INIT;
	size_t count = state ? st->n_chunks : pk->n_packets;
	int rc = 0;

	if (state) {
		m->state = &st1;
		st1.n_chunks = 1;
	} else {
		m->packets = &pk1;
		pk1.n_packets = 1;
	}
	for (size_t i = 0; i < count && rc == 0; i++) {
		if (state) {
			st1.chunks = &st->chunks[i];
			rc = hold_msg(&r->state, &r->n_state, &r->cap_state, m, env);
		} else {
			pk1.packets = &pk->packets[i];
			rc = hold_msg(&r->pkts, &r->n_pkts, &r->cap_pkts, m, env);
			r->packets++;
		}
	}
	if (state)
		m->state = st;
	else
		m->packets = pk;
	return rc;
}

/*
 * Read one frame from @from and act as OpenNF's controller would: state is
 * collected and put, flow by flow, after the source's STATE_DONE; redirected packets
 * wait in the controller until the destination acknowledges the state, then
 * go out one per message; END follows them.
 */
static int
relay_frame(struct relay *r, int from, int to, bool from_src)
{
	uint8_t hdr[MBX_FRAME_HDR_LEN], *buf;
	Mbx__V1__Envelope *env = NULL;
	Mbx__V1__PeerMessage *m = NULL;
	long n;
	int rc;

	rc = read_full(from, hdr, sizeof(hdr));
	if (rc < 0)
		return rc;
	n = mbx_frame_peek(hdr, sizeof(hdr), RELAY_FRAME_MAX);
	if (n <= 0)
		return -EPROTO;
	buf = malloc((size_t)n);
	if (buf == NULL)
		return -ENOMEM;
	memcpy(buf, hdr, sizeof(hdr));
	rc = read_full(from, buf + sizeof(hdr), (size_t)n - sizeof(hdr));
	if (rc == 0)
		env = mbx_frame_unpack(buf, (size_t)n);
	if (env != NULL)
		m = mbx__v1__peer_message__unpack(NULL, env->payload.len, env->payload.data);
	if (rc == 0 && m == NULL)
		rc = -EPROTO;
	r->frames++;
	if (rc < 0) {
		free(buf);
	} else if (!from_src) {
		/* the destination's acks go back at once; the state's frees the packets */
		rc = write_full(to, buf, (size_t)n);
		free(buf);
		if (rc == 0 && m->body_case == MBX__V1__PEER_MESSAGE__BODY_ACK && !m->ack->end &&
		    !r->state_acked) {
			r->state_acked = true;
			rc = flush(r->pkts, &r->n_pkts, from); /* from: the destination */
		}
	} else if (m->body_case == MBX__V1__PEER_MESSAGE__BODY_STATE) {
		rc = hold_each(r, m, env);
		free(buf);
	} else if (m->body_case == MBX__V1__PEER_MESSAGE__BODY_STATE_DONE) {
		rc = flush(r->state, &r->n_state, to);
		rc = rc == 0 ? write_full(to, buf, (size_t)n) : rc;
		free(buf);
	} else if (m->body_case == MBX__V1__PEER_MESSAGE__BODY_PACKETS) {
		rc = hold_each(r, m, env);
		free(buf);
		if (rc == 0 && r->state_acked)
			rc = flush(r->pkts, &r->n_pkts, to);
	} else if (m->body_case == MBX__V1__PEER_MESSAGE__BODY_END && !r->state_acked) {
		rc = hold(&r->pkts, &r->n_pkts, &r->cap_pkts, buf, (size_t)n);
	} else {
		rc = write_full(to, buf, (size_t)n);
		free(buf);
	}
	if (m != NULL)
		mbx__v1__peer_message__free_unpacked(m, NULL);
	if (env != NULL)
		mbx__v1__envelope__free_unpacked(env, NULL);
	return rc;
}

static int
dial_tcp(const char *addr)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	char host[64];
	const char *colon = strrchr(addr, ':');
	int fd;

	if (colon == NULL || (size_t)(colon - addr) >= sizeof(host))
		return -EINVAL;
	memcpy(host, addr, colon - addr);
	host[colon - addr] = '\0';
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		return -EINVAL;
	sin.sin_port = htons((uint16_t)atoi(colon + 1));
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	mbxctl_nodelay(fd);
	return fd;
}

static void *
relay_main(void *arg)
{
	struct relay *r = arg;
	int src = accept(r->listen_fd, NULL, NULL), dst = -1;
	struct pollfd p[2];

	if (src < 0 || (dst = dial_tcp(r->dst)) < 0) {
		r->err = src < 0 ? errno : -dst;
		if (src >= 0)
			close(src);
		return NULL;
	}
	mbxctl_nodelay(src);
	p[0] = (struct pollfd){.fd = src, .events = POLLIN};
	p[1] = (struct pollfd){.fd = dst, .events = POLLIN};
	for (;;) {
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if ((p[0].revents & (POLLIN | POLLHUP)) && relay_frame(r, src, dst, true) < 0)
			break;
		if ((p[1].revents & (POLLIN | POLLHUP)) && relay_frame(r, dst, src, false) < 0)
			break;
	}
	close(src);
	close(dst);
	return NULL;
}

static struct relay *
relay_start(const char *dst)
{
	struct relay *r = calloc(1, sizeof(*r));
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sin);

	if (r == NULL)
		return NULL;
	snprintf(r->dst, sizeof(r->dst), "%s", dst);
	r->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r->listen_fd < 0 || bind(r->listen_fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(r->listen_fd, 1) < 0 ||
	    getsockname(r->listen_fd, (struct sockaddr *)&sin, &sl) < 0 ||
	    pthread_create(&r->thread, NULL, relay_main, r) != 0) {
		if (r->listen_fd >= 0)
			close(r->listen_fd);
		free(r);
		return NULL;
	}
	snprintf(r->addr, sizeof(r->addr), "127.0.0.1:%u", ntohs(sin.sin_port));
	return r;
}

/* Wait for the relay to finish (the peer stream closes at the end of the move).
 * @return the packets that passed through it. */
static uint64_t
relay_stop(struct relay *r)
{
	uint64_t packets;

	shutdown(r->listen_fd, SHUT_RDWR);
	pthread_join(r->thread, NULL);
	close(r->listen_fd);
	packets = r->packets;
	/* what a failed move left held */
	flush(r->state, &r->n_state, -1);
	flush(r->pkts, &r->n_pkts, -1);
	free(r->state);
	free(r->pkts);
	free(r);
	return packets;
}

static uint64_t
new_move_id(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec) ^
	       ((uint64_t)getpid() << 48) ^ 1;
}

static void
progress(const struct mbxctl_move_opts *o, Mbx__V1__MovePhase phase, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	if (o->progress == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	o->progress(o->arg, phase, line);
}

int
mbxctl_move(struct mbxctl *src, struct mbxctl *dst, struct mbxctl *steer,
	    const Mbx__V1__Filter *filter, const struct mbxctl_move_opts *o,
	    Mbx__V1__MoveSummary **summary, char *err, size_t errlen)
{
	Mbx__V1__ExpectMoveRequest ex = MBX__V1__EXPECT_MOVE_REQUEST__INIT;
	Mbx__V1__ExpectMoveResponse *exr = NULL;
	Mbx__V1__StartMoveRequest st = MBX__V1__START_MOVE_REQUEST__INIT;
	struct relay *relay = NULL;
	bool more = true, routed = false;
	int64_t call;
	int rc;

	*summary = NULL;
	ex.move_id = st.move_id = new_move_id();
	ex.filter = st.filter = (Mbx__V1__Filter *)(uintptr_t)filter;
	ex.guarantee = st.guarantee = o->guarantee;
	ex.copy = st.copy = o->copy;
	st.timeout_ms = o->timeout_ms;
	st.redirect_limit = o->redirect_limit;
	rc = mbxctl_call(dst, "/mbx.v1.Move/ExpectMove", &ex.base,
			 &mbx__v1__expect_move_response__descriptor, (ProtobufCMessage **)&exr, err,
			 errlen);
	if (rc < 0)
		return rc;
	progress(o, MBX__V1__MOVE_PHASE__MOVE_PHASE_STARTED,
		 "move %" PRIu64 ": destination ready, peer listener %s", ex.move_id,
		 exr->peer_addr);
	if (o->mode == MBX__V1__MOVE_MODE__MOVE_MODE_CONTROLLER) {
		relay = relay_start(exr->peer_addr);
		if (relay == NULL) {
			mbx__v1__expect_move_response__free_unpacked(exr, NULL);
			snprintf(err, errlen, "cannot start the relay");
			return -ENOMEM;
		}
	}
	st.peer_addr = relay ? relay->addr : exr->peer_addr;
	call = mbxctl_send(src, "/mbx.v1.Move/StartMove", &st.base);
	mbx__v1__expect_move_response__free_unpacked(exr, NULL);
	rc = call < 0 ? (int)call : 0;
	while (rc == 0 && more) {
		Mbx__V1__StartMoveResponse *r;

		rc = mbxctl_recv_raw(src, call, &mbx__v1__start_move_response__descriptor,
				     (ProtobufCMessage **)&r, &more, err, errlen);
		if (rc < 0)
			break;
		/* a failed move's last frame has its reason and, still, its summary */
		rc = mbxctl_status(&r->base, err, errlen);
		progress(o, r->phase, "source: %s",
			 protobuf_c_enum_descriptor_get_value(&mbx__v1__move_phase__descriptor,
							      r->phase)
					 ->name +
				 strlen("MOVE_PHASE_"));
		if (rc == 0 && r->phase == MBX__V1__MOVE_PHASE__MOVE_PHASE_STATE_SENT &&
		    steer != NULL && !o->copy && !routed) {
			Mbx__V1__SetRouteRequest sr = MBX__V1__SET_ROUTE_REQUEST__INIT;
			Mbx__V1__SetRouteResponse *srr;

			/* the state is at the destination: send the flows there, marking the old
			 * path */
			sr.filter = (Mbx__V1__Filter *)(uintptr_t)filter;
			sr.port = o->steer_port;
			sr.marker_id = st.move_id;
			rc = mbxctl_call(steer, "/mbx.v1.Steer/SetRoute", &sr.base,
					 &mbx__v1__set_route_response__descriptor,
					 (ProtobufCMessage **)&srr, err, errlen);
			if (rc < 0) {
				/* the source times out waiting for the marker and says so */
				progress(o, r->phase, "steer: %s", err);
			} else {
				routed = true;
				progress(o, r->phase, "steer: flows routed to port %u",
					 o->steer_port);
				mbx__v1__set_route_response__free_unpacked(srr, NULL);
			}
			rc = 0;
		}
		if (r->summary != NULL) {
			*summary = r->summary;
			r->summary = NULL; /* kept, not freed with r */
		}
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
	if (relay != NULL) {
		uint64_t packets = relay_stop(relay);

		if (*summary != NULL)
			(*summary)->via_controller = packets;
	}
	return rc;
}
