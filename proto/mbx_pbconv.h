/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Flow keys and filters between their wire form (mbx.v1.FlowKey, Filter)
 * and the dataplane's (mbx_flow.h), for the code that has both: the
 * southbound server and NFs whose state carries filters (steer routes,
 * firewall rules). Header only, so that clients without DPDK (mbxctl) do
 * not link it.
 */
#ifndef MBX_PBCONV_H
#define MBX_PBCONV_H

#include <errno.h>
#include <string.h>

#include "mbx/v1/common.pb-c.h"
#include "mbx_flow.h"

/** Storage for a converted key and its addresses. */
struct mbx_pb_key {
	Mbx__V1__FlowKey pb;
	uint8_t src[16];
	uint8_t dst[16];
};

/** Storage for a converted filter. */
struct mbx_pb_filter {
	Mbx__V1__Filter pb;
	Mbx__V1__Prefix src, dst;
	Mbx__V1__PortRange sport, dport;
};

static inline size_t
mbx_pb_addr_len(uint8_t family)
{
	return family == MBX_FAMILY_V6 ? 16 : 4;
}

/** Fill @p out from @p k. @return &out->pb. */
static inline Mbx__V1__FlowKey *
mbx_key_to_pb(const struct mbx_flow_key *k, struct mbx_pb_key *out)
{
	size_t n = mbx_pb_addr_len(k->family);

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

static inline int
mbx_prefix_from_pb(const Mbx__V1__Prefix *pb, struct mbx_filter *f, struct mbx_prefix *p)
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

static inline int
mbx_range_from_pb(const Mbx__V1__PortRange *pb, struct mbx_port_range *r)
{
	if (pb == NULL)
		return 0;
	if (pb->lo > pb->hi || pb->hi > UINT16_MAX)
		return -EINVAL;
	r->lo = (uint16_t)pb->lo;
	r->hi = (uint16_t)pb->hi;
	return 0;
}

/** A filter from the wire; NULL matches everything. @return 0 or -EINVAL. */
static inline int
mbx_filter_from_pb(const Mbx__V1__Filter *pb, struct mbx_filter *f)
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
	if (mbx_prefix_from_pb(pb->src, f, &f->src) < 0 ||
	    mbx_prefix_from_pb(pb->dst, f, &f->dst) < 0 ||
	    mbx_range_from_pb(pb->sport, &f->sport) < 0 ||
	    mbx_range_from_pb(pb->dport, &f->dport) < 0)
		return -EINVAL;
	return 0;
}

/** A filter to the wire. @return &out->pb. */
static inline Mbx__V1__Filter *
mbx_filter_to_pb(const struct mbx_filter *f, struct mbx_pb_filter *out)
{
	size_t n = mbx_pb_addr_len(f->family);

	mbx__v1__filter__init(&out->pb);
	out->pb.family = (Mbx__V1__Family)f->family;
	out->pb.proto = f->proto;
	if (f->src.len > 0) {
		mbx__v1__prefix__init(&out->src);
		out->src.addr = (ProtobufCBinaryData){n, (uint8_t *)(uintptr_t)&f->src.addr};
		out->src.len = f->src.len;
		out->pb.src = &out->src;
	}
	if (f->dst.len > 0) {
		mbx__v1__prefix__init(&out->dst);
		out->dst.addr = (ProtobufCBinaryData){n, (uint8_t *)(uintptr_t)&f->dst.addr};
		out->dst.len = f->dst.len;
		out->pb.dst = &out->dst;
	}
	if (f->sport.lo != 0 || f->sport.hi != UINT16_MAX) {
		mbx__v1__port_range__init(&out->sport);
		out->sport.lo = f->sport.lo;
		out->sport.hi = f->sport.hi;
		out->pb.sport = &out->sport;
	}
	if (f->dport.lo != 0 || f->dport.hi != UINT16_MAX) {
		mbx__v1__port_range__init(&out->dport);
		out->dport.lo = f->dport.lo;
		out->dport.hi = f->dport.hi;
		out->pb.dport = &out->dport;
	}
	return &out->pb;
}

#endif /* MBX_PBCONV_H */
