/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP connection tracking: the state machine and the sequence windows.
 *
 * States (FW_STATES in fw.h): a SYN opens (syn_sent); the other side's
 * SYN-ACK, or its SYN in a simultaneous open, answers (syn_recv); an ACK
 * completes (established). A FIN from the originator leads to fin_wait, from
 * the responder to close_wait, from both to last_ack, and once both FINs are
 * acknowledged to time_wait. An acceptable RST closes (closed). A SYN from
 * the originator on a closed or time-wait connection opens it again.
 *
 * Windows: a simplified version of Linux's and Open vSwitch's tcp_in_window
 * (after Guido van Rooij, "Real Stateful TCP Packet Filtering in IP
 * Filter"), without SACK. Per direction the tracker keeps the highest
 * sequence number sent (end), the highest the other side allowed (maxend:
 * its ack plus its window) and the largest window announced (maxwin). A
 * segment is acceptable when its sequence number is at most maxend, its end
 * is not older than one receive window behind end (a retransmission is
 * acceptable), and its ack neither acknowledges data the other side did not
 * send nor lags more than a window behind. Window scaling counts when both
 * SYNs announce it.
 */
#include <rte_common.h>
#include <rte_tcp.h>

#include "fw.h"

#define TCP_SYN RTE_TCP_SYN_FLAG
#define TCP_ACK RTE_TCP_ACK_FLAG
#define TCP_FIN RTE_TCP_FIN_FLAG
#define TCP_RST RTE_TCP_RST_FLAG

/* How far behind an ack may lag, at least (Linux's MAXACKWINDOW floor). */
#define MIN_ACK_WINDOW 66000
#define TCP_OPT_EOL    0
#define TCP_OPT_NOP    1
#define TCP_OPT_WSCALE 3
#define TCP_MAX_WSCALE 14

static inline bool
seq_before(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

static inline bool
seq_after(uint32_t a, uint32_t b)
{
	return seq_before(b, a);
}

/* The window scale option of a SYN, or -1. */
static int8_t
wscale_option(const struct rte_tcp_hdr *th)
{
	const uint8_t *o = (const uint8_t *)(th + 1);
	const uint8_t *end = (const uint8_t *)th + (th->data_off >> 4) * 4;

	while (o < end && *o != TCP_OPT_EOL) {
		if (*o == TCP_OPT_NOP) {
			o++;
			continue;
		}
		if (end - o < 2 || o[1] < 2 || o[1] > end - o)
			break;
		if (*o == TCP_OPT_WSCALE && o[1] == 3)
			return (int8_t)RTE_MIN(o[2], TCP_MAX_WSCALE);
		o += o[1];
	}
	return -1;
}

void
fw_seg_read(struct fw_seg *s, const struct rte_tcp_hdr *th, uint32_t l4_len, uint8_t dir)
{
	uint32_t doff = (th->data_off >> 4) * 4u;

	s->seq = rte_be_to_cpu_32(th->sent_seq);
	s->ack = rte_be_to_cpu_32(th->recv_ack);
	s->win = rte_be_to_cpu_16(th->rx_win);
	s->flags = th->tcp_flags;
	s->dir = dir;
	s->end = s->seq + (l4_len - doff) + !!(s->flags & TCP_SYN) + !!(s->flags & TCP_FIN);
	s->wscale = (s->flags & TCP_SYN) ? wscale_option(th) : -1;
}

bool
fw_tcp_flags_valid(uint8_t flags)
{
	/* as Linux's tcp_valid_flags: PSH, URG, ECE and CWR go with anything */
	switch (flags & (TCP_SYN | TCP_ACK | TCP_FIN | TCP_RST)) {
	case TCP_SYN:
	case TCP_SYN | TCP_ACK:
	case TCP_RST:
	case TCP_RST | TCP_ACK:
	case TCP_FIN | TCP_ACK:
	case TCP_ACK:
		return true;
	default:
		return false;
	}
}

/* The sender of SYN @s starts over from it. */
static void
peer_syn(struct fw_peer *snd, struct fw_peer *rcv, const struct fw_seg *s)
{
	snd->end = snd->maxend = s->end;
	snd->maxwin = RTE_MAX(s->win, 1u); /* a SYN's window is never scaled */
	snd->wscale = s->wscale >= 0 ? (uint8_t)s->wscale : 0;
	snd->flags = s->wscale >= 0 ? FW_PEER_WSCALE : 0;
	/* RFC 7323: scaling counts only if both SYNs announce it */
	if (rcv->maxwin != 0 && !(snd->flags & rcv->flags & FW_PEER_WSCALE))
		snd->wscale = rcv->wscale = 0;
}

/*
 * Is @s within the windows of @cn? Updates the windows when it is, or when
 * @check is false (then the answer is always yes); changes nothing when not.
 */
static bool
in_window(struct fw_conn *cn, const struct fw_seg *s, bool check)
{
	struct fw_peer snd = cn->peer[s->dir], rcv = cn->peer[!s->dir];
	uint32_t seq = s->seq, end = s->end, ack = s->ack, win = s->win, maxack;
	bool syn = s->flags & TCP_SYN, ok;

	if (snd.maxwin == 0) {
		if (syn) {
			peer_syn(&snd, &rcv, s);
		} else {
			/* this side's first segment is not a SYN: its history is unknown */
			snd.end = end;
			snd.maxwin = RTE_MAX(win << snd.wscale, 1u);
			snd.maxend = end + snd.maxwin;
			if (rcv.maxwin == 0 && (s->flags & TCP_ACK))
				rcv.end = rcv.maxend = ack;
		}
	} else if (syn &&
		   ((cn->state == FW_ST_SYN_SENT && s->dir == MBX_DIR_ORIG) ||
		    (cn->state == FW_ST_SYN_RECV && s->dir == MBX_DIR_REPLY)) &&
		   seq_after(end, snd.end)) {
		/* a SYN with a later ISN: the host started over */
		peer_syn(&snd, &rcv, s);
	}
	if (!(s->flags & TCP_ACK) || ((s->flags & TCP_RST) && ack == 0))
		ack = rcv.end; /* no ack to check */
	if ((s->flags & TCP_RST) && seq == 0 && cn->state == FW_ST_SYN_SENT)
		seq = end = snd.end; /* a RST answering a SYN */
	maxack = RTE_MAX(snd.maxwin, (uint32_t)MIN_ACK_WINDOW);
	ok = !seq_after(seq, snd.maxend) &&
	     (rcv.maxwin == 0 || !seq_before(end, snd.end - rcv.maxwin)) &&
	     !seq_after(ack, rcv.end) && !seq_before(ack, rcv.end - maxack);
	if (!ok && check)
		return false;
	if (!syn)
		win <<= snd.wscale;
	if (snd.maxwin < win)
		snd.maxwin = win;
	if (rcv.maxwin != 0 && seq_after(end, snd.maxend))
		rcv.maxwin += end - snd.maxend;
	if (seq_after(end, snd.end))
		snd.end = end;
	if (!seq_before(ack + win, rcv.maxend))
		rcv.maxend = ack + win + (win == 0);
	cn->peer[s->dir] = snd;
	cn->peer[!s->dir] = rcv;
	return true;
}

/* The state after FINs and their acks, once established. */
static uint8_t
closing_state(const struct fw_conn *cn)
{
	uint8_t o = cn->peer[MBX_DIR_ORIG].flags, r = cn->peer[MBX_DIR_REPLY].flags;

	if ((o & FW_PEER_FIN) && (r & FW_PEER_FIN))
		return (o & r & FW_PEER_FIN_ACKED) ? FW_ST_TIME_WAIT : FW_ST_LAST_ACK;
	if (o & FW_PEER_FIN)
		return FW_ST_FIN_WAIT;
	return (r & FW_PEER_FIN) ? FW_ST_CLOSE_WAIT : FW_ST_ESTABLISHED;
}

void
fw_tcp_open(struct fw_conn *cn, const struct fw_seg *s)
{
	bool syn = (s->flags & (TCP_SYN | TCP_ACK)) == TCP_SYN;

	memset(cn->peer, 0, sizeof(cn->peer));
	cn->state = syn ? FW_ST_SYN_SENT : FW_ST_ESTABLISHED;
	cn->flags = syn ? 0 : FW_CONN_LIBERAL;
	in_window(cn, s, false);
	if (s->flags & TCP_FIN) { /* picked up while closing */
		cn->peer[s->dir].flags |= FW_PEER_FIN;
		cn->state = closing_state(cn);
	}
}

/* Does the state of @cn accept a segment with flags @fl from direction @dir? */
static enum fw_counter
state_accepts(const struct fw_conn *cn, uint8_t fl, uint8_t dir)
{
	bool syn = fl & TCP_SYN;

	switch (cn->state) {
	case FW_ST_SYN_SENT:
		/* the originator repeats its SYN; the responder answers or refuses */
		if (dir == MBX_DIR_ORIG)
			return fl == TCP_SYN ? FW_PASS : FW_CTR_TCP_BAD_STATE;
		return syn || (fl & TCP_RST) ? FW_PASS : FW_CTR_TCP_BAD_STATE;
	case FW_ST_SYN_RECV:
		/* repeated SYNs and SYN-ACKs (both sides send them in a simultaneous
		 * open), the ACK that completes, a RST: the windows decide */
		return FW_PASS;
	case FW_ST_CLOSED:
		return FW_CTR_TCP_CLOSED;
	default:
		/* no SYN once established, but a repeated SYN-ACK (its ACK was lost) */
		if (syn && !(fl == (TCP_SYN | TCP_ACK) && dir == MBX_DIR_REPLY &&
			     cn->state == FW_ST_ESTABLISHED))
			return FW_CTR_TCP_BAD_STATE;
		return FW_PASS;
	}
}

enum fw_counter
fw_tcp_track(struct fw_conn *cn, const struct fw_seg *s, bool window_check)
{
	uint8_t fl = s->flags & (TCP_SYN | TCP_ACK | TCP_FIN | TCP_RST);
	struct fw_peer *snd = &cn->peer[s->dir], *rcv = &cn->peer[!s->dir];
	enum fw_counter why;

	if (!fw_tcp_flags_valid(fl))
		return FW_CTR_TCP_BAD_FLAGS;
	if (fl == TCP_SYN && s->dir == MBX_DIR_ORIG &&
	    (cn->state == FW_ST_TIME_WAIT || cn->state == FW_ST_CLOSED)) {
		fw_tcp_open(cn, s); /* the port pair reused by a new connection */
		return FW_PASS;
	}
	why = state_accepts(cn, fl, s->dir);
	if (why != FW_PASS)
		return why;
	if (!in_window(cn, s, window_check && !(cn->flags & FW_CONN_LIBERAL)))
		return FW_CTR_TCP_WINDOW;
	if (fl & TCP_RST) {
		cn->state = FW_ST_CLOSED;
		return FW_PASS;
	}
	switch (cn->state) {
	case FW_ST_SYN_SENT:
		/* the SYN repeated, or the answer: a SYN-ACK or the other side's SYN */
		if (s->dir == MBX_DIR_REPLY)
			cn->state = FW_ST_SYN_RECV;
		return FW_PASS;
	case FW_ST_SYN_RECV:
		if (fl & TCP_SYN)
			return FW_PASS; /* repeated, or the SYN-ACKs of a simultaneous open */
		break;
	default:
		break;
	}
	if (fl & TCP_FIN)
		snd->flags |= FW_PEER_FIN;
	if ((fl & TCP_ACK) && (rcv->flags & FW_PEER_FIN) && !seq_before(s->ack, rcv->end))
		rcv->flags |= FW_PEER_FIN_ACKED;
	cn->state = closing_state(cn);
	return FW_PASS;
}
