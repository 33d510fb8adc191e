/* SPDX-License-Identifier: BSD-3-Clause */
/* Control requests to workers: see mbx_ctrl.h. */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <unistd.h>

#include <rte_lcore.h>
#include <rte_pause.h>
#include <rte_ring.h>

#include "mbx_ctrl.h"
#include "mbx_worker.h"

/* Requests run per serve call: bounds the time a worker spends away from packets. */
#define CTRL_SERVE_MAX 4
/* Pauses before a waiter yields its core: on shared cores the thread it
 * waits for may need that core (a few µs of spinning on dedicated ones). */
#define SPINS_BEFORE_YIELD 2048

static inline void
backoff(unsigned int *spins)
{
	if (++*spins < SPINS_BEFORE_YIELD)
		rte_pause();
	else
		sched_yield();
}

int
mbx_ctrl_post(struct mbx_worker *w, struct mbx_ctrl_req *r)
{
	atomic_store_explicit(&r->done, 0, memory_order_relaxed);
	return rte_ring_sp_enqueue(w->req, r) == 0 ? 0 : -ENOBUFS;
}

struct mbx_ctrl_req *
mbx_ctrl_reply(struct mbx_worker *w)
{
	void *r;

	return rte_ring_sc_dequeue(w->resp, &r) == 0 ? r : NULL;
}

int
mbx_ctrl_call(struct mbx_worker *w, mbx_ctrl_fn fn, void *arg)
{
	struct mbx_ctrl_req r = {.fn = fn, .arg = arg};
	int rc;

	if (rte_lcore_id() == w->lcore)
		return fn(w, arg);
	unsigned int spins = 0;

	rc = mbx_ctrl_post(w, &r);
	if (rc < 0)
		return rc;
	while (!atomic_load_explicit(&r.done, memory_order_acquire))
		backoff(&spins);
	return r.rc;
}

int
mbx_ctrl_call_all(struct mbx_dp *dp, mbx_ctrl_fn fn, void *arg)
{
	for (uint16_t i = 0; i < dp->nb_workers; i++) {
		int rc = mbx_ctrl_call(dp->workers[i], fn, arg);

		if (rc < 0)
			return rc;
	}
	return 0;
}

unsigned int
mbx_ctrl_serve(struct mbx_worker *w)
{
	void *reqs[CTRL_SERVE_MAX];
	unsigned int n, i, answered = 0;

	n = rte_ring_sc_dequeue_burst(w->req, reqs, CTRL_SERVE_MAX, NULL);
	for (i = 0; i < n; i++) {
		struct mbx_ctrl_req *r = reqs[i];

		r->rc = r->fn(w, r->arg);
		w->stats[MBX_WSTAT_CTRL_REQUESTS]++;
		if (r->async) {
			/* never full: the control plane keeps fewer in flight (sb_ctrl_post) */
			rte_ring_sp_enqueue(w->resp, r);
			answered++;
		} else {
			atomic_store_explicit(&r->done, 1, memory_order_release);
		}
	}
	if (answered > 0 && w->resp_fd >= 0) {
		uint64_t one = 1;
		/* fails only when the counter is saturated: the reader is due anyway */
		ssize_t wr = write(w->resp_fd, &one, sizeof(one));

		(void)wr;
	}
	return n;
}

struct park {
	_Atomic unsigned int parked;
	_Atomic int release;
};

static int
park_fn(struct mbx_worker *w, void *arg)
{
	struct park *p = arg;
	unsigned int spins = 0;

	(void)w;
	atomic_fetch_add(&p->parked, 1);
	while (!atomic_load_explicit(&p->release, memory_order_acquire))
		backoff(&spins);
	return 0;
}

int
mbx_ctrl_park_all(struct mbx_dp *dp, int (*fn)(struct mbx_dp *dp, void *arg), void *arg)
{
	struct mbx_ctrl_req reqs[RTE_MAX_LCORE];
	struct park p = {0};
	uint16_t posted = 0;
	unsigned int spins = 0;
	int rc = 0;

	for (; posted < dp->nb_workers; posted++) {
		reqs[posted] = (struct mbx_ctrl_req){.fn = park_fn, .arg = &p};
		rc = mbx_ctrl_post(dp->workers[posted], &reqs[posted]);
		if (rc < 0)
			break;
	}
	if (rc == 0) {
		while (atomic_load(&p.parked) < dp->nb_workers)
			backoff(&spins);
		rc = fn(dp, arg);
	}
	atomic_store_explicit(&p.release, 1, memory_order_release);
	for (uint16_t i = 0; i < posted; i++)
		while (!atomic_load_explicit(&reqs[i].done, memory_order_acquire))
			backoff(&spins);
	return rc;
}
