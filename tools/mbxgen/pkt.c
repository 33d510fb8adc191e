/* SPDX-License-Identifier: BSD-3-Clause */
/* mbxgen's packets: see pkt.h. */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include <rte_tcp.h>
#include <rte_udp.h>

#include "pkt.h"

#define TCP_WINDOW 65535

void
mbxgen_flow_tuple(const struct mbxgen_options *o, uint32_t flow, struct mbxgen_tuple *t)
{
	t->src = o->src + flow % o->hosts;
	t->sport = (uint16_t)(o->sport + flow / o->hosts);
	t->dst = o->dst;
	t->dport = o->dport;
	if (o->proto == MBXGEN_PROTO_TCP || (o->proto == MBXGEN_PROTO_MIXED && (flow & 1)))
		t->proto = IPPROTO_TCP;
	else
		t->proto = IPPROTO_UDP;
}

uint32_t
mbxgen_flow_of_source(const struct mbxgen_options *o, uint32_t addr, uint16_t port)
{
	uint64_t flow;

	if (addr < o->src || addr - o->src >= o->hosts || port < o->sport)
		return UINT32_MAX;
	flow = (uint64_t)(port - o->sport) * o->hosts + (addr - o->src);
	return flow < o->flows ? (uint32_t)flow : UINT32_MAX;
}

/* Ethernet and IPv4 headers for @p t, @p l4_len bytes of L4 after them. */
static struct rte_ipv4_hdr *
put_l3(struct rte_mbuf *m, const struct mbxgen_eth *eth, const struct mbxgen_tuple *t,
       uint16_t l4_len, uint16_t ip_id)
{
	struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eh + 1);

	eh->src_addr = eth->src;
	eh->dst_addr = eth->dst;
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->type_of_service = 0;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + l4_len));
	ip->packet_id = rte_cpu_to_be_16(ip_id);
	ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = 64;
	ip->next_proto_id = t->proto;
	ip->hdr_checksum = 0;
	ip->src_addr = rte_cpu_to_be_32(t->src);
	ip->dst_addr = rte_cpu_to_be_32(t->dst);
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	return ip;
}

static void
put_tcp(struct rte_tcp_hdr *th, uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq,
	uint32_t ack)
{
	th->src_port = rte_cpu_to_be_16(sport);
	th->dst_port = rte_cpu_to_be_16(dport);
	th->sent_seq = rte_cpu_to_be_32(seq);
	th->recv_ack = rte_cpu_to_be_32(ack);
	th->data_off = (sizeof(*th) / 4) << 4;
	th->tcp_flags = flags;
	th->rx_win = rte_cpu_to_be_16(TCP_WINDOW);
	th->cksum = 0;
	th->tcp_urp = 0;
}

void
mbxgen_build_data(struct rte_mbuf *m, const struct mbxgen_eth *eth, const struct mbxgen_tuple *t,
		  uint32_t flow, uint64_t seq, uint64_t tsc, uint16_t len, uint32_t tcp_seq,
		  uint32_t tcp_ack)
{
	uint16_t hdr = t->proto == IPPROTO_TCP ? MBXGEN_HDR_TCP : MBXGEN_HDR_UDP;
	uint16_t l4_len = (uint16_t)(len - RTE_ETHER_HDR_LEN - sizeof(struct rte_ipv4_hdr));
	struct rte_ipv4_hdr *ip;
	struct mbxgen_payload *pl;
	void *l4;

	m->data_len = len;
	m->pkt_len = len;
	ip = put_l3(m, eth, t, l4_len, (uint16_t)seq);
	l4 = ip + 1;
	pl = rte_pktmbuf_mtod_offset(m, struct mbxgen_payload *, hdr);
	pl->magic = rte_cpu_to_be_32(MBXGEN_MAGIC);
	pl->flow = rte_cpu_to_be_32(flow);
	pl->seq = rte_cpu_to_be_64(seq);
	pl->tsc = rte_cpu_to_be_64(tsc);
	memset(pl + 1, 0, len - hdr - sizeof(*pl));
	if (t->proto == IPPROTO_TCP) {
		struct rte_tcp_hdr *th = l4;

		put_tcp(th, t->sport, t->dport, RTE_TCP_PSH_FLAG | RTE_TCP_ACK_FLAG, tcp_seq,
			tcp_ack);
		th->cksum = rte_ipv4_udptcp_cksum(ip, th);
	} else {
		struct rte_udp_hdr *uh = l4;

		uh->src_port = rte_cpu_to_be_16(t->sport);
		uh->dst_port = rte_cpu_to_be_16(t->dport);
		uh->dgram_len = rte_cpu_to_be_16(l4_len);
		uh->dgram_cksum = 0;
		uh->dgram_cksum = rte_ipv4_udptcp_cksum(ip, uh);
	}
}

void
mbxgen_build_tcp(struct rte_mbuf *m, const struct mbxgen_eth *eth, const struct mbxgen_tuple *t,
		 uint8_t flags, uint32_t tcp_seq, uint32_t tcp_ack)
{
	struct rte_ipv4_hdr *ip;
	struct rte_tcp_hdr *th;

	m->data_len = MBXGEN_HDR_TCP;
	m->pkt_len = MBXGEN_HDR_TCP;
	ip = put_l3(m, eth, t, sizeof(*th), 0);
	th = (struct rte_tcp_hdr *)(ip + 1);
	put_tcp(th, t->sport, t->dport, flags, tcp_seq, tcp_ack);
	th->cksum = rte_ipv4_udptcp_cksum(ip, th);
}

int
mbxgen_parse(struct rte_mbuf *m, struct mbxgen_parsed *p)
{
	const struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	uint16_t len = rte_pktmbuf_data_len(m), ihl, tot, l4_len, l4_hdr;
	struct rte_ipv4_hdr *ip;

	if (len < RTE_ETHER_HDR_LEN + sizeof(*ip) ||
	    eh->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4))
		return -EINVAL;
	ip = (struct rte_ipv4_hdr *)(eh + 1);
	ihl = (uint16_t)((ip->version_ihl & 0xf) * 4);
	tot = rte_be_to_cpu_16(ip->total_length);
	if ((ip->version_ihl >> 4) != 4 || ihl < sizeof(*ip) || tot < ihl ||
	    tot > len - RTE_ETHER_HDR_LEN ||
	    (rte_be_to_cpu_16(ip->fragment_offset) &
	     (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) != 0)
		return -EINVAL;
	l4_len = tot - ihl;
	p->ip = ip;
	p->l4 = (uint8_t *)ip + ihl;
	p->t.src = rte_be_to_cpu_32(ip->src_addr);
	p->t.dst = rte_be_to_cpu_32(ip->dst_addr);
	p->t.proto = ip->next_proto_id;
	p->csum_ok = rte_ipv4_cksum(ip) == 0;
	if (ip->next_proto_id == IPPROTO_TCP) {
		const struct rte_tcp_hdr *th = p->l4;

		if (l4_len < sizeof(*th))
			return -EINVAL;
		l4_hdr = (uint16_t)((th->data_off >> 4) * 4);
		if (l4_hdr < sizeof(*th) || l4_hdr > l4_len)
			return -EINVAL;
		p->t.sport = rte_be_to_cpu_16(th->src_port);
		p->t.dport = rte_be_to_cpu_16(th->dst_port);
		p->tcp_flags = th->tcp_flags;
		p->tcp_seq = rte_be_to_cpu_32(th->sent_seq);
		p->tcp_ack = rte_be_to_cpu_32(th->recv_ack);
		if (p->csum_ok)
			p->csum_ok = rte_ipv4_udptcp_cksum_verify(ip, th) == 0;
	} else if (ip->next_proto_id == IPPROTO_UDP) {
		const struct rte_udp_hdr *uh = p->l4;

		if (l4_len < sizeof(*uh) || rte_be_to_cpu_16(uh->dgram_len) != l4_len)
			return -EINVAL;
		l4_hdr = sizeof(*uh);
		p->t.sport = rte_be_to_cpu_16(uh->src_port);
		p->t.dport = rte_be_to_cpu_16(uh->dst_port);
		p->tcp_flags = 0;
		p->tcp_seq = p->tcp_ack = 0;
		if (p->csum_ok && uh->dgram_cksum != 0)
			p->csum_ok = rte_ipv4_udptcp_cksum_verify(ip, uh) == 0;
	} else {
		return -EINVAL;
	}
	p->payload_len = l4_len - l4_hdr;
	p->pl = NULL;
	if (p->payload_len >= sizeof(struct mbxgen_payload)) {
		const struct mbxgen_payload *pl =
			(const struct mbxgen_payload *)((const uint8_t *)p->l4 + l4_hdr);

		if (pl->magic == rte_cpu_to_be_32(MBXGEN_MAGIC))
			p->pl = pl;
	}
	return 0;
}

void
mbxgen_tcp_reply(struct rte_mbuf *m, struct mbxgen_parsed *p, uint8_t flags, uint32_t seq,
		 uint32_t ack)
{
	struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_ether_addr mac = eh->src_addr;
	struct rte_ipv4_hdr *ip = p->ip;
	struct rte_tcp_hdr *th;
	rte_be32_t a = ip->src_addr;

	eh->src_addr = eh->dst_addr;
	eh->dst_addr = mac;
	/* keep it simple: a fresh 20-byte IPv4 header, then a 20-byte TCP header */
	if (p->l4 != (void *)(ip + 1))
		memmove(ip + 1, p->l4, sizeof(*th));
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->src_addr = ip->dst_addr;
	ip->dst_addr = a;
	ip->total_length = rte_cpu_to_be_16(sizeof(*ip) + sizeof(*th));
	ip->packet_id = 0;
	ip->time_to_live = 64;
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	th = (struct rte_tcp_hdr *)(ip + 1);
	put_tcp(th, p->t.dport, p->t.sport, flags, seq, ack);
	th->cksum = rte_ipv4_udptcp_cksum(ip, th);
	m->data_len = MBXGEN_HDR_TCP;
	m->pkt_len = MBXGEN_HDR_TCP;
	p->l4 = th;
}
