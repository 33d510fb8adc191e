/* SPDX-License-Identifier: BSD-3-Clause */
/* Workers: the run-to-completion loop, hand-off and the NF chain. See mbx_worker.h. */
#include <sys/prctl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include <rte_thash.h>

#include "mbx_ctrl.h"
#include "mbx_log.h"
#include "mbx_marker.h"
#include "mbx_worker.h"

const char *const mbx_wstat_names[MBX_WSTAT_MAX] = {
#define X(e, s) s,
	MBX_WORKER_COUNTERS(X)
#undef X
};

/* A Toeplitz key with a 16-bit period hashes both directions of a flow alike. */
const uint8_t mbx_rss_key[MBX_RSS_KEY_LEN] = {
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
};

/* Expired flows looked at per loop, at most. */
#define EXPIRE_BUDGET 32
/* Attempts to place a burst on a TX queue that is momentarily full. */
#define TX_RETRIES 8
/* How long control work waits, at most, while RX is busy. */
#define CTRL_DEFER_US 10000
/* How long a worker waits, at most, for a full TX queue to take a burst. */
#define TX_STALL_US 10000

static _Atomic unsigned int name_seq;

uint32_t
mbx_flow_hash(const struct mbx_flow_key *k)
{
	uint32_t t[9];
	unsigned int len;

	if (k->family == MBX_FAMILY_V6) {
		for (int i = 0; i < 4; i++) {
			t[i] = rte_be_to_cpu_32(((const rte_be32_t *)k->src.v6)[i]);
			t[4 + i] = rte_be_to_cpu_32(((const rte_be32_t *)k->dst.v6)[i]);
		}
		len = 8;
	} else {
		t[0] = rte_be_to_cpu_32(k->src.v4);
		t[1] = rte_be_to_cpu_32(k->dst.v4);
		len = 2;
	}
	/* as a NIC does: ports for TCP and UDP only */
	if (k->proto == IPPROTO_TCP || k->proto == IPPROTO_UDP)
		t[len++] = (uint32_t)rte_be_to_cpu_16(k->sport) << 16 | rte_be_to_cpu_16(k->dport);
	return rte_softrss(t, len, mbx_rss_key);
}

uint16_t
mbx_owner(const struct mbx_dp *dp, const struct mbx_pkt *p)
{
	const struct mbx_chain *c = &dp->chain;

	if (dp->nb_workers == 1)
		return 0;
	for (int k = 0; k < c->n; k++) {
		int i = p->side == MBX_SIDE_INSIDE ? k : c->n - 1 - k;
		int o;

		if (c->nf[i].ops->owner == NULL)
			continue;
		o = c->nf[i].ops->owner(c->nf[i].nf, p, dp->nb_workers);
		if (o >= 0)
			return (uint16_t)(o % dp->nb_workers);
	}
	return (uint16_t)((mbx_flow_hash(&p->key) & (MBX_RETA_SIZE - 1)) % dp->nb_workers);
}

static void
free_flow(struct mbx_worker *w, struct mbx_flow *f)
{
	const struct mbx_chain *c = &w->dp->chain;

	for (int i = 0; i < c->n; i++)
		if (c->nf[i].ops->flow_free != NULL)
			c->nf[i].ops->flow_free(&w->nf[i], f);
	mbx_table_del(w->table, f);
}

void
mbx_worker_del_flow(struct mbx_worker *w, struct mbx_flow *f)
{
	free_flow(w, f);
	w->stats[MBX_WSTAT_FLOWS_DELETED]++;
}

static int
expire_cb(struct mbx_flow *f, void *arg)
{
	struct mbx_worker *w = arg;

	free_flow(w, f);
	w->stats[MBX_WSTAT_FLOWS_EXPIRED]++;
	return 0;
}

unsigned int
mbx_worker_expire(struct mbx_worker *w, uint64_t now, unsigned int budget)
{
	return mbx_table_expire(w->table, now, budget, expire_cb, w);
}

static unsigned int drain_txring(struct mbx_worker *w, uint16_t port);

/*
 * A full TX queue is back-pressure, not loss: the worker retries, then waits
 * for the port (or the peer it shares a core with) up to TX_STALL_US before
 * it drops what is left; meanwhile its RX queues fill, and what overflows
 * there is counted as rx_missed. A port that stalled that long (its peer is
 * gone) gets only the quick retries until it takes a packet again, so that
 * it cannot slow the others down. A port another worker transmits on (its
 * TX ring) is waited for alike; meanwhile this worker empties the TX rings
 * it serves, as the other may be waiting for one of them.
 */
static uint16_t
tx_burst(struct mbx_worker *w, uint16_t port, struct rte_mbuf **pkts, uint16_t n)
{
	struct rte_ring *ring = w->txq[port] < 0 ? w->dp->txring[port] : NULL;
	uint64_t deadline = 0;
	uint16_t sent = 0;

	for (int i = 0; sent < n; i++) {
		uint16_t k = ring != NULL
				     ? rte_ring_mp_enqueue_burst(ring, (void **)pkts + sent,
								 n - sent, NULL)
				     : rte_eth_tx_burst(port, w->txq[port], pkts + sent, n - sent);

		sent += k;
		if (k > 0)
			w->tx_stalled[port] = false;
		if (sent == n || i < TX_RETRIES)
			continue;
		if (w->tx_stalled[port])
			break;
		if (deadline == 0) {
			deadline = rte_get_timer_cycles() +
				   rte_get_timer_hz() * TX_STALL_US / US_PER_S;
		} else if (rte_get_timer_cycles() > deadline) {
			w->tx_stalled[port] = true;
			break;
		}
		for (uint16_t p = 0; ring != NULL && p < w->dp->nb_ports; p++)
			if (w->drains[p])
				drain_txring(w, p);
		if (w->dp->idle_sleep_us > 0)
			rte_delay_us_sleep(1);
		else
			rte_pause();
	}
	if (ring == NULL)
		w->stats[MBX_WSTAT_TX] += sent;
	return sent;
}

static void
drop_unsent(struct mbx_worker *w, uint16_t port, struct rte_mbuf **pkts, uint16_t sent, uint16_t n)
{
	if (likely(sent == n))
		return;
	rte_pktmbuf_free_bulk(pkts + sent, n - sent);
	w->stats[MBX_WSTAT_TX_DROP] += n - sent;
	w->port_tx_drop[port] += n - sent;
}

static void
flush_port(struct mbx_worker *w, uint16_t port)
{
	struct mbx_txbuf *b = &w->tx[port];
	uint16_t n = b->n, sent;

	b->n = 0;
	sent = tx_burst(w, port, b->pkts, n);
	drop_unsent(w, port, b->pkts, sent, n);
}

void
mbx_worker_flush(struct mbx_worker *w)
{
	for (uint16_t port = 0; port < w->dp->nb_ports; port++)
		if (w->tx[port].n > 0)
			flush_port(w, port);
}

static unsigned int
drain_txring(struct mbx_worker *w, uint16_t port)
{
	struct rte_mbuf *pkts[MBX_BURST];
	uint16_t n, sent;

	n = rte_ring_sc_dequeue_burst(w->dp->txring[port], (void **)pkts, MBX_BURST, NULL);
	if (n == 0)
		return 0;
	sent = tx_burst(w, port, pkts, n);
	drop_unsent(w, port, pkts, sent, n);
	return n;
}

static inline void
txq_put(struct mbx_worker *w, struct rte_mbuf *m, uint16_t port)
{
	struct mbx_txbuf *b;

	if (unlikely(port >= w->dp->nb_ports)) {
		rte_pktmbuf_free(m);
		w->stats[MBX_WSTAT_TX_DROP]++;
		return;
	}
	b = &w->tx[port];
	if (unlikely(b->n == RTE_DIM(b->pkts)))
		flush_port(w, port);
	b->pkts[b->n++] = m;
}

/*
 * Find or create the flow entry of each packet. A packet of a new flow gets a
 * pending entry (keyed by its originator key only); run_chain() confirms it
 * if the packet survives the chain. Packets that find the table full are
 * dropped and counted.
 */
static uint16_t
lookup(struct mbx_worker *w, struct rte_mbuf **pkts, uint16_t n, uint64_t now)
{
	const struct mbx_flow_key *keys[MBX_BURST];
	struct mbx_flow *flows[MBX_BURST];
	uint8_t dirs[MBX_BURST];
	uint16_t i, k = 0;

	for (i = 0; i < n; i++)
		keys[i] = &mbx_pkt(pkts[i])->key;
	mbx_table_lookup_bulk(w->table, keys, n, flows, dirs);
	if (unlikely(w->ev.n > 0))
		n = mbx_events_apply(w, pkts, flows, dirs, n);
	for (i = 0; i < n; i++) {
		struct mbx_pkt *p = mbx_pkt(pkts[i]);
		struct mbx_flow *f = flows[i];

		if (f != NULL) {
			p->dir = dirs[i];
		} else {
			f = mbx_table_add(w->table, &p->key,
					  mbx_tmo_class_of(p->key.proto, p->tcp_flags), now);
			if (f != NULL) {
				f->flags |= MBX_FLOW_F_PENDING;
				if (p->side == MBX_SIDE_OUTSIDE)
					f->flags |= MBX_FLOW_F_FROM_OUTSIDE;
				w->new_flows[w->nb_new++] = f;
				p->flow_new = 1;
				p->dir = MBX_DIR_ORIG;
			} else if (rte_errno == EEXIST) {
				/* an earlier packet of this burst created it */
				f = mbx_table_lookup(w->table, &p->key, &p->dir);
			}
			if (f == NULL) {
				w->stats[MBX_WSTAT_TABLE_FULL]++;
				rte_pktmbuf_free(pkts[i]);
				continue;
			}
		}
		p->flow = f;
		mbx_table_touch(w->table, f, now, p->key.proto, p->tcp_flags, p->dir);
		pkts[k++] = pkts[i];
	}
	return k;
}

/* Free the packets an NF dropped; keep the others in order. */
static uint16_t
compact(struct mbx_worker *w, struct rte_mbuf **pkts, uint16_t n)
{
	uint16_t k = 0;

	for (uint16_t i = 0; i < n; i++) {
		if (unlikely(mbx_pkt(pkts[i])->drop != 0)) {
			w->stats[MBX_WSTAT_NF_DROP]++;
			rte_pktmbuf_free(pkts[i]);
		} else {
			pkts[k++] = pkts[i];
		}
	}
	return k;
}

/*
 * A new flow's entry lives if its first packet survived the chain; the
 * reverse of that packet's final key (after any rewrite) becomes its reply key.
 */
static void
finish_new_flows(struct mbx_worker *w, struct rte_mbuf **pkts, uint16_t n)
{
	for (uint16_t i = 0; i < n; i++) {
		struct mbx_pkt *p = mbx_pkt(pkts[i]);
		struct mbx_flow_key rev;

		if (!p->flow_new)
			continue;
		p->flow->flags &= ~MBX_FLOW_F_PENDING;
		w->stats[MBX_WSTAT_FLOWS_CREATED]++;
		mbx_flow_key_reverse(&rev, &p->key);
		if (mbx_table_set_reply_key(w->table, p->flow, &rev) < 0)
			w->stats[MBX_WSTAT_REPLY_KEY_CONFLICT]++;
	}
	for (uint16_t j = 0; j < w->nb_new; j++)
		if (w->new_flows[j]->flags & MBX_FLOW_F_PENDING)
			free_flow(w, w->new_flows[j]);
	w->nb_new = 0;
}

/* Run the chain over packets of one side that this worker owns, then queue them for TX. */
static void
run_chain(struct mbx_worker *w, struct rte_mbuf **pkts, uint16_t n, uint8_t side)
{
	const struct mbx_chain *c = &w->dp->chain;
	uint64_t now = rte_rdtsc();

	w->now = now;
	if (w->table != NULL) {
		n = lookup(w, pkts, n, now);
	} else if (unlikely(w->ev.n > 0)) {
		struct mbx_flow *none[MBX_BURST] = {NULL};
		uint8_t dirs[MBX_BURST];

		n = mbx_events_apply(w, pkts, none, dirs, n);
	}
	for (int k = 0; k < c->n && n > 0; k++) {
		int i = side == MBX_SIDE_INSIDE ? k : c->n - 1 - k;

		w->nf[i].now = now;
		c->nf[i].ops->process(&w->nf[i], pkts, n);
		n = compact(w, pkts, n);
	}
	if (w->nb_new > 0)
		finish_new_flows(w, pkts, n);
	for (uint16_t i = 0; i < n; i++)
		txq_put(w, pkts[i], mbx_pkt(pkts[i])->out_port);
}

static void
handoff(struct mbx_worker *w, struct rte_mbuf **pkts, const uint16_t *dest, uint16_t n)
{
	struct rte_mbuf *batch[MBX_BURST];
	uint64_t done = 0; /* packets already enqueued, as a bit mask */

	for (uint16_t i = 0; i < n; i++) {
		uint16_t d = dest[i], k = 0, sent;

		if (done & (1ULL << i))
			continue;
		for (uint16_t j = i; j < n; j++) {
			if (dest[j] == d) {
				batch[k++] = pkts[j];
				done |= 1ULL << j;
			}
		}
		sent = rte_ring_mp_enqueue_burst(w->dp->workers[d]->handoff, (void **)batch, k,
						 NULL);
		w->stats[MBX_WSTAT_HANDOFF_OUT] += sent;
		mbx_wake(&w->dp->workers[d]->wake);
		if (sent < k) {
			rte_pktmbuf_free_bulk(batch + sent, k - sent);
			w->stats[MBX_WSTAT_HANDOFF_DROP] += k - sent;
		}
	}
}

void
mbx_worker_rx(struct mbx_worker *w, struct rte_mbuf **pkts, uint16_t n, uint16_t port)
{
	struct mbx_dp *dp = w->dp;
	struct rte_mbuf *own[MBX_BURST], *away[MBX_BURST], *markers[MBX_BURST];
	uint16_t dest[MBX_BURST], nown = 0, naway = 0, nmark = 0;
	uint8_t side = mbx_port_side(port);
	uint16_t out = mbx_default_out(dp, port);

	RTE_ASSERT(n <= MBX_BURST);
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		struct mbx_pkt *p = mbx_pkt(m);
		enum mbx_parse_result r;

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void *));
		r = mbx_parse(m);
		p->in_port = (uint8_t)port;
		p->out_port = (uint8_t)out;
		p->side = side;
		p->flow = NULL;
		p->flow_new = 0;
		p->drop = 0;
		if (likely(r == MBX_PARSE_OK)) {
			if (dp->nb_workers > 1) {
				uint16_t o = mbx_owner(dp, p);

				if (o != w->id) {
					dest[naway] = o;
					away[naway++] = m;
					continue;
				}
			}
			own[nown++] = m;
			continue;
		}
		w->parse[r]++;
		if (r == MBX_PARSE_MARKER)
			markers[nmark++] = m;
		else if (r == MBX_PARSE_NON_IP)
			txq_put(w, m, out); /* a bump in the wire passes ARP and the like */
		else
			rte_pktmbuf_free(m);
	}
	if (nown > 0)
		run_chain(w, own, nown, side);
	if (naway > 0)
		handoff(w, away, dest, naway);
	/* behind every packet of the burst, here and in the other workers' rings */
	for (uint16_t i = 0; i < nmark; i++)
		mbx_marker_fan_out(w, markers[i]);
}

void
mbx_worker_owned(struct mbx_worker *w, struct rte_mbuf **pkts, uint16_t n)
{
	struct rte_mbuf *in[MBX_BURST], *out[MBX_BURST];
	uint16_t nin = 0, nout = 0;

	for (uint16_t i = 0; i <= n; i++) {
		bool marker = i < n && (pkts[i]->ol_flags & mbx_flag_marker);

		if (i < n && !marker) {
			if (mbx_pkt(pkts[i])->side == MBX_SIDE_INSIDE)
				in[nin++] = pkts[i];
			else
				out[nout++] = pkts[i];
			continue;
		}
		/* the end, or a marker: everything before it first */
		if (nin > 0)
			run_chain(w, in, nin, MBX_SIDE_INSIDE);
		if (nout > 0)
			run_chain(w, out, nout, MBX_SIDE_OUTSIDE);
		nin = nout = 0;
		if (marker)
			mbx_marker_meet(w, pkts[i]);
	}
}

/* An idle worker sleeps until then, unless work came meanwhile. */
static bool
has_work(void *arg)
{
	const struct mbx_worker *w = arg;

	return !rte_ring_empty(w->req) || !rte_ring_empty(w->handoff);
}

int
mbx_worker_loop(void *arg)
{
	struct mbx_worker *w = arg;
	struct mbx_dp *dp = w->dp;
	struct rte_mbuf *pkts[MBX_BURST];

	w->lcore = rte_lcore_id();
	/* an idle back-off sleeps what it asks, not the default 50 µs more */
	if (dp->idle_sleep_us > 0)
		prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	MBX_LOG(INFO, worker, "worker %u on lcore %u: %u RX queues", w->id, w->lcore, w->nb_rxq);
	const uint64_t ctrl_defer_max = rte_get_timer_hz() * CTRL_DEFER_US / US_PER_S;
	uint64_t ctrl_tsc = rte_get_timer_cycles(), ctrl_defer = 0;

	for (;;) {
		int st = atomic_load_explicit(&dp->run_state, memory_order_relaxed);
		uint64_t gen = atomic_load_explicit(&dp->drain_gen, memory_order_relaxed);
		unsigned int work = 0;
		bool rx_busy = false;
		uint16_t n;

		if (st == MBX_QUIT)
			break;
		if (st == MBX_RUN) {
			for (uint16_t q = 0; q < w->nb_rxq; q++) {
				n = rte_eth_rx_burst(w->rxq[q].port, w->rxq[q].queue, pkts,
						     MBX_BURST);
				if (n == 0)
					continue;
				w->stats[MBX_WSTAT_RX] += n;
				work += n;
				rx_busy |= n == MBX_BURST;
				mbx_worker_rx(w, pkts, n, w->rxq[q].port);
			}
		}
		n = rte_ring_sc_dequeue_burst(w->handoff, (void **)pkts, MBX_BURST, NULL);
		if (n > 0) {
			w->stats[MBX_WSTAT_HANDOFF_IN] += n;
			work += n;
			mbx_worker_owned(w, pkts, n);
		}
		for (uint16_t port = 0; port < dp->nb_ports; port++)
			if (w->drains[port])
				work += drain_txring(w, port);
		mbx_worker_flush(w);
		/*
		 * While a queue returns full bursts, control requests wait as long
		 * as the last ones took (at most CTRL_DEFER_US): a long one (an
		 * export slice of milliseconds) gets half of a busy worker, not all
		 * of it, and short ones run every loop.
		 */
		if (!rx_busy || rte_get_timer_cycles() - ctrl_tsc >= ctrl_defer) {
			uint64_t t0 = rte_get_timer_cycles();

			work += mbx_ctrl_serve(w);
			ctrl_tsc = rte_get_timer_cycles();
			ctrl_defer = RTE_MIN(ctrl_tsc - t0, ctrl_defer_max);
		}
		if (w->table != NULL)
			work += mbx_worker_expire(w, rte_rdtsc(), EXPIRE_BUDGET);
		if (work == 0) {
			if (st == MBX_DRAIN)
				atomic_store_explicit(&w->drain_gen, gen, memory_order_release);
			if (dp->idle_sleep_us > 0)
				mbx_wake_sleep(&w->wake, dp->idle_sleep_us, has_work, w);
		}
	}
	return 0;
}

static uint64_t
activity(const struct mbx_dp *dp)
{
	uint64_t sum = 0;

	for (int s = 0; s < MBX_WSTAT_MAX; s++)
		sum += mbx_dp_stat(dp, s);
	return sum;
}

void
mbx_dp_stop(struct mbx_dp *dp, unsigned int timeout_ms)
{
	uint64_t deadline = rte_get_timer_cycles() + rte_get_timer_hz() * timeout_ms / 1000;
	uint64_t before, after;

	atomic_store(&dp->run_state, MBX_DRAIN);
	/*
	 * Done when, during a round in which every worker completed a loop that
	 * started after the round began and found nothing to do, no worker did
	 * anything: then no packet is in a ring or in a worker's hands.
	 */
	do {
		uint64_t gen = atomic_fetch_add(&dp->drain_gen, 1) + 1;

		before = activity(dp);
		for (uint16_t i = 0; i < dp->nb_workers; i++)
			while (atomic_load_explicit(&dp->workers[i]->drain_gen,
						    memory_order_acquire) < gen &&
			       rte_get_timer_cycles() < deadline)
				rte_delay_us_sleep(10);
		after = activity(dp);
	} while (before != after && rte_get_timer_cycles() < deadline);
	atomic_store(&dp->run_state, MBX_QUIT);
}

struct mbx_worker *
mbx_worker_create(struct mbx_dp *dp, uint16_t id, int socket)
{
	const struct mbx_chain *c = &dp->chain;
	unsigned int seq = atomic_fetch_add(&name_seq, 1);
	char name[RTE_RING_NAMESIZE];
	struct mbx_worker *w;

	w = rte_zmalloc_socket("mbx_worker", sizeof(*w), RTE_CACHE_LINE_SIZE, socket);
	if (w == NULL) {
		rte_errno = ENOMEM;
		return NULL;
	}
	w->dp = dp;
	w->id = id;
	w->lcore = LCORE_ID_ANY;
	w->resp_fd = -1;
	mbx_wake_init(&w->wake);
	for (int p = 0; p < MBX_MAX_PORTS; p++)
		w->txq[p] = -1;
	snprintf(name, sizeof(name), "mbx_hand_%u", seq);
	w->handoff = rte_ring_create(name, MBX_HANDOFF_RING_SIZE, socket, RING_F_SC_DEQ);
	snprintf(name, sizeof(name), "mbx_req_%u", seq);
	w->req = rte_ring_create(name, MBX_CTRL_RING_SIZE, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
	snprintf(name, sizeof(name), "mbx_resp_%u", seq);
	w->resp = rte_ring_create(name, MBX_CTRL_RING_SIZE, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
	snprintf(name, sizeof(name), "mbx_notify_%u", seq);
	w->ev.notify =
		rte_ring_create(name, MBX_NOTIFY_RING_SIZE, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
	w->nf_counters = rte_zmalloc_socket("mbx_nf_counters",
					    sizeof(uint64_t) * RTE_MAX(c->nb_counters, 1u),
					    RTE_CACHE_LINE_SIZE, socket);
	if (w->handoff == NULL || w->req == NULL || w->resp == NULL || w->ev.notify == NULL ||
	    w->nf_counters == NULL)
		goto fail;
	if (c->state_size > 0) {
		struct mbx_table_conf tc = {
			.name = name,
			.capacity = dp->flows,
			.state_size = c->state_size,
			.socket = socket,
		};

		snprintf(name, sizeof(name), "mbx_flows_%u", seq);
		w->table = mbx_table_create(&tc);
		if (w->table == NULL)
			goto fail;
		mbx_table_set_timeouts(w->table, dp->timeouts);
	}
	for (int i = 0; i < c->n; i++) {
		struct mbx_nf_ctx *x = &w->nf[i];

		x->nf = c->nf[i].nf;
		x->counters = w->nf_counters + c->nf[i].counter_off;
		x->table = w->table;
		x->state_off = c->nf[i].state_off;
		x->worker = id;
		x->nb_workers = dp->nb_workers;
		x->why = w->nf_why;
		if (c->nf[i].ops->worker_init == NULL)
			continue;
		rte_errno = 0;
		x->priv = c->nf[i].ops->worker_init(x->nf, id, dp->nb_workers);
		if (x->priv == NULL && rte_errno != 0)
			goto fail;
	}
	return w;
fail:
	MBX_LOG(ERR, worker, "worker %u: %s", id, rte_strerror(rte_errno ? rte_errno : ENOMEM));
	mbx_worker_free(w);
	return NULL;
}

/* Free a ring of mbufs with what it still holds. */
static void
free_ring(struct rte_ring *r)
{
	void *m;

	if (r == NULL)
		return;
	while (rte_ring_dequeue(r, &m) == 0)
		rte_pktmbuf_free(m);
	rte_ring_free(r);
}

static int
free_cb(struct mbx_flow *f, void *arg)
{
	free_flow(arg, f);
	return 0;
}

void
mbx_worker_free(struct mbx_worker *w)
{
	const struct mbx_chain *c;

	if (w == NULL)
		return;
	c = &w->dp->chain;
	if (w->table != NULL) {
		uint32_t cursor = 0;

		while (cursor != UINT32_MAX)
			mbx_table_walk(w->table, &cursor, UINT32_MAX, free_cb, w);
		mbx_table_free(w->table);
	}
	for (int i = 0; i < c->n; i++)
		if (w->nf[i].priv != NULL && c->nf[i].ops->worker_fini != NULL)
			c->nf[i].ops->worker_fini(w->nf[i].nf, w->nf[i].priv);
	for (uint16_t p = 0; p < MBX_MAX_PORTS; p++)
		if (w->tx[p].n > 0)
			rte_pktmbuf_free_bulk(w->tx[p].pkts, w->tx[p].n);
	for (uint16_t i = 0; i < w->ev.n; i++)
		if (w->ev.rules[i].buf != NULL)
			free_ring(w->ev.rules[i].buf);
	free_ring(w->ev.notify);
	free_ring(w->handoff);
	rte_ring_free(w->req);
	rte_ring_free(w->resp);
	rte_free(w->nf_counters);
	mbx_wake_fini(&w->wake);
	rte_free(w);
}

uint64_t
mbx_dp_stat(const struct mbx_dp *dp, enum mbx_wstat s)
{
	uint64_t sum = 0;

	for (uint16_t i = 0; i < dp->nb_workers; i++)
		sum += __atomic_load_n(&dp->workers[i]->stats[s], __ATOMIC_RELAXED);
	return sum;
}

uint64_t
mbx_dp_parse_stat(const struct mbx_dp *dp, enum mbx_parse_result r)
{
	uint64_t sum = 0;

	for (uint16_t i = 0; i < dp->nb_workers; i++)
		sum += __atomic_load_n(&dp->workers[i]->parse[r], __ATOMIC_RELAXED);
	return sum;
}

uint64_t
mbx_dp_nf_stat(const struct mbx_dp *dp, uint32_t idx)
{
	uint64_t sum = 0;

	for (uint16_t i = 0; i < dp->nb_workers; i++)
		sum += __atomic_load_n(&dp->workers[i]->nf_counters[idx], __ATOMIC_RELAXED);
	return sum;
}

uint64_t
mbx_dp_flows(const struct mbx_dp *dp)
{
	uint64_t sum = 0;

	for (uint16_t i = 0; i < dp->nb_workers; i++)
		if (dp->workers[i]->table != NULL)
			sum += mbx_table_count(dp->workers[i]->table);
	return sum;
}
