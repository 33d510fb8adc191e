/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The lb NF through the real worker path: the rewrite to the backend and
 * back with every checksum recomputed from scratch (TCP, UDP, IPv6), the
 * backend Maglev's table names, connection affinity while the backend set
 * changes, drain and removal, traffic that is not for the VIP, one and two
 * workers, and the codecs of the three scopes through the framework's
 * export and import (refusals change nothing).
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_jhash.h>
#include <rte_ring.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "lb.h"
#include "mbx/v1/lb.pb-c.h"
#include "mbx_state.h"
#include "mbx_test.h"

#define VIP   "192.0.2.1"
#define SPEC  "lb,vip=" VIP ":80,backends=[10.1.0.1:8080,10.1.0.2:8080,10.1.0.3:8080@2]"
#define ACK   RTE_TCP_ACK_FLAG
#define NCONN 60

static struct rte_ipv4_hdr *
ip_of(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, sizeof(struct rte_ether_hdr));
}

static struct rte_tcp_hdr *
tcp_of(struct rte_mbuf *m)
{
	return (struct rte_tcp_hdr *)((char *)ip_of(m) + rte_ipv4_hdr_len(ip_of(m)));
}

/*
 * Receive @m on @port at worker @rx, let every worker process its hand-off
 * ring, and return what left on @out_port (NULL if the packet was dropped).
 */
static struct rte_mbuf *
pass(struct mbx_dp *dp, uint16_t rx, struct rte_mbuf *m, uint16_t port, uint16_t out_port)
{
	struct rte_mbuf *out = NULL, *h[MBX_BURST];

	mbx_worker_rx(dp->workers[rx], &m, 1, port);
	for (uint16_t i = 0; i < dp->nb_workers; i++) {
		unsigned int n = rte_ring_dequeue_burst(dp->workers[i]->handoff, (void **)h,
							MBX_BURST, NULL);

		if (n > 0)
			mbx_worker_owned(dp->workers[i], h, n);
	}
	for (uint16_t i = 0; i < dp->nb_workers; i++)
		if (out == NULL)
			mbx_test_take_tx(dp->workers[i], out_port, &out, 1);
	return out;
}

static struct mbx_dp *
lb_dp(const char *spec, uint16_t workers)
{
	const char *nfs[] = {spec, NULL};
	struct mbx_dp *dp = mbx_test_dp(nfs, workers, 2, 4096);

	ck_assert_ptr_nonnull(dp);
	return dp;
}

static struct lb *
lb_of(struct mbx_dp *dp)
{
	return dp->chain.nf[mbx_chain_find(&dp->chain, "lb")].nf;
}

static uint64_t
ctr(struct mbx_dp *dp, enum lb_counter c)
{
	return mbx_dp_nf_stat(dp, dp->chain.nf[mbx_chain_find(&dp->chain, "lb")].counter_off + c);
}

/* The backend address Maglev's table gives the connection of @m (parsed here). */
static rte_be32_t
table_backend(struct mbx_dp *dp, struct rte_mbuf *m)
{
	struct lb *lb = lb_of(dp);
	uint16_t slot;

	ck_assert_int_eq(mbx_parse(m), MBX_PARSE_OK);
	slot = lb->table[rte_jhash(&mbx_pkt(m)->key, sizeof(struct mbx_flow_key), LB_FLOW_SEED) %
			 lb->table_size];
	ck_assert_uint_ne(slot, MAGLEV_NONE);
	return lb->be[slot].addr.v4;
}

/* Client 10.0.(i/200).(i%200+1):(20000+i) to the VIP. */
static struct rte_mbuf *
client_pkt(unsigned int i, uint16_t payload)
{
	char src[32];

	snprintf(src, sizeof(src), "10.0.%u.%u", i / 200, i % 200 + 1);
	return mbx_test_tcp4(src, VIP, (uint16_t)(20000 + i), 80, ACK, payload);
}

/* The reply of client @i's connection from backend @be. */
static struct rte_mbuf *
reply_pkt(unsigned int i, rte_be32_t be, uint16_t payload)
{
	char src[32], dst[32];

	snprintf(dst, sizeof(dst), "10.0.%u.%u", i / 200, i % 200 + 1);
	snprintf(src, sizeof(src), "%u.%u.%u.%u", ((uint8_t *)&be)[0], ((uint8_t *)&be)[1],
		 ((uint8_t *)&be)[2], ((uint8_t *)&be)[3]);
	return mbx_test_tcp4(src, dst, 8080, (uint16_t)(20000 + i), ACK, payload);
}

/* Send a packet of client @i's connection; the backend it went to (0: dropped). */
static rte_be32_t
send_client(struct mbx_dp *dp, uint16_t rx, unsigned int i)
{
	struct rte_mbuf *o = pass(dp, rx, client_pkt(i, 20), 0, 1);
	rte_be32_t be;

	if (o == NULL)
		return 0;
	ck_assert_int_eq(mbx_test_verify_csums(o), 0);
	ck_assert_uint_eq(rte_be_to_cpu_16(tcp_of(o)->dst_port), 8080);
	be = ip_of(o)->dst_addr;
	rte_pktmbuf_free(o);
	return be;
}

struct be_spec {
	const char *addr;
	uint32_t port;
	uint32_t weight;
};

/* An LbBackends message for VIP:80 with backends @b, packed into @buf. */
static size_t
backends_msg(const char *vip, const struct be_spec *b, unsigned int n, uint8_t *buf)
{
	Mbx__V1__LbBackends m = MBX__V1__LB_BACKENDS__INIT;
	Mbx__V1__LbBackend be[8], *bp[8];
	rte_be32_t addrs[8], v = mbx_test_ip4(vip);

	m.vip = (ProtobufCBinaryData){4, (uint8_t *)&v};
	m.vip_port = 80;
	for (unsigned int i = 0; i < n; i++) {
		mbx__v1__lb_backend__init(&be[i]);
		addrs[i] = mbx_test_ip4(b[i].addr);
		be[i].addr = (ProtobufCBinaryData){4, (uint8_t *)&addrs[i]};
		be[i].port = b[i].port;
		be[i].weight = b[i].weight;
		bp[i] = &be[i];
	}
	m.n_backends = n;
	m.backends = bp;
	return mbx__v1__lb_backends__pack(&m, buf);
}

/* PutAllflows as the framework runs it: check, then commit. */
static int
all_put(struct mbx_dp *dp, const uint8_t *buf, size_t len)
{
	const struct mbx_nf_ops *ops = dp->chain.nf[0].ops;
	int rc = ops->all_put(lb_of(dp), buf, len, false);

	return rc < 0 ? rc : ops->all_put(lb_of(dp), buf, len, true);
}

static int
put_set(struct mbx_dp *dp, const struct be_spec *b, unsigned int n)
{
	uint8_t buf[1024];

	return all_put(dp, buf, backends_msg(VIP, b, n, buf));
}

START_TEST(tcp_rewrite_both_ways)
{
	struct mbx_dp *dp = lb_dp(SPEC, 1);
	struct rte_mbuf *m = mbx_test_tcp4("10.0.0.1", VIP, 40000, 80, RTE_TCP_SYN_FLAG, 0), *o;
	rte_be32_t want = table_backend(dp, m);
	uint8_t payload[100];

	o = pass(dp, 0, m, 0, 1);
	ck_assert_ptr_nonnull(o);
	ck_assert_uint_eq(ip_of(o)->dst_addr, want);
	ck_assert_uint_eq(ip_of(o)->src_addr, mbx_test_ip4("10.0.0.1"));
	ck_assert_uint_eq(rte_be_to_cpu_16(tcp_of(o)->dst_port), 8080);
	ck_assert_uint_eq(rte_be_to_cpu_16(tcp_of(o)->src_port), 40000);
	ck_assert_int_eq(mbx_test_verify_csums(o), 0);
	rte_pktmbuf_free(o);

	/* the connection keeps its backend; the payload is untouched */
	m = mbx_test_tcp4("10.0.0.1", VIP, 40000, 80, ACK, 100);
	memcpy(payload, (char *)tcp_of(m) + 20, 100);
	o = pass(dp, 0, m, 0, 1);
	ck_assert_uint_eq(ip_of(o)->dst_addr, want);
	ck_assert_int_eq(mbx_test_verify_csums(o), 0);
	ck_assert_mem_eq((char *)tcp_of(o) + 20, payload, 100);
	rte_pktmbuf_free(o);

	/* the backend's reply comes back from the VIP */
	m = mbx_test_tcp4("0.0.0.0", "10.0.0.1", 8080, 40000, RTE_TCP_SYN_FLAG | ACK, 30);
	ip_of(m)->src_addr = want;
	ip_of(m)->hdr_checksum = 0;
	ip_of(m)->hdr_checksum = rte_ipv4_cksum(ip_of(m));
	tcp_of(m)->cksum = 0;
	tcp_of(m)->cksum = rte_ipv4_udptcp_cksum(ip_of(m), tcp_of(m));
	o = pass(dp, 0, m, 1, 0);
	ck_assert_ptr_nonnull(o);
	ck_assert_uint_eq(ip_of(o)->src_addr, mbx_test_ip4(VIP));
	ck_assert_uint_eq(ip_of(o)->dst_addr, mbx_test_ip4("10.0.0.1"));
	ck_assert_uint_eq(rte_be_to_cpu_16(tcp_of(o)->src_port), 80);
	ck_assert_uint_eq(rte_be_to_cpu_16(tcp_of(o)->dst_port), 40000);
	ck_assert_int_eq(mbx_test_verify_csums(o), 0);
	rte_pktmbuf_free(o);

	ck_assert_uint_eq(ctr(dp, LB_CTR_NEW), 1);
	ck_assert_uint_eq(ctr(dp, LB_CTR_TO_BACKEND), 2);
	ck_assert_uint_eq(ctr(dp, LB_CTR_FROM_BACKEND), 1);
	ck_assert_uint_eq(ctr(dp, LB_CTR_PASSED), 0);
	ck_assert_uint_eq(mbx_dp_flows(dp), 1);
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(udp_spread_as_the_table_says)
{
	struct mbx_dp *dp = lb_dp(SPEC, 1);
	unsigned int per[3] = {0, 0, 0};

	for (unsigned int i = 0; i < 200; i++) {
		struct rte_mbuf *m = mbx_test_udp4("10.0.0.9", VIP, (uint16_t)(1000 + i), 80, 8);
		rte_be32_t want = table_backend(dp, m);
		struct rte_mbuf *o;

		if (i % 2)
			((struct rte_udp_hdr *)tcp_of(m))->dgram_cksum = 0;
		o = pass(dp, 0, m, 0, 1);
		ck_assert_ptr_nonnull(o);
		ck_assert_uint_eq(ip_of(o)->dst_addr, want);
		ck_assert_int_eq(mbx_test_verify_csums(o), 0);
		/* no UDP checksum stays no checksum */
		if (i % 2)
			ck_assert_uint_eq(((struct rte_udp_hdr *)tcp_of(o))->dgram_cksum, 0);
		per[((uint8_t *)&want)[3] - 1]++;
		rte_pktmbuf_free(o);
	}
	/* weights 1, 1, 2 */
	ck_assert_uint_gt(per[0], 25);
	ck_assert_uint_gt(per[1], 25);
	ck_assert_uint_gt(per[2], per[0]);
	mbx_test_dp_free(dp);
}
END_TEST

/* Recompute an IPv6 UDP checksum from scratch: does the packet's match? */
static int
udp6_csum_ok(struct rte_ipv6_hdr *ip)
{
	struct rte_udp_hdr *uh = (struct rte_udp_hdr *)(ip + 1);
	uint16_t have = uh->dgram_cksum, want;

	uh->dgram_cksum = 0;
	want = rte_ipv6_udptcp_cksum(ip, uh);
	uh->dgram_cksum = have;
	return have == want;
}

START_TEST(ipv6_rewrite_both_ways)
{
	struct mbx_dp *dp =
		lb_dp("lb,vip=[2001:db8::1]:53,backends=[2001:db8:1::a,2001:db8:1::b@3]", 1);
	struct rte_mbuf *m = mbx_test_udp6("2001:db8:2::7", "2001:db8::1", 5000, 53, 40), *o;
	struct rte_ipv6_hdr *ip;
	uint8_t backend[16];

	o = pass(dp, 0, m, 0, 1);
	ck_assert_ptr_nonnull(o);
	ip = rte_pktmbuf_mtod_offset(o, struct rte_ipv6_hdr *, sizeof(struct rte_ether_hdr));
	ck_assert_uint_eq(ip->dst_addr[3], 0xb8);
	ck_assert_uint_eq(ip->dst_addr[5], 1);
	ck_assert(ip->dst_addr[15] == 0xa || ip->dst_addr[15] == 0xb);
	ck_assert_uint_eq(rte_be_to_cpu_16(((struct rte_udp_hdr *)(ip + 1))->dst_port), 53);
	ck_assert_int_eq(udp6_csum_ok(ip), 1);
	memcpy(backend, ip->dst_addr, 16);
	rte_pktmbuf_free(o);

	m = mbx_test_udp6("::", "2001:db8:2::7", 53, 5000, 10);
	ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv6_hdr *, sizeof(struct rte_ether_hdr));
	memcpy(ip->src_addr, backend, 16);
	((struct rte_udp_hdr *)(ip + 1))->dgram_cksum = 0;
	((struct rte_udp_hdr *)(ip + 1))->dgram_cksum = rte_ipv6_udptcp_cksum(ip, ip + 1);
	o = pass(dp, 0, m, 1, 0);
	ck_assert_ptr_nonnull(o);
	ip = rte_pktmbuf_mtod_offset(o, struct rte_ipv6_hdr *, sizeof(struct rte_ether_hdr));
	ck_assert_uint_eq(ip->src_addr[15], 1);
	ck_assert_uint_eq(ip->src_addr[5], 0);
	ck_assert_uint_eq(rte_be_to_cpu_16(((struct rte_udp_hdr *)(ip + 1))->src_port), 53);
	ck_assert_int_eq(udp6_csum_ok(ip), 1);
	rte_pktmbuf_free(o);
	ck_assert_uint_eq(ctr(dp, LB_CTR_TO_BACKEND), 1);
	ck_assert_uint_eq(ctr(dp, LB_CTR_FROM_BACKEND), 1);
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(other_traffic_passes_unchanged)
{
	struct mbx_dp *dp = lb_dp(SPEC ",proto=tcp", 1);
	struct rte_mbuf *in[] = {
		mbx_test_tcp4("10.0.0.1", "192.0.2.2", 1000, 80, ACK, 10), /* another host */
		mbx_test_tcp4("10.0.0.1", VIP, 1000, 443, ACK, 10),	   /* another port */
		mbx_test_udp4("10.0.0.1", VIP, 1000, 80, 10),		   /* not balanced */
		mbx_test_icmp4("10.0.0.1", VIP, 8, 7, 10),		   /* ping the VIP */
		mbx_test_udp6("2001:db8::1", "2001:db8::2", 1, 80, 10),	   /* IPv6 */
	};

	for (unsigned int i = 0; i < RTE_DIM(in); i++) {
		uint8_t before[256];
		uint16_t len = rte_pktmbuf_data_len(in[i]);
		struct rte_mbuf *o;

		memcpy(before, rte_pktmbuf_mtod(in[i], void *), len);
		o = pass(dp, 0, in[i], 0, 1);
		ck_assert_ptr_nonnull(o);
		ck_assert_uint_eq(rte_pktmbuf_data_len(o), len);
		ck_assert_mem_eq(rte_pktmbuf_mtod(o, void *), before, len);
		rte_pktmbuf_free(o);
	}
	/* and their replies */
	rte_pktmbuf_free(
		pass(dp, 0, mbx_test_tcp4("192.0.2.2", "10.0.0.1", 80, 1000, ACK, 0), 1, 0));
	ck_assert_uint_eq(ctr(dp, LB_CTR_PASSED), RTE_DIM(in) + 1);
	ck_assert_uint_eq(ctr(dp, LB_CTR_NEW), 0);
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(affinity_while_the_set_changes)
{
	static const struct be_spec grown[] = {
		{"10.1.0.1", 8080, 2},
		{"10.1.0.2", 8080, 1},
		{"10.1.0.3", 8080, 2},
		{"10.1.0.4", 8080, 3},
	};
	struct mbx_dp *dp = lb_dp(SPEC, 1);
	rte_be32_t first[NCONN];
	unsigned int remapped = 0, to_new = 0;

	for (unsigned int i = 0; i < NCONN; i++)
		ck_assert_uint_ne(first[i] = send_client(dp, 0, i), 0);
	ck_assert_int_eq(put_set(dp, grown, RTE_DIM(grown)), 0);
	for (unsigned int i = 0; i < NCONN; i++) {
		struct rte_mbuf *m = client_pkt(i, 0);

		/* the table now says otherwise for some: the flow's state wins */
		remapped += table_backend(dp, m) != first[i];
		rte_pktmbuf_free(m);
		ck_assert_uint_eq(send_client(dp, 0, i), first[i]);
	}
	ck_assert_uint_gt(remapped, 0);
	/* new connections follow the new table, the new backend among them */
	for (unsigned int i = NCONN; i < 3 * NCONN; i++) {
		struct rte_mbuf *m = client_pkt(i, 0);
		rte_be32_t want = table_backend(dp, m), got;

		rte_pktmbuf_free(m);
		got = send_client(dp, 0, i);
		ck_assert_uint_eq(got, want);
		to_new += got == mbx_test_ip4("10.1.0.4");
	}
	ck_assert_uint_gt(to_new, 0);
	ck_assert_uint_eq(ctr(dp, LB_CTR_NEW), 3 * NCONN);
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(drain_and_remove)
{
	/* 10.1.0.1 drained, 10.1.0.2 removed, 10.1.0.3 stays */
	static const struct be_spec after[] = {{"10.1.0.1", 8080, 0}, {"10.1.0.3", 8080, 2}};
	struct mbx_dp *dp = lb_dp(SPEC, 1);
	struct lb *lb = lb_of(dp);
	struct lb_worker *w = dp->workers[0]->nf[0].priv;
	rte_be32_t first[NCONN], gone = mbx_test_ip4("10.1.0.2");
	unsigned int on_gone = 0, on_drained = 0;
	struct rte_mbuf *o;
	int slot;

	for (unsigned int i = 0; i < NCONN; i++) {
		first[i] = send_client(dp, 0, i);
		on_gone += first[i] == gone;
		on_drained += first[i] == mbx_test_ip4("10.1.0.1");
	}
	ck_assert_uint_gt(on_gone, 0);
	ck_assert_uint_gt(on_drained, 0);
	ck_assert_int_eq(put_set(dp, after, RTE_DIM(after)), 0);
	for (unsigned int i = 0; i < NCONN; i++) {
		rte_be32_t got = send_client(dp, 0, i);

		/* drained or kept: the connection goes on; removed: it ends */
		ck_assert_uint_eq(got, first[i] == gone ? 0 : first[i]);
		o = pass(dp, 0, reply_pkt(i, first[i], 5), 1, 0);
		ck_assert((o == NULL) == (first[i] == gone));
		if (o != NULL) {
			ck_assert_uint_eq(ip_of(o)->src_addr, mbx_test_ip4(VIP));
			ck_assert_int_eq(mbx_test_verify_csums(o), 0);
			rte_pktmbuf_free(o);
		}
	}
	ck_assert_uint_eq(ctr(dp, LB_CTR_REMOVED), 2 * on_gone);
	/* the drained backend's connections are still counted, and only they */
	slot = lb_slot_find(lb, &(union mbx_addr){.v4 = mbx_test_ip4("10.1.0.1")},
			    rte_cpu_to_be_16(8080));
	ck_assert_int_ge(slot, 0);
	ck_assert_uint_eq(w->be[slot].active, on_drained);
	ck_assert_int_lt(lb_slot_find(lb, &(union mbx_addr){.v4 = gone}, rte_cpu_to_be_16(8080)),
			 0);
	/* new connections: only the backend with a weight */
	for (unsigned int i = NCONN; i < 2 * NCONN; i++)
		ck_assert_uint_eq(send_client(dp, 0, i), mbx_test_ip4("10.1.0.3"));
	/* the removed backend's connections close: gone after tcp_closed, the rest stay */
	ck_assert_uint_eq(
		mbx_worker_expire(dp->workers[0],
				  rte_rdtsc() +
					  (uint64_t)(mbx_tmo_defaults[MBX_TMO_TCP_CLOSED] + 1) *
						  rte_get_tsc_hz(),
				  10000),
		on_gone);
	ck_assert_uint_eq(ctr(dp, LB_CTR_ENDED), on_gone);
	ck_assert_uint_eq(mbx_dp_flows(dp), 2 * NCONN - on_gone);
	ck_assert_uint_eq(w->be[slot].active, on_drained);
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(no_backend_no_connection)
{
	struct mbx_dp *dp = lb_dp("lb,vip=" VIP ":80,backends=[10.1.0.1@0]", 1);

	ck_assert_uint_eq(send_client(dp, 0, 1), 0);
	ck_assert_uint_eq(ctr(dp, LB_CTR_NO_BACKEND), 1);
	ck_assert_uint_eq(mbx_dp_flows(dp), 0);
	mbx_test_dp_free(dp);
	dp = lb_dp("lb,vip=" VIP ":80", 1);
	ck_assert_uint_eq(send_client(dp, 0, 1), 0);
	ck_assert_uint_eq(mbx_dp_flows(dp), 0);
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(two_workers_meet_both_directions)
{
	struct mbx_dp *dp = lb_dp(SPEC, 2);
	unsigned int on[2];

	for (unsigned int i = 0; i < 40; i++) {
		/* received by worker 0 as from a port without RSS, replies by worker 1 */
		rte_be32_t be = send_client(dp, 0, i);
		struct rte_mbuf *o;

		ck_assert_uint_ne(be, 0);
		o = pass(dp, 1, reply_pkt(i, be, 4), 1, 0);
		ck_assert_ptr_nonnull(o);
		ck_assert_uint_eq(ip_of(o)->src_addr, mbx_test_ip4(VIP));
		ck_assert_int_eq(mbx_test_verify_csums(o), 0);
		rte_pktmbuf_free(o);
	}
	for (int i = 0; i < 2; i++)
		on[i] = mbx_table_count(dp->workers[i]->table);
	ck_assert_uint_eq(on[0] + on[1], 40);
	ck_assert_uint_gt(on[0], 0);
	ck_assert_uint_gt(on[1], 0);
	ck_assert_uint_eq(ctr(dp, LB_CTR_FROM_BACKEND), 40);
	ck_assert_uint_eq(ctr(dp, LB_CTR_PASSED), 0);
	ck_assert_uint_gt(mbx_dp_stat(dp, MBX_WSTAT_HANDOFF_OUT), 0);
	mbx_test_dp_free(dp);
}
END_TEST

/* Records of every scope, as the southbound would carry them. */
struct recs {
	uint8_t buf[1 << 20];
	size_t len;
};

static int
emit_all(void *arg, const struct mbx_flow_key *key, const struct mbx_flow_key *reply,
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

static void
export_perflow(struct mbx_dp *dp, struct recs *r)
{
	r->len = 0;
	for (uint16_t w = 0; w < dp->nb_workers; w++) {
		struct mbx_export x = {.nf = -1, .max_slots = 4096, .cursor = 0};

		mbx_filter_init(&x.filter);
		while (x.cursor != UINT32_MAX) {
			x.buf = r->buf + r->len;
			x.cap = sizeof(r->buf) - r->len;
			ck_assert_int_eq(mbx_state_export_slice(dp->workers[w], &x), 0);
			r->len += x.used;
		}
	}
}

static void
export_multi(struct mbx_dp *dp, struct recs *r)
{
	r->len = 0;
	for (uint16_t w = 0; w < dp->nb_workers; w++) {
		struct mbx_multi_get g = {.nf = -1, .buf = r->buf + r->len};

		mbx_filter_init(&g.filter);
		g.cap = sizeof(r->buf) - r->len;
		ck_assert_int_eq(mbx_state_multi_get(dp->workers[w], &g), 0);
		r->len += g.used;
	}
}

/* Install records on their owners, as a Put does; stops at the first refusal. */
static int
import(struct mbx_dp *dp, const struct recs *r)
{
	static uint8_t mine[1 << 20];
	static struct mbx_undo undo[4096];

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

static uint64_t
sum_stats(struct mbx_dp *dp, const char *addr, size_t field)
{
	int slot = lb_slot_find(lb_of(dp), &(union mbx_addr){.v4 = mbx_test_ip4(addr)},
				rte_cpu_to_be_16(8080));
	uint64_t n = 0;

	ck_assert_int_ge(slot, 0);
	for (uint16_t w = 0; w < dp->nb_workers; w++) {
		struct lb_worker *lw = dp->workers[w]->nf[0].priv;

		n += *(uint64_t *)((char *)&lw->be[slot] + field);
	}
	return n;
}

START_TEST(state_moves_and_refusals)
{
	/* B lists the backends in another order and has two workers */
	struct mbx_dp *a = lb_dp(SPEC, 1);
	struct mbx_dp *b = lb_dp("lb,vip=" VIP ":80,backends=[10.1.0.3:8080@2,10.1.0.2:8080,"
				 "10.1.0.1:8080]",
				 2);
	struct mbx_dp *c = lb_dp("lb,vip=" VIP ":80,backends=[10.1.0.3:8080@2,10.1.0.9:8080]", 1);
	const struct mbx_nf_ops *ops = a->chain.nf[0].ops;
	static struct recs all, per, multi, bad;
	static const struct be_spec grown[] = {
		{"10.1.0.1", 8080, 1},
		{"10.1.0.2", 8080, 5},
		{"10.1.0.3", 8080, 2},
		{"10.1.0.7", 8080, 9},
	};
	static const struct be_spec one[] = {{"10.1.0.1", 8080, 1}};
	rte_be32_t first[NCONN];
	struct mbx_state_rec *rec;
	Mbx__V1__LbBackends *m;

	for (unsigned int i = 0; i < NCONN; i++)
		first[i] = send_client(a, 0, i);
	/* the same set in another order: the same table */
	for (uint32_t e = 0; e < lb_of(a)->table_size; e++)
		ck_assert_uint_eq(lb_of(a)->be[lb_of(a)->table[e]].addr.v4,
				  lb_of(b)->be[lb_of(b)->table[e]].addr.v4);
	/* all-flows: the exported table is accepted, a tampered one is not */
	all.len = 0;
	ck_assert_int_eq(ops->all_get(lb_of(a), emit_all, &all), 0);
	rec = (struct mbx_state_rec *)all.buf;
	m = mbx__v1__lb_backends__unpack(NULL, rec->state_len, rec->state);
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(m->n_backends, 3);
	ck_assert_uint_eq(m->n_table, 65537);
	ck_assert_uint_eq(
		m->backends[0]->entries + m->backends[1]->entries + m->backends[2]->entries, 65537);
	m->table[77] = (m->table[77] + 1) % 3;
	ck_assert_int_eq(all_put(b, bad.buf, mbx__v1__lb_backends__pack(m, bad.buf)), -EINVAL);
	mbx__v1__lb_backends__free_unpacked(m, NULL);
	ck_assert_int_eq(all_put(b, rec->state, rec->state_len), 0);

	/* per-flow and multi-flow into B: the connections keep their backends */
	export_perflow(a, &per);
	export_multi(a, &multi);
	ck_assert_int_eq(import(b, &multi), 0);
	ck_assert_int_eq(import(b, &per), 0);
	ck_assert_uint_eq(mbx_dp_flows(b), NCONN);
	ck_assert_uint_eq(sum_stats(b, "10.1.0.3", offsetof(struct lb_stats, connections)),
			  sum_stats(a, "10.1.0.3", offsetof(struct lb_stats, connections)));
	ck_assert_uint_eq(sum_stats(b, "10.1.0.3", offsetof(struct lb_stats, active)),
			  sum_stats(a, "10.1.0.3", offsetof(struct lb_stats, active)));
	ck_assert_uint_eq(sum_stats(b, "10.1.0.1", offsetof(struct lb_stats, packets)),
			  sum_stats(a, "10.1.0.1", offsetof(struct lb_stats, packets)));
	ck_assert_int_eq(put_set(b, grown, RTE_DIM(grown)), 0);
	for (unsigned int i = 0; i < NCONN; i++) {
		ck_assert_uint_eq(send_client(b, (uint16_t)(i % 2), i), first[i]);
		rte_pktmbuf_free(pass(b, 1, reply_pkt(i, first[i], 0), 1, 0));
	}
	ck_assert_uint_eq(ctr(b, LB_CTR_NEW), 0);
	ck_assert_uint_eq(ctr(b, LB_CTR_FROM_BACKEND), NCONN);
	/* again: the flows exist, nothing is installed twice */
	ck_assert_int_eq(import(b, &per), -EEXIST);
	ck_assert_uint_eq(mbx_dp_flows(b), NCONN);

	/* C lacks 10.1.0.1 and 10.1.0.2: their connections are refused, nothing changes */
	ck_assert_int_eq(import(c, &per), -EINVAL);
	ck_assert_uint_eq(mbx_dp_flows(c), 0);
	ck_assert_int_eq(import(c, &multi), -EINVAL);

	/* another VIP: refused at every scope, nothing changes */
	ck_assert_int_eq(all_put(b, bad.buf, backends_msg("192.0.2.99", one, 1, bad.buf)), -EINVAL);
	ck_assert_uint_eq(lb_of(b)->nb_used, 4);
	for (unsigned int i = 0; i < NCONN; i += 7)
		ck_assert_uint_eq(send_client(b, 0, i), first[i]);
	mbx_test_dp_free(a);
	mbx_test_dp_free(b);
	mbx_test_dp_free(c);
}
END_TEST

START_TEST(bad_arguments_are_refused)
{
	static const char *const bad[] = {
		"lb",
		"lb,backends=[10.1.0.1]",
		"lb,vip=192.0.2.1",
		"lb,vip=192.0.2.1:0,backends=[10.1.0.1]",
		"lb,vip=192.0.2.1:80,backends=[10.1.0.1:99999]",
		"lb,vip=192.0.2.1:80,backends=[10.1.0.1@70000]",
		"lb,vip=192.0.2.1:80,backends=[10.1.0.1,10.1.0.1:80]",
		"lb,vip=192.0.2.1:80,backends=[2001:db8::1]",
		"lb,vip=192.0.2.1:80,backends=[10.1.0.1],table=65536",
		"lb,vip=192.0.2.1:80,backends=[10.1.0.1],proto=sctp",
		"lb,vip=192.0.2.1:80,backends=[10.1.0.1,colour=red",
		"lb,vip=192.0.2.1:80,colour=red",
	};

	for (unsigned int i = 0; i < RTE_DIM(bad); i++) {
		const char *nfs[] = {bad[i], NULL};

		ck_assert_msg(mbx_test_dp(nfs, 1, 2, 64) == NULL, "%s accepted", bad[i]);
	}
	{
		/* one port: no side for the backends */
		const char *nfs[] = {SPEC, NULL};

		ck_assert_ptr_null(mbx_test_dp(nfs, 1, 1, 64));
	}
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("lb");
	TCase *tc = tcase_create("lb");
	SRunner *sr;
	int failed;

	mbx_test_eal("lb");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, tcp_rewrite_both_ways);
	tcase_add_test(tc, udp_spread_as_the_table_says);
	tcase_add_test(tc, ipv6_rewrite_both_ways);
	tcase_add_test(tc, other_traffic_passes_unchanged);
	tcase_add_test(tc, affinity_while_the_set_changes);
	tcase_add_test(tc, drain_and_remove);
	tcase_add_test(tc, no_backend_no_connection);
	tcase_add_test(tc, two_workers_meet_both_directions);
	tcase_add_test(tc, state_moves_and_refusals);
	tcase_add_test(tc, bad_arguments_are_refused);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
