/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The firewall through the real worker path: the TCP state machine and its
 * expiry classes (handshake, data, close, simultaneous open, RST, repeated
 * SYNs), sequence windows (out of window dropped, retransmissions passing,
 * window scaling), first packets that open nothing, ICMP errors related and
 * not, UDP and ICMP echo pseudo-connections, rules (order, default, replies
 * of denied flows, rte_acl against the linear scan), conn_limit, IPv6, two
 * workers, a chain with nat, and the state codecs (a connection moved keeps
 * its verdicts).
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_random.h>
#include <rte_ring.h>
#include <rte_tcp.h>

#include "fw.h"
#include "mbx/v1/fw.pb-c.h"
#include "mbx_state.h"
#include "mbx_test.h"

#define SYN RTE_TCP_SYN_FLAG
#define ACK RTE_TCP_ACK_FLAG
#define FIN RTE_TCP_FIN_FLAG
#define RST RTE_TCP_RST_FLAG
#define PSH RTE_TCP_PSH_FLAG

#define IN  0 /* port 0, the inside */
#define OUT 1 /* port 1, the outside */

/* Packets. */

static bool
is_v6(const char *a)
{
	return strchr(a, ':') != NULL;
}

static void
addr(const char *s, union mbx_addr *a)
{
	memset(a, 0, sizeof(*a));
	ck_assert_int_eq(inet_pton(is_v6(s) ? AF_INET6 : AF_INET, s, a), 1);
}

/* An Ethernet frame of @src > @dst carrying @l4 (IPv4 or IPv6 by the addresses). */
static struct rte_mbuf *
ip_frame(const char *src, const char *dst, uint8_t proto, const void *l4, uint16_t l4_len)
{
	uint16_t l3 = is_v6(src) ? sizeof(struct rte_ipv6_hdr) : sizeof(struct rte_ipv4_hdr);
	struct rte_mbuf *m = rte_pktmbuf_alloc(mbx_test_pool());
	struct rte_ether_hdr *eh;
	union mbx_addr s, d;

	ck_assert_ptr_nonnull(m);
	eh = (struct rte_ether_hdr *)rte_pktmbuf_append(m, sizeof(*eh) + l3 + l4_len);
	ck_assert_ptr_nonnull(eh);
	memset(eh, 0, sizeof(*eh) + l3);
	addr(src, &s);
	addr(dst, &d);
	if (is_v6(src)) {
		struct rte_ipv6_hdr *ip = (struct rte_ipv6_hdr *)(eh + 1);

		eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
		ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
		ip->payload_len = rte_cpu_to_be_16(l4_len);
		ip->proto = proto;
		ip->hop_limits = 64;
		memcpy(ip->src_addr, s.v6, 16);
		memcpy(ip->dst_addr, d.v6, 16);
	} else {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eh + 1);

		eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
		ip->version_ihl = RTE_IPV4_VHL_DEF;
		ip->total_length = rte_cpu_to_be_16(l3 + l4_len);
		ip->time_to_live = 64;
		ip->next_proto_id = proto;
		ip->src_addr = s.v4;
		ip->dst_addr = d.v4;
		ip->hdr_checksum = rte_ipv4_cksum(ip);
	}
	memcpy((char *)(eh + 1) + l3, l4, l4_len);
	return m;
}

static struct rte_mbuf *
tcp(const char *src, const char *dst, uint16_t sp, uint16_t dp, uint8_t flags, uint32_t seq,
    uint32_t ack, uint16_t win, uint16_t len, int wscale)
{
	uint8_t l4[24 + 1500];
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)l4;
	uint16_t hl = wscale >= 0 ? 24 : 20;

	memset(l4, 0, hl);
	th->src_port = rte_cpu_to_be_16(sp);
	th->dst_port = rte_cpu_to_be_16(dp);
	th->sent_seq = rte_cpu_to_be_32(seq);
	th->recv_ack = rte_cpu_to_be_32(ack);
	th->data_off = (uint8_t)((hl / 4) << 4);
	th->tcp_flags = flags;
	th->rx_win = rte_cpu_to_be_16(win);
	if (wscale >= 0) {
		l4[20] = 1; /* NOP, then window scale */
		l4[21] = 3;
		l4[22] = 3;
		l4[23] = (uint8_t)wscale;
	}
	for (uint16_t i = 0; i < len; i++)
		l4[hl + i] = (uint8_t)(i * 7 + 3);
	return ip_frame(src, dst, IPPROTO_TCP, l4, hl + len);
}

static struct rte_mbuf *
udp(const char *src, const char *dst, uint16_t sp, uint16_t dp)
{
	uint8_t l4[8 + 12] = {0};

	*(rte_be16_t *)&l4[0] = rte_cpu_to_be_16(sp);
	*(rte_be16_t *)&l4[2] = rte_cpu_to_be_16(dp);
	*(rte_be16_t *)&l4[4] = rte_cpu_to_be_16(sizeof(l4));
	memcpy(l4 + 8, "firewall-udp", 12);
	return ip_frame(src, dst, IPPROTO_UDP, l4, sizeof(l4));
}

/* ICMP (ICMPv6 for IPv6 addresses) of @type with identifier @id and a payload. */
static struct rte_mbuf *
icmp(const char *src, const char *dst, uint8_t type, uint16_t id)
{
	uint8_t l4[8 + 16] = {type};

	*(rte_be16_t *)&l4[4] = rte_cpu_to_be_16(id);
	return ip_frame(src, dst, is_v6(src) ? IPPROTO_ICMPV6 : IPPROTO_ICMP, l4, sizeof(l4));
}

/* An ICMP error from @src to @dst quoting @quote_len bytes of @quoted's IP packet (freed). */
static struct rte_mbuf *
icmp_err(const char *src, const char *dst, uint8_t type, struct rte_mbuf *quoted,
	 uint16_t quote_len)
{
	uint8_t l4[8 + 256] = {type};
	uint16_t n = RTE_MIN(
		quote_len, (uint16_t)(rte_pktmbuf_data_len(quoted) - sizeof(struct rte_ether_hdr)));

	memcpy(l4 + 8, rte_pktmbuf_mtod_offset(quoted, void *, sizeof(struct rte_ether_hdr)), n);
	rte_pktmbuf_free(quoted);
	return ip_frame(src, dst, is_v6(src) ? IPPROTO_ICMPV6 : IPPROTO_ICMP, l4, 8 + n);
}

/* The dataplane. */

static char rules_path[64];

/* Write a rules file and return its path. */
static const char *
rules_file(const char *text)
{
	FILE *f;
	int fd;

	snprintf(rules_path, sizeof(rules_path), "/tmp/test_fw_rules_XXXXXX");
	fd = mkstemp(rules_path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	return rules_path;
}

static struct mbx_dp *
fw_dp(const char *spec, uint16_t workers)
{
	const char *nfs[] = {spec, NULL};
	struct mbx_dp *dp = mbx_test_dp(nfs, workers, 2, 4096);

	ck_assert_msg(dp != NULL, "%s refused", spec);
	return dp;
}

/* "fw,rules=<file of @text>,..." */
static struct mbx_dp *
fw_dp_rules(const char *text, const char *opts, uint16_t workers)
{
	char spec[256];
	struct mbx_dp *dp;

	snprintf(spec, sizeof(spec), "fw,rules=%s%s", rules_file(text), opts);
	dp = fw_dp(spec, workers);
	unlink(rules_path);
	return dp;
}

static struct fw *
fw_of(struct mbx_dp *dp)
{
	return dp->chain.nf[0].nf;
}

static uint64_t
ctr(struct mbx_dp *dp, enum fw_counter c)
{
	return mbx_dp_nf_stat(dp, dp->chain.nf[0].counter_off + c);
}

/*
 * Receive @m on @port (at worker port % workers), run every worker's
 * hand-off ring, and return what left by the other port, or NULL.
 */
static struct rte_mbuf *
send_out(struct mbx_dp *dp, struct rte_mbuf *m, uint16_t port)
{
	struct rte_mbuf *out = NULL, *h[MBX_BURST];

	mbx_worker_rx(dp->workers[port % dp->nb_workers], &m, 1, port);
	for (uint16_t i = 0; i < dp->nb_workers; i++) {
		unsigned int n = rte_ring_dequeue_burst(dp->workers[i]->handoff, (void **)h,
							MBX_BURST, NULL);

		if (n > 0)
			mbx_worker_owned(dp->workers[i], h, n);
	}
	for (uint16_t i = 0; i < dp->nb_workers && out == NULL; i++)
		mbx_test_take_tx(dp->workers[i], !port, &out, 1);
	return out;
}

/* Does @m, received on @port, leave by the other port unchanged? */
static bool
send_pkt(struct mbx_dp *dp, struct rte_mbuf *m, uint16_t port)
{
	uint16_t len = rte_pktmbuf_data_len(m);
	struct rte_mbuf *out;
	uint8_t before[2048];

	memcpy(before, rte_pktmbuf_mtod(m, void *), len);
	out = send_out(dp, m, port);
	if (out == NULL)
		return false;
	ck_assert_uint_eq(rte_pktmbuf_data_len(out), len);
	ck_assert_mem_eq(rte_pktmbuf_mtod(out, void *), before, len);
	rte_pktmbuf_free(out);
	return true;
}

/* The flow of a key (in either direction) on any worker, or NULL. */
static struct mbx_flow *
flow_of(struct mbx_dp *dp, uint8_t proto, const char *src, const char *dst, uint16_t sp,
	uint16_t dport)
{
	struct mbx_flow_key k;

	memset(&k, 0, sizeof(k));
	k.family = is_v6(src) ? MBX_FAMILY_V6 : MBX_FAMILY_V4;
	k.proto = proto;
	addr(src, &k.src);
	addr(dst, &k.dst);
	k.sport = rte_cpu_to_be_16(sp);
	k.dport = rte_cpu_to_be_16(dport);
	for (uint16_t w = 0; w < dp->nb_workers; w++) {
		struct mbx_flow *f = mbx_table_lookup(dp->workers[w]->table, &k, NULL);

		if (f != NULL)
			return f;
	}
	return NULL;
}

static struct fw_conn *
conn_of(struct mbx_dp *dp, struct mbx_flow *f)
{
	return (struct fw_conn *)(f->state + dp->chain.nf[0].state_off);
}

/* A TCP conversation between a client inside and a server outside. */
struct sess {
	const char *c, *s;
	uint16_t cp, sp;
	uint32_t seq[2]; /* next sequence number: [IN] the client's, [OUT] the server's */
	uint16_t win[2];
	int ws[2]; /* window scale in the SYNs, -1: none */
};

/* A segment from side @from; its sender's sequence advances if it passed. */
static bool
seg(struct mbx_dp *dp, struct sess *s, int from, uint8_t flags, uint16_t len)
{
	struct rte_mbuf *m = tcp(from == IN ? s->c : s->s, from == IN ? s->s : s->c,
				 from == IN ? s->cp : s->sp, from == IN ? s->sp : s->cp, flags,
				 s->seq[from], (flags & ACK) ? s->seq[!from] : 0, s->win[from], len,
				 (flags & SYN) ? s->ws[from] : -1);
	bool ok = send_pkt(dp, m, (uint16_t)from);

	if (ok)
		s->seq[from] += len + !!(flags & SYN) + !!(flags & FIN);
	return ok;
}

/* Expect the connection of @s in state @st and the timeout class that goes with it. */
static void
expect_state(struct mbx_dp *dp, const struct sess *s, enum fw_state st)
{
	struct mbx_flow *f = flow_of(dp, IPPROTO_TCP, s->c, s->s, s->cp, s->sp);

	ck_assert_ptr_nonnull(f);
	ck_assert_msg(conn_of(dp, f)->state == st, "state %s, expected %s",
		      fw_state_names[conn_of(dp, f)->state], fw_state_names[st]);
	ck_assert_msg(f->tmo_class == fw_state_class[st], "class %s, expected %s",
		      mbx_tmo_names[f->tmo_class], mbx_tmo_names[fw_state_class[st]]);
}

static struct sess
session(const char *c, const char *s, uint16_t cp)
{
	return (struct sess){c, s, cp, 80, {1000, 500000}, {8192, 8192}, {-1, -1}};
}

#define ALLOW_ALL "allow\n"

/* The tests. */

START_TEST(handshake_data_close)
{
	struct mbx_dp *dp = fw_dp_rules(ALLOW_ALL, "", 1);
	struct sess s = session("10.0.0.1", "192.0.2.1", 40000);

	ck_assert(seg(dp, &s, IN, SYN, 0));
	expect_state(dp, &s, FW_ST_SYN_SENT);
	ck_assert(seg(dp, &s, OUT, SYN | ACK, 0));
	expect_state(dp, &s, FW_ST_SYN_RECV);
	ck_assert(seg(dp, &s, IN, ACK, 0));
	expect_state(dp, &s, FW_ST_ESTABLISHED);
	ck_assert(seg(dp, &s, IN, ACK | PSH, 300));
	ck_assert(seg(dp, &s, OUT, ACK | PSH, 1200));
	ck_assert(seg(dp, &s, IN, ACK, 0));
	/* the client closes first, the server after */
	ck_assert(seg(dp, &s, IN, FIN | ACK, 0));
	expect_state(dp, &s, FW_ST_FIN_WAIT);
	ck_assert(seg(dp, &s, OUT, ACK, 0));
	expect_state(dp, &s, FW_ST_FIN_WAIT);
	ck_assert(seg(dp, &s, OUT, FIN | ACK, 0));
	expect_state(dp, &s, FW_ST_LAST_ACK);
	ck_assert(seg(dp, &s, IN, ACK, 0));
	expect_state(dp, &s, FW_ST_TIME_WAIT);
	/* a new SYN on the same ports opens it again */
	s.seq[IN] += 100000;
	ck_assert(seg(dp, &s, IN, SYN, 0));
	expect_state(dp, &s, FW_ST_SYN_SENT);
	ck_assert_uint_eq(ctr(dp, FW_CTR_ALLOWED), 1);
	ck_assert_uint_eq(mbx_dp_stat(dp, MBX_WSTAT_NF_DROP), 0);

	/* the server closes first this time */
	s = session("10.0.0.1", "192.0.2.1", 40001);
	ck_assert(seg(dp, &s, IN, SYN, 0) && seg(dp, &s, OUT, SYN | ACK, 0) &&
		  seg(dp, &s, IN, ACK, 0));
	ck_assert(seg(dp, &s, OUT, FIN | ACK, 0));
	expect_state(dp, &s, FW_ST_CLOSE_WAIT);
	ck_assert(seg(dp, &s, IN, FIN | ACK, 0)); /* acknowledges the server's FIN */
	expect_state(dp, &s, FW_ST_LAST_ACK);
	ck_assert(seg(dp, &s, OUT, ACK, 0));
	expect_state(dp, &s, FW_ST_TIME_WAIT);
	/* both expire by their classes: the reopened one (syn_sent) and time_wait */
	ck_assert_uint_eq(
		mbx_worker_expire(dp->workers[0],
				  rte_rdtsc() +
					  (uint64_t)(mbx_tmo_defaults[MBX_TMO_TCP_TIME_WAIT] + 1) *
						  rte_get_tsc_hz(),
				  1000),
		2);
	ck_assert_uint_eq(ctr(dp, FW_CTR_ENDED), 2);
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(simultaneous_open)
{
	struct mbx_dp *dp = fw_dp_rules(ALLOW_ALL, "", 1);
	struct sess s = session("10.0.0.1", "192.0.2.1", 40000);

	ck_assert(seg(dp, &s, IN, SYN, 0));
	/* the server's own SYN crosses the client's */
	s.seq[OUT]--;
	ck_assert(send_pkt(dp, tcp(s.s, s.c, s.sp, s.cp, SYN, s.seq[OUT], 0, 8192, 0, -1), OUT));
	s.seq[OUT]++;
	expect_state(dp, &s, FW_ST_SYN_RECV);
	/* each side answers the other's SYN with a SYN-ACK */
	ck_assert(send_pkt(
		dp, tcp(s.c, s.s, s.cp, s.sp, SYN | ACK, s.seq[IN] - 1, s.seq[OUT], 8192, 0, -1),
		IN));
	ck_assert(send_pkt(
		dp, tcp(s.s, s.c, s.sp, s.cp, SYN | ACK, s.seq[OUT] - 1, s.seq[IN], 8192, 0, -1),
		OUT));
	expect_state(dp, &s, FW_ST_SYN_RECV);
	ck_assert(seg(dp, &s, IN, ACK, 0));
	expect_state(dp, &s, FW_ST_ESTABLISHED);
	ck_assert(seg(dp, &s, OUT, ACK | PSH, 100));
	ck_assert(seg(dp, &s, IN, ACK | PSH, 100));
	ck_assert_uint_eq(mbx_dp_stat(dp, MBX_WSTAT_NF_DROP), 0);
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(rst_closes)
{
	struct mbx_dp *dp = fw_dp_rules(ALLOW_ALL, "", 1);
	struct sess s = session("10.0.0.1", "192.0.2.1", 40000);

	ck_assert(seg(dp, &s, IN, SYN, 0) && seg(dp, &s, OUT, SYN | ACK, 0) &&
		  seg(dp, &s, IN, ACK, 0) && seg(dp, &s, IN, ACK | PSH, 100));
	/* a blind RST far from the window is refused and changes nothing */
	ck_assert(!send_pkt(dp, tcp(s.s, s.c, s.sp, s.cp, RST, s.seq[OUT] + 3000000, 0, 0, 0, -1),
			    OUT));
	ck_assert_uint_eq(ctr(dp, FW_CTR_TCP_WINDOW), 1);
	expect_state(dp, &s, FW_ST_ESTABLISHED);
	ck_assert(seg(dp, &s, OUT, RST | ACK, 0));
	expect_state(dp, &s, FW_ST_CLOSED);
	/* nothing passes after it, either way, but a new SYN from the client */
	ck_assert(!seg(dp, &s, IN, ACK | PSH, 10));
	ck_assert(!seg(dp, &s, OUT, ACK, 0));
	ck_assert(!seg(dp, &s, OUT, SYN | ACK, 0));
	ck_assert_uint_eq(ctr(dp, FW_CTR_TCP_CLOSED), 3);
	expect_state(dp, &s, FW_ST_CLOSED);
	/* a RST refusing a SYN closes the attempt */
	s = session("10.0.0.1", "192.0.2.1", 40001);
	ck_assert(seg(dp, &s, IN, SYN, 0));
	ck_assert(send_pkt(dp, tcp(s.s, s.c, s.sp, s.cp, RST | ACK, 0, s.seq[IN], 0, 0, -1), OUT));
	expect_state(dp, &s, FW_ST_CLOSED);
	ck_assert_uint_eq(
		mbx_worker_expire(dp->workers[0],
				  rte_rdtsc() +
					  (uint64_t)(mbx_tmo_defaults[MBX_TMO_TCP_CLOSED] + 1) *
						  rte_get_tsc_hz(),
				  1000),
		2);
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(repeated_syn)
{
	struct mbx_dp *dp = fw_dp_rules(ALLOW_ALL, "", 1);
	struct sess s = session("10.0.0.1", "192.0.2.1", 40000);
	uint32_t isn = s.seq[IN];

	ck_assert(seg(dp, &s, IN, SYN, 0));
	s.seq[IN] = isn; /* the SYN again, as a retransmission */
	ck_assert(seg(dp, &s, IN, SYN, 0));
	expect_state(dp, &s, FW_ST_SYN_SENT);
	/* the client started over with a later ISN: answers to the old one are stale */
	s.seq[IN] = isn + 70000;
	ck_assert(seg(dp, &s, IN, SYN, 0));
	ck_assert(!send_pkt(
		dp, tcp(s.s, s.c, s.sp, s.cp, SYN | ACK, s.seq[OUT], isn + 1, 8192, 0, -1), OUT));
	ck_assert_uint_eq(ctr(dp, FW_CTR_TCP_WINDOW), 1);
	ck_assert(seg(dp, &s, OUT, SYN | ACK, 0));
	/* the SYN-ACK again, its ACK lost; a SYN from the client is out of place */
	s.seq[OUT]--;
	ck_assert(seg(dp, &s, OUT, SYN | ACK, 0));
	ck_assert(seg(dp, &s, IN, ACK, 0));
	s.seq[OUT]--;
	ck_assert(seg(dp, &s, OUT, SYN | ACK, 0));
	expect_state(dp, &s, FW_ST_ESTABLISHED);
	s.seq[IN]--;
	ck_assert(!seg(dp, &s, IN, SYN, 0));
	s.seq[IN]++;
	ck_assert_uint_eq(ctr(dp, FW_CTR_TCP_BAD_STATE), 1);
	/* data before the handshake is out of place too */
	s = session("10.0.0.1", "192.0.2.1", 40001);
	ck_assert(seg(dp, &s, IN, SYN, 0));
	ck_assert(!seg(dp, &s, IN, ACK | PSH, 10));
	ck_assert_uint_eq(ctr(dp, FW_CTR_TCP_BAD_STATE), 2);
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(windows)
{
	struct mbx_dp *dp = fw_dp_rules(ALLOW_ALL, "", 1);
	struct sess s = session("10.0.0.1", "192.0.2.1", 40000);
	uint32_t sent;

	ck_assert(seg(dp, &s, IN, SYN, 0) && seg(dp, &s, OUT, SYN | ACK, 0) &&
		  seg(dp, &s, IN, ACK, 0));
	sent = s.seq[IN];
	ck_assert(seg(dp, &s, IN, ACK | PSH, 1000));
	ck_assert(seg(dp, &s, IN, ACK | PSH, 1000));
	/* a retransmission of the first segment passes */
	ck_assert(send_pkt(
		dp, tcp(s.c, s.s, s.cp, s.sp, ACK | PSH, sent, s.seq[OUT], 8192, 1000, -1), IN));
	/* data beyond what the server allowed (its ack + 8192) does not */
	ck_assert(!send_pkt(
		dp,
		tcp(s.c, s.s, s.cp, s.sp, ACK | PSH, s.seq[IN] + 20000, s.seq[OUT], 8192, 100, -1),
		IN));
	/* nor data from long before the window, nor an ack of data never sent */
	ck_assert(!send_pkt(
		dp, tcp(s.c, s.s, s.cp, s.sp, ACK, sent - 100000, s.seq[OUT], 8192, 10, -1), IN));
	ck_assert(!send_pkt(
		dp, tcp(s.s, s.c, s.sp, s.cp, ACK, s.seq[OUT], s.seq[IN] + 5000, 8192, 0, -1),
		OUT));
	ck_assert_uint_eq(ctr(dp, FW_CTR_TCP_WINDOW), 3);
	expect_state(dp, &s, FW_ST_ESTABLISHED);
	/* the server acks and opens its window: the segment ahead now passes */
	ck_assert(send_pkt(dp, tcp(s.s, s.c, s.sp, s.cp, ACK, s.seq[OUT], s.seq[IN], 40000, 0, -1),
			   OUT));
	ck_assert(send_pkt(
		dp,
		tcp(s.c, s.s, s.cp, s.sp, ACK | PSH, s.seq[IN] + 20000, s.seq[OUT], 8192, 100, -1),
		IN));
	mbx_test_dp_free(dp);

	/* window_check=off lets them through */
	dp = fw_dp_rules(ALLOW_ALL, ",window_check=off", 1);
	s = session("10.0.0.1", "192.0.2.1", 40000);
	ck_assert(seg(dp, &s, IN, SYN, 0) && seg(dp, &s, OUT, SYN | ACK, 0) &&
		  seg(dp, &s, IN, ACK, 0));
	ck_assert(send_pkt(
		dp,
		tcp(s.c, s.s, s.cp, s.sp, ACK | PSH, s.seq[IN] + 20000, s.seq[OUT], 8192, 100, -1),
		IN));
	ck_assert_uint_eq(ctr(dp, FW_CTR_TCP_WINDOW), 0);
	mbx_test_dp_free(dp);
}
END_TEST

/* Window scaling counts only when both SYNs announce it. */
static bool
scaled_burst(bool both)
{
	struct mbx_dp *dp = fw_dp_rules(ALLOW_ALL, "", 1);
	struct sess s = session("10.0.0.1", "192.0.2.1", 40000);
	bool ok;

	s.ws[IN] = 7;
	s.ws[OUT] = both ? 7 : -1;
	ck_assert(seg(dp, &s, IN, SYN, 0) && seg(dp, &s, OUT, SYN | ACK, 0) &&
		  seg(dp, &s, IN, ACK, 0));
	/* the server allows 1000 << 7 = 128000 bytes: the client sends 100000 ahead */
	s.win[OUT] = 1000;
	ck_assert(seg(dp, &s, OUT, ACK, 0));
	ok = send_pkt(
		dp,
		tcp(s.c, s.s, s.cp, s.sp, ACK | PSH, s.seq[IN] + 100000, s.seq[OUT], 8192, 100, -1),
		IN);
	mbx_test_dp_free(dp);
	return ok;
}

START_TEST(window_scaling)
{
	ck_assert(scaled_burst(true));
	ck_assert(!scaled_burst(false));
}
END_TEST

START_TEST(first_packets_that_open_nothing)
{
	struct mbx_dp *dp = fw_dp_rules(ALLOW_ALL, "", 1);
	static const uint8_t bad_flags[] = {
		0, SYN | FIN, SYN | RST, FIN, FIN | RST | ACK, SYN | FIN | PSH | RTE_TCP_URG_FLAG};

	ck_assert(!send_pkt(dp, tcp("10.0.0.1", "192.0.2.1", 1, 80, ACK, 1, 1, 8192, 10, -1), IN));
	ck_assert(!send_pkt(dp, tcp("10.0.0.1", "192.0.2.1", 2, 80, SYN | ACK, 1, 1, 8192, 0, -1),
			    IN));
	ck_assert(!send_pkt(dp, tcp("10.0.0.1", "192.0.2.1", 3, 80, RST, 1, 0, 0, 0, -1), IN));
	ck_assert(
		!send_pkt(dp, tcp("10.0.0.1", "192.0.2.1", 4, 80, FIN | ACK, 1, 1, 0, 0, -1), IN));
	ck_assert_uint_eq(ctr(dp, FW_CTR_TCP_NO_CONN), 4);
	for (unsigned int i = 0; i < RTE_DIM(bad_flags); i++)
		ck_assert(!send_pkt(
			dp, tcp("10.0.0.1", "192.0.2.1", 10 + i, 80, bad_flags[i], 1, 0, 0, 0, -1),
			IN));
	ck_assert_uint_eq(ctr(dp, FW_CTR_TCP_BAD_FLAGS), RTE_DIM(bad_flags));
	/* an echo reply to no request */
	ck_assert(!send_pkt(dp, icmp("192.0.2.1", "10.0.0.1", 0, 7), OUT));
	ck_assert_uint_eq(ctr(dp, FW_CTR_ICMP_BAD), 1);
	/* refused flows leave nothing behind */
	ck_assert_uint_eq(mbx_dp_flows(dp), 0);
	ck_assert_uint_eq(fw_conns(fw_of(dp)), 0);
	mbx_test_dp_free(dp);

	/* pickup=on takes up a connection mid-stream, both ways, loosely */
	dp = fw_dp_rules(ALLOW_ALL, ",pickup=on", 1);
	ck_assert(send_pkt(dp, tcp("10.0.0.1", "192.0.2.1", 1, 80, ACK, 1, 1, 8192, 10, -1), IN));
	ck_assert(
		send_pkt(dp, tcp("192.0.2.1", "10.0.0.1", 80, 1, ACK, 1, 11, 8192, 100, -1), OUT));
	ck_assert(send_pkt(dp, tcp("10.0.0.1", "192.0.2.1", 1, 80, ACK, 500000, 1, 8192, 10, -1),
			   IN));
	ck_assert(!send_pkt(dp, tcp("10.0.0.1", "192.0.2.1", 2, 80, SYN | ACK, 1, 1, 8192, 0, -1),
			    IN));
	ck_assert(!send_pkt(dp, tcp("10.0.0.1", "192.0.2.1", 3, 80, RST, 1, 0, 0, 0, -1), IN));
	ck_assert_uint_eq(ctr(dp, FW_CTR_TCP_NO_CONN), 2);
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(icmp_errors)
{
	struct mbx_dp *dp = fw_dp_rules(ALLOW_ALL, "", 1);
	struct sess s = session("10.0.0.1", "192.0.2.1", 40000);

	ck_assert(send_pkt(dp, udp("10.0.0.1", "192.0.2.1", 5000, 53), IN));
	/* port unreachable from the server, time exceeded from a router on the way */
	ck_assert(send_pkt(
		dp,
		icmp_err("192.0.2.1", "10.0.0.1", 3, udp("10.0.0.1", "192.0.2.1", 5000, 53), 28),
		OUT));
	ck_assert(send_pkt(dp,
			   icmp_err("198.51.100.254", "10.0.0.1", 11,
				    udp("10.0.0.1", "192.0.2.1", 5000, 53), 200),
			   OUT));
	/* about a TCP connection, quoting its SYN */
	ck_assert(seg(dp, &s, IN, SYN, 0));
	ck_assert(send_pkt(dp,
			   icmp_err("198.51.100.254", "10.0.0.1", 3,
				    tcp(s.c, s.s, s.cp, s.sp, SYN, s.seq[IN] - 1, 0, 8192, 0, -1),
				    28),
			   OUT));
	/* an echo's error */
	ck_assert(send_pkt(dp, icmp("10.0.0.1", "192.0.2.1", 8, 99), IN));
	ck_assert(send_pkt(dp,
			   icmp_err("198.51.100.254", "10.0.0.1", 11,
				    icmp("10.0.0.1", "192.0.2.1", 8, 99), 28),
			   OUT));
	ck_assert_uint_eq(ctr(dp, FW_CTR_ICMP_RELATED), 4);
	/* unrelated: another port, another protocol, sent to a host that did not send the packet */
	ck_assert(!send_pkt(
		dp,
		icmp_err("192.0.2.1", "10.0.0.1", 3, udp("10.0.0.1", "192.0.2.1", 5001, 53), 28),
		OUT));
	ck_assert(
		!send_pkt(dp,
			  icmp_err("192.0.2.1", "10.0.0.1", 3,
				   tcp("10.0.0.1", "192.0.2.1", 5000, 53, SYN, 1, 0, 0, 0, -1), 28),
			  OUT));
	ck_assert(!send_pkt(
		dp,
		icmp_err("192.0.2.1", "10.0.0.2", 3, udp("10.0.0.1", "192.0.2.1", 5000, 53), 28),
		OUT));
	/* a quote too short for the ports, an error about an error */
	ck_assert(!send_pkt(
		dp,
		icmp_err("192.0.2.1", "10.0.0.1", 3, udp("10.0.0.1", "192.0.2.1", 5000, 53), 24),
		OUT));
	ck_assert(!send_pkt(dp,
			    icmp_err("192.0.2.1", "10.0.0.1", 3,
				     icmp_err("10.0.0.1", "192.0.2.1", 3,
					      udp("192.0.2.1", "10.0.0.1", 53, 5000), 28),
				     56),
			    OUT));
	ck_assert_uint_eq(ctr(dp, FW_CTR_ICMP_UNRELATED), 5);
	/* the passed errors' own entries (one per sender) are no connections and go soon */
	ck_assert_uint_eq(fw_conns(fw_of(dp)), 3);
	ck_assert_uint_eq(
		mbx_worker_expire(dp->workers[0],
				  rte_rdtsc() +
					  (uint64_t)(mbx_tmo_defaults[MBX_TMO_TCP_CLOSED] + 1) *
						  rte_get_tsc_hz(),
				  1000),
		2);
	ck_assert_uint_eq(fw_conns(fw_of(dp)), 3);
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(udp_and_echo)
{
	struct mbx_dp *dp = fw_dp_rules("allow src=10.0.0.0/8\n", "", 1);
	struct mbx_flow *f;

	ck_assert(send_pkt(dp, udp("10.0.0.1", "192.0.2.1", 5000, 53), IN));
	f = flow_of(dp, IPPROTO_UDP, "10.0.0.1", "192.0.2.1", 5000, 53);
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(conn_of(dp, f)->state, FW_ST_UDP_UNREPLIED);
	ck_assert_uint_eq(f->tmo_class, MBX_TMO_UDP_FIRST);
	ck_assert(send_pkt(dp, udp("192.0.2.1", "10.0.0.1", 53, 5000), OUT));
	ck_assert_uint_eq(conn_of(dp, f)->state, FW_ST_UDP_REPLIED);
	ck_assert_uint_eq(f->tmo_class, MBX_TMO_UDP);
	ck_assert(send_pkt(dp, udp("10.0.0.1", "192.0.2.1", 5000, 53), IN));
	/* from another port of the server: another flow, which the rules refuse */
	ck_assert(!send_pkt(dp, udp("192.0.2.1", "10.0.0.1", 54, 5000), OUT));
	ck_assert_uint_eq(ctr(dp, FW_CTR_DENIED), 1);

	/* echo: requests out, replies back, nothing else on the identifier */
	ck_assert(send_pkt(dp, icmp("10.0.0.1", "192.0.2.1", 8, 42), IN));
	ck_assert(send_pkt(dp, icmp("192.0.2.1", "10.0.0.1", 0, 42), OUT));
	ck_assert(!send_pkt(dp, icmp("192.0.2.1", "10.0.0.1", 8, 42), OUT));
	ck_assert(!send_pkt(dp, icmp("10.0.0.1", "192.0.2.1", 0, 42), IN));
	ck_assert_uint_eq(ctr(dp, FW_CTR_ICMP_BAD), 2);
	f = flow_of(dp, IPPROTO_ICMP, "10.0.0.1", "192.0.2.1", 42, 42);
	ck_assert_uint_eq(conn_of(dp, f)->state, FW_ST_ICMP_ECHO);
	ck_assert_uint_eq(f->tmo_class, MBX_TMO_ICMP);
	/* another protocol is a pseudo-connection too */
	{
		uint8_t gre[8] = {0};

		ck_assert(send_pkt(dp, ip_frame("10.0.0.1", "192.0.2.1", IPPROTO_GRE, gre, 8), IN));
		ck_assert(
			send_pkt(dp, ip_frame("192.0.2.1", "10.0.0.1", IPPROTO_GRE, gre, 8), OUT));
		ck_assert(
			!send_pkt(dp, ip_frame("192.0.2.2", "10.0.0.1", IPPROTO_GRE, gre, 8), OUT));
	}
	ck_assert_uint_eq(ctr(dp, FW_CTR_DENIED), 2);
	ck_assert_uint_eq(ctr(dp, FW_CTR_ALLOWED), 3);
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(replies_of_denied_flows)
{
	struct mbx_dp *dp = fw_dp_rules("deny dport=53\nallow src=10.0.0.0/8\n", "", 1);

	ck_assert(!send_pkt(dp, udp("10.0.0.1", "192.0.2.1", 5000, 53), IN));
	ck_assert(!send_pkt(dp, udp("192.0.2.1", "10.0.0.1", 53, 5000), OUT));
	ck_assert_uint_eq(ctr(dp, FW_CTR_DENIED), 2);
	ck_assert(
		!send_pkt(dp, tcp("10.0.0.1", "192.0.2.1", 40000, 53, SYN, 1, 0, 8192, 0, -1), IN));
	ck_assert(!send_pkt(
		dp, tcp("192.0.2.1", "10.0.0.1", 53, 40000, SYN | ACK, 7, 2, 8192, 0, -1), OUT));
	ck_assert_uint_eq(ctr(dp, FW_CTR_DENIED), 3);
	ck_assert_uint_eq(ctr(dp, FW_CTR_TCP_NO_CONN), 1);
	ck_assert_uint_eq(mbx_dp_flows(dp), 0);
	mbx_test_dp_free(dp);
}
END_TEST

/* Verdicts of a few keys under a rule set: '+' allowed, '-' denied. */
static void
verdicts(struct mbx_dp *dp, char *out)
{
	out[0] = send_pkt(dp, udp("10.9.1.5", "192.0.2.1", 1, 53), IN) ? '+' : '-';
	out[1] = send_pkt(dp, udp("10.9.2.5", "192.0.2.1", 1, 53), IN) ? '+' : '-';
	out[2] = send_pkt(dp, udp("10.8.0.1", "192.0.2.1", 1, 53), IN) ? '+' : '-';
	out[3] = send_pkt(dp, udp("10.8.0.1", "192.0.2.1", 1, 54), IN) ? '+' : '-';
	out[4] = send_pkt(dp, tcp("10.8.0.1", "192.0.2.1", 1, 53, SYN, 1, 0, 1, 0, -1), IN) ? '+'
											    : '-';
	out[5] = send_pkt(dp, udp("2001:db8::1", "2001:db8:1::1", 1, 443), IN) ? '+' : '-';
	out[6] = send_pkt(dp, udp("2001:db8::1", "2001:db8:2::1", 1, 443), IN) ? '+' : '-';
	out[7] = '\0';
}

START_TEST(rule_order_and_default)
{
	/* first match wins: the /16 deny hides the /24 allow after it */
	static const char rules[] = "# a comment, then a blank line\n\n"
				    "deny src=10.9.0.0/16   # all of 10.9\n"
				    "allow src=10.9.1.0/24\n"
				    "  allow proto=udp,dport=53\n"
				    "allow dst=2001:db8:1::/48,dport=400-500\n";
	static const char pad[] = "deny src=172.16.0.0/12,dport=1\n";
	char text[2048], v[8];
	struct mbx_dp *dp;

	dp = fw_dp_rules(rules, "", 1);
	ck_assert(!fw_of(dp)->rules->acl);
	verdicts(dp, v);
	ck_assert_str_eq(v, "--+--+-");
	mbx_test_dp_free(dp);
	dp = fw_dp_rules(rules, ",default=allow", 1);
	verdicts(dp, v);
	ck_assert_str_eq(v, "--+++++");
	mbx_test_dp_free(dp);
	/* the same with rte_acl (more rules that match none of these) */
	snprintf(text, sizeof(text), "%s%s%s%s%s%s%s%s", rules, pad, pad, pad, pad, pad, pad, pad);
	dp = fw_dp_rules(text, ",default=deny", 1);
	ck_assert(fw_of(dp)->rules->acl);
	ck_assert_uint_eq(fw_of(dp)->rules->n, 11);
	verdicts(dp, v);
	ck_assert_str_eq(v, "--+--+-");
	mbx_test_dp_free(dp);
}
END_TEST

/* A random prefix of @family for rule @r. */
static void
random_prefix(struct mbx_prefix *p, uint8_t family)
{
	static const uint8_t lens4[] = {0, 8, 16, 24, 28, 32}, lens6[] = {0, 16, 33, 64, 100, 128};

	memset(p, 0, sizeof(*p));
	/* few distinct networks, so that random keys match often */
	if (family == MBX_FAMILY_V6) {
		p->addr.v6[0] = 0x20;
		p->addr.v6[1] = 0x01;
		p->addr.v6[5] = (uint8_t)(rte_rand() % 4);
		p->addr.v6[15] = (uint8_t)(rte_rand() % 4);
		p->len = lens6[rte_rand() % RTE_DIM(lens6)];
	} else {
		p->addr.v4 = rte_cpu_to_be_32(0x0a000000 | (uint32_t)(rte_rand() % 4) << 16 |
					      (uint32_t)(rte_rand() % 4));
		p->len = lens4[rte_rand() % RTE_DIM(lens4)];
	}
}

START_TEST(acl_agrees_with_the_scan)
{
	static struct fw_rule rules[300];
	struct fw_rules *lin, *acl;
	unsigned int hits = 0;

	rte_srand(20240601);
	for (unsigned int i = 0; i < RTE_DIM(rules); i++) {
		struct mbx_filter *f = &rules[i].match;
		uint8_t fam = (rte_rand() % 3) == 0 ? MBX_FAMILY_V6 : MBX_FAMILY_V4;
		uint16_t lo = (uint16_t)(rte_rand() % 200);

		mbx_filter_init(f);
		rules[i].allow = rte_rand() % 2;
		if (rte_rand() % 4 != 0) {
			f->family = fam;
			random_prefix(&f->src, fam);
			random_prefix(&f->dst, fam);
		}
		f->proto = (uint8_t)(rte_rand() % 3 == 0 ? 0 : rte_rand() % 2 ? 6 : 17);
		if (rte_rand() % 2)
			f->dport = (struct mbx_port_range){lo, (uint16_t)(lo + rte_rand() % 50)};
		if (rte_rand() % 4 == 0)
			f->sport = (struct mbx_port_range){lo, (uint16_t)(lo + 100)};
	}
	lin = fw_rules_create(rules, RTE_DIM(rules), false, UINT32_MAX, 0);
	acl = fw_rules_create(rules, RTE_DIM(rules), false, 1, 0);
	ck_assert_ptr_nonnull(lin);
	ck_assert_ptr_nonnull(acl);
	ck_assert(!lin->acl && acl->acl);
	ck_assert_uint_eq(lin->version, acl->version);
	for (unsigned int i = 0; i < 20000; i++) {
		struct mbx_flow_key k;
		struct mbx_prefix p;
		int a, b;

		memset(&k, 0, sizeof(k));
		k.family = rte_rand() % 3 == 0 ? MBX_FAMILY_V6 : MBX_FAMILY_V4;
		random_prefix(&p, k.family);
		k.src = p.addr;
		random_prefix(&p, k.family);
		k.dst = p.addr;
		k.proto = rte_rand() % 2 ? 6 : 17;
		k.sport = rte_cpu_to_be_16((uint16_t)(rte_rand() % 300));
		k.dport = rte_cpu_to_be_16((uint16_t)(rte_rand() % 300));
		a = fw_rules_match(lin, &k);
		b = fw_rules_match(acl, &k);
		ck_assert_msg(a == b, "key %u: scan says rule %d, rte_acl rule %d", i, a, b);
		hits += a >= 0;
	}
	/* most keys match some rule, so the comparison means something */
	ck_assert_uint_gt(hits, 10000);
	fw_rules_free(lin);
	fw_rules_free(acl);
}
END_TEST

START_TEST(conn_limit)
{
	struct mbx_dp *dp = fw_dp_rules(ALLOW_ALL, ",conn_limit=3", 1);

	for (uint16_t p = 1; p <= 3; p++)
		ck_assert(send_pkt(dp, udp("10.0.0.1", "192.0.2.1", p, 53), IN));
	ck_assert(!send_pkt(dp, udp("10.0.0.1", "192.0.2.1", 4, 53), IN));
	ck_assert(!send_pkt(dp, tcp("10.0.0.1", "192.0.2.1", 5, 80, SYN, 1, 0, 1, 0, -1), IN));
	ck_assert_uint_eq(ctr(dp, FW_CTR_CONN_LIMIT), 2);
	/* packets of its connections still pass; other hosts are not limited by it */
	ck_assert(send_pkt(dp, udp("10.0.0.1", "192.0.2.1", 2, 53), IN));
	ck_assert(send_pkt(dp, udp("192.0.2.1", "10.0.0.1", 53, 3), OUT));
	ck_assert(send_pkt(dp, udp("10.0.0.2", "192.0.2.1", 4, 53), IN));
	ck_assert_uint_eq(fw_conns(fw_of(dp)), 4);
	/* the unreplied flows expire; the host may open connections again */
	ck_assert_uint_eq(
		mbx_worker_expire(dp->workers[0],
				  rte_rdtsc() +
					  (uint64_t)(mbx_tmo_defaults[MBX_TMO_UDP_FIRST] + 1) *
						  rte_get_tsc_hz(),
				  1000),
		3);
	ck_assert_uint_eq(fw_conns(fw_of(dp)), 1);
	ck_assert(send_pkt(dp, udp("10.0.0.1", "192.0.2.1", 4, 53), IN));
	ck_assert(send_pkt(dp, udp("10.0.0.1", "192.0.2.1", 5, 53), IN));
	ck_assert(!send_pkt(dp, udp("10.0.0.1", "192.0.2.1", 6, 53), IN));
	ck_assert_uint_eq(ctr(dp, FW_CTR_CONN_LIMIT), 3);
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(ipv6)
{
	struct mbx_dp *dp = fw_dp_rules("allow src=2001:db8:a::/48\n", "", 1);
	struct sess s = session("2001:db8:a::1", "2001:db8:b::1", 40000);
	struct rte_mbuf *syn;

	ck_assert(seg(dp, &s, IN, SYN, 0) && seg(dp, &s, OUT, SYN | ACK, 0) &&
		  seg(dp, &s, IN, ACK, 0));
	expect_state(dp, &s, FW_ST_ESTABLISHED);
	ck_assert(seg(dp, &s, OUT, ACK | PSH, 500));
	ck_assert(!send_pkt(
		dp, tcp(s.s, s.c, s.sp, s.cp, ACK, s.seq[OUT] + 900000, s.seq[IN], 8192, 10, -1),
		OUT));
	ck_assert_uint_eq(ctr(dp, FW_CTR_TCP_WINDOW), 1);
	/* packet too big from a router, about the connection; and about another */
	syn = tcp(s.c, s.s, s.cp, s.sp, ACK, s.seq[IN], s.seq[OUT], 8192, 100, -1);
	ck_assert(send_pkt(dp, icmp_err("2001:db8:ff::1", s.c, 2, syn, 48), OUT));
	syn = tcp(s.c, s.s, s.cp + 1, s.sp, ACK, s.seq[IN], s.seq[OUT], 8192, 100, -1);
	ck_assert(!send_pkt(dp, icmp_err("2001:db8:ff::1", s.c, 2, syn, 48), OUT));
	/* echo and UDP; the rules see the source */
	ck_assert(send_pkt(dp, icmp(s.c, s.s, 128, 9), IN));
	ck_assert(send_pkt(dp, icmp(s.s, s.c, 129, 9), OUT));
	ck_assert(send_pkt(dp, udp(s.c, s.s, 1, 2), IN));
	ck_assert(send_pkt(dp, udp(s.s, s.c, 2, 1), OUT));
	ck_assert(!send_pkt(dp, udp(s.s, s.c, 3, 1), OUT));
	ck_assert_uint_eq(ctr(dp, FW_CTR_ICMP_RELATED), 1);
	ck_assert_uint_eq(ctr(dp, FW_CTR_ICMP_UNRELATED), 1);
	ck_assert_uint_eq(ctr(dp, FW_CTR_DENIED), 1);
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(two_workers)
{
	struct mbx_dp *dp = fw_dp_rules(ALLOW_ALL, "", 2);
	char host[32];

	for (int h = 1; h <= 24; h++) {
		struct sess s;

		snprintf(host, sizeof(host), "10.0.1.%d", h);
		s = session(host, "192.0.2.1", 40000);
		/* inside packets arrive at worker 0, outside ones at worker 1 */
		ck_assert(seg(dp, &s, IN, SYN, 0));
		ck_assert(seg(dp, &s, OUT, SYN | ACK, 0));
		ck_assert(seg(dp, &s, IN, ACK, 0));
		ck_assert(seg(dp, &s, OUT, ACK | PSH, 100));
		ck_assert(send_pkt(dp,
				   icmp_err("198.51.100.1", host, 3,
					    tcp(s.c, s.s, s.cp, s.sp, ACK, s.seq[IN], 0, 1, 0, -1),
					    28),
				   OUT));
		/* and a connection opened from the outside */
		s = session(host, "203.0.113.9", 50000);
		ck_assert(seg(dp, &s, OUT, SYN, 0) && seg(dp, &s, IN, SYN | ACK, 0) &&
			  seg(dp, &s, OUT, ACK, 0) && seg(dp, &s, IN, ACK | PSH, 10));
		expect_state(dp, &s, FW_ST_ESTABLISHED);
	}
	for (int w = 0; w < 2; w++)
		ck_assert_uint_gt(mbx_table_count(dp->workers[w]->table), 0);
	ck_assert_uint_gt(mbx_dp_stat(dp, MBX_WSTAT_HANDOFF_OUT), 0);
	ck_assert_uint_eq(ctr(dp, FW_CTR_ICMP_RELATED), 24);
	ck_assert_uint_eq(mbx_dp_stat(dp, MBX_WSTAT_NF_DROP), 0);
	mbx_test_dp_free(dp);
}
END_TEST

/* The port of a packet that left (source or destination), and the packet freed. */
static uint16_t
port_of(struct rte_mbuf *m, bool dst)
{
	struct rte_tcp_hdr *th =
		rte_pktmbuf_mtod_offset(m, struct rte_tcp_hdr *,
					sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr));
	uint16_t port = rte_be_to_cpu_16(dst ? th->dst_port : th->src_port);

	rte_pktmbuf_free(m);
	return port;
}

START_TEST(chain_with_nat)
{
	char spec[128];
	const char *nfs[] = {spec, "nat,ext_ip=198.51.100.1", NULL};
	struct mbx_dp *dp;
	struct rte_mbuf *o;

	snprintf(spec, sizeof(spec), "fw,rules=%s", rules_file("allow src=10.0.0.0/8\n"));
	dp = mbx_test_dp(nfs, 2, 2, 4096);
	unlink(rules_path);
	ck_assert_ptr_nonnull(dp);
	for (int h = 1; h <= 8; h++) {
		char host[32];
		struct sess s;
		uint16_t ext;

		snprintf(host, sizeof(host), "10.0.2.%d", h);
		s = session(host, "192.0.2.1", 40000);
		/* fw judges the inside addresses, nat translates after it */
		o = send_out(dp, tcp(s.c, s.s, s.cp, s.sp, SYN, s.seq[IN]++, 0, 8192, 0, -1), IN);
		ck_assert_ptr_nonnull(o);
		ext = port_of(o, false);
		/* replies reach nat first (its external port), then fw as the reply */
		o = send_out(dp,
			     tcp(s.s, "198.51.100.1", s.sp, ext, SYN | ACK, s.seq[OUT]++, s.seq[IN],
				 8192, 0, -1),
			     OUT);
		ck_assert_ptr_nonnull(o);
		ck_assert_uint_eq(port_of(o, true), s.cp);
		o = send_out(dp, tcp(s.c, s.s, s.cp, s.sp, ACK, s.seq[IN], s.seq[OUT], 8192, 0, -1),
			     IN);
		ck_assert_ptr_nonnull(o);
		rte_pktmbuf_free(o);
		expect_state(dp, &s, FW_ST_ESTABLISHED);
		ck_assert_ptr_null(send_out(dp,
					    tcp(s.s, "198.51.100.1", s.sp, ext, ACK,
						s.seq[OUT] + 900000, s.seq[IN], 8192, 10, -1),
					    OUT));
	}
	ck_assert_uint_eq(ctr(dp, FW_CTR_TCP_WINDOW), 8);
	ck_assert_uint_eq(ctr(dp, FW_CTR_ALLOWED), 8);
	/* a new connection from the outside: nat has no mapping, fw never sees it */
	ck_assert_ptr_null(
		send_out(dp, tcp("192.0.2.1", "198.51.100.1", 80, 1, SYN, 1, 0, 1, 0, -1), OUT));
	ck_assert_uint_eq(ctr(dp, FW_CTR_DENIED), 0);
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(bad_arguments_are_refused)
{
	static const char *const bad[] = {
		"fw,default=maybe",
		"fw,conn_limit=-1",
		"fw,conn_limit=12x",
		"fw,window_check=yes",
		"fw,pickup",
		"fw,colour=red",
		"fw,rules=/nonexistent/rules",
		"fw,default=allow,default=deny",
	};
	static const char *const bad_files[] = {
		"allow src=10.0.0.0/33\n",	     "permit src=10.0.0.0/8\n",
		"allow src=10.0.0.0/8, dport=80\n",  "allow dport=80-70\n",
		"allow src=10.0.0.1,src=10.0.0.2\n", "allow src=10.0.0.0/8,dst=2001:db8::/32\n",
	};
	char spec[128];

	for (unsigned int i = 0; i < RTE_DIM(bad); i++) {
		const char *nfs[] = {bad[i], NULL};

		ck_assert_msg(mbx_test_dp(nfs, 1, 2, 64) == NULL, "%s accepted", bad[i]);
	}
	for (unsigned int i = 0; i < RTE_DIM(bad_files); i++) {
		const char *nfs[] = {spec, NULL};

		snprintf(spec, sizeof(spec), "fw,rules=%s", rules_file(bad_files[i]));
		ck_assert_msg(mbx_test_dp(nfs, 1, 2, 64) == NULL, "rules '%s' accepted",
			      bad_files[i]);
		unlink(rules_path);
	}
}
END_TEST

/* State export and import, as the southbound carries it. */

struct recs {
	uint8_t buf[1 << 18];
	size_t len;
};

static int
emit_rec(void *arg, const struct mbx_flow_key *key, const struct mbx_flow_key *reply,
	 const uint8_t *state, size_t len)
{
	struct recs *r = arg;
	struct mbx_state_rec *rec = (struct mbx_state_rec *)(r->buf + r->len);

	(void)key;
	(void)reply;
	memset(rec, 0, sizeof(*rec));
	rec->len = (uint32_t)mbx_state_rec_size(len);
	rec->scope = MBX_SCOPE_ALL_FLOWS;
	rec->state_len = (uint32_t)len;
	memcpy(rec->state, state, len);
	r->len += rec->len;
	return 0;
}

static void export(struct mbx_dp *dp, struct recs *per, struct recs *multi)
{
	per->len = multi->len = 0;
	for (uint16_t w = 0; w < dp->nb_workers; w++) {
		struct mbx_export x = {.nf = -1, .max_slots = 4096, .cursor = 0};
		struct mbx_multi_get g = {.nf = -1, .buf = multi->buf + multi->len};

		mbx_filter_init(&x.filter);
		while (x.cursor != UINT32_MAX) {
			x.buf = per->buf + per->len;
			x.cap = sizeof(per->buf) - per->len;
			ck_assert_int_eq(mbx_state_export_slice(dp->workers[w], &x), 0);
			per->len += x.used;
		}
		mbx_filter_init(&g.filter);
		g.cap = sizeof(multi->buf) - multi->len;
		ck_assert_int_eq(mbx_state_multi_get(dp->workers[w], &g), 0);
		multi->len += g.used;
	}
}

/* Install records on their owners, as a Put does; stops at the first refusal. */
static int
import(struct mbx_dp *dp, const struct recs *r)
{
	static uint8_t mine[1 << 18];
	static struct mbx_undo undo[1024];

	for (uint16_t w = 0; w < dp->nb_workers; w++) {
		struct mbx_import im = {.recs = mine, .undo = undo};
		const struct mbx_state_rec *rec;
		size_t n = 0;
		int rc;

		for (rec = (const void *)r->buf; (const uint8_t *)rec < r->buf + r->len;
		     rec = mbx_state_rec_next(rec)) {
			if (mbx_state_owner(dp, &rec->key, rec->side) != w)
				continue;
			memcpy(mine + n, rec, rec->len);
			n += rec->len;
		}
		im.len = n;
		rc = mbx_state_import(dp->workers[w], &im);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int
all_put(struct mbx_dp *dp, const struct recs *r)
{
	const struct mbx_state_rec *rec = (const void *)r->buf;
	const struct mbx_nf_ops *ops = dp->chain.nf[0].ops;
	int rc = ops->all_put(fw_of(dp), rec->state, rec->state_len, false);

	return rc < 0 ? rc : ops->all_put(fw_of(dp), rec->state, rec->state_len, true);
}

static uint32_t
host_conns(struct mbx_dp *dp, const struct recs *multi, const char *host)
{
	union mbx_addr a;
	uint32_t n = 0;

	addr(host, &a);
	for (const struct mbx_state_rec *rec = (const void *)multi->buf;
	     (const uint8_t *)rec < multi->buf + multi->len; rec = mbx_state_rec_next(rec)) {
		Mbx__V1__FwHostConns *m =
			mbx__v1__fw_host_conns__unpack(NULL, rec->state_len, rec->state);

		ck_assert_ptr_nonnull(m);
		ck_assert_mem_eq(&rec->key.src, m->host.data, m->host.len);
		if (memcmp(&a, m->host.data, m->host.len) == 0)
			n += m->conns;
		mbx__v1__fw_host_conns__free_unpacked(m, NULL);
	}
	(void)dp;
	return n;
}

START_TEST(state_moves_keep_verdicts)
{
	static const char rules[] = "allow src=10.0.0.0/8\n";
	struct mbx_dp *a = fw_dp_rules(rules, ",conn_limit=3", 1);
	struct mbx_dp *b = fw_dp_rules(rules, ",conn_limit=3", 2);
	struct mbx_dp *c = fw_dp_rules("allow proto=udp\n", "", 1);
	static struct recs per, multi, all, per_b, multi_b, all_c;
	struct sess s = session("10.0.0.1", "192.0.2.1", 40000);
	struct sess t = session("10.0.0.2", "192.0.2.1", 40000);

	/* A: an established connection with data, one closing, a UDP and an echo */
	s.ws[IN] = s.ws[OUT] = 2;
	ck_assert(seg(a, &s, IN, SYN, 0) && seg(a, &s, OUT, SYN | ACK, 0) &&
		  seg(a, &s, IN, ACK, 0) && seg(a, &s, IN, ACK | PSH, 700));
	ck_assert(seg(a, &t, IN, SYN, 0) && seg(a, &t, OUT, SYN | ACK, 0) &&
		  seg(a, &t, IN, ACK, 0) && seg(a, &t, IN, FIN | ACK, 0));
	ck_assert(send_pkt(a, udp("10.0.0.1", "192.0.2.1", 5000, 53), IN));
	ck_assert(send_pkt(a, icmp("10.0.0.1", "192.0.2.1", 8, 5), IN));
	export(a, &per, &multi);
	ck_assert_uint_eq(host_conns(a, &multi, "10.0.0.1"), 3);
	ck_assert_uint_eq(host_conns(a, &multi, "10.0.0.2"), 1);
	all.len = 0;
	ck_assert_int_eq(a->chain.nf[0].ops->all_get(fw_of(a), emit_rec, &all), 0);

	/* into B (two workers): the same rules are a no-op; then hosts and connections */
	ck_assert_int_eq(all_put(b, &all), 0);
	ck_assert_int_eq(import(b, &multi), 0);
	ck_assert_uint_eq(fw_conns(fw_of(b)), 0);
	ck_assert_int_eq(import(b, &per), 0);
	ck_assert_uint_eq(mbx_dp_flows(b), 4);
	ck_assert_uint_eq(fw_conns(fw_of(b)), 4);
	export(b, &per_b, &multi_b);
	ck_assert_uint_eq(host_conns(b, &multi_b, "10.0.0.1"), 3);
	expect_state(b, &s, FW_ST_ESTABLISHED);
	expect_state(b, &t, FW_ST_FIN_WAIT);
	/* the connections go on at B as they would have at A */
	ck_assert(seg(b, &s, OUT, ACK | PSH, 300));
	ck_assert(seg(b, &s, IN, ACK | PSH, 100));
	ck_assert(!send_pkt(
		b, tcp(s.c, s.s, s.cp, s.sp, ACK, s.seq[IN] + 5000000, s.seq[OUT], 100, 10, -1),
		IN));
	ck_assert(seg(b, &t, OUT, FIN | ACK, 0) && seg(b, &t, IN, ACK, 0));
	expect_state(b, &t, FW_ST_TIME_WAIT);
	ck_assert(send_pkt(b, udp("192.0.2.1", "10.0.0.1", 53, 5000), OUT));
	ck_assert(send_pkt(b, icmp("192.0.2.1", "10.0.0.1", 0, 5), OUT));
	/* conn_limit counts the imported connections */
	ck_assert(!send_pkt(b, udp("10.0.0.1", "192.0.2.1", 5001, 53), IN));
	ck_assert_uint_eq(ctr(b, FW_CTR_CONN_LIMIT), 1);
	/* a non-SYN of an unknown connection is still refused */
	ck_assert(!send_pkt(b, tcp(s.c, s.s, s.cp + 1, s.sp, ACK, 1, 1, 100, 10, -1), IN));
	ck_assert_uint_eq(ctr(b, FW_CTR_TCP_NO_CONN), 1);
	/* the same connections again: refused, nothing changes */
	ck_assert_int_eq(import(b, &per), -EEXIST);
	ck_assert_uint_eq(fw_conns(fw_of(b)), 4);

	/* C has other rules and a connection: it refuses A's rules */
	ck_assert(send_pkt(c, udp("10.0.0.9", "192.0.2.1", 1, 2), IN));
	ck_assert_int_eq(all_put(c, &all), -EBUSY);
	all_c.len = 0;
	ck_assert_int_eq(c->chain.nf[0].ops->all_get(fw_of(c), emit_rec, &all_c), 0);
	ck_assert_uint_eq(fw_of(c)->rules->n, 1);
	ck_assert_uint_eq(fw_of(c)->rules->rule[0].match.proto, IPPROTO_UDP);
	/* with no connection left it takes them, and they decide */
	ck_assert_uint_eq(
		mbx_worker_expire(c->workers[0],
				  rte_rdtsc() +
					  (uint64_t)(mbx_tmo_defaults[MBX_TMO_UDP_FIRST] + 1) *
						  rte_get_tsc_hz(),
				  100),
		1);
	ck_assert_int_eq(all_put(c, &all), 0);
	ck_assert_uint_eq(fw_of(c)->rules->version, fw_of(a)->rules->version);
	ck_assert(send_pkt(c, udp("10.0.0.9", "192.0.2.1", 1, 2), IN));
	ck_assert(!send_pkt(c, udp("192.0.2.9", "192.0.2.1", 1, 2), IN));
	/* a bad message changes nothing */
	ck_assert_int_eq(
		c->chain.nf[0].ops->all_put(fw_of(c), (const uint8_t *)"\xff\xff", 2, false),
		-EBADMSG);
	mbx_test_dp_free(a);
	mbx_test_dp_free(b);
	mbx_test_dp_free(c);
}
END_TEST

START_TEST(codec_refusals)
{
	struct mbx_dp *dp = fw_dp_rules(ALLOW_ALL, "", 1);
	const struct mbx_nf_ops *ops = dp->chain.nf[0].ops;
	struct mbx_nf_ctx *x = &dp->workers[0]->nf[0];
	Mbx__V1__FwConnState m = MBX__V1__FW_CONN_STATE__INIT;
	Mbx__V1__FwTcpPeer peer = MBX__V1__FW_TCP_PEER__INIT;
	uint8_t buf[128];
	struct mbx_flow *f;
	uint32_t slot;
	size_t len;

	ck_assert(send_pkt(dp, udp("10.0.0.1", "192.0.2.1", 1, 2), IN));
	f = flow_of(dp, IPPROTO_UDP, "10.0.0.1", "192.0.2.1", 1, 2);
	ck_assert_int_eq(ops->flow_get(x, f, NULL, 0), -ENOBUFS);
	/* the flow holds state already */
	m.state = MBX__V1__FW_STATE__FW_STATE_UDP_REPLIED;
	len = mbx__v1__fw_conn_state__pack(&m, buf);
	ck_assert_int_eq(ops->flow_put(x, f, buf, len), -EEXIST);
	slot = conn_of(dp, f)->host - 1;
	memset(conn_of(dp, f), 0, sizeof(struct fw_conn));
	fw_host_put(x->priv, slot);
	ck_assert_int_eq(ops->flow_get(x, f, NULL, 0), 0);
	/* a TCP state for a UDP flow, TCP windows for UDP, no state, garbage */
	m.state = MBX__V1__FW_STATE__FW_STATE_ESTABLISHED;
	m.orig = m.reply = &peer;
	len = mbx__v1__fw_conn_state__pack(&m, buf);
	ck_assert_int_eq(ops->flow_put(x, f, buf, len), -EINVAL);
	m.state = MBX__V1__FW_STATE__FW_STATE_UDP_REPLIED;
	len = mbx__v1__fw_conn_state__pack(&m, buf);
	ck_assert_int_eq(ops->flow_put(x, f, buf, len), -EINVAL);
	m.orig = m.reply = NULL;
	m.state = MBX__V1__FW_STATE__FW_STATE_NONE;
	len = mbx__v1__fw_conn_state__pack(&m, buf);
	ck_assert_int_eq(ops->flow_put(x, f, buf, len), -EINVAL);
	ck_assert_int_eq(ops->flow_put(x, f, (const uint8_t *)"\x08\xff", 2), -EBADMSG);
	ck_assert_int_eq(ops->flow_get(x, f, NULL, 0), 0);
	ck_assert_uint_eq(fw_conns(fw_of(dp)), 0);
	/* and a good one counts for the host */
	m.state = MBX__V1__FW_STATE__FW_STATE_UDP_REPLIED;
	len = mbx__v1__fw_conn_state__pack(&m, buf);
	ck_assert_int_eq(ops->flow_put(x, f, buf, len), 0);
	ck_assert_uint_eq(fw_conns(fw_of(dp)), 1);
	ck_assert_uint_eq(f->tmo_class, MBX_TMO_UDP);
	mbx_test_dp_free(dp);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("fw");
	TCase *tc = tcase_create("fw");
	SRunner *sr;
	int failed;

	mbx_test_eal("fw");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, handshake_data_close);
	tcase_add_test(tc, simultaneous_open);
	tcase_add_test(tc, rst_closes);
	tcase_add_test(tc, repeated_syn);
	tcase_add_test(tc, windows);
	tcase_add_test(tc, window_scaling);
	tcase_add_test(tc, first_packets_that_open_nothing);
	tcase_add_test(tc, icmp_errors);
	tcase_add_test(tc, udp_and_echo);
	tcase_add_test(tc, replies_of_denied_flows);
	tcase_add_test(tc, rule_order_and_default);
	tcase_add_test(tc, acl_agrees_with_the_scan);
	tcase_add_test(tc, conn_limit);
	tcase_add_test(tc, ipv6);
	tcase_add_test(tc, two_workers);
	tcase_add_test(tc, chain_with_nat);
	tcase_add_test(tc, bad_arguments_are_refused);
	tcase_add_test(tc, state_moves_keep_verdicts);
	tcase_add_test(tc, codec_refusals);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
