/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mbxgen's options: one x-macro table gives the long options and the
 * --help text, so they never drift apart (the pattern of mbxd's
 * dataplane/options.c, not its code).
 *
 * Main lcore, before the run (or before EAL init, for --help).
 */
#ifndef MBXGEN_OPTIONS_H
#define MBXGEN_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ether.h>

/** Which flows are TCP. */
enum mbxgen_proto {
	MBXGEN_PROTO_UDP,
	MBXGEN_PROTO_TCP,
	MBXGEN_PROTO_MIXED, /**< even flow ids UDP, odd ones TCP */
};

struct mbxgen_options {
	uint16_t tx_port;
	uint64_t rx_ports; /**< bit mask; 0 with rx_ports_set: none */
	bool rx_ports_set; /**< --rx-ports given; else every port but the tx port */
	uint32_t flows;
	uint32_t hosts;	 /**< inside source addresses the flows are spread over */
	uint64_t rate;	 /**< packets per second in total, 0 = as fast as the port takes them */
	double duration; /**< seconds of sending, if count == 0 */
	uint64_t count;	 /**< data packets per flow, 0 = until the duration */
	uint32_t size;	 /**< frame bytes without FCS */
	enum mbxgen_proto proto;
	bool tcp_fin;
	uint32_t src;	  /**< first inside host, host order */
	uint8_t src_plen; /**< --src A.B.C.D/N: the hosts stay within /N (32: not given) */
	uint32_t dst;	  /**< destination address, host order */
	uint16_t sport;	  /**< first source port */
	uint16_t dport;
	struct rte_ether_addr dst_mac;
	uint32_t max_inflight; /**< 0 = unbounded */
	uint32_t open_rate;    /**< flows opened per second, 0 = all at once */
	uint32_t drain_ms;
	uint32_t burst;
	uint32_t idle_sleep_us;
	uint32_t stats_interval; /**< seconds, 0 = never */
	uint32_t link_wait;	 /**< seconds */
	uint32_t syn_retry_ms;
	const char *report; /**< JSON file, "-" = stdout, NULL = none */
};

/** Fill @p o with the defaults. */
void mbxgen_options_defaults(struct mbxgen_options *o);

/**
 * Parse mbxgen's options (what follows "--").
 * @return 0, 1 if --help was printed, or -EINVAL (reason printed).
 */
int mbxgen_options_parse(struct mbxgen_options *o, int argc, char **argv);

/** Print the usage of mbxgen's options. */
void mbxgen_options_usage(const char *prog);

#endif /* MBXGEN_OPTIONS_H */
