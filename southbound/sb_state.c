/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * service State: get, put and delete NF state at every scope.
 *
 * Gets and per-flow deletes are jobs: one slice of one worker's table per
 * step (mbx_state_export_slice), one response frame per slice. The slice
 * after is posted to the worker before the one just exported is encoded and
 * sent, so that the worker walks its table while this loop writes. Puts
 * group the chunks by the worker that owns each key and install them slice
 * by slice (mbx_state_import), two slices in flight, so that the worker
 * installs one while the other waits in its ring; if a slice fails, every
 * slice installed before it is undone, so a Put is all or nothing. While a
 * job waits for a worker, the loop sleeps or serves other calls (the next
 * pipelined Put is decoded meanwhile): answers come back asynchronously
 * (sb_ctrl_post).
 *
 * Bulk state does not go through protobuf-c structures: a Put's chunks are
 * read from the request's bytes straight into records (mbx_wire.h), and a
 * Get's records are written as StateChunk bytes straight into the response,
 * the same bytes protobuf-c would write. No allocation per chunk.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>
#include <rte_cycles.h>
#include <rte_pause.h>

#include "mbx/v1/state.pb-c.h"
#include "mbx_ctrl.h"
#include "mbx_sb.h"
#include "mbx_state.h"
#include "mbx_wire.h"

/* Table slots per export slice, and record bytes per frame. */
#define SLICE_SLOTS 65536 /* table slots per export slice */
#define SLICE_FLOWS 2048  /* flows per export slice */
#define FRAME_BYTES (1u << 20)
/* Records per import slice, and import slices in flight per Put. */
#define SLICE_RECS 1024
#define PUT_DEPTH  2
/* Largest multi-flow or all-flows export of one worker. */
#define MULTI_MAX (256u << 20)

static const char *
nf_name(int nf)
{
	return nf < 0 ? "*" : sb_dp()->chain.nf[nf].ops->name;
}

static const char *
key_str(const struct mbx_flow_key *k, char *buf)
{
	if (k->family == 0)
		return "(instance)";
	return mbx_flow_key_str(k, buf, MBX_FLOW_KEY_STRLEN);
}

/* Asynchronous control requests: answered on the worker's response ring. */

static struct {
	int fd[RTE_MAX_LCORE];
	struct event *ev[RTE_MAX_LCORE];
	/* posted and not yet taken: fewer than the response ring holds, or answers would be lost */
	unsigned int inflight[RTE_MAX_LCORE];
	bool ready;
} answers;

static void
take_answers(struct mbx_worker *w)
{
	struct mbx_ctrl_req *r;

	while ((r = mbx_ctrl_reply(w)) != NULL) {
		struct sb_ctrl *c = r->cookie;

		answers.inflight[c->worker]--;
		c->pending = false;
		if (c->call != NULL)
			sb_call_wake(c->call);
	}
}

static void
on_answers(evutil_socket_t fd, short what, void *arg)
{
	uint64_t n;
	ssize_t r = read(fd, &n, sizeof(n)); /* resets the eventfd; EAGAIN is fine */

	(void)r;
	(void)what;
	take_answers(arg);
}

/* An eventfd per worker, written by the worker after it answered (mbx_ctrl_serve). */
static int
answers_init(void)
{
	struct mbx_dp *dp = sb_dp();

	if (answers.ready)
		return 0;
	for (uint16_t i = 0; i < dp->nb_workers; i++) {
		struct mbx_worker *w = dp->workers[i];
		int fd;

		if (answers.ev[i] != NULL)
			continue;
		fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (fd < 0)
			return -errno;
		answers.ev[i] = event_new(sb_base(), fd, EV_READ | EV_PERSIST, on_answers, w);
		if (answers.ev[i] == NULL || event_add(answers.ev[i], NULL) < 0) {
			if (answers.ev[i] != NULL)
				event_free(answers.ev[i]);
			answers.ev[i] = NULL;
			close(fd);
			return -ENOMEM;
		}
		answers.fd[i] = fd;
		/* published to the worker by the ring enqueue of its first async request */
		w->resp_fd = fd;
	}
	answers.ready = true;
	return 0;
}

int
sb_ctrl_post(struct sb_ctrl *c, uint16_t worker, mbx_ctrl_fn fn, void *arg, struct sb_call *call)
{
	int rc = answers_init();

	if (rc < 0)
		return rc;
	if (answers.inflight[worker] >= MBX_CTRL_RING_SIZE - 1)
		take_answers(sb_dp()->workers[worker]);
	if (answers.inflight[worker] >= MBX_CTRL_RING_SIZE - 1)
		return -ENOBUFS; /* the caller tries again */
	c->req = (struct mbx_ctrl_req){.fn = fn, .arg = arg, .async = true, .cookie = c};
	c->call = call;
	c->worker = worker;
	rc = mbx_ctrl_post(sb_dp()->workers[worker], &c->req);
	c->pending = rc == 0;
	answers.inflight[worker] += c->pending;
	return rc;
}

void
sb_ctrl_wait(struct sb_ctrl *c)
{
	unsigned int spins = 0;

	c->call = NULL; /* the caller is going away: nobody to wake */
	while (c->pending) {
		take_answers(sb_dp()->workers[c->worker]);
		if (!c->pending)
			break;
		if (++spins < 2048)
			rte_pause();
		else
			rte_delay_us_sleep(10); /* sched_yield() may not give up the CPU */
	}
}

/* A FlowKey's bytes, as mbx_key_to_pb() and protobuf-c make them. */
static size_t
key_size(const struct mbx_flow_key *k)
{
	size_t n = mbx_pb_addr_len(k->family);

	return mbx_wire_uint_size(1, k->family) + mbx_wire_uint_size(2, k->proto) +
	       2 * mbx_wire_len_size(3, n) + mbx_wire_uint_size(5, rte_be_to_cpu_16(k->sport)) +
	       mbx_wire_uint_size(6, rte_be_to_cpu_16(k->dport));
}

static uint8_t *
key_put(uint8_t *o, const struct mbx_flow_key *k)
{
	size_t n = mbx_pb_addr_len(k->family);

	o = mbx_wire_put_uint(o, 1, k->family);
	o = mbx_wire_put_uint(o, 2, k->proto);
	o = mbx_wire_put_bytes(o, 3, &k->src, n);
	o = mbx_wire_put_bytes(o, 4, &k->dst, n);
	o = mbx_wire_put_uint(o, 5, rte_be_to_cpu_16(k->sport));
	return mbx_wire_put_uint(o, 6, rte_be_to_cpu_16(k->dport));
}

size_t
sb_chunk_size(const struct mbx_state_rec *r, const char *nf, uint32_t version)
{
	size_t nlen = strlen(nf);

	return (nlen ? mbx_wire_len_size(1, nlen) : 0) + mbx_wire_uint_size(2, r->scope) +
	       (r->key.family != 0 ? mbx_wire_len_size(3, key_size(&r->key)) : 0) +
	       (r->has_reply ? mbx_wire_len_size(4, key_size(&r->reply_key)) : 0) +
	       mbx_wire_uint_size(5, version) +
	       (r->state_len ? mbx_wire_len_size(6, r->state_len) : 0) +
	       mbx_wire_uint_size(7, r->side == MBX_SIDE_OUTSIDE);
}

uint8_t *
sb_chunk_put(uint8_t *o, const struct mbx_state_rec *r, const char *nf, uint32_t version)
{
	size_t nlen = strlen(nf);

	if (nlen)
		o = mbx_wire_put_bytes(o, 1, nf, nlen);
	o = mbx_wire_put_uint(o, 2, r->scope);
	if (r->key.family != 0)
		o = key_put(mbx_wire_put_len_hdr(o, 3, key_size(&r->key)), &r->key);
	if (r->has_reply)
		o = key_put(mbx_wire_put_len_hdr(o, 4, key_size(&r->reply_key)), &r->reply_key);
	o = mbx_wire_put_uint(o, 5, version);
	if (r->state_len)
		o = mbx_wire_put_bytes(o, 6, r->state, r->state_len);
	return mbx_wire_put_uint(o, 7, r->side == MBX_SIDE_OUTSIDE);
}

/* A response being written. */
struct sb_out {
	uint8_t *buf;
	size_t cap;
	size_t len;
};

static int
out_room(struct sb_out *o, size_t n)
{
	if (o->len + n > o->cap) {
		size_t cap = RTE_MAX(o->cap * 2, o->len + n + 4096);
		uint8_t *b = realloc(o->buf, cap);

		if (b == NULL)
			return -ENOMEM;
		o->buf = b;
		o->cap = cap;
	}
	return 0;
}

/*
 * Send records as response frames of at most about FRAME_BYTES each.
 * GetPerflowResponse, GetMultiflowResponse and GetAllflowsResponse share
 * their field numbers (status 1, chunks 2, a total 3), so one encoder
 * serves the three streams. The last frame (!more) carries the Status and
 * @p total.
 */
static int
send_records(struct sb_call *call, struct sb_out *o, const uint8_t *buf, size_t used, bool more,
	     uint64_t total)
{
	const struct mbx_chain *ch = &sb_dp()->chain;
	const struct mbx_state_rec *rec = (const void *)buf;

	do {
		bool last;

		o->len = 0;
		while ((const uint8_t *)rec < buf + used) {
			const char *nf = ch->nf[rec->nf].ops->name;
			uint32_t version = ch->nf[rec->nf].ops->state_version;
			size_t n = sb_chunk_size(rec, nf, version);

			if (o->len > 0 && o->len + n > FRAME_BYTES)
				break;
			if (out_room(o, n + 16) < 0)
				return -ENOMEM;
			sb_chunk_put(mbx_wire_put_len_hdr(o->buf + o->len, 2, n), rec, nf, version);
			o->len += mbx_wire_len_size(2, n);
			rec = mbx_state_rec_next(rec);
		}
		last = (const uint8_t *)rec >= buf + used;
		if (last && !more) {
			/* Status first, as protobuf-c orders the fields; an empty one is OK */
			if (out_room(o, 16) < 0)
				return -ENOMEM;
			memmove(o->buf + 2, o->buf, o->len);
			o->buf[0] = 0x0a;
			o->buf[1] = 0;
			o->len += 2;
			o->len = (size_t)(mbx_wire_put_uint(o->buf + o->len, 3, total) - o->buf);
		}
		if (sb_reply_payload(call, o->buf, o->len, !last || more) < 0)
			return -ECONNRESET;
	} while ((const uint8_t *)rec < buf + used);
	return 0;
}

/* Per-flow get, and per-flow delete (an export that only deletes). */

struct get_job {
	struct mbx_export x[2]; /* one being exported by the worker, one being sent */
	struct sb_ctrl ctrl;	/* the slice in flight */
	struct sb_call *call;
	int cur;	 /* x[cur] is the slice in flight (or to post) */
	uint16_t worker; /* its worker */
	bool posted;
	uint64_t total;
	bool del_only;
	struct sb_out out;
};

static void
get_job_free(void *arg)
{
	struct get_job *j = arg;

	if (j->posted)
		sb_ctrl_wait(&j->ctrl);
	free(j->x[0].buf);
	free(j->x[1].buf);
	free(j->out.buf);
	free(j);
}

static bool
get_step(struct sb_call *call, void *arg)
{
	struct get_job *j = arg;
	struct mbx_dp *dp = sb_dp();
	struct mbx_export *x, *next;
	bool more;
	int rc;

	if (!j->posted) {
		/* the first slice, or a slice the worker's full ring refused */
		rc = sb_ctrl_post(&j->ctrl, j->worker, mbx_state_export_slice, &j->x[j->cur], call);
		if (rc == -ENOBUFS)
			return false; /* again at once */
		if (rc < 0)
			goto fail;
		j->posted = true;
	}
	if (j->ctrl.pending) {
		sb_call_sleep(call); /* until the worker answers */
		return false;
	}
	j->posted = false;
	rc = j->ctrl.req.rc;
	if (rc < 0)
		goto fail;
	x = &j->x[j->cur];
	next = &j->x[1 - j->cur];
	j->total += x->flows;
	next->cursor = x->cursor;
	if (x->cursor == UINT32_MAX) {
		next->cursor = 0;
		j->worker++;
	}
	more = j->worker < dp->nb_workers;
	/*
	 * The worker exports the next slice while this one is encoded and sent;
	 * but for a get that deletes, only once this one is out: a failed send
	 * loses one slice's flows, not two.
	 */
	if (more && x->del && x->used > 0 &&
	    send_records(call, &j->out, x->buf, x->used, true, 0) < 0)
		return true;
	if (more) {
		j->cur = 1 - j->cur;
		rc = sb_ctrl_post(&j->ctrl, j->worker, mbx_state_export_slice, next, call);
		if (rc < 0 && rc != -ENOBUFS)
			goto fail;
		j->posted = rc == 0;
	}
	if (!(more && x->del) && x->used > 0 &&
	    send_records(call, &j->out, x->buf, x->used, true, 0) < 0)
		return true;
	if (more) {
		if (j->posted)
			sb_call_sleep(call);
		return false;
	}
	if (j->del_only) {
		Mbx__V1__DelPerflowResponse r = MBX__V1__DEL_PERFLOW_RESPONSE__INIT;
		Mbx__V1__Status st = MBX__V1__STATUS__INIT;

		r.status = &st;
		r.deleted = j->total;
		sb_reply(call, &r.base, false);
	} else {
		send_records(call, &j->out, NULL, 0, false, j->total);
	}
	return true;
fail:
	sb_reply_error(call, -rc, "export on worker %u: %s", j->worker, strerror(-rc));
	return true;
}

static int
start_get(struct sb_call *call, const char *nf, const Mbx__V1__Filter *filter, bool del,
	  bool del_only)
{
	struct get_job *j = calloc(1, sizeof(*j));
	int idx = sb_nf_index(nf), rc;

	if (j == NULL)
		return -ENOMEM;
	rc = idx == -ENOENT ? -ENOENT : mbx_filter_from_pb(filter, &j->x[0].filter);
	if (rc < 0) {
		free(j);
		return sb_reply_error(call, -rc,
				      rc == -ENOENT ? "no NF '%s' in the chain" : "bad filter", nf);
	}
	j->x[0].nf = idx;
	j->x[0].del = del;
	j->x[0].max_slots = SLICE_SLOTS;
	j->x[0].max_flows = SLICE_FLOWS;
	j->call = call;
	j->del_only = del_only;
	if (!del_only) {
		j->x[0].cap = FRAME_BYTES;
		j->x[0].buf = malloc(FRAME_BYTES);
		j->x[1].buf = malloc(FRAME_BYTES);
		if (j->x[0].buf == NULL || j->x[1].buf == NULL) {
			get_job_free(j);
			return -ENOMEM;
		}
	}
	/* the same export, in two buffers */
	{
		uint8_t *b = j->x[1].buf;

		j->x[1] = j->x[0];
		j->x[1].buf = b;
	}
	sb_call_start_job(call, get_step, j, get_job_free);
	return 0;
}

static int
get_perflow(struct sb_call *call, const uint8_t *payload, size_t len)
{
	Mbx__V1__GetPerflowRequest *req = mbx__v1__get_perflow_request__unpack(NULL, len, payload);
	int rc;

	if (req == NULL)
		return -EBADMSG;
	rc = start_get(call, req->nf, req->filter, req->delete_, false);
	mbx__v1__get_perflow_request__free_unpacked(req, NULL);
	return rc;
}

static int
del_perflow(struct sb_call *call, const uint8_t *payload, size_t len)
{
	Mbx__V1__DelPerflowRequest *req = mbx__v1__del_perflow_request__unpack(NULL, len, payload);
	int rc;

	if (req == NULL)
		return -EBADMSG;
	rc = start_get(call, req->nf, req->filter, true, true);
	mbx__v1__del_perflow_request__free_unpacked(req, NULL);
	return rc;
}

/* Multi-flow and all-flows gets: one worker (or the instance) per step. */

struct multi_job {
	struct mbx_multi_get m;
	uint16_t worker;
	uint64_t total;
	bool all;
	struct sb_out out;
};

static void
multi_job_free(void *arg)
{
	struct multi_job *j = arg;

	free(j->m.buf);
	free(j->out.buf);
	free(j);
}

static bool
multi_step(struct sb_call *call, void *arg)
{
	struct multi_job *j = arg;
	struct mbx_dp *dp = sb_dp();
	int rc;

	for (;;) {
		if (j->all) {
			long n = mbx_state_all_get(dp, j->m.nf, j->m.buf, j->m.cap);

			rc = n < 0 ? (int)n : 0;
			j->m.used = n < 0 ? 0 : (size_t)n;
		} else {
			rc = mbx_ctrl_call(dp->workers[j->worker], mbx_state_multi_get, &j->m);
		}
		if (rc != -ENOBUFS || j->m.cap >= MULTI_MAX)
			break;
		/* a big export: grow the buffer and ask again */
		free(j->m.buf);
		j->m.cap *= 4;
		j->m.buf = malloc(j->m.cap);
		if (j->m.buf == NULL) {
			rc = -ENOMEM;
			break;
		}
	}
	if (rc < 0) {
		sb_reply_error(call, -rc, "state export: %s", strerror(-rc));
		return true;
	}
	j->total += j->all ? 0 : j->m.entries;
	if (j->m.used > 0 && send_records(call, &j->out, j->m.buf, j->m.used, true, 0) < 0)
		return true;
	if (!j->all && ++j->worker < dp->nb_workers)
		return false;
	send_records(call, &j->out, NULL, 0, false, j->total);
	return true;
}

static int
start_multi(struct sb_call *call, const char *nf, const Mbx__V1__Filter *filter, bool all)
{
	struct multi_job *j = calloc(1, sizeof(*j));
	int idx = sb_nf_index(nf);

	if (j == NULL)
		return -ENOMEM;
	if (idx == -ENOENT || mbx_filter_from_pb(filter, &j->m.filter) < 0) {
		free(j);
		return sb_reply_error(call, idx == -ENOENT ? ENOENT : EINVAL,
				      idx == -ENOENT ? "no NF '%s' in the chain" : "bad filter",
				      nf);
	}
	j->m.nf = idx;
	j->all = all;
	j->m.cap = FRAME_BYTES;
	j->m.buf = malloc(j->m.cap);
	if (j->m.buf == NULL) {
		multi_job_free(j);
		return -ENOMEM;
	}
	sb_call_start_job(call, multi_step, j, multi_job_free);
	return 0;
}

static int
get_multiflow(struct sb_call *call, const uint8_t *payload, size_t len)
{
	Mbx__V1__GetMultiflowRequest *req =
		mbx__v1__get_multiflow_request__unpack(NULL, len, payload);
	int rc;

	if (req == NULL)
		return -EBADMSG;
	rc = start_multi(call, req->nf, req->filter, false);
	mbx__v1__get_multiflow_request__free_unpacked(req, NULL);
	return rc;
}

static int
get_allflows(struct sb_call *call, const uint8_t *payload, size_t len)
{
	Mbx__V1__GetAllflowsRequest *req =
		mbx__v1__get_allflows_request__unpack(NULL, len, payload);
	int rc;

	if (req == NULL)
		return -EBADMSG;
	rc = start_multi(call, req->nf, NULL, true);
	mbx__v1__get_allflows_request__free_unpacked(req, NULL);
	return rc;
}

static int
del_multiflow(struct sb_call *call, const uint8_t *payload, size_t len)
{
	Mbx__V1__DelMultiflowRequest *req =
		mbx__v1__del_multiflow_request__unpack(NULL, len, payload);
	Mbx__V1__DelMultiflowResponse r = MBX__V1__DEL_MULTIFLOW_RESPONSE__INIT;
	Mbx__V1__Status st = MBX__V1__STATUS__INIT;
	struct mbx_multi_del d = {0};
	int rc;

	if (req == NULL)
		return -EBADMSG;
	d.nf = sb_nf_index(req->nf);
	rc = d.nf == -ENOENT ? -ENOENT : mbx_filter_from_pb(req->filter, &d.filter);
	mbx__v1__del_multiflow_request__free_unpacked(req, NULL);
	if (rc < 0)
		return rc;
	rc = mbx_ctrl_call_all(sb_dp(), mbx_state_multi_del, &d);
	if (rc < 0)
		return rc;
	r.status = &st;
	r.deleted = d.deleted;
	sb_reply(call, &r.base, false);
	return 0;
}

/* Imports: the puts, and a move's destination. */

/* Import slices in flight at once at most (the done list keeps room for them). */
#define IMPORT_INFLIGHT 4

struct done_slice {
	uint16_t worker;
	uint32_t n;
	struct mbx_undo *undo;
};

struct sb_import {
	uint8_t *recs[RTE_MAX_LCORE]; /* per-flow and multi-flow records by owner worker */
	size_t len[RTE_MAX_LCORE];
	size_t cap[RTE_MAX_LCORE];
	uint8_t *all; /* all-flows records, installed first */
	size_t all_len, all_cap;
	size_t off; /* records of the current worker handed to slices */
	uint16_t worker;
	uint64_t installed;
	struct done_slice *done; /* what the slices installed, for undo */
	size_t nb_done, cap_done;
};

struct sb_import *
sb_import_new(void)
{
	return calloc(1, sizeof(struct sb_import));
}

void
sb_import_free(struct sb_import *im)
{
	if (im == NULL)
		return;
	for (int i = 0; i < RTE_MAX_LCORE; i++)
		free(im->recs[i]);
	free(im->all);
	for (size_t i = 0; i < im->nb_done; i++)
		free(im->done[i].undo);
	free(im->done);
	free(im);
}

uint64_t
sb_import_installed(const struct sb_import *im)
{
	return im->installed;
}

/* Room for @p need more bytes of records. @return where they go, or NULL. */
static uint8_t *
rec_room(uint8_t **buf, size_t *len, size_t *cap, size_t need)
{
	if (*len + need > *cap) {
		size_t c = RTE_MAX(*cap * 2, *len + need + 65536);
		uint8_t *b = realloc(*buf, c);

		if (b == NULL)
			return NULL;
		*buf = b;
		*cap = c;
	}
	return *buf + *len;
}

/* What a chunk is checked for before it becomes a record: 0, or an errno and why. */
static int
chunk_check(int nf, const char *name, int name_len, int32_t cscope, uint32_t version, bool key_ok,
	    bool has_reply, bool reply_ok, size_t state_len, int scope, char *msg, size_t mlen)
{
	const struct mbx_nf_ops *ops;

	if (nf < 0) {
		snprintf(msg, mlen, "no NF '%.*s' in the chain", name_len, name);
		return ENOENT;
	}
	ops = sb_dp()->chain.nf[nf].ops;
	if ((scope >= 0 && cscope != scope) || cscope < 0 || cscope > MBX_SCOPE_ALL_FLOWS) {
		snprintf(msg, mlen, "chunk of scope %d sent to a put of scope %d", cscope, scope);
		return EINVAL;
	}
	if (version > ops->state_version || version == 0) {
		snprintf(msg, mlen, "%s state version %u, this instance reads up to %u", ops->name,
			 version, ops->state_version);
		return EPROTONOSUPPORT;
	}
	if ((cscope != MBX_SCOPE_ALL_FLOWS && !key_ok) || (has_reply && !reply_ok)) {
		snprintf(msg, mlen, "%s chunk with a missing or bad key", ops->name);
		return EINVAL;
	}
	if (state_len > UINT32_MAX - 4096) {
		snprintf(msg, mlen, "%s state of %zu bytes", ops->name, state_len);
		return EINVAL;
	}
	return 0;
}

/*
 * Room for a record of @p state_len bytes of state in @p scope: on the list
 * of the worker that owns @p key (first packet from @p side), or with the
 * all-flows records. Its header is for the caller to fill.
 */
static struct mbx_state_rec *
rec_new(struct sb_import *im, int32_t scope, const struct mbx_flow_key *key, uint8_t side,
	size_t state_len)
{
	size_t need = mbx_state_rec_size(state_len);
	struct mbx_state_rec *r;
	uint16_t w;

	if (scope == MBX_SCOPE_ALL_FLOWS) {
		r = (void *)rec_room(&im->all, &im->all_len, &im->all_cap, need);
		if (r != NULL)
			im->all_len += need;
	} else {
		w = key != NULL ? mbx_state_owner(sb_dp(), key, side) : 0;
		r = (void *)rec_room(&im->recs[w], &im->len[w], &im->cap[w], need);
		if (r != NULL)
			im->len[w] += need;
	}
	if (r != NULL)
		r->len = (uint32_t)need;
	return r;
}

/* Is a FlowKey from the wire good for the dataplane (a partial key may leave dst out)? */
static bool
key_ok_wire(const struct mbx_wire_key *w)
{
	size_t n = w->family == MBX__V1__FAMILY__FAMILY_IPV6 ? 16 : 4;

	return w->present &&
	       (w->family == MBX__V1__FAMILY__FAMILY_IPV4 ||
		w->family == MBX__V1__FAMILY__FAMILY_IPV6) &&
	       w->src_len == n && (w->dst_len == n || w->dst_len == 0) && w->proto <= 255 &&
	       w->sport <= UINT16_MAX && w->dport <= UINT16_MAX;
}

/* Write a good FlowKey from the wire (key_ok_wire()) into @p k. */
static void
key_from_wire(const struct mbx_wire_key *w, struct mbx_flow_key *k)
{
	size_t n = mbx_pb_addr_len((uint8_t)w->family);

	memset(k, 0, sizeof(*k));
	k->family = (uint8_t)w->family;
	k->proto = (uint8_t)w->proto;
	memcpy(&k->src, w->src, n);
	if (w->dst_len != 0)
		memcpy(&k->dst, w->dst, n);
	k->sport = rte_cpu_to_be_16((uint16_t)w->sport);
	k->dport = rte_cpu_to_be_16((uint16_t)w->dport);
}

static int
nf_index_n(const char *name, size_t len)
{
	const struct mbx_chain *ch = &sb_dp()->chain;

	for (int i = 0; i < ch->n; i++) {
		const char *s = ch->nf[i].ops->name;

		/* @p name is not a C string: it may hold a NUL before its end */
		if (strlen(s) == len && memcmp(s, name, len) == 0)
			return i;
	}
	return -ENOENT;
}

int
sb_import_add_wire(struct sb_import *im, const uint8_t *buf, size_t len, int scope, char *msg,
		   size_t mlen)
{
	struct mbx_wire_chunk c;
	struct mbx_flow_key owner_key;
	struct mbx_state_rec *r;
	bool all, key_ok, reply_ok;
	uint8_t side;
	int nf, err;

	if (mbx_wire_chunk_parse(buf, len, &c) < 0) {
		snprintf(msg, mlen, "a StateChunk that does not decode");
		return EBADMSG;
	}
	nf = c.nf_len > 0 ? nf_index_n(c.nf, c.nf_len) : -ENOENT;
	key_ok = key_ok_wire(&c.key);
	reply_ok = key_ok_wire(&c.reply_key);
	err = chunk_check(nf, c.nf, (int)(c.nf_len < 256 ? c.nf_len : 256), c.scope, c.version,
			  key_ok, c.reply_key.present, reply_ok, c.state_len, scope, msg, mlen);
	if (err != 0)
		return err;
	all = c.scope == MBX_SCOPE_ALL_FLOWS;
	side = c.from_outside && !all ? MBX_SIDE_OUTSIDE : MBX_SIDE_INSIDE;
	/* the keys go straight into the record; the owner needs one first with several workers */
	if (!all && sb_dp()->nb_workers > 1)
		key_from_wire(&c.key, &owner_key);
	r = rec_new(im, c.scope, !all && sb_dp()->nb_workers > 1 ? &owner_key : NULL, side,
		    c.state_len);
	if (r == NULL)
		return ENOMEM;
	r->nf = (uint16_t)nf;
	r->scope = (uint8_t)c.scope;
	r->has_reply = c.reply_key.present;
	if (all)
		memset(&r->key, 0, sizeof(r->key));
	else
		key_from_wire(&c.key, &r->key);
	if (r->has_reply)
		key_from_wire(&c.reply_key, &r->reply_key);
	else
		memset(&r->reply_key, 0, sizeof(r->reply_key));
	r->state_len = (uint32_t)c.state_len;
	r->side = side;
	memset(r->pad, 0, sizeof(r->pad));
	memcpy(r->state, c.state, c.state_len);
	return 0;
}

void
sb_import_undo(struct sb_import *im)
{
	for (size_t i = im->nb_done; i > 0; i--) {
		struct done_slice *d = &im->done[i - 1];
		struct mbx_undo_req u = {d->undo, d->n};

		mbx_ctrl_call(sb_dp()->workers[d->worker], mbx_state_undo, &u);
		free(d->undo);
	}
	im->nb_done = 0;
	im->installed = 0;
}

/* Forget the records installed, keep what undo needs. */
static void
import_reset(struct sb_import *im)
{
	for (int i = 0; i < RTE_MAX_LCORE; i++)
		im->len[i] = 0;
	im->all_len = 0;
	im->off = 0;
	im->worker = 0;
}

/* The all-flows records, while every worker is parked. */
static int
import_all(struct sb_import *im, char *msg, size_t mlen)
{
	uint16_t bad = 0;
	int rc = mbx_state_all_put(sb_dp(), im->all, im->all_len, &bad);

	if (rc < 0) {
		snprintf(msg, mlen, "%s refused the all-flows state: %s", nf_name(bad),
			 strerror(-rc));
		return rc;
	}
	for (const uint8_t *p = im->all; p < im->all + im->all_len;
	     p = (const void *)mbx_state_rec_next((const void *)p))
		im->installed++;
	im->all_len = 0;
	return 0;
}

/*
 * The next slice of per-flow and multi-flow records: @p x and its undo
 * log, for @p worker. @return 1, 0 when every record has its slice, -ENOMEM.
 */
static int
import_next(struct sb_import *im, struct mbx_import *x, uint16_t *worker)
{
	struct mbx_dp *dp = sb_dp();
	const uint8_t *start, *p, *end;
	uint32_t n = 0;

	while (im->worker < dp->nb_workers && im->off >= im->len[im->worker]) {
		im->worker++;
		im->off = 0;
	}
	if (im->worker == dp->nb_workers)
		return 0;
	if (im->cap_done < im->nb_done + IMPORT_INFLIGHT) {
		size_t cap = RTE_MAX(im->cap_done * 2, (size_t)16);
		void *b = realloc(im->done, cap * sizeof(*im->done));

		if (b == NULL)
			return -ENOMEM;
		im->done = b;
		im->cap_done = cap;
	}
	start = im->recs[im->worker] + im->off;
	end = im->recs[im->worker] + im->len[im->worker];
	for (p = start; p < end && n < SLICE_RECS; n++)
		p = (const uint8_t *)mbx_state_rec_next((const void *)p);
	memset(x, 0, sizeof(*x));
	x->undo = malloc(n * sizeof(*x->undo));
	if (x->undo == NULL)
		return -ENOMEM;
	x->recs = start;
	x->len = p - start;
	*worker = im->worker;
	im->off += x->len;
	return 1;
}

/* A slice's outcome: kept for undo, or (@p rc < 0) the reason in @p msg. */
static int
import_finish(struct sb_import *im, uint16_t worker, struct mbx_import *x, int rc, char *msg,
	      size_t mlen)
{
	struct done_slice *d;

	if (rc < 0) {
		char ks[MBX_FLOW_KEY_STRLEN];

		/* the slice undid its own records */
		free(x->undo);
		snprintf(msg, mlen, "%s state of %s refused: %s", nf_name(x->bad_nf),
			 key_str(&x->bad_key, ks), x->why[0] ? x->why : strerror(-rc));
		return rc;
	}
	d = &im->done[im->nb_done++]; /* import_next() made room */
	d->worker = worker;
	d->n = x->done;
	d->undo = x->undo;
	im->installed += x->done;
	return 0;
}

int
sb_import_step(struct sb_import *im, bool *done, char *msg, size_t mlen)
{
	struct mbx_dp *dp = sb_dp();
	struct mbx_import x;
	uint16_t worker;
	int rc;

	*done = false;
	if (im->all_len > 0) {
		/* the all-flows state first: the flows may need it (a rule set) */
		rc = import_all(im, msg, mlen);
		if (rc < 0) {
			sb_import_undo(im);
			import_reset(im);
		}
		return rc;
	}
	rc = import_next(im, &x, &worker);
	if (rc == 0) {
		import_reset(im);
		*done = true;
		return 0;
	}
	if (rc < 0) {
		snprintf(msg, mlen, "out of memory");
	} else {
		rc = mbx_ctrl_call(dp->workers[worker], mbx_state_import, &x);
		rc = import_finish(im, worker, &x, rc, msg, mlen);
	}
	if (rc < 0) {
		sb_import_undo(im);
		import_reset(im);
	}
	return rc;
}

int
sb_import_run(struct sb_import *im, char *msg, size_t mlen)
{
	bool done = false;
	int rc = 0;

	while (!done && rc == 0)
		rc = sb_import_step(im, &done, msg, mlen);
	return rc;
}

/* A put as a job: slices posted to the workers, PUT_DEPTH in flight. */

enum put_slot_state { SLOT_FREE, SLOT_READY, SLOT_POSTED };

struct put_slot {
	enum put_slot_state state;
	uint16_t worker;
	struct mbx_import x;
	struct sb_ctrl ctrl;
};

struct put_job {
	struct sb_import *im;
	struct put_slot slot[PUT_DEPTH];
	int rc; /* the first failure */
	char msg[256];
	bool answered; /* the client has the outcome */
};

static void
put_fail(struct put_job *j, int rc, const char *msg)
{
	if (j->rc == 0) {
		j->rc = rc;
		snprintf(j->msg, sizeof(j->msg), "%s", msg);
	}
}

static bool
put_step(struct sb_call *call, void *arg)
{
	struct put_job *j = arg;
	struct sb_import *im = j->im;
	bool waiting = false, ready = false;
	char msg[256];

	if (im->all_len > 0) {
		/* instance-wide state first, every worker parked meanwhile */
		int rc = import_all(im, msg, sizeof(msg));

		if (rc < 0) {
			sb_reply_error(call, -rc, "%s; nothing installed", msg);
			j->answered = true;
			return true;
		}
		return false;
	}
	for (int i = 0; i < PUT_DEPTH; i++) {
		struct put_slot *s = &j->slot[i];
		int rc;

		if (s->state == SLOT_POSTED && !s->ctrl.pending) {
			rc = import_finish(im, s->worker, &s->x, s->ctrl.req.rc, msg, sizeof(msg));
			if (rc < 0)
				put_fail(j, rc, msg);
			s->state = SLOT_FREE;
		}
		if (s->state == SLOT_FREE && j->rc == 0) {
			rc = import_next(im, &s->x, &s->worker);
			if (rc < 0)
				put_fail(j, rc, "out of memory");
			if (rc > 0)
				s->state = SLOT_READY;
		}
		if (s->state == SLOT_READY && j->rc != 0) {
			free(s->x.undo);
			s->state = SLOT_FREE;
		}
		if (s->state == SLOT_READY) {
			rc = sb_ctrl_post(&s->ctrl, s->worker, mbx_state_import, &s->x, call);
			if (rc == 0) {
				s->state = SLOT_POSTED;
			} else if (rc != -ENOBUFS) {
				snprintf(msg, sizeof(msg), "worker %u: %s", s->worker,
					 strerror(-rc));
				put_fail(j, rc, msg);
				free(s->x.undo);
				s->state = SLOT_FREE;
			}
		}
		waiting |= s->state == SLOT_POSTED;
		ready |= s->state == SLOT_READY;
	}
	if (waiting) {
		sb_call_sleep(call); /* until a worker answers */
		return false;
	}
	if (ready)
		return false; /* a worker's ring was full: again at once */
	if (j->rc < 0) {
		sb_import_undo(im);
		sb_reply_error(call, -j->rc, "%s; nothing installed", j->msg);
		j->answered = true;
		return true;
	}
	{
		/* the three Put responses share their fields */
		Mbx__V1__PutPerflowResponse r = MBX__V1__PUT_PERFLOW_RESPONSE__INIT;
		Mbx__V1__Status st = MBX__V1__STATUS__INIT;

		r.status = &st;
		r.installed = im->installed;
		sb_reply(call, &r.base, false);
	}
	j->answered = true;
	return true;
}

static void
put_free(void *arg)
{
	struct put_job *j = arg;

	/* the client went away (or the loop stops): let the workers finish first */
	for (int i = 0; i < PUT_DEPTH; i++) {
		struct put_slot *s = &j->slot[i];

		if (s->state == SLOT_POSTED) {
			sb_ctrl_wait(&s->ctrl);
			if (import_finish(j->im, s->worker, &s->x, s->ctrl.req.rc, j->msg,
					  sizeof(j->msg)) < 0)
				put_fail(j, -EIO, "");
		} else if (s->state == SLOT_READY) {
			free(s->x.undo);
		}
	}
	/* a Put is all or nothing: a client gone before its answer gets nothing (the
	 * all-flows part, committed first with the workers parked, stays) */
	if (!j->answered && sb_import_installed(j->im) > 0) {
		SB_LOG(NOTICE, "a Put's client went away: %" PRIu64 " flows taken out again",
		       sb_import_installed(j->im));
		sb_import_undo(j->im);
	}
	sb_import_free(j->im);
	free(j);
}

/* A Put's chunks, read from the request's bytes into records: nothing is decoded twice. */
static int
start_put(struct sb_call *call, const uint8_t *payload, size_t len, enum mbx_scope scope)
{
	struct put_job *j = calloc(1, sizeof(*j));
	const uint8_t *p = payload, *end = payload + len;
	struct mbx_wire_field f;
	size_t i = 0;
	char msg[160];
	int rc;

	if (j == NULL || (j->im = sb_import_new()) == NULL) {
		free(j);
		return -ENOMEM;
	}
	/* field 1 of the three Put requests: chunks */
	while ((rc = mbx_wire_next(&p, end, &f)) > 0) {
		int err;

		if (f.num != 1)
			continue;
		if (f.type != MBX_WIRE_LEN) {
			rc = -1;
			break;
		}
		err = sb_import_add_wire(j->im, f.data, f.len, (int)scope, msg, sizeof(msg));
		if (err != 0) {
			put_free(j);
			return sb_reply_error(call, err, "chunk %zu: %s; nothing installed", i,
					      err == ENOMEM ? "out of memory" : msg);
		}
		i++;
	}
	if (rc < 0) {
		put_free(j);
		return -EBADMSG;
	}
	sb_call_start_job(call, put_step, j, put_free);
	return 0;
}

static int
put_perflow(struct sb_call *call, const uint8_t *payload, size_t len)
{
	return start_put(call, payload, len, MBX_SCOPE_PER_FLOW);
}

static int
put_multiflow(struct sb_call *call, const uint8_t *payload, size_t len)
{
	return start_put(call, payload, len, MBX_SCOPE_MULTI_FLOW);
}

static int
put_allflows(struct sb_call *call, const uint8_t *payload, size_t len)
{
	return start_put(call, payload, len, MBX_SCOPE_ALL_FLOWS);
}

const struct sb_method sb_state_methods[] = {
	{"/mbx.v1.State/GetPerflow", get_perflow},
	{"/mbx.v1.State/PutPerflow", put_perflow},
	{"/mbx.v1.State/DelPerflow", del_perflow},
	{"/mbx.v1.State/GetMultiflow", get_multiflow},
	{"/mbx.v1.State/PutMultiflow", put_multiflow},
	{"/mbx.v1.State/DelMultiflow", del_multiflow},
	{"/mbx.v1.State/GetAllflows", get_allflows},
	{"/mbx.v1.State/PutAllflows", put_allflows},
	{NULL, NULL},
};
