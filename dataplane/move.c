/* SPDX-License-Identifier: BSD-3-Clause */
/* A move's runtime on the workers: see mbx_move.h. */
#include <errno.h>

#include <rte_pause.h>

#include "mbx_move.h"
#include "mbx_worker.h"

#define TOKEN_TRIES 1000000

static struct mbx_move_rt *_Atomic moves[MBX_MOVES_MAX];

int
mbx_move_rt_add(struct mbx_move_rt *rt)
{
	for (int i = 0; i < MBX_MOVES_MAX; i++) {
		struct mbx_move_rt *none = NULL;

		if (atomic_compare_exchange_strong(&moves[i], &none, rt))
			return 0;
	}
	return -ENOSPC;
}

void
mbx_move_rt_del(struct mbx_move_rt *rt)
{
	for (int i = 0; i < MBX_MOVES_MAX; i++) {
		struct mbx_move_rt *want = rt;

		atomic_compare_exchange_strong(&moves[i], &want, NULL);
	}
}

void
mbx_move_redirect(struct mbx_worker *w, void *arg, struct rte_mbuf **pkts, uint16_t n)
{
	struct mbx_move_rt *rt = arg;
	unsigned int k = rte_ring_mp_enqueue_burst(rt->ring, (void **)pkts, n, NULL);

	w->stats[MBX_WSTAT_EV_REDIRECTED] += k;
	atomic_fetch_add_explicit(&rt->redirected, k, memory_order_relaxed);
	mbx_wake(&rt->wake);
	if (k < n) {
		rte_pktmbuf_free_bulk(pkts + k, n - k);
		atomic_fetch_add_explicit(&rt->overflow, n - k, memory_order_relaxed);
	}
}

void
mbx_move_marker(struct mbx_worker *w, uint64_t id, uint16_t index, uint16_t count)
{
	uintptr_t token =
		1 | (uintptr_t)w->id << 1 | (uintptr_t)index << 17 | (uintptr_t)count << 33;

	for (int i = 0; i < MBX_MOVES_MAX; i++) {
		struct mbx_move_rt *rt = atomic_load_explicit(&moves[i], memory_order_acquire);

		if (rt == NULL || rt->id != id)
			continue;
		/* the token must not be lost: the control plane empties the ring */
		for (int t = 0; rte_ring_mp_enqueue(rt->ring, (void *)token) != 0; t++) {
			if (t == TOKEN_TRIES) {
				atomic_fetch_add_explicit(&rt->overflow, 1, memory_order_relaxed);
				break;
			}
			rte_pause();
		}
		mbx_wake(&rt->wake);
		return;
	}
}
