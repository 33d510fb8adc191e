/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The nat NF's state and its translation functions, shared by nat.c, its
 * codecs (nat_state.c) and the unit tests.
 */
#ifndef NAT_H
#define NAT_H

#include <stdbool.h>
#include <stdint.h>

#include "mbx_nf.h"
#include "port_pool.h"

/* Counters: X(enum suffix, name). */
#define NAT_COUNTERS(X)                     \
	X(CREATED, "mappings_created")      \
	X(FREED, "mappings_freed")          \
	X(OUT, "translated_out")            \
	X(IN, "translated_in")              \
	X(V6_PASSED, "ipv6_passed")         \
	X(NO_MAPPING, "no_mapping_drops")   \
	X(UNSUPPORTED, "unsupported_drops") \
	X(EXHAUSTED, "pool_exhausted_drops")

enum nat_counter {
#define X(e, s) NAT_CTR_##e,
	NAT_COUNTERS(X)
#undef X
		NAT_CTR_MAX
};

/** The instance: all-flows state. */
struct nat {
	struct nat_pool *pool;
	uint32_t flows; /* host table capacity per worker */
	int socket;
	bool one_armed; /* one port: replies come in on the inside port too */
};

/** Per-flow state: the mapping and its checksum deltas (inside to outside). */
struct nat_flow {
	rte_be32_t in_addr;
	rte_be32_t ext_addr;
	rte_be16_t in_port;  /**< port or ICMP identifier inside */
	rte_be16_t ext_port; /**< port or ICMP identifier outside */
	uint16_t ip_delta;   /**< IPv4 header checksum delta */
	uint16_t l4_delta;   /**< TCP/UDP/ICMP checksum delta */
	uint8_t mapped;
	uint8_t proto;
	uint8_t foreign; /**< imported from outside this pool: nothing to give back */
};

/** Can NAT translate the flow of @p p (TCP, UDP, ICMP echo request)? */
bool nat_translatable(const struct mbx_pkt *p);

/** Fill @p st: inside endpoint from @p in, external (@p ext_addr, @p ext_port). */
void nat_flow_set(struct nat_flow *st, const struct mbx_flow_key *in, rte_be32_t ext_addr,
		  rte_be16_t ext_port);

/** Rewrite an inside-to-outside packet's source by @p st, and its key. */
void nat_translate_out(struct rte_mbuf *m, struct mbx_pkt *p, const struct nat_flow *st);

/** Rewrite a reply's destination back to the inside endpoint, and its key. */
void nat_translate_in(struct rte_mbuf *m, struct mbx_pkt *p, const struct nat_flow *st);

/* The codecs (nat_state.c): see the hooks in mbx_nf.h. */
int nat_flow_get(struct mbx_nf_ctx *c, struct mbx_flow *f, uint8_t *buf, size_t cap);
int nat_flow_put(struct mbx_nf_ctx *c, struct mbx_flow *f, const uint8_t *buf, size_t len);
int nat_multi_get(struct mbx_nf_ctx *c, const struct mbx_filter *flt, mbx_state_emit emit,
		  void *arg);
int nat_multi_put(struct mbx_nf_ctx *c, const struct mbx_flow_key *key, const uint8_t *buf,
		  size_t len);
int nat_multi_del(struct mbx_nf_ctx *c, const struct mbx_filter *flt);
int nat_all_get(void *nf, mbx_state_emit emit, void *arg);
int nat_all_put(void *nf, const uint8_t *buf, size_t len, bool commit);

#endif /* NAT_H */
