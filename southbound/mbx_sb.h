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

#include "mbx/v1/common.pb-c.h"
#include "mbx_pbconv.h"
#include "mbx_flow.h"
#include "mbx_worker.h"

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

/**
 * Send a response frame of @p call. @p more: further frames follow (a
 * stream); the call ends with the first frame sent without it.
 * @return 0, or -ECONNRESET if the client has gone (the call is over).
 */
int sb_reply(struct sb_call *call, const ProtobufCMessage *resp, bool more);

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

/** Keep @p call open after its handler returns (a subscription); see sb_call_on_close(). */
void sb_call_keep(struct sb_call *call, void (*on_close)(struct sb_call *call, void *arg),
		  void *arg);

/** The call id, for logs. */
uint64_t sb_call_id(const struct sb_call *call);

/** Index of NF @p name in the chain; "" gives -1 ("every NF"). @return it, or -ENOENT. */
int sb_nf_index(const char *name);

/** The events service's periodic work: deliver NOTIFY copies (sb_events.c). */
void sb_events_pump(void);

/** Forget the events service's state at shutdown. */
void sb_events_fini(void);

#endif /* MBX_SB_H */
