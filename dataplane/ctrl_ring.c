/* SPDX-License-Identifier: BSD-3-Clause */
/* Control requests to workers: see mbx_ctrl.h. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_pause.h>
#include <rte_ring.h>

#include "mbx_ctrl.h"
#include "mbx_worker.h"

/* Requests run per serve call: bounds the time a worker spends away from packets. */
#define CTRL_SERVE_MAX 4
/* Pauses before a waiter sleeps (a request of a few µs is answered meanwhile). */
#define SPINS_BEFORE_SLEEP 256
/* A waiter's sleep between checks, should a wake-up go missing (it cannot). */
#define WAIT_SLEEP_US 1000

void
mbx_wake_init(struct mbx_wake *k)
{
	k->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	atomic_init(&k->asleep, false);
}

void
mbx_wake_fini(struct mbx_wake *k)
{
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
}

void
mbx_wake(struct mbx_wake *k)
{
	uint64_t one = 1;

	/* pairs with mbx_wake_sleep(): what was published, then the flag's read */
	atomic_thread_fence(memory_order_seq_cst);
	if (k->fd >= 0 && atomic_load_explicit(&k->asleep, memory_order_relaxed)) {
		/* fails only when the counter is saturated: the sleeper is due anyway */
		ssize_t wr = write(k->fd, &one, sizeof(one));

		(void)wr;
	}
}

void
mbx_wake_sleep(struct mbx_wake *k, uint32_t us, bool (*ready)(void *arg), void *arg)
{
	struct pollfd pfd = {.fd = k->fd, .events = POLLIN};
	struct timespec ts = {.tv_sec = us / US_PER_S, .tv_nsec = (long)(us % US_PER_S) * 1000};
	uint64_t v;

	if (k->fd < 0) {
		if (!ready(arg))
			rte_delay_us_sleep(us);
		return;
	}
	atomic_store(&k->asleep, true); /* seq_cst: before ready()'s reads */
	if (!ready(arg) && ppoll(&pfd, 1, &ts, NULL) > 0) {
		ssize_t rd = read(k->fd, &v, sizeof(v));

		(void)rd;
	}
	atomic_store_explicit(&k->asleep, false, memory_order_relaxed);
}

/* The control thread's own wake-up, for its waits on workers. */
static _Thread_local struct mbx_wake waiter = {.fd = -1};
static _Thread_local bool waiter_ready;

static struct mbx_wake *
my_waiter(void)
{
	if (!waiter_ready) {
		mbx_wake_init(&waiter);
		waiter_ready = true;
	}
	return &waiter;
}

static bool
req_done(void *arg)
{
	return atomic_load_explicit(&((struct mbx_ctrl_req *)arg)->done, memory_order_acquire);
}

/* Wait until @cond(@arg): spin a little, then sleep until woken through @k. */
static void
wait_until(struct mbx_wake *k, bool (*cond)(void *arg), void *arg)
{
	for (unsigned int spins = 0; !cond(arg); spins++) {
		if (spins < SPINS_BEFORE_SLEEP)
			rte_pause();
		else
			mbx_wake_sleep(k, WAIT_SLEEP_US, cond, arg);
	}
}

int
mbx_ctrl_post(struct mbx_worker *w, struct mbx_ctrl_req *r)
{
	atomic_store_explicit(&r->done, 0, memory_order_relaxed);
	if (rte_ring_sp_enqueue(w->req, r) != 0)
		return -ENOBUFS;
	mbx_wake(&w->wake);
	return 0;
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
	r.waiter = my_waiter();
	rc = mbx_ctrl_post(w, &r);
	if (rc < 0)
		return rc;
	wait_until(r.waiter, req_done, &r);
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
			struct mbx_wake *waiter = r->waiter; /* @r is gone once done */

			atomic_store_explicit(&r->done, 1, memory_order_release);
			if (waiter != NULL)
				mbx_wake(waiter);
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
	unsigned int all;	 /* workers to park */
	struct mbx_wake *waiter; /* the parking thread, woken when all are parked */
};

static bool
released(void *arg)
{
	return atomic_load_explicit(&((struct park *)arg)->release, memory_order_acquire);
}

static bool
all_parked(void *arg)
{
	struct park *p = arg;

	return atomic_load_explicit(&p->parked, memory_order_acquire) == p->all;
}

/* Parked: asleep until released (mbx_ctrl_park_all() wakes every worker). */
static int
park_fn(struct mbx_worker *w, void *arg)
{
	struct park *p = arg;

	if (atomic_fetch_add(&p->parked, 1) + 1 == p->all)
		mbx_wake(p->waiter);
	wait_until(&w->wake, released, p);
	return 0;
}

int
mbx_ctrl_park_all(struct mbx_dp *dp, int (*fn)(struct mbx_dp *dp, void *arg), void *arg)
{
	struct mbx_ctrl_req reqs[RTE_MAX_LCORE];
	struct park p = {.all = dp->nb_workers, .waiter = my_waiter()};
	uint16_t posted = 0;
	int rc = 0;

	for (; posted < dp->nb_workers; posted++) {
		reqs[posted] = (struct mbx_ctrl_req){.fn = park_fn, .arg = &p, .waiter = p.waiter};
		rc = mbx_ctrl_post(dp->workers[posted], &reqs[posted]);
		if (rc < 0)
			break;
	}
	if (rc == 0) {
		wait_until(p.waiter, all_parked, &p);
		rc = fn(dp, arg);
	}
	atomic_store_explicit(&p.release, 1, memory_order_release);
	for (uint16_t i = 0; i < posted; i++)
		mbx_wake(&dp->workers[i]->wake);
	for (uint16_t i = 0; i < posted; i++)
		wait_until(p.waiter, req_done, &reqs[i]);
	return rc;
}
