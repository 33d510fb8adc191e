/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mbxctl: the command line of the mbx southbound API.
 *
 *   mbxctl --at ADDR info | stats
 *   mbxctl --at ADDR get-state [--nf NF] [--scope S] [--filter F] [--delete] [-o FILE]
 *   mbxctl --at ADDR put-state -i FILE
 *   mbxctl --at ADDR del-state [--nf NF] [--scope per-flow|multi-flow] [--filter F]
 *   mbxctl --at ADDR events enable --filter F --action drop|buffer|notify|process [--limit N]
 *   mbxctl --at ADDR events disable (--rule ID | --filter F) [--release in-order|drop]
 *   mbxctl --at ADDR events watch [--count N]
 *   mbxctl --ctl ADDR instances
 *   mbxctl --ctl ADDR move|copy --from A --to B [--filter F] [--guarantee G] [--mode M]
 *                               [--limit N]
 *
 * Output is JSON: one object, or for state and events one per line.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mbx/v1/dataplane.pb-c.h"
#include "mbx/v1/events.pb-c.h"
#include "mbx/v1/move.pb-c.h"
#include "mbx/v1/state.pb-c.h"
#include "mbx_filter_str.h"
#include "mbx_wire.h"
#include "mbxctl.h"

/*
 * Chunks per Put call and their bytes (well under the frame limit), and the
 * calls in flight at once: the server installs one call while the next ones
 * arrive and are decoded.
 */
#define PUT_BATCH  4096
#define PUT_BYTES  (1u << 20)
#define PUT_WINDOW 8

struct args {
	const char *at;
	const char *ctl;
	const char *from;
	const char *to;
	const char *guarantee;
	const char *mode;
	const char *token_file;
	const char *nf;
	const char *scope;
	const char *filter;
	const char *out;
	const char *in;
	const char *action;
	const char *release;
	unsigned long rule;
	unsigned long limit;
	unsigned long count;
	bool del;
};

static void
usage(FILE *f)
{
	fprintf(f,
		"Usage: mbxctl [--at ADDR] [--token FILE] COMMAND [options]\n"
		"  ADDR: unix:PATH or HOST:PORT (default: $MBX_AT)\n\n"
		"Commands:\n"
		"  info                      the instance: version, workers, ports, NF chain\n"
		"  stats                     counters of ports, workers, NFs, events\n"
		"  get-state                 export state as JSON Lines, or with -o FILE as "
		"binary\n"
		"      [--nf NF] [--scope per-flow|multi-flow|all-flows|all] [--filter F] "
		"[--delete]\n"
		"  put-state -i FILE         import a file written by get-state -o\n"
		"  del-state [--nf NF] [--scope per-flow|multi-flow] [--filter F]\n"
		"  events enable --filter F --action drop|buffer|notify|process [--limit N]\n"
		"  events disable (--rule ID | --filter F) [--release in-order|drop]\n"
		"  events watch [--count N]  print NOTIFY copies as JSON Lines\n\n"
		"Controller commands (mbxctld at --ctl ADDR, default $MBX_CTL):\n"
		"  instances                 the instances the controller knows\n"
		"  move --from A --to B [--filter F] [--guarantee none|lf|lf,op] [--mode "
		"p2p|controller]\n"
		"       [--limit N]          move flows and their state; progress, then a JSON "
		"summary;\n"
		"                            N: packets the source may hold meanwhile (default "
		"65536)\n"
		"  copy --from A --to B [--filter F]   copy state, nothing rerouted or deleted\n\n"
		"Filters: "
		"src=PREFIX,dst=PREFIX,sport=LO[-HI],dport=LO[-HI],proto=tcp|udp|icmp|N\n");
}

static int
fail(int rc, const char *what, const char *err)
{
	fprintf(stderr, "mbxctl: %s: %s (%s)\n", what, err, strerror(-rc));
	return 1;
}

static Mbx__V1__Scope
parse_scope(const char *s)
{
	if (s == NULL || strcmp(s, "per-flow") == 0)
		return MBX__V1__SCOPE__SCOPE_PER_FLOW;
	if (strcmp(s, "multi-flow") == 0)
		return MBX__V1__SCOPE__SCOPE_MULTI_FLOW;
	if (strcmp(s, "all-flows") == 0)
		return MBX__V1__SCOPE__SCOPE_ALL_FLOWS;
	return (Mbx__V1__Scope)-1;
}

static int
unary(struct mbxctl *c, const char *method, const ProtobufCMessage *req,
      const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *resp;
	char err[256];
	int rc = mbxctl_call(c, method, req, d, &resp, err, sizeof(err));

	if (rc < 0)
		return fail(rc, method, err);
	mbxctl_print_json(stdout, resp);
	putchar('\n');
	protobuf_c_message_free_unpacked(resp, NULL);
	return 0;
}

/* One line per chunk: {"chunk": the StateChunk, "decoded": the NF's message, if known}. */
static void
print_chunk(const struct mbxctl_state_types *types, const Mbx__V1__StateChunk *ch)
{
	const ProtobufCMessageDescriptor *d = mbxctl_state_type(types, ch->nf, ch->scope);
	ProtobufCMessage *st =
		d ? protobuf_c_message_unpack(d, NULL, ch->state.len, ch->state.data) : NULL;

	printf("{\"chunk\":");
	mbxctl_print_json(stdout, &ch->base);
	if (st != NULL) {
		printf(",\"decoded\":");
		mbxctl_print_json(stdout, st);
		protobuf_c_message_free_unpacked(st, NULL);
	}
	printf("}\n");
}

/*
 * A Get's frames straight into a state file: the chunks (field 2 of the
 * three Get responses) are copied as they came, each behind its length.
 */
static int
get_raw(struct mbxctl *c, const char *method, int64_t id, FILE *out, uint64_t *chunks)
{
	uint8_t *buf = NULL;
	size_t cap = 0;
	char err[256];
	bool more = true;
	int rc = 0;

	while (more && rc == 0) {
		const uint8_t *pl, *p, *end;
		struct mbx_wire_field f;
		uint8_t *o;
		size_t len;
		int64_t got;
		int r;

		rc = mbxctl_recv_payload(c, &got, &pl, &len, &more, err, sizeof(err));
		if (rc == 0 && got != id) {
			snprintf(err, sizeof(err), "unexpected frame from the server");
			rc = -EPROTO;
		}
		if (rc == 0)
			rc = mbxctl_payload_status(pl, len, err, sizeof(err));
		if (rc < 0)
			break;
		/* a 4-byte length for each chunk's tag and length (2 bytes at least) */
		if (2 * len + 8 > cap) {
			free(buf);
			cap = 2 * len + 8;
			buf = malloc(cap);
			if (buf == NULL) {
				rc = -ENOMEM;
				snprintf(err, sizeof(err), "out of memory");
				break;
			}
		}
		o = buf;
		p = pl;
		end = pl + len;
		while ((r = mbx_wire_next(&p, end, &f)) > 0) {
			if (f.num != 2)
				continue;
			if (f.type != MBX_WIRE_LEN || f.len > UINT32_MAX) {
				r = -1;
				break;
			}
			o[0] = (uint8_t)(f.len >> 24);
			o[1] = (uint8_t)(f.len >> 16);
			o[2] = (uint8_t)(f.len >> 8);
			o[3] = (uint8_t)f.len;
			memcpy(o + 4, f.data, f.len);
			o += 4 + f.len;
			(*chunks)++;
		}
		if (r < 0) {
			rc = -EPROTO;
			snprintf(err, sizeof(err), "undecodable response");
		} else if (fwrite(buf, 1, (size_t)(o - buf), out) != (size_t)(o - buf)) {
			rc = -EIO;
			snprintf(err, sizeof(err), "writing the file: %s", strerror(errno));
		}
	}
	free(buf);
	return rc < 0 ? fail(rc, method, err) : 0;
}

static int
get_scope(struct mbxctl *c, const struct args *a, Mbx__V1__Scope scope, FILE *out,
	  const struct mbxctl_state_types *types, uint64_t *chunks)
{
	Mbx__V1__GetPerflowRequest pf = MBX__V1__GET_PERFLOW_REQUEST__INIT;
	Mbx__V1__GetMultiflowRequest mf = MBX__V1__GET_MULTIFLOW_REQUEST__INIT;
	Mbx__V1__GetAllflowsRequest af = MBX__V1__GET_ALLFLOWS_REQUEST__INIT;
	const ProtobufCMessage *req;
	const char *method;
	struct mbx_filter_pb flt;
	char err[256];
	bool more = true;
	int64_t id;

	if (mbx_filter_str_parse(a->filter, &flt, err, sizeof(err)) < 0) {
		fprintf(stderr, "mbxctl: %s\n", err);
		return 2;
	}
	if (scope == MBX__V1__SCOPE__SCOPE_PER_FLOW) {
		pf.nf = (char *)(uintptr_t)(a->nf ? a->nf : "");
		pf.filter = &flt.f;
		pf.delete_ = a->del;
		req = &pf.base;
		method = "/mbx.v1.State/GetPerflow";
	} else if (scope == MBX__V1__SCOPE__SCOPE_MULTI_FLOW) {
		mf.nf = (char *)(uintptr_t)(a->nf ? a->nf : "");
		mf.filter = &flt.f;
		req = &mf.base;
		method = "/mbx.v1.State/GetMultiflow";
	} else {
		af.nf = (char *)(uintptr_t)(a->nf ? a->nf : "");
		req = &af.base;
		method = "/mbx.v1.State/GetAllflows";
	}
	id = mbxctl_send(c, method, req);
	if (id < 0)
		return fail((int)id, method, "send");
	if (out != NULL)
		return get_raw(c, method, id, out, chunks);
	while (more) {
		/* the three Get responses share their fields: decode them as one type */
		Mbx__V1__GetPerflowResponse *r;
		int rc = mbxctl_recv(c, id, &mbx__v1__get_perflow_response__descriptor,
				     (ProtobufCMessage **)&r, &more, err, sizeof(err));

		if (rc < 0)
			return fail(rc, method, err);
		for (size_t i = 0; i < r->n_chunks; i++)
			print_chunk(types, r->chunks[i]);
		*chunks += r->n_chunks;
		mbx__v1__get_perflow_response__free_unpacked(r, NULL);
	}
	return 0;
}

/* --scope all: every scope, in the order a put needs them (pool, hosts, flows). */
static int
get_state(struct mbxctl *c, const struct args *a)
{
	static const Mbx__V1__Scope all[] = {MBX__V1__SCOPE__SCOPE_ALL_FLOWS,
					     MBX__V1__SCOPE__SCOPE_MULTI_FLOW,
					     MBX__V1__SCOPE__SCOPE_PER_FLOW};
	bool every = a->scope != NULL && strcmp(a->scope, "all") == 0;
	Mbx__V1__Scope scope = every ? all[0] : parse_scope(a->scope);
	struct mbxctl_state_types *types = NULL;
	uint64_t chunks = 0;
	FILE *out = NULL;
	int rc = 0;

	if ((int)scope < 0) {
		fprintf(stderr, "mbxctl: bad --scope\n");
		return 2;
	}
	if (a->out != NULL) {
		out = fopen(a->out, "w");
		if (out == NULL || fwrite(MBXCTL_CHUNK_MAGIC, 1, 8, out) != 8) {
			fprintf(stderr, "mbxctl: %s: %s\n", a->out, strerror(errno));
			return 1;
		}
	}
	if (out == NULL)
		types = mbxctl_state_types_load(c); /* to decode each NF's message */
	for (unsigned int i = 0; i < (every ? 3u : 1u) && rc == 0; i++)
		rc = get_scope(c, a, every ? all[i] : scope, out, types, &chunks);
	mbxctl_state_types_free(types);
	if (out != NULL) {
		if (fclose(out) != 0 && rc == 0)
			return fail(-errno, a->out, "write");
		if (rc == 0)
			printf("{\"chunks\":%llu,\"file\":\"%s\"}\n", (unsigned long long)chunks,
			       a->out);
	}
	return rc;
}

/* A state file in memory: mapped when it is a regular file. */
struct state_file {
	uint8_t *data;
	size_t len;
	bool mapped;
};

static int
file_load(const char *path, struct state_file *f)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	size_t cap = 0;

	memset(f, 0, sizeof(*f));
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
		void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd,
			       0);

		if (m != MAP_FAILED) {
			close(fd);
			f->data = m;
			f->len = (size_t)st.st_size;
			f->mapped = true;
			return 0;
		}
	}
	for (;;) {
		ssize_t r;

		if (f->len == cap) {
			uint8_t *b = realloc(f->data, cap = cap ? cap * 2 : 1u << 20);

			if (b == NULL) {
				close(fd);
				return -ENOMEM;
			}
			f->data = b;
		}
		r = read(fd, f->data + f->len, cap - f->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = r < 0 ? -errno : 0;

			close(fd);
			return e;
		}
		f->len += (size_t)r;
	}
}

static void
file_unload(struct state_file *f)
{
	if (f->mapped)
		munmap(f->data, f->len);
	else
		free(f->data);
}

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Puts of one scope in flight on a connection. */
struct put_flight {
	struct mbxctl *c;
	const char *method;
	int64_t ids[PUT_WINDOW];
	size_t first[PUT_WINDOW], last[PUT_WINDOW]; /* the file's chunks each call holds */
	unsigned int n;
	uint64_t installed; /* by the calls that succeeded */
	int rc;		    /* the first error */
	char err[384];
};

/* Wait for the answer of one call in flight. @return 0, or -errno if the connection failed. */
static int
put_answer(struct put_flight *pf)
{
	const uint8_t *pl, *p, *end;
	struct mbx_wire_field f;
	char err[256];
	size_t len;
	int64_t id;
	unsigned int i;
	int rc = mbxctl_recv_payload(pf->c, &id, &pl, &len, NULL, err, sizeof(err));

	for (i = 0; rc == 0 && i < pf->n && pf->ids[i] != id; i++)
		;
	if (rc == 0 && i == pf->n) {
		snprintf(err, sizeof(err), "unexpected frame from the server");
		rc = -EPROTO;
	}
	if (rc < 0) {
		/* the connection is unusable: nothing more will be answered */
		if (pf->rc == 0) {
			pf->rc = rc;
			snprintf(pf->err, sizeof(pf->err), "%s", err);
		}
		pf->n = 0;
		return rc;
	}
	rc = mbxctl_payload_status(pl, len, err, sizeof(err));
	if (rc < 0 && pf->rc == 0) {
		pf->rc = rc;
		snprintf(pf->err, sizeof(pf->err),
			 "%s [the call with chunks %zu to %zu of the file]", err, pf->first[i],
			 pf->last[i]);
	}
	pf->n--;
	pf->ids[i] = pf->ids[pf->n];
	pf->first[i] = pf->first[pf->n];
	pf->last[i] = pf->last[pf->n];
	if (rc < 0)
		return 0;
	/* field 2 of the three Put responses: installed */
	p = pl;
	end = pl + len;
	while (mbx_wire_next(&p, end, &f) > 0)
		if (f.num == 2 && f.type == MBX_WIRE_VARINT)
			pf->installed += f.v;
	return 0;
}

/*
 * Send the chunks of scope @p scope in calls of bounded size, up to
 * PUT_WINDOW of them in flight, and wait for every answer. Each call is
 * all or nothing; after a refused call no further one is sent.
 */
static int
put_scope(struct mbxctl *c, const struct state_file *f, const uint8_t *scopes, int scope,
	  uint8_t *req, uint64_t *installed)
{
	static const char *const methods[] = {"/mbx.v1.State/PutPerflow",
					      "/mbx.v1.State/PutMultiflow",
					      "/mbx.v1.State/PutAllflows"};
	struct put_flight pf = {.c = c, .method = methods[scope]};
	size_t off = 8, i = 0;

	while (off < f->len && pf.rc == 0) {
		uint8_t *o = req;
		size_t k = 0, first = 0, last = 0;
		int64_t id;

		/* a request: field 1 (chunks) for each chunk, its bytes as in the file */
		for (; off < f->len && k < PUT_BATCH && (size_t)(o - req) < PUT_BYTES; i++) {
			uint32_t n = be32(f->data + off);

			if (scopes[i] == scope) {
				o = mbx_wire_put_bytes(o, 1, f->data + off + 4, n);
				first = k++ == 0 ? i : first;
				last = i;
			}
			off += 4 + (size_t)n;
		}
		if (k == 0)
			break;
		if (pf.n == PUT_WINDOW && put_answer(&pf) < 0)
			break;
		if (pf.rc != 0)
			break;
		id = mbxctl_send_payload(c, pf.method, req, (size_t)(o - req));
		if (id < 0) {
			pf.rc = (int)id;
			snprintf(pf.err, sizeof(pf.err), "send: %s", strerror((int)-id));
			break;
		}
		pf.ids[pf.n] = id;
		pf.first[pf.n] = first;
		pf.last[pf.n++] = last;
	}
	while (pf.n > 0)
		put_answer(&pf);
	*installed += pf.installed;
	if (pf.rc < 0) {
		fail(pf.rc, pf.method, pf.err);
		if (*installed > 0)
			fprintf(stderr, "mbxctl: %llu chunks of earlier calls stay installed\n",
				(unsigned long long)*installed);
		return 1;
	}
	return 0;
}

/*
 * put-state -i: the file's chunks go into requests as they are, without
 * being decoded; they are only checked (wire format and scope) before
 * anything is sent, so that a corrupt file installs nothing.
 */
static int
put_state(struct mbxctl *c, const struct args *a)
{
	struct state_file f;
	uint8_t *scopes = NULL, *req = NULL;
	size_t nb = 0, cap = 0, off = 8, most = 0;
	uint64_t installed = 0;
	int rc;

	if (a->in == NULL) {
		fprintf(stderr, "mbxctl: put-state needs -i FILE\n");
		return 2;
	}
	rc = file_load(a->in, &f);
	if (rc < 0) {
		fprintf(stderr, "mbxctl: %s: %s\n", a->in, strerror(-rc));
		return 1;
	}
	if (f.len < 8 || memcmp(f.data, MBXCTL_CHUNK_MAGIC, 8) != 0) {
		fprintf(stderr, "mbxctl: %s: not a state file written by get-state -o\n", a->in);
		file_unload(&f);
		return 1;
	}
	rc = 0;
	while (off < f.len) {
		size_t n = f.len - off >= 4 ? be32(f.data + off) : 0;
		int scope = 0;

		if (f.len - off < 4 || n > f.len - off - 4 ||
		    mbxctl_chunk_scan(f.data + off + 4, n, &scope) < 0) {
			fprintf(stderr, "mbxctl: %s: corrupt chunk %zu at byte %zu; nothing sent\n",
				a->in, nb, off);
			rc = 1;
			break;
		}
		if (nb == cap) {
			uint8_t *b = realloc(scopes, cap = cap ? cap * 2 : 4096);

			if (b == NULL) {
				fprintf(stderr, "mbxctl: out of memory\n");
				rc = 1;
				break;
			}
			scopes = b;
		}
		/* a scope the server does not know goes to PutPerflow, which refuses it */
		scopes[nb++] = (uint8_t)(scope >= 0 && scope <= 2 ? scope : 0);
		most = n > most ? n : most;
		off += 4 + n;
	}
	/* one request's room: PUT_BYTES, or a single chunk larger than that */
	if (rc == 0 && (req = malloc(PUT_BYTES + most + 16)) == NULL) {
		fprintf(stderr, "mbxctl: out of memory\n");
		rc = 1;
	}
	/* the pool before the hosts' blocks before the flows that use them */
	for (int s = 2; s >= 0 && rc == 0; s--)
		rc = put_scope(c, &f, scopes, s, req, &installed);
	free(req);
	free(scopes);
	file_unload(&f);
	if (rc == 0)
		printf("{\"installed\":%llu}\n", (unsigned long long)installed);
	return rc;
}

static int
del_state(struct mbxctl *c, const struct args *a)
{
	Mbx__V1__Scope scope = parse_scope(a->scope);
	Mbx__V1__DelPerflowRequest pf = MBX__V1__DEL_PERFLOW_REQUEST__INIT;
	Mbx__V1__DelMultiflowRequest mf = MBX__V1__DEL_MULTIFLOW_REQUEST__INIT;
	struct mbx_filter_pb flt;
	char err[256];

	if (scope == MBX__V1__SCOPE__SCOPE_ALL_FLOWS || (int)scope < 0 ||
	    mbx_filter_str_parse(a->filter, &flt, err, sizeof(err)) < 0) {
		fprintf(stderr, "mbxctl: %s\n",
			(int)scope < 0 || scope == MBX__V1__SCOPE__SCOPE_ALL_FLOWS
				? "del-state takes --scope per-flow or multi-flow"
				: err);
		return 2;
	}
	if (scope == MBX__V1__SCOPE__SCOPE_PER_FLOW) {
		pf.nf = (char *)(uintptr_t)(a->nf ? a->nf : "");
		pf.filter = &flt.f;
		return unary(c, "/mbx.v1.State/DelPerflow", &pf.base,
			     &mbx__v1__del_perflow_response__descriptor);
	}
	mf.nf = (char *)(uintptr_t)(a->nf ? a->nf : "");
	mf.filter = &flt.f;
	return unary(c, "/mbx.v1.State/DelMultiflow", &mf.base,
		     &mbx__v1__del_multiflow_response__descriptor);
}

static int
events(struct mbxctl *c, const char *sub, const struct args *a)
{
	struct mbx_filter_pb flt;
	char err[256];

	if (mbx_filter_str_parse(a->filter, &flt, err, sizeof(err)) < 0) {
		fprintf(stderr, "mbxctl: %s\n", err);
		return 2;
	}
	if (strcmp(sub, "enable") == 0) {
		Mbx__V1__EnableEventsRequest r = MBX__V1__ENABLE_EVENTS_REQUEST__INIT;
		char name[32];
		const ProtobufCEnumValue *v;

		snprintf(name, sizeof(name), "ACTION_%s", a->action ? a->action : "");
		for (char *p = name; *p; p++)
			*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		v = protobuf_c_enum_descriptor_get_value_by_name(&mbx__v1__action__descriptor,
								 name);
		if (v == NULL || a->filter == NULL) {
			fprintf(stderr, "mbxctl: events enable needs --filter and --action "
					"drop|buffer|notify|process\n");
			return 2;
		}
		r.filter = &flt.f;
		r.action = (Mbx__V1__Action)v->value;
		r.buffer_limit = (uint32_t)a->limit;
		return unary(c, "/mbx.v1.Events/EnableEvents", &r.base,
			     &mbx__v1__enable_events_response__descriptor);
	}
	if (strcmp(sub, "disable") == 0) {
		Mbx__V1__DisableEventsRequest r = MBX__V1__DISABLE_EVENTS_REQUEST__INIT;

		if (a->rule == 0 && a->filter == NULL) {
			fprintf(stderr, "mbxctl: events disable needs --rule or --filter\n");
			return 2;
		}
		r.rule_id = (uint32_t)a->rule;
		r.filter = &flt.f;
		r.release = a->release && strcmp(a->release, "drop") == 0
				    ? MBX__V1__RELEASE__RELEASE_DROP
				    : MBX__V1__RELEASE__RELEASE_IN_ORDER;
		return unary(c, "/mbx.v1.Events/DisableEvents", &r.base,
			     &mbx__v1__disable_events_response__descriptor);
	}
	if (strcmp(sub, "watch") == 0) {
		Mbx__V1__SubscribeRequest r = MBX__V1__SUBSCRIBE_REQUEST__INIT;
		int64_t id = mbxctl_send(c, "/mbx.v1.Events/Subscribe", &r.base);
		unsigned long seen = 0;
		bool more = true;

		if (id < 0)
			return fail((int)id, "Subscribe", "send");
		while (more && (a->count == 0 || seen < a->count)) {
			Mbx__V1__SubscribeResponse *resp;
			int rc = mbxctl_recv(c, id, &mbx__v1__subscribe_response__descriptor,
					     (ProtobufCMessage **)&resp, &more, err, sizeof(err));

			if (rc < 0)
				return fail(rc, "Subscribe", err);
			for (size_t i = 0; i < resp->n_events; i++, seen++) {
				mbxctl_print_json(stdout, &resp->events[i]->base);
				putchar('\n');
			}
			fflush(stdout);
			mbx__v1__subscribe_response__free_unpacked(resp, NULL);
		}
		return 0;
	}
	usage(stderr);
	return 2;
}

static int
parse_guarantee(const char *s, Mbx__V1__Guarantee *g)
{
	if (s == NULL || strcmp(s, "lf,op") == 0 || strcmp(s, "loss-free,order-preserving") == 0)
		*g = MBX__V1__GUARANTEE__GUARANTEE_LOSS_FREE_ORDER_PRESERVING;
	else if (strcmp(s, "lf") == 0 || strcmp(s, "loss-free") == 0)
		*g = MBX__V1__GUARANTEE__GUARANTEE_LOSS_FREE;
	else if (strcmp(s, "none") == 0)
		*g = MBX__V1__GUARANTEE__GUARANTEE_NONE;
	else
		return -EINVAL;
	return 0;
}

/* move or copy through mbxctld: progress lines on stderr, the summary as JSON on stdout */
static int
move(struct mbxctl *c, const struct args *a, bool copy)
{
	Mbx__V1__MoveRequest req = MBX__V1__MOVE_REQUEST__INIT;
	struct mbx_filter_pb flt;
	const char *method = copy ? "/mbx.v1.Controller/Copy" : "/mbx.v1.Controller/Move";
	char err[256];
	bool more = true;
	int64_t id;
	int rc = 0;

	if (a->from == NULL || a->to == NULL || a->limit > UINT32_MAX ||
	    parse_guarantee(a->guarantee, &req.guarantee) < 0 ||
	    (a->mode != NULL && strcmp(a->mode, "p2p") != 0 &&
	     strcmp(a->mode, "controller") != 0) ||
	    mbx_filter_str_parse(a->filter, &flt, err, sizeof(err)) < 0) {
		fprintf(stderr,
			"mbxctl: %s needs --from and --to; --guarantee none|lf|lf,op; "
			"--mode p2p|controller; a valid --filter; --limit below 2^32\n",
			copy ? "copy" : "move");
		return 2;
	}
	req.from = (char *)(uintptr_t)a->from;
	req.to = (char *)(uintptr_t)a->to;
	req.filter = &flt.f;
	req.redirect_limit = (uint32_t)a->limit;
	req.mode = a->mode && strcmp(a->mode, "controller") == 0
			   ? MBX__V1__MOVE_MODE__MOVE_MODE_CONTROLLER
			   : MBX__V1__MOVE_MODE__MOVE_MODE_P2P;
	id = mbxctl_send(c, method, &req.base);
	if (id < 0)
		return fail((int)id, method, "send");
	while (more) {
		Mbx__V1__MoveResponse *r;

		rc = mbxctl_recv_raw(c, id, &mbx__v1__move_response__descriptor,
				     (ProtobufCMessage **)&r, &more, err, sizeof(err));
		if (rc < 0)
			return fail(rc, method, err);
		if (r->progress != NULL && r->progress[0] != '\0')
			fprintf(stderr, "%s\n", r->progress);
		rc = mbxctl_status(&r->base, err, sizeof(err));
		if (!more) {
			if (r->summary != NULL) {
				mbxctl_print_json(stdout, &r->summary->base);
				putchar('\n');
			}
			if (rc < 0)
				fprintf(stderr, "mbxctl: %s failed: %s\n", copy ? "copy" : "move",
					err);
		}
		mbx__v1__move_response__free_unpacked(r, NULL);
	}
	return rc < 0 ? 1 : 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"at", required_argument, NULL, 'a'},
		{"token", required_argument, NULL, 'T'},
		{"nf", required_argument, NULL, 'n'},
		{"scope", required_argument, NULL, 's'},
		{"filter", required_argument, NULL, 'f'},
		{"delete", no_argument, NULL, 'd'},
		{"action", required_argument, NULL, 'A'},
		{"release", required_argument, NULL, 'R'},
		{"rule", required_argument, NULL, 'r'},
		{"limit", required_argument, NULL, 'l'},
		{"count", required_argument, NULL, 'c'},
		{"ctl", required_argument, NULL, 'C'},
		{"from", required_argument, NULL, 'F'},
		{"to", required_argument, NULL, 'O'},
		{"guarantee", required_argument, NULL, 'G'},
		{"mode", required_argument, NULL, 'M'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct args a = {.at = getenv("MBX_AT"), .ctl = getenv("MBX_CTL")};
	struct mbxctl *c;
	char *token = NULL;
	const char *cmd;
	bool ctl_cmd;
	int opt, rc;

	/* options may come before or after the command */
	while ((opt = getopt_long(argc, argv, "o:i:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'a':
			a.at = optarg;
			break;
		case 'T':
			a.token_file = optarg;
			break;
		case 'n':
			a.nf = optarg;
			break;
		case 's':
			a.scope = optarg;
			break;
		case 'f':
			a.filter = optarg;
			break;
		case 'd':
			a.del = true;
			break;
		case 'A':
			a.action = optarg;
			break;
		case 'R':
			a.release = optarg;
			break;
		case 'r':
			a.rule = strtoul(optarg, NULL, 10);
			break;
		case 'l':
			a.limit = strtoul(optarg, NULL, 10);
			break;
		case 'c':
			a.count = strtoul(optarg, NULL, 10);
			break;
		case 'o':
			a.out = optarg;
			break;
		case 'i':
			a.in = optarg;
			break;
		case 'C':
			a.ctl = optarg;
			break;
		case 'F':
			a.from = optarg;
			break;
		case 'O':
			a.to = optarg;
			break;
		case 'G':
			a.guarantee = optarg;
			break;
		case 'M':
			a.mode = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "mbxctl: no command\n");
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	/* the controller's commands go to mbxctld, the others to an instance */
	ctl_cmd = strcmp(cmd, "move") == 0 || strcmp(cmd, "copy") == 0 ||
		  strcmp(cmd, "instances") == 0;
	if (ctl_cmd)
		a.at = a.ctl;
	if (a.at == NULL) {
		fprintf(stderr, "mbxctl: %s\n",
			ctl_cmd ? "no --ctl ADDR (or $MBX_CTL)" : "no --at ADDR (or $MBX_AT)");
		return 2;
	}
	if (a.token_file != NULL && (token = mbxctl_read_token(a.token_file)) == NULL) {
		fprintf(stderr, "mbxctl: --token %s: %s\n", a.token_file, strerror(errno));
		return 1;
	}
	c = mbxctl_connect(a.at, token);
	free(token);
	if (c == NULL) {
		fprintf(stderr, "mbxctl: cannot connect to %s: %s\n", a.at, strerror(errno));
		return 1;
	}
	if (strcmp(cmd, "info") == 0) {
		Mbx__V1__GetInfoRequest r = MBX__V1__GET_INFO_REQUEST__INIT;

		rc = unary(c, "/mbx.v1.Dataplane/GetInfo", &r.base,
			   &mbx__v1__get_info_response__descriptor);
	} else if (strcmp(cmd, "stats") == 0) {
		Mbx__V1__GetStatsRequest r = MBX__V1__GET_STATS_REQUEST__INIT;

		rc = unary(c, "/mbx.v1.Dataplane/GetStats", &r.base,
			   &mbx__v1__get_stats_response__descriptor);
	} else if (strcmp(cmd, "get-state") == 0) {
		rc = get_state(c, &a);
	} else if (strcmp(cmd, "put-state") == 0) {
		rc = put_state(c, &a);
	} else if (strcmp(cmd, "del-state") == 0) {
		rc = del_state(c, &a);
	} else if (strcmp(cmd, "move") == 0 || strcmp(cmd, "copy") == 0) {
		rc = move(c, &a, strcmp(cmd, "copy") == 0);
	} else if (strcmp(cmd, "instances") == 0) {
		Mbx__V1__ListInstancesRequest r = MBX__V1__LIST_INSTANCES_REQUEST__INIT;

		rc = unary(c, "/mbx.v1.Controller/ListInstances", &r.base,
			   &mbx__v1__list_instances_response__descriptor);
	} else if (strcmp(cmd, "events") == 0 && optind + 1 < argc) {
		rc = events(c, argv[optind + 1], &a);
	} else {
		usage(stderr);
		rc = 2;
	}
	mbxctl_close(c);
	return rc;
}
