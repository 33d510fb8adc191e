/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control plane loop and the southbound server: listener, connections,
 * frames, dispatch, streaming. See mbx_sb.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <rte_eal.h>
#include <rte_log.h>

#include "mbx_ctrl_plane.h"
#include "mbx_frame.h"
#include "mbx_options.h"
#include "mbx_port.h"
#include "mbx_sb.h"
#include "mbx_stats.h"

RTE_LOG_REGISTER(sb_logtype, user.mbx.southbound, NOTICE);

/* A streaming job pauses above this much unsent output, resumes below the low mark. */
#define OUT_HIGH  (8u << 20)
#define OUT_LOW	  (1u << 20)
#define TOKEN_MAX 256
#define PUMP_US	  1000
#define LINKS_US  10000	     /* links watched (mbx_ports_watch) */
#define READ_MAX  (1u << 20) /* bytes of a client read in one turn of the loop */

struct sb_conn;

struct sb_call {
	struct sb_conn *conn;
	uint64_t id;
	sb_step step;
	void *job;
	void (*job_free)(void *);
	void (*on_close)(struct sb_call *call, void *arg);
	void *on_close_arg;
	struct event *ev; /* runs the step */
	bool paused;	  /* waiting for the client to read */
	bool sleeping;	  /* waiting for sb_call_wake() */
	bool kept;	  /* stays open after its handler */
	TAILQ_ENTRY(sb_call) node;
};

struct sb_conn {
	struct bufferevent *bev;
	bool closing; /* answered a fatal error: close once it is sent */
	char peer[64];
	TAILQ_HEAD(, sb_call) calls;
	TAILQ_ENTRY(sb_conn) node;
};

static struct {
	struct mbx_dp *dp;
	struct event_base *base;
	struct evconnlistener *listener;
	TAILQ_HEAD(, sb_conn) conns;
	uint32_t nb_conns;
	uint32_t max_conns;
	uint32_t max_frame;
	uint8_t token[TOKEN_MAX];
	size_t token_len; /* 0: no token required */
	char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
} sb;

struct mbx_dp *
sb_dp(void)
{
	return sb.dp;
}

struct event_base *
sb_base(void)
{
	return sb.base;
}

uint64_t
sb_call_id(const struct sb_call *call)
{
	return call->id;
}

static void
call_free(struct sb_call *call)
{
	if (call->conn != NULL)
		TAILQ_REMOVE(&call->conn->calls, call, node);
	if (call->on_close != NULL)
		call->on_close(call, call->on_close_arg);
	if (call->job_free != NULL)
		call->job_free(call->job);
	if (call->ev != NULL)
		event_free(call->ev);
	free(call);
}

static void
conn_close(struct sb_conn *c, const char *why)
{
	struct sb_call *call;

	if (why != NULL)
		SB_LOG(NOTICE, "closing %s: %s", c->peer, why);
	while ((call = TAILQ_FIRST(&c->calls)) != NULL)
		call_free(call);
	TAILQ_REMOVE(&sb.conns, c, node);
	sb.nb_conns--;
	bufferevent_free(c->bev);
	free(c);
}

/* Pack @resp_payload into an envelope frame on @call's connection. */
static int
send_frame(struct sb_call *call, const uint8_t *payload, size_t len, bool more)
{
	Mbx__V1__Envelope env = MBX__V1__ENVELOPE__INIT;
	struct evbuffer *out;
	struct evbuffer_iovec v;
	size_t n;

	if (call->conn == NULL)
		return -ECONNRESET;
	env.call_id = call->id;
	env.payload.data = (uint8_t *)(uintptr_t)payload;
	env.payload.len = len;
	env.more = more;
	n = mbx_frame_size(&env);
	out = bufferevent_get_output(call->conn->bev);
	if (evbuffer_reserve_space(out, n, &v, 1) < 1)
		return -ENOMEM;
	v.iov_len = mbx_frame_pack(&env, v.iov_base);
	evbuffer_commit_space(out, &v, 1);
	return 0;
}

int
sb_reply_payload(struct sb_call *call, const uint8_t *payload, size_t len, bool more)
{
	return send_frame(call, payload, len, more);
}

int
sb_reply(struct sb_call *call, const ProtobufCMessage *resp, bool more)
{
	size_t len = protobuf_c_message_get_packed_size(resp);
	uint8_t small[512], *buf = len <= sizeof(small) ? small : malloc(len);
	int rc;

	if (buf == NULL)
		return -ENOMEM;
	protobuf_c_message_pack(resp, buf);
	rc = send_frame(call, buf, len, more);
	if (buf != small)
		free(buf);
	return rc;
}

int
sb_reply_error(struct sb_call *call, int err, const char *fmt, ...)
{
	Mbx__V1__Status st = MBX__V1__STATUS__INIT;
	char msg[256];
	uint8_t buf[320];
	size_t n, hdr;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	st.code = err;
	st.message = msg;
	/* every Response has its Status as field 1: one encoding fits all of them */
	n = mbx__v1__status__pack(&st, buf + 3);
	buf[0] = 0x0a;
	if (n < 128) {
		buf[1] = (uint8_t)n;
		memmove(buf + 2, buf + 3, n);
		hdr = 2;
	} else {
		buf[1] = (uint8_t)(0x80 | (n & 0x7f));
		buf[2] = (uint8_t)(n >> 7);
		hdr = 3;
	}
	SB_LOG(INFO, "call %" PRIu64 ": %s (%s)", call->id, msg, strerror(err));
	return send_frame(call, buf, hdr + n, false);
}

bool
sb_call_writable(const struct sb_call *call)
{
	return call->conn != NULL &&
	       evbuffer_get_length(bufferevent_get_output(call->conn->bev)) < OUT_HIGH;
}

static void
run_step(evutil_socket_t fd, short what, void *arg)
{
	struct sb_call *call = arg;

	(void)fd;
	(void)what;
	if (!sb_call_writable(call)) {
		call->paused = true; /* resumed by on_write */
		return;
	}
	call->sleeping = false;
	if (call->step(call, call->job))
		call_free(call);
	else if (!call->sleeping)
		event_active(call->ev, EV_TIMEOUT, 0);
}

void
sb_call_sleep(struct sb_call *call)
{
	call->sleeping = true;
}

void
sb_call_wake(struct sb_call *call)
{
	if (!call->sleeping || call->ev == NULL)
		return;
	call->sleeping = false;
	event_active(call->ev, EV_TIMEOUT, 0);
}

void
sb_call_start_job(struct sb_call *call, sb_step step, void *job, void (*job_free)(void *))
{
	call->step = step;
	call->job = job;
	call->job_free = job_free;
	call->kept = true;
	call->ev = event_new(sb.base, -1, 0, run_step, call);
	if (call->ev == NULL) {
		sb_reply_error(call, ENOMEM, "cannot start the job");
		call->kept = false;
		return;
	}
	event_active(call->ev, EV_TIMEOUT, 0);
}

void
sb_call_keep(struct sb_call *call, void (*on_close)(struct sb_call *call, void *arg), void *arg)
{
	call->kept = true;
	call->on_close = on_close;
	call->on_close_arg = arg;
}

static const struct sb_method *
find_method(const char *path)
{
	static const struct sb_method *const services[] = {sb_dataplane_methods, sb_state_methods,
							   sb_events_methods, sb_steer_methods,
							   sb_move_methods};

	for (unsigned int s = 0; s < RTE_DIM(services); s++)
		for (const struct sb_method *m = services[s]; m->path != NULL; m++)
			if (strcmp(m->path, path) == 0)
				return m;
	return NULL;
}

/* Constant time: the comparison takes as long whatever the first difference. */
static bool
token_ok(const ProtobufCBinaryData *t)
{
	uint8_t diff = t->len != sb.token_len;

	for (size_t i = 0; i < sb.token_len; i++)
		diff |= (i < t->len ? t->data[i] : 0) ^ sb.token[i];
	return diff == 0;
}

/* @return false if the connection was closed. */
static bool
dispatch(struct sb_conn *c, const Mbx__V1__Envelope *env)
{
	struct sb_call *call = calloc(1, sizeof(*call));
	const struct sb_method *m;
	int rc;

	if (call == NULL)
		return true;
	call->conn = c;
	call->id = env->call_id;
	TAILQ_INSERT_TAIL(&c->calls, call, node);
	if (sb.token_len > 0 && !token_ok(&env->token)) {
		sb_reply_error(call, EACCES, "missing or wrong access token");
		call_free(call);
		SB_LOG(NOTICE, "closing %s: wrong access token", c->peer);
		c->closing = true; /* on_write closes it once the answer is out */
		bufferevent_disable(c->bev, EV_READ);
		return false;
	}
	m = find_method(env->method != NULL ? env->method : "");
	if (m == NULL) {
		sb_reply_error(call, ENOSYS, "unknown method '%s'", env->method ? env->method : "");
		rc = 0;
	} else {
		rc = m->fn(call, env->payload.data, env->payload.len);
		if (rc < 0)
			sb_reply_error(call, -rc, "%s: %s", m->path, strerror(-rc));
	}
	if (!call->kept)
		call_free(call);
	return true;
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct sb_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	sb_read_pending(bev, READ_MAX);
	for (;;) {
		size_t avail = evbuffer_get_length(in);
		uint8_t hdr[MBX_FRAME_HDR_LEN];
		Mbx__V1__Envelope *env;
		long n;

		if (avail < MBX_FRAME_HDR_LEN)
			return;
		evbuffer_copyout(in, hdr, sizeof(hdr));
		n = mbx_frame_peek(hdr, sizeof(hdr), sb.max_frame);
		if (n == -EMSGSIZE) {
			conn_close(c, "frame larger than --max-frame");
			return;
		}
		if (n < 0) {
			conn_close(c, "bad frame header (compressed or not a frame)");
			return;
		}
		if (avail < (size_t)n)
			return; /* the rest of the frame is on its way */
		env = mbx_frame_unpack(evbuffer_pullup(in, n), n);
		evbuffer_drain(in, n);
		if (env == NULL) {
			conn_close(c, "undecodable envelope");
			return;
		}
		if (!dispatch(c, env)) {
			mbx__v1__envelope__free_unpacked(env, NULL);
			return;
		}
		mbx__v1__envelope__free_unpacked(env, NULL);
	}
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct sb_conn *c = arg;
	struct sb_call *call;

	if (c->closing) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			conn_close(c, NULL);
		return;
	}
	/* below the low watermark: wake the jobs that waited for the client */
	TAILQ_FOREACH (call, &c->calls, node) {
		if (call->paused) {
			call->paused = false;
			event_active(call->ev, EV_TIMEOUT, 0);
		}
	}
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		conn_close(arg, what & BEV_EVENT_EOF ? NULL : "connection error");
}

void
sb_read_pending(struct bufferevent *bev, size_t max)
{
	evutil_socket_t fd = bufferevent_getfd(bev);
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_iovec v;
	int pending = 0;
	ssize_t n;

	if (ioctl(fd, FIONREAD, &pending) < 0 || pending <= 0)
		return;
	if ((size_t)pending > max)
		pending = (int)max;
	/* a bufferevent keeps its input's end frozen between its own reads */
	evbuffer_unfreeze(in, 0);
	if (evbuffer_reserve_space(in, pending, &v, 1) == 1) {
		/* an error or EOF is for the bufferevent's own next read to find */
		n = recv(fd, v.iov_base, (size_t)pending, MSG_DONTWAIT);
		v.iov_len = n > 0 ? (size_t)n : 0;
		evbuffer_commit_space(in, &v, 1);
	}
	evbuffer_freeze(in, 0);
}

void
sb_nodelay(int fd)
{
	int one = 1;

	/* unix sockets have no Nagle: their error is no error */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct sb_conn *c;

	(void)l;
	(void)salen;
	(void)arg;
	if (sb.nb_conns >= sb.max_conns) {
		SB_LOG(WARNING, "refusing a connection: %u open (--control-max-conns)",
		       sb.nb_conns);
		evutil_closesocket(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		evutil_closesocket(fd);
		return;
	}
	sb_nodelay(fd);
	c->bev = bufferevent_socket_new(sb.base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		free(c);
		evutil_closesocket(fd);
		return;
	}
	if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
		char a[INET6_ADDRSTRLEN] = "?";
		const void *ap = sa->sa_family == AF_INET
					 ? (const void *)&((struct sockaddr_in *)sa)->sin_addr
					 : (const void *)&((struct sockaddr_in6 *)sa)->sin6_addr;

		inet_ntop(sa->sa_family, ap, a, sizeof(a));
		snprintf(c->peer, sizeof(c->peer), "%s", a);
	} else {
		snprintf(c->peer, sizeof(c->peer), "unix client %d", (int)fd);
	}
	TAILQ_INIT(&c->calls);
	TAILQ_INSERT_TAIL(&sb.conns, c, node);
	sb.nb_conns++;
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, OUT_LOW, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void
on_listen_error(struct evconnlistener *l, void *arg)
{
	(void)l;
	(void)arg;
	SB_LOG(ERR, "accept: %s", strerror(errno));
}

static bool
is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

static int
load_token(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL) {
		SB_LOG(ERR, "--control-token %s: %s", path, strerror(errno));
		return -errno;
	}
	n = fread(sb.token, 1, sizeof(sb.token), f);
	fclose(f);
	while (n > 0 && (sb.token[n - 1] == '\n' || sb.token[n - 1] == '\r'))
		n--;
	if (n == 0) {
		SB_LOG(ERR, "--control-token %s: empty", path);
		return -EINVAL;
	}
	sb.token_len = n;
	return 0;
}

static int
listen_on(const char *addr)
{
	struct sockaddr_storage ss;
	int salen;
	char def[sizeof(sb.unix_path) + 8];
	unsigned int flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;

	if (addr == NULL) {
		snprintf(def, sizeof(def), "unix:%s/mbx.sock", rte_eal_get_runtime_dir());
		addr = def;
	}
	memset(&ss, 0, sizeof(ss));
	if (strncmp(addr, "unix:", 5) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)&ss;

		if (strlen(addr + 5) >= sizeof(un->sun_path)) {
			SB_LOG(ERR, "--control %s: path too long", addr);
			return -ENAMETOOLONG;
		}
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, addr + 5);
		strcpy(sb.unix_path, addr + 5);
		unlink(sb.unix_path); /* a stale socket of an earlier run */
		salen = sizeof(*un);
	} else {
		salen = sizeof(ss);
		if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &salen) < 0) {
			SB_LOG(ERR, "--control %s: expected unix:PATH or HOST:PORT", addr);
			return -EINVAL;
		}
		if (!is_loopback((struct sockaddr *)&ss) && sb.token_len == 0) {
			SB_LOG(ERR, "--control %s is not loopback: it needs --control-token FILE",
			       addr);
			return -EACCES;
		}
	}
	/* a burst of connections waits in the kernel, not refused there: the
	 * limit is --control-max-conns, applied on accept */
	sb.listener = evconnlistener_new_bind(sb.base, on_accept, NULL, flags, SOMAXCONN,
					      (struct sockaddr *)&ss, salen);
	if (sb.listener == NULL) {
		SB_LOG(ERR, "--control %s: %s", addr, strerror(errno));
		return -errno;
	}
	if (sb.unix_path[0] != '\0')
		chmod(sb.unix_path, 0660);
	evconnlistener_set_error_cb(sb.listener, on_listen_error);
	SB_LOG(NOTICE, "southbound listening on %s%s", addr,
	       sb.token_len ? " (token required)" : "");
	return 0;
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	SB_LOG(NOTICE, "%s: stopping", strsignal(sig));
	event_base_loopbreak(sb.base);
}

static void
on_stats(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	mbx_stats_print_interval(arg, stdout);
}

static void
on_pump(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sb_events_pump();
	mbx_chain_poll(&sb.dp->chain);
}

static void
on_links(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	mbx_ports_watch(arg);
}

static int
sb_run(struct mbx_dp *dp, const struct mbx_options *o)
{
	struct event *sigint, *sigterm, *stats = NULL, *pump, *links;
	struct event_config *cfg;
	struct timeval pump_tv = {.tv_usec = PUMP_US}, links_tv = {.tv_usec = LINKS_US};
	struct sb_conn *c;
	int rc = 0;

	sb.dp = dp;
	sb.max_frame = o->max_frame;
	sb.max_conns = o->max_conns;
	TAILQ_INIT(&sb.conns);
	signal(SIGPIPE, SIG_IGN);
	/* timers below a millisecond (the moves' polls) need timerfd, not epoll's ms */
	cfg = event_config_new();
	if (cfg == NULL)
		return -ENOMEM;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	sb.base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (sb.base == NULL)
		return -ENOMEM;
	if (o->control_token != NULL)
		rc = load_token(o->control_token);
	if (rc == 0)
		rc = listen_on(o->control);
	if (rc == 0)
		rc = sb_move_init(o->peer);
	if (rc < 0) {
		event_base_free(sb.base);
		return rc;
	}
	sigint = evsignal_new(sb.base, SIGINT, on_signal, NULL);
	sigterm = evsignal_new(sb.base, SIGTERM, on_signal, NULL);
	pump = event_new(sb.base, -1, EV_PERSIST, on_pump, NULL);
	event_add(sigint, NULL);
	event_add(sigterm, NULL);
	event_add(pump, &pump_tv);
	links = event_new(sb.base, -1, EV_PERSIST, on_links, dp);
	event_add(links, &links_tv);
	if (o->stats_interval > 0) {
		struct timeval tv = {.tv_sec = o->stats_interval};

		stats = event_new(sb.base, -1, EV_PERSIST, on_stats, dp);
		event_add(stats, &tv);
	}

	event_base_dispatch(sb.base);

	while ((c = TAILQ_FIRST(&sb.conns)) != NULL)
		conn_close(c, NULL);
	sb_move_fini();
	sb_events_fini();
	evconnlistener_free(sb.listener);
	if (sb.unix_path[0] != '\0')
		unlink(sb.unix_path);
	if (stats != NULL)
		event_free(stats);
	event_free(pump);
	event_free(links);
	event_free(sigint);
	event_free(sigterm);
	event_base_free(sb.base);
	return 0;
}

static const struct mbx_ctrl_plane sb_plane = {
	.name = "southbound",
	.run = sb_run,
};

MBX_CTRL_PLANE_REGISTER(sb_plane);
