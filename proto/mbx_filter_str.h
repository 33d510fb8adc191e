/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The filter syntax of the command line, "src=10.0.0.0/24,dst=2001:db8::/32,
 * sport=1000-2000,dport=80,proto=tcp,family=4", parsed into an mbx.v1.Filter.
 * Every key is optional and appears at most once; "" matches every flow.
 * Plain C (no DPDK), for mbxctl and anything else that takes filters as text.
 */
#ifndef MBX_FILTER_STR_H
#define MBX_FILTER_STR_H

#include "mbx/v1/common.pb-c.h"

/** A Filter and the storage its sub-messages point into. */
struct mbx_filter_pb {
	Mbx__V1__Filter f;
	Mbx__V1__Prefix src;
	Mbx__V1__Prefix dst;
	Mbx__V1__PortRange sport;
	Mbx__V1__PortRange dport;
	uint8_t src_addr[16];
	uint8_t dst_addr[16];
};

/**
 * Parse @p s into @p out (out->f is the Filter).
 * @return 0, or -EINVAL with a reason in @p err (if not NULL).
 */
int mbx_filter_str_parse(const char *s, struct mbx_filter_pb *out, char *err, size_t errlen);

#endif /* MBX_FILTER_STR_H */
