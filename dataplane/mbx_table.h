/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The per-worker flow table.
 *
 * Theory of operation: each worker owns one table, and only that worker
 * reads or writes it (the control plane reaches it through the worker's
 * request ring, see mbx_ctrl.h), so nothing here takes a lock. A table is an
 * rte_hash whose two keys per flow (originator direction and reply
 * direction, which differ when an NF rewrites the packet) both point at one
 * entry. Entries live in one flat array with a free-index stack: a slot's
 * index is stable for the life of the entry, which makes iteration by
 * index resumable and safe against inserts and deletes between slices
 * (rte_hash_iterate is neither once cuckoo moves or chain compaction run).
 *
 * An entry is a small header (expiry, coarse TCP state) followed by one
 * state slot per stateful NF of the chain, and the two keys. The NF chain
 * decides the slot offsets (mbx_nf.h).
 *
 * Expiry: every entry sits on the list of its timeout class. A packet only
 * writes the entry's new expiry time; the sweep, run a bounded number of
 * entries per worker loop, looks at list heads and requeues refreshed
 * entries lazily (Open vSwitch's exp_lists). Each class has one timeout, so
 * a list stays sorted by the time it was queued.
 */
#ifndef MBX_TABLE_H
#define MBX_TABLE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <rte_common.h>

#include "mbx_flow.h"

/*
 * Timeout classes: X(enum suffix, name, default seconds), connection-tracking
 * style. The framework moves a flow between classes by what it sees (TCP
 * flags per direction, a UDP reply); an NF with a stricter view sets the
 * class itself with mbx_flow_set_class(). Each class has one timeout, which
 * keeps every expiry list in time order.
 */
#define MBX_TIMEOUTS(X)                        \
	X(TCP_SYN_SENT, "tcp_syn_sent", 30)    \
	X(TCP_SYN_RECV, "tcp_syn_recv", 60)    \
	X(TCP_EST, "tcp_established", 7440)    \
	X(TCP_FIN_WAIT, "tcp_fin_wait", 240)   \
	X(TCP_TIME_WAIT, "tcp_time_wait", 120) \
	X(TCP_CLOSED, "tcp_closed", 10)        \
	X(UDP_FIRST, "udp_first", 30)          \
	X(UDP, "udp", 300)                     \
	X(ICMP, "icmp", 60)                    \
	X(OTHER, "other", 600)

enum mbx_tmo_class {
#define X(e, s, t) MBX_TMO_##e,
	MBX_TIMEOUTS(X)
#undef X
		MBX_TMO_MAX
};

/** Names and default timeouts (seconds) of the classes. */
extern const char *const mbx_tmo_names[MBX_TMO_MAX];
extern const uint32_t mbx_tmo_defaults[MBX_TMO_MAX];

/** Entry flags. */
#define MBX_FLOW_F_REPLY_SEEN	(1u << 0) /**< a packet in the reply direction passed */
#define MBX_FLOW_F_FIN_ORIG	(1u << 1) /**< FIN seen from the originator */
#define MBX_FLOW_F_FIN_REPLY	(1u << 2) /**< FIN seen from the responder */
#define MBX_FLOW_F_REV_KEYED	(1u << 3) /**< key[1] is in the hash */
#define MBX_FLOW_F_PENDING	(1u << 4) /**< created by a packet still in the chain */
#define MBX_FLOW_F_FROM_OUTSIDE (1u << 5) /**< its first packet came from the outside */

/** A flow entry. NF state slots follow the header; the keys follow them. */
struct mbx_flow {
	uint64_t expire;		/**< TSC cycle at which the flow expires */
	uint64_t queued_expire;		/**< @c expire when queued on its list */
	TAILQ_ENTRY(mbx_flow) exp_node; /**< on the list of its timeout class */
	uint32_t index;			/**< slot index in the table, stable */
	uint8_t tmo_class;		/**< enum mbx_tmo_class */
	uint8_t flags;			/**< MBX_FLOW_F_* */
	uint8_t in_use;			/**< 0 when the slot is free */
	uint8_t pad;
	uint8_t state[] __rte_aligned(8); /**< NF state slots, then the two keys */
};

struct mbx_table;

/** Callback of mbx_table_walk(): return 0 to go on, non-zero to stop. */
typedef int (*mbx_flow_cb)(struct mbx_flow *f, void *arg);

/** Table parameters. */
struct mbx_table_conf {
	const char *name;    /**< unique; used for the rte_hash name */
	uint32_t capacity;   /**< flows (each holds two keys) */
	uint32_t state_size; /**< bytes of NF state slots per entry */
	int socket;	     /**< NUMA socket for memory */
};

/**
 * Create a table.
 * @return the table, or NULL with rte_errno set.
 */
struct mbx_table *mbx_table_create(const struct mbx_table_conf *conf);

/** Free @p t; NULL is allowed. Entries are dropped without callbacks. */
void mbx_table_free(struct mbx_table *t);

/** The keys of @p f: [0] originator direction, [1] reply direction. */
struct mbx_flow_key *mbx_flow_keys(const struct mbx_table *t, struct mbx_flow *f);

/** Number of flows in use. */
uint32_t mbx_table_count(const struct mbx_table *t);

/** Capacity in flows. */
uint32_t mbx_table_capacity(const struct mbx_table *t);

/**
 * Look up @p n (at most 64) keys at once, and prefetch the first two
 * cache lines (header and NF state) of every entry found.
 * @param flows out: the entry of each key, or NULL.
 * @param dirs out: MBX_DIR_ORIG or MBX_DIR_REPLY for each hit.
 * @return number of hits.
 */
unsigned int mbx_table_lookup_bulk(struct mbx_table *t, const struct mbx_flow_key **keys,
				   unsigned int n, struct mbx_flow **flows, uint8_t *dirs);

/**
 * Look up one key.
 * @param dir out (may be NULL): the direction @p k matched.
 * @return the entry, or NULL.
 */
struct mbx_flow *mbx_table_lookup(struct mbx_table *t, const struct mbx_flow_key *k, uint8_t *dir);

/**
 * Create an entry for @p key (originator direction), state zeroed, class
 * @p cls, expiring @p now + the class timeout. The reply key is added later
 * with mbx_table_set_reply_key().
 * @return the entry, or NULL with rte_errno = ENOSPC (full) or EEXIST.
 */
struct mbx_flow *mbx_table_add(struct mbx_table *t, const struct mbx_flow_key *key,
			       enum mbx_tmo_class cls, uint64_t now);

/**
 * Point @p rev at @p f too. Replaces a previous reply key of @p f. A reply
 * key equal to the originator key (a flow to itself) is not added twice.
 * @return 0, -EEXIST when another flow holds @p rev, -ENOSPC.
 */
int mbx_table_set_reply_key(struct mbx_table *t, struct mbx_flow *f,
			    const struct mbx_flow_key *rev);

/**
 * Remove @p f from the hash and free its slot. The caller runs the NFs'
 * flow_free hooks first (mbx_nf.h does).
 */
void mbx_table_del(struct mbx_table *t, struct mbx_flow *f);

/**
 * Visit in-use entries in index order from @p *cursor, at most @p max, and
 * leave @p *cursor where the next call continues (UINT32_MAX when done).
 * Entries added or deleted between calls are visited at most once; entries
 * present throughout are visited exactly once. @p cb may delete the entry
 * it is given.
 * @return number of entries visited, or the callback's non-zero value
 *   negated if it stopped the walk.
 */
int mbx_table_walk(struct mbx_table *t, uint32_t *cursor, uint32_t max, mbx_flow_cb cb, void *arg);

/** Set the cycles-per-class timeouts of @p t from seconds. */
void mbx_table_set_timeouts(struct mbx_table *t, const uint32_t secs[MBX_TMO_MAX]);

/**
 * Refresh @p f for a packet seen at @p now: new expiry time and, for TCP,
 * the coarse state from @p tcp_flags in direction @p dir.
 */
void mbx_table_touch(struct mbx_table *t, struct mbx_flow *f, uint64_t now, uint8_t proto,
		     uint8_t tcp_flags, uint8_t dir);

/** Move @p f to class @p cls (and expire it by that class's timeout from @p now). */
void mbx_flow_set_class(struct mbx_table *t, struct mbx_flow *f, enum mbx_tmo_class cls,
			uint64_t now);

/**
 * Hand expired entries to @p cb (which deletes them), looking at no more
 * than @p budget entries.
 * @return entries expired.
 */
unsigned int mbx_table_expire(struct mbx_table *t, uint64_t now, unsigned int budget,
			      mbx_flow_cb cb, void *arg);

/**
 * The initial timeout class of a flow of protocol @p proto whose first
 * packet has @p tcp_flags; a TCP flow not opened by a SYN is taken as
 * established (picked up mid-stream).
 */
enum mbx_tmo_class mbx_tmo_class_of(uint8_t proto, uint8_t tcp_flags);

#endif /* MBX_TABLE_H */
