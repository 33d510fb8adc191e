/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The lb NF's state codecs, version 1 (proto/mbx/v1/lb.proto): per-flow
 * LbFlowState (a connection's backend), multi-flow LbBackendStats (one
 * worker's counts for one backend, keyed by the backend as src), all-flows
 * LbBackends (the service, the backend set and the Maglev table).
 *
 * State is accepted only by an instance serving the same VIP, port,
 * protocols and table size, and a connection only when its backend is in
 * this instance's set (drained or not): anything else is refused with
 * -EINVAL, the reason logged, and nothing changes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lb.h"
#include "mbx/v1/lb.pb-c.h"

static size_t
addr_len(const struct lb *lb)
{
	return lb->family == MBX_FAMILY_V6 ? 16 : 4;
}

static ProtobufCBinaryData
addr_pb(const struct lb *lb, const union mbx_addr *a)
{
	return (ProtobufCBinaryData){.len = addr_len(lb), .data = (uint8_t *)(uintptr_t)a->v6};
}

/* An address of this instance's family and a port; -EBADMSG if malformed. */
static int
endpoint_from_pb(const struct lb *lb, const ProtobufCBinaryData *b, uint32_t port,
		 union mbx_addr *a, rte_be16_t *be_port)
{
	if ((b->len != 4 && b->len != 16) || port > UINT16_MAX)
		return -EBADMSG;
	if (b->len != addr_len(lb))
		return -EINVAL;
	memset(a, 0, sizeof(*a));
	memcpy(a->v6, b->data, b->len);
	*be_port = rte_cpu_to_be_16((uint16_t)port);
	return 0;
}

/* The protocol as LbBackends has it: 6, 17, or 0 for both. */
static uint32_t
proto_of(const struct lb *lb)
{
	if (lb->protos == LB_TCP)
		return IPPROTO_TCP;
	return lb->protos == LB_UDP ? IPPROTO_UDP : 0;
}

static bool
addr_eq(const union mbx_addr *a, const union mbx_addr *b)
{
	return a->u64[0] == b->u64[0] && a->u64[1] == b->u64[1];
}

int
lb_flow_get(struct mbx_nf_ctx *c, struct mbx_flow *f, uint8_t *buf, size_t cap)
{
	const struct lb_flow *st = mbx_nf_state(c, f);
	const struct lb *lb = c->nf;
	Mbx__V1__LbFlowState m = MBX__V1__LB_FLOW_STATE__INIT;

	/* a connection whose backend was removed is ending: nothing to move */
	if (!st->assigned || lb->be[st->slot].gen != st->gen)
		return 0;
	m.vip = addr_pb(lb, &lb->vip);
	m.vip_port = rte_be_to_cpu_16(lb->vip_port);
	m.backend = addr_pb(lb, &st->backend);
	m.backend_port = rte_be_to_cpu_16(st->port);
	if (mbx__v1__lb_flow_state__get_packed_size(&m) > cap)
		return -ENOBUFS;
	return (int)mbx__v1__lb_flow_state__pack(&m, buf);
}

int
lb_flow_put(struct mbx_nf_ctx *c, struct mbx_flow *f, const uint8_t *buf, size_t len)
{
	const struct mbx_flow_key *k = &mbx_flow_keys(c->table, f)[0];
	struct lb_flow *st = mbx_nf_state(c, f);
	struct lb *lb = c->nf;
	Mbx__V1__LbFlowState *m = mbx__v1__lb_flow_state__unpack(NULL, len, buf);
	union mbx_addr vip, backend;
	rte_be16_t vip_port, port;
	char ep[64], ep2[64];
	int slot, rc;

	if (m == NULL)
		return -EBADMSG;
	rc = endpoint_from_pb(lb, &m->vip, m->vip_port, &vip, &vip_port);
	if (rc == 0)
		rc = endpoint_from_pb(lb, &m->backend, m->backend_port, &backend, &port);
	if (rc < 0)
		goto out;
	rc = -EINVAL;
	if (!addr_eq(&vip, &lb->vip) || vip_port != lb->vip_port || !lb_is_vip(lb, k)) {
		mbx_nf_refuse(
			c, rc, "a connection to %s; this instance serves %s",
			lb_endpoint_str(lb->family, &vip, vip_port, ep, sizeof(ep)),
			lb_endpoint_str(lb->family, &lb->vip, lb->vip_port, ep2, sizeof(ep2)));
		goto out;
	}
	slot = lb_slot_find(lb, &backend, port);
	if (slot < 0) {
		mbx_nf_refuse(c, rc, "backend %s is not in this instance's set",
			      lb_endpoint_str(lb->family, &backend, port, ep, sizeof(ep)));
		goto out;
	}
	rc = -EEXIST;
	if (st->assigned) {
		mbx_nf_refuse(c, rc, "the connection has a backend here already");
		goto out;
	}
	lb_flow_set(lb, st, (uint16_t)slot);
	((struct lb_worker *)c->priv)->be[slot].active++;
	rc = 0;
out:
	mbx__v1__lb_flow_state__free_unpacked(m, NULL);
	return rc;
}

/* A backend as a multi-flow key: the backend is the source, protocol 0. */
static struct mbx_flow_key
backend_key(const struct lb *lb, const struct lb_backend *b)
{
	struct mbx_flow_key k;

	memset(&k, 0, sizeof(k));
	k.family = lb->family;
	k.src = b->addr;
	k.sport = b->port;
	return k;
}

static bool
stats_zero(const struct lb_stats *s)
{
	return s->active == 0 && s->connections == 0 && s->packets == 0 && s->bytes == 0;
}

int
lb_multi_get(struct mbx_nf_ctx *c, const struct mbx_filter *flt, mbx_state_emit emit, void *arg)
{
	const struct lb *lb = c->nf;
	const struct lb_worker *w = c->priv;
	uint8_t buf[128];

	for (uint16_t k = 0; k < lb->nb_used; k++) {
		const struct lb_backend *b = &lb->be[lb->used[k]];
		const struct lb_stats *s = &w->be[lb->used[k]];
		struct mbx_flow_key key = backend_key(lb, b);
		Mbx__V1__LbBackendStats m = MBX__V1__LB_BACKEND_STATS__INIT;
		int rc;

		if (stats_zero(s) || !mbx_filter_match(flt, &key))
			continue;
		m.backend = addr_pb(lb, &b->addr);
		m.port = rte_be_to_cpu_16(b->port);
		m.worker = c->worker;
		m.active = s->active;
		m.connections = s->connections;
		m.packets = s->packets;
		m.bytes = s->bytes;
		rc = emit(arg, &key, NULL, buf, mbx__v1__lb_backend_stats__pack(&m, buf));
		if (rc < 0)
			return rc;
	}
	return 0;
}

int
lb_multi_put(struct mbx_nf_ctx *c, const struct mbx_flow_key *key, const uint8_t *buf, size_t len)
{
	Mbx__V1__LbBackendStats *m = mbx__v1__lb_backend_stats__unpack(NULL, len, buf);
	struct lb *lb = c->nf;
	union mbx_addr addr;
	rte_be16_t port;
	struct lb_stats *s;
	char ep[64];
	int slot, rc;

	if (m == NULL)
		return -EBADMSG;
	rc = endpoint_from_pb(lb, &m->backend, m->port, &addr, &port);
	if (rc < 0)
		goto out;
	rc = -EINVAL;
	if (key->family != lb->family || !addr_eq(&key->src, &addr) || key->sport != port)
		goto out;
	slot = lb_slot_find(lb, &addr, port);
	if (slot < 0) {
		mbx_nf_refuse(c, rc, "counts of backend %s, not in this instance's set",
			      lb_endpoint_str(lb->family, &addr, port, ep, sizeof(ep)));
		goto out;
	}
	/* merge: this worker's part grows by the other's; active comes with connections */
	s = &((struct lb_worker *)c->priv)->be[slot];
	s->connections += m->connections;
	s->packets += m->packets;
	s->bytes += m->bytes;
	rc = 0;
out:
	mbx__v1__lb_backend_stats__free_unpacked(m, NULL);
	return rc;
}

int
lb_multi_del(struct mbx_nf_ctx *c, const struct mbx_filter *flt)
{
	const struct lb *lb = c->nf;
	struct lb_worker *w = c->priv;
	int n = 0;

	/* counts of backends this worker holds no connection to start over */
	for (uint16_t k = 0; k < lb->nb_used; k++) {
		struct lb_stats *s = &w->be[lb->used[k]];
		struct mbx_flow_key key = backend_key(lb, &lb->be[lb->used[k]]);

		if (s->active == 0 && !stats_zero(s) && mbx_filter_match(flt, &key)) {
			memset(s, 0, sizeof(*s));
			n++;
		}
	}
	return n;
}

struct sorted_backend {
	struct maglev_backend mb;
	uint16_t slot;
};

static int
sorted_cmp(const void *a, const void *b)
{
	return maglev_name_cmp(&((const struct sorted_backend *)a)->mb,
			       &((const struct sorted_backend *)b)->mb);
}

int
lb_all_get(void *nf, mbx_state_emit emit, void *arg)
{
	struct lb *lb = nf;
	Mbx__V1__LbBackends m = MBX__V1__LB_BACKENDS__INIT;
	uint16_t n = lb->nb_used, pos[LB_MAX_BACKENDS];
	struct sorted_backend *sb = calloc(n + 1, sizeof(*sb));
	Mbx__V1__LbBackend *be = calloc(n + 1, sizeof(*be));
	Mbx__V1__LbBackend **bp = calloc(n + 1, sizeof(*bp));
	uint32_t *table = malloc(lb->table_size * sizeof(*table));
	uint8_t *buf = NULL;
	int rc = -ENOMEM;

	if (sb == NULL || be == NULL || bp == NULL || table == NULL)
		goto out;
	/* backends sorted as Maglev sorts them; the table by index into that list */
	for (uint16_t k = 0; k < n; k++) {
		const struct lb_backend *b = &lb->be[lb->used[k]];

		lb_backend_name(sb[k].mb.name, &b->addr, b->port, lb->family);
		sb[k].slot = lb->used[k];
	}
	qsort(sb, n, sizeof(*sb), sorted_cmp);
	for (uint16_t k = 0; k < n; k++) {
		const struct lb_backend *b = &lb->be[sb[k].slot];

		pos[sb[k].slot] = k;
		mbx__v1__lb_backend__init(&be[k]);
		be[k].addr = addr_pb(lb, &b->addr);
		be[k].port = rte_be_to_cpu_16(b->port);
		be[k].weight = b->weight;
		bp[k] = &be[k];
	}
	for (uint32_t e = 0; e < lb->table_size; e++) {
		uint16_t slot = lb->table[e];

		table[e] = slot == MAGLEV_NONE ? MAGLEV_NONE : pos[slot];
		if (slot != MAGLEV_NONE)
			be[pos[slot]].entries++;
	}
	m.vip = addr_pb(lb, &lb->vip);
	m.vip_port = rte_be_to_cpu_16(lb->vip_port);
	m.proto = proto_of(lb);
	m.table_size = lb->table_size;
	m.n_backends = n;
	m.backends = bp;
	m.n_table = lb->table_size;
	m.table = table;
	buf = malloc(mbx__v1__lb_backends__get_packed_size(&m));
	if (buf != NULL)
		rc = emit(arg, NULL, NULL, buf, mbx__v1__lb_backends__pack(&m, buf));
out:
	free(sb);
	free(be);
	free(bp);
	free(table);
	free(buf);
	return rc;
}

/* The backend set of @m into lb->put, if @m is this instance's service. */
static int
set_from_pb(struct lb *lb, const Mbx__V1__LbBackends *m)
{
	union mbx_addr vip = {.u64 = {0, 0}};
	rte_be16_t vip_port = 0;
	char ep[64], ep2[64];
	int rc = endpoint_from_pb(lb, &m->vip, m->vip_port, &vip, &vip_port);

	if (rc == -EBADMSG)
		return rc;
	if (rc < 0 || !addr_eq(&vip, &lb->vip) || vip_port != lb->vip_port) {
		LB_LOG(ERR, "refused backends of %s: this instance serves %s",
		       m->vip.len == addr_len(lb)
			       ? lb_endpoint_str(lb->family, &vip, vip_port, ep, sizeof(ep))
			       : "a VIP of another family",
		       lb_endpoint_str(lb->family, &lb->vip, lb->vip_port, ep2, sizeof(ep2)));
		return -EINVAL;
	}
	if (m->proto != proto_of(lb)) {
		LB_LOG(ERR, "refused backends for protocol %u: this instance balances %u (0: both)",
		       m->proto, proto_of(lb));
		return -EINVAL;
	}
	if (m->table_size != 0 && m->table_size != lb->table_size) {
		LB_LOG(ERR, "refused backends for a table of %u: this instance's has %u",
		       m->table_size, lb->table_size);
		return -EINVAL;
	}
	if (m->n_backends > LB_MAX_BACKENDS) {
		LB_LOG(ERR, "refused %zu backends: at most %u", m->n_backends, LB_MAX_BACKENDS);
		return -EINVAL;
	}
	lb->put.n = 0;
	for (size_t i = 0; i < m->n_backends; i++) {
		const Mbx__V1__LbBackend *b = m->backends[i];

		rc = endpoint_from_pb(lb, &b->addr, b->port, &lb->put.be[i].addr,
				      &lb->put.be[i].port);
		if (rc == 0 && b->weight > LB_MAX_WEIGHT)
			rc = -EINVAL;
		if (rc < 0) {
			LB_LOG(ERR, "refused backend %zu: %s", i,
			       rc == -EBADMSG ? "malformed"
					      : "of another family, or a weight above 65535");
			return rc;
		}
		if (b->port == 0)
			lb->put.be[i].port = lb->vip_port;
		lb->put.be[i].weight = (uint16_t)b->weight;
		lb->put.n++;
	}
	return lb_set_check(lb, &lb->put);
}

/* A table in a put must be the one this instance builds from the put's backends. */
static int
table_check(struct lb *lb, const Mbx__V1__LbBackends *m)
{
	const struct lb_set *s = &lb->put;

	if (m->n_table == 0)
		return 0;
	if (m->n_table != lb->table_size) {
		LB_LOG(ERR, "refused a table of %zu entries: expected %u", m->n_table,
		       lb->table_size);
		return -EINVAL;
	}
	for (uint16_t i = 0; i < s->n; i++) {
		lb_backend_name(lb->fill[i].name, &s->be[i].addr, s->be[i].port, lb->family);
		lb->fill[i].weight = s->be[i].weight;
	}
	/* the spare table is free until lb_set_apply() */
	if (maglev_fill(lb->fill, s->n, lb->perm, lb->spare, lb->table_size) < 0)
		return -EINVAL;
	for (uint32_t e = 0; e < lb->table_size; e++) {
		if (m->table[e] != lb->spare[e]) {
			LB_LOG(ERR, "refused a table that differs from this instance's at entry %u",
			       e);
			return -EINVAL;
		}
	}
	return 0;
}

int
lb_all_put(void *nf, const uint8_t *buf, size_t len, bool commit)
{
	struct lb *lb = nf;
	Mbx__V1__LbBackends *m = mbx__v1__lb_backends__unpack(NULL, len, buf);
	int rc;

	if (m == NULL)
		return -EBADMSG;
	rc = set_from_pb(lb, m);
	if (rc == 0)
		rc = table_check(lb, m);
	if (rc == 0 && commit) {
		uint16_t before = lb->nb_used;

		lb_set_apply(lb, &lb->put);
		LB_LOG(NOTICE, "backend set replaced: %u backends, %u before", lb->nb_used, before);
	}
	mbx__v1__lb_backends__free_unpacked(m, NULL);
	return rc;
}
