/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-packet metadata and the parser.
 *
 * Theory of operation: every mbuf mbxd receives carries a struct mbx_pkt in
 * its private area (the mbuf pool is created with that private size). The
 * worker that receives a packet parses it once: Ethernet with at most one
 * VLAN tag, IPv4 (with options) or IPv6 (with the usual extension headers),
 * then TCP, UDP or ICMP/ICMPv6. The result is the flow key and the header
 * offsets; the metadata follows the mbuf through the hand-off ring to the
 * worker that owns the flow, and through the NF chain.
 *
 * The parser never reads past the first segment's data and never trusts a
 * length field: truncated or inconsistent headers return a reason, which the
 * caller counts before dropping the packet. IPv4 and IPv6 fragments are
 * counted and dropped (no reassembly; see docs/architecture.md).
 *
 * Runs on worker lcores; no allocation, no logging.
 */
#ifndef MBX_PKT_H
#define MBX_PKT_H

#include <stdint.h>

#include <rte_mbuf.h>

#include "mbx_flow.h"

struct mbx_flow;

/** Ports an instance drives at most (port 0 inside, the others outside). */
#define MBX_MAX_PORTS 8

/*
 * Parse results: X(enum suffix, counter name). OK, NON_IP and MARKER are not
 * drops; everything from SEGMENTED on is a malformed or unsupported packet.
 */
#define MBX_PARSE_RESULTS(X)                         \
	X(OK, "ok")                                  \
	X(NON_IP, "non_ip")                          \
	X(MARKER, "marker")                          \
	X(SEGMENTED, "headers_not_in_first_segment") \
	X(ETH_TRUNC, "eth_truncated")                \
	X(VLAN_TRUNC, "vlan_truncated")              \
	X(IP4_TRUNC, "ipv4_truncated")               \
	X(IP4_VERSION, "ipv4_bad_version")           \
	X(IP4_IHL, "ipv4_bad_ihl")                   \
	X(IP4_LEN, "ipv4_bad_total_length")          \
	X(IP4_CSUM, "ipv4_bad_checksum")             \
	X(IP6_TRUNC, "ipv6_truncated")               \
	X(IP6_VERSION, "ipv6_bad_version")           \
	X(IP6_LEN, "ipv6_bad_payload_length")        \
	X(IP6_EXT, "ipv6_bad_extension_header")      \
	X(FRAGMENT, "fragment")                      \
	X(TCP_TRUNC, "tcp_truncated")                \
	X(TCP_DOFF, "tcp_bad_data_offset")           \
	X(UDP_TRUNC, "udp_truncated")                \
	X(UDP_LEN, "udp_bad_length")                 \
	X(ICMP_TRUNC, "icmp_truncated")

enum mbx_parse_result {
#define X(e, s) MBX_PARSE_##e,
	MBX_PARSE_RESULTS(X)
#undef X
		MBX_PARSE_MAX
};

#define MBX_PARSE_FIRST_DROP MBX_PARSE_SEGMENTED

/** Counter names of the parse results, indexed by enum mbx_parse_result. */
extern const char *const mbx_parse_result_names[MBX_PARSE_MAX];

/** Which side of a bump-in-the-wire a packet entered from. */
enum mbx_side {
	MBX_SIDE_INSIDE = 0,  /**< port 0: clients, the originators */
	MBX_SIDE_OUTSIDE = 1, /**< port 1: servers, the Internet */
};

/** Direction of a packet relative to its flow entry. */
enum mbx_dir {
	MBX_DIR_ORIG = 0,  /**< same direction as the flow's first packet */
	MBX_DIR_REPLY = 1, /**< the other direction */
};

/** The metadata in each mbuf's private area. One cache line. */
struct mbx_pkt {
	struct mbx_flow_key key; /**< as parsed on arrival */
	struct mbx_flow *flow;	 /**< the flow entry, once looked up; NULL if none */
	uint16_t l3_off;	 /**< offset of the IP header from the frame start */
	uint16_t l4_off;	 /**< offset of the L4 header */
	uint16_t l3_len;	 /**< IP header length, options and extension headers included */
	uint16_t l4_len;	 /**< L4 header and payload length, from the IP length fields */
	uint8_t in_port;	 /**< port index the packet arrived on */
	uint8_t out_port;	 /**< port index to send it on; an NF may change it */
	uint8_t side;		 /**< enum mbx_side */
	uint8_t dir;		 /**< enum mbx_dir; valid when flow != NULL */
	uint8_t tcp_flags;	 /**< TCP flags byte, 0 for other protocols */
	uint8_t icmp_type;	 /**< ICMP/ICMPv6 type, 0 for other protocols */
	uint8_t flow_new;	 /**< 1 when this packet created its flow entry */
	uint8_t drop;		 /**< 0, or 1 + the dropping NF's counter index */
};

_Static_assert(sizeof(struct mbx_pkt) == 64, "mbx_pkt is one cache line");

/** The metadata of @p m. */
static inline struct mbx_pkt *
mbx_pkt(struct rte_mbuf *m)
{
	return (struct mbx_pkt *)rte_mbuf_to_priv(m);
}

/** Size of the mbuf private area mbxd's pools are created with. */
#define MBX_PKT_PRIV_SIZE RTE_ALIGN(sizeof(struct mbx_pkt), RTE_MBUF_PRIV_ALIGN)

/**
 * Parse @p m and fill its metadata (key, offsets, flags). in_port and side
 * are left to the caller.
 * @return MBX_PARSE_OK, MBX_PARSE_NON_IP (not an IP packet: forwarded as is),
 *   MBX_PARSE_MARKER (a move's marker, mbx_marker.h) or the reason the
 *   packet is malformed.
 */
enum mbx_parse_result mbx_parse(struct rte_mbuf *m);

/** Pointer to the IP header of a parsed packet. */
static inline void *
mbx_pkt_l3(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod_offset(m, char *, mbx_pkt(m)->l3_off);
}

/** Pointer to the L4 header of a parsed packet. */
static inline void *
mbx_pkt_l4(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod_offset(m, char *, mbx_pkt(m)->l4_off);
}

#endif /* MBX_PKT_H */
