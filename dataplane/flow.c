/* SPDX-License-Identifier: BSD-3-Clause */
/* Flow keys and filters: see mbx_flow.h. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "mbx_flow.h"

void
mbx_filter_init(struct mbx_filter *f)
{
	memset(f, 0, sizeof(*f));
	f->sport.hi = UINT16_MAX;
	f->dport.hi = UINT16_MAX;
}

static bool
prefix_match(const struct mbx_prefix *p, uint8_t family, const union mbx_addr *a)
{
	if (p->len == 0)
		return true;
	if (family == MBX_FAMILY_V4) {
		rte_be32_t mask = rte_cpu_to_be_32(~0u << (32 - p->len));

		return ((a->v4 ^ p->addr.v4) & mask) == 0;
	}
	for (unsigned int i = 0, bits = p->len; i < 2 && bits > 0; i++) {
		uint64_t mask = bits >= 64 ? ~0ULL : ~0ULL << (64 - bits);

		if (((rte_be_to_cpu_64(a->u64[i]) ^ rte_be_to_cpu_64(p->addr.u64[i])) & mask) != 0)
			return false;
		bits = bits >= 64 ? bits - 64 : 0;
	}
	return true;
}

bool
mbx_filter_overlap(const struct mbx_filter *a, const struct mbx_filter *b)
{
	uint8_t family = a->family != MBX_FAMILY_ANY ? a->family : b->family;
	const struct mbx_prefix *pa[2] = {&a->src, &a->dst}, *pb[2] = {&b->src, &b->dst};

	if (a->family != MBX_FAMILY_ANY && b->family != MBX_FAMILY_ANY && a->family != b->family)
		return false;
	if (a->proto != 0 && b->proto != 0 && a->proto != b->proto)
		return false;
	if (a->sport.lo > b->sport.hi || b->sport.lo > a->sport.hi || a->dport.lo > b->dport.hi ||
	    b->dport.lo > a->dport.hi)
		return false;
	/* two prefixes overlap when the longer one lies in the shorter one */
	for (int i = 0; i < 2; i++) {
		const struct mbx_prefix *shorter = pa[i]->len <= pb[i]->len ? pa[i] : pb[i];
		const struct mbx_prefix *longer = shorter == pa[i] ? pb[i] : pa[i];

		if (!prefix_match(shorter, family, &longer->addr))
			return false;
	}
	return true;
}

static bool
range_match(const struct mbx_port_range *r, rte_be16_t port)
{
	uint16_t v = rte_be_to_cpu_16(port);

	return v >= r->lo && v <= r->hi;
}

bool
mbx_filter_match(const struct mbx_filter *f, const struct mbx_flow_key *k)
{
	if (f->family != MBX_FAMILY_ANY && f->family != k->family)
		return false;
	if (f->proto != 0 && f->proto != k->proto)
		return false;
	return prefix_match(&f->src, k->family, &k->src) &&
	       prefix_match(&f->dst, k->family, &k->dst) && range_match(&f->sport, k->sport) &&
	       range_match(&f->dport, k->dport);
}

static const char *
proto_name(uint8_t proto, char *buf, size_t len)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "tcp";
	case IPPROTO_UDP:
		return "udp";
	case IPPROTO_ICMP:
		return "icmp";
	case IPPROTO_ICMPV6:
		return "icmpv6";
	default:
		snprintf(buf, len, "proto-%u", proto);
		return buf;
	}
}

char *
mbx_flow_key_str(const struct mbx_flow_key *k, char *buf, size_t len)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN], p[16];
	int af = k->family == MBX_FAMILY_V6 ? AF_INET6 : AF_INET;
	const char *lb = af == AF_INET6 ? "[" : "", *rb = af == AF_INET6 ? "]" : "";

	inet_ntop(af, &k->src, s, sizeof(s));
	inet_ntop(af, &k->dst, d, sizeof(d));
	snprintf(buf, len, "%s %s%s%s:%u > %s%s%s:%u", proto_name(k->proto, p, sizeof(p)), lb, s,
		 rb, rte_be_to_cpu_16(k->sport), lb, d, rb, rte_be_to_cpu_16(k->dport));
	return buf;
}
