/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Flow keys and filters.
 *
 * Theory of operation: a flow key is what a packet looks like to the flow
 * table: address family, L4 protocol, source and destination address and
 * port, as seen on the wire. IPv4 addresses sit in the first 4 bytes of the
 * 16-byte address fields and the rest is zero, so one key type and one hash
 * table serve both families. ICMP echo uses the identifier as both ports, so
 * that the reverse of a request's key is its reply's key.
 *
 * A filter selects flows for the control plane (export, delete, events): an
 * address prefix per side, a port range per side, a protocol and a family.
 * A flow matches when the key of its first packet (the originator direction)
 * matches. Pure functions; any lcore may call them.
 */
#ifndef MBX_FLOW_H
#define MBX_FLOW_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_byteorder.h>
#include <rte_common.h>

/** Address families, as in the key's @c family field. */
enum mbx_family {
	MBX_FAMILY_ANY = 0,
	MBX_FAMILY_V4 = 4,
	MBX_FAMILY_V6 = 6,
};

/** An IPv4 or IPv6 address in network byte order; IPv4 uses the first word. */
union mbx_addr {
	rte_be32_t v4;
	uint8_t v6[16];
	uint64_t u64[2];
};

/** The flow key: 40 bytes, all padding zero so that it can be hashed whole. */
struct mbx_flow_key {
	union mbx_addr src;
	union mbx_addr dst;
	rte_be16_t sport; /**< L4 source port, or the ICMP echo identifier */
	rte_be16_t dport; /**< L4 destination port, or the ICMP echo identifier */
	uint8_t proto;	  /**< IPPROTO_* */
	uint8_t family;	  /**< enum mbx_family */
	uint16_t pad;	  /**< always zero */
};

/** Swap the two endpoints of @p k into @p r (the key of the reply direction). */
static inline void
mbx_flow_key_reverse(struct mbx_flow_key *r, const struct mbx_flow_key *k)
{
	struct mbx_flow_key t = *k;

	t.src = k->dst;
	t.dst = k->src;
	t.sport = k->dport;
	t.dport = k->sport;
	*r = t;
}

/** An address prefix; @c len 0 matches every address. */
struct mbx_prefix {
	union mbx_addr addr;
	uint8_t len; /**< prefix length in bits */
};

/** A port range in host byte order, inclusive; 0-65535 matches every port. */
struct mbx_port_range {
	uint16_t lo;
	uint16_t hi;
};

/** A flow filter; mbx_filter_init() makes one that matches everything. */
struct mbx_filter {
	uint8_t family; /**< enum mbx_family; ANY matches both */
	uint8_t proto;	/**< 0 matches every protocol */
	struct mbx_prefix src;
	struct mbx_prefix dst;
	struct mbx_port_range sport;
	struct mbx_port_range dport;
};

/** Make @p f match every flow. */
void mbx_filter_init(struct mbx_filter *f);

/**
 * Does @p k match @p f as it stands (source to source)?
 * @return true on a match.
 */
bool mbx_filter_match(const struct mbx_filter *f, const struct mbx_flow_key *k);

/**
 * Can a flow match both @p a and @p b? (Conservative: true when unsure.)
 * Two moves of overlapping flows must not run at once.
 */
bool mbx_filter_overlap(const struct mbx_filter *a, const struct mbx_filter *b);

/**
 * The symmetric Toeplitz hash of @p k (both directions hash alike) over the
 * fields a NIC hashes, with the key mbxd programs into RSS-capable ports.
 */
uint32_t mbx_flow_hash(const struct mbx_flow_key *k);

/**
 * Format @p k as "tcp 10.0.0.1:1234 > 192.0.2.1:80" into @p buf.
 * @return @p buf.
 */
char *mbx_flow_key_str(const struct mbx_flow_key *k, char *buf, size_t len);

/** Size of a buffer that holds any mbx_flow_key_str() result. */
#define MBX_FLOW_KEY_STRLEN 112

#endif /* MBX_FLOW_H */
