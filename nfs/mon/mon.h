/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The mon NF: a flow and asset monitor. Its state and the pieces shared by
 * mon.c (options, packet path), mon_hosts.c (the asset table),
 * mon_flowlog.c (finished flows to a file), mon_state.c (codecs) and the
 * unit tests.
 *
 * Theory of operation: mon passes every packet unchanged. Per flow it counts
 * packets, bytes and TCP flags per direction and keeps the first and last
 * time seen; per inside host it records services and OS hints (mon_hosts.h);
 * per worker it keeps totals, summed on read. When a flow's entry is freed
 * (expiry, deletion, refusal by a later NF, shutdown) its worker enqueues a
 * fixed-size record on a bounded rte_ring -- a full ring drops the record
 * and counts it -- and the main lcore writes the records as JSON lines from
 * the ctrl_poll hook. A worker never touches the file.
 *
 * Times are nanoseconds since the Unix epoch, taken from the burst's TSC
 * (ctx->now) and converted with a (wall clock, TSC) pair read in create().
 */
#ifndef MON_H
#define MON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <rte_ring.h>

#include "mbx_nf.h"
#include "mon_hosts.h"

extern int mon_logtype;
#define MON_LOG(level, fmt, ...) \
	rte_log(RTE_LOG_##level, mon_logtype, "mbx.mon: " fmt "\n", ##__VA_ARGS__)

/* Counters: X(enum suffix, name). */
#define MON_COUNTERS(X)                        \
	X(FINISHED, "flows_finished")          \
	X(QUEUED, "records_queued")            \
	X(RING_FULL, "records_lost_ring_full") \
	X(HOSTS_FULL, "hosts_table_full")

enum mon_counter {
#define X(e, s) MON_CTR_##e,
	MON_COUNTERS(X)
#undef X
		MON_CTR_MAX
};

/* Why a flow ended, as written in its record: X(enum suffix, name). */
#define MON_ENDS(X)           \
	X(EXPIRED, "expired") \
	X(DELETED, "deleted") \
	X(REFUSED, "refused")

enum mon_end {
#define X(e, s) MON_END_##e,
	MON_ENDS(X)
#undef X
		MON_END_MAX
};

/** Per-flow state. Index 0 is the originator's direction, 1 the replies'. */
struct mon_flow {
	uint64_t first_ns; /**< 0: mon has not seen the flow yet */
	uint64_t last_ns;
	uint64_t packets[2];
	uint64_t bytes[2];
	int32_t host[2];      /**< record of the host sending that way, or -1 */
	uint8_t tcp_flags[2]; /**< OR of the flags seen */
	uint8_t orig_side;    /**< enum mbx_side of the originator */
	uint8_t midstream;    /**< TCP picked up without its SYN */
};

/** Totals of one worker; all_get sums them. */
struct mon_totals {
	uint64_t flows;
	uint64_t packets;
	uint64_t bytes;
	uint64_t active;
};

/** Per-worker data (ctx->priv). */
struct mon_worker {
	struct mon_hosts *hosts;
	struct mon_totals tot;
};

/** A finished flow, as a worker hands it to the main lcore. */
struct mon_rec {
	struct mbx_flow_key key; /**< originator direction */
	struct mon_flow st;
	uint8_t end; /**< enum mon_end */
	uint8_t pad[7];
};

/** The instance. */
struct mon {
	uint64_t epoch_ns;  /**< wall clock at start-up, ns since the Unix epoch */
	uint64_t epoch_tsc; /**< TSC at the same moment */
	uint64_t tsc_hz;
	uint32_t nb_hosts; /**< host table capacity per worker */
	int socket;
	bool one_armed; /**< one port: every host is inside */
	uint16_t nb_workers;
	struct mon_worker **workers; /**< by worker index, for all_get */
	struct mon_totals base;	     /**< totals put by all_put */
	/* the finished-flow log (mon_flowlog.c); ring NULL without flows_file */
	struct rte_ring *ring;
	FILE *file;
	char *path;
	uint64_t written;
	uint64_t write_errors;
};

/** @p tsc as nanoseconds since the Unix epoch. */
uint64_t mon_tsc_to_ns(const struct mon *mon, uint64_t tsc);

/* Finished flows (mon_flowlog.c). */

/**
 * Open @p path for appending and create a ring of @p size records.
 * @return 0, or -errno (logged).
 */
int mon_flowlog_open(struct mon *mon, const char *path, uint32_t size);

/** Write what is queued, then close the file and free the ring. */
void mon_flowlog_close(struct mon *mon);

/**
 * Worker (or the main lcore at shutdown): queue @p r for the file. On the
 * main lcore a full ring is written out first; on a worker a full ring drops
 * the record and counts it.
 */
void mon_flowlog_put(struct mbx_nf_ctx *c, const struct mon_rec *r);

/** Main lcore: write up to @p max queued records. @return records written. */
unsigned int mon_flowlog_drain(struct mon *mon, unsigned int max);

/** The ctrl_poll hook: write what the workers queued. */
void mon_ctrl_poll(void *nf);

/** @p r as one JSON object without a newline. @return its length, as snprintf. */
int mon_rec_json(const struct mon_rec *r, char *buf, size_t len);

/* The codecs (mon_state.c): see the hooks in mbx_nf.h. */
int mon_flow_get(struct mbx_nf_ctx *c, struct mbx_flow *f, uint8_t *buf, size_t cap);
int mon_flow_put(struct mbx_nf_ctx *c, struct mbx_flow *f, const uint8_t *buf, size_t len);
int mon_multi_get(struct mbx_nf_ctx *c, const struct mbx_filter *flt, mbx_state_emit emit,
		  void *arg);
int mon_multi_put(struct mbx_nf_ctx *c, const struct mbx_flow_key *key, const uint8_t *buf,
		  size_t len);
int mon_multi_del(struct mbx_nf_ctx *c, const struct mbx_filter *flt);
int mon_all_get(void *nf, mbx_state_emit emit, void *arg);
int mon_all_put(void *nf, const uint8_t *buf, size_t len, bool commit);

/**
 * Attach flow @p st to the records of its tracked hosts (mon.c): the
 * originator (@p src, on side @p orig_side) and the responder (@p dst).
 * With @p count, the flow also counts as a connection of each.
 */
void mon_flow_attach(struct mbx_nf_ctx *c, struct mon_flow *st, const union mbx_addr *src,
		     const union mbx_addr *dst, uint8_t family, bool count);

#endif /* MON_H */
