/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mon's state codecs, version 1 (proto/mbx/v1/mon.proto): per-flow
 * MonFlowState (a flow's counters), multi-flow MonHost (a host's assets,
 * keyed by the host as src), all-flows MonTotals (the instance's totals).
 *
 * Imports continue counting: an imported flow keeps its counters, times and
 * flags, and the next packet adds to them. mon has no configuration that
 * state could contradict, so host records and totals merge into what the
 * instance has (sets by union, counts by sum) rather than conflict; only a
 * flow that already has mon state is refused (the framework answers EEXIST),
 * and a flow that its inside host places on another worker (EINVAL: a chunk
 * that says the wrong side of origin, StateChunk.from_outside).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "mbx/v1/mon.pb-c.h"
#include "mon.h"

int
mon_flow_get(struct mbx_nf_ctx *c, struct mbx_flow *f, uint8_t *buf, size_t cap)
{
	const struct mon_flow *st = mbx_nf_state(c, f);
	Mbx__V1__MonFlowState m = MBX__V1__MON_FLOW_STATE__INIT;
	Mbx__V1__MonCounters dir[2] = {MBX__V1__MON_COUNTERS__INIT, MBX__V1__MON_COUNTERS__INIT};

	if (st->first_ns == 0)
		return 0;
	for (int d = 0; d < 2; d++) {
		dir[d].packets = st->packets[d];
		dir[d].bytes = st->bytes[d];
		dir[d].tcp_flags = st->tcp_flags[d];
	}
	m.first_ns = st->first_ns;
	m.last_ns = st->last_ns;
	m.orig = &dir[0];
	m.reply = &dir[1];
	m.originator_side = st->orig_side == MBX_SIDE_INSIDE ? MBX__V1__MON_SIDE__MON_SIDE_INSIDE
							     : MBX__V1__MON_SIDE__MON_SIDE_OUTSIDE;
	m.midstream = st->midstream;
	if (mbx__v1__mon_flow_state__get_packed_size(&m) > cap)
		return -ENOBUFS;
	return (int)mbx__v1__mon_flow_state__pack(&m, buf);
}

/* Is this the worker the flow's packets reach? Its inside host places it. */
static bool
placed_here(const struct mbx_nf_ctx *c, const struct mbx_flow_key *k, uint8_t orig_side)
{
	const struct mon *mon = c->nf;
	int o;

	if (mon->one_armed || c->nb_workers == 1)
		return true;
	o = mbx_owner_by_host(orig_side == MBX_SIDE_INSIDE ? &k->src : &k->dst, k->family,
			      c->nb_workers);
	if (o == c->worker)
		return true;
	MON_LOG(NOTICE,
		"refusing a flow whose inside host is on worker %d, not %u: its chunk "
		"gives the other side of origin (from_outside)",
		o, c->worker);
	return false;
}

int
mon_flow_put(struct mbx_nf_ctx *c, struct mbx_flow *f, const uint8_t *buf, size_t len)
{
	const struct mbx_flow_key *k = &mbx_flow_keys(c->table, f)[0];
	struct mon_flow *st = mbx_nf_state(c, f);
	Mbx__V1__MonFlowState *m = mbx__v1__mon_flow_state__unpack(NULL, len, buf);
	const Mbx__V1__MonCounters *dir[2];
	uint8_t side;
	int rc = -EBADMSG;

	if (m == NULL)
		return -EBADMSG;
	dir[0] = m->orig;
	dir[1] = m->reply;
	for (int d = 0; d < 2; d++)
		if (dir[d] != NULL && dir[d]->tcp_flags > UINT8_MAX)
			goto out;
	if (m->originator_side != MBX__V1__MON_SIDE__MON_SIDE_INSIDE &&
	    m->originator_side != MBX__V1__MON_SIDE__MON_SIDE_OUTSIDE)
		goto out;
	side = m->originator_side == MBX__V1__MON_SIDE__MON_SIDE_INSIDE ? MBX_SIDE_INSIDE
									: MBX_SIDE_OUTSIDE;
	rc = -EINVAL;
	if (m->first_ns == 0 || m->last_ns < m->first_ns || !placed_here(c, k, side))
		goto out;
	rc = -EEXIST;
	if (st->first_ns != 0)
		goto out;
	memset(st, 0, sizeof(*st));
	st->first_ns = m->first_ns;
	st->last_ns = m->last_ns;
	for (int d = 0; d < 2; d++) {
		if (dir[d] == NULL)
			continue;
		st->packets[d] = dir[d]->packets;
		st->bytes[d] = dir[d]->bytes;
		st->tcp_flags[d] = (uint8_t)dir[d]->tcp_flags;
	}
	st->orig_side = side;
	st->midstream = m->midstream;
	/* its connections were counted where it started: they come with the host records */
	mon_flow_attach(c, st, &k->src, &k->dst, k->family, false);
	rc = 0;
out:
	mbx__v1__mon_flow_state__free_unpacked(m, NULL);
	return rc;
}

/* A host as a multi-flow key: the host is the source. */
static struct mbx_flow_key
host_flow_key(const struct mon_host_key *hk)
{
	struct mbx_flow_key k;

	memset(&k, 0, sizeof(k));
	k.family = hk->family;
	k.src = hk->addr;
	return k;
}

/* Only the family and source prefix of a filter apply to hosts. */
static bool
host_matches(const struct mbx_filter *flt, const struct mbx_flow_key *k)
{
	struct mbx_filter f;

	mbx_filter_init(&f);
	f.family = flt->family;
	f.src = flt->src;
	return mbx_filter_match(&f, k);
}

struct multi_get {
	const struct mbx_filter *flt;
	mbx_state_emit emit;
	void *arg;
};

static int
emit_host(struct mon_host *e, int32_t pos, void *arg)
{
	struct multi_get *g = arg;
	Mbx__V1__MonHost m = MBX__V1__MON_HOST__INIT;
	Mbx__V1__MonService sv[MON_HOST_SERVICES], *svp[MON_HOST_SERVICES];
	Mbx__V1__MonOsHint os[MON_HOST_OS], *osp[MON_HOST_OS];
	struct mbx_flow_key k = host_flow_key(&e->key);
	uint8_t buf[1024]; /* a full record packs to about 400 bytes */

	(void)pos;
	if (!host_matches(g->flt, &k))
		return 0;
	for (unsigned int i = 0; i < e->nb_services; i++) {
		mbx__v1__mon_service__init(&sv[i]);
		sv[i].proto = e->services[i] >> 16;
		sv[i].port = e->services[i] & 0xffff;
		svp[i] = &sv[i];
	}
	for (unsigned int i = 0; i < e->nb_os; i++) {
		mbx__v1__mon_os_hint__init(&os[i]);
		os[i].ttl_class = e->os[i] >> 16;
		os[i].window = e->os[i] & 0xffff;
		os[i].os = (char *)(uintptr_t)mon_ttl_class_os(os[i].ttl_class);
		osp[i] = &os[i];
	}
	m.addr.len = e->key.family == MBX_FAMILY_V6 ? 16 : 4;
	m.addr.data = e->key.addr.v6;
	m.n_services = e->nb_services;
	m.services = svp;
	m.services_lost = e->services_lost;
	m.n_os_hints = e->nb_os;
	m.os_hints = osp;
	m.os_hints_lost = e->os_lost;
	m.conns_out = e->conns_out;
	m.conns_in = e->conns_in;
	m.active = e->active;
	return g->emit(g->arg, &k, NULL, buf, mbx__v1__mon_host__pack(&m, buf));
}

int
mon_multi_get(struct mbx_nf_ctx *c, const struct mbx_filter *flt, mbx_state_emit emit, void *arg)
{
	struct multi_get g = {.flt = flt, .emit = emit, .arg = arg};

	return mon_hosts_foreach(((struct mon_worker *)c->priv)->hosts, emit_host, &g);
}

/* -EBADMSG: a field out of its wire range; -EINVAL: not a service or OS hint mon records. */
static int
check_host(const Mbx__V1__MonHost *m)
{
	for (size_t i = 0; i < m->n_services; i++) {
		if (m->services[i]->port > UINT16_MAX)
			return -EBADMSG;
		if (m->services[i]->proto != IPPROTO_TCP && m->services[i]->proto != IPPROTO_UDP)
			return -EINVAL;
	}
	for (size_t i = 0; i < m->n_os_hints; i++) {
		if (m->os_hints[i]->window > UINT16_MAX)
			return -EBADMSG;
		if (mon_ttl_class_os(m->os_hints[i]->ttl_class) == NULL)
			return -EINVAL;
	}
	return 0;
}

int
mon_multi_put(struct mbx_nf_ctx *c, const struct mbx_flow_key *key, const uint8_t *buf, size_t len)
{
	struct mon_worker *mw = c->priv;
	Mbx__V1__MonHost *m = mbx__v1__mon_host__unpack(NULL, len, buf);
	size_t alen = key->family == MBX_FAMILY_V6 ? 16 : 4;
	struct mon_host_key hk;
	struct mon_host *e;
	int32_t pos;
	int rc;

	if (m == NULL)
		return -EBADMSG;
	rc = check_host(m);
	if (rc < 0)
		goto out;
	rc = -EINVAL;
	if ((key->family != MBX_FAMILY_V4 && key->family != MBX_FAMILY_V6) || m->addr.len != alen ||
	    memcmp(m->addr.data, &key->src, alen) != 0)
		goto out;
	hk = mon_host_key(&key->src, key->family);
	pos = mon_hosts_get(mw->hosts, &hk);
	rc = -ENOSPC;
	if (pos < 0)
		goto out;
	/* merge: what another instance saw of the host adds to what this one saw */
	e = mon_hosts_at(mw->hosts, pos);
	for (size_t i = 0; i < m->n_services; i++)
		mon_host_add_service(e, (uint8_t)m->services[i]->proto,
				     (uint16_t)m->services[i]->port);
	for (size_t i = 0; i < m->n_os_hints; i++)
		mon_host_add_os(e, (uint8_t)m->os_hints[i]->ttl_class,
				(uint16_t)m->os_hints[i]->window);
	e->services_lost += m->services_lost;
	e->os_lost += m->os_hints_lost;
	e->conns_out += m->conns_out;
	e->conns_in += m->conns_in;
	rc = 0;
out:
	mbx__v1__mon_host__free_unpacked(m, NULL);
	return rc;
}

struct multi_del {
	const struct mbx_filter *flt;
	int32_t *pos;
	uint32_t n;
};

static int
collect_host(struct mon_host *e, int32_t pos, void *arg)
{
	struct multi_del *d = arg;
	struct mbx_flow_key k = host_flow_key(&e->key);

	if (e->active == 0 && host_matches(d->flt, &k))
		d->pos[d->n++] = pos;
	return 0;
}

int
mon_multi_del(struct mbx_nf_ctx *c, const struct mbx_filter *flt)
{
	struct mon_hosts *h = ((struct mon_worker *)c->priv)->hosts;
	struct multi_del d = {.flt = flt};

	/* collect first: deleting changes the table being walked */
	d.pos = malloc(sizeof(d.pos[0]) * (mon_hosts_count(h) + 1));
	if (d.pos == NULL)
		return -ENOMEM;
	mon_hosts_foreach(h, collect_host, &d);
	for (uint32_t i = 0; i < d.n; i++)
		mon_hosts_del(h, d.pos[i]);
	free(d.pos);
	return (int)d.n;
}

int
mon_all_get(void *nf, mbx_state_emit emit, void *arg)
{
	const struct mon *mon = nf;
	Mbx__V1__MonTotals m = MBX__V1__MON_TOTALS__INIT;
	uint8_t buf[64];

	m.flows = mon->base.flows;
	m.packets = mon->base.packets;
	m.bytes = mon->base.bytes;
	for (uint16_t i = 0; i < mon->nb_workers; i++) {
		const struct mon_worker *mw = mon->workers[i];

		if (mw == NULL)
			continue;
		m.flows += mw->tot.flows;
		m.packets += mw->tot.packets;
		m.bytes += mw->tot.bytes;
		m.flows_active += mw->tot.active;
		m.hosts += mon_hosts_count(mw->hosts);
	}
	return emit(arg, NULL, NULL, buf, mbx__v1__mon_totals__pack(&m, buf));
}

int
mon_all_put(void *nf, const uint8_t *buf, size_t len, bool commit)
{
	struct mon *mon = nf;
	Mbx__V1__MonTotals *m = mbx__v1__mon_totals__unpack(NULL, len, buf);

	if (m == NULL)
		return -EBADMSG;
	if (commit) {
		/* another instance's totals add to this one's (hosts, flows_active: derived) */
		mon->base.flows += m->flows;
		mon->base.packets += m->packets;
		mon->base.bytes += m->bytes;
	}
	mbx__v1__mon_totals__free_unpacked(m, NULL);
	return 0;
}
