/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mbxctld: the controller daemon. Serves `service Controller`
 * (proto/mbx/v1/move.proto) on the southbound framing: ListInstances,
 * RegisterInstance, Move and Copy, the last two streaming progress and
 * ending with the source's summary. The moves themselves are libmbxctl's
 * mbxctl_move(); this file is the registry and the server around it.
 *
 *   mbxctld [--listen ADDR] [--topology FILE]
 *
 * A topology file has one entry per line:
 *   steer    unix:/var/run/dpdk/steer/mbx.sock
 *   instance A unix:/var/run/dpdk/natA/mbx.sock 1
 *   instance B unix:/var/run/dpdk/natB/mbx.sock 2
 * (name, control address, the steering port that leads to it); # starts a
 * comment. Instances may also register themselves (RegisterInstance).
 *
 * One thread per client connection; a client's calls run in turn.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <netinet/in.h>

#include "mbx/v1/dataplane.pb-c.h"
#include "mbx/v1/move.pb-c.h"
#include "mbx_frame.h"
#include "mbxctl.h"

#define MAX_INSTANCES 64
#define FRAME_MAX     (16u << 20)

static struct {
	pthread_mutex_t lock;
	char steer[256];
	struct {
		char name[64];
		char control[256];
		uint32_t steer_port;
	} inst[MAX_INSTANCES];
	unsigned int n;
} reg = {.lock = PTHREAD_MUTEX_INITIALIZER};

struct client {
	int fd;
	uint64_t call_id;
};

static int
reg_add(const char *name, const char *control, uint32_t port)
{
	unsigned int i;
	int rc = 0;

	pthread_mutex_lock(&reg.lock);
	for (i = 0; i < reg.n && strcmp(reg.inst[i].name, name) != 0; i++)
		;
	if (i == MAX_INSTANCES) {
		rc = -ENOSPC;
	} else {
		snprintf(reg.inst[i].name, sizeof(reg.inst[i].name), "%.63s", name);
		snprintf(reg.inst[i].control, sizeof(reg.inst[i].control), "%.255s", control);
		reg.inst[i].steer_port = port;
		if (i == reg.n)
			reg.n++;
	}
	pthread_mutex_unlock(&reg.lock);
	return rc;
}

/* Look an instance up: its control address and steering port. */
static bool
reg_find(const char *name, char *control, size_t len, uint32_t *port)
{
	bool found = false;

	pthread_mutex_lock(&reg.lock);
	for (unsigned int i = 0; i < reg.n && !found; i++) {
		if (strcmp(reg.inst[i].name, name) == 0) {
			snprintf(control, len, "%s", reg.inst[i].control);
			*port = reg.inst[i].steer_port;
			found = true;
		}
	}
	pthread_mutex_unlock(&reg.lock);
	return found;
}

static int
load_topology(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];
	int lineno = 0;

	if (f == NULL) {
		fprintf(stderr, "mbxctld: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char kind[32], a[256], b[256];
		unsigned int port = 0;
		int n;

		lineno++;
		if (line[strspn(line, " \t")] == '#' || line[strspn(line, " \t\r\n")] == '\0')
			continue;
		n = sscanf(line, "%31s %255s %255s %u", kind, a, b, &port);
		if (n == 2 && strcmp(kind, "steer") == 0) {
			snprintf(reg.steer, sizeof(reg.steer), "%s", a);
		} else if (n >= 3 && strcmp(kind, "instance") == 0) {
			reg_add(a, b, port);
		} else {
			fprintf(stderr,
				"mbxctld: %s:%d: expected 'steer ADDR' or 'instance NAME ADDR "
				"[PORT]'\n",
				path, lineno);
			fclose(f);
			return -EINVAL;
		}
	}
	fclose(f);
	return 0;
}

static int
send_reply(struct client *c, const ProtobufCMessage *m, bool more)
{
	Mbx__V1__Envelope env = MBX__V1__ENVELOPE__INIT;
	size_t plen = protobuf_c_message_get_packed_size(m), n;
	uint8_t *payload = malloc(plen + 1), *frame;
	ssize_t w = -1;

	if (payload == NULL)
		return -ENOMEM;
	protobuf_c_message_pack(m, payload);
	env.call_id = c->call_id;
	env.payload = (ProtobufCBinaryData){plen, payload};
	env.more = more;
	n = mbx_frame_size(&env);
	frame = malloc(n);
	if (frame != NULL) {
		mbx_frame_pack(&env, frame);
		w = send(c->fd, frame, n, MSG_NOSIGNAL);
	}
	free(frame);
	free(payload);
	return w == (ssize_t)n ? 0 : -EPIPE;
}

static int
send_error(struct client *c, int err, const char *msg)
{
	Mbx__V1__MoveResponse r = MBX__V1__MOVE_RESPONSE__INIT;
	Mbx__V1__Status st = MBX__V1__STATUS__INIT;

	/* every Response has its Status first: any of them carries an error */
	st.code = err;
	st.message = (char *)(uintptr_t)msg;
	r.status = &st;
	return send_reply(c, &r.base, false);
}

static void
list_instances(struct client *c)
{
	Mbx__V1__ListInstancesResponse r = MBX__V1__LIST_INSTANCES_RESPONSE__INIT;
	Mbx__V1__Status st = MBX__V1__STATUS__INIT;
	Mbx__V1__Instance inst[MAX_INSTANCES], *ip[MAX_INSTANCES];

	pthread_mutex_lock(&reg.lock);
	for (unsigned int i = 0; i < reg.n; i++) {
		struct mbxctl *m = mbxctl_connect(reg.inst[i].control, NULL);

		mbx__v1__instance__init(&inst[i]);
		inst[i].name = reg.inst[i].name;
		inst[i].control = reg.inst[i].control;
		inst[i].steer_port = reg.inst[i].steer_port;
		inst[i].up = m != NULL;
		mbxctl_close(m);
		ip[i] = &inst[i];
	}
	r.status = &st;
	r.n_instances = reg.n;
	r.instances = ip;
	r.steer = reg.steer;
	send_reply(c, &r.base, false);
	pthread_mutex_unlock(&reg.lock);
}

static void
register_instance(struct client *c, const uint8_t *p, size_t len)
{
	Mbx__V1__RegisterRequest *req = mbx__v1__register_request__unpack(NULL, len, p);
	Mbx__V1__RegisterResponse r = MBX__V1__REGISTER_RESPONSE__INIT;
	Mbx__V1__Status st = MBX__V1__STATUS__INIT;

	if (req == NULL || req->instance == NULL || req->instance->name[0] == '\0') {
		send_error(c, EINVAL, "RegisterInstance needs an instance with a name");
	} else if (reg_add(req->instance->name, req->instance->control, req->instance->steer_port) <
		   0) {
		send_error(c, ENOSPC, "too many instances");
	} else {
		r.status = &st;
		send_reply(c, &r.base, false);
	}
	if (req != NULL)
		mbx__v1__register_request__free_unpacked(req, NULL);
}

static void
on_progress(void *arg, Mbx__V1__MovePhase phase, const char *line)
{
	Mbx__V1__MoveResponse r = MBX__V1__MOVE_RESPONSE__INIT;
	Mbx__V1__Status st = MBX__V1__STATUS__INIT;

	r.status = &st;
	r.phase = phase;
	r.progress = (char *)(uintptr_t)line;
	send_reply(arg, &r.base, true);
}

static void
do_move(struct client *c, const uint8_t *p, size_t len, bool copy)
{
	Mbx__V1__MoveRequest *req = mbx__v1__move_request__unpack(NULL, len, p);
	Mbx__V1__MoveResponse r = MBX__V1__MOVE_RESPONSE__INIT;
	Mbx__V1__Status st = MBX__V1__STATUS__INIT;
	Mbx__V1__MoveSummary *sum = NULL;
	struct mbxctl_move_opts o = {.progress = on_progress, .arg = c};
	struct mbxctl *src = NULL, *dst = NULL, *steer = NULL;
	char from[256], to[256], steer_addr[256], err[256] = "", line[320];
	uint32_t from_port, to_port;
	int rc;

	if (req == NULL) {
		send_error(c, EBADMSG, "undecodable MoveRequest");
		return;
	}
	pthread_mutex_lock(&reg.lock);
	snprintf(steer_addr, sizeof(steer_addr), "%s", reg.steer);
	pthread_mutex_unlock(&reg.lock);
	if (!reg_find(req->from, from, sizeof(from), &from_port) ||
	    !reg_find(req->to, to, sizeof(to), &to_port)) {
		snprintf(err, sizeof(err), "unknown instance '%s'",
			 reg_find(req->from, from, sizeof(from), &from_port) ? req->to : req->from);
		send_error(c, ENOENT, err);
		goto out;
	}
	src = mbxctl_connect(from, NULL);
	dst = mbxctl_connect(to, NULL);
	steer = !copy && steer_addr[0] != '\0' ? mbxctl_connect(steer_addr, NULL) : NULL;
	if (src == NULL || dst == NULL || (!copy && steer_addr[0] != '\0' && steer == NULL)) {
		snprintf(err, sizeof(err), "cannot reach %s",
			 src == NULL   ? req->from
			 : dst == NULL ? req->to
				       : "the steering instance");
		send_error(c, EHOSTUNREACH, err);
		goto out;
	}
	o.guarantee = req->guarantee;
	o.mode = req->mode;
	o.redirect_limit = req->redirect_limit;
	o.copy = copy;
	o.steer_port = to_port;
	rc = mbxctl_move(src, dst, steer, req->filter, &o, &sum, err, sizeof(err));
	snprintf(line, sizeof(line), "%s %s -> %s: %s", copy ? "copy" : "move", req->from, req->to,
		 rc == 0 ? "done" : err);
	st.code = -rc;
	st.message = rc == 0 ? "" : err;
	r.status = &st;
	r.phase = rc == 0 ? MBX__V1__MOVE_PHASE__MOVE_PHASE_DONE
			  : MBX__V1__MOVE_PHASE__MOVE_PHASE_FAILED;
	r.progress = line;
	r.summary = sum;
	send_reply(c, &r.base, false);
	if (sum != NULL)
		mbx__v1__move_summary__free_unpacked(sum, NULL);
out:
	mbxctl_close(src);
	mbxctl_close(dst);
	mbxctl_close(steer);
	mbx__v1__move_request__free_unpacked(req, NULL);
}

static int
read_full(int fd, uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, p, n);

		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static void *
serve(void *arg)
{
	struct client *c = arg;

	for (;;) {
		uint8_t hdr[MBX_FRAME_HDR_LEN], *buf;
		Mbx__V1__Envelope *env;
		long n;

		if (read_full(c->fd, hdr, sizeof(hdr)) < 0)
			break;
		n = mbx_frame_peek(hdr, sizeof(hdr), FRAME_MAX);
		if (n <= 0 || (buf = malloc((size_t)n)) == NULL)
			break;
		memcpy(buf, hdr, sizeof(hdr));
		env = read_full(c->fd, buf + sizeof(hdr), (size_t)n - sizeof(hdr)) == 0
			      ? mbx_frame_unpack(buf, (size_t)n)
			      : NULL;
		free(buf);
		if (env == NULL)
			break;
		c->call_id = env->call_id;
		if (strcmp(env->method, "/mbx.v1.Controller/ListInstances") == 0)
			list_instances(c);
		else if (strcmp(env->method, "/mbx.v1.Controller/RegisterInstance") == 0)
			register_instance(c, env->payload.data, env->payload.len);
		else if (strcmp(env->method, "/mbx.v1.Controller/Move") == 0)
			do_move(c, env->payload.data, env->payload.len, false);
		else if (strcmp(env->method, "/mbx.v1.Controller/Copy") == 0)
			do_move(c, env->payload.data, env->payload.len, true);
		else
			send_error(c, ENOSYS, "unknown method");
		mbx__v1__envelope__free_unpacked(env, NULL);
	}
	close(c->fd);
	free(c);
	return NULL;
}

static int
listen_on(const char *addr)
{
	int fd;

	if (strncmp(addr, "unix:", 5) == 0) {
		struct sockaddr_un un = {.sun_family = AF_UNIX};

		if (strlen(addr + 5) >= sizeof(un.sun_path))
			return -ENAMETOOLONG;
		strcpy(un.sun_path, addr + 5);
		unlink(un.sun_path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (bind(fd, (struct sockaddr *)&un, sizeof(un)) < 0 || listen(fd, 16) < 0) {
			int e = errno;

			close(fd);
			return -e;
		}
		return fd;
	}
	{
		/* TCP on loopback only: the controller has no access token of its own */
		struct sockaddr_in sin = {.sin_family = AF_INET,
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		const char *colon = strrchr(addr, ':');
		int one = 1;

		if (colon == NULL || strncmp(addr, "127.0.0.1:", 10) != 0)
			return -EINVAL;
		sin.sin_port = htons((uint16_t)atoi(colon + 1));
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 16) < 0) {
			int e = errno;

			close(fd);
			return -e;
		}
		return fd;
	}
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"listen", required_argument, NULL, 'l'},
		{"topology", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *addr = "unix:/var/run/mbxctld.sock";
	int opt, fd;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			addr = optarg;
			break;
		case 't':
			if (load_topology(optarg) < 0)
				return 1;
			break;
		case 'h':
			printf("Usage: mbxctld [--listen unix:PATH|127.0.0.1:PORT] [--topology "
			       "FILE]\n"
			       "Serves mbx.v1.Controller: ListInstances, RegisterInstance, Move, "
			       "Copy.\n");
			return 0;
		default:
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	fd = listen_on(addr);
	if (fd < 0) {
		fprintf(stderr, "mbxctld: --listen %s: %s\n", addr, strerror(-fd));
		return 1;
	}
	fprintf(stderr, "mbxctld: serving on %s, %u instances, steer %s\n", addr, reg.n,
		reg.steer[0] ? reg.steer : "(none)");
	for (;;) {
		struct client *c = malloc(sizeof(*c));
		pthread_t t;

		if (c == NULL)
			break;
		c->fd = accept(fd, NULL, NULL);
		if (c->fd < 0 || pthread_create(&t, NULL, serve, c) != 0) {
			if (c->fd >= 0)
				close(c->fd);
			free(c);
			continue;
		}
		pthread_detach(t);
	}
	return 1;
}
