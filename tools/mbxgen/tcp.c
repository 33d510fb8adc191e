/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mbxgen's TCP endpoints: the client (on the tx port) and the server (on
 * whichever port a client segment arrives). See gen.h and pkt.h.
 *
 * client                      server
 *   SYN         seq=Ic     ->
 *               <- SYN-ACK seq=Is ack=Ic+1   (from the addresses it arrived with)
 *   ACK  seq=Ic+1 ack=Is+1 ->                handshake complete at both ends
 *   data seq=Ic+1+k*len ack=Is+1 ->          checked like UDP
 *   FIN-ACK seq=F ack=Is+1 ->
 *               <- FIN-ACK seq=Is+1 ack=F+1
 *   ACK  seq=F+1 ack=Is+2  ->                closed at both ends
 *
 * Each end checks every segment against its flow's state and the numbers
 * above; one that does not fit is counted (tcp_unexpected) and dropped.
 * Data segments are never acknowledged one by one or retransmitted: the
 * checker counts what the network lost.
 */
#include <netinet/in.h>

#include <rte_tcp.h>

#include "gen.h"

#define F_SYN RTE_TCP_SYN_FLAG
#define F_ACK RTE_TCP_ACK_FLAG
#define F_FIN RTE_TCP_FIN_FLAG
/* flags that say what a segment is; PSH, URG, ECE, CWR do not */
#define F_MASK (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG | RTE_TCP_RST_FLAG)

void
mbxgen_ctrl_put(struct mbxgen *g, uint16_t port, struct rte_mbuf *m)
{
	if (g->ctrl[port].n == MBXGEN_MAX_BURST) {
		rte_pktmbuf_free(m);
		mbxgen_check_count(g->chk, MBXGEN_CTR_CTRL_TX_DROPS, 1);
		return;
	}
	g->ctrl[port].m[g->ctrl[port].n++] = m;
}

static void
unexpected(struct mbxgen *g, struct rte_mbuf *m)
{
	mbxgen_check_count(g->chk, MBXGEN_CTR_TCP_UNEXPECTED, 1);
	rte_pktmbuf_free(m);
}

static void
reply(struct mbxgen *g, uint16_t port, struct rte_mbuf *m, struct mbxgen_parsed *p, uint8_t flags,
      uint32_t seq, uint32_t ack)
{
	if (m->nb_segs != 1) {
		unexpected(g, m);
		return;
	}
	mbxgen_tcp_reply(m, p, flags, seq, ack);
	mbxgen_ctrl_put(g, port, m);
}

static void
progress(struct mbxgen *g, uint32_t flow)
{
	const struct mbxgen_gflow *f = &g->flows[flow];

	if (f->client >= MBXGEN_CLI_ESTABLISHED && f->server >= MBXGEN_SRV_ESTABLISHED)
		mbxgen_check_tcp(g->chk, flow, MBXGEN_TCP_HANDSHAKE);
	if (f->client == MBXGEN_CLI_TIME_WAIT && f->server == MBXGEN_SRV_CLOSED)
		mbxgen_check_tcp(g->chk, flow, MBXGEN_TCP_CLOSED);
}

/* A segment from the server (its source is dst:dport) reached the client. */
static void
client_rx(struct mbxgen *g, uint16_t port, struct rte_mbuf *m, struct mbxgen_parsed *p)
{
	uint32_t flow = mbxgen_flow_of_source(g->o, p->t.dst, p->t.dport);
	uint8_t flags = p->tcp_flags & F_MASK;
	struct mbxgen_gflow *f;
	uint32_t ic, is;

	if (flow == UINT32_MAX || g->flows[flow].t.proto != IPPROTO_TCP) {
		unexpected(g, m);
		return;
	}
	f = &g->flows[flow];
	ic = mbxgen_isn_client(flow);
	is = mbxgen_isn_server(flow);
	if (flags == (F_SYN | F_ACK) && p->tcp_seq == is && p->tcp_ack == ic + 1 &&
	    (f->client == MBXGEN_CLI_SYN_SENT || f->client == MBXGEN_CLI_ESTABLISHED)) {
		if (f->client == MBXGEN_CLI_SYN_SENT) {
			f->client = MBXGEN_CLI_ESTABLISHED;
			g->idle_until = 0; /* it has data to send now */
		}
		reply(g, port, m, p, F_ACK, ic + 1, is + 1);
		progress(g, flow);
		return;
	}
	if (flags == (F_FIN | F_ACK) && p->tcp_seq == is + 1 && p->tcp_ack == f->fin_seq + 1 &&
	    (f->client == MBXGEN_CLI_FIN_WAIT || f->client == MBXGEN_CLI_TIME_WAIT)) {
		f->client = MBXGEN_CLI_TIME_WAIT;
		reply(g, port, m, p, F_ACK, f->fin_seq + 1, is + 2);
		progress(g, flow);
		return;
	}
	unexpected(g, m);
}

/* A segment from the client reached the server, rewritten by whatever is in between. */
static void
server_rx(struct mbxgen *g, uint16_t port, struct rte_mbuf *m, struct mbxgen_parsed *p)
{
	uint8_t flags = p->tcp_flags & F_MASK;
	struct mbxgen_gflow *f;
	uint32_t flow, ic, is;

	if (flags == F_SYN)
		flow = mbxgen_flow_of_isn_client(p->tcp_seq);
	else if (flags & F_ACK)
		flow = mbxgen_flow_of_ack(p->tcp_ack);
	else
		flow = UINT32_MAX;
	if (flow >= g->o->flows || g->flows[flow].t.proto != IPPROTO_TCP) {
		unexpected(g, m);
		return;
	}
	f = &g->flows[flow];
	ic = mbxgen_isn_client(flow);
	is = mbxgen_isn_server(flow);
	if (flags == F_SYN) {
		if (f->client == MBXGEN_CLI_CLOSED) {
			unexpected(g, m); /* the client never sent it */
			return;
		}
		if (f->server > MBXGEN_SRV_SYN_RCVD) {
			/* a retry that crossed our SYN-ACK: the handshake is done, ignore it */
			rte_pktmbuf_free(m);
			return;
		}
		/* a first SYN, or a retry because our SYN-ACK was late or lost */
		mbxgen_check_seen(g->chk, flow, port, &p->t);
		f->server = MBXGEN_SRV_SYN_RCVD;
		reply(g, port, m, p, F_SYN | F_ACK, is, ic + 1);
		return;
	}
	if (flags == F_ACK && p->tcp_ack == is + 1 && p->tcp_seq == ic + 1 &&
	    f->server >= MBXGEN_SRV_SYN_RCVD) {
		mbxgen_check_seen(g->chk, flow, port, &p->t);
		if (f->server == MBXGEN_SRV_SYN_RCVD)
			f->server = MBXGEN_SRV_ESTABLISHED;
		rte_pktmbuf_free(m);
		progress(g, flow);
		return;
	}
	if (flags == (F_FIN | F_ACK) && p->tcp_ack == is + 1 && p->tcp_seq == f->fin_seq &&
	    f->client >= MBXGEN_CLI_FIN_WAIT && f->server >= MBXGEN_SRV_SYN_RCVD &&
	    f->server <= MBXGEN_SRV_LAST_ACK) {
		mbxgen_check_seen(g->chk, flow, port, &p->t);
		if (f->server < MBXGEN_SRV_ESTABLISHED) {
			f->server = MBXGEN_SRV_ESTABLISHED; /* the FIN acknowledges our SYN-ACK */
			progress(g, flow);
		}
		f->server = MBXGEN_SRV_LAST_ACK;
		reply(g, port, m, p, F_FIN | F_ACK, is + 1, f->fin_seq + 1);
		return;
	}
	if (flags == F_ACK && p->tcp_ack == is + 2 && p->tcp_seq == f->fin_seq + 1 &&
	    f->server >= MBXGEN_SRV_LAST_ACK) {
		mbxgen_check_seen(g->chk, flow, port, &p->t);
		f->server = MBXGEN_SRV_CLOSED;
		rte_pktmbuf_free(m);
		progress(g, flow);
		return;
	}
	unexpected(g, m);
}

void
mbxgen_tcp_rx(struct mbxgen *g, uint16_t port, struct rte_mbuf *m, struct mbxgen_parsed *p)
{
	if (p->payload_len != 0) {
		unexpected(g, m); /* data, but not ours */
		return;
	}
	if (p->t.src == g->o->dst && p->t.sport == g->o->dport)
		client_rx(g, port, m, p);
	else
		server_rx(g, port, m, p);
}

void
mbxgen_tcp_data(struct mbxgen *g, uint32_t flow, const struct mbxgen_parsed *p, uint64_t seq)
{
	struct mbxgen_gflow *f = &g->flows[flow];
	uint32_t ic = mbxgen_isn_client(flow), is = mbxgen_isn_server(flow);

	if ((p->tcp_flags & F_MASK) != F_ACK || p->tcp_ack != is + 1 ||
	    p->tcp_seq != (uint32_t)(ic + 1 + seq * g->tcp_plen) ||
	    f->server == MBXGEN_SRV_LISTEN) {
		mbxgen_check_count(g->chk, MBXGEN_CTR_TCP_UNEXPECTED, 1);
		return;
	}
	if (f->server == MBXGEN_SRV_SYN_RCVD) {
		/* the handshake's ACK was lost or overtaken: data acknowledges the SYN-ACK too */
		f->server = MBXGEN_SRV_ESTABLISHED;
		progress(g, flow);
	}
}
