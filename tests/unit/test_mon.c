/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mon through the real worker path, with one and two workers: packets pass
 * unchanged; per-flow counters, TCP flags and times per direction; services
 * and OS hints from crafted SYN and SYN-ACK packets; host connection counts;
 * finished flows written as JSON lines by the ctrl_poll hook (called here
 * directly), never by a worker; ring overflow counted; the codecs, through
 * the framework's import. A probe NF behind mon drops the first packet of
 * flows to port 9, so that their flows are refused.
 */
#include <arpa/inet.h>
#include <check.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_ring.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "mbx/v1/mon.pb-c.h"
#include "mbx_state.h"
#include "mbx_test.h"
#include "mon.h"

#define SYN RTE_TCP_SYN_FLAG
#define ACK RTE_TCP_ACK_FLAG
#define PSH RTE_TCP_PSH_FLAG
#define FIN RTE_TCP_FIN_FLAG
#define RST RTE_TCP_RST_FLAG
#define TOL 2000000ULL /* ns: TSC-derived times against the wall clock */

static void
drop9_process(struct mbx_nf_ctx *c, struct rte_mbuf **pkts, uint16_t n)
{
	for (uint16_t i = 0; i < n; i++)
		if (rte_be_to_cpu_16(mbx_pkt(pkts[i])->key.dport) == 9)
			mbx_nf_drop(c, pkts[i], 0);
}

static const char *const drop9_counters[] = {"dropped"};
static const struct mbx_nf_ops drop9 = {
	.name = "drop9",
	.counter_names = drop9_counters,
	.nb_counters = 1,
	.process = drop9_process,
};
MBX_NF_REGISTER(drop9);

static uint64_t
wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static struct mbx_dp *
mon_dp2(const char *spec, const char *second, uint16_t workers)
{
	const char *nfs[] = {spec, second, NULL};
	struct mbx_dp *dp = mbx_test_dp(nfs, workers, 2, 4096);

	ck_assert_ptr_nonnull(dp);
	return dp;
}

static struct mbx_dp *
mon_dp(const char *spec, uint16_t workers)
{
	return mon_dp2(spec, NULL, workers);
}

static int
mon_idx(struct mbx_dp *dp)
{
	return mbx_chain_find(&dp->chain, "mon");
}

static struct mon *
mon_of(struct mbx_dp *dp)
{
	return dp->chain.nf[mon_idx(dp)].nf;
}

static struct mbx_nf_ctx *
ctx_of(struct mbx_dp *dp, uint16_t w)
{
	return &dp->workers[w]->nf[mon_idx(dp)];
}

static uint64_t
mon_ctr(struct mbx_dp *dp, enum mon_counter c)
{
	return mbx_dp_nf_stat(dp, dp->chain.nf[mon_idx(dp)].counter_off + c);
}

/* Receive @m on @port at worker @rx, run every hand-off ring; what left, or NULL. */
static struct rte_mbuf *
pass(struct mbx_dp *dp, uint16_t rx, struct rte_mbuf *m, uint16_t port)
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
			mbx_test_take_tx(dp->workers[i], dp->nb_ports == 1 ? port : !port, &out, 1);
	return out;
}

/* Pass @m received by worker @rx; check that it left by the other port byte for byte. */
static void
same_rx(struct mbx_dp *dp, uint16_t rx, struct rte_mbuf *m, uint16_t port)
{
	uint16_t len = rte_pktmbuf_data_len(m);
	uint8_t before[256];
	struct rte_mbuf *o;

	ck_assert_uint_le(len, sizeof(before));
	memcpy(before, rte_pktmbuf_mtod(m, void *), len);
	o = pass(dp, rx, m, port);
	ck_assert_ptr_nonnull(o);
	ck_assert_uint_eq(rte_pktmbuf_data_len(o), len);
	ck_assert_mem_eq(rte_pktmbuf_mtod(o, void *), before, len);
	rte_pktmbuf_free(o);
}

/* The same, inside packets received by the first worker, outside ones by the last. */
static void
same(struct mbx_dp *dp, struct rte_mbuf *m, uint16_t port)
{
	same_rx(dp, port == 0 ? 0 : dp->nb_workers - 1, m, port);
}

static struct rte_ipv4_hdr *
ip_of(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, sizeof(struct rte_ether_hdr));
}

/* A TCP segment with a given TTL and window, checksums valid. */
static struct rte_mbuf *
tcp4(const char *src, const char *dst, uint16_t sport, uint16_t dport, uint8_t flags, uint8_t ttl,
     uint16_t win)
{
	struct rte_mbuf *m = mbx_test_tcp4(src, dst, sport, dport, flags, 0);
	struct rte_ipv4_hdr *ip = ip_of(m);
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(ip + 1);

	ip->time_to_live = ttl;
	th->rx_win = rte_cpu_to_be_16(win);
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	th->cksum = 0;
	th->cksum = rte_ipv4_udptcp_cksum(ip, th);
	return m;
}

static struct rte_mbuf *
tcp6(const char *src, const char *dst, uint16_t sport, uint16_t dport, uint8_t flags, uint8_t hlim,
     uint16_t win)
{
	uint16_t len = sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv6_hdr) +
		       sizeof(struct rte_tcp_hdr);
	struct rte_mbuf *m = rte_pktmbuf_alloc(mbx_test_pool());
	struct rte_ether_hdr *eh;
	struct rte_ipv6_hdr *ip;
	struct rte_tcp_hdr *th;

	ck_assert(m != NULL && rte_pktmbuf_append(m, len) != NULL);
	eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	memset(eh, 0, len);
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
	ip = (struct rte_ipv6_hdr *)(eh + 1);
	ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
	ip->payload_len = rte_cpu_to_be_16(sizeof(*th));
	ip->proto = IPPROTO_TCP;
	ip->hop_limits = hlim;
	ck_assert(inet_pton(AF_INET6, src, ip->src_addr) == 1);
	ck_assert(inet_pton(AF_INET6, dst, ip->dst_addr) == 1);
	th = (struct rte_tcp_hdr *)(ip + 1);
	th->src_port = rte_cpu_to_be_16(sport);
	th->dst_port = rte_cpu_to_be_16(dport);
	th->data_off = (sizeof(*th) / 4) << 4;
	th->tcp_flags = flags;
	th->rx_win = rte_cpu_to_be_16(win);
	th->cksum = rte_ipv6_udptcp_cksum(ip, th);
	return m;
}

static union mbx_addr
addr(const char *s)
{
	union mbx_addr a;

	memset(&a, 0, sizeof(a));
	if (strchr(s, ':') != NULL)
		ck_assert(inet_pton(AF_INET6, s, a.v6) == 1);
	else
		a.v4 = mbx_test_ip4(s);
	return a;
}

static struct mbx_flow_key
key(uint8_t proto, const char *src, uint16_t sport, const char *dst, uint16_t dport)
{
	struct mbx_flow_key k;

	memset(&k, 0, sizeof(k));
	k.family = strchr(src, ':') != NULL ? MBX_FAMILY_V6 : MBX_FAMILY_V4;
	k.proto = proto;
	k.src = addr(src);
	k.dst = addr(dst);
	k.sport = rte_cpu_to_be_16(sport);
	k.dport = rte_cpu_to_be_16(dport);
	return k;
}

/* mon's state of the flow of @k and the worker holding it. */
static struct mon_flow *
flow_of(struct mbx_dp *dp, const struct mbx_flow_key *k, uint16_t *worker, struct mbx_flow **fp)
{
	for (uint16_t w = 0; w < dp->nb_workers; w++) {
		struct mbx_flow *f = mbx_table_lookup(dp->workers[w]->table, k, NULL);

		if (f == NULL)
			continue;
		if (worker != NULL)
			*worker = w;
		if (fp != NULL)
			*fp = f;
		return mbx_nf_state(ctx_of(dp, w), f);
	}
	return NULL;
}

/* The record of host @a, and how many workers have one. */
static struct mon_host *
host_of(struct mbx_dp *dp, const char *a, uint16_t *worker, unsigned int *copies)
{
	union mbx_addr ad = addr(a);
	struct mon_host_key hk = mon_host_key(&ad, strchr(a, ':') ? MBX_FAMILY_V6 : MBX_FAMILY_V4);
	struct mon_host *e = NULL;

	*copies = 0;
	for (uint16_t w = 0; w < dp->nb_workers; w++) {
		struct mon_hosts *h = ((struct mon_worker *)ctx_of(dp, w)->priv)->hosts;
		int32_t pos = mon_hosts_find(h, &hk);

		if (pos < 0)
			continue;
		(*copies)++;
		e = mon_hosts_at(h, pos);
		if (worker != NULL)
			*worker = w;
	}
	return e;
}

static bool
has_service(const struct mon_host *e, uint8_t proto, uint16_t port)
{
	for (unsigned int i = 0; i < e->nb_services; i++)
		if (e->services[i] == ((uint32_t)proto << 16 | port))
			return true;
	return false;
}

/* Capture emitted state into a buffer (one chunk at a time, appended). */
struct capture {
	uint8_t buf[16384];
	size_t len[64];
	size_t off[64];
	struct mbx_flow_key key[64];
	unsigned int n;
	size_t used;
};

static int
capture_emit(void *arg, const struct mbx_flow_key *k, const struct mbx_flow_key *reply,
	     const uint8_t *buf, size_t len)
{
	struct capture *c = arg;

	(void)reply;
	ck_assert_uint_lt(c->n, RTE_DIM(c->len));
	ck_assert_uint_le(c->used + len, sizeof(c->buf));
	memcpy(c->buf + c->used, buf, len);
	c->off[c->n] = c->used;
	c->len[c->n] = len;
	if (k != NULL)
		c->key[c->n] = *k;
	c->used += len;
	c->n++;
	return 0;
}

static Mbx__V1__MonTotals *
totals(struct mbx_dp *dp)
{
	static struct capture c;

	c.n = 0;
	c.used = 0;
	ck_assert_int_eq(mon_all_get(mon_of(dp), capture_emit, &c), 0);
	ck_assert_uint_eq(c.n, 1);
	return mbx__v1__mon_totals__unpack(NULL, c.len[0], c.buf);
}

START_TEST(flow_counters_per_direction)
{
	uint16_t workers = (uint16_t)_i;
	struct mbx_dp *dp = mon_dp("mon", workers);
	struct mbx_flow_key k = key(IPPROTO_TCP, "10.0.0.1", 40000, "192.0.2.9", 80);
	struct mbx_flow_key k6 = key(IPPROTO_UDP, "2001:db8:2::9", 5353, "2001:db8:1::1", 53);
	struct mbx_flow_key km = key(IPPROTO_TCP, "10.0.0.1", 40001, "192.0.2.9", 80);
	Mbx__V1__MonTotals *t;
	uint64_t ns0, ns1;
	struct mon_flow *st;
	uint16_t on;

	ns0 = wall_ns();
	same(dp, mbx_test_tcp4("10.0.0.1", "192.0.2.9", 40000, 80, SYN, 0), 0);
	rte_delay_us_sleep(2000);
	same(dp, mbx_test_tcp4("192.0.2.9", "10.0.0.1", 80, 40000, SYN | ACK, 0), 1);
	same(dp, mbx_test_tcp4("10.0.0.1", "192.0.2.9", 40000, 80, ACK, 0), 0);
	same(dp, mbx_test_tcp4("10.0.0.1", "192.0.2.9", 40000, 80, PSH | ACK, 100), 0);
	same(dp, mbx_test_tcp4("192.0.2.9", "10.0.0.1", 80, 40000, PSH | ACK, 150), 1);
	same(dp, mbx_test_tcp4("10.0.0.1", "192.0.2.9", 40000, 80, FIN | ACK, 0), 0);
	ns1 = wall_ns();
	st = flow_of(dp, &k, &on, NULL);
	ck_assert_ptr_nonnull(st);
	ck_assert_uint_eq(on, mbx_owner_by_host(&k.src, MBX_FAMILY_V4, workers));
	ck_assert_uint_eq(st->packets[0], 4);
	ck_assert_uint_eq(st->packets[1], 2);
	ck_assert_uint_eq(st->bytes[0], 40 * 3 + 140); /* IP datagrams: 20 + 20 + payload */
	ck_assert_uint_eq(st->bytes[1], 40 + 190);
	ck_assert_uint_eq(st->tcp_flags[0], SYN | ACK | PSH | FIN);
	ck_assert_uint_eq(st->tcp_flags[1], SYN | ACK | PSH);
	ck_assert_uint_ge(st->first_ns + TOL, ns0);
	ck_assert_uint_ge(st->last_ns, st->first_ns + 2000000 - TOL / 2);
	ck_assert_uint_le(st->last_ns, ns1 + TOL);
	ck_assert_uint_eq(st->orig_side, MBX_SIDE_INSIDE);
	ck_assert_uint_eq(st->midstream, 0);

	/* IPv6 UDP opened from the outside: placed by its inside host */
	same(dp, mbx_test_udp6("2001:db8:2::9", "2001:db8:1::1", 5353, 53, 20), 1);
	same(dp, mbx_test_udp6("2001:db8:1::1", "2001:db8:2::9", 53, 5353, 100), 0);
	st = flow_of(dp, &k6, &on, NULL);
	ck_assert_ptr_nonnull(st);
	ck_assert_uint_eq(on, mbx_owner_by_host(&k6.dst, MBX_FAMILY_V6, workers));
	ck_assert_uint_eq(st->packets[0], 1);
	ck_assert_uint_eq(st->packets[1], 1);
	ck_assert_uint_eq(st->bytes[0], 40 + 8 + 20);
	ck_assert_uint_eq(st->bytes[1], 40 + 8 + 100);
	ck_assert_uint_eq(st->tcp_flags[0] | st->tcp_flags[1], 0);
	ck_assert_uint_eq(st->orig_side, MBX_SIDE_OUTSIDE);

	/* TCP picked up without its SYN */
	same(dp, mbx_test_tcp4("10.0.0.1", "192.0.2.9", 40001, 80, ACK, 10), 0);
	st = flow_of(dp, &km, NULL, NULL);
	ck_assert_ptr_nonnull(st);
	ck_assert_uint_eq(st->midstream, 1);

	t = totals(dp);
	ck_assert_uint_eq(t->flows, 3);
	ck_assert_uint_eq(t->packets, 9);
	ck_assert_uint_eq(t->bytes, 260 + 230 + 68 + 148 + 50);
	ck_assert_uint_eq(t->flows_active, 3);
	ck_assert_uint_eq(t->hosts, 2); /* 10.0.0.1 and 2001:db8:1::1: inside hosts only */
	mbx__v1__mon_totals__free_unpacked(t, NULL);
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(services_and_os_hints)
{
	uint16_t workers = (uint16_t)_i;
	struct mbx_dp *dp = mon_dp("mon", workers);
	struct mon_host *e;
	unsigned int copies;
	uint16_t on;

	/* OS hints: SYNs from inside clients, TTLs a few hops below their class */
	same(dp, tcp4("10.0.0.1", "192.0.2.9", 1000, 443, SYN, 61, 29200), 0);
	same(dp, tcp4("10.0.0.2", "192.0.2.9", 1000, 443, SYN, 125, 8192), 0);
	same(dp, tcp4("10.0.0.2", "192.0.2.8", 1000, 443, SYN, 125, 8192), 0);
	same(dp,
	     tcp4("10.0.0.2", "192.0.2.8", 1001, 443, SYN | RTE_TCP_ECE_FLAG | RTE_TCP_CWR_FLAG,
		  128, 65535),
	     0);
	same(dp, tcp4("10.0.0.3", "192.0.2.9", 1000, 443, SYN, 250, 4128), 0);
	same(dp, tcp6("2001:db8:1::1", "2001:db8:2::9", 1000, 443, SYN, 64, 64800), 0);
	e = host_of(dp, "10.0.0.1", &on, &copies);
	ck_assert_ptr_nonnull(e);
	ck_assert_uint_eq(copies, 1);
	ck_assert_uint_eq(on, mbx_owner_by_host(&e->key.addr, MBX_FAMILY_V4, workers));
	ck_assert_uint_eq(e->nb_os, 1);
	ck_assert_uint_eq(e->os[0], 64u << 16 | 29200);
	e = host_of(dp, "10.0.0.2", NULL, &copies);
	ck_assert_uint_eq(e->nb_os, 2); /* the same SYN twice is one hint */
	ck_assert_uint_eq(e->os[0], 128u << 16 | 8192);
	ck_assert_uint_eq(e->os[1], 128u << 16 | 65535);
	ck_assert_uint_eq(host_of(dp, "10.0.0.3", NULL, &copies)->os[0], 255u << 16 | 4128);
	ck_assert_uint_eq(host_of(dp, "2001:db8:1::1", NULL, &copies)->os[0], 64u << 16 | 64800);
	ck_assert_str_eq(mon_ttl_class_os(128), "windows");
	/* the servers answered nothing yet, and outside hosts are not tracked */
	ck_assert_ptr_null(host_of(dp, "192.0.2.9", NULL, &copies));

	/* services: an inside server answers SYNs from the outside */
	same(dp, tcp4("198.51.100.7", "10.0.0.10", 5000, 22, SYN, 50, 1024), 1);
	same(dp, tcp4("10.0.0.10", "198.51.100.7", 22, 5000, SYN | ACK, 64, 65160), 0);
	same(dp, tcp4("198.51.100.7", "10.0.0.10", 5001, 23, SYN, 50, 1024), 1);
	same(dp, tcp4("10.0.0.10", "198.51.100.7", 23, 5001, RST | ACK, 64, 0), 0);
	same(dp, mbx_test_udp4("198.51.100.7", "10.0.0.10", 5000, 53, 30), 1);
	same(dp, mbx_test_udp4("10.0.0.10", "198.51.100.7", 53, 5000, 60), 0);
	same(dp, mbx_test_udp4("10.0.0.10", "198.51.100.7", 53, 5000, 60), 0);
	/* its own request to an NTP server is no service of its own */
	same(dp, mbx_test_udp4("10.0.0.10", "192.0.2.9", 123, 123, 48), 0);
	same(dp, mbx_test_udp4("192.0.2.9", "10.0.0.10", 123, 123, 48), 1);
	same(dp, tcp6("2001:db8:2::9", "2001:db8:1::2", 3000, 443, SYN, 60, 1000), 1);
	same(dp, tcp6("2001:db8:1::2", "2001:db8:2::9", 443, 3000, SYN | ACK, 64, 1000), 0);
	e = host_of(dp, "10.0.0.10", NULL, &copies);
	ck_assert_ptr_nonnull(e);
	ck_assert_uint_eq(e->nb_services, 2);
	ck_assert(has_service(e, IPPROTO_TCP, 22));
	ck_assert(has_service(e, IPPROTO_UDP, 53));
	ck_assert_uint_eq(e->nb_os, 0); /* a SYN-ACK is no OS hint */
	ck_assert_uint_eq(e->conns_in, 3);
	ck_assert_uint_eq(e->conns_out, 1);
	ck_assert(has_service(host_of(dp, "2001:db8:1::2", NULL, &copies), IPPROTO_TCP, 443));
	ck_assert_ptr_null(host_of(dp, "198.51.100.7", NULL, &copies));
	ck_assert_ptr_null(host_of(dp, "2001:db8:2::9", NULL, &copies));

	/* a host's services are bounded and the rest counted */
	for (uint16_t port = 1000; port < 1000 + MON_HOST_SERVICES + 1; port++) {
		same(dp, tcp4("198.51.100.8", "10.0.0.11", 7000, port, SYN, 50, 1024), 1);
		same(dp, tcp4("10.0.0.11", "198.51.100.8", port, 7000, SYN | ACK, 64, 1024), 0);
	}
	e = host_of(dp, "10.0.0.11", NULL, &copies);
	ck_assert_uint_eq(e->nb_services, MON_HOST_SERVICES);
	ck_assert_uint_eq(e->services[MON_HOST_SERVICES - 1], IPPROTO_TCP << 16 | 1015);
	ck_assert_uint_eq(e->services_lost, 1);
	mbx_test_dp_free(dp);
}
END_TEST

static int
del_cb(struct mbx_flow *f, void *arg)
{
	mbx_worker_del_flow(arg, f);
	return 0;
}

static int
del_all(void *arg)
{
	struct mbx_worker *w = arg;
	uint32_t cursor = 0;

	while (cursor != UINT32_MAX)
		mbx_table_walk(w->table, &cursor, UINT32_MAX, del_cb, w);
	return 0;
}

START_TEST(host_connection_counts)
{
	struct mbx_dp *dp = mon_dp("mon", 1);
	struct mbx_nf_ctx *c = ctx_of(dp, 0);
	struct mbx_filter flt;
	struct mon_host *e;
	unsigned int copies;

	for (int i = 0; i < 3; i++)
		same(dp, mbx_test_udp4("10.0.0.1", "192.0.2.9", 1000 + i, 53, 8), 0);
	same(dp, mbx_test_udp4("198.51.100.1", "10.0.0.1", 3000, 53, 8), 1);
	same(dp, mbx_test_udp4("198.51.100.2", "10.0.0.1", 3000, 53, 8), 1);
	same(dp, mbx_test_udp4("10.0.0.1", "192.0.2.9", 1000, 53, 8), 0);
	e = host_of(dp, "10.0.0.1", NULL, &copies);
	ck_assert_uint_eq(e->conns_out, 3);
	ck_assert_uint_eq(e->conns_in, 2);
	ck_assert_uint_eq(e->active, 5);

	/* a host some flow holds is not deleted */
	ck_assert_int_eq(mbx_test_filter(&flt, "src=10.0.0.1/32"), 0);
	ck_assert_int_eq(mon_multi_del(c, &flt), 0);
	del_all(dp->workers[0]);
	e = host_of(dp, "10.0.0.1", NULL, &copies);
	ck_assert_uint_eq(e->active, 0);
	ck_assert_uint_eq(e->conns_out + e->conns_in, 5);
	ck_assert_uint_eq(mon_ctr(dp, MON_CTR_FINISHED), 5);
	ck_assert_int_eq(mbx_test_filter(&flt, "src=10.0.0.2/32"), 0);
	ck_assert_int_eq(mon_multi_del(c, &flt), 0);
	ck_assert_int_eq(mbx_test_filter(&flt, "src=10.0.0.0/24"), 0);
	ck_assert_int_eq(mon_multi_del(c, &flt), 1);
	ck_assert_ptr_null(host_of(dp, "10.0.0.1", NULL, &copies));
	mbx_test_dp_free(dp);
}
END_TEST

static char *
slurp(const char *path, unsigned int *lines)
{
	static char buf[65536];
	FILE *f = fopen(path, "r");
	size_t n;

	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	*lines = 0;
	for (size_t i = 0; i < n; i++)
		*lines += buf[i] == '\n';
	return buf;
}

/* Line @n (from 0) of @text, without its newline. */
static const char *
line(const char *text, unsigned int n)
{
	static char buf[1024];
	const char *end;

	for (; n > 0; n--)
		text = strchr(text, '\n') + 1;
	end = strchr(text, '\n');
	ck_assert_ptr_nonnull(end);
	ck_assert_uint_lt((size_t)(end - text), sizeof(buf));
	memcpy(buf, text, (size_t)(end - text));
	buf[end - text] = '\0';
	return buf;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void
tmp_path(char *path, size_t len, const char *name)
{
	snprintf(path, len, "/tmp/test_mon_%d_%s.json", getpid(), name);
	unlink(path);
}

START_TEST(finished_flows_as_json_lines)
{
	char path[128], spec[192], want[1024];
	struct mbx_flow_key ku = key(IPPROTO_UDP, "10.0.0.1", 1000, "192.0.2.9", 53);
	struct mbx_flow_key k6 = key(IPPROTO_UDP, "2001:db8:1::1", 1000, "2001:db8:2::9", 53);
	uint32_t secs[MBX_TMO_MAX];
	struct mbx_dp *dp;
	struct mon_flow u, v6;
	struct mbx_flow *f;
	unsigned int lines;
	char *text;

	tmp_path(path, sizeof(path), "json");
	snprintf(spec, sizeof(spec), "mon,flows_file=%s", path);
	dp = mon_dp2(spec, "drop9", 1);

	/* deleted: a UDP flow with a reply, and an IPv6 one */
	same(dp, mbx_test_udp4("10.0.0.1", "192.0.2.9", 1000, 53, 12), 0);
	same(dp, mbx_test_udp4("10.0.0.1", "192.0.2.9", 1000, 53, 12), 0);
	same(dp, mbx_test_udp4("192.0.2.9", "10.0.0.1", 53, 1000, 100), 1);
	same(dp, mbx_test_udp6("2001:db8:1::1", "2001:db8:2::9", 1000, 53, 0), 0);
	u = *flow_of(dp, &ku, NULL, &f);
	mbx_worker_del_flow(dp->workers[0], f);
	v6 = *flow_of(dp, &k6, NULL, &f);
	mbx_worker_del_flow(dp->workers[0], f);
	/* refused: the NF behind mon drops its first packet */
	ck_assert_ptr_null(pass(dp, 0, mbx_test_tcp4("10.0.0.2", "192.0.2.9", 2000, 9, SYN, 0), 0));
	ck_assert_uint_eq(mbx_dp_flows(dp), 0);
	/* expired: UDP without a reply, idle past a 1 s udp_first */
	memcpy(secs, mbx_tmo_defaults, sizeof(secs));
	secs[MBX_TMO_UDP_FIRST] = 1;
	mbx_table_set_timeouts(dp->workers[0]->table, secs);
	same(dp, mbx_test_udp4("10.0.0.3", "192.0.2.9", 3000, 123, 48), 0);
	rte_delay_us_sleep(1100 * 1000);
	ck_assert_uint_eq(mbx_worker_expire(dp->workers[0], rte_rdtsc(), 100), 1);

	/* nothing is written before the main lcore's hook runs */
	slurp(path, &lines);
	ck_assert_uint_eq(lines, 0);
	ck_assert_uint_eq(mon_ctr(dp, MON_CTR_QUEUED), 4);
	dp->chain.nf[mon_idx(dp)].ops->ctrl_poll(mon_of(dp));
	text = slurp(path, &lines);
	ck_assert_uint_eq(lines, 4);
	snprintf(want, sizeof(want),
		 "{\"first_ns\":%" PRIu64 ",\"last_ns\":%" PRIu64
		 ",\"family\":4,\"proto\":17,\"src\":\"10.0.0.1\",\"sport\":1000,"
		 "\"dst\":\"192.0.2.9\",\"dport\":53,\"originator_side\":\"inside\","
		 "\"midstream\":false,\"orig\":{\"packets\":2,\"bytes\":80,\"tcp_flags\":0},"
		 "\"reply\":{\"packets\":1,\"bytes\":128,\"tcp_flags\":0},\"end\":\"deleted\"}",
		 u.first_ns, u.last_ns);
	ck_assert_str_eq(line(text, 0), want);
	snprintf(want, sizeof(want),
		 "{\"first_ns\":%" PRIu64 ",\"last_ns\":%" PRIu64
		 ",\"family\":6,\"proto\":17,\"src\":\"2001:db8:1::1\",\"sport\":1000,"
		 "\"dst\":\"2001:db8:2::9\",\"dport\":53,\"originator_side\":\"inside\","
		 "\"midstream\":false,\"orig\":{\"packets\":1,\"bytes\":48,\"tcp_flags\":0},"
		 "\"reply\":{\"packets\":0,\"bytes\":0,\"tcp_flags\":0},\"end\":\"deleted\"}",
		 v6.first_ns, v6.last_ns);
	ck_assert_str_eq(line(text, 1), want);
	ck_assert_ptr_nonnull(strstr(line(text, 2), "\"src\":\"10.0.0.2\",\"sport\":2000,"));
	ck_assert_ptr_nonnull(strstr(line(text, 2), "\"orig\":{\"packets\":1,\"bytes\":40,"
						    "\"tcp_flags\":2},"));
	ck_assert(ends_with(line(text, 2), "\"end\":\"refused\"}"));
	ck_assert_ptr_nonnull(strstr(line(text, 3), "\"src\":\"10.0.0.3\",\"sport\":3000,"));
	ck_assert(ends_with(line(text, 3), "\"end\":\"expired\"}"));
	ck_assert_uint_eq(mon_ctr(dp, MON_CTR_FINISHED), 4);
	ck_assert_uint_eq(mon_ctr(dp, MON_CTR_RING_FULL), 0);
	mbx_test_dp_free(dp);
	unlink(path);
}
END_TEST

static int
add_flows(struct mbx_dp *dp, int first, int n)
{
	for (int i = first; i < first + n; i++)
		same(dp, mbx_test_udp4("10.0.0.1", "192.0.2.9", (uint16_t)(1000 + i), 53, 0), 0);
	return n;
}

START_TEST(ring_overflow_is_counted)
{
	char path[128], spec[192];
	unsigned int lcore = rte_get_next_lcore(-1, 1, 0), lines;
	struct mbx_dp *dp;

	tmp_path(path, sizeof(path), "ring");
	snprintf(spec, sizeof(spec), "mon,flows_file=%s,flows_ring=4", path);
	dp = mon_dp(spec, 1);
	ck_assert_uint_lt(lcore, RTE_MAX_LCORE);

	/* six flows end on a worker lcore: four fit the ring, two are lost and counted */
	add_flows(dp, 0, 6);
	ck_assert_int_eq(rte_eal_remote_launch(del_all, dp->workers[0], lcore), 0);
	ck_assert_int_eq(rte_eal_wait_lcore(lcore), 0);
	ck_assert_uint_eq(mon_ctr(dp, MON_CTR_FINISHED), 6);
	ck_assert_uint_eq(mon_ctr(dp, MON_CTR_QUEUED), 4);
	ck_assert_uint_eq(mon_ctr(dp, MON_CTR_RING_FULL), 2);
	slurp(path, &lines);
	ck_assert_uint_eq(lines, 0);
	mon_ctrl_poll(mon_of(dp));
	slurp(path, &lines);
	ck_assert_uint_eq(lines, 4);

	/* on the main lcore (as at shutdown) a full ring is written out instead */
	add_flows(dp, 6, 6);
	del_all(dp->workers[0]);
	ck_assert_uint_eq(mon_ctr(dp, MON_CTR_QUEUED), 10);
	ck_assert_uint_eq(mon_ctr(dp, MON_CTR_RING_FULL), 2);
	slurp(path, &lines);
	ck_assert_uint_eq(lines, 8);
	mon_ctrl_poll(mon_of(dp));
	slurp(path, &lines);
	ck_assert_uint_eq(lines, 10);

	/* and shutdown writes what is left */
	add_flows(dp, 12, 3);
	mbx_test_dp_free(dp);
	slurp(path, &lines);
	ck_assert_uint_eq(lines, 13);
	unlink(path);
}
END_TEST

START_TEST(two_workers_keep_a_host_on_one)
{
	struct mbx_dp *dp = mon_dp("mon", 2);
	unsigned int on[2] = {0, 0}, copies;
	Mbx__V1__MonTotals *t;

	for (int h = 1; h <= 20; h++) {
		char src[32];
		struct mbx_flow_key k;
		struct mon_flow *st;
		struct mon_host *e;
		uint16_t w, hw;

		snprintf(src, sizeof(src), "10.0.1.%d", h);
		/* both received by worker 0, as from a port without RSS */
		same_rx(dp, 0, mbx_test_udp4(src, "192.0.2.9", 4000, 53, 4), 0);
		same_rx(dp, 0, mbx_test_udp4("192.0.2.9", src, 53, 4000, 4), 1);
		k = key(IPPROTO_UDP, src, 4000, "192.0.2.9", 53);
		st = flow_of(dp, &k, &w, NULL);
		ck_assert_ptr_nonnull(st);
		ck_assert_uint_eq(st->packets[0], 1);
		ck_assert_uint_eq(st->packets[1], 1);
		e = host_of(dp, src, &hw, &copies);
		ck_assert_uint_eq(copies, 1);
		ck_assert_uint_eq(hw, w);
		ck_assert(has_service(e, IPPROTO_UDP, 53) == false); /* the server is outside */
		on[w]++;
	}
	ck_assert_uint_gt(on[0], 0);
	ck_assert_uint_gt(on[1], 0);
	ck_assert_uint_gt(mbx_dp_stat(dp, MBX_WSTAT_HANDOFF_OUT), 0);
	t = totals(dp);
	ck_assert_uint_eq(t->flows, 20);
	ck_assert_uint_eq(t->packets, 40);
	ck_assert_uint_eq(t->hosts, 20);
	mbx__v1__mon_totals__free_unpacked(t, NULL);
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(one_port_tracks_both_ends)
{
	const char *nfs[] = {"mon", NULL};
	struct mbx_dp *dp = mbx_test_dp(nfs, 2, 1, 4096);
	union mbx_addr ca = addr("10.0.0.1"), sa;
	struct mbx_flow_key k;
	struct mon_host *c, *s;
	unsigned int copies;
	struct mon_flow *st;
	uint16_t w, cw, sw;
	char srv[32];

	ck_assert_ptr_nonnull(dp);
	/* a server that mbx_owner_by_host() would put on the other worker */
	for (int i = 2; i < 255; i++) {
		snprintf(srv, sizeof(srv), "10.0.0.%d", i);
		sa = addr(srv);
		if (mbx_owner_by_host(&sa, MBX_FAMILY_V4, 2) !=
		    mbx_owner_by_host(&ca, MBX_FAMILY_V4, 2))
			break;
	}
	k = key(IPPROTO_TCP, "10.0.0.1", 1000, srv, 22);
	same_rx(dp, 0, tcp4("10.0.0.1", srv, 1000, 22, SYN, 64, 29200), 0);
	same_rx(dp, 1, tcp4(srv, "10.0.0.1", 22, 1000, SYN | ACK, 128, 8192), 0);
	st = flow_of(dp, &k, &w, NULL);
	ck_assert_ptr_nonnull(st);
	ck_assert_uint_eq(st->packets[0], 1);
	ck_assert_uint_eq(st->packets[1], 1);
	ck_assert_uint_eq(st->orig_side, MBX_SIDE_INSIDE);
	/* every host is inside: both ends have records, on the flow's worker */
	c = host_of(dp, "10.0.0.1", &cw, &copies);
	ck_assert_uint_eq(copies, 1);
	s = host_of(dp, srv, &sw, &copies);
	ck_assert_uint_eq(copies, 1);
	ck_assert_uint_eq(cw, w);
	ck_assert_uint_eq(sw, w);
	ck_assert_uint_eq(c->conns_out, 1);
	ck_assert_uint_eq(c->os[0], 64u << 16 | 29200);
	ck_assert_uint_eq(s->conns_in, 1);
	ck_assert_uint_eq(s->nb_os, 0);
	ck_assert(has_service(s, IPPROTO_TCP, 22));
	mbx_test_dp_free(dp);
}
END_TEST

/* Install one state record through the framework, on the worker that owns its key. */
static int
import(struct mbx_dp *dp, uint8_t scope, const struct mbx_flow_key *k, const uint8_t *state,
       size_t len)
{
	static uint64_t buf[512];
	struct mbx_state_rec *r = (struct mbx_state_rec *)buf;
	struct mbx_undo undo[1];
	struct mbx_import im = {.recs = (const uint8_t *)buf, .undo = undo};

	ck_assert_uint_le(mbx_state_rec_size(len), sizeof(buf));
	memset(r, 0, sizeof(*r));
	r->len = (uint32_t)mbx_state_rec_size(len);
	r->nf = (uint16_t)mon_idx(dp);
	r->scope = scope;
	r->key = *k;
	r->state_len = (uint32_t)len;
	memcpy(r->state, state, len);
	im.len = r->len;
	return mbx_state_import(dp->workers[mbx_state_owner(dp, k, MBX_SIDE_INSIDE)], &im);
}

START_TEST(codecs_continue_counting)
{
	struct mbx_dp *a = mon_dp("mon", 1), *b = mon_dp("mon", 2);
	struct mbx_flow_key k = key(IPPROTO_TCP, "10.0.0.1", 40000, "192.0.2.9", 443);
	struct mbx_flow_key host = key(0, "10.0.0.1", 0, "0.0.0.0", 0);
	struct mbx_filter all;
	struct mon_flow *sa, *sb, before;
	static struct capture hosts;
	Mbx__V1__MonTotals *t;
	Mbx__V1__MonHost *hm;
	struct mon_host *e;
	struct mbx_flow *f;
	unsigned int copies;
	uint16_t wa;
	uint8_t fb[128], bad[1024];
	size_t blen;
	int flen;

	same(a, tcp4("10.0.0.1", "192.0.2.9", 40000, 443, SYN, 64, 64240), 0);
	same(a, tcp4("192.0.2.9", "10.0.0.1", 443, 40000, SYN | ACK, 50, 65160), 1);
	same(a, mbx_test_tcp4("10.0.0.1", "192.0.2.9", 40000, 443, PSH | ACK, 100), 0);
	same(a, tcp4("198.51.100.1", "10.0.0.1", 5000, 22, SYN, 50, 1024), 1);
	same(a, tcp4("10.0.0.1", "198.51.100.1", 22, 5000, SYN | ACK, 64, 1024), 0);
	sa = flow_of(a, &k, &wa, &f);
	before = *sa;
	ck_assert_int_eq(mon_flow_get(ctx_of(a, wa), f, NULL, 0), -ENOBUFS);
	flen = mon_flow_get(ctx_of(a, wa), f, fb, sizeof(fb));
	ck_assert_int_gt(flen, 0);
	ck_assert_int_eq(mon_flow_get(ctx_of(a, wa), f, fb, (size_t)flen - 1), -ENOBUFS);
	mbx_filter_init(&all);
	ck_assert_int_eq(mon_multi_get(ctx_of(a, 0), &all, capture_emit, &hosts), 0);
	ck_assert_uint_eq(hosts.n, 1);
	ck_assert_mem_eq(&hosts.key[0], &host, sizeof(host));

	/* multi-flow first, then per-flow, as clients do */
	ck_assert_int_eq(import(b, MBX_SCOPE_MULTI_FLOW, &host, hosts.buf, hosts.len[0]), 0);
	ck_assert_int_eq(import(b, MBX_SCOPE_PER_FLOW, &k, fb, (size_t)flen), 0);
	sb = flow_of(b, &k, NULL, NULL);
	ck_assert_ptr_nonnull(sb);
	ck_assert_uint_eq(sb->first_ns, before.first_ns);
	ck_assert_uint_eq(sb->last_ns, before.last_ns);
	ck_assert_mem_eq(sb->packets, before.packets, sizeof(before.packets));
	ck_assert_mem_eq(sb->bytes, before.bytes, sizeof(before.bytes));
	ck_assert_mem_eq(sb->tcp_flags, before.tcp_flags, sizeof(before.tcp_flags));
	e = host_of(b, "10.0.0.1", NULL, &copies);
	ck_assert_uint_eq(e->conns_out, 1);
	ck_assert_uint_eq(e->conns_in, 1);
	ck_assert_uint_eq(e->active, 1); /* the imported flow; A's other flow stayed there */
	ck_assert_uint_eq(e->nb_os, 1);
	ck_assert(has_service(e, IPPROTO_TCP, 22));

	/* the next packets continue A's counters */
	same(b, mbx_test_tcp4("10.0.0.1", "192.0.2.9", 40000, 443, FIN | ACK, 10), 0);
	same(b, mbx_test_tcp4("192.0.2.9", "10.0.0.1", 443, 40000, ACK, 0), 1);
	ck_assert_uint_eq(sb->packets[0], before.packets[0] + 1);
	ck_assert_uint_eq(sb->packets[1], before.packets[1] + 1);
	ck_assert_uint_eq(sb->bytes[0], before.bytes[0] + 50);
	ck_assert_uint_eq(sb->bytes[1], before.bytes[1] + 40);
	ck_assert_uint_eq(sb->tcp_flags[0], before.tcp_flags[0] | FIN);
	ck_assert_uint_eq(sb->first_ns, before.first_ns);
	ck_assert_uint_gt(sb->last_ns, before.last_ns);

	/* the flow has mon state now: refused; host records merge */
	ck_assert_int_eq(import(b, MBX_SCOPE_PER_FLOW, &k, fb, (size_t)flen), -EEXIST);
	ck_assert_int_eq(import(b, MBX_SCOPE_MULTI_FLOW, &host, hosts.buf, hosts.len[0]), 0);
	e = host_of(b, "10.0.0.1", NULL, &copies);
	ck_assert_uint_eq(e->conns_out, 2);
	ck_assert_uint_eq(e->nb_os, 1);
	ck_assert_uint_eq(e->nb_services, 1);

	/* totals add up */
	t = totals(a);
	blen = mbx__v1__mon_totals__pack(t, bad);
	mbx__v1__mon_totals__free_unpacked(t, NULL);
	ck_assert_int_eq(mon_all_put(mon_of(b), bad, blen, false), 0);
	t = totals(b);
	ck_assert_uint_eq(t->packets, 2);
	mbx__v1__mon_totals__free_unpacked(t, NULL);
	ck_assert_int_eq(mon_all_put(mon_of(b), bad, blen, true), 0);
	t = totals(b);
	ck_assert_uint_eq(t->packets, 5 + 2);
	ck_assert_uint_eq(t->flows, 2);
	mbx__v1__mon_totals__free_unpacked(t, NULL);
	ck_assert_int_eq(mon_all_put(mon_of(b), (const uint8_t *)"\xff\xff", 2, false), -EBADMSG);

	/* refusals change nothing */
	{
		Mbx__V1__MonFlowState *m = mbx__v1__mon_flow_state__unpack(NULL, (size_t)flen, fb);
		struct mbx_flow_key k2 = key(IPPROTO_TCP, "10.0.0.1", 40001, "192.0.2.9", 443);
		struct mbx_flow_key kin;
		uint64_t flows = mbx_dp_flows(b);
		char out[32], in[32];
		int i;

		ck_assert_int_eq(import(b, MBX_SCOPE_PER_FLOW, &k2, (const uint8_t *)"\x0a\xff", 2),
				 -EBADMSG);
		m->last_ns = m->first_ns - 1;
		blen = mbx__v1__mon_flow_state__pack(m, bad);
		ck_assert_int_eq(import(b, MBX_SCOPE_PER_FLOW, &k2, bad, blen), -EINVAL);
		/* opened from the outside, but placed by its outside end: not where its packets go
		 */
		m->last_ns = m->first_ns;
		m->originator_side = MBX__V1__MON_SIDE__MON_SIDE_OUTSIDE;
		blen = mbx__v1__mon_flow_state__pack(m, bad);
		for (i = 1; i < 255; i++) {
			snprintf(out, sizeof(out), "198.51.100.%d", i);
			snprintf(in, sizeof(in), "10.0.3.%d", i);
			kin = key(IPPROTO_TCP, out, 5000, in, 22);
			if (mbx_owner_by_host(&kin.src, MBX_FAMILY_V4, 2) !=
			    mbx_owner_by_host(&kin.dst, MBX_FAMILY_V4, 2))
				break;
		}
		ck_assert_int_eq(import(b, MBX_SCOPE_PER_FLOW, &kin, bad, blen), -EINVAL);
		ck_assert_uint_eq(mbx_dp_flows(b), flows);
		mbx__v1__mon_flow_state__free_unpacked(m, NULL);
	}
	hm = mbx__v1__mon_host__unpack(NULL, hosts.len[0], hosts.buf);
	hm->services[0]->proto = IPPROTO_ICMP;
	blen = mbx__v1__mon_host__pack(hm, bad);
	ck_assert_int_eq(import(b, MBX_SCOPE_MULTI_FLOW, &host, bad, blen), -EINVAL);
	hm->services[0]->proto = IPPROTO_TCP;
	hm->services[0]->port = 70000;
	blen = mbx__v1__mon_host__pack(hm, bad);
	ck_assert_int_eq(import(b, MBX_SCOPE_MULTI_FLOW, &host, bad, blen), -EBADMSG);
	hm->services[0]->port = 22;
	blen = mbx__v1__mon_host__pack(hm, bad);
	host.src.v4 = mbx_test_ip4("10.0.0.2");
	ck_assert_int_eq(import(b, MBX_SCOPE_MULTI_FLOW, &host, bad, blen), -EINVAL);
	mbx__v1__mon_host__free_unpacked(hm, NULL);
	e = host_of(b, "10.0.0.1", NULL, &copies);
	ck_assert_uint_eq(e->conns_out, 2);
	ck_assert_ptr_null(host_of(b, "10.0.0.2", NULL, &copies));
	mbx_test_dp_free(a);
	mbx_test_dp_free(b);
}
END_TEST

START_TEST(bad_arguments_are_refused)
{
	static const char *const bad[] = {
		"mon,colour=red",
		"mon,hosts=0",
		"mon,hosts=12x",
		"mon,flows_ring=8",
		"mon,flows_file=/tmp/x.json,flows_ring=0",
		"mon,flows_file=/nonexistent-dir/flows.json",
		"mon,flows_file=/tmp/a.json,flows_file=/tmp/b.json",
	};

	for (unsigned int i = 0; i < RTE_DIM(bad); i++) {
		const char *nfs[] = {bad[i], NULL};

		ck_assert_msg(mbx_test_dp(nfs, 1, 2, 64) == NULL, "%s accepted", bad[i]);
	}
	unlink("/tmp/x.json");
	unlink("/tmp/a.json");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("mon");
	TCase *tc = tcase_create("mon");
	SRunner *sr;
	int failed;

	mbx_test_eal("mon");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, flow_counters_per_direction, 1, 3);
	tcase_add_loop_test(tc, services_and_os_hints, 1, 3);
	tcase_add_test(tc, host_connection_counts);
	tcase_add_test(tc, finished_flows_as_json_lines);
	tcase_add_test(tc, ring_overflow_is_counted);
	tcase_add_test(tc, two_workers_keep_a_host_on_one);
	tcase_add_test(tc, one_port_tracks_both_ends);
	tcase_add_test(tc, codecs_continue_counting);
	tcase_add_test(tc, bad_arguments_are_refused);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
