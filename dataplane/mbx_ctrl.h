/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Control requests to workers.
 *
 * Theory of operation: the control plane (the main lcore) never touches a
 * worker's table or NF state itself. It posts a request, a function and its
 * argument, on the worker's request ring; the worker runs it between two
 * bursts, so the request is ordered with the packets of every flow the worker
 * owns: packets before it were processed with the old state, packets after
 * it see the new. The worker sets @c done, or, for an asynchronous request,
 * puts it on its response ring and writes its eventfd so that the control
 * loop wakes up.
 *
 * A request function must take a bounded time (a slice of at most a few
 * thousand flows); long operations post one slice after another.
 *
 * mbx_ctrl_park_all() stops every worker between bursts and runs a function
 * on the calling lcore meanwhile: for instance-wide (all-flows) state that
 * several workers read.
 *
 * One control thread posts requests (the rings are single-producer).
 */
#ifndef MBX_CTRL_H
#define MBX_CTRL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct mbx_dp;
struct mbx_worker;

/**
 * A thread that sleeps when it has nothing to do, and the eventfd that wakes
 * it: a worker idle between polls, the control thread waiting for a worker.
 * On two shared cores a waiter that spins takes the core from the thread it
 * waits for; one that sleeps a fixed time answers late.
 */
struct mbx_wake {
	int fd;		     /**< eventfd, or -1 (then the sleeper just sleeps) */
	_Atomic bool asleep; /**< in mbx_wake_sleep() */
};

/** Open @p k's eventfd (on failure the sleeper only sleeps). */
void mbx_wake_init(struct mbx_wake *k);
void mbx_wake_fini(struct mbx_wake *k);

/** Wake @p k's sleeper if it sleeps; call after publishing what it waits for. */
void mbx_wake(struct mbx_wake *k);

/**
 * Sleep up to @p us, until mbx_wake(), or not at all if @p ready(@p arg)
 * (checked after announcing the sleep, so a wake-up is never missed).
 */
void mbx_wake_sleep(struct mbx_wake *k, uint32_t us, bool (*ready)(void *arg), void *arg);

/** A request: runs on the worker's lcore, returns 0 or -errno. */
typedef int (*mbx_ctrl_fn)(struct mbx_worker *w, void *arg);

struct mbx_ctrl_req {
	mbx_ctrl_fn fn;
	void *arg;
	int rc;			 /**< fn's result, valid once done (or on the response ring) */
	bool async;		 /**< true: answer on the response ring instead of @c done */
	_Atomic int done;	 /**< set by the worker for a synchronous request */
	struct mbx_wake *waiter; /**< woken once @c done is set, or NULL */
	void *cookie;		 /**< for the caller */
};

/**
 * Post @p r (fn, arg, async set by the caller) to @p w.
 * @return 0, or -ENOBUFS when the request ring is full.
 */
int mbx_ctrl_post(struct mbx_worker *w, struct mbx_ctrl_req *r);

/** The next answered asynchronous request of @p w, or NULL. */
struct mbx_ctrl_req *mbx_ctrl_reply(struct mbx_worker *w);

/**
 * Run @p fn on @p w's lcore and wait for it. The worker must be running its
 * loop (or the caller must be that worker's lcore, which runs it directly).
 * @return fn's result, or -ENOBUFS.
 */
int mbx_ctrl_call(struct mbx_worker *w, mbx_ctrl_fn fn, void *arg);

/** Run @p fn on every worker in turn; stop at the first error. @return 0 or it. */
int mbx_ctrl_call_all(struct mbx_dp *dp, mbx_ctrl_fn fn, void *arg);

/** Worker side: run the waiting requests. @return how many ran. */
unsigned int mbx_ctrl_serve(struct mbx_worker *w);

/**
 * Park every worker between bursts, run @p fn on the calling lcore, release
 * them. The workers must be running their loops.
 * @return fn's result, or -ENOBUFS.
 */
int mbx_ctrl_park_all(struct mbx_dp *dp, int (*fn)(struct mbx_dp *dp, void *arg), void *arg);

#endif /* MBX_CTRL_H */
