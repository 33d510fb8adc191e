/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mbxgen's engine: one loop, on one lcore, that paces the sender and polls
 * every port it uses, so that mbxgen runs on a single lcore next to other
 * processes on a small machine.
 *
 * Each turn of the loop (loop.c):
 *   1. receive a burst on every port (the tx port too): a data packet goes to
 *      the checker (check.h); a TCP segment without payload goes to the TCP
 *      endpoints (tcp.c), whose answers leave by the port the segment came
 *      in on; anything else is counted as foreign;
 *   2. send the TCP answers;
 *   3. send what the pacer allows on the tx port: the packets that are due
 *      at --rate (TSC-paced, at most --burst at once, no catch-up beyond one
 *      burst), no more than --max-inflight data packets in flight; each slot
 *      goes to the next flow, round robin, that has something to send (a
 *      UDP datagram, a TCP SYN, data segment or FIN); a burst the port does
 *      not take whole is kept, in order, and offered again first: nothing
 *      is counted sent before the port accepted it;
 *   4. move through the phases: SEND (data until --duration or --count),
 *      FINISH (no new data; FINs of --tcp-fin), DRAIN (receive for
 *      --drain-ms after the last packet sent), DONE;
 *   5. if nothing happened, sleep --idle-sleep-us.
 *
 * Nothing in the loop takes a lock or calls printf; counters the telemetry
 * thread reads are published with relaxed atomic stores.
 */
#ifndef MBXGEN_GEN_H
#define MBXGEN_GEN_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <rte_ethdev.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "check.h"
#include "options.h"
#include "pkt.h"

extern int mbxgen_logtype;
/** Log at @p level (ERR, WARNING, NOTICE, INFO, DEBUG); never per packet. */
#define GEN_LOG(level, fmt, ...) \
	rte_log(RTE_LOG_##level, mbxgen_logtype, "mbxgen: " fmt "\n", ##__VA_ARGS__)

/** Client side of a TCP flow. */
enum mbxgen_client {
	MBXGEN_CLI_CLOSED,
	MBXGEN_CLI_SYN_SENT,
	MBXGEN_CLI_ESTABLISHED, /**< SYN-ACK received, ACK sent */
	MBXGEN_CLI_FIN_WAIT,	/**< FIN sent */
	MBXGEN_CLI_TIME_WAIT,	/**< the server's FIN received and acknowledged */
};

/** Server side of a TCP flow. */
enum mbxgen_server {
	MBXGEN_SRV_LISTEN,
	MBXGEN_SRV_SYN_RCVD,	/**< SYN received, SYN-ACK sent */
	MBXGEN_SRV_ESTABLISHED, /**< the handshake's ACK (or data) received */
	MBXGEN_SRV_LAST_ACK,	/**< FIN received, FIN-ACK sent */
	MBXGEN_SRV_CLOSED,	/**< the last ACK received */
};

/** Loop phases, in order. */
enum mbxgen_phase {
	MBXGEN_PHASE_SEND,
	MBXGEN_PHASE_FINISH,
	MBXGEN_PHASE_DRAIN,
	MBXGEN_PHASE_DONE,
};

/** Sender-side state of one flow. */
struct mbxgen_gflow {
	struct mbxgen_tuple t; /**< inside tuple */
	uint8_t client;	       /**< enum mbxgen_client */
	uint8_t server;	       /**< enum mbxgen_server */
	uint8_t syn_tries;
	bool done;	  /**< nothing more to send */
	uint32_t fin_seq; /**< the client FIN's sequence number */
	uint64_t syn_tsc; /**< when the last SYN was built */
};

/** Kinds of packet on the tx path. */
enum mbxgen_kind {
	MBXGEN_KIND_DATA,
	MBXGEN_KIND_SYN,
	MBXGEN_KIND_FIN,
};

/** Counters published to the telemetry thread. */
struct mbxgen_pub {
	uint64_t phase;
	uint64_t sent;
	uint64_t received;
	uint64_t inflight;
	uint64_t handshakes;
	uint64_t closes;
	uint64_t foreign;
};

/** The engine. */
struct mbxgen {
	const struct mbxgen_options *o;
	struct mbxgen_check *chk;
	struct mbxgen_gflow *flows;
	struct rte_mempool *mp;
	struct mbxgen_eth eth;
	uint16_t ports[RTE_MAX_ETHPORTS]; /**< polled: the tx port first, then the rx ports */
	uint16_t nb_ports;
	uint64_t hz;
	uint64_t start_tsc;
	uint16_t len_udp, len_tcp; /**< data frame lengths */
	uint16_t tcp_plen;	   /**< TCP data segment payload bytes */
	/* pacing */
	double next_tsc;
	double ticks_per_pkt;
	uint64_t send_end_tsc; /**< end of SEND with --duration */
	uint32_t rr;	       /**< next flow to look at */
	uint64_t idle_until;   /**< no flow had anything to send: look again then */
	uint32_t nb_done;
	/* the tx port's burst not yet accepted */
	struct rte_mbuf *pend[MBXGEN_MAX_BURST];
	struct {
		uint32_t flow;
		uint8_t kind;
		uint64_t tsc;
	} pend_meta[MBXGEN_MAX_BURST];
	uint16_t npend;
	/* TCP answers, per port */
	struct {
		struct rte_mbuf *m[MBXGEN_MAX_BURST];
		uint16_t n;
	} ctrl[RTE_MAX_ETHPORTS];
	/* phases */
	enum mbxgen_phase phase;
	uint64_t first_tx_tsc, last_tx_tsc;
	uint64_t drain_end_tsc;
	uint64_t next_stats_tsc;
	uint64_t next_pub_tsc;
	struct mbxgen_pub pub;
};

/** Set by the signal handler: number of SIGINT/SIGTERM received. */
extern volatile sig_atomic_t mbxgen_signals;

/** The name of @p phase ("send", "finish", "drain", "done"). */
const char *mbxgen_phase_name(enum mbxgen_phase phase);

/**
 * Run the loop until the DONE phase.
 * @return 0.
 */
int mbxgen_run(struct mbxgen *g);

/**
 * A TCP segment without mbxgen payload arrived on @p port: play the client
 * or the server. Consumes @p m (sent back as the answer, or freed).
 */
void mbxgen_tcp_rx(struct mbxgen *g, uint16_t port, struct rte_mbuf *m, struct mbxgen_parsed *p);

/** A TCP data segment of @p flow reached the server: check it against the flow's state. */
void mbxgen_tcp_data(struct mbxgen *g, uint32_t flow, const struct mbxgen_parsed *p, uint64_t seq);

/** Queue @p m, an answer, to leave by @p port at the end of the receive step. */
void mbxgen_ctrl_put(struct mbxgen *g, uint16_t port, struct rte_mbuf *m);

#endif /* MBXGEN_GEN_H */
