/* SPDX-License-Identifier: BSD-3-Clause */
/* The parser: every supported header, and every kind of malformed packet. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <string.h>

#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_random.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "mbx_pkt.h"
#include "mbx_test.h"

#define ETH_LEN sizeof(struct rte_ether_hdr)

static uint8_t buf[2048];

/* Copy a built packet into buf for mutation; @return its length. */
static uint16_t
to_buf(struct rte_mbuf *m)
{
	uint16_t len = rte_pktmbuf_data_len(m);

	memcpy(buf, rte_pktmbuf_mtod(m, void *), len);
	rte_pktmbuf_free(m);
	return len;
}

static struct rte_ipv4_hdr *
ip4(void)
{
	return (struct rte_ipv4_hdr *)(buf + ETH_LEN);
}

/* Refresh the IPv4 header checksum of buf after a mutation. */
static void
fix_ip4_csum(void)
{
	ip4()->hdr_checksum = 0;
	ip4()->hdr_checksum = rte_ipv4_cksum(ip4());
}

static enum mbx_parse_result
parse_buf(uint16_t len)
{
	struct rte_mbuf *m = mbx_test_frame(buf, len);
	enum mbx_parse_result r;

	ck_assert_ptr_nonnull(m);
	r = mbx_parse(m);
	rte_pktmbuf_free(m);
	return r;
}

START_TEST(udp4_key)
{
	struct rte_mbuf *m = mbx_test_udp4("10.0.0.1", "192.0.2.9", 1234, 53, 10);
	struct mbx_pkt *p = mbx_pkt(m);

	ck_assert_int_eq(mbx_parse(m), MBX_PARSE_OK);
	ck_assert_int_eq(p->key.family, MBX_FAMILY_V4);
	ck_assert_int_eq(p->key.proto, IPPROTO_UDP);
	ck_assert_uint_eq(p->key.src.v4, mbx_test_ip4("10.0.0.1"));
	ck_assert_uint_eq(p->key.dst.v4, mbx_test_ip4("192.0.2.9"));
	ck_assert_uint_eq(rte_be_to_cpu_16(p->key.sport), 1234);
	ck_assert_uint_eq(rte_be_to_cpu_16(p->key.dport), 53);
	ck_assert_uint_eq(p->l3_off, ETH_LEN);
	ck_assert_uint_eq(p->l4_off, ETH_LEN + 20);
	ck_assert_uint_eq(p->l4_len, 18);
	/* padding of the v4 key is zero, so keys hash and compare whole */
	for (int i = 4; i < 16; i++)
		ck_assert_uint_eq(p->key.src.v6[i] | p->key.dst.v6[i], 0);
	ck_assert_uint_eq(p->key.pad, 0);
	rte_pktmbuf_free(m);
}
END_TEST

START_TEST(tcp4_flags_and_options)
{
	struct rte_mbuf *m = mbx_test_tcp4("10.0.0.1", "192.0.2.9", 40000, 80, RTE_TCP_SYN_FLAG, 0);
	uint16_t len = to_buf(m);
	struct rte_ipv4_hdr *ip;

	/* insert 8 bytes of IPv4 options (two NOPs and padding) */
	memmove(buf + ETH_LEN + 28, buf + ETH_LEN + 20, len - ETH_LEN - 20);
	memset(buf + ETH_LEN + 20, 1, 8);
	len += 8;
	ip = ip4();
	ip->version_ihl = 0x47;
	ip->total_length = rte_cpu_to_be_16(rte_be_to_cpu_16(ip->total_length) + 8);
	fix_ip4_csum();
	m = mbx_test_frame(buf, len);
	ck_assert_int_eq(mbx_parse(m), MBX_PARSE_OK);
	ck_assert_uint_eq(mbx_pkt(m)->l4_off, ETH_LEN + 28);
	ck_assert_uint_eq(mbx_pkt(m)->tcp_flags, RTE_TCP_SYN_FLAG);
	ck_assert_uint_eq(rte_be_to_cpu_16(mbx_pkt(m)->key.dport), 80);
	rte_pktmbuf_free(m);
}
END_TEST

START_TEST(vlan_tagged)
{
	uint16_t len = to_buf(mbx_test_udp4("10.0.0.1", "192.0.2.9", 1, 2, 0));
	struct rte_mbuf *m;

	memmove(buf + 16, buf + 12, len - 12);
	buf[12] = 0x81;
	buf[13] = 0x00;
	buf[14] = 0x00;
	buf[15] = 0x05;
	m = mbx_test_frame(buf, len + 4);
	ck_assert_int_eq(mbx_parse(m), MBX_PARSE_OK);
	ck_assert_uint_eq(mbx_pkt(m)->l3_off, ETH_LEN + 4);
	ck_assert_uint_eq(rte_be_to_cpu_16(mbx_pkt(m)->key.sport), 1);
	rte_pktmbuf_free(m);
	/* a tag cut short */
	ck_assert_int_eq(parse_buf(ETH_LEN + 2), MBX_PARSE_VLAN_TRUNC);
}
END_TEST

START_TEST(icmp4_echo_id_is_port)
{
	struct rte_mbuf *m =
		mbx_test_icmp4("10.0.0.1", "192.0.2.9", RTE_IP_ICMP_ECHO_REQUEST, 0x4242, 8);

	ck_assert_int_eq(mbx_parse(m), MBX_PARSE_OK);
	ck_assert_uint_eq(rte_be_to_cpu_16(mbx_pkt(m)->key.sport), 0x4242);
	ck_assert_uint_eq(rte_be_to_cpu_16(mbx_pkt(m)->key.dport), 0x4242);
	ck_assert_uint_eq(mbx_pkt(m)->icmp_type, RTE_IP_ICMP_ECHO_REQUEST);
	rte_pktmbuf_free(m);
	/* an ICMP error has no identifier: ports stay 0 */
	m = mbx_test_icmp4("10.0.0.1", "192.0.2.9", 3, 0x4242, 28);
	ck_assert_int_eq(mbx_parse(m), MBX_PARSE_OK);
	ck_assert_uint_eq(mbx_pkt(m)->key.sport, 0);
	ck_assert_uint_eq(mbx_pkt(m)->icmp_type, 3);
	rte_pktmbuf_free(m);
}
END_TEST

START_TEST(ipv6_udp_and_ext_headers)
{
	struct rte_mbuf *m = mbx_test_udp6("2001:db8::1", "2001:db8::2", 5000, 53, 4);
	uint16_t len;
	struct rte_ipv6_hdr *ip;
	uint8_t a[16];

	ck_assert_int_eq(mbx_parse(m), MBX_PARSE_OK);
	ck_assert_int_eq(mbx_pkt(m)->key.family, MBX_FAMILY_V6);
	inet_pton(AF_INET6, "2001:db8::2", a);
	ck_assert_mem_eq(mbx_pkt(m)->key.dst.v6, a, 16);
	ck_assert_uint_eq(rte_be_to_cpu_16(mbx_pkt(m)->key.sport), 5000);
	len = to_buf(m);

	/* hop-by-hop (8 bytes) then destination options (16 bytes) before UDP */
	memmove(buf + ETH_LEN + 40 + 24, buf + ETH_LEN + 40, len - ETH_LEN - 40);
	memset(buf + ETH_LEN + 40, 0, 24);
	buf[ETH_LEN + 40] = IPPROTO_DSTOPTS; /* next */
	buf[ETH_LEN + 41] = 0;		     /* 8 bytes */
	buf[ETH_LEN + 48] = IPPROTO_UDP;
	buf[ETH_LEN + 49] = 1; /* 16 bytes */
	ip = (struct rte_ipv6_hdr *)(buf + ETH_LEN);
	ip->proto = IPPROTO_HOPOPTS;
	ip->payload_len = rte_cpu_to_be_16(rte_be_to_cpu_16(ip->payload_len) + 24);
	m = mbx_test_frame(buf, len + 24);
	ck_assert_int_eq(mbx_parse(m), MBX_PARSE_OK);
	ck_assert_uint_eq(mbx_pkt(m)->l4_off, ETH_LEN + 64);
	ck_assert_uint_eq(mbx_pkt(m)->key.proto, IPPROTO_UDP);
	ck_assert_uint_eq(rte_be_to_cpu_16(mbx_pkt(m)->key.dport), 53);
	rte_pktmbuf_free(m);

	/* an extension header longer than the payload */
	buf[ETH_LEN + 49] = 200;
	ck_assert_int_eq(parse_buf(len + 24), MBX_PARSE_IP6_EXT);
	/* a fragment header */
	buf[ETH_LEN + 40] = IPPROTO_FRAGMENT;
	ck_assert_int_eq(parse_buf(len + 24), MBX_PARSE_FRAGMENT);
}
END_TEST

START_TEST(ipv6_ext_chain_too_long)
{
	uint16_t len = to_buf(mbx_test_udp6("2001:db8::1", "2001:db8::2", 1, 2, 0));
	struct rte_ipv6_hdr *ip = (struct rte_ipv6_hdr *)(buf + ETH_LEN);
	unsigned int n = 9, ext = 8 * n;

	memmove(buf + ETH_LEN + 40 + ext, buf + ETH_LEN + 40, len - ETH_LEN - 40);
	for (unsigned int i = 0; i < n; i++) {
		buf[ETH_LEN + 40 + 8 * i] = i + 1 < n ? IPPROTO_DSTOPTS : IPPROTO_UDP;
		buf[ETH_LEN + 41 + 8 * i] = 0;
	}
	ip->proto = IPPROTO_DSTOPTS;
	ip->payload_len = rte_cpu_to_be_16(rte_be_to_cpu_16(ip->payload_len) + ext);
	ck_assert_int_eq(parse_buf(len + ext), MBX_PARSE_IP6_EXT);
}
END_TEST

START_TEST(non_ip_passes)
{
	memset(buf, 0, 60);
	buf[12] = 0x08;
	buf[13] = 0x06; /* ARP */
	ck_assert_int_eq(parse_buf(60), MBX_PARSE_NON_IP);
	/* two VLAN tags: not parsed further, passed as is */
	buf[12] = 0x81;
	buf[13] = 0x00;
	buf[16] = 0x81;
	buf[17] = 0x00;
	ck_assert_int_eq(parse_buf(60), MBX_PARSE_NON_IP);
}
END_TEST

START_TEST(malformed_ipv4)
{
	uint16_t len = to_buf(mbx_test_udp4("10.0.0.1", "192.0.2.9", 1, 2, 20));
	uint8_t good[2048];

	memcpy(good, buf, len);
	ck_assert_int_eq(parse_buf(10), MBX_PARSE_ETH_TRUNC);
	ck_assert_int_eq(parse_buf(ETH_LEN + 19), MBX_PARSE_IP4_TRUNC);

	ip4()->version_ihl = 0x55;
	fix_ip4_csum();
	ck_assert_int_eq(parse_buf(len), MBX_PARSE_IP4_VERSION);

	memcpy(buf, good, len);
	ip4()->version_ihl = 0x44; /* IHL below 5 */
	ck_assert_int_eq(parse_buf(len), MBX_PARSE_IP4_IHL);

	memcpy(buf, good, len);
	ip4()->version_ihl = 0x4f; /* 60 bytes of header in a 48-byte packet */
	ck_assert_int_eq(parse_buf(len), MBX_PARSE_IP4_IHL);

	memcpy(buf, good, len);
	ip4()->total_length = rte_cpu_to_be_16(len); /* beyond the frame */
	fix_ip4_csum();
	ck_assert_int_eq(parse_buf(len), MBX_PARSE_IP4_LEN);

	memcpy(buf, good, len);
	ip4()->total_length = rte_cpu_to_be_16(12); /* shorter than the header */
	fix_ip4_csum();
	ck_assert_int_eq(parse_buf(len), MBX_PARSE_IP4_LEN);

	memcpy(buf, good, len);
	ip4()->hdr_checksum ^= 0x0101;
	ck_assert_int_eq(parse_buf(len), MBX_PARSE_IP4_CSUM);

	memcpy(buf, good, len);
	ip4()->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG);
	fix_ip4_csum();
	ck_assert_int_eq(parse_buf(len), MBX_PARSE_FRAGMENT);
	ip4()->fragment_offset = rte_cpu_to_be_16(100);
	fix_ip4_csum();
	ck_assert_int_eq(parse_buf(len), MBX_PARSE_FRAGMENT);
	/* DF alone is not a fragment */
	ip4()->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	fix_ip4_csum();
	ck_assert_int_eq(parse_buf(len), MBX_PARSE_OK);

	/* Ethernet padding after the IP packet is fine */
	memcpy(buf, good, len);
	memset(buf + len, 0, 16);
	ck_assert_int_eq(parse_buf(len + 16), MBX_PARSE_OK);
}
END_TEST

START_TEST(malformed_ipv6)
{
	uint16_t len = to_buf(mbx_test_udp6("2001:db8::1", "2001:db8::2", 1, 2, 8));
	struct rte_ipv6_hdr *ip = (struct rte_ipv6_hdr *)(buf + ETH_LEN);

	ck_assert_int_eq(parse_buf(ETH_LEN + 39), MBX_PARSE_IP6_TRUNC);
	ip->payload_len = rte_cpu_to_be_16(500);
	ck_assert_int_eq(parse_buf(len), MBX_PARSE_IP6_LEN);
	ip->payload_len = rte_cpu_to_be_16(16);
	ip->vtc_flow = rte_cpu_to_be_32(4u << 28);
	ck_assert_int_eq(parse_buf(len), MBX_PARSE_IP6_VERSION);
}
END_TEST

START_TEST(malformed_l4)
{
	uint16_t len;
	struct rte_ipv4_hdr *ip;

	/* TCP: header cut by the IP length, then a bad data offset both ways */
	len = to_buf(mbx_test_tcp4("10.0.0.1", "192.0.2.9", 1, 2, RTE_TCP_ACK_FLAG, 0));
	ip = ip4();
	ip->total_length = rte_cpu_to_be_16(20 + 12);
	fix_ip4_csum();
	ck_assert_int_eq(parse_buf(len), MBX_PARSE_TCP_TRUNC);
	ip->total_length = rte_cpu_to_be_16(20 + 20);
	fix_ip4_csum();
	buf[ETH_LEN + 20 + 12] = 4 << 4;
	ck_assert_int_eq(parse_buf(len), MBX_PARSE_TCP_DOFF);
	buf[ETH_LEN + 20 + 12] = 15 << 4;
	ck_assert_int_eq(parse_buf(len), MBX_PARSE_TCP_DOFF);

	/* UDP: too short for its header, then a length that lies */
	len = to_buf(mbx_test_udp4("10.0.0.1", "192.0.2.9", 1, 2, 8));
	ip = ip4();
	ip->total_length = rte_cpu_to_be_16(20 + 6);
	fix_ip4_csum();
	ck_assert_int_eq(parse_buf(len), MBX_PARSE_UDP_TRUNC);
	ip->total_length = rte_cpu_to_be_16(20 + 16);
	fix_ip4_csum();
	((struct rte_udp_hdr *)(buf + ETH_LEN + 20))->dgram_len = rte_cpu_to_be_16(40);
	ck_assert_int_eq(parse_buf(len), MBX_PARSE_UDP_LEN);
	((struct rte_udp_hdr *)(buf + ETH_LEN + 20))->dgram_len = rte_cpu_to_be_16(4);
	ck_assert_int_eq(parse_buf(len), MBX_PARSE_UDP_LEN);

	/* ICMP shorter than 8 bytes */
	len = to_buf(mbx_test_icmp4("10.0.0.1", "192.0.2.9", 8, 1, 0));
	ip = ip4();
	ip->total_length = rte_cpu_to_be_16(20 + 4);
	fix_ip4_csum();
	ck_assert_int_eq(parse_buf(len), MBX_PARSE_ICMP_TRUNC);
}
END_TEST

START_TEST(headers_split_across_segments)
{
	uint16_t len = to_buf(mbx_test_udp4("10.0.0.1", "192.0.2.9", 1, 2, 20));
	struct rte_mbuf *head = mbx_test_frame(buf, ETH_LEN + 10);
	struct rte_mbuf *tail = mbx_test_frame(buf + ETH_LEN + 10, len - ETH_LEN - 10);

	ck_assert_int_eq(rte_pktmbuf_chain(head, tail), 0);
	ck_assert_int_eq(mbx_parse(head), MBX_PARSE_SEGMENTED);
	rte_pktmbuf_free(head);
}
END_TEST

/* Random bytes and random truncations of good packets: never a crash, never OK by accident. */
START_TEST(random_garbage)
{
	struct rte_mbuf *m;
	int ok = 0;

	for (int i = 0; i < 20000; i++) {
		uint16_t len = rte_rand_max(200);

		for (uint16_t j = 0; j < len; j++)
			buf[j] = (uint8_t)rte_rand();
		if (i & 1) { /* make the garbage look like IPv4 to get deeper */
			buf[12] = 0x08;
			buf[13] = 0x00;
			if (len > ETH_LEN)
				buf[ETH_LEN] = 0x45;
		}
		m = mbx_test_frame(buf, len);
		ck_assert_ptr_nonnull(m);
		ok += mbx_parse(m) == MBX_PARSE_OK;
		rte_pktmbuf_free(m);
	}
	/* random IPv4 headers pass the header checksum about once in 65536 */
	ck_assert_int_lt(ok, 10);

	/* every truncation of a good packet is refused */
	uint16_t len = to_buf(mbx_test_tcp4("10.0.0.1", "192.0.2.9", 1, 2, 0, 6));

	for (uint16_t cut = 0; cut < len; cut++) {
		m = mbx_test_frame(buf, cut);
		ck_assert_int_ne(mbx_parse(m), MBX_PARSE_OK);
		rte_pktmbuf_free(m);
	}
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("parse");
	TCase *tc = tcase_create("parse");
	SRunner *sr;
	int failed;

	mbx_test_eal("parse");
	tcase_add_test(tc, udp4_key);
	tcase_add_test(tc, tcp4_flags_and_options);
	tcase_add_test(tc, vlan_tagged);
	tcase_add_test(tc, icmp4_echo_id_is_port);
	tcase_add_test(tc, ipv6_udp_and_ext_headers);
	tcase_add_test(tc, ipv6_ext_chain_too_long);
	tcase_add_test(tc, non_ip_passes);
	tcase_add_test(tc, malformed_ipv4);
	tcase_add_test(tc, malformed_ipv6);
	tcase_add_test(tc, malformed_l4);
	tcase_add_test(tc, headers_split_across_segments);
	tcase_add_test(tc, random_garbage);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
