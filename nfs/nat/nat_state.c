/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The nat NF's state codecs, version 1 (proto/mbx/v1/nat.proto):
 * per-flow NatFlowState (the mapping), multi-flow NatHostPorts (a host's
 * port blocks, keyed by the host as src), all-flows NatPool (the pool).
 *
 * An import claims exactly the exported port, so the flow keeps its mapping
 * and its replies keep finding it; a port or block held by someone else, or
 * outside this instance's pool, is refused and nothing changes.
 *
 * NatFlowState, the one that comes by the million, is read and written by
 * hand (mbx_wire.h): no allocation per flow, the same bytes as protobuf-c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_errno.h>

#include "mbx/v1/nat.pb-c.h"
#include "mbx_wire.h"
#include "nat.h"

static ProtobufCBinaryData
bytes4(const rte_be32_t *a)
{
	return (ProtobufCBinaryData){.len = 4, .data = (uint8_t *)(uintptr_t)a};
}

static int
get_be32(const ProtobufCBinaryData *b, rte_be32_t *out)
{
	if (b->len != 4)
		return -EBADMSG;
	memcpy(out, b->data, 4);
	return 0;
}

int
nat_flow_get(struct mbx_nf_ctx *c, struct mbx_flow *f, uint8_t *buf, size_t cap)
{
	const struct nat_flow *st = mbx_nf_state(c, f);
	uint16_t in_port, ext_port;
	uint8_t *o = buf;
	size_t len;

	if (!st->mapped)
		return 0;
	in_port = rte_be_to_cpu_16(st->in_port);
	ext_port = rte_be_to_cpu_16(st->ext_port);
	/* NatFlowState: in_addr 1, in_port 2, ext_addr 3, ext_port 4, proto 5 */
	len = 2 * mbx_wire_len_size(1, 4) + mbx_wire_uint_size(2, in_port) +
	      mbx_wire_uint_size(4, ext_port) + mbx_wire_uint_size(5, st->proto);
	if (len > cap)
		return -ENOBUFS;
	o = mbx_wire_put_bytes(o, 1, &st->in_addr, 4);
	o = mbx_wire_put_uint(o, 2, in_port);
	o = mbx_wire_put_bytes(o, 3, &st->ext_addr, 4);
	o = mbx_wire_put_uint(o, 4, ext_port);
	o = mbx_wire_put_uint(o, 5, st->proto);
	return (int)(o - buf);
}

/* A NatFlowState read from its bytes, with protobuf-c's rules (mbx_wire.h). */
struct flow_msg {
	const uint8_t *in_addr, *ext_addr;
	size_t in_len, ext_len;
	uint32_t in_port, ext_port, proto;
};

static int
flow_msg_parse(const uint8_t *buf, size_t len, struct flow_msg *m)
{
	const uint8_t *p = buf, *end = buf + len;
	struct mbx_wire_field f;
	uint64_t v;
	int rc;

	memset(m, 0, sizeof(*m));
	/* the fields where every encoder puts them, then whatever is left */
	rc = mbx_wire_take_len(&p, end, 0x0a, &m->in_addr, &m->in_len);
	if (rc >= 0 && (rc = mbx_wire_take_varint(&p, end, 0x10, &v)) > 0)
		m->in_port = (uint32_t)v;
	if (rc >= 0)
		rc = mbx_wire_take_len(&p, end, 0x1a, &m->ext_addr, &m->ext_len);
	if (rc >= 0 && (rc = mbx_wire_take_varint(&p, end, 0x20, &v)) > 0)
		m->ext_port = (uint32_t)v;
	if (rc >= 0 && (rc = mbx_wire_take_varint(&p, end, 0x28, &v)) > 0)
		m->proto = (uint32_t)v;
	if (rc < 0)
		return -EBADMSG;
	while ((rc = mbx_wire_next(&p, end, &f)) > 0) {
		if (f.num == 0 || f.num > 5)
			continue;
		if (f.type != (f.num == 1 || f.num == 3 ? MBX_WIRE_LEN : MBX_WIRE_VARINT))
			return -EBADMSG;
		switch (f.num) {
		case 1:
			m->in_addr = f.data;
			m->in_len = f.len;
			break;
		case 2:
			m->in_port = (uint32_t)f.v;
			break;
		case 3:
			m->ext_addr = f.data;
			m->ext_len = f.len;
			break;
		case 4:
			m->ext_port = (uint32_t)f.v;
			break;
		default:
			m->proto = (uint32_t)f.v;
			break;
		}
	}
	return rc < 0 ? -EBADMSG : 0;
}

int
nat_flow_put(struct mbx_nf_ctx *c, struct mbx_flow *f, const uint8_t *buf, size_t len)
{
	const struct mbx_flow_key *k = &mbx_flow_keys(c->table, f)[0];
	struct nat_flow *st = mbx_nf_state(c, f);
	struct nat *nat = c->nf;
	rte_be32_t in_addr, ext_addr;
	struct flow_msg m;
	int rc;

	if (flow_msg_parse(buf, len, &m) < 0 || m.in_len != 4 || m.ext_len != 4 ||
	    m.in_port > UINT16_MAX || m.ext_port > UINT16_MAX)
		return mbx_nf_refuse(c, -EBADMSG, "not a NatFlowState");
	memcpy(&in_addr, m.in_addr, 4);
	memcpy(&ext_addr, m.ext_addr, 4);
	/* the mapping must be this flow's: same inside endpoint, same protocol */
	if (k->family != MBX_FAMILY_V4 || k->src.v4 != in_addr || m.proto != k->proto ||
	    rte_be_to_cpu_16(k->sport) != m.in_port)
		return mbx_nf_refuse(c, -EINVAL, "the mapping is of another inside endpoint");
	if (st->mapped)
		return mbx_nf_refuse(c, -EEXIST, "the flow is mapped here already");
	rc = nat_port_claim(nat->pool, c->priv, c->worker, in_addr, ext_addr,
			    rte_cpu_to_be_16((uint16_t)m.ext_port));
	if (rc == -EINVAL) {
		/* another instance's port (instances sharing an address split the
		 * ports): the flow keeps it, and this pool never hands it out */
		st->foreign = 1;
		rc = 0;
	}
	if (rc == -EBUSY)
		return mbx_nf_refuse(c, rc, "external port %u is in use here", m.ext_port);
	if (rc == -ENOSPC)
		return mbx_nf_refuse(c, rc, "the NAT host table is full");
	if (rc == 0)
		nat_flow_set(st, k, ext_addr, rte_cpu_to_be_16((uint16_t)m.ext_port));
	return rc;
}

/* A NAT host as a multi-flow key: the host is the source. */
static struct mbx_flow_key
host_key(rte_be32_t host)
{
	struct mbx_flow_key k;

	memset(&k, 0, sizeof(k));
	k.family = MBX_FAMILY_V4;
	k.src.v4 = host;
	return k;
}

/* Only the source prefix (and family) of a filter applies to hosts. */
static bool
host_matches(const struct mbx_filter *flt, rte_be32_t host)
{
	struct mbx_filter f;
	struct mbx_flow_key k = host_key(host);

	mbx_filter_init(&f);
	f.family = flt->family;
	f.src = flt->src;
	return mbx_filter_match(&f, &k);
}

struct multi_get {
	struct mbx_nf_ctx *c;
	const struct mbx_filter *flt;
	mbx_state_emit emit;
	void *arg;
	Mbx__V1__NatBlock *blocks;
	Mbx__V1__NatBlock **ptrs;
	rte_be32_t *addrs;
	uint8_t *buf;
	uint32_t cap;
	int rc;
};

static int
emit_host(const struct nat_host *host, void *arg)
{
	struct multi_get *g = arg;
	struct nat *nat = g->c->nf;
	Mbx__V1__NatHostPorts m = MBX__V1__NAT_HOST_PORTS__INIT;
	struct mbx_flow_key k = host_key(host->addr);
	uint32_t n = 0;
	size_t len;

	if (!host_matches(g->flt, host->addr))
		return 0;
	if (host->nb_blocks > g->cap) {
		/* grow the scratch arrays: control path, not per packet */
		uint32_t cap = host->nb_blocks * 2;
		void *b = realloc(g->blocks, cap * sizeof(*g->blocks));

		if (b != NULL)
			g->blocks = b;
		b = realloc(g->ptrs, cap * sizeof(*g->ptrs));
		if (b != NULL)
			g->ptrs = b;
		b = realloc(g->addrs, cap * sizeof(*g->addrs));
		if (b != NULL)
			g->addrs = b;
		b = realloc(g->buf, 64 + cap * 24);
		if (b != NULL)
			g->buf = b;
		if (g->blocks == NULL || g->ptrs == NULL || g->addrs == NULL || g->buf == NULL)
			return -ENOMEM;
		g->cap = cap;
	}
	for (uint32_t b = host->head; b != NAT_NONE; b = nat_block_next(nat->pool, b), n++) {
		rte_be16_t port;

		mbx__v1__nat_block__init(&g->blocks[n]);
		nat_block_get(nat->pool, b, &g->addrs[n], &port, &g->blocks[n].used);
		g->blocks[n].addr = bytes4(&g->addrs[n]);
		g->blocks[n].first_port = rte_be_to_cpu_16(port);
		g->ptrs[n] = &g->blocks[n];
	}
	m.host = bytes4(&host->addr);
	m.n_blocks = n;
	m.blocks = g->ptrs;
	m.ports = host->nb_ports;
	len = mbx__v1__nat_host_ports__pack(&m, g->buf);
	return g->emit(g->arg, &k, NULL, g->buf, len);
}

int
nat_multi_get(struct mbx_nf_ctx *c, const struct mbx_filter *flt, mbx_state_emit emit, void *arg)
{
	struct multi_get g = {.c = c, .flt = flt, .emit = emit, .arg = arg};
	int rc;

	rc = nat_hosts_foreach(c->priv, emit_host, &g);
	free(g.blocks);
	free(g.ptrs);
	free(g.addrs);
	free(g.buf);
	return rc;
}

int
nat_multi_put(struct mbx_nf_ctx *c, const struct mbx_flow_key *key, const uint8_t *buf, size_t len)
{
	Mbx__V1__NatHostPorts *m = mbx__v1__nat_host_ports__unpack(NULL, len, buf);
	struct nat *nat = c->nf;
	rte_be32_t host, addr;
	int rc = -EBADMSG;

	if (m == NULL)
		return -EBADMSG;
	if (get_be32(&m->host, &host) < 0)
		goto out;
	rc = -EINVAL;
	if (key->family != MBX_FAMILY_V4 || key->src.v4 != host)
		goto out;
	for (size_t i = 0; i < m->n_blocks; i++) {
		rc = get_be32(&m->blocks[i]->addr, &addr);
		if (rc == 0 && m->blocks[i]->first_port > UINT16_MAX)
			rc = -EBADMSG;
		if (rc == 0)
			rc = nat_block_reserve(
				nat->pool, c->priv, c->worker, host, addr,
				rte_cpu_to_be_16((uint16_t)m->blocks[i]->first_port));
		if (rc == -EINVAL)
			rc = 0; /* another instance's block: nothing to reserve here */
		if (rc < 0) {
			/* all or nothing: give back what this call took */
			nat_host_trim(nat->pool, c->priv, host);
			if (rc == -EBUSY)
				mbx_nf_refuse(c, rc, "port block %u is taken here",
					      m->blocks[i]->first_port);
			goto out;
		}
	}
	rc = 0;
out:
	mbx__v1__nat_host_ports__free_unpacked(m, NULL);
	return rc;
}

struct multi_del {
	struct mbx_nf_ctx *c;
	const struct mbx_filter *flt;
	rte_be32_t *hosts;
	uint32_t n;
};

static int
collect_host(const struct nat_host *host, void *arg)
{
	struct multi_del *d = arg;

	if (host_matches(d->flt, host->addr))
		d->hosts[d->n++] = host->addr;
	return 0;
}

int
nat_multi_del(struct mbx_nf_ctx *c, const struct mbx_filter *flt)
{
	struct nat *nat = c->nf;
	struct multi_del d = {.c = c, .flt = flt};
	uint32_t freed = 0;

	/* collect first: trimming changes the host table being walked */
	d.hosts = malloc(sizeof(rte_be32_t) * (nat_hosts_count(c->priv) + 1));
	if (d.hosts == NULL)
		return -ENOMEM;
	nat_hosts_foreach(c->priv, collect_host, &d);
	for (uint32_t i = 0; i < d.n; i++)
		freed += nat_host_trim(nat->pool, c->priv, d.hosts[i]);
	free(d.hosts);
	return (int)freed;
}

int
nat_all_get(void *nf, mbx_state_emit emit, void *arg)
{
	struct nat *nat = nf;
	const struct nat_pool_conf *pc = nat_pool_conf(nat->pool);
	Mbx__V1__NatPool m = MBX__V1__NAT_POOL__INIT;
	rte_be32_t lo = rte_cpu_to_be_32(pc->addr_lo), hi = rte_cpu_to_be_32(pc->addr_hi);
	uint8_t buf[128];

	m.addr_lo = bytes4(&lo);
	m.addr_hi = bytes4(&hi);
	m.port_lo = pc->port_lo;
	m.port_hi = pc->port_hi;
	m.block_ports = NAT_BLOCK_PORTS;
	m.blocks = nat_pool_blocks(nat->pool);
	m.blocks_free = nat_pool_free_blocks(nat->pool);
	return emit(arg, NULL, NULL, buf, mbx__v1__nat_pool__pack(&m, buf));
}

int
nat_all_put(void *nf, const uint8_t *buf, size_t len, bool commit)
{
	struct nat *nat = nf;
	const struct nat_pool_conf *pc = nat_pool_conf(nat->pool);
	Mbx__V1__NatPool *m = mbx__v1__nat_pool__unpack(NULL, len, buf);
	struct nat_pool_conf want = *pc;
	struct nat_pool *np;
	rte_be32_t lo, hi;
	int rc = -EBADMSG;

	if (m == NULL)
		return -EBADMSG;
	if (get_be32(&m->addr_lo, &lo) < 0 || get_be32(&m->addr_hi, &hi) < 0 ||
	    m->port_lo > UINT16_MAX || m->port_hi > UINT16_MAX)
		goto out;
	rc = -EINVAL;
	if (m->block_ports != NAT_BLOCK_PORTS || m->port_lo == 0 || m->port_lo > m->port_hi ||
	    rte_be_to_cpu_32(lo) > rte_be_to_cpu_32(hi))
		goto out;
	want.addr_lo = rte_be_to_cpu_32(lo);
	want.addr_hi = rte_be_to_cpu_32(hi);
	want.port_lo = (uint16_t)m->port_lo;
	want.port_hi = (uint16_t)m->port_hi;
	rc = 0;
	if (memcmp(&want, pc, sizeof(want)) == 0)
		goto out; /* the same pool: nothing to do */
	/* a different pool replaces this one only while no port is in use */
	rc = -EBUSY;
	if (nat_pool_free_blocks(nat->pool) != nat_pool_blocks(nat->pool))
		goto out;
	rc = 0;
	if (!commit)
		goto out;
	np = nat_pool_create(&want);
	if (np == NULL) {
		rc = -rte_errno;
		goto out;
	}
	nat_pool_free(nat->pool);
	nat->pool = np;
out:
	mbx__v1__nat_pool__free_unpacked(m, NULL);
	return rc;
}
