/* SPDX-License-Identifier: BSD-3-Clause */
/* libmbxctl: connection and calls. See mbxctl.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "mbx/v1/dataplane.pb-c.h"
#include "mbx_frame.h"
#include "mbx_proto.h"
#include "mbx_wire.h"
#include "mbxctl.h"

/* Largest response frame this client accepts. */
#define RECV_MAX (256u << 20)

struct mbxctl {
	int fd;
	int64_t next_id;
	char *token;
	uint8_t *buf;
	size_t cap;
};

static int
dial(const char *addr)
{
	int fd;

	if (strncmp(addr, "unix:", 5) == 0) {
		struct sockaddr_un un = {.sun_family = AF_UNIX};

		if (strlen(addr + 5) >= sizeof(un.sun_path)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		strcpy(un.sun_path, addr + 5);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&un, sizeof(un)) < 0) {
			close(fd);
			fd = -1;
		}
		return fd;
	}
	{
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
		char host[256];
		const char *colon = strrchr(addr, ':');
		size_t hlen = colon ? (size_t)(colon - addr) : 0;
		int rc;

		if (colon == NULL || hlen == 0 || hlen >= sizeof(host)) {
			errno = EINVAL;
			return -1;
		}
		if (addr[0] == '[' && addr[hlen - 1] == ']') {
			memcpy(host, addr + 1, hlen - 2);
			host[hlen - 2] = '\0';
		} else {
			memcpy(host, addr, hlen);
			host[hlen] = '\0';
		}
		rc = getaddrinfo(host, colon + 1, &hints, &res);
		if (rc != 0) {
			errno = EHOSTUNREACH;
			return -1;
		}
		fd = -1;
		for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
			fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
			if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
				close(fd);
				fd = -1;
			}
			if (fd >= 0)
				mbxctl_nodelay(fd);
		}
		freeaddrinfo(res);
		return fd;
	}
}

void
mbxctl_nodelay(int fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

struct mbxctl *
mbxctl_connect(const char *addr, const char *token)
{
	struct mbxctl *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->fd = dial(addr);
	if (c->fd < 0) {
		int e = errno;

		free(c);
		errno = e;
		return NULL;
	}
	c->next_id = 1;
	c->token = token ? strdup(token) : NULL;
	return c;
}

void
mbxctl_close(struct mbxctl *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	free(c->token);
	free(c->buf);
	free(c);
}

char *
mbxctl_read_token(const char *path)
{
	FILE *f = fopen(path, "r");
	char buf[256];
	size_t n;

	if (f == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	return strdup(buf);
}

static int
writev_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -errno;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

static int
read_all(int fd, uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			return -ECONNRESET;
		if (r < 0)
			return -errno;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static Mbx__V1__Status *
status_of(const ProtobufCMessage *m)
{
	const ProtobufCFieldDescriptor *fd =
		protobuf_c_message_descriptor_get_field(m->descriptor, 1);

	if (fd == NULL || fd->type != PROTOBUF_C_TYPE_MESSAGE ||
	    fd->descriptor != &mbx__v1__status__descriptor)
		return NULL;
	return *(Mbx__V1__Status **)((const char *)m + fd->offset);
}

int64_t
mbxctl_send_payload(struct mbxctl *c, const char *method, const uint8_t *payload, size_t len)
{
	/* the Envelope by hand, its payload and token sent from where they are */
	size_t mlen = strlen(method), tlen = c->token ? strlen(c->token) : 0;
	size_t env = mbx_wire_uint_size(1, (uint64_t)c->next_id) + mbx_wire_len_size(2, mlen) +
		     mbx_wire_len_size(3, len) + (tlen ? mbx_wire_len_size(4, tlen) : 0);
	uint8_t *hdr = malloc(MBX_FRAME_HDR_LEN + 48 + mlen), *p = hdr + MBX_FRAME_HDR_LEN;
	uint8_t tok[16], *t = tok;
	struct iovec iov[4];
	int rc;

	if (hdr == NULL)
		return -ENOMEM;
	if (env > UINT32_MAX) {
		free(hdr);
		return -EMSGSIZE;
	}
	hdr[0] = 0;
	hdr[1] = (uint8_t)(env >> 24);
	hdr[2] = (uint8_t)(env >> 16);
	hdr[3] = (uint8_t)(env >> 8);
	hdr[4] = (uint8_t)env;
	p = mbx_wire_put_uint(p, 1, (uint64_t)c->next_id);
	p = mbx_wire_put_bytes(p, 2, method, mlen);
	p = mbx_wire_put_len_hdr(p, 3, len);
	if (tlen)
		t = mbx_wire_put_len_hdr(tok, 4, tlen);
	iov[0] = (struct iovec){hdr, (size_t)(p - hdr)};
	iov[1] = (struct iovec){(void *)(uintptr_t)payload, len};
	iov[2] = (struct iovec){tok, (size_t)(t - tok)};
	iov[3] = (struct iovec){c->token, tlen};
	rc = writev_all(c->fd, iov, tlen ? 4 : 2);
	free(hdr);
	return rc < 0 ? rc : c->next_id++;
}

int64_t
mbxctl_send(struct mbxctl *c, const char *method, const ProtobufCMessage *req)
{
	size_t len = protobuf_c_message_get_packed_size(req);
	uint8_t *payload = malloc(len + 1);
	int64_t id;

	if (payload == NULL)
		return -ENOMEM;
	protobuf_c_message_pack(req, payload);
	id = mbxctl_send_payload(c, method, payload, len);
	free(payload);
	return id;
}

/* Read the next frame into c->buf. @return its length, or -errno with a reason in @p err. */
static long
read_frame(struct mbxctl *c, char *err, size_t errlen)
{
	uint8_t hdr[MBX_FRAME_HDR_LEN];
	long n;
	int rc;

	rc = read_all(c->fd, hdr, sizeof(hdr));
	if (rc < 0) {
		snprintf(err, errlen, "connection: %s", strerror(-rc));
		return rc;
	}
	n = mbx_frame_peek(hdr, sizeof(hdr), RECV_MAX);
	if (n <= 0) {
		snprintf(err, errlen, "bad frame from the server");
		return -EPROTO;
	}
	if ((size_t)n > c->cap) {
		uint8_t *b = realloc(c->buf, (size_t)n);

		if (b == NULL) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		c->buf = b;
		c->cap = (size_t)n;
	}
	memcpy(c->buf, hdr, sizeof(hdr));
	rc = read_all(c->fd, c->buf + sizeof(hdr), (size_t)n - sizeof(hdr));
	if (rc < 0) {
		snprintf(err, errlen, "connection: %s", strerror(-rc));
		return rc;
	}
	return n;
}

int
mbxctl_recv_payload(struct mbxctl *c, int64_t *id, const uint8_t **payload, size_t *len, bool *more,
		    char *err, size_t errlen)
{
	long n = read_frame(c, err, errlen);
	const uint8_t *p = c->buf + MBX_FRAME_HDR_LEN, *end = c->buf + (n > 0 ? n : 0);
	struct mbx_wire_field f;
	int rc;

	if (n < 0)
		return (int)n;
	*id = 0;
	*payload = p;
	*len = 0;
	if (more != NULL)
		*more = false;
	/* the Envelope without a copy of its payload */
	while ((rc = mbx_wire_next(&p, end, &f)) > 0) {
		uint8_t want = f.num == 1 || f.num == 5 ? MBX_WIRE_VARINT : MBX_WIRE_LEN;

		if (f.num == 0 || f.num > 5)
			continue;
		if (f.type != want)
			break;
		if (f.num == 1)
			*id = (int64_t)f.v;
		else if (f.num == 3)
			*payload = f.data, *len = f.len;
		else if (f.num == 5 && more != NULL)
			*more = f.v != 0;
	}
	if (rc != 0) {
		snprintf(err, errlen, "undecodable frame from the server");
		return -EPROTO;
	}
	return 0;
}

int
mbxctl_payload_status(const uint8_t *payload, size_t len, char *err, size_t errlen)
{
	const char *msg = "";
	size_t mlen = 0;
	int32_t code = 0;

	if (mbx_wire_status(payload, len, &code, &msg, &mlen) < 0) {
		snprintf(err, errlen, "undecodable response");
		return -EPROTO;
	}
	if (code == 0)
		return 0;
	snprintf(err, errlen, "%.*s", (int)(mlen < 1024 ? mlen : 1024), msg);
	return code > 0 ? -code : code;
}

int
mbxctl_chunk_scan(const uint8_t *chunk, size_t len, int *scope)
{
	struct mbx_wire_chunk c;

	if (mbx_wire_chunk_parse(chunk, len, &c) < 0)
		return -EINVAL;
	*scope = c.scope;
	return 0;
}

int
mbxctl_recv_raw(struct mbxctl *c, int64_t id, const ProtobufCMessageDescriptor *desc,
		ProtobufCMessage **resp, bool *more, char *err, size_t errlen)
{
	Mbx__V1__Envelope *env;
	long n;

	*resp = NULL;
	n = read_frame(c, err, errlen);
	if (n < 0)
		return (int)n;
	env = mbx_frame_unpack(c->buf, (size_t)n);
	if (env == NULL || env->call_id != (uint64_t)id) {
		snprintf(err, errlen, "unexpected frame from the server");
		if (env != NULL)
			mbx__v1__envelope__free_unpacked(env, NULL);
		return -EPROTO;
	}
	if (more != NULL)
		*more = env->more;
	*resp = protobuf_c_message_unpack(desc, NULL, env->payload.len, env->payload.data);
	mbx__v1__envelope__free_unpacked(env, NULL);
	if (*resp == NULL) {
		snprintf(err, errlen, "undecodable response");
		return -EPROTO;
	}
	return 0;
}

int
mbxctl_status(const ProtobufCMessage *m, char *err, size_t errlen)
{
	Mbx__V1__Status *st = status_of(m);

	if (st == NULL || st->code == 0)
		return 0;
	snprintf(err, errlen, "%s", st->message);
	return st->code > 0 ? -st->code : st->code;
}

int
mbxctl_recv(struct mbxctl *c, int64_t id, const ProtobufCMessageDescriptor *desc,
	    ProtobufCMessage **resp, bool *more, char *err, size_t errlen)
{
	int rc = mbxctl_recv_raw(c, id, desc, resp, more, err, errlen);

	if (rc == 0 && (rc = mbxctl_status(*resp, err, errlen)) < 0) {
		protobuf_c_message_free_unpacked(*resp, NULL);
		*resp = NULL;
	}
	return rc;
}

int
mbxctl_call(struct mbxctl *c, const char *method, const ProtobufCMessage *req,
	    const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp, char *err,
	    size_t errlen)
{
	int64_t id = mbxctl_send(c, method, req);

	if (id < 0) {
		snprintf(err, errlen, "send: %s", strerror((int)-id));
		return (int)id;
	}
	return mbxctl_recv(c, id, desc, resp, NULL, err, errlen);
}

struct mbxctl_state_types {
	Mbx__V1__GetInfoResponse *info;
};

struct mbxctl_state_types *
mbxctl_state_types_load(struct mbxctl *c)
{
	Mbx__V1__GetInfoRequest req = MBX__V1__GET_INFO_REQUEST__INIT;
	struct mbxctl_state_types *t = calloc(1, sizeof(*t));
	char err[256];

	if (t == NULL)
		return NULL;
	if (mbxctl_call(c, "/mbx.v1.Dataplane/GetInfo", &req.base,
			&mbx__v1__get_info_response__descriptor, (ProtobufCMessage **)&t->info, err,
			sizeof(err)) < 0) {
		free(t);
		return NULL;
	}
	return t;
}

const ProtobufCMessageDescriptor *
mbxctl_state_type(const struct mbxctl_state_types *t, const char *nf, int scope)
{
	if (t == NULL)
		return NULL;
	for (size_t i = 0; i < t->info->n_chain; i++) {
		const Mbx__V1__NfInfo *n = t->info->chain[i];

		if (strcmp(n->name, nf) == 0 && scope >= 0 && (size_t)scope < n->n_state_types)
			return mbx_proto_find(n->state_types[scope]);
	}
	return NULL;
}

void
mbxctl_state_types_free(struct mbxctl_state_types *t)
{
	if (t == NULL)
		return;
	mbx__v1__get_info_response__free_unpacked(t->info, NULL);
	free(t);
}
