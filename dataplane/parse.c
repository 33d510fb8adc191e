/* SPDX-License-Identifier: BSD-3-Clause */
/* Packet parsing into struct mbx_pkt: see mbx_pkt.h. */
#include <netinet/in.h>
#include <string.h>

#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "mbx_marker.h"
#include "mbx_pkt.h"

const char *const mbx_parse_result_names[MBX_PARSE_MAX] = {
#define X(e, s) s,
	MBX_PARSE_RESULTS(X)
#undef X
};

#define ICMP6_ECHO_REQUEST 128
#define ICMP6_ECHO_REPLY   129
#define IP6_MAX_EXT_HDRS   8

/*
 * Make sure @n bytes from @off are in the first segment; if they are not,
 * the packet is either segmented (the bytes exist further on) or truncated.
 */
#define NEED(off, n, reason)                                                             \
	do {                                                                             \
		if ((uint32_t)(off) + (n) > len)                                         \
			return (uint32_t)(off) + (n) <= m->pkt_len ? MBX_PARSE_SEGMENTED \
								   : (reason);           \
	} while (0)

static enum mbx_parse_result
parse_l4(struct mbx_pkt *p, const uint8_t *l4, uint32_t l4_len)
{
	switch (p->key.proto) {
	case IPPROTO_TCP: {
		const struct rte_tcp_hdr *th = (const struct rte_tcp_hdr *)l4;
		uint32_t doff;

		if (l4_len < sizeof(*th))
			return MBX_PARSE_TCP_TRUNC;
		doff = (th->data_off >> 4) * 4u;
		if (doff < sizeof(*th) || doff > l4_len)
			return MBX_PARSE_TCP_DOFF;
		p->key.sport = th->src_port;
		p->key.dport = th->dst_port;
		p->tcp_flags = th->tcp_flags;
		break;
	}
	case IPPROTO_UDP: {
		const struct rte_udp_hdr *uh = (const struct rte_udp_hdr *)l4;
		uint32_t ulen;

		if (l4_len < sizeof(*uh))
			return MBX_PARSE_UDP_TRUNC;
		ulen = rte_be_to_cpu_16(uh->dgram_len);
		if (ulen < sizeof(*uh) || ulen > l4_len)
			return MBX_PARSE_UDP_LEN;
		p->key.sport = uh->src_port;
		p->key.dport = uh->dst_port;
		break;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		const struct rte_icmp_hdr *ih = (const struct rte_icmp_hdr *)l4;

		if (l4_len < sizeof(*ih))
			return MBX_PARSE_ICMP_TRUNC;
		p->icmp_type = ih->icmp_type;
		if (p->key.proto == IPPROTO_ICMP ? ih->icmp_type == RTE_IP_ICMP_ECHO_REQUEST ||
							   ih->icmp_type == RTE_IP_ICMP_ECHO_REPLY
						 : ih->icmp_type == ICMP6_ECHO_REQUEST ||
							   ih->icmp_type == ICMP6_ECHO_REPLY) {
			/* the identifier is both ports: a reply's key is the request's reversed */
			p->key.sport = ih->icmp_ident;
			p->key.dport = ih->icmp_ident;
		}
		break;
	}
	default:
		break;
	}
	return MBX_PARSE_OK;
}

static enum mbx_parse_result
parse_ipv4(struct rte_mbuf *m, struct mbx_pkt *p, const uint8_t *d, uint32_t off, uint32_t len)
{
	const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(d + off);
	uint32_t ihl, tot;
	uint64_t csum_flags;

	NEED(off, sizeof(*ip), MBX_PARSE_IP4_TRUNC);
	if ((ip->version_ihl >> 4) != 4)
		return MBX_PARSE_IP4_VERSION;
	ihl = (ip->version_ihl & 0xf) * 4u;
	if (ihl < sizeof(*ip))
		return MBX_PARSE_IP4_IHL;
	NEED(off, ihl, MBX_PARSE_IP4_IHL);
	tot = rte_be_to_cpu_16(ip->total_length);
	if (tot < ihl)
		return MBX_PARSE_IP4_LEN;
	NEED(off, tot, MBX_PARSE_IP4_LEN);
	csum_flags = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
	if (csum_flags == RTE_MBUF_F_RX_IP_CKSUM_BAD ||
	    (csum_flags != RTE_MBUF_F_RX_IP_CKSUM_GOOD && rte_raw_cksum(ip, ihl) != 0xffff))
		return MBX_PARSE_IP4_CSUM;
	if (ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK))
		return MBX_PARSE_FRAGMENT;

	p->key.family = MBX_FAMILY_V4;
	p->key.proto = ip->next_proto_id;
	p->key.src.v4 = ip->src_addr;
	p->key.dst.v4 = ip->dst_addr;
	p->l3_off = off;
	p->l3_len = ihl;
	p->l4_off = off + ihl;
	p->l4_len = tot - ihl;
	return parse_l4(p, d + off + ihl, tot - ihl);
}

static enum mbx_parse_result
parse_ipv6(struct rte_mbuf *m, struct mbx_pkt *p, const uint8_t *d, uint32_t off, uint32_t len)
{
	const struct rte_ipv6_hdr *ip = (const struct rte_ipv6_hdr *)(d + off);
	uint32_t plen, l4, end, i;
	uint8_t next;

	NEED(off, sizeof(*ip), MBX_PARSE_IP6_TRUNC);
	if ((rte_be_to_cpu_32(ip->vtc_flow) >> 28) != 6)
		return MBX_PARSE_IP6_VERSION;
	plen = rte_be_to_cpu_16(ip->payload_len);
	NEED(off, sizeof(*ip) + plen, MBX_PARSE_IP6_LEN);
	l4 = off + sizeof(*ip);
	end = l4 + plen;
	next = ip->proto;
	for (i = 0;; i++) {
		uint32_t elen;

		if (next == IPPROTO_FRAGMENT)
			return MBX_PARSE_FRAGMENT;
		if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING && next != IPPROTO_DSTOPTS &&
		    next != IPPROTO_AH)
			break;
		if (i == IP6_MAX_EXT_HDRS || l4 + 8 > end)
			return MBX_PARSE_IP6_EXT;
		elen = next == IPPROTO_AH ? (d[l4 + 1] + 2u) * 4u : (d[l4 + 1] + 1u) * 8u;
		if (l4 + elen > end)
			return MBX_PARSE_IP6_EXT;
		next = d[l4];
		l4 += elen;
	}

	p->key.family = MBX_FAMILY_V6;
	p->key.proto = next;
	memcpy(p->key.src.v6, ip->src_addr, 16);
	memcpy(p->key.dst.v6, ip->dst_addr, 16);
	p->l3_off = off;
	p->l3_len = l4 - off;
	p->l4_off = l4;
	p->l4_len = end - l4;
	return parse_l4(p, d + l4, end - l4);
}

enum mbx_parse_result
mbx_parse(struct rte_mbuf *m)
{
	struct mbx_pkt *p = mbx_pkt(m);
	const uint8_t *d = rte_pktmbuf_mtod(m, const uint8_t *);
	uint32_t len = rte_pktmbuf_data_len(m);
	uint32_t off = sizeof(struct rte_ether_hdr);
	rte_be16_t et;

	memset(&p->key, 0, sizeof(p->key));
	p->tcp_flags = 0;
	p->icmp_type = 0;
	NEED(0, off, MBX_PARSE_ETH_TRUNC);
	et = ((const struct rte_ether_hdr *)d)->ether_type;
	if (et == rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN) ||
	    et == rte_cpu_to_be_16(RTE_ETHER_TYPE_QINQ)) {
		NEED(off, sizeof(struct rte_vlan_hdr), MBX_PARSE_VLAN_TRUNC);
		et = ((const struct rte_vlan_hdr *)(d + off))->eth_proto;
		off += sizeof(struct rte_vlan_hdr);
	}
	if (et == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4))
		return parse_ipv4(m, p, d, off, len);
	if (et == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6))
		return parse_ipv6(m, p, d, off, len);
	if (et == rte_cpu_to_be_16(MBX_MARKER_ETHERTYPE) && off == sizeof(struct rte_ether_hdr))
		return MBX_PARSE_MARKER;
	return MBX_PARSE_NON_IP;
}
