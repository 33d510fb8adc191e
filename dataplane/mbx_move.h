/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A move's runtime on the workers of the source instance.
 *
 * Theory of operation: while a move runs, a REDIRECT event rule hands the
 * filter's packets to mbx_move_redirect(), which puts them on the move's
 * ring (MP/SC: any worker in, the control plane out). When a worker meets
 * the move's marker (mbx_marker.h), mbx_move_marker() puts a token on the
 * same ring, behind every packet that worker redirected before it. The
 * control plane empties the ring in order onto the peer channel, and knows
 * the old path is finished once it has taken a token for every marker from
 * every worker. A full ring drops the packet and counts it (the move then
 * aborts).
 *
 * Moves are registered (main lcore) before their rule is enabled and
 * unregistered after it is disabled and the workers were parked, so a
 * worker never sees a freed move.
 */
#ifndef MBX_MOVE_H
#define MBX_MOVE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <rte_mbuf.h>
#include <rte_ring.h>

#include "mbx_ctrl.h"

struct mbx_worker;

#define MBX_MOVES_MAX 8

struct mbx_move_rt {
	uint64_t id;
	struct rte_ring *ring;	     /**< redirected mbufs and marker tokens */
	_Atomic uint64_t redirected; /**< packets put on the ring */
	_Atomic uint64_t overflow;   /**< packets dropped: ring full */
	struct mbx_wake wake;	     /**< the thread emptying the ring, woken by what comes */
};

/** Make @p rt visible to the workers' marker hook. @return 0 or -ENOSPC. */
int mbx_move_rt_add(struct mbx_move_rt *rt);

/** Hide @p rt again (park the workers before freeing it). */
void mbx_move_rt_del(struct mbx_move_rt *rt);

/** REDIRECT hook of a move's event rule: @p arg is the move's rt. */
void mbx_move_redirect(struct mbx_worker *w, void *arg, struct rte_mbuf **pkts, uint16_t n);

/** Marker hook (mbx_marker_set_hook): a token on the move's ring. */
void mbx_move_marker(struct mbx_worker *w, uint64_t id, uint16_t index, uint16_t count);

/** Is a ring entry a marker token? Then which worker, which marker of how many. */
static inline bool
mbx_move_token(const void *e, uint16_t *worker, uint16_t *index, uint16_t *count)
{
	uintptr_t v = (uintptr_t)e;

	if (!(v & 1))
		return false;
	*worker = (uint16_t)(v >> 1);
	*index = (uint16_t)(v >> 17);
	*count = (uint16_t)(v >> 33);
	return true;
}

#endif /* MBX_MOVE_H */
