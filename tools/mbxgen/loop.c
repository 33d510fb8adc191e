/* SPDX-License-Identifier: BSD-3-Clause */
/* mbxgen's loop: pacing, sending, receiving, phases. See gen.h. */
#include <inttypes.h>
#include <netinet/in.h>

#include <rte_cycles.h>
#include <rte_tcp.h>

#include "gen.h"

#define RX_BURST 32
/* Attempts to place TCP answers on a port that is momentarily full. */
#define CTRL_TX_RETRIES 8
/* SYNs per flow: the first and this many retries. */
#define SYN_TRIES 4

static const char *const phase_names[] = {"send", "finish", "drain", "done"};

const char *
mbxgen_phase_name(enum mbxgen_phase phase)
{
	return (unsigned int)phase < RTE_DIM(phase_names) ? phase_names[phase] : "?";
}

static void
set_done(struct mbxgen *g, struct mbxgen_gflow *f)
{
	f->done = true;
	g->nb_done++;
}

/* What flow @p f sends in its next slot: a kind, or -1 for nothing (now). */
static int
next_action(struct mbxgen *g, uint32_t flow, uint64_t now)
{
	struct mbxgen_gflow *f = &g->flows[flow];
	const struct mbxgen_options *o = g->o;
	bool more_data;

	if (f->done)
		return -1;
	if (o->open_rate != 0 && now < g->start_tsc + (uint64_t)flow * g->hz / o->open_rate)
		return -1; /* not open yet */
	more_data = g->phase == MBXGEN_PHASE_SEND &&
		    (o->count == 0 || mbxgen_check_flow(g->chk, flow)->assigned < o->count);
	if (f->t.proto != IPPROTO_TCP) {
		if (more_data)
			return MBXGEN_KIND_DATA;
		set_done(g, f);
		return -1;
	}
	switch (f->client) {
	case MBXGEN_CLI_CLOSED:
		if (g->phase == MBXGEN_PHASE_SEND)
			return MBXGEN_KIND_SYN;
		break;
	case MBXGEN_CLI_SYN_SENT:
		if (g->phase != MBXGEN_PHASE_SEND)
			break;
		/* syn_tsc may be later than now: a SYN built earlier in this burst */
		if (now < f->syn_tsc + (uint64_t)o->syn_retry_ms * g->hz / 1000)
			return -1; /* waiting for the SYN-ACK */
		if (f->syn_tries >= SYN_TRIES) {
			mbxgen_check_tcp(g->chk, flow, MBXGEN_TCP_FAILED);
			break;
		}
		mbxgen_check_count(g->chk, MBXGEN_CTR_SYN_RETRIES, 1);
		return MBXGEN_KIND_SYN;
	case MBXGEN_CLI_ESTABLISHED:
		if (more_data)
			return MBXGEN_KIND_DATA;
		if (o->tcp_fin)
			return MBXGEN_KIND_FIN;
		break;
	default:
		break;
	}
	set_done(g, f);
	return -1;
}

/* Build the packet of @p kind for @p flow into @p m. */
static void
build(struct mbxgen *g, uint32_t flow, int kind, struct rte_mbuf *m, uint64_t tsc)
{
	struct mbxgen_gflow *f = &g->flows[flow];
	uint32_t ic = mbxgen_isn_client(flow), is = mbxgen_isn_server(flow);
	uint64_t seq;

	switch (kind) {
	case MBXGEN_KIND_DATA:
		seq = mbxgen_check_assign(g->chk, flow);
		if (f->t.proto == IPPROTO_TCP)
			mbxgen_build_data(m, &g->eth, &f->t, flow, seq, tsc, g->len_tcp,
					  (uint32_t)(ic + 1 + seq * g->tcp_plen), is + 1);
		else
			mbxgen_build_data(m, &g->eth, &f->t, flow, seq, tsc, g->len_udp, 0, 0);
		break;
	case MBXGEN_KIND_SYN:
		mbxgen_build_tcp(m, &g->eth, &f->t, RTE_TCP_SYN_FLAG, ic, 0);
		f->client = MBXGEN_CLI_SYN_SENT;
		f->syn_tries++;
		f->syn_tsc = tsc;
		break;
	case MBXGEN_KIND_FIN:
		f->fin_seq = (uint32_t)(ic + 1 +
					mbxgen_check_flow(g->chk, flow)->assigned * g->tcp_plen);
		mbxgen_build_tcp(m, &g->eth, &f->t, RTE_TCP_FIN_FLAG | RTE_TCP_ACK_FLAG, f->fin_seq,
				 is + 1);
		f->client = MBXGEN_CLI_FIN_WAIT;
		set_done(g, f);
		break;
	}
}

/* Offer the pending burst to the tx port; account what it took. */
static unsigned int
flush_pending(struct mbxgen *g)
{
	uint16_t n, i;

	if (g->npend == 0)
		return 0;
	n = rte_eth_tx_burst(g->o->tx_port, 0, g->pend, g->npend);
	for (i = 0; i < n; i++)
		if (g->pend_meta[i].kind == MBXGEN_KIND_DATA)
			mbxgen_check_sent(g->chk, g->pend_meta[i].flow, g->pend_meta[i].tsc);
	if (n > 0) {
		if (g->first_tx_tsc == 0)
			g->first_tx_tsc = g->pend_meta[0].tsc;
		g->last_tx_tsc = rte_rdtsc();
	}
	for (i = n; i < g->npend; i++) {
		g->pend[i - n] = g->pend[i];
		g->pend_meta[i - n] = g->pend_meta[i];
	}
	g->npend -= n;
	return n;
}

/* Build the packets due now and send them. @return packets the port took. */
static unsigned int
tx_step(struct mbxgen *g, uint64_t now)
{
	const struct mbxgen_options *o = g->o;
	uint32_t due = o->burst, built = 0;
	unsigned int taken = flush_pending(g);
	uint64_t tsc;

	if (g->npend > 0 || g->phase > MBXGEN_PHASE_FINISH)
		return taken;
	if (o->rate != 0) {
		double lag = g->ticks_per_pkt * o->burst;

		if ((double)now < g->next_tsc)
			return taken;
		if (g->next_tsc < (double)now - lag)
			g->next_tsc = (double)now - lag; /* no catch-up beyond one burst */
		due = (uint32_t)(((double)now - g->next_tsc) / g->ticks_per_pkt) + 1;
		if (due > o->burst)
			due = o->burst;
	}
	if (o->max_inflight != 0) {
		uint64_t infl = mbxgen_check_inflight(g->chk, now);

		if (infl >= o->max_inflight)
			return taken; /* slots wait; the lag cap bounds the burst after */
		if (due > o->max_inflight - infl)
			due = (uint32_t)(o->max_inflight - infl);
	}
	if (now < g->idle_until)
		goto consume;
	if (rte_pktmbuf_alloc_bulk(g->mp, g->pend, due) != 0)
		return taken; /* try again next turn */
	tsc = rte_rdtsc();
	for (uint32_t i = 0; i < due; i++) {
		uint32_t looked;
		int kind = -1;

		for (looked = 0; looked < o->flows && kind < 0; looked++) {
			uint32_t flow = g->rr;

			g->rr = g->rr + 1 == o->flows ? 0 : g->rr + 1;
			kind = next_action(g, flow, now);
			if (kind >= 0) {
				build(g, flow, kind, g->pend[built], tsc);
				g->pend_meta[built].flow = flow;
				g->pend_meta[built].kind = (uint8_t)kind;
				g->pend_meta[built].tsc = tsc;
				built++;
			}
		}
		if (kind < 0) {
			/* nobody has anything to send: look again in 1 ms or after a SYN-ACK */
			g->idle_until = now + g->hz / 1000;
			break;
		}
	}
	if (built < due)
		rte_pktmbuf_free_bulk(g->pend + built, due - built);
	g->npend = (uint16_t)built;
	taken += flush_pending(g);
consume:
	if (o->rate != 0)
		g->next_tsc += g->ticks_per_pkt * due;
	return taken;
}

static void
rx_packet(struct mbxgen *g, uint16_t port, struct rte_mbuf *m, uint64_t now)
{
	struct mbxgen_parsed p;

	if (mbxgen_parse(m, &p) < 0) {
		mbxgen_check_count(g->chk, MBXGEN_CTR_FOREIGN, 1);
		rte_pktmbuf_free(m);
		return;
	}
	if (!p.csum_ok)
		mbxgen_check_count(g->chk, MBXGEN_CTR_CSUM_ERRORS, 1);
	if (p.pl != NULL) {
		struct mbxgen_rx r = {
			.flow = rte_be_to_cpu_32(p.pl->flow),
			.seq = rte_be_to_cpu_64(p.pl->seq),
			.tx_tsc = rte_be_to_cpu_64(p.pl->tsc),
			.rx_tsc = now,
			.port = port,
			.tuple = p.t,
		};

		if (mbxgen_check_rx(g->chk, &r) != MBXGEN_RX_INVALID &&
		    g->flows[r.flow].t.proto == IPPROTO_TCP) {
			if (p.t.proto == IPPROTO_TCP)
				mbxgen_tcp_data(g, r.flow, &p, r.seq);
			else
				mbxgen_check_count(g->chk, MBXGEN_CTR_TCP_UNEXPECTED, 1);
		}
		rte_pktmbuf_free(m);
		return;
	}
	if (p.t.proto == IPPROTO_TCP && g->o->proto != MBXGEN_PROTO_UDP) {
		mbxgen_tcp_rx(g, port, m, &p);
		return;
	}
	mbxgen_check_count(g->chk, MBXGEN_CTR_FOREIGN, 1);
	rte_pktmbuf_free(m);
}

static unsigned int
rx_step(struct mbxgen *g)
{
	struct rte_mbuf *pkts[RX_BURST];
	unsigned int total = 0;

	for (uint16_t i = 0; i < g->nb_ports; i++) {
		uint16_t port = g->ports[i];
		uint16_t n = rte_eth_rx_burst(port, 0, pkts, RX_BURST);
		uint64_t now;

		if (n == 0)
			continue;
		now = rte_rdtsc();
		for (uint16_t k = 0; k < n; k++)
			rx_packet(g, port, pkts[k], now);
		total += n;
	}
	return total;
}

static void
ctrl_flush(struct mbxgen *g)
{
	for (uint16_t i = 0; i < g->nb_ports; i++) {
		uint16_t port = g->ports[i], n = g->ctrl[port].n, sent = 0;

		if (n == 0)
			continue;
		for (int t = 0; t < CTRL_TX_RETRIES && sent < n; t++)
			sent += rte_eth_tx_burst(port, 0, g->ctrl[port].m + sent, n - sent);
		if (sent < n) {
			rte_pktmbuf_free_bulk(g->ctrl[port].m + sent, n - sent);
			mbxgen_check_count(g->chk, MBXGEN_CTR_CTRL_TX_DROPS, n - sent);
		}
		g->ctrl[port].n = 0;
	}
}

static void
enter_drain(struct mbxgen *g, uint64_t now)
{
	uint64_t from = g->last_tx_tsc > 0 ? g->last_tx_tsc : now;

	g->phase = MBXGEN_PHASE_DRAIN;
	g->drain_end_tsc = from + (uint64_t)g->o->drain_ms * g->hz / 1000;
	/* a burst the port never took is not sent */
	rte_pktmbuf_free_bulk(g->pend, g->npend);
	g->npend = 0;
	GEN_LOG(INFO, "draining for %u ms", g->o->drain_ms);
}

static void
advance(struct mbxgen *g, uint64_t now)
{
	static sig_atomic_t signals_seen;

	if (mbxgen_signals != signals_seen) {
		signals_seen = mbxgen_signals;
		if (signals_seen >= 2 || g->phase >= MBXGEN_PHASE_DRAIN) {
			GEN_LOG(NOTICE, "signal: reporting now");
			g->phase = MBXGEN_PHASE_DONE;
			return;
		}
		GEN_LOG(NOTICE, "signal: sending stops, draining (again to report now)");
		enter_drain(g, now);
		return;
	}
	switch (g->phase) {
	case MBXGEN_PHASE_SEND:
		if (g->o->count == 0 && now >= g->send_end_tsc) {
			g->phase = MBXGEN_PHASE_FINISH;
			g->idle_until = 0;
		} else if (g->nb_done == g->o->flows && g->npend == 0) {
			enter_drain(g, now);
		}
		break;
	case MBXGEN_PHASE_FINISH:
		if (g->nb_done == g->o->flows && g->npend == 0)
			enter_drain(g, now);
		break;
	case MBXGEN_PHASE_DRAIN:
		if (now >= g->drain_end_tsc)
			g->phase = MBXGEN_PHASE_DONE;
		break;
	default:
		break;
	}
}

/* Publish the counters for the telemetry thread; log progress every --stats-interval. */
static void
publish(struct mbxgen *g, uint64_t now)
{
	struct mbxgen_totals t;

	mbxgen_check_totals(g->chk, &t);
	__atomic_store_n(&g->pub.phase, (uint64_t)g->phase, __ATOMIC_RELAXED);
	__atomic_store_n(&g->pub.sent, t.sent, __ATOMIC_RELAXED);
	__atomic_store_n(&g->pub.received, t.received, __ATOMIC_RELAXED);
	__atomic_store_n(&g->pub.inflight, mbxgen_check_inflight(g->chk, now), __ATOMIC_RELAXED);
	__atomic_store_n(&g->pub.handshakes, t.handshakes, __ATOMIC_RELAXED);
	__atomic_store_n(&g->pub.closes, t.closes, __ATOMIC_RELAXED);
	__atomic_store_n(&g->pub.foreign, t.ctr[MBXGEN_CTR_FOREIGN], __ATOMIC_RELAXED);
	if (g->o->stats_interval != 0 && now >= g->next_stats_tsc) {
		g->next_stats_tsc = now + (uint64_t)g->o->stats_interval * g->hz;
		GEN_LOG(NOTICE,
			"%s: sent %" PRIu64 " received %" PRIu64 " not yet received %" PRIu64
			" duplicated %" PRIu64 " reordered %" PRIu64 " handshakes %" PRIu64
			" foreign %" PRIu64,
			phase_names[g->phase], t.sent, t.received, t.lost, t.duplicated,
			t.reordered, t.handshakes, t.ctr[MBXGEN_CTR_FOREIGN]);
	}
}

int
mbxgen_run(struct mbxgen *g)
{
	const struct mbxgen_options *o = g->o;

	g->ticks_per_pkt = o->rate ? (double)g->hz / (double)o->rate : 0;
	g->next_tsc = (double)g->start_tsc;
	g->send_end_tsc = g->start_tsc + (uint64_t)(o->duration * (double)g->hz);
	g->next_stats_tsc = g->start_tsc + (uint64_t)o->stats_interval * g->hz;
	g->phase = MBXGEN_PHASE_SEND;
	while (g->phase != MBXGEN_PHASE_DONE) {
		uint64_t now = rte_rdtsc();
		unsigned int work;

		work = rx_step(g);
		ctrl_flush(g);
		if (g->phase <= MBXGEN_PHASE_FINISH || g->npend > 0)
			work += tx_step(g, now);
		advance(g, now);
		if (now >= g->next_pub_tsc) {
			publish(g, now);
			g->next_pub_tsc = now + g->hz / 1000;
		}
		if (work == 0 && o->idle_sleep_us != 0)
			rte_delay_us_sleep(o->idle_sleep_us);
	}
	publish(g, rte_rdtsc());
	return 0;
}
