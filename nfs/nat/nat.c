/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nat: NAPT44 (--nf nat,ext_ip=A.B.C.D[-E.F.G.H|/N][,ports=LO-HI]).
 *
 * The first packet of an inside IPv4 flow (TCP, UDP, ICMP echo) gets an
 * external address and port from the pool (port_pool.h); the flow's state is
 * that mapping plus the checksum deltas of the rewrite, so that every later
 * packet costs two incremental checksum updates (RFC 1624) and no sum over
 * the payload. The framework keys the translated reply to the same flow
 * entry, and nat_owner() sends replies to the worker that holds the external
 * port's block, so both directions meet the same state.
 *
 * Drops, each counted: a new flow from the outside (no mapping), a protocol
 * NAT cannot translate (ICMP other than echo, anything but TCP/UDP/ICMP),
 * pool exhaustion. IPv6 passes unchanged. Mappings expire with their flow:
 * TCP by state, UDP and ICMP by idle timer (the framework's timeout classes).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_kvargs.h>
#include <rte_malloc.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "mbx_csum.h"
#include "mbx_nf.h"
#include "nat.h"
#include "port_pool.h"

RTE_LOG_REGISTER(nat_logtype, user.mbx.nat, NOTICE);
#define NAT_LOG(level, fmt, ...) \
	rte_log(RTE_LOG_##level, nat_logtype, "mbx.nat: " fmt "\n", ##__VA_ARGS__)

static const char *const nat_counter_names[NAT_CTR_MAX] = {
#define X(e, s) s,
	NAT_COUNTERS(X)
#undef X
};

static int
parse_ext_ip(const char *key, const char *v, void *arg)
{
	struct nat_pool_conf *pc = arg;
	const char *sep = strpbrk(v, "-/");
	char lo[INET_ADDRSTRLEN];
	struct in_addr a, b;
	size_t len = sep ? (size_t)(sep - v) : strlen(v);

	(void)key;
	if (len == 0 || len >= sizeof(lo))
		return -EINVAL;
	memcpy(lo, v, len);
	lo[len] = '\0';
	if (inet_pton(AF_INET, lo, &a) != 1)
		return -EINVAL;
	pc->addr_lo = pc->addr_hi = ntohl(a.s_addr);
	if (sep != NULL && *sep == '-') {
		if (inet_pton(AF_INET, sep + 1, &b) != 1 || ntohl(b.s_addr) < pc->addr_lo)
			return -EINVAL;
		pc->addr_hi = ntohl(b.s_addr);
	} else if (sep != NULL) {
		char *end;
		unsigned long plen = strtoul(sep + 1, &end, 10);
		uint32_t span;

		if (*end != '\0' || end == sep + 1 || plen < 16 || plen > 32)
			return -EINVAL;
		span = plen == 32 ? 0 : (uint32_t)((1ULL << (32 - plen)) - 1);
		pc->addr_lo &= ~span;
		pc->addr_hi = pc->addr_lo + span;
	}
	return 0;
}

static int
parse_ports(const char *key, const char *v, void *arg)
{
	struct nat_pool_conf *pc = arg;
	unsigned long lo, hi;
	char *end;

	(void)key;
	lo = strtoul(v, &end, 10);
	if (end == v || *end != '-')
		return -EINVAL;
	hi = strtoul(end + 1, &end, 10);
	if (*end != '\0' || lo == 0 || lo > hi || hi > UINT16_MAX)
		return -EINVAL;
	pc->port_lo = (uint16_t)lo;
	pc->port_hi = (uint16_t)hi;
	return 0;
}

static void *
nat_create(const struct mbx_nf_params *p)
{
	static const char *const keys[] = {"ext_ip", "ports", NULL};
	struct nat_pool_conf pc = {
		.port_lo = 1024,
		.port_hi = 65535,
		.nb_workers = p->nb_workers,
		.socket = p->socket,
	};
	struct rte_kvargs *kv = rte_kvargs_parse(p->args, keys);
	struct nat *nat;

	if (kv == NULL || rte_kvargs_count(kv, "ext_ip") != 1 ||
	    rte_kvargs_count(kv, "ports") > 1 ||
	    rte_kvargs_process(kv, "ext_ip", parse_ext_ip, &pc) < 0 ||
	    rte_kvargs_process(kv, "ports", parse_ports, &pc) < 0) {
		NAT_LOG(ERR, "expected ext_ip=A.B.C.D[-E.F.G.H|/N][,ports=LO-HI], got '%s'",
			p->args);
		rte_kvargs_free(kv);
		rte_errno = EINVAL;
		return NULL;
	}
	rte_kvargs_free(kv);
	nat = rte_zmalloc_socket("nat", sizeof(*nat), RTE_CACHE_LINE_SIZE, p->socket);
	if (nat == NULL) {
		rte_errno = ENOMEM;
		return NULL;
	}
	nat->one_armed = p->nb_ports == 1;
	nat->flows = p->flows;
	nat->socket = p->socket;
	nat->pool = nat_pool_create(&pc);
	if (nat->pool == NULL) {
		NAT_LOG(ERR, "pool %s: %s", p->args, rte_strerror(rte_errno));
		rte_free(nat);
		return NULL;
	}
	NAT_LOG(INFO, "pool of %u blocks of %u ports", nat_pool_blocks(nat->pool), NAT_BLOCK_PORTS);
	return nat;
}

static void
nat_destroy(void *nf)
{
	struct nat *nat = nf;

	nat_pool_free(nat->pool);
	rte_free(nat);
}

static void *
nat_worker_init(void *nf, uint16_t worker, uint16_t nb_workers)
{
	struct nat *nat = nf;

	(void)worker;
	(void)nb_workers;
	return nat_hosts_create(nat->flows, nat->socket);
}

static void
nat_worker_fini(void *nf, void *priv)
{
	(void)nf;
	nat_hosts_free(priv);
}

static int
nat_owner(const void *nf, const struct mbx_pkt *p, uint16_t nb_workers)
{
	const struct nat *nat = nf;
	int o;

	if (p->key.family != MBX_FAMILY_V4)
		return -1;
	if (p->side == MBX_SIDE_OUTSIDE || nat->one_armed) {
		/* a reply: the worker holding the destination port's block */
		o = nat_pool_owner(nat->pool, p->key.dst.v4, p->key.dport);
		if (o != -2)
			return o < 0 ? 0 : o;
	}
	/* all flows of an inside host on one worker, with its port blocks */
	return mbx_owner_by_host(&p->key.src, MBX_FAMILY_V4, nb_workers);
}

bool
nat_translatable(const struct mbx_pkt *p)
{
	switch (p->key.proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		return true;
	case IPPROTO_ICMP:
		return p->icmp_type == RTE_IP_ICMP_ECHO_REQUEST;
	default:
		return false;
	}
}

void
nat_flow_set(struct nat_flow *st, const struct mbx_flow_key *in, rte_be32_t ext_addr,
	     rte_be16_t ext_port)
{
	uint32_t ip = mbx_csum_delta32(in->src.v4, ext_addr);
	uint32_t port = mbx_csum_delta16(in->sport, ext_port);

	st->in_addr = in->src.v4;
	st->in_port = in->sport;
	st->ext_addr = ext_addr;
	st->ext_port = ext_port;
	st->proto = in->proto;
	st->ip_delta = mbx_csum_fold(ip);
	/* TCP and UDP sum the pseudo-header (addresses); ICMP does not */
	st->l4_delta = mbx_csum_fold(in->proto == IPPROTO_ICMP ? port : ip + port);
	st->mapped = 1;
}

/* Rewrite the L4 port (or ICMP identifier) and checksum; @dst: destination side. */
static void
rewrite_l4(struct rte_mbuf *m, struct mbx_pkt *p, rte_be16_t port, uint16_t delta, bool dst)
{
	void *l4 = mbx_pkt_l4(m);

	switch (p->key.proto) {
	case IPPROTO_TCP: {
		struct rte_tcp_hdr *th = l4;

		*(dst ? &th->dst_port : &th->src_port) = port;
		th->cksum = mbx_csum_update(th->cksum, delta);
		break;
	}
	case IPPROTO_UDP: {
		struct rte_udp_hdr *uh = l4;

		*(dst ? &uh->dst_port : &uh->src_port) = port;
		if (uh->dgram_cksum != 0) { /* 0: no checksum, stays so */
			uint16_t c = mbx_csum_update(uh->dgram_cksum, delta);

			uh->dgram_cksum = c == 0 ? 0xffff : c;
		}
		break;
	}
	case IPPROTO_ICMP: {
		struct rte_icmp_hdr *ih = l4;

		ih->icmp_ident = port;
		ih->icmp_cksum = mbx_csum_update(ih->icmp_cksum, delta);
		p->key.sport = p->key.dport = port;
		break;
	}
	}
}

void
nat_translate_out(struct rte_mbuf *m, struct mbx_pkt *p, const struct nat_flow *st)
{
	struct rte_ipv4_hdr *ip = mbx_pkt_l3(m);

	ip->src_addr = st->ext_addr;
	ip->hdr_checksum = mbx_csum_update(ip->hdr_checksum, st->ip_delta);
	p->key.src.v4 = st->ext_addr;
	p->key.sport = st->ext_port;
	rewrite_l4(m, p, st->ext_port, st->l4_delta, false);
}

void
nat_translate_in(struct rte_mbuf *m, struct mbx_pkt *p, const struct nat_flow *st)
{
	struct rte_ipv4_hdr *ip = mbx_pkt_l3(m);

	ip->dst_addr = st->in_addr;
	ip->hdr_checksum = mbx_csum_update(ip->hdr_checksum, mbx_csum_negate(st->ip_delta));
	p->key.dst.v4 = st->in_addr;
	p->key.dport = st->in_port;
	rewrite_l4(m, p, st->in_port, mbx_csum_negate(st->l4_delta), true);
}

static void
nat_process(struct mbx_nf_ctx *c, struct rte_mbuf **pkts, uint16_t n)
{
	struct nat *nat = c->nf;

	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		struct mbx_pkt *p = mbx_pkt(m);
		struct nat_flow *st;
		rte_be32_t addr;
		rte_be16_t port;

		if (p->key.family != MBX_FAMILY_V4) {
			c->counters[NAT_CTR_V6_PASSED]++;
			continue;
		}
		st = mbx_nf_state(c, p->flow);
		if (p->dir == MBX_DIR_REPLY) {
			/* an echo's identifier maps replies only: a request to it is unsolicited */
			if (unlikely(!st->mapped || (p->key.proto == IPPROTO_ICMP &&
						     p->icmp_type != RTE_IP_ICMP_ECHO_REPLY))) {
				mbx_nf_drop(c, m, NAT_CTR_NO_MAPPING);
				continue;
			}
			nat_translate_in(m, p, st);
			c->counters[NAT_CTR_IN]++;
			continue;
		}
		if (likely(st->mapped)) {
			if (unlikely(!nat_translatable(p))) {
				mbx_nf_drop(c, m, NAT_CTR_UNSUPPORTED);
				continue;
			}
		} else {
			if (p->side == MBX_SIDE_OUTSIDE) {
				mbx_nf_drop(c, m, NAT_CTR_NO_MAPPING);
				continue;
			}
			if (!nat_translatable(p)) {
				mbx_nf_drop(c, m, NAT_CTR_UNSUPPORTED);
				continue;
			}
			if (nat_port_alloc(nat->pool, c->priv, c->worker, p->key.src.v4, &addr,
					   &port) < 0) {
				mbx_nf_drop(c, m, NAT_CTR_EXHAUSTED);
				continue;
			}
			nat_flow_set(st, &p->key, addr, port);
			c->counters[NAT_CTR_CREATED]++;
		}
		nat_translate_out(m, p, st);
		c->counters[NAT_CTR_OUT]++;
	}
}

static void
nat_flow_free(struct mbx_nf_ctx *c, struct mbx_flow *f)
{
	struct nat_flow *st = mbx_nf_state(c, f);
	struct nat *nat = c->nf;

	if (!st->mapped)
		return;
	if (!st->foreign)
		nat_port_release(nat->pool, c->priv, st->in_addr, st->ext_addr, st->ext_port);
	st->mapped = 0;
	st->foreign = 0;
	c->counters[NAT_CTR_FREED]++;
}

static const struct mbx_nf_ops nat_ops = {
	.name = "nat",
	.usage = "ext_ip=A.B.C.D[-E.F.G.H|/N][,ports=LO-HI]  NAPT44; ports default 1024-65535",
	.flow_state_size = sizeof(struct nat_flow),
	.state_version = 1,
	.state_types = {"mbx.v1.NatFlowState", "mbx.v1.NatHostPorts", "mbx.v1.NatPool"},
	.counter_names = nat_counter_names,
	.nb_counters = NAT_CTR_MAX,
	.create = nat_create,
	.destroy = nat_destroy,
	.worker_init = nat_worker_init,
	.worker_fini = nat_worker_fini,
	.owner = nat_owner,
	.process = nat_process,
	.flow_free = nat_flow_free,
	.flow_get = nat_flow_get,
	.flow_put = nat_flow_put,
	.multi_get = nat_multi_get,
	.multi_put = nat_multi_put,
	.multi_del = nat_multi_del,
	.all_get = nat_all_get,
	.all_put = nat_all_put,
};

MBX_NF_REGISTER(nat_ops);
