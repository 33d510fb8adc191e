/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NF plug-in API: what an NF module implements and what the framework
 * gives it.
 *
 * Theory of operation: an NF is a const struct mbx_nf_ops registered by
 * MBX_NF_REGISTER() from a constructor, like RTE_NODE_REGISTER. mbxd builds
 * the chain from its --nf options: for each entry it calls create() once on
 * the main lcore, then worker_init() once per worker. Each worker then calls
 * process() with bursts of packets of the flows it owns, in chain order for
 * packets that entered from the inside (port 0) and in reverse order for
 * packets from the outside (port 1).
 *
 * Per-flow state belongs to the framework: an NF declares flow_state_size
 * and finds its zeroed slot in every flow entry with mbx_nf_state(). The
 * framework creates the entry on a flow's first packet, keeps it while
 * packets refresh it, and deletes it on idle expiry, on a control request,
 * or when the first packet of the flow is dropped; flow_free() runs first.
 * An NF that rewrites addresses or ports updates pkt->key to match, so that
 * the framework can key the reply direction to the same entry.
 *
 * State leaves and enters an instance only through the codec hooks, as the
 * NF's own versioned protobuf message: flow_get/flow_put for a per-flow slot
 * (run on the worker that owns the flow), multi_get/multi_put/multi_del for
 * state keyed wider than a flow (run on every worker, or on the owner of the
 * key), all_get/all_put for instance-wide state (run on the main lcore while
 * every worker is parked between bursts, so they may touch anything).
 *
 * Never: touch rings, sockets, ports or another NF; block or log per packet
 * in process().
 */
#ifndef MBX_NF_H
#define MBX_NF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_hash_crc.h>
#include <rte_mbuf.h>

#include "mbx_flow.h"
#include "mbx_pkt.h"
#include "mbx_table.h"

/** The scopes of an NF's state (the southbound's Scope, and move_scopes' bits). */
enum mbx_scope {
	MBX_SCOPE_PER_FLOW = 0,
	MBX_SCOPE_MULTI_FLOW = 1,
	MBX_SCOPE_ALL_FLOWS = 2,
};

/** What create() is given. */
struct mbx_nf_params {
	const char *args;    /**< the "key=value,..." part of --nf, "" if none */
	uint16_t nb_workers; /**< worker lcores */
	uint16_t nb_ports;   /**< 1 (one-armed) or 2 (inside, outside) */
	int socket;	     /**< NUMA socket of the workers */
	uint32_t flows;	     /**< flow table capacity per worker */
};

/** What the framework hands an NF on a worker; valid for the worker's life. */
struct mbx_nf_ctx {
	void *nf;		 /**< the instance create() returned */
	void *priv;		 /**< what worker_init() returned, or NULL */
	uint64_t *counters;	 /**< this worker's counters of this NF */
	struct mbx_table *table; /**< this worker's flow table (NULL: stateless chain) */
	uint32_t state_off;	 /**< this NF's slot offset in mbx_flow.state */
	uint16_t worker;	 /**< this worker's index, 0..nb_workers-1 */
	uint16_t nb_workers;
	uint64_t now; /**< TSC cycle at the start of the current burst */
	char *why;    /**< MBX_NF_WHY_LEN bytes for mbx_nf_refuse(), or NULL */
};

/** Room for a put's refusal in words (mbx_nf_refuse()). */
#define MBX_NF_WHY_LEN 96

/**
 * Refuse a flow_put() or multi_put() with a reason in words, which the
 * instance reports to whoever sent the state (a move's source, a PutState
 * client) in place of strerror(@p rc).
 * @return @p rc, a negative errno.
 */
int mbx_nf_refuse(struct mbx_nf_ctx *c, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/** This NF's per-flow state slot in @p f. */
static inline void *
mbx_nf_state(const struct mbx_nf_ctx *c, struct mbx_flow *f)
{
	return f->state + c->state_off;
}

/**
 * The worker for flows placed by one of their hosts (NAT, firewall and load
 * balancer place by the inside host), the same function for every NF, so
 * that the NFs of a chain agree on where a flow lives.
 */
static inline int
mbx_owner_by_host(const union mbx_addr *host, uint8_t family, uint16_t nb_workers)
{
	return (int)(rte_hash_crc(host, family == MBX_FAMILY_V6 ? 16 : 4, 0) % nb_workers);
}

/**
 * Another flow of this worker by its key (either direction), for an NF that
 * relates packets to flows other than their own: a firewall matching an
 * ICMP error to the connection it reports on. Flows are placed by owner(),
 * so the related flow is here when both are placed by the same host.
 * @param dir out (may be NULL): the direction @p key matched.
 * @return the flow, or NULL.
 */
static inline struct mbx_flow *
mbx_nf_flow_lookup(const struct mbx_nf_ctx *c, const struct mbx_flow_key *key, uint8_t *dir)
{
	return c->table != NULL ? mbx_table_lookup(c->table, key, dir) : NULL;
}

/**
 * Main lcore, every worker parked (in all_put): send a MARKER for move @p id
 * on @p port behind everything sent there (see mbx_marker.h). For steering.
 * @return markers sent, or -errno.
 */
int mbx_nf_send_marker(uint16_t port, uint64_t id);

/**
 * Drop @p m, counting it in the NF's counter @p counter (an index into
 * counter_names). The framework frees it after process() returns.
 */
static inline void
mbx_nf_drop(struct mbx_nf_ctx *c, struct rte_mbuf *m, unsigned int counter)
{
	c->counters[counter]++;
	mbx_pkt(m)->drop = (uint8_t)(counter + 1);
}

/**
 * Where exported state goes, one entry at a time.
 * @param key the flow, or for multi-flow state the NF's wider key written as
 *   a partial flow key (for example a host as @c src).
 * @param reply_key the reply-direction key of a flow, or NULL.
 * @return 0 to go on, or -errno to stop the export with that error.
 */
typedef int (*mbx_state_emit)(void *arg, const struct mbx_flow_key *key,
			      const struct mbx_flow_key *reply_key, const uint8_t *buf, size_t len);

/** The NF ops table. Only name and process are required. */
struct mbx_nf_ops {
	const char *name;	  /**< chain name, as in --nf NAME */
	const char *usage;	  /**< one line of "key=value" options for --help */
	uint32_t flow_state_size; /**< bytes of per-flow state; 0 = none */
	uint32_t state_version;	  /**< version of the NF's state messages */
	/**
	 * Full protobuf names of the NF's state messages, by scope (per-flow,
	 * multi-flow, all-flows; NULL: none), e.g. "mbx.v1.NatFlowState".
	 * GetInfo reports them, so that clients decode any NF's chunks.
	 */
	const char *state_types[3];
	/**
	 * Scopes that travel with a move, as bits (1 << MBX_SCOPE_*); 0: per-flow
	 * and multi-flow. Add all-flows when a destination needs the NF's
	 * instance state to take the flows (a firewall's rules); leave it out
	 * when that state is the instance's own configuration (a NAT's pool).
	 */
	uint8_t move_scopes;
	const char *const *counter_names; /**< the NF's counters, by index */
	uint16_t nb_counters;

	/**
	 * Main lcore, start-up: parse p->args (rte_kvargs) and build the
	 * instance with its all-flows state.
	 * @return the instance, or NULL with rte_errno set (the reason logged).
	 */
	void *(*create)(const struct mbx_nf_params *p);
	/** Main lcore, shutdown. */
	void (*destroy)(void *nf);
	/**
	 * Main lcore, once per worker before the workers start: per-worker
	 * data (ctx->priv), or NULL with rte_errno set on failure.
	 */
	void *(*worker_init)(void *nf, uint16_t worker, uint16_t nb_workers);
	/** Main lcore, after the workers stopped. */
	void (*worker_fini)(void *nf, void *priv);

	/**
	 * Which worker must own the flow of @p p, when the NF needs it placed
	 * by something other than the symmetric hash of its key (a NAT reply
	 * keyed by its external port, for example). Called on any worker and
	 * on the main lcore: read-only, lock-free.
	 * @return a worker index, or -1 for no preference.
	 */
	int (*owner)(const void *nf, const struct mbx_pkt *p, uint16_t nb_workers);

	/**
	 * Worker lcore: handle a burst. Each packet has pkt->flow set when the
	 * chain is stateful. Drop with mbx_nf_drop(); change pkt->out_port to
	 * send elsewhere.
	 */
	void (*process)(struct mbx_nf_ctx *c, struct rte_mbuf **pkts, uint16_t n);

	/** Worker lcore: @p f is about to be deleted; release what it holds. */
	void (*flow_free)(struct mbx_nf_ctx *c, struct mbx_flow *f);

	/**
	 * Worker lcore: encode this NF's state of @p f into @p buf.
	 * Called with @p buf NULL and @p cap 0 to ask whether there is any.
	 * @return bytes written, 0 if the NF holds no state for this flow,
	 *   -ENOBUFS if @p cap is too small, or another -errno.
	 */
	int (*flow_get)(struct mbx_nf_ctx *c, struct mbx_flow *f, uint8_t *buf, size_t cap);
	/**
	 * Worker lcore: install state decoded from @p buf into the zeroed or
	 * previous slot of @p f, claiming what it holds (a NAT port).
	 * @return 0, or -errno having changed nothing (-EBADMSG: undecodable,
	 *   -EBUSY: conflicts with state in this instance); mbx_nf_refuse()
	 *   says why.
	 */
	int (*flow_put)(struct mbx_nf_ctx *c, struct mbx_flow *f, const uint8_t *buf, size_t len);

	/** Worker lcore: emit this worker's multi-flow state matching @p flt. */
	int (*multi_get)(struct mbx_nf_ctx *c, const struct mbx_filter *flt, mbx_state_emit emit,
			 void *arg);
	/** Worker lcore (the owner of @p key): install one multi-flow entry. */
	int (*multi_put)(struct mbx_nf_ctx *c, const struct mbx_flow_key *key, const uint8_t *buf,
			 size_t len);
	/**
	 * Worker lcore: delete this worker's multi-flow state matching @p flt
	 * that no flow uses any more.
	 * @return entries deleted, or -errno.
	 */
	int (*multi_del)(struct mbx_nf_ctx *c, const struct mbx_filter *flt);
	/**
	 * Main lcore, every millisecond or so: work an NF does outside the
	 * fast path (writing finished flows to a file, for instance), fed by
	 * rings its workers fill. Must return quickly.
	 */
	void (*ctrl_poll)(void *nf);

	/** Main lcore, workers parked: emit the all-flows state. */
	int (*all_get)(void *nf, mbx_state_emit emit, void *arg);
	/**
	 * Main lcore, workers parked: check (@p commit false) or install
	 * (@p commit true) all-flows state. The framework commits only what
	 * every NF of the call accepted.
	 * @return 0, or -errno having changed nothing.
	 */
	int (*all_put)(void *nf, const uint8_t *buf, size_t len, bool commit);
};

/** Register an NF; called by MBX_NF_REGISTER from a constructor. */
void mbx_nf_register(const struct mbx_nf_ops *ops);

/** Find a registered NF by name, or NULL. */
const struct mbx_nf_ops *mbx_nf_find(const char *name);

/** Call @p cb for each registered NF, in name order. */
void mbx_nf_foreach(void (*cb)(const struct mbx_nf_ops *ops, void *arg), void *arg);

/** Register @p ops at program start. NF libraries are linked whole. */
#define MBX_NF_REGISTER(ops)             \
	RTE_INIT(mbx_nf_register_##ops)  \
	{                                \
		mbx_nf_register(&(ops)); \
	}

#endif /* MBX_NF_H */
