/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Markers: the in-band signal that ends the old path of a move.
 *
 * Theory of operation: when steering changes a route, it sends a MARKER
 * frame on the old port behind the last packet it sent there
 * (mbx_marker_send(), while every worker is parked, so nothing can overtake
 * it). A port with several TX paths (one queue per worker) gets one marker
 * per path, each saying "i of n".
 *
 * The instance at the other end recognises a marker when it parses it
 * (ethertype 0x88B5, magic "MBXM"), before any NF sees it: the worker that
 * received it hands a copy to every other worker through their hand-off
 * rings, behind every packet it handed them before, and each worker calls
 * the marker hook when it meets its copy. A worker therefore calls the hook
 * after every packet of the old path it owns. Markers never leave mbxd.
 *
 * Redirected packets (a move's packets arriving from the source instance)
 * carry the dynamic mbuf flag mbx_flag_redirected, so that event rules at
 * the destination let them through.
 */
#ifndef MBX_MARKER_H
#define MBX_MARKER_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_mbuf.h>

struct mbx_dp;
struct mbx_worker;

#define MBX_MARKER_ETHERTYPE 0x88B5 /* IEEE local experimental */

/** Dynamic mbuf flags (0 until mbx_marker_init() registered them). */
extern uint64_t mbx_flag_redirected;
extern uint64_t mbx_flag_marker;

/** Register the flags and remember @p dp (for mbx_nf_send_marker()). @return 0 or -errno. */
int mbx_marker_init(struct mbx_dp *dp);

/** A marker frame (60 bytes) for move @p id, the @p index -th of @p count. NULL: no mbuf. */
struct rte_mbuf *mbx_marker_build(struct rte_mempool *mp, uint64_t id, uint16_t index,
				  uint16_t count);

/** Is @p m a marker? Fills what it says. */
bool mbx_marker_parse(const struct rte_mbuf *m, uint64_t *id, uint16_t *index, uint16_t *count);

/**
 * Main lcore, every worker parked: queue marker @p id on every TX path of
 * @p port, behind everything already queued there.
 * @return markers queued, or -errno.
 */
int mbx_marker_send(struct mbx_dp *dp, uint16_t port, uint64_t id);

/** What a worker does on meeting a marker (the move engine sets it). */
typedef void (*mbx_marker_fn)(struct mbx_worker *w, uint64_t id, uint16_t index, uint16_t count);

/** Set the hook (main lcore, before any move). */
void mbx_marker_set_hook(mbx_marker_fn fn);

/** Worker: a marker this worker received: copy it to the others, then meet it. Frees @p m. */
void mbx_marker_fan_out(struct mbx_worker *w, struct rte_mbuf *m);

/** Worker: meet a marker copy from the hand-off ring. Frees @p m. */
void mbx_marker_meet(struct mbx_worker *w, struct rte_mbuf *m);

#endif /* MBX_MARKER_H */
