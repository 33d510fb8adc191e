/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Event rules: what happens to the packets of chosen flows (OpenNF's
 * enableEvents/disableEvents).
 *
 * Theory of operation: each worker keeps its own copy of the rules, changed
 * only by control requests on its ring, so a rule takes effect exactly
 * between two bursts. After the flow lookup, a packet is matched against
 * the rules in order (by its flow's originator key, or for a packet without
 * a flow by its own key either way round); the first match decides: PROCESS,
 * DROP (counted), BUFFER (held in the rule's bounded per-worker FIFO in
 * arrival order; a full FIFO drops and counts), NOTIFY (a copy goes to the
 * worker's notify ring for the control plane; the packet is processed), or
 * REDIRECT (handed to the rule's redirect hook, the peer channel of a move).
 * Disabling a BUFFER rule processes its packets in order, before anything
 * received later, or drops them.
 *
 * With no rules, the fast path pays one test per burst.
 */
#ifndef MBX_EVENTS_H
#define MBX_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_mbuf.h>
#include <rte_ring.h>

#include "mbx_flow.h"

#define MBX_EVENT_RULES_MAX	 16
#define MBX_EVENT_BUFFER_DEFAULT 4096
#define MBX_NOTIFY_RING_SIZE	 1024

/* As mbx.v1.Action. */
enum mbx_action {
	MBX_ACTION_PROCESS = 0,
	MBX_ACTION_DROP = 1,
	MBX_ACTION_BUFFER = 2,
	MBX_ACTION_NOTIFY = 3,
	MBX_ACTION_REDIRECT = 4,
	MBX_ACTION_MAX
};

struct mbx_flow;
struct mbx_worker;

/**
 * Where a REDIRECT rule sends packets (worker lcore; must take ownership of
 * every packet).
 */
typedef void (*mbx_redirect_fn)(struct mbx_worker *w, void *arg, struct rte_mbuf **pkts,
				uint16_t n);

struct mbx_event_rule {
	uint32_t id;
	uint8_t action; /**< enum mbx_action */
	struct mbx_filter filter;
	struct rte_ring *buf;	  /**< BUFFER: SP/SC ring of held packets */
	uint64_t overflow;	  /**< BUFFER: packets dropped because buf was full */
	mbx_redirect_fn redirect; /**< REDIRECT */
	void *redirect_arg;
};

/** A worker's rules. */
struct mbx_events {
	uint16_t n;
	struct mbx_event_rule rules[MBX_EVENT_RULES_MAX];
	struct rte_ring *notify; /**< NOTIFY copies, SP (worker) / SC (control plane) */
};

/** Enable request: @c rule is copied into the worker's rules. */
struct mbx_event_enable {
	struct mbx_event_rule rule; /**< for BUFFER, buf is one ring per worker */
};

/** Request function: add a rule (-ENOSPC when the worker has MBX_EVENT_RULES_MAX). */
int mbx_events_enable(struct mbx_worker *w, void *arg);

/** Disable request. */
struct mbx_event_disable {
	/* in */
	uint32_t id; /**< the rule, or 0: every rule with this filter */
	struct mbx_filter filter;
	bool release_drop; /**< drop held packets instead of processing them */
	uint32_t budget;   /**< packets to release per request, 0: all */
	/* out */
	uint64_t released;
	uint64_t dropped;
	uint64_t overflow; /**< what the removed rules' full buffers dropped while they held */
	uint32_t rules;
	struct rte_ring *bufs[MBX_EVENT_RULES_MAX]; /**< removed rules' rings, to free */
	uint16_t nb_bufs;
	bool more; /**< a rule still holds packets: call again */
};

/**
 * Request function: remove rules, releasing or dropping what they hold. A
 * rule that holds more than @c budget packets releases that many and stays,
 * still holding what comes meanwhile behind the rest, so that the worker
 * goes back to its queues between two slices (@c more: call again).
 */
int mbx_events_disable(struct mbx_worker *w, void *arg);

/**
 * Fast path: apply the rules to @p n packets whose flows (NULL if none) are
 * in @p flows; packets dropped, held or redirected leave both arrays.
 * @return packets to go on with.
 */
uint16_t mbx_events_apply(struct mbx_worker *w, struct rte_mbuf **pkts, struct mbx_flow **flows,
			  uint8_t *dirs, uint16_t n);

#endif /* MBX_EVENTS_H */
