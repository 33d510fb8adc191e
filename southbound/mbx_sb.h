/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The southbound server inside mbxd: the control protocol's server side.
 *
 * Theory of operation: one libevent loop on the main lcore accepts clients
 * on a unix socket or TCP, reads frames (mbx_frame.h) from each connection,
 * and dispatches each call by its method path to a handler. A handler either
 * answers at once, or starts a job: a step function the loop runs again and
 * again, each step doing one bounded slice (a control request to one worker,
 * see mbx_ctrl.h) and streaming what it got. A job pauses while its
 * connection's output is above a high watermark and resumes when the client
 * has read it, so a slow reader costs memory only up to that mark.
 *
 * A malformed frame or envelope closes that connection with a logged reason;
 * an unknown method or an undecodable request gets an error Status; nothing
 * else is disturbed. Main lcore only.
 */
#ifndef MBX_SB_H
#define MBX_SB_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>
#include <rte_log.h>

#include "mbx/v1/common.pb-c.h"
#include "mbx_ctrl.h"
#include "mbx_pbconv.h"
#include "mbx_events.h"
#include "mbx_flow.h"
#include "mbx_worker.h"

struct bufferevent;

/** The southbound's log type (user.mbx.southbound) and its log line. */
extern int sb_logtype;
#define SB_LOG(level, fmt, ...) \
	rte_log(RTE_LOG_##level, sb_logtype, "mbx.southbound: " fmt "\n", ##__VA_ARGS__)

struct event_base;
struct sb_call;

/** A handler: decode @p payload, answer or start a job. @return 0 or -errno (answered for you). */
typedef int (*sb_handler)(struct sb_call *call, const uint8_t *payload, size_t len);

struct sb_method {
	const char *path; /**< "/mbx.v1.State/GetPerflow" */
	sb_handler fn;
};

/** Methods of each service (sb_dataplane.c, sb_state.c, sb_events.c). */
extern const struct sb_method sb_dataplane_methods[];
extern const struct sb_method sb_state_methods[];
extern const struct sb_method sb_events_methods[];
extern const struct sb_method sb_steer_methods[];

/** The dataplane and the loop the server runs in. */
struct mbx_dp *sb_dp(void);
struct event_base *sb_base(void);
/** Small frames (acks, a move's END) go at once: Nagle off on a TCP socket. */
void sb_nodelay(int fd);
/**
 * Move what @p bev's socket holds, up to @p max bytes, into its input in one
 * read: libevent 2.1 reads at most 4 KiB per turn of the loop.
 */
void sb_read_pending(struct bufferevent *bev, size_t max);

/**
 * Send a response frame of @p call. @p more: further frames follow (a
 * stream); the call ends with the first frame sent without it.
 * @return 0, or -ECONNRESET if the client has gone (the call is over).
 */
int sb_reply(struct sb_call *call, const ProtobufCMessage *resp, bool more);

/**
 * As sb_reply(), with the Response message already encoded: @p len bytes at
 * @p payload (copied).
 */
int sb_reply_payload(struct sb_call *call, const uint8_t *payload, size_t len, bool more);

/** End @p call with an error Status {code = @p err (an errno), message}. */
int sb_reply_error(struct sb_call *call, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/** Can @p call stream more now (its connection's output is below the high mark)? */
bool sb_call_writable(const struct sb_call *call);

/**
 * A job step: do one slice of work for @p call; return true when the call
 * is over (answered), false to be run again.
 */
typedef bool (*sb_step)(struct sb_call *call, void *job);

/**
 * Make @p call a job: @p step runs from the loop until it returns true, or
 * until the client goes away; then @p job_free(@p job) runs.
 */
void sb_call_start_job(struct sb_call *call, sb_step step, void *job, void (*job_free)(void *));

/**
 * From a step: do not run the step again until sb_call_wake() (it waits for
 * a worker's answer, see sb_ctrl_post()). Without this, a step that returns
 * false runs again at once.
 */
void sb_call_sleep(struct sb_call *call);

/** Run the step of a sleeping @p call again (no-op if it is not sleeping). */
void sb_call_wake(struct sb_call *call);

/**
 * A control request a job sends to a worker without waiting for it: the
 * worker answers on its response ring and writes an eventfd; the loop then
 * marks it answered and wakes @c call (sb_call_wake()).
 */
struct sb_ctrl {
	struct mbx_ctrl_req req; /**< req.rc is fn's result once answered */
	struct sb_call *call;	 /**< woken when answered, or NULL */
	uint16_t worker;
	bool pending; /**< posted, not answered yet */
};

/**
 * Post fn(@p worker, @p arg) for @p call, which usually sleeps until it is
 * answered (sb_call_sleep()). @p c and @p arg must live until then: a job
 * that goes away first waits with sb_ctrl_wait().
 * @return 0; -ENOBUFS if the worker's ring is full (post again later); -errno.
 */
int sb_ctrl_post(struct sb_ctrl *c, uint16_t worker, mbx_ctrl_fn fn, void *arg,
		 struct sb_call *call);

/** Wait until @p c is answered, outside the loop (nobody is woken). */
void sb_ctrl_wait(struct sb_ctrl *c);

/** Keep @p call open after its handler returns (a subscription); see sb_call_on_close(). */
void sb_call_keep(struct sb_call *call, void (*on_close)(struct sb_call *call, void *arg),
		  void *arg);

/** The call id, for logs. */
uint64_t sb_call_id(const struct sb_call *call);

/* State records and wire chunks (sb_state.c). */

struct mbx_state_rec;

/**
 * Bytes of the StateChunk of record @p r of NF @p nf at state @p version,
 * encoded as protobuf-c encodes it (sb_chunk_put()).
 */
size_t sb_chunk_size(const struct mbx_state_rec *r, const char *nf, uint32_t version);

/** Write that StateChunk at @p out. @return the byte after it. */
uint8_t *sb_chunk_put(uint8_t *out, const struct mbx_state_rec *r, const char *nf,
		      uint32_t version);

/**
 * An import: chunks grouped by the worker owning each key, installed in
 * slices (all-flows first), all or nothing: a failing step undoes every
 * slice this import installed. After a run, more chunks may be added and
 * run; sb_import_undo() removes everything installed so far.
 */
struct sb_import;

struct sb_import *sb_import_new(void);
void sb_import_free(struct sb_import *im);

/**
 * Add a chunk from its encoded bytes (a StateChunk as on the wire), without
 * decoding it into protobuf-c structures; @p scope -1 takes any scope.
 * @return 0, or an errno with a reason in @p msg (EBADMSG if it does not decode).
 */
int sb_import_add_wire(struct sb_import *im, const uint8_t *buf, size_t len, int scope, char *msg,
		       size_t mlen);

/** Install one slice; @p done when nothing is left. @return 0 or -errno (everything undone). */
int sb_import_step(struct sb_import *im, bool *done, char *msg, size_t mlen);

/** Install everything added. @return 0 or -errno (everything undone). */
int sb_import_run(struct sb_import *im, char *msg, size_t mlen);

void sb_import_undo(struct sb_import *im);
uint64_t sb_import_installed(const struct sb_import *im);

/** Index of NF @p name in the chain; "" gives -1 ("every NF"). @return it, or -ENOENT. */
int sb_nf_index(const char *name);

/**
 * Enable an event rule on every worker (sb_events.c). @p limit: BUFFER
 * packets per worker (0: the default); @p redirect: REDIRECT's hook.
 * @return the rule id, or 0 with a reason in @p msg.
 */
uint32_t sb_rule_add(uint8_t action, const struct mbx_filter *f, uint32_t limit,
		     mbx_redirect_fn redirect, void *arg, char *msg, size_t mlen);

/**
 * Remove rule @p id (or, with id 0, every rule whose filter is @p f) from
 * every worker, processing (or with @p drop, dropping) what it held, in
 * order, RELEASE_SLICE packets per request: a worker with much to release
 * goes on holding what comes meanwhile, behind it, and serves its queues
 * between two slices. Returns when nothing is held any more. @p released,
 * @p dropped and @p overflow (each may be NULL): packets processed, dropped on
 * release, and dropped while held because the buffer was full.
 * @return rules removed.
 */
uint32_t sb_rule_remove(uint32_t id, const struct mbx_filter *f, bool drop, uint64_t *released,
			uint64_t *dropped, uint64_t *overflow);

/**
 * rte_ring_free() @p r once the loop has polled and written what was ready
 * (or in sb_events_fini()): it clears the ring's memory (0.18 ms for 64k
 * entries, traced), work no move should wait for.
 */
void sb_ring_free_later(struct rte_ring *r);

/** The moves' peer listener (sb_move.c), on @p addr (NULL: 127.0.0.1, any port). */
int sb_move_init(const char *addr);
void sb_move_fini(void);
/** Its address, host:port. */
const char *sb_move_peer_addr(void);
extern const struct sb_method sb_move_methods[];

/** The events service's periodic work: deliver NOTIFY copies (sb_events.c). */
void sb_events_pump(void);

/** Forget the events service's state at shutdown. */
void sb_events_fini(void);

#endif /* MBX_SB_H */
