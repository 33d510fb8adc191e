/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The lb NF's state, shared by lb.c (options and the packet path), its
 * codecs (lb_state.c) and the unit tests.
 *
 * Theory of operation: the instance (all-flows state) is the virtual
 * service (VIP, port, protocols), the backend set and the Maglev table
 * built from it (maglev.h). Backends live in slots whose index is stable
 * while the backend is in the set; the table holds slot indices. A slot's
 * generation changes when its backend is removed, which is how a
 * connection finds out that its backend is gone. The set changes only in
 * all_put, on the main lcore while the workers are parked, so workers read
 * it without locks.
 *
 * A connection's per-flow state is its backend (address, port, slot and
 * the slot's generation) and the checksum deltas of the rewrite VIP:port
 * -> backend:port, computed once at its first packet. Every worker counts
 * per backend slot (struct lb_worker): connections open now, connections
 * given, packets and bytes; that is the multi-flow state.
 */
#ifndef LB_H
#define LB_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>

#include <rte_lcore.h>

#include "maglev.h"
#include "mbx_nf.h"

/* Counters: X(enum suffix, name). */
#define LB_COUNTERS(X)                    \
	X(NEW, "connections_new")         \
	X(ENDED, "connections_ended")     \
	X(TO_BACKEND, "to_backend")       \
	X(FROM_BACKEND, "from_backend")   \
	X(PASSED, "passed")               \
	X(NO_BACKEND, "no_backend_drops") \
	X(REMOVED, "backend_removed_drops")

enum lb_counter {
#define X(e, s) LB_CTR_##e,
	LB_COUNTERS(X)
#undef X
		LB_CTR_MAX
};

/** Most backends in the set. */
#define LB_MAX_BACKENDS 1024
/** Largest weight. */
#define LB_MAX_WEIGHT UINT16_MAX
/** Default table size (the paper's small table). */
#define LB_TABLE_SIZE 65537
/** Seed of the hash of a new connection's key into the table. */
#define LB_FLOW_SEED 0x6c623031u
/** Protocols balanced (a mask). */
#define LB_TCP (1u << 0)
#define LB_UDP (1u << 1)

/** A backend slot. */
struct lb_backend {
	union mbx_addr addr;
	rte_be16_t port;
	uint16_t weight;
	uint32_t gen; /**< changes when the backend leaves the slot */
	bool in_use;
};

/** One worker's counts for one backend slot (multi-flow state). */
struct lb_stats {
	uint64_t active;      /**< connections open now */
	uint64_t connections; /**< connections given */
	uint64_t packets;
	uint64_t bytes;
};

/** Per-worker data (ctx->priv). */
struct lb_worker {
	struct lb_stats be[LB_MAX_BACKENDS];
};

/** A backend set to install (the options, or an LbBackends put). */
struct lb_set {
	uint16_t n;
	struct {
		union mbx_addr addr;
		rte_be16_t port;
		uint16_t weight;
	} be[LB_MAX_BACKENDS];
};

/** The instance: all-flows state. */
struct lb {
	union mbx_addr vip;
	rte_be16_t vip_port;
	uint8_t family; /**< MBX_FAMILY_V4 or _V6 */
	uint8_t protos; /**< LB_TCP | LB_UDP */
	uint32_t table_size;
	uint16_t *table; /**< slot per entry, or MAGLEV_NONE */
	uint16_t *spare; /**< the next table, filled by lb_set_apply() */
	int socket;
	uint16_t nb_used;
	uint16_t used[LB_MAX_BACKENDS]; /**< the slots in use, for lookups by address */
	struct lb_backend be[LB_MAX_BACKENDS];
	struct lb_worker *workers[RTE_MAX_LCORE];
	/* working space of lb_set_apply() and lb_all_put(), main lcore only */
	struct maglev_backend fill[LB_MAX_BACKENDS];
	struct maglev_perm perm[LB_MAX_BACKENDS];
	struct lb_set put;
};

/** Per-flow state: the backend and the checksum deltas VIP -> backend. */
struct lb_flow {
	union mbx_addr backend;
	rte_be16_t port;   /**< backend port */
	uint16_t ip_delta; /**< IPv4 header checksum delta */
	uint16_t l4_delta; /**< TCP/UDP checksum delta (pseudo-header and port) */
	uint16_t slot;	   /**< backend slot */
	uint32_t gen;	   /**< the slot's generation when the backend was given */
	uint8_t assigned;
};

/** The name Maglev hashes for a backend: address, port, family. */
void lb_backend_name(uint8_t name[MAGLEV_NAME_LEN], const union mbx_addr *addr, rte_be16_t port,
		     uint8_t family);

/**
 * Check @p s against @p lb: at most LB_MAX_BACKENDS, no backend twice.
 * @return 0 or -EINVAL (logged).
 */
int lb_set_check(const struct lb *lb, const struct lb_set *s);

/**
 * Make @p s the backend set: keep the slots of backends that stay, free
 * (and forget the counts of) those that leave, take free slots for new
 * ones, and refill the table. Main lcore, workers parked or not started.
 */
void lb_set_apply(struct lb *lb, const struct lb_set *s);

/** The slot of backend @p addr:@p port, or -1. */
int lb_slot_find(const struct lb *lb, const union mbx_addr *addr, rte_be16_t port);

/** Give @p st the backend of slot @p slot (deltas, generation). */
void lb_flow_set(const struct lb *lb, struct lb_flow *st, uint16_t slot);

/** "A.B.C.D:PORT" or "[IPV6]:PORT" into @p buf, for messages. @return @p buf. */
const char *lb_endpoint_str(uint8_t family, const union mbx_addr *a, rte_be16_t port, char *buf,
			    size_t len);

/** Does a packet with key @p k go to the virtual service? */
static inline bool
lb_is_vip(const struct lb *lb, const struct mbx_flow_key *k)
{
	return k->dport == lb->vip_port && k->family == lb->family &&
	       k->dst.u64[0] == lb->vip.u64[0] && k->dst.u64[1] == lb->vip.u64[1] &&
	       ((k->proto == IPPROTO_TCP && (lb->protos & LB_TCP)) ||
		(k->proto == IPPROTO_UDP && (lb->protos & LB_UDP)));
}

/* The codecs (lb_state.c): see the hooks in mbx_nf.h. */
int lb_flow_get(struct mbx_nf_ctx *c, struct mbx_flow *f, uint8_t *buf, size_t cap);
int lb_flow_put(struct mbx_nf_ctx *c, struct mbx_flow *f, const uint8_t *buf, size_t len);
int lb_multi_get(struct mbx_nf_ctx *c, const struct mbx_filter *flt, mbx_state_emit emit,
		 void *arg);
int lb_multi_put(struct mbx_nf_ctx *c, const struct mbx_flow_key *key, const uint8_t *buf,
		 size_t len);
int lb_multi_del(struct mbx_nf_ctx *c, const struct mbx_filter *flt);
int lb_all_get(void *nf, mbx_state_emit emit, void *arg);
int lb_all_put(void *nf, const uint8_t *buf, size_t len, bool commit);

/** Log type of the lb NF. */
extern int lb_logtype;
#define LB_LOG(level, fmt, ...) \
	rte_log(RTE_LOG_##level, lb_logtype, "mbx.lb: " fmt "\n", ##__VA_ARGS__)

#endif /* LB_H */
