/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NAT through the real worker path: translation out and back with every
 * checksum recomputed from scratch, TCP, UDP and ICMP echo, the drops, pool
 * exhaustion, expiry giving ports back, and two workers. Its per-flow
 * state: written as protobuf-c writes NatFlowState, read whatever the field
 * order, refused when damaged, and installed in slices larger than a
 * prefetch group, all or nothing.
 */
#include <check.h>
#include <netinet/in.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_ring.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "mbx/v1/nat.pb-c.h"
#include "mbx_state.h"
#include "mbx_test.h"
#include "mbx_wire.h"
#include "nat.h"

#define EXT "198.51.100.1"

static struct rte_ipv4_hdr *
ip_of(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, sizeof(struct rte_ether_hdr));
}

static void *
l4_of(struct rte_mbuf *m)
{
	return (char *)ip_of(m) + rte_ipv4_hdr_len(ip_of(m));
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

static uint64_t
nat_ctr(struct mbx_dp *dp, enum nat_counter c)
{
	return mbx_dp_nf_stat(dp, dp->chain.nf[mbx_chain_find(&dp->chain, "nat")].counter_off + c);
}

static struct mbx_dp *
nat_dp(const char *spec, uint16_t workers)
{
	const char *nfs[] = {spec, NULL};
	struct mbx_dp *dp = mbx_test_dp(nfs, workers, 2, 4096);

	ck_assert_ptr_nonnull(dp);
	return dp;
}

START_TEST(udp_out_and_back)
{
	struct mbx_dp *dp = nat_dp("nat,ext_ip=" EXT, 1);
	struct rte_mbuf *m = mbx_test_udp4("10.0.0.1", "192.0.2.9", 1234, 53, 30), *o;
	uint8_t payload[30];
	struct rte_udp_hdr *uh;
	rte_be16_t ext_port;

	memcpy(payload, (char *)l4_of(m) + 8, 30);
	o = pass(dp, 0, m, 0, 1);
	ck_assert_ptr_nonnull(o);
	ck_assert_uint_eq(ip_of(o)->src_addr, mbx_test_ip4(EXT));
	ck_assert_uint_eq(ip_of(o)->dst_addr, mbx_test_ip4("192.0.2.9"));
	uh = l4_of(o);
	ext_port = uh->src_port;
	ck_assert_uint_ge(rte_be_to_cpu_16(ext_port), 1024);
	ck_assert_uint_eq(rte_be_to_cpu_16(uh->dst_port), 53);
	ck_assert_int_eq(mbx_test_verify_csums(o), 0);
	ck_assert_mem_eq((char *)uh + 8, payload, 30);
	rte_pktmbuf_free(o);

	/* the same flow keeps its mapping */
	o = pass(dp, 0, mbx_test_udp4("10.0.0.1", "192.0.2.9", 1234, 53, 5), 0, 1);
	ck_assert_uint_eq(((struct rte_udp_hdr *)l4_of(o))->src_port, ext_port);
	rte_pktmbuf_free(o);

	/* the reply goes back to the inside endpoint */
	o = pass(dp, 0, mbx_test_udp4("192.0.2.9", EXT, 53, rte_be_to_cpu_16(ext_port), 40), 1, 0);
	ck_assert_ptr_nonnull(o);
	ck_assert_uint_eq(ip_of(o)->dst_addr, mbx_test_ip4("10.0.0.1"));
	ck_assert_uint_eq(ip_of(o)->src_addr, mbx_test_ip4("192.0.2.9"));
	ck_assert_uint_eq(rte_be_to_cpu_16(((struct rte_udp_hdr *)l4_of(o))->dst_port), 1234);
	ck_assert_int_eq(mbx_test_verify_csums(o), 0);
	rte_pktmbuf_free(o);

	ck_assert_uint_eq(nat_ctr(dp, NAT_CTR_CREATED), 1);
	ck_assert_uint_eq(nat_ctr(dp, NAT_CTR_OUT), 2);
	ck_assert_uint_eq(nat_ctr(dp, NAT_CTR_IN), 1);
	ck_assert_uint_eq(mbx_dp_flows(dp), 1);
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(tcp_and_icmp_echo)
{
	struct mbx_dp *dp = nat_dp("nat,ext_ip=" EXT, 1);
	struct rte_mbuf *o;
	uint16_t ext_port, id;

	o = pass(dp, 0, mbx_test_tcp4("10.0.0.2", "192.0.2.9", 40000, 80, RTE_TCP_SYN_FLAG, 0), 0,
		 1);
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(mbx_test_verify_csums(o), 0);
	ext_port = rte_be_to_cpu_16(((struct rte_tcp_hdr *)l4_of(o))->src_port);
	rte_pktmbuf_free(o);
	o = pass(dp, 0,
		 mbx_test_tcp4("192.0.2.9", EXT, 80, ext_port, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG,
			       10),
		 1, 0);
	ck_assert_ptr_nonnull(o);
	ck_assert_uint_eq(ip_of(o)->dst_addr, mbx_test_ip4("10.0.0.2"));
	ck_assert_uint_eq(rte_be_to_cpu_16(((struct rte_tcp_hdr *)l4_of(o))->dst_port), 40000);
	ck_assert_int_eq(mbx_test_verify_csums(o), 0);
	rte_pktmbuf_free(o);

	o = pass(dp, 0, mbx_test_icmp4("10.0.0.2", "192.0.2.9", RTE_IP_ICMP_ECHO_REQUEST, 0x77, 16),
		 0, 1);
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(mbx_test_verify_csums(o), 0);
	id = rte_be_to_cpu_16(((struct rte_icmp_hdr *)l4_of(o))->icmp_ident);
	ck_assert_uint_ne(id, 0x77);
	ck_assert_uint_eq(ip_of(o)->src_addr, mbx_test_ip4(EXT));
	rte_pktmbuf_free(o);
	/* the mapping carries echo replies in and requests out, nothing else */
	ck_assert_ptr_null(pass(
		dp, 0, mbx_test_icmp4("192.0.2.9", EXT, RTE_IP_ICMP_ECHO_REQUEST, id, 16), 1, 0));
	ck_assert_ptr_null(pass(
		dp, 0, mbx_test_icmp4("10.0.0.2", "192.0.2.9", RTE_IP_ICMP_ECHO_REPLY, 0x77, 16), 0,
		1));
	ck_assert_uint_eq(nat_ctr(dp, NAT_CTR_NO_MAPPING), 1);
	ck_assert_uint_eq(nat_ctr(dp, NAT_CTR_UNSUPPORTED), 1);
	o = pass(dp, 0, mbx_test_icmp4("192.0.2.9", EXT, RTE_IP_ICMP_ECHO_REPLY, id, 16), 1, 0);
	ck_assert_ptr_nonnull(o);
	ck_assert_uint_eq(rte_be_to_cpu_16(((struct rte_icmp_hdr *)l4_of(o))->icmp_ident), 0x77);
	ck_assert_uint_eq(ip_of(o)->dst_addr, mbx_test_ip4("10.0.0.2"));
	ck_assert_int_eq(mbx_test_verify_csums(o), 0);
	rte_pktmbuf_free(o);
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(udp_without_checksum_stays_so)
{
	struct mbx_dp *dp = nat_dp("nat,ext_ip=" EXT, 1);
	struct rte_mbuf *m = mbx_test_udp4("10.0.0.3", "192.0.2.9", 7, 7, 8), *o;

	((struct rte_udp_hdr *)l4_of(m))->dgram_cksum = 0;
	o = pass(dp, 0, m, 0, 1);
	ck_assert_ptr_nonnull(o);
	ck_assert_uint_eq(((struct rte_udp_hdr *)l4_of(o))->dgram_cksum, 0);
	ck_assert_int_eq(mbx_test_verify_csums(o), 0);
	rte_pktmbuf_free(o);
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(drops_are_counted)
{
	struct mbx_dp *dp = nat_dp("nat,ext_ip=" EXT, 1);
	struct rte_mbuf *m;

	/* unsolicited from outside */
	ck_assert_ptr_null(pass(dp, 0, mbx_test_udp4("192.0.2.9", EXT, 53, 5555, 0), 1, 0));
	ck_assert_uint_eq(nat_ctr(dp, NAT_CTR_NO_MAPPING), 1);
	/* ICMP errors and other protocols cannot be translated */
	ck_assert_ptr_null(pass(dp, 0, mbx_test_icmp4("10.0.0.1", "192.0.2.9", 3, 0, 28), 0, 1));
	m = mbx_test_udp4("10.0.0.1", "192.0.2.9", 1, 1, 0);
	ip_of(m)->next_proto_id = IPPROTO_GRE;
	ip_of(m)->hdr_checksum = 0;
	ip_of(m)->hdr_checksum = rte_ipv4_cksum(ip_of(m));
	ck_assert_ptr_null(pass(dp, 0, m, 0, 1));
	ck_assert_uint_eq(nat_ctr(dp, NAT_CTR_UNSUPPORTED), 2);
	/* a flow whose first packet was dropped leaves no entry */
	ck_assert_uint_eq(mbx_dp_flows(dp), 0);
	ck_assert_uint_eq(mbx_dp_stat(dp, MBX_WSTAT_NF_DROP), 3);
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(ipv6_passes_unchanged)
{
	struct mbx_dp *dp = nat_dp("nat,ext_ip=" EXT, 1);
	struct rte_mbuf *m = mbx_test_udp6("2001:db8::1", "2001:db8::2", 1, 2, 10), *o;
	uint8_t before[128];
	uint16_t len = rte_pktmbuf_data_len(m);

	memcpy(before, rte_pktmbuf_mtod(m, void *), len);
	o = pass(dp, 0, m, 0, 1);
	ck_assert_ptr_nonnull(o);
	ck_assert_uint_eq(rte_pktmbuf_data_len(o), len);
	ck_assert_mem_eq(rte_pktmbuf_mtod(o, void *), before, len);
	ck_assert_uint_eq(nat_ctr(dp, NAT_CTR_V6_PASSED), 1);
	rte_pktmbuf_free(o);
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(exhaustion_then_expiry_gives_ports_back)
{
	/* one block of 64 ports: the first host takes it, the second finds none */
	struct mbx_dp *dp = nat_dp("nat,ext_ip=" EXT ",ports=1024-1087", 1);
	struct nat *nat = dp->chain.nf[0].nf;
	struct rte_mbuf *o;

	for (int i = 0; i < 64; i++) {
		o = pass(dp, 0, mbx_test_udp4("10.0.0.1", "192.0.2.9", 1000 + i, 53, 0), 0, 1);
		ck_assert_ptr_nonnull(o);
		rte_pktmbuf_free(o);
	}
	ck_assert_ptr_null(pass(dp, 0, mbx_test_udp4("10.0.0.1", "192.0.2.9", 999, 53, 0), 0, 1));
	ck_assert_ptr_null(pass(dp, 0, mbx_test_udp4("10.0.0.2", "192.0.2.9", 999, 53, 0), 0, 1));
	ck_assert_uint_eq(nat_ctr(dp, NAT_CTR_EXHAUSTED), 2);
	ck_assert_uint_eq(mbx_dp_flows(dp), 64);
	ck_assert_uint_eq(nat_pool_free_blocks(nat->pool), 0);

	/* idle past the UDP timeout: mappings and the block go back */
	ck_assert_uint_eq(
		mbx_worker_expire(dp->workers[0],
				  rte_rdtsc() +
					  (uint64_t)(mbx_tmo_defaults[MBX_TMO_UDP_FIRST] + 1) *
						  rte_get_tsc_hz(),
				  1000),
		64);
	ck_assert_uint_eq(nat_ctr(dp, NAT_CTR_FREED), 64);
	ck_assert_uint_eq(nat_pool_free_blocks(nat->pool), 1);
	ck_assert_uint_eq(mbx_dp_flows(dp), 0);
	o = pass(dp, 0, mbx_test_udp4("10.0.0.2", "192.0.2.9", 999, 53, 0), 0, 1);
	ck_assert_ptr_nonnull(o);
	rte_pktmbuf_free(o);
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(two_workers_meet_both_directions)
{
	struct mbx_dp *dp = nat_dp("nat,ext_ip=" EXT, 2);
	unsigned int on[2] = {0, 0};

	for (int h = 1; h <= 20; h++) {
		char src[32];
		struct rte_mbuf *o;
		uint16_t ext;

		snprintf(src, sizeof(src), "10.0.1.%d", h);
		/* always received by worker 0, as from a port without RSS */
		o = pass(dp, 0, mbx_test_udp4(src, "192.0.2.9", 4000, 53, 4), 0, 1);
		ck_assert_ptr_nonnull(o);
		ext = rte_be_to_cpu_16(((struct rte_udp_hdr *)l4_of(o))->src_port);
		rte_pktmbuf_free(o);
		/* the reply arrives at worker 1 and must find the same worker's state */
		o = pass(dp, 1, mbx_test_udp4("192.0.2.9", EXT, 53, ext, 4), 1, 0);
		ck_assert_ptr_nonnull(o);
		ck_assert_uint_eq(ip_of(o)->dst_addr, mbx_test_ip4(src));
		rte_pktmbuf_free(o);
	}
	for (int i = 0; i < 2; i++)
		on[i] = mbx_table_count(dp->workers[i]->table);
	ck_assert_uint_eq(on[0] + on[1], 20);
	ck_assert_uint_gt(on[0], 0);
	ck_assert_uint_gt(on[1], 0);
	ck_assert_uint_gt(mbx_dp_stat(dp, MBX_WSTAT_HANDOFF_OUT), 0);
	ck_assert_uint_eq(nat_ctr(dp, NAT_CTR_NO_MAPPING), 0);
	mbx_test_dp_free(dp);
}
END_TEST

static struct mbx_flow *
flow_of(struct mbx_dp *dp, const char *src, const char *dst, uint16_t sport, uint16_t dport)
{
	struct mbx_flow_key k;

	memset(&k, 0, sizeof(k));
	k.family = MBX_FAMILY_V4;
	k.proto = IPPROTO_UDP;
	k.src.v4 = mbx_test_ip4(src);
	k.dst.v4 = mbx_test_ip4(dst);
	k.sport = rte_cpu_to_be_16(sport);
	k.dport = rte_cpu_to_be_16(dport);
	return mbx_table_lookup(dp->workers[0]->table, &k, NULL);
}

static size_t
export_all(struct mbx_dp *dp, uint8_t *buf, size_t cap)
{
	struct mbx_export x = {.nf = -1, .max_slots = 1u << 20, .buf = buf, .cap = cap};

	mbx_filter_init(&x.filter);
	ck_assert_int_eq(mbx_state_export_slice(dp->workers[0], &x), 0);
	ck_assert_uint_eq(x.cursor, UINT32_MAX);
	return x.used;
}

START_TEST(flow_state_codec_and_import)
{
	struct mbx_dp *a = nat_dp("nat,ext_ip=" EXT, 1), *b = nat_dp("nat,ext_ip=" EXT, 1);
	struct mbx_nf_ctx *xa = &a->workers[0]->nf[0], *xb = &b->workers[0]->nf[0];
	const struct mbx_nf_ops *ops = a->chain.nf[0].ops;
	static uint8_t recs[1 << 20], buf[64], odd[64];
	static struct mbx_undo undo[256];
	Mbx__V1__NatFlowState m = MBX__V1__NAT_FLOW_STATE__INIT;
	const struct nat_flow *st;
	struct mbx_import im = {.recs = recs, .undo = undo};
	struct mbx_flow *f;
	size_t len, n;
	uint8_t *o;

	/* 100 flows through A: more than one prefetch group of the import */
	for (uint16_t i = 0; i < 100; i++) {
		struct rte_mbuf *out =
			pass(a, 0, mbx_test_udp4("10.0.0.5", "192.0.2.1", 1000 + i, 53, 0), 0, 1);

		ck_assert_ptr_nonnull(out);
		rte_pktmbuf_free(out);
	}
	/* written as protobuf-c writes it */
	f = flow_of(a, "10.0.0.5", "192.0.2.1", 1007, 53);
	ck_assert_ptr_nonnull(f);
	st = mbx_nf_state(xa, f);
	m.in_addr = (ProtobufCBinaryData){4, (uint8_t *)(uintptr_t)&st->in_addr};
	m.in_port = 1007;
	m.ext_addr = (ProtobufCBinaryData){4, (uint8_t *)(uintptr_t)&st->ext_addr};
	m.ext_port = rte_be_to_cpu_16(st->ext_port);
	m.proto = IPPROTO_UDP;
	len = mbx__v1__nat_flow_state__pack(&m, odd);
	ck_assert_int_eq(ops->flow_get(xa, f, buf, sizeof(buf)), (int)len);
	ck_assert(memcmp(buf, odd, len) == 0);
	ck_assert_int_eq(ops->flow_get(xa, f, NULL, 0), -ENOBUFS);
	ck_assert_int_eq(ops->flow_get(xa, f, buf, len - 1), -ENOBUFS);

	/* B takes all of A's flows in one slice, mappings and all */
	n = export_all(a, recs, sizeof(recs));
	im.len = n;
	ck_assert_int_eq(mbx_state_import(b->workers[0], &im), 0);
	ck_assert_uint_eq(im.done, 100);
	ck_assert_uint_eq(mbx_dp_flows(b), 100);
	f = flow_of(b, "10.0.0.5", "192.0.2.1", 1007, 53);
	ck_assert_ptr_nonnull(f);
	ck_assert(memcmp(mbx_nf_state(xb, f), st, sizeof(*st)) == 0);
	/* again: refused, saying why, and the slice undoes itself */
	ck_assert_int_eq(mbx_state_import(b->workers[0], &im), -EEXIST);
	ck_assert_str_eq(im.why, "this instance has the flow already");
	ck_assert_uint_eq(mbx_dp_flows(b), 100);
	mbx_test_dp_free(b);

	/* a fresh B with the records but one: the last one twice is refused whole */
	b = nat_dp("nat,ext_ip=" EXT, 1);
	xb = &b->workers[0]->nf[0];
	{
		const struct mbx_state_rec *r = (const void *)recs, *last = r;

		while ((const uint8_t *)mbx_state_rec_next(r) < recs + n)
			r = mbx_state_rec_next(r);
		last = r;
		memcpy(recs + n, last, last->len);
		im.len = n + last->len;
	}
	ck_assert_int_eq(mbx_state_import(b->workers[0], &im), -EEXIST);
	ck_assert_uint_eq(im.done, 0);
	ck_assert_uint_eq(mbx_dp_flows(b), 0);

	/* the fields in another order with an unknown one: the same mapping */
	f = mbx_table_add(b->workers[0]->table,
			  &mbx_flow_keys(a->workers[0]->table,
					 flow_of(a, "10.0.0.5", "192.0.2.1", 1007, 53))[0],
			  MBX_TMO_UDP, rte_rdtsc());
	ck_assert_ptr_nonnull(f);
	o = mbx_wire_put_uint(odd, 5, IPPROTO_UDP);
	o = mbx_wire_put_uint(o, 4, m.ext_port);
	o = mbx_wire_put_bytes(o, 9, "future", 6);
	o = mbx_wire_put_bytes(o, 3, &st->ext_addr, 4);
	o = mbx_wire_put_uint(o, 2, 1007);
	o = mbx_wire_put_bytes(o, 1, &st->in_addr, 4);
	/* damaged: cut short, a 3-byte address, a port out of range, another flow's */
	for (size_t cut = 1; cut < (size_t)(o - odd); cut += 3)
		ck_assert_int_ne(ops->flow_put(xb, f, odd, cut), 0);
	ck_assert_int_eq(ops->flow_put(xb, f, (const uint8_t *)"\x0a\x03\x01\x02\x03", 5),
			 -EBADMSG);
	ck_assert_int_eq(ops->flow_put(xb, f, (const uint8_t *)"\x08\xff", 2), -EBADMSG);
	/* an explicit in_port 0 first: the later one wins */
	buf[0] = 0x10;
	buf[1] = 0x00;
	len = 2;
	memcpy(buf + len, odd, (size_t)(o - odd));
	ck_assert_int_eq(ops->flow_put(xb, f, buf, len + (size_t)(o - odd)), 0);
	ck_assert(memcmp(mbx_nf_state(xb, f), st, sizeof(*st)) == 0);
	ck_assert_int_eq(ops->flow_put(xb, f, odd, (size_t)(o - odd)), -EEXIST);
	ck_assert_str_eq(xb->why, "the flow is mapped here already");
	m.in_port = 1008;
	len = mbx__v1__nat_flow_state__pack(&m, buf);
	memset(mbx_nf_state(xb, f), 0, sizeof(struct nat_flow));
	ck_assert_int_eq(ops->flow_put(xb, f, buf, len), -EINVAL);
	ck_assert_str_eq(xb->why, "the mapping is of another inside endpoint");
	/* another flow of the host with the same external port: in use here */
	{
		struct mbx_flow_key k2 = mbx_flow_keys(b->workers[0]->table, f)[0];
		struct mbx_flow *f2;
		char want[64];

		k2.sport = rte_cpu_to_be_16(1009);
		f2 = mbx_table_add(b->workers[0]->table, &k2, MBX_TMO_UDP, rte_rdtsc());
		ck_assert_ptr_nonnull(f2);
		m.in_port = 1009;
		len = mbx__v1__nat_flow_state__pack(&m, buf);
		ck_assert_int_eq(ops->flow_put(xb, f2, buf, len), -EBUSY);
		snprintf(want, sizeof(want), "external port %u is in use here", m.ext_port);
		ck_assert_str_eq(xb->why, want);
	}
	m.in_port = 70000;
	len = mbx__v1__nat_flow_state__pack(&m, buf);
	ck_assert_int_eq(ops->flow_put(xb, f, buf, len), -EBADMSG);
	mbx_test_dp_free(a);
	mbx_test_dp_free(b);
}
END_TEST

START_TEST(bad_arguments_are_refused)
{
	static const char *const bad[] = {
		"nat",
		"nat,ext_ip=300.1.1.1",
		"nat,ext_ip=1.2.3.4,ports=9-3",
		"nat,ext_ip=1.2.3.4,ports=0-100",
		"nat,ext_ip=1.2.3.4,colour=red",
		"nat,ext_ip=1.2.3.4/8",
	};

	for (unsigned int i = 0; i < RTE_DIM(bad); i++) {
		const char *nfs[] = {bad[i], NULL};

		ck_assert_msg(mbx_test_dp(nfs, 1, 2, 64) == NULL, "%s accepted", bad[i]);
	}
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("nat");
	TCase *tc = tcase_create("nat");
	SRunner *sr;
	int failed;

	mbx_test_eal("nat");
	tcase_add_test(tc, udp_out_and_back);
	tcase_add_test(tc, tcp_and_icmp_echo);
	tcase_add_test(tc, udp_without_checksum_stays_so);
	tcase_add_test(tc, drops_are_counted);
	tcase_add_test(tc, ipv6_passes_unchanged);
	tcase_add_test(tc, exhaustion_then_expiry_gives_ports_back);
	tcase_add_test(tc, two_workers_meet_both_directions);
	tcase_add_test(tc, bad_arguments_are_refused);
	tcase_add_test(tc, flow_state_codec_and_import);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
