/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * service State: get, put and delete NF state at every scope.
 *
 * Gets and per-flow deletes are jobs: one slice of one worker's table per
 * step (mbx_state_export_slice), one response frame per slice. Puts group
 * the chunks by the worker that owns each key and install them slice by
 * slice (mbx_state_import); if a slice fails, every slice installed before
 * it is undone, so a Put is all or nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mbx/v1/state.pb-c.h"
#include "mbx_ctrl.h"
#include "mbx_sb.h"
#include "mbx_state.h"

/* Table slots per export slice, and record bytes per frame. */
#define SLICE_SLOTS 65536 /* table slots per export slice */
#define SLICE_FLOWS 2048  /* flows per export slice */
#define FRAME_BYTES (1u << 20)
/* Records per import slice. */
#define SLICE_RECS 1024
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

/* Records to chunks. */

int
sb_chunks_init(struct sb_chunks *s, size_t cap)
{
	s->cap = cap;
	s->chunks = calloc(cap, sizeof(*s->chunks));
	s->ptrs = calloc(cap, sizeof(*s->ptrs));
	s->keys = calloc(cap * 2, sizeof(*s->keys));
	return s->chunks && s->ptrs && s->keys ? 0 : -ENOMEM;
}

void
sb_chunks_fini(struct sb_chunks *s)
{
	free(s->chunks);
	free(s->ptrs);
	free(s->keys);
}

size_t
sb_chunks_fill(struct sb_chunks *s, const uint8_t *buf, size_t used, size_t *consumed)
{
	const struct mbx_state_rec *rec = (const void *)buf;
	size_t n = 0;

	while ((const uint8_t *)rec < buf + used && n < s->cap) {
		Mbx__V1__StateChunk *c = &s->chunks[n];

		mbx__v1__state_chunk__init(c);
		c->nf = (char *)(uintptr_t)nf_name(rec->nf);
		c->scope = (Mbx__V1__Scope)rec->scope;
		c->version = sb_dp()->chain.nf[rec->nf].ops->state_version;
		if (rec->key.family != 0)
			c->key = mbx_key_to_pb(&rec->key, &s->keys[2 * n]);
		if (rec->has_reply)
			c->reply_key = mbx_key_to_pb(&rec->reply_key, &s->keys[2 * n + 1]);
		c->state.data = (uint8_t *)(uintptr_t)rec->state;
		c->state.len = rec->state_len;
		c->from_outside = rec->side == MBX_SIDE_OUTSIDE;
		s->ptrs[n++] = c;
		rec = mbx_state_rec_next(rec);
	}
	*consumed = (const uint8_t *)rec - buf;
	return n;
}

/*
 * Send records as response frames. GetPerflowResponse, GetMultiflowResponse
 * and GetAllflowsResponse share their field numbers (status 1, chunks 2, a
 * total 3), so one encoder serves the three streams.
 */
static int
send_records(struct sb_call *call, struct sb_chunks *s, const uint8_t *buf, size_t used, bool more,
	     uint64_t total)
{
	Mbx__V1__GetPerflowResponse r = MBX__V1__GET_PERFLOW_RESPONSE__INIT;
	Mbx__V1__Status st = MBX__V1__STATUS__INIT;
	size_t off = 0, consumed;

	do {
		r.n_chunks = sb_chunks_fill(s, buf + off, used - off, &consumed);
		r.chunks = s->ptrs;
		off += consumed;
		bool last = off >= used;

		if (last && !more) {
			r.status = &st;
			r.flows = total;
		}
		if (sb_reply(call, &r.base, !last || more) < 0)
			return -ECONNRESET;
	} while (off < used);
	return 0;
}

/* Per-flow get, and per-flow delete (an export that only deletes). */

struct get_job {
	struct mbx_export x;
	uint16_t worker;
	uint64_t total;
	bool del_only;
	struct sb_chunks set;
};

static void
get_job_free(void *arg)
{
	struct get_job *j = arg;

	free(j->x.buf);
	sb_chunks_fini(&j->set);
	free(j);
}

static bool
get_step(struct sb_call *call, void *arg)
{
	struct get_job *j = arg;
	struct mbx_dp *dp = sb_dp();
	int rc = mbx_ctrl_call(dp->workers[j->worker], mbx_state_export_slice, &j->x);

	if (rc < 0) {
		sb_reply_error(call, -rc, "export on worker %u: %s", j->worker, strerror(-rc));
		return true;
	}
	j->total += j->x.flows;
	if (j->x.used > 0 && send_records(call, &j->set, j->x.buf, j->x.used, true, 0) < 0)
		return true;
	if (j->x.cursor != UINT32_MAX)
		return false;
	j->x.cursor = 0;
	if (++j->worker < dp->nb_workers)
		return false;
	if (j->del_only) {
		Mbx__V1__DelPerflowResponse r = MBX__V1__DEL_PERFLOW_RESPONSE__INIT;
		Mbx__V1__Status st = MBX__V1__STATUS__INIT;

		r.status = &st;
		r.deleted = j->total;
		sb_reply(call, &r.base, false);
	} else {
		send_records(call, &j->set, NULL, 0, false, j->total);
	}
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
	rc = idx == -ENOENT ? -ENOENT : mbx_filter_from_pb(filter, &j->x.filter);
	if (rc < 0) {
		free(j);
		return sb_reply_error(call, -rc,
				      rc == -ENOENT ? "no NF '%s' in the chain" : "bad filter", nf);
	}
	j->x.nf = idx;
	j->x.del = del;
	j->x.max_slots = SLICE_SLOTS;
	j->x.max_flows = SLICE_FLOWS;
	j->del_only = del_only;
	if (!del_only) {
		j->x.cap = FRAME_BYTES;
		j->x.buf = malloc(j->x.cap);
		if (j->x.buf == NULL ||
		    sb_chunks_init(&j->set, FRAME_BYTES / sizeof(struct mbx_state_rec)) < 0) {
			get_job_free(j);
			return -ENOMEM;
		}
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
	struct sb_chunks set;
};

static void
multi_job_free(void *arg)
{
	struct multi_job *j = arg;

	free(j->m.buf);
	sb_chunks_fini(&j->set);
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
	if (j->m.used > 0 && send_records(call, &j->set, j->m.buf, j->m.used, true, 0) < 0)
		return true;
	if (!j->all && ++j->worker < dp->nb_workers)
		return false;
	send_records(call, &j->set, NULL, 0, false, j->total);
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
	if (j->m.buf == NULL ||
	    sb_chunks_init(&j->set, FRAME_BYTES / sizeof(struct mbx_state_rec)) < 0) {
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
	size_t off; /* progress in the current worker's records */
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

static int
rec_append(uint8_t **buf, size_t *len, size_t *cap, const struct mbx_state_rec *hdr,
	   const uint8_t *state)
{
	size_t need = mbx_state_rec_size(hdr->state_len);
	struct mbx_state_rec *r;

	if (*len + need > *cap) {
		size_t c = RTE_MAX(*cap * 2, *len + need + 4096);
		uint8_t *b = realloc(*buf, c);

		if (b == NULL)
			return -ENOMEM;
		*buf = b;
		*cap = c;
	}
	r = (struct mbx_state_rec *)(*buf + *len);
	*r = *hdr;
	r->len = (uint32_t)need;
	memcpy(r->state, state, hdr->state_len);
	*len += need;
	return 0;
}

int
sb_import_add(struct sb_import *im, const Mbx__V1__StateChunk *c, int scope, char *msg, size_t mlen)
{
	int idx = sb_nf_index(c->nf);
	const struct mbx_nf_ops *ops;
	struct mbx_state_rec r;
	uint16_t w;

	memset(&r, 0, sizeof(r));
	if (idx < 0) {
		snprintf(msg, mlen, "no NF '%s' in the chain", c->nf);
		return ENOENT;
	}
	ops = sb_dp()->chain.nf[idx].ops;
	if ((scope >= 0 && (int)c->scope != scope) || (int)c->scope < 0 ||
	    (int)c->scope > MBX_SCOPE_ALL_FLOWS) {
		snprintf(msg, mlen, "chunk of scope %d sent to a put of scope %d", c->scope, scope);
		return EINVAL;
	}
	if (c->version > ops->state_version || c->version == 0) {
		snprintf(msg, mlen, "%s state version %u, this instance reads up to %u", c->nf,
			 c->version, ops->state_version);
		return EPROTONOSUPPORT;
	}
	if (((int)c->scope != MBX_SCOPE_ALL_FLOWS &&
	     (c->key == NULL || mbx_key_from_pb(c->key, &r.key) < 0)) ||
	    (c->reply_key != NULL && mbx_key_from_pb(c->reply_key, &r.reply_key) < 0)) {
		snprintf(msg, mlen, "%s chunk with a missing or bad key", c->nf);
		return EINVAL;
	}
	r.nf = (uint16_t)idx;
	r.scope = (uint8_t)c->scope;
	r.has_reply = c->reply_key != NULL;
	r.state_len = (uint32_t)c->state.len;
	if ((int)c->scope == MBX_SCOPE_ALL_FLOWS)
		return rec_append(&im->all, &im->all_len, &im->all_cap, &r, c->state.data) < 0
			       ? ENOMEM
			       : 0;
	r.side = c->from_outside ? MBX_SIDE_OUTSIDE : MBX_SIDE_INSIDE;
	w = mbx_state_owner(sb_dp(), &r.key, r.side);
	return rec_append(&im->recs[w], &im->len[w], &im->cap[w], &r, c->state.data) < 0 ? ENOMEM
											 : 0;
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

int
sb_import_step(struct sb_import *im, bool *done, char *msg, size_t mlen)
{
	struct mbx_dp *dp = sb_dp();
	struct mbx_import x = {0};
	const uint8_t *start, *p, *end;
	struct done_slice *d;
	uint32_t n = 0;
	uint16_t bad = 0;
	int rc;

	*done = false;
	if (im->all_len > 0) {
		/* the all-flows state first: the flows may need it (a rule set) */
		rc = mbx_state_all_put(dp, im->all, im->all_len, &bad);
		if (rc < 0) {
			snprintf(msg, mlen, "%s refused the all-flows state: %s", nf_name(bad),
				 strerror(-rc));
			sb_import_undo(im);
			import_reset(im);
			return rc;
		}
		for (p = im->all; p < im->all + im->all_len;
		     p = (const void *)mbx_state_rec_next((const void *)p))
			im->installed++;
		im->all_len = 0;
		return 0;
	}
	while (im->worker < dp->nb_workers && im->off >= im->len[im->worker]) {
		im->worker++;
		im->off = 0;
	}
	if (im->worker == dp->nb_workers) {
		import_reset(im);
		*done = true;
		return 0;
	}
	if (im->nb_done == im->cap_done) {
		size_t cap = RTE_MAX(im->cap_done * 2, (size_t)16);
		void *b = realloc(im->done, cap * sizeof(*im->done));

		if (b == NULL)
			goto nomem;
		im->done = b;
		im->cap_done = cap;
	}
	start = im->recs[im->worker] + im->off;
	end = im->recs[im->worker] + im->len[im->worker];
	for (p = start; p < end && n < SLICE_RECS; n++)
		p = (const uint8_t *)mbx_state_rec_next((const void *)p);
	d = &im->done[im->nb_done];
	d->worker = im->worker;
	d->undo = malloc(n * sizeof(*d->undo));
	if (d->undo == NULL)
		goto nomem;
	x.recs = start;
	x.len = p - start;
	x.undo = d->undo;
	rc = mbx_ctrl_call(dp->workers[im->worker], mbx_state_import, &x);
	if (rc < 0) {
		char ks[MBX_FLOW_KEY_STRLEN];

		free(d->undo);
		snprintf(msg, mlen, "%s state of %s refused: %s", nf_name(x.bad_nf),
			 key_str(&x.bad_key, ks), strerror(-rc));
		sb_import_undo(im);
		import_reset(im);
		return rc;
	}
	d->n = x.done;
	im->nb_done++;
	im->installed += x.done;
	im->off += x.len;
	return 0;
nomem:
	snprintf(msg, mlen, "out of memory");
	sb_import_undo(im);
	import_reset(im);
	return -ENOMEM;
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

/* A put as a job: one slice per step. */
static bool
put_step(struct sb_call *call, void *arg)
{
	struct sb_import *im = arg;
	char msg[256];
	bool done;
	int rc = sb_import_step(im, &done, msg, sizeof(msg));

	if (rc < 0) {
		sb_reply_error(call, -rc, "%s; nothing installed", msg);
		return true;
	}
	if (done) {
		/* the three Put responses share their fields */
		Mbx__V1__PutPerflowResponse r = MBX__V1__PUT_PERFLOW_RESPONSE__INIT;
		Mbx__V1__Status st = MBX__V1__STATUS__INIT;

		r.status = &st;
		r.installed = im->installed;
		sb_reply(call, &r.base, false);
	}
	return done;
}

static void
put_free(void *arg)
{
	sb_import_free(arg);
}

static int
start_put(struct sb_call *call, Mbx__V1__StateChunk **chunks, size_t n, enum mbx_scope scope)
{
	struct sb_import *im = sb_import_new();
	char msg[160];

	if (im == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int err = sb_import_add(im, chunks[i], scope, msg, sizeof(msg));

		if (err != 0) {
			sb_import_free(im);
			return sb_reply_error(call, err, "chunk %zu: %s; nothing installed", i,
					      err == ENOMEM ? "out of memory" : msg);
		}
	}
	sb_call_start_job(call, put_step, im, put_free);
	return 0;
}

static int
put_perflow(struct sb_call *call, const uint8_t *payload, size_t len)
{
	Mbx__V1__PutPerflowRequest *req = mbx__v1__put_perflow_request__unpack(NULL, len, payload);
	int rc;

	if (req == NULL)
		return -EBADMSG;
	rc = start_put(call, req->chunks, req->n_chunks, MBX_SCOPE_PER_FLOW);
	mbx__v1__put_perflow_request__free_unpacked(req, NULL);
	return rc;
}

static int
put_multiflow(struct sb_call *call, const uint8_t *payload, size_t len)
{
	Mbx__V1__PutMultiflowRequest *req =
		mbx__v1__put_multiflow_request__unpack(NULL, len, payload);
	int rc;

	if (req == NULL)
		return -EBADMSG;
	rc = start_put(call, req->chunks, req->n_chunks, MBX_SCOPE_MULTI_FLOW);
	mbx__v1__put_multiflow_request__free_unpacked(req, NULL);
	return rc;
}

static int
put_allflows(struct sb_call *call, const uint8_t *payload, size_t len)
{
	Mbx__V1__PutAllflowsRequest *req =
		mbx__v1__put_allflows_request__unpack(NULL, len, payload);
	int rc;

	if (req == NULL)
		return -EBADMSG;
	rc = start_put(call, req->chunks, req->n_chunks, MBX_SCOPE_ALL_FLOWS);
	mbx__v1__put_allflows_request__free_unpacked(req, NULL);
	return rc;
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
