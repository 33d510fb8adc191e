/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Workers, the NF chain and the dataplane they share.
 *
 * Theory of operation: every lcore but the main one runs mbx_worker_loop():
 * receive a burst from each RX queue it polls, parse, hand packets of flows
 * it does not own to their owner's hand-off ring, look the rest up in its
 * flow table (in bulk), run the NF chain, transmit. Between bursts it serves
 * its control request ring, sweeps a bounded number of expired flows, and
 * sleeps for --idle-sleep-us when a whole loop found nothing.
 *
 * A flow's owner is the first NF's owner() hint in the packet's chain order,
 * or else the symmetric Toeplitz hash of its key (the same hash a NIC
 * computes with the symmetric RSS key mbxd programs, so that RSS-capable
 * ports rarely need a hand-off). Both directions of a flow, and for NAT the
 * translated reply, thus reach one worker, and per-flow order is kept: a
 * hand-off ring is FIFO and one worker handles a flow.
 *
 * Ports: port 0 faces the inside; with two or more ports, packets from
 * port 0 leave by port 1 and the rest leave by port 0 unless an NF chooses;
 * with one port, packets leave where they came in. A worker transmits on
 * its own TX queue of a port, or, when the port has fewer TX queues than
 * workers, through the port's TX ring, drained by the worker owning the
 * queue.
 *
 * This header is internal to the dataplane and its tests.
 */
#ifndef MBX_WORKER_H
#define MBX_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "mbx_ctrl.h"
#include "mbx_events.h"
#include "mbx_nf.h"
#include "mbx_pkt.h"
#include "mbx_table.h"

#define MBX_CHAIN_MAX	      8
#define MBX_BURST	      32
#define MBX_MAX_RXQ	      (MBX_MAX_PORTS * 4)
#define MBX_HANDOFF_RING_SIZE 4096
#define MBX_CTRL_RING_SIZE    64
#define MBX_RSS_KEY_LEN	      40
/* Software owner = RETA entry (hash % MBX_RETA_SIZE) -> worker, as mbxd programs NICs. */
#define MBX_RETA_SIZE 128

/** The symmetric RSS key mbxd programs into ports and hashes with in software. */
extern const uint8_t mbx_rss_key[MBX_RSS_KEY_LEN];

/* Worker counters: X(enum suffix, name). */
#define MBX_WORKER_COUNTERS(X)                       \
	X(RX, "rx_packets")                          \
	X(TX, "tx_packets")                          \
	X(TX_DROP, "tx_dropped")                     \
	X(HANDOFF_OUT, "handoff_out")                \
	X(HANDOFF_IN, "handoff_in")                  \
	X(HANDOFF_DROP, "handoff_dropped")           \
	X(FLOWS_CREATED, "flows_created")            \
	X(FLOWS_EXPIRED, "flows_expired")            \
	X(FLOWS_DELETED, "flows_deleted")            \
	X(TABLE_FULL, "table_full_drops")            \
	X(REPLY_KEY_CONFLICT, "reply_key_conflicts") \
	X(NF_DROP, "nf_dropped")                     \
	X(CTRL_REQUESTS, "ctrl_requests")            \
	X(EV_DROPPED, "event_dropped")               \
	X(EV_BUFFERED, "event_buffered")             \
	X(EV_OVERFLOW, "event_buffer_overflow")      \
	X(EV_RELEASED, "event_released")             \
	X(EV_NOTIFIED, "event_notified")             \
	X(EV_NOTIFY_LOST, "event_notify_lost")       \
	X(EV_REDIRECTED, "event_redirected")

enum mbx_wstat {
#define X(e, s) MBX_WSTAT_##e,
	MBX_WORKER_COUNTERS(X)
#undef X
		MBX_WSTAT_MAX
};

extern const char *const mbx_wstat_names[MBX_WSTAT_MAX];

/** One NF of the chain. */
struct mbx_chain_nf {
	const struct mbx_nf_ops *ops;
	void *nf;	      /**< the instance */
	char *args;	      /**< the key=value part of --nf */
	uint32_t state_off;   /**< slot offset in the flow entry's state */
	uint32_t counter_off; /**< first counter index in a worker's nf_counters */
};

/** The chain of NFs, in --nf order. */
struct mbx_chain {
	uint16_t n;
	uint32_t state_size;  /**< all slots; 0 = no NF keeps per-flow state */
	uint32_t nb_counters; /**< all NFs' counters */
	struct mbx_chain_nf nf[MBX_CHAIN_MAX];
};

/**
 * Append "NAME[,key=value...]" to the chain.
 * @return 0, -ENOENT (no such NF), -EEXIST (already in the chain), -ENOSPC.
 */
int mbx_chain_add(struct mbx_chain *c, const char *spec);

/** Create every NF's instance, in order. @return 0 or -errno (logged). */
int mbx_chain_create(struct mbx_chain *c, const struct mbx_nf_params *p);

/** Destroy the instances and forget the chain. */
void mbx_chain_destroy(struct mbx_chain *c);

/** Main lcore: run every NF's ctrl_poll hook. */
void mbx_chain_poll(const struct mbx_chain *c);

/** Index of the NF named @p name in the chain, or -1. */
int mbx_chain_find(const struct mbx_chain *c, const char *name);

struct mbx_rxq {
	uint16_t port;
	uint16_t queue;
};

struct mbx_txbuf {
	uint16_t n;
	struct rte_mbuf *pkts[MBX_BURST * 2];
};

/* The dataplane's run state, as the main lcore drives it. */
enum mbx_run_state {
	MBX_RUN = 0, /**< receive and process */
	MBX_DRAIN,   /**< stop receiving; empty the rings */
	MBX_QUIT,    /**< leave the loop */
};

struct mbx_dp;

/** A worker: everything one lcore touches on its fast path. */
struct mbx_worker {
	struct mbx_dp *dp;
	uint16_t id;
	uint16_t nb_rxq;
	unsigned int lcore;
	struct mbx_table *table;  /**< NULL when the chain keeps no per-flow state */
	struct rte_ring *handoff; /**< MP/SC: packets of flows this worker owns */
	struct rte_ring *req;	  /**< control requests (mbx_ctrl.h) */
	struct rte_ring *resp;	  /**< control responses */
	int resp_fd;		  /**< eventfd written after a response, or -1 */
	struct mbx_wake wake;	  /**< idle: woken by requests, injected and handed packets */
	struct mbx_events ev;	  /**< event rules, changed by control requests */
	struct mbx_rxq rxq[MBX_MAX_RXQ];
	int16_t txq[MBX_MAX_PORTS];	/**< own TX queue per port, or -1: use the port's ring */
	bool drains[MBX_MAX_PORTS];	/**< this worker empties the port's TX ring */
	bool tx_stalled[MBX_MAX_PORTS]; /**< the port's TX queue stayed full TX_STALL_US */
	uint64_t now;
	uint64_t *nf_counters; /**< chain.nb_counters */
	struct mbx_nf_ctx nf[MBX_CHAIN_MAX];
	char nf_why[MBX_NF_WHY_LEN]; /**< a put's refusal, shared by nf[] (one put at a time) */
	struct mbx_txbuf tx[MBX_MAX_PORTS];
	/* flows created in the current burst, to finish or undo after the chain */
	struct mbx_flow *new_flows[MBX_BURST];
	uint16_t nb_new;
	_Atomic uint64_t drain_gen; /**< last drain round this worker was idle in */
	uint64_t stats[MBX_WSTAT_MAX] __rte_cache_aligned;
	uint64_t parse[MBX_PARSE_MAX];
	uint64_t port_tx_drop[MBX_MAX_PORTS];
} __rte_cache_aligned;

/** State every worker shares; written at start-up, read-only after. */
struct mbx_dp {
	struct mbx_chain chain;
	uint16_t nb_ports;
	uint16_t nb_workers;
	uint32_t idle_sleep_us;
	uint32_t flows;			/**< table capacity per worker */
	uint32_t timeouts[MBX_TMO_MAX]; /**< seconds per class */
	struct mbx_worker *workers[RTE_MAX_LCORE];
	struct rte_ring *txring[MBX_MAX_PORTS]; /**< MP/SC, for ports short of TX queues */
	struct rte_mempool *mp;			/**< packet buffers (markers, injected packets) */
	_Atomic int run_state;			/**< enum mbx_run_state */
	_Atomic uint64_t drain_gen;
};

/**
 * Create worker @p id of @p dp: table, rings and NF contexts. RX queues and
 * TX queues are assigned by the caller (port.c).
 * @return the worker, or NULL with rte_errno set.
 */
struct mbx_worker *mbx_worker_create(struct mbx_dp *dp, uint16_t id, int socket);

/** Undo mbx_worker_create(), deleting every flow through the NFs' hooks. */
void mbx_worker_free(struct mbx_worker *w);

/** lcore entry point: @p arg is the worker. */
int mbx_worker_loop(void *arg);

/**
 * Handle @p n packets received on @p port by @p w: parse, hand off, look up,
 * run the chain. Survivors are queued in w->tx per output port; call
 * mbx_worker_flush() to send them.
 */
void mbx_worker_rx(struct mbx_worker *w, struct rte_mbuf **pkts, uint16_t n, uint16_t port);

/** Handle @p n parsed packets this worker owns (from its hand-off ring). */
void mbx_worker_owned(struct mbx_worker *w, struct rte_mbuf **pkts, uint16_t n);

/** Send what mbx_worker_rx() queued. */
void mbx_worker_flush(struct mbx_worker *w);

/**
 * Delete @p f through the NFs' flow_free hooks (it counts as deleted).
 * For control requests running on @p w.
 */
void mbx_worker_del_flow(struct mbx_worker *w, struct mbx_flow *f);

/**
 * Expire flows of @p w due at @p now, looking at no more than @p budget
 * entries (the loop calls it every iteration). @return flows expired.
 */
unsigned int mbx_worker_expire(struct mbx_worker *w, uint64_t now, unsigned int budget);

/** The worker that owns the flow of parsed packet @p p. */
uint16_t mbx_owner(const struct mbx_dp *dp, const struct mbx_pkt *p);

/** Where a packet from @p port leaves unless an NF chooses: the other port, or the same with one.
 */
static inline uint16_t
mbx_default_out(const struct mbx_dp *dp, uint16_t port)
{
	if (dp->nb_ports == 1)
		return port;
	return port == 0 ? 1 : 0;
}

/** The side a port faces. */
static inline uint8_t
mbx_port_side(uint16_t port)
{
	return port == 0 ? MBX_SIDE_INSIDE : MBX_SIDE_OUTSIDE;
}

/** Sum of worker counter @p s over all workers (any thread). */
uint64_t mbx_dp_stat(const struct mbx_dp *dp, enum mbx_wstat s);

/** Sum of parse result @p r over all workers (any thread). */
uint64_t mbx_dp_parse_stat(const struct mbx_dp *dp, enum mbx_parse_result r);

/** Sum of NF counter @p idx (chain-wide index) over all workers (any thread). */
uint64_t mbx_dp_nf_stat(const struct mbx_dp *dp, uint32_t idx);

/** Flows in use in all workers' tables (any thread). */
uint64_t mbx_dp_flows(const struct mbx_dp *dp);

/**
 * Main lcore: stop receiving, let the workers empty every ring, then make
 * them leave their loops. Returns once the rings are empty (or after about
 * @p timeout_ms).
 */
void mbx_dp_stop(struct mbx_dp *dp, unsigned int timeout_ms);

#endif /* MBX_WORKER_H */
