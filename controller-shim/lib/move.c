/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libmbxctl: the move orchestration (see mbxctl.h and docs/migration.md).
 *
 * A move is three calls: ExpectMove on the destination, StartMove on the
 * source (a stream of phases), and, when the source reports STATE_SENT,
 * Steer.SetRoute with the move's id as marker. In controller mode the peer
 * stream goes through a relay in this process (a thread) that reads every
 * frame, counts the packets and forwards them, as OpenNF's controller does.
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

struct relay {
	int listen_fd;
	char dst[128];
	char addr[64];
	pthread_t thread;
	uint64_t packets; /* redirected packets that passed through */
	uint64_t frames;
	int err;
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

/* Read one frame from @from, look inside, and pass it on to @to. */
static int
relay_frame(struct relay *r, int from, int to)
{
	uint8_t hdr[MBX_FRAME_HDR_LEN], *buf;
	Mbx__V1__Envelope *env;
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
	env = rc == 0 ? mbx_frame_unpack(buf, (size_t)n) : NULL;
	if (env != NULL) {
		/* the controller sees every packet, as OpenNF's does */
		Mbx__V1__PeerMessage *m =
			mbx__v1__peer_message__unpack(NULL, env->payload.len, env->payload.data);

		if (m != NULL && m->body_case == MBX__V1__PEER_MESSAGE__BODY_PACKETS)
			r->packets += m->packets->n_packets;
		if (m != NULL)
			mbx__v1__peer_message__free_unpacked(m, NULL);
		mbx__v1__envelope__free_unpacked(env, NULL);
		rc = write_full(to, buf, (size_t)n);
		r->frames++;
	} else if (rc == 0) {
		rc = -EPROTO;
	}
	free(buf);
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
		if ((p[0].revents & (POLLIN | POLLHUP)) && relay_frame(r, src, dst) < 0)
			break;
		if ((p[1].revents & (POLLIN | POLLHUP)) && relay_frame(r, dst, src) < 0)
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
