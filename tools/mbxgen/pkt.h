/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mbxgen's packets: the flows' 5-tuples, the payload every data packet
 * carries, building frames and decoding what comes back.
 *
 * Frames are Ethernet + IPv4 (no options, DF) + UDP or TCP (no options) +
 * the payload, zero-padded to the frame size, every checksum computed in
 * software (so that a receiver can check that an NF's incremental updates
 * kept them right). The payload, all fields big-endian:
 *
 *     0       4       8              16             24
 *     | MBXG  | flow  |  seq (u64)   |  TSC (u64)   |  zero padding...
 *
 * flow is the flow id, seq counts the flow's data packets from 0, TSC is
 * rte_rdtsc() when the packet was built: sender and receiver are one
 * process, so rx TSC - this is the latency. A receiver identifies a packet
 * by its payload alone, whatever NAT or LB rewrote in the headers.
 *
 * Flow i is sent from (src + i % hosts):(sport + i / hosts) to dst:dport,
 * UDP or TCP (--proto). TCP segments without payload (SYN, ACK, FIN) carry
 * the flow id in their sequence numbers: the client's ISN is
 * mbxgen_isn_client(i), the server's mbxgen_isn_server(i); both have their
 * low two bits clear, so (ack - 1) of every client segment after the SYN
 * (ack = server ISN + 1, or + 2 after the server's FIN) names the flow.
 * Data segment k of flow i has sequence number ISN + 1 + k * payload bytes.
 * Segments towards the client are recognised by their destination, the
 * flow's inside address and port (the NAT restored them).
 *
 * Main lcore only; nothing here allocates.
 */
#ifndef MBXGEN_PKT_H
#define MBXGEN_PKT_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#include "check.h"
#include "options.h"

/** Flow ids are below this (the TCP ISN encoding allows 2^30). */
#define MBXGEN_MAX_FLOWS (1u << 24)
/** Largest burst. */
#define MBXGEN_MAX_BURST 256
/** "MBXG" */
#define MBXGEN_MAGIC 0x4d425847u

#define MBXGEN_HDR_UDP (RTE_ETHER_HDR_LEN + 20 + 8)
#define MBXGEN_HDR_TCP (RTE_ETHER_HDR_LEN + 20 + 20)

/** The payload of every data packet. */
struct mbxgen_payload {
	rte_be32_t magic;
	rte_be32_t flow;
	rte_be64_t seq;
	rte_be64_t tsc;
} __rte_packed;

/** The client's initial sequence number of flow @p flow. */
static inline uint32_t
mbxgen_isn_client(uint32_t flow)
{
	return (flow << 2) ^ 0x4d420000u;
}

/** The server's initial sequence number of flow @p flow. */
static inline uint32_t
mbxgen_isn_server(uint32_t flow)
{
	return (flow << 2) ^ 0x58470000u;
}

/** The flow whose client ISN is @p seq, or UINT32_MAX. */
static inline uint32_t
mbxgen_flow_of_isn_client(uint32_t seq)
{
	uint32_t x = seq ^ 0x4d420000u;

	return (x & 3) == 0 ? x >> 2 : UINT32_MAX;
}

/**
 * The flow a client segment acknowledging @p ack (server ISN + 1 or + 2)
 * belongs to, if it is one: the caller checks the id and the ack exactly.
 */
static inline uint32_t
mbxgen_flow_of_ack(uint32_t ack)
{
	return (((ack - 1) & ~3u) ^ 0x58470000u) >> 2;
}

/** The 5-tuple flow @p flow is sent with. */
void mbxgen_flow_tuple(const struct mbxgen_options *o, uint32_t flow, struct mbxgen_tuple *t);

/**
 * The flow sent from @p addr:@p port (host order), or UINT32_MAX if none is.
 */
uint32_t mbxgen_flow_of_source(const struct mbxgen_options *o, uint32_t addr, uint16_t port);

/** Ethernet addresses of the frames mbxgen builds. */
struct mbxgen_eth {
	struct rte_ether_addr src;
	struct rte_ether_addr dst;
};

/**
 * Write a data frame of @p len bytes into @p m (which must be empty): the
 * flow's headers, the payload, padding and checksums. For TCP, a PSH-ACK
 * segment with @p tcp_seq and @p tcp_ack.
 */
void mbxgen_build_data(struct rte_mbuf *m, const struct mbxgen_eth *eth,
		       const struct mbxgen_tuple *t, uint32_t flow, uint64_t seq, uint64_t tsc,
		       uint16_t len, uint32_t tcp_seq, uint32_t tcp_ack);

/** Write a TCP segment without payload (SYN, FIN...) of the flow @p t into @p m. */
void mbxgen_build_tcp(struct rte_mbuf *m, const struct mbxgen_eth *eth,
		      const struct mbxgen_tuple *t, uint8_t flags, uint32_t tcp_seq,
		      uint32_t tcp_ack);

/** A received frame, decoded. */
struct mbxgen_parsed {
	struct mbxgen_tuple t; /**< as it arrived */
	struct rte_ipv4_hdr *ip;
	void *l4;
	uint8_t tcp_flags;
	uint32_t tcp_seq;
	uint32_t tcp_ack;
	uint16_t payload_len;
	const struct mbxgen_payload *pl; /**< the payload if it starts with the magic, else NULL */
	bool csum_ok;			 /**< IPv4 and L4 checksums right */
};

/**
 * Decode @p m: Ethernet, IPv4 (not a fragment), TCP or UDP, every length
 * checked against the first segment.
 * @return 0, or -EINVAL for anything else.
 */
int mbxgen_parse(struct rte_mbuf *m, struct mbxgen_parsed *p);

/**
 * Turn the received TCP segment @p m in place into the answer to it: swap
 * the addresses and ports (as they arrived), drop the payload, set
 * @p flags, @p seq and @p ack, and recompute the checksums.
 */
void mbxgen_tcp_reply(struct rte_mbuf *m, struct mbxgen_parsed *p, uint8_t flags, uint32_t seq,
		      uint32_t ack);

#endif /* MBXGEN_PKT_H */
