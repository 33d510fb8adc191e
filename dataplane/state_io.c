/* SPDX-License-Identifier: BSD-3-Clause */
/* State export and import in slices: see mbx_state.h. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_hash.h>

#include "mbx_ctrl.h"
#include "mbx_state.h"

/* Records per import group: the hash buckets of a group's keys are fetched together. */
#define IMPORT_GROUP (RTE_HASH_LOOKUP_BULK_MAX / 2)

uint16_t
mbx_state_owner(const struct mbx_dp *dp, const struct mbx_flow_key *key, uint8_t side)
{
	struct mbx_pkt p;

	if (dp->nb_workers == 1)
		return 0;
	/* the owner of a flow is the owner of its first packet */
	memset(&p, 0, sizeof(p));
	p.key = *key;
	p.side = side;
	return mbx_owner(dp, &p);
}

static bool
nf_has_state(struct mbx_worker *w, int nf, struct mbx_flow *f)
{
	const struct mbx_nf_ops *ops = w->dp->chain.nf[nf].ops;

	/* flow_get with no room answers 0 (nothing) or -ENOBUFS (something) */
	return ops->flow_get != NULL && ops->flow_get(&w->nf[nf], f, NULL, 0) != 0;
}

/* Encode one NF's state of @f as a record at buf+used; 0 if it has none. */
static int
put_flow_rec(struct mbx_worker *w, struct mbx_export *x, int nf, struct mbx_flow *f)
{
	const struct mbx_nf_ops *ops = w->dp->chain.nf[nf].ops;
	struct mbx_flow_key *keys = mbx_flow_keys(w->table, f);
	struct mbx_state_rec *r = (struct mbx_state_rec *)(x->buf + x->used);
	int len;

	if (ops->flow_get == NULL)
		return 0;
	if (x->cap - x->used < mbx_state_rec_size(0))
		return -ENOBUFS;
	len = ops->flow_get(&w->nf[nf], f, r->state,
			    x->cap - x->used - sizeof(struct mbx_state_rec));
	if (len <= 0)
		return len;
	r->len = (uint32_t)mbx_state_rec_size(len);
	r->nf = (uint16_t)nf;
	r->scope = MBX_SCOPE_PER_FLOW;
	r->has_reply = (f->flags & MBX_FLOW_F_REV_KEYED) != 0;
	r->key = keys[0];
	r->reply_key = keys[1];
	r->state_len = (uint32_t)len;
	r->side = (f->flags & MBX_FLOW_F_FROM_OUTSIDE) ? MBX_SIDE_OUTSIDE : MBX_SIDE_INSIDE;
	memset(r->pad, 0, sizeof(r->pad));
	x->used += r->len;
	return 1;
}

struct export_walk {
	struct mbx_worker *w;
	struct mbx_export *x;
};

static int
export_cb(struct mbx_flow *f, void *arg)
{
	struct export_walk *ew = arg;
	struct mbx_worker *w = ew->w;
	struct mbx_export *x = ew->x;
	size_t mark = x->used;
	bool any = x->nf < 0;

	if (f->flags & MBX_FLOW_F_PENDING)
		return 0;
	if (!mbx_filter_match(&x->filter, &mbx_flow_keys(w->table, f)[0]))
		return 0;
	if (x->max_flows != 0 && x->flows == x->max_flows)
		return EAGAIN; /* the slice is full: this flow starts the next one */
	if (x->buf != NULL) {
		for (int i = 0; i < w->dp->chain.n; i++) {
			int rc;

			if (x->nf >= 0 && i != x->nf)
				continue;
			rc = put_flow_rec(w, x, i, f);
			if (rc == -ENOBUFS) {
				x->used = mark; /* the flow goes whole into the next slice */
				return ENOBUFS;
			}
			if (rc < 0)
				return -rc;
			any |= rc > 0;
		}
	} else if (x->nf >= 0) {
		any = nf_has_state(w, x->nf, f);
	}
	if (!any)
		return 0;
	x->flows++;
	if (x->del)
		mbx_worker_del_flow(w, f);
	return 0;
}

int
mbx_state_export_slice(struct mbx_worker *w, void *arg)
{
	struct mbx_export *x = arg;
	struct export_walk ew = {w, x};
	int rc;

	x->used = 0;
	x->flows = 0;
	if (w->table == NULL) {
		x->cursor = UINT32_MAX;
		return 0;
	}
	rc = mbx_table_walk(w->table, &x->cursor, x->max_slots, export_cb, &ew);
	if (rc == -EAGAIN) {
		x->cursor =
			x->cursor == UINT32_MAX ? mbx_table_capacity(w->table) - 1 : x->cursor - 1;
		return 0;
	}
	if (rc == -ENOBUFS) {
		/* resume at the flow that did not fit */
		x->cursor =
			x->cursor == UINT32_MAX ? mbx_table_capacity(w->table) - 1 : x->cursor - 1;
		/* the buffer was empty: one flow's state is larger than all of it */
		return x->flows == 0 ? -EMSGSIZE : 0;
	}
	return rc < 0 ? rc : 0;
}

static void
undo_one(struct mbx_worker *w, const struct mbx_undo *u)
{
	const struct mbx_chain_nf *e = &w->dp->chain.nf[u->nf];
	struct mbx_flow *f;

	if (u->scope == MBX_SCOPE_MULTI_FLOW) {
		struct mbx_filter flt;

		mbx_filter_init(&flt);
		flt.family = u->key.family;
		flt.src.addr = u->key.src;
		flt.src.len = u->key.family == MBX_FAMILY_V6 ? 128 : 32;
		if (e->ops->multi_del != NULL)
			e->ops->multi_del(&w->nf[u->nf], &flt);
		return;
	}
	f = mbx_table_lookup(w->table, &u->key, NULL);
	if (f == NULL || f->index != u->index)
		return; /* gone already (expired) */
	if (u->created) {
		mbx_worker_del_flow(w, f);
	} else if (e->ops->flow_free != NULL) {
		e->ops->flow_free(&w->nf[u->nf], f);
		memset(mbx_nf_state(&w->nf[u->nf], f), 0, e->ops->flow_state_size);
	}
}

int
mbx_state_undo(struct mbx_worker *w, void *arg)
{
	const struct mbx_undo_req *u = arg;

	for (uint32_t i = u->n; i > 0; i--)
		undo_one(w, &u->undo[i - 1]);
	return 0;
}

static int
import_flow(struct mbx_worker *w, const struct mbx_state_rec *r, struct mbx_undo *u, uint64_t now)
{
	const struct mbx_chain_nf *e = &w->dp->chain.nf[r->nf];
	struct mbx_nf_ctx *c = &w->nf[r->nf];
	struct mbx_flow_key rev;
	struct mbx_flow *f;
	int rc;

	if (w->table == NULL || e->ops->flow_put == NULL)
		return mbx_nf_refuse(c, -ENOTSUP, "%s keeps no per-flow state here", e->ops->name);
	/* a new flow, usually: its lookup is the one mbx_table_add() makes */
	f = mbx_table_add(w->table, &r->key, mbx_tmo_class_of(r->key.proto, 0), now);
	u->created = f != NULL;
	if (f != NULL) {
		if (r->side == MBX_SIDE_OUTSIDE)
			f->flags |= MBX_FLOW_F_FROM_OUTSIDE;
		w->stats[MBX_WSTAT_FLOWS_CREATED]++;
	} else {
		rc = -rte_errno;
		if (rc != -EEXIST && rc != -ENOSPC)
			return rc;
		/* the flow is there already (another NF's state of it), or no room */
		f = mbx_table_lookup(w->table, &r->key, NULL);
		if (f == NULL)
			return rc == -ENOSPC ? mbx_nf_refuse(c, rc, "the flow table is full") : rc;
		if (nf_has_state(w, r->nf, f))
			return mbx_nf_refuse(c, -EEXIST, "this instance has the flow already");
	}
	if (r->has_reply)
		rev = r->reply_key;
	else
		mbx_flow_key_reverse(&rev, &r->key);
	rc = mbx_table_set_reply_key(w->table, f, &rev);
	if (rc == 0)
		rc = e->ops->flow_put(c, f, r->state, r->state_len);
	if (rc < 0) {
		if (u->created)
			mbx_worker_del_flow(w, f);
		return rc == -EEXIST ? -EBUSY : rc;
	}
	u->index = f->index;
	return 0;
}

/*
 * Bring in the hash buckets of the keys of the next IMPORT_GROUP records,
 * both directions, with one bulk lookup (which prefetches them all at
 * once): the installs that follow find them in the cache instead of
 * waiting for memory once per key.
 */
static void
import_prefetch(struct mbx_worker *w, const struct mbx_state_rec *r, const uint8_t *end)
{
	const struct mbx_flow_key *keys[2 * IMPORT_GROUP];
	struct mbx_flow_key rev[IMPORT_GROUP];
	struct mbx_flow *flows[2 * IMPORT_GROUP];
	uint8_t dirs[2 * IMPORT_GROUP];
	unsigned int n = 0;

	for (unsigned int k = 0; k < IMPORT_GROUP && (const uint8_t *)r < end;
	     k++, r = mbx_state_rec_next(r)) {
		if (r->scope != MBX_SCOPE_PER_FLOW)
			continue;
		keys[n++] = &r->key;
		if (r->has_reply) {
			keys[n++] = &r->reply_key;
		} else {
			mbx_flow_key_reverse(&rev[k], &r->key);
			keys[n++] = &rev[k];
		}
	}
	if (n > 0)
		mbx_table_lookup_bulk(w->table, keys, n, flows, dirs);
}

int
mbx_state_import(struct mbx_worker *w, void *arg)
{
	struct mbx_import *im = arg;
	const uint8_t *end = im->recs + im->len;
	const struct mbx_state_rec *r;
	uint64_t now = rte_rdtsc();
	unsigned int k = 0;
	int rc = 0;

	im->done = 0;
	im->why[0] = '\0';
	w->nf_why[0] = '\0'; /* the first refusal ends the slice */
	for (r = (const void *)im->recs; (const uint8_t *)r < end; r = mbx_state_rec_next(r)) {
		struct mbx_undo *u = &im->undo[im->done];
		const struct mbx_chain_nf *e = &w->dp->chain.nf[r->nf];

		if (k-- == 0) {
			k = IMPORT_GROUP - 1;
			if (w->table != NULL)
				import_prefetch(w, r, end);
		}
		u->nf = r->nf;
		u->scope = r->scope;
		u->key = r->key;
		u->created = 0;
		if (r->scope == MBX_SCOPE_PER_FLOW)
			rc = import_flow(w, r, u, now);
		else if (e->ops->multi_put != NULL)
			rc = e->ops->multi_put(&w->nf[r->nf], &r->key, r->state, r->state_len);
		else
			rc = -ENOTSUP;
		if (rc < 0) {
			struct mbx_undo_req ur = {im->undo, im->done};

			im->bad_key = r->key;
			im->bad_nf = r->nf;
			snprintf(im->why, sizeof(im->why), "%s", w->nf_why);
			mbx_state_undo(w, &ur);
			im->done = 0;
			return rc;
		}
		im->done++;
	}
	return 0;
}

struct emit_buf {
	uint8_t *buf;
	size_t cap;
	size_t used;
	uint32_t entries;
	uint16_t nf;
	uint8_t scope;
};

static int
emit_rec(void *arg, const struct mbx_flow_key *key, const struct mbx_flow_key *reply,
	 const uint8_t *state, size_t len)
{
	struct emit_buf *b = arg;
	struct mbx_state_rec *r = (struct mbx_state_rec *)(b->buf + b->used);
	size_t need = mbx_state_rec_size(len);

	if (b->cap - b->used < need)
		return -ENOBUFS;
	memset(r, 0, sizeof(*r));
	r->len = (uint32_t)need;
	r->nf = b->nf;
	r->scope = b->scope;
	if (key != NULL)
		r->key = *key;
	if (reply != NULL) {
		r->reply_key = *reply;
		r->has_reply = 1;
	}
	r->state_len = (uint32_t)len;
	memcpy(r->state, state, len);
	b->used += need;
	b->entries++;
	return 0;
}

int
mbx_state_multi_get(struct mbx_worker *w, void *arg)
{
	struct mbx_multi_get *m = arg;
	struct emit_buf b = {.buf = m->buf, .cap = m->cap, .scope = MBX_SCOPE_MULTI_FLOW};

	for (int i = 0; i < w->dp->chain.n; i++) {
		const struct mbx_nf_ops *ops = w->dp->chain.nf[i].ops;
		int rc;

		if ((m->nf >= 0 && i != m->nf) || ops->multi_get == NULL)
			continue;
		b.nf = (uint16_t)i;
		rc = ops->multi_get(&w->nf[i], &m->filter, emit_rec, &b);
		if (rc < 0)
			return rc;
	}
	m->used = b.used;
	m->entries = b.entries;
	return 0;
}

int
mbx_state_multi_del(struct mbx_worker *w, void *arg)
{
	struct mbx_multi_del *m = arg;

	for (int i = 0; i < w->dp->chain.n; i++) {
		const struct mbx_nf_ops *ops = w->dp->chain.nf[i].ops;
		int rc;

		if ((m->nf >= 0 && i != m->nf) || ops->multi_del == NULL)
			continue;
		rc = ops->multi_del(&w->nf[i], &m->filter);
		if (rc < 0)
			return rc;
		m->deleted += rc;
	}
	return 0;
}

struct all_get {
	int nf;
	struct emit_buf b;
};

static int
all_get_parked(struct mbx_dp *dp, void *arg)
{
	struct all_get *a = arg;

	for (int i = 0; i < dp->chain.n; i++) {
		const struct mbx_chain_nf *e = &dp->chain.nf[i];
		int rc;

		if ((a->nf >= 0 && i != a->nf) || e->ops->all_get == NULL)
			continue;
		a->b.nf = (uint16_t)i;
		rc = e->ops->all_get(e->nf, emit_rec, &a->b);
		if (rc < 0)
			return rc;
	}
	return 0;
}

long
mbx_state_all_get(struct mbx_dp *dp, int nf, uint8_t *buf, size_t cap)
{
	struct all_get a = {.nf = nf, .b = {.buf = buf, .cap = cap, .scope = MBX_SCOPE_ALL_FLOWS}};
	int rc = mbx_ctrl_park_all(dp, all_get_parked, &a);

	return rc < 0 ? rc : (long)a.b.used;
}

struct all_put {
	const uint8_t *recs;
	size_t len;
	uint16_t bad_nf;
};

static int
all_put_parked(struct mbx_dp *dp, void *arg)
{
	struct all_put *a = arg;
	const uint8_t *end = a->recs + a->len;

	/* all or nothing: every record is checked before any is committed */
	for (int commit = 0; commit < 2; commit++) {
		for (const struct mbx_state_rec *r = (const void *)a->recs;
		     (const uint8_t *)r < end; r = mbx_state_rec_next(r)) {
			const struct mbx_chain_nf *e = &dp->chain.nf[r->nf];
			int rc = -ENOTSUP;

			if (e->ops->all_put != NULL)
				rc = e->ops->all_put(e->nf, r->state, r->state_len, commit);
			if (rc < 0) {
				a->bad_nf = r->nf;
				return rc;
			}
		}
	}
	return 0;
}

int
mbx_state_all_put(struct mbx_dp *dp, const uint8_t *recs, size_t len, uint16_t *bad_nf)
{
	struct all_put a = {.recs = recs, .len = len};
	int rc = mbx_ctrl_park_all(dp, all_put_parked, &a);

	if (bad_nf != NULL)
		*bad_nf = a.bad_nf;
	return rc;
}

struct all_update {
	struct all_get get;
	struct all_put put;
	mbx_all_edit_fn edit;
	void *arg;
};

static int
all_update_parked(struct mbx_dp *dp, void *arg)
{
	struct all_update *u = arg;
	int rc = all_get_parked(dp, &u->get);
	long n;

	if (rc < 0)
		return rc;
	n = u->edit(u->get.b.buf, u->get.b.used, &u->put.recs, u->arg);
	if (n < 0)
		return (int)n;
	u->put.len = (size_t)n;
	return all_put_parked(dp, &u->put);
}

int
mbx_state_all_update(struct mbx_dp *dp, int nf, uint8_t *buf, size_t cap, mbx_all_edit_fn edit,
		     void *arg, uint16_t *bad_nf)
{
	struct all_update u = {
		.get = {.nf = nf, .b = {.buf = buf, .cap = cap, .scope = MBX_SCOPE_ALL_FLOWS}},
		.edit = edit,
		.arg = arg,
	};
	int rc = mbx_ctrl_park_all(dp, all_update_parked, &u);

	if (bad_nf != NULL)
		*bad_nf = u.put.bad_nf;
	return rc;
}
