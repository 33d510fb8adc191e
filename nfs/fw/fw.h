/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fw NF: a stateful firewall. Shared by fw.c (options, the packet path),
 * fw_tcp.c (TCP tracking), fw_state.c (codecs) and the unit tests.
 *
 * Theory of operation: the first packet of a connection is judged by the
 * rule set (fw_rules.h; first match wins, else the default policy); every
 * later packet, in either direction, is judged by the connection's state in
 * the framework's flow entry (struct fw_conn): TCP by a state machine with
 * sequence-window tracking (fw_tcp.c), UDP, ICMP echo and other protocols as
 * pseudo-connections. ICMP errors are judged by the connection their
 * embedded header belongs to, looked up on the same worker. Each state maps
 * to one of the framework's timeout classes (FW_STATES), so a connection
 * expires by what the firewall saw. Every connection counts for its source
 * host (fw_hosts.h), which conn_limit caps.
 *
 * Flows are placed by their inside host (mbx_owner_by_host()), so that an
 * ICMP error sent from the outside to an inside host reaches the worker that
 * holds the host's connections.
 *
 * Runs on workers (process, flow_free, codecs) and the main lcore (create,
 * all_get/all_put with the workers parked); nothing here locks or logs per
 * packet.
 */
#ifndef FW_H
#define FW_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_tcp.h>

#include "fw_hosts.h"
#include "fw_rules.h"
#include "mbx_nf.h"

extern int fw_logtype;
#define FW_LOG(level, fmt, ...) \
	rte_log(RTE_LOG_##level, fw_logtype, "mbx.fw: " fmt "\n", ##__VA_ARGS__)

/*
 * Counters: X(enum suffix, name). Everything from DENIED on counts dropped
 * packets, one reason each.
 */
#define FW_COUNTERS(X)                            \
	X(ALLOWED, "conns_allowed")               \
	X(ENDED, "conns_ended")                   \
	X(ICMP_RELATED, "icmp_errors_related")    \
	X(DENIED, "denied_by_rule")               \
	X(TCP_NO_CONN, "tcp_no_connection")       \
	X(TCP_BAD_FLAGS, "tcp_invalid_flags")     \
	X(TCP_BAD_STATE, "tcp_invalid_state")     \
	X(TCP_WINDOW, "tcp_out_of_window")        \
	X(TCP_CLOSED, "tcp_after_close")          \
	X(ICMP_UNRELATED, "icmp_error_unrelated") \
	X(ICMP_BAD, "icmp_invalid")               \
	X(CONN_LIMIT, "conn_limit")               \
	X(HOSTS_FULL, "host_table_full")

enum fw_counter {
#define X(e, s) FW_CTR_##e,
	FW_COUNTERS(X)
#undef X
		FW_CTR_MAX
};

/** What a check answers when the packet passes (not a counter). */
#define FW_PASS FW_CTR_MAX

/*
 * Connection states: X(enum suffix, name, timeout class). TCP states first,
 * then the pseudo-connections. The class is the framework's (MBX_TIMEOUTS in
 * mbx_table.h): a connection expires by the timeout of its state.
 */
#define FW_STATES(X)                                 \
	X(NONE, "none", OTHER)                       \
	X(SYN_SENT, "syn_sent", TCP_SYN_SENT)        \
	X(SYN_RECV, "syn_recv", TCP_SYN_RECV)        \
	X(ESTABLISHED, "established", TCP_EST)       \
	X(FIN_WAIT, "fin_wait", TCP_FIN_WAIT)        \
	X(CLOSE_WAIT, "close_wait", TCP_FIN_WAIT)    \
	X(LAST_ACK, "last_ack", TCP_FIN_WAIT)        \
	X(TIME_WAIT, "time_wait", TCP_TIME_WAIT)     \
	X(CLOSED, "closed", TCP_CLOSED)              \
	X(UDP_UNREPLIED, "udp_unreplied", UDP_FIRST) \
	X(UDP_REPLIED, "udp_replied", UDP)           \
	X(ICMP_ECHO, "icmp_echo", ICMP)              \
	X(OTHER, "other", OTHER)

enum fw_state {
#define X(e, s, c) FW_ST_##e,
	FW_STATES(X)
#undef X
		FW_ST_MAX
};

/** Names and timeout classes of the states. */
extern const char *const fw_state_names[FW_ST_MAX];
extern const uint8_t fw_state_class[FW_ST_MAX];

/** Is @p s a TCP state? */
static inline bool
fw_state_is_tcp(uint8_t s)
{
	return s >= FW_ST_SYN_SENT && s <= FW_ST_CLOSED;
}

/** One direction of a TCP connection, as the window tracker sees it. */
struct fw_peer {
	uint32_t end;	 /**< sequence number after the last one this side sent */
	uint32_t maxend; /**< highest sequence number this side may send (peer's ack + window) */
	uint32_t maxwin; /**< largest window this side advertised, scaled; 0: not seen yet */
	uint8_t wscale;	 /**< window scale shift this side announced */
	uint8_t flags;	 /**< FW_PEER_* */
};

#define FW_PEER_WSCALE	  (1u << 0) /**< announced window scaling in its SYN */
#define FW_PEER_FIN	  (1u << 1) /**< sent a FIN (its sequence number is end - 1) */
#define FW_PEER_FIN_ACKED (1u << 2) /**< ... and the other side acknowledged it */

/** Per-flow state: one connection. Zero (FW_ST_NONE) until the first packet passes. */
struct fw_conn {
	struct fw_peer peer[2]; /**< TCP, by direction: [MBX_DIR_ORIG], [MBX_DIR_REPLY] */
	uint32_t host;		/**< 1 + the source host's slot in the worker's table; 0: none */
	uint8_t state;		/**< enum fw_state */
	uint8_t flags;		/**< FW_CONN_* */
};

#define FW_CONN_LIBERAL (1u << 0) /**< picked up mid-stream: sequence numbers not checked */

/** The instance. */
struct fw {
	struct fw_rules *rules; /**< all-flows state: the rule set */
	uint32_t conn_limit;	/**< connections per source host; 0: no limit */
	bool window_check;	/**< check TCP sequence windows */
	bool pickup;		/**< take up TCP connections mid-stream */
	bool one_armed;		/**< one port: no inside host to place flows by */
	uint32_t flows;		/**< flow table capacity per worker */
	int socket;
	uint16_t nb_workers;
	struct fw_hosts *hosts[RTE_MAX_LCORE]; /**< each worker's host table */
};

/** A TCP segment, as the tracker needs it. */
struct fw_seg {
	uint32_t seq;
	uint32_t ack;
	uint32_t end;  /**< seq + payload length, SYN and FIN counting one each */
	uint32_t win;  /**< the window field, unscaled */
	int8_t wscale; /**< window scale option of a SYN; -1 if none */
	uint8_t flags; /**< TCP flags */
	uint8_t dir;   /**< enum mbx_dir */
};

/**
 * Read segment @p s from TCP header @p th of a packet whose L4 part (header
 * and payload) is @p l4_len bytes, travelling in direction @p dir.
 */
void fw_seg_read(struct fw_seg *s, const struct rte_tcp_hdr *th, uint32_t l4_len, uint8_t dir);

/** Are TCP flags @p flags a combination a correct stack sends? */
bool fw_tcp_flags_valid(uint8_t flags);

/**
 * Start tracking a TCP connection from its first segment @p s: a SYN
 * (state syn_sent), or with @p pickup any other valid segment (established,
 * sequence numbers not checked).
 */
void fw_tcp_open(struct fw_conn *cn, const struct fw_seg *s);

/**
 * Follow a tracked TCP connection with segment @p s.
 * @param window_check check sequence numbers against the windows.
 * @return FW_PASS (the state updated), or the counter of the reason to drop
 *   (the state unchanged).
 */
enum fw_counter fw_tcp_track(struct fw_conn *cn, const struct fw_seg *s, bool window_check);

/* The codecs (fw_state.c): see the hooks in mbx_nf.h. */
int fw_flow_get(struct mbx_nf_ctx *c, struct mbx_flow *f, uint8_t *buf, size_t cap);
int fw_flow_put(struct mbx_nf_ctx *c, struct mbx_flow *f, const uint8_t *buf, size_t len);
int fw_multi_get(struct mbx_nf_ctx *c, const struct mbx_filter *flt, mbx_state_emit emit,
		 void *arg);
int fw_multi_put(struct mbx_nf_ctx *c, const struct mbx_flow_key *key, const uint8_t *buf,
		 size_t len);
int fw_multi_del(struct mbx_nf_ctx *c, const struct mbx_filter *flt);
int fw_all_get(void *nf, mbx_state_emit emit, void *arg);
int fw_all_put(void *nf, const uint8_t *buf, size_t len, bool commit);

/** Connections tracked by every worker (main lcore, workers parked). */
uint64_t fw_conns(const struct fw *fw);

#endif /* FW_H */
