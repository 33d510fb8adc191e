/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mbxgen's checker: exact per-flow accounting of what was sent and what came
 * back, a latency histogram and a per-millisecond timeline, and the JSON
 * report made of them.
 *
 * The sender asks for a flow's next sequence number (mbxgen_check_assign())
 * when it builds a data packet and reports the packet as sent
 * (mbxgen_check_sent()) only once the port accepted it; the receiver hands
 * every data packet it decoded to mbxgen_check_rx(). From these the checker
 * knows, per flow:
 *   - sent, and received = distinct sequence numbers seen (a bitmap per flow,
 *     so a duplicate is recognised however late it comes);
 *   - lost = sent - received, meaningful once the stragglers had their time;
 *   - duplicated = packets whose (flow, seq) was already seen (counted only
 *     as duplicated, never also as reordered);
 *   - reordered = new packets whose seq is lower than the highest seq
 *     already received for the flow;
 *   - the rewrite: the 5-tuple the flow's packets arrive with (after NAT or
 *     LB rewrites); every packet whose tuple differs from the previous one
 *     of its flow is a rewrite change; the first tuple is kept as "the"
 *     rewrite, the last one too;
 *   - the receive ports (a flow that moves between instances arrives on
 *     another port, which is not a rewrite change).
 * Latency is rx TSC minus the TSC the sender wrote into the packet (both
 * ends are one process), for the first copy of each packet only: one
 * histogram of 1 us bins up to 1 s plus an overflow count, an exact sum,
 * minimum and maximum. Percentiles are nearest-rank (the smallest bin that
 * holds at least ceil(p * N) samples), floored to the microsecond.
 * The timeline has one bucket per millisecond of SEND time since the start
 * of the run: sent, received (first copies), lost, mean and max latency.
 *
 * In flight: a sent packet counts as in flight until it is received or its
 * send-time bucket is older than the in-flight window; so a lost packet
 * stops holding back a bounded sender after that window.
 *
 * Plain C11 and libc, no DPDK: a unit test drives it with crafted sequences.
 * Not thread-safe: one lcore owns a checker (mbxgen does tx and rx in one
 * loop). Memory: a few dozen bytes per flow, a bit per sent packet, 8 MB of
 * histogram, 32 bytes per millisecond of run.
 */
#ifndef MBXGEN_CHECK_H
#define MBXGEN_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/** Latency histogram: 1 us bins from 0 to this (exclusive), then overflow. */
#define MBXGEN_HIST_US 1000000

/** A flow's 5-tuple, host byte order, IPv4. */
struct mbxgen_tuple {
	uint32_t src;
	uint32_t dst;
	uint16_t sport;
	uint16_t dport;
	uint8_t proto;
};

/** What mbxgen_check_rx() made of a packet. */
enum mbxgen_verdict {
	MBXGEN_RX_NEW,	     /**< first copy, in order */
	MBXGEN_RX_REORDERED, /**< first copy, below the flow's highest seq */
	MBXGEN_RX_DUPLICATE, /**< a (flow, seq) seen before */
	MBXGEN_RX_INVALID,   /**< not a packet of this run: unknown flow, seq not sent, bad time */
};

/** TCP milestones of a flow, as seen by both ends (mbxgen_check_tcp()). */
#define MBXGEN_TCP_HANDSHAKE 0x1 /**< SYN, SYN-ACK and ACK each reached the other end */
#define MBXGEN_TCP_CLOSED    0x2 /**< FIN, FIN-ACK and ACK each reached the other end */
#define MBXGEN_TCP_FAILED    0x4 /**< the handshake was given up (SYN retries exhausted) */

/* Run-wide counters: X(enum suffix, JSON name). */
#define MBXGEN_COUNTERS(X)                                                                         \
	X(FOREIGN, "foreign")		    /* received, not mbxgen's (no magic) */                \
	X(INVALID, "invalid")		    /* magic, but no such flow, seq or time */             \
	X(CSUM_ERRORS, "checksum_errors")   /* IPv4 or L4 checksum wrong on arrival */             \
	X(TCP_UNEXPECTED, "tcp_unexpected") /* a TCP segment that does not fit its flow's state */ \
	X(SYN_RETRIES, "syn_retries")	    /* SYNs sent again after no SYN-ACK came */            \
	X(CTRL_TX_DROPS, "ctrl_tx_drops")   /* TCP replies the port would not take */

enum mbxgen_ctr {
#define X(e, s) MBXGEN_CTR_##e,
	MBXGEN_COUNTERS(X)
#undef X
		MBXGEN_CTR_MAX
};

/** Per-flow accounting. Read it with mbxgen_check_flow(). */
struct mbxgen_flow {
	uint64_t assigned;	     /**< sequence numbers handed out (the next seq) */
	uint64_t sent;		     /**< packets the port accepted (seqs 0..sent-1) */
	uint64_t received;	     /**< distinct seqs received */
	uint64_t duplicated;	     /**< copies of seqs already received */
	uint64_t reordered;	     /**< new seqs below the highest already received */
	uint64_t max_seq;	     /**< highest seq received, valid if received > 0 */
	uint64_t lat_max_ns;	     /**< this flow's highest latency */
	uint64_t *seen;		     /**< bitmap of received seqs */
	uint64_t seen_words;	     /**< its size in 64-bit words */
	struct mbxgen_tuple inside;  /**< as sent */
	struct mbxgen_tuple rewrite; /**< the first tuple it arrived with */
	struct mbxgen_tuple last;    /**< the latest tuple it arrived with */
	uint64_t rewrite_changes;    /**< arrivals whose tuple differed from the previous one */
	uint64_t rx_ports;	     /**< bit p: arrived on port p (ports 0..63) */
	uint64_t port_changes;	     /**< arrivals on another port than the previous one */
	uint16_t last_port;	     /**< port of the latest arrival */
	bool arrived;		     /**< rewrite, last and last_port are valid */
	uint8_t tcp;		     /**< MBXGEN_TCP_* */
};

/** One millisecond of send time. */
struct mbxgen_bucket {
	uint64_t sent;
	uint64_t received;   /**< first copies */
	uint64_t lat_sum_ns; /**< over received */
	uint64_t lat_max_ns;
};

/** Latency over every first copy received. */
struct mbxgen_latency {
	uint64_t count;
	uint64_t overflow;		  /**< samples of 1 s or more */
	uint64_t p50_us, p99_us, p999_us; /**< nearest rank, floored to the microsecond */
	uint64_t min_ns, max_ns;
	double mean_ns;
};

/** Run totals, the sums of the per-flow figures. */
struct mbxgen_totals {
	uint64_t sent, received, lost, duplicated, reordered, rewrite_changes;
	uint64_t handshakes, closes, failed; /**< flows with each MBXGEN_TCP_* bit */
	uint64_t ctr[MBXGEN_CTR_MAX];
};

/** Creation parameters. */
struct mbxgen_check_conf {
	uint32_t nb_flows;
	uint64_t hz;		     /**< TSC ticks per second */
	uint64_t start_tsc;	     /**< start of the run: timeline bucket 0 */
	uint32_t inflight_window_ms; /**< see mbxgen_check_inflight() */
};

/** Facts about the run for the report (mbxgen_check_report()). */
struct mbxgen_run {
	const char *proto;	/**< "udp", "tcp" or "mixed" */
	bool tcp;		/**< some flows are TCP: report handshakes and closes */
	uint64_t rate_pps;	/**< requested rate, 0 = unpaced */
	double duration_s;	/**< from the first to the last packet sent */
	uint64_t start_unix_us; /**< wall clock at start_tsc, microseconds since the epoch */
	uint32_t frame_size;	/**< bytes per data frame, without FCS */
	uint16_t tx_port;
};

struct mbxgen_check;

/**
 * Create a checker.
 * @param conf
 *   Flows, TSC frequency and the start of the run.
 * @return
 *   The checker, or NULL (errno: EINVAL for a zero hz or no flows, ENOMEM).
 */
struct mbxgen_check *mbxgen_check_create(const struct mbxgen_check_conf *conf);

/** Free a checker (NULL is fine). */
void mbxgen_check_free(struct mbxgen_check *c);

/**
 * Record the 5-tuple flow @p flow is sent with (for the report).
 * @return 0 or -EINVAL (no such flow).
 */
int mbxgen_check_flow_init(struct mbxgen_check *c, uint32_t flow,
			   const struct mbxgen_tuple *inside);

/**
 * Hand out the next sequence number of @p flow (from 0).
 * @return the seq, or UINT64_MAX if the flow does not exist or memory ran out.
 */
uint64_t mbxgen_check_assign(struct mbxgen_check *c, uint32_t flow);

/**
 * Count the next assigned packet of @p flow as sent: the port took it.
 * Packets of a flow are reported sent in seq order.
 * @param tx_tsc
 *   The TSC written into the packet: decides its timeline bucket.
 * @return 0, or -EINVAL (no such flow, nothing assigned left, tsc before start).
 */
int mbxgen_check_sent(struct mbxgen_check *c, uint32_t flow, uint64_t tx_tsc);

/** A data packet as received and decoded. */
struct mbxgen_rx {
	uint32_t flow;
	uint64_t seq;
	uint64_t tx_tsc;	   /**< from the payload */
	uint64_t rx_tsc;	   /**< when it was received */
	uint16_t port;		   /**< where it arrived */
	struct mbxgen_tuple tuple; /**< as it arrived */
};

/**
 * Account a received data packet.
 * @return what it was; an invalid one is counted (MBXGEN_CTR_INVALID) and
 *   changes nothing else.
 */
enum mbxgen_verdict mbxgen_check_rx(struct mbxgen_check *c, const struct mbxgen_rx *r);

/**
 * Record an arrival of @p flow that carries no data (a TCP SYN, ACK or FIN
 * of the client): its tuple and port count for the rewrite and the ports.
 * @return 0 or -EINVAL (no such flow).
 */
int mbxgen_check_seen(struct mbxgen_check *c, uint32_t flow, uint16_t port,
		      const struct mbxgen_tuple *tuple);

/** Set MBXGEN_TCP_* bits of @p flow. */
void mbxgen_check_tcp(struct mbxgen_check *c, uint32_t flow, uint8_t bits);

/** Add @p n to a run-wide counter. */
void mbxgen_check_count(struct mbxgen_check *c, enum mbxgen_ctr ctr, uint64_t n);

/**
 * Packets in flight at @p now_tsc: sent, not yet received, and sent less
 * than the in-flight window ago (whole milliseconds of send time).
 */
uint64_t mbxgen_check_inflight(struct mbxgen_check *c, uint64_t now_tsc);

/** The run totals so far. */
void mbxgen_check_totals(const struct mbxgen_check *c, struct mbxgen_totals *t);

/** One flow's accounting, or NULL. */
const struct mbxgen_flow *mbxgen_check_flow(const struct mbxgen_check *c, uint32_t flow);

/** Latency figures over every first copy received so far. */
void mbxgen_check_latency(const struct mbxgen_check *c, struct mbxgen_latency *l);

/** Timeline length: one bucket per millisecond up to the last packet sent. */
size_t mbxgen_check_nb_buckets(const struct mbxgen_check *c);

/** Timeline bucket @p i (millisecond i of send time), or NULL. */
const struct mbxgen_bucket *mbxgen_check_bucket(const struct mbxgen_check *c, size_t i);

/** The JSON name of a counter. */
const char *mbxgen_ctr_name(enum mbxgen_ctr ctr);

/**
 * Write the report as one JSON object: totals (sent, received, lost,
 * duplicated, reordered, rewrite_changes, latency_us, handshakes...), run
 * facts, "flows" (one object per flow) and "timeline" (one per ms).
 * @return 0 or -EIO.
 */
int mbxgen_check_report(const struct mbxgen_check *c, FILE *f, const struct mbxgen_run *run);

#endif /* MBXGEN_CHECK_H */
