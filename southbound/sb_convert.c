/* SPDX-License-Identifier: BSD-3-Clause */
/* Wire types to dataplane types and back: see mbx_sb.h. */
#include <errno.h>
#include <string.h>

#include "mbx_sb.h"

static size_t
addr_len(uint8_t family)
{
	return family == MBX_FAMILY_V6 ? 16 : 4;
}

Mbx__V1__FlowKey *
sb_key_to_pb(const struct mbx_flow_key *k, struct sb_key_buf *out)
{
	size_t n = addr_len(k->family);

	mbx__v1__flow_key__init(&out->pb);
	out->pb.family = (Mbx__V1__Family)k->family;
	out->pb.proto = k->proto;
	memcpy(out->src, &k->src, n);
	memcpy(out->dst, &k->dst, n);
	out->pb.src = (ProtobufCBinaryData){n, out->src};
	out->pb.dst = (ProtobufCBinaryData){n, out->dst};
	out->pb.sport = rte_be_to_cpu_16(k->sport);
	out->pb.dport = rte_be_to_cpu_16(k->dport);
	return &out->pb;
}

int
sb_key_from_pb(const Mbx__V1__FlowKey *pb, struct mbx_flow_key *k)
{
	size_t n;

	memset(k, 0, sizeof(*k));
	if (pb == NULL)
		return 0;
	if (pb->family != MBX__V1__FAMILY__FAMILY_IPV4 &&
	    pb->family != MBX__V1__FAMILY__FAMILY_IPV6)
		return -EINVAL;
	n = addr_len(pb->family);
	/* a partial key (a multi-flow key) may leave the destination out */
	if (pb->src.len != n || (pb->dst.len != n && pb->dst.len != 0) || pb->proto > 255 ||
	    pb->sport > UINT16_MAX || pb->dport > UINT16_MAX)
		return -EINVAL;
	k->family = (uint8_t)pb->family;
	k->proto = (uint8_t)pb->proto;
	memcpy(&k->src, pb->src.data, n);
	if (pb->dst.len != 0)
		memcpy(&k->dst, pb->dst.data, n);
	k->sport = rte_cpu_to_be_16((uint16_t)pb->sport);
	k->dport = rte_cpu_to_be_16((uint16_t)pb->dport);
	return 0;
}

static int
prefix_from_pb(const Mbx__V1__Prefix *pb, struct mbx_filter *f, struct mbx_prefix *p)
{
	uint8_t family;

	if (pb == NULL || (pb->addr.len == 0 && pb->len == 0))
		return 0;
	if (pb->addr.len == 4)
		family = MBX_FAMILY_V4;
	else if (pb->addr.len == 16)
		family = MBX_FAMILY_V6;
	else
		return -EINVAL;
	if (pb->len > pb->addr.len * 8 || (f->family != MBX_FAMILY_ANY && f->family != family))
		return -EINVAL;
	f->family = family;
	memcpy(&p->addr, pb->addr.data, pb->addr.len);
	p->len = (uint8_t)pb->len;
	return 0;
}

static int
range_from_pb(const Mbx__V1__PortRange *pb, struct mbx_port_range *r)
{
	if (pb == NULL)
		return 0;
	if (pb->lo > pb->hi || pb->hi > UINT16_MAX)
		return -EINVAL;
	r->lo = (uint16_t)pb->lo;
	r->hi = (uint16_t)pb->hi;
	return 0;
}

int
sb_filter_from_pb(const Mbx__V1__Filter *pb, struct mbx_filter *f)
{
	mbx_filter_init(f);
	if (pb == NULL)
		return 0;
	if ((pb->family != MBX__V1__FAMILY__FAMILY_ANY &&
	     pb->family != MBX__V1__FAMILY__FAMILY_IPV4 &&
	     pb->family != MBX__V1__FAMILY__FAMILY_IPV6) ||
	    pb->proto > 255)
		return -EINVAL;
	f->family = (uint8_t)pb->family;
	f->proto = (uint8_t)pb->proto;
	if (prefix_from_pb(pb->src, f, &f->src) < 0 || prefix_from_pb(pb->dst, f, &f->dst) < 0 ||
	    range_from_pb(pb->sport, &f->sport) < 0 || range_from_pb(pb->dport, &f->dport) < 0)
		return -EINVAL;
	return 0;
}

int
sb_nf_index(const char *name)
{
	int i;

	if (name == NULL || *name == '\0')
		return -1;
	i = mbx_chain_find(&sb_dp()->chain, name);
	return i < 0 ? -ENOENT : i;
}
