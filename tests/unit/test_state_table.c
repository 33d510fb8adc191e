/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The flow table: put, get, delete, walk, filters, capacity, expiry, and the
 * control path to a running worker through its request ring.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_tcp.h>

#include "../../southbound/mbx_sb.h"
#include "mbx_ctrl.h"
#include "mbx_state.h"
#include "mbx_table.h"
#include "mbx_test.h"

static struct mbx_flow_key
key4(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint8_t proto)
{
	struct mbx_flow_key k;

	memset(&k, 0, sizeof(k));
	k.family = MBX_FAMILY_V4;
	k.proto = proto;
	k.src.v4 = rte_cpu_to_be_32(src);
	k.dst.v4 = rte_cpu_to_be_32(dst);
	k.sport = rte_cpu_to_be_16(sport);
	k.dport = rte_cpu_to_be_16(dport);
	return k;
}

static struct mbx_table *
table(uint32_t capacity)
{
	static unsigned int seq;
	char name[32];
	struct mbx_table_conf c = {.name = name, .capacity = capacity, .state_size = 16};
	struct mbx_table *t;

	snprintf(name, sizeof(name), "tt_%u", seq++);
	t = mbx_table_create(&c);
	ck_assert_ptr_nonnull(t);
	return t;
}

START_TEST(add_lookup_delete)
{
	struct mbx_table *t = table(64);
	struct mbx_flow_key k = key4(0x0a000001, 0xc0000201, 1000, 80, IPPROTO_TCP), r;
	struct mbx_flow *f;
	uint8_t dir = 9;

	f = mbx_table_add(t, &k, MBX_TMO_TCP_SYN_SENT, 0);
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(mbx_table_count(t), 1);
	ck_assert_ptr_eq(mbx_table_lookup(t, &k, &dir), f);
	ck_assert_uint_eq(dir, MBX_DIR_ORIG);
	ck_assert_mem_eq(&mbx_flow_keys(t, f)[0], &k, sizeof(k));
	/* state starts zeroed */
	for (int i = 0; i < 16; i++)
		ck_assert_uint_eq(f->state[i], 0);

	/* the reply key points at the same entry */
	mbx_flow_key_reverse(&r, &k);
	ck_assert_ptr_null(mbx_table_lookup(t, &r, NULL));
	ck_assert_int_eq(mbx_table_set_reply_key(t, f, &r), 0);
	ck_assert_ptr_eq(mbx_table_lookup(t, &r, &dir), f);
	ck_assert_uint_eq(dir, MBX_DIR_REPLY);

	/* adding the same key again is refused, and nothing changes */
	ck_assert_ptr_null(mbx_table_add(t, &k, MBX_TMO_TCP_SYN_SENT, 0));
	ck_assert_int_eq(rte_errno, EEXIST);
	ck_assert_uint_eq(mbx_table_count(t), 1);

	/* a reply key owned by another flow is refused */
	{
		struct mbx_flow_key k2 = key4(0x0a000002, 0xc0000201, 1000, 80, IPPROTO_TCP);
		struct mbx_flow *f2 = mbx_table_add(t, &k2, MBX_TMO_TCP_SYN_SENT, 0);

		ck_assert_int_eq(mbx_table_set_reply_key(t, f2, &r), -EEXIST);
		mbx_table_del(t, f2);
	}

	mbx_table_del(t, f);
	ck_assert_uint_eq(mbx_table_count(t), 0);
	ck_assert_ptr_null(mbx_table_lookup(t, &k, NULL));
	ck_assert_ptr_null(mbx_table_lookup(t, &r, NULL));
	mbx_table_free(t);
}
END_TEST

START_TEST(bulk_lookup)
{
	struct mbx_table *t = table(256);
	struct mbx_flow_key keys[40];
	const struct mbx_flow_key *kp[40];
	struct mbx_flow *flows[40], *added[40];
	uint8_t dirs[40];

	for (int i = 0; i < 40; i++) {
		keys[i] = key4(0x0a000000 + i, 0xc0000201, 2000 + i, 53, IPPROTO_UDP);
		kp[i] = &keys[i];
		added[i] = i % 2 == 0 ? mbx_table_add(t, &keys[i], MBX_TMO_UDP, 0) : NULL;
	}
	ck_assert_uint_eq(mbx_table_lookup_bulk(t, kp, 40, flows, dirs), 20);
	for (int i = 0; i < 40; i++)
		ck_assert_ptr_eq(flows[i], added[i]);
	mbx_table_free(t);
}
END_TEST

START_TEST(capacity_is_enforced)
{
	struct mbx_table *t = table(100);
	struct mbx_flow *first = NULL, *f;
	struct mbx_flow_key k;

	for (uint32_t i = 0; i < 100; i++) {
		k = key4(0x0a000000 + i, 0xc0000201, 1, 2, IPPROTO_UDP);
		f = mbx_table_add(t, &k, MBX_TMO_UDP, 0);
		ck_assert_ptr_nonnull(f);
		if (first == NULL)
			first = f;
	}
	k = key4(0x0b000000, 0xc0000201, 1, 2, IPPROTO_UDP);
	ck_assert_ptr_null(mbx_table_add(t, &k, MBX_TMO_UDP, 0));
	ck_assert_int_eq(rte_errno, ENOSPC);
	ck_assert_uint_eq(mbx_table_count(t), 100);
	mbx_table_del(t, first);
	ck_assert_ptr_nonnull(mbx_table_add(t, &k, MBX_TMO_UDP, 0));
	mbx_table_free(t);
}
END_TEST

struct walk_arg {
	struct mbx_table *t;
	uint32_t seen[1000];
	bool delete_odd;
};

static int
walk_cb(struct mbx_flow *f, void *arg)
{
	struct walk_arg *w = arg;
	uint32_t src = rte_be_to_cpu_32(mbx_flow_keys(w->t, f)[0].src.v4) - 0x0a000000;

	if (src >= 1000)
		return 0; /* added during the walk: may or may not be visited */
	w->seen[src]++;
	if (w->delete_odd && src % 2 == 1)
		mbx_table_del(w->t, f);
	return 0;
}

START_TEST(walk_in_slices)
{
	struct mbx_table *t = table(1000);
	struct walk_arg *w = calloc(1, sizeof(*w));
	uint32_t cursor = 0, slices = 0;

	w->t = t;
	for (uint32_t i = 0; i < 1000; i++) {
		struct mbx_flow_key k = key4(0x0a000000 + i, 1, 1, 1, IPPROTO_UDP);

		ck_assert_ptr_nonnull(mbx_table_add(t, &k, MBX_TMO_UDP, 0));
	}
	/* the walk deletes half of what it visits, and new flows come in between slices */
	w->delete_odd = true;
	while (cursor != UINT32_MAX) {
		struct mbx_flow_key k = key4(0x0b000000 + slices, 1, 1, 1, IPPROTO_UDP);

		ck_assert_int_ge(mbx_table_walk(t, &cursor, 64, walk_cb, w), 0);
		if (++slices < 5)
			ck_assert_ptr_nonnull(mbx_table_add(t, &k, MBX_TMO_UDP, 0));
	}
	for (uint32_t i = 0; i < 1000; i++)
		ck_assert_uint_eq(w->seen[i], 1);
	ck_assert_uint_ge(slices, 1000 / 64);
	ck_assert_uint_eq(mbx_table_count(t), 500 + 4);
	free(w);
	mbx_table_free(t);
}
END_TEST

START_TEST(filters)
{
	struct mbx_filter f;
	struct mbx_flow_key k = key4(0x0a000105, 0xc0000201, 40000, 443, IPPROTO_TCP);
	struct mbx_flow_key k6;

	ck_assert_int_eq(mbx_test_filter(&f, ""), 0);
	ck_assert(mbx_filter_match(&f, &k));
	ck_assert_int_eq(mbx_test_filter(&f, "src=10.0.1.0/24,dport=443,proto=tcp"), 0);
	ck_assert(mbx_filter_match(&f, &k));
	ck_assert_int_eq(mbx_test_filter(&f, "src=10.0.2.0/24"), 0);
	ck_assert(!mbx_filter_match(&f, &k));
	ck_assert_int_eq(mbx_test_filter(&f, "src=10.0.0.0/8,dst=192.0.2.1"), 0);
	ck_assert(mbx_filter_match(&f, &k));
	ck_assert_int_eq(mbx_test_filter(&f, "dst=192.0.2.2/32"), 0);
	ck_assert(!mbx_filter_match(&f, &k));
	ck_assert_int_eq(mbx_test_filter(&f, "sport=30000-40000"), 0);
	ck_assert(mbx_filter_match(&f, &k));
	ck_assert_int_eq(mbx_test_filter(&f, "sport=40001-50000"), 0);
	ck_assert(!mbx_filter_match(&f, &k));
	ck_assert_int_eq(mbx_test_filter(&f, "proto=udp"), 0);
	ck_assert(!mbx_filter_match(&f, &k));
	ck_assert_int_eq(mbx_test_filter(&f, "proto=6"), 0);
	ck_assert(mbx_filter_match(&f, &k));
	ck_assert_int_eq(mbx_test_filter(&f, "family=6"), 0);
	ck_assert(!mbx_filter_match(&f, &k));
	ck_assert_int_eq(mbx_test_filter(&f, "src=0.0.0.0/0"), 0);
	ck_assert(mbx_filter_match(&f, &k));

	/* IPv6 prefixes, within and across the 64-bit halves */
	memset(&k6, 0, sizeof(k6));
	k6.family = MBX_FAMILY_V6;
	k6.proto = IPPROTO_UDP;
	inet_pton(AF_INET6, "2001:db8:0:1:8000::5", k6.src.v6);
	ck_assert_int_eq(mbx_test_filter(&f, "src=2001:db8::/32"), 0);
	ck_assert(mbx_filter_match(&f, &k6));
	ck_assert(!mbx_filter_match(&f, &k)); /* a v6 filter never matches v4 */
	ck_assert_int_eq(mbx_test_filter(&f, "src=2001:db8:0:1:8000::/65"), 0);
	ck_assert(mbx_filter_match(&f, &k6));
	ck_assert_int_eq(mbx_test_filter(&f, "src=2001:db8:0:1::/65"), 0);
	ck_assert(!mbx_filter_match(&f, &k6));

	/* what is refused */
	ck_assert_int_eq(mbx_test_filter(&f, "src=10.0.0.0/33"), -EINVAL);
	ck_assert_int_eq(mbx_test_filter(&f, "src=10.0.0.300"), -EINVAL);
	ck_assert_int_eq(mbx_test_filter(&f, "dport=80-70"), -EINVAL);
	ck_assert_int_eq(mbx_test_filter(&f, "dport=70000"), -EINVAL);
	ck_assert_int_eq(mbx_test_filter(&f, "proto=bogus"), -EINVAL);
	ck_assert_int_eq(mbx_test_filter(&f, "colour=red"), -EINVAL);
	ck_assert_int_eq(mbx_test_filter(&f, "src=10.0.0.1,dst=2001:db8::1"), -EINVAL);
	ck_assert_int_eq(mbx_test_filter(&f, "src=10.0.0.1,src=10.0.0.2"), -EINVAL);
}
END_TEST

static int
count_cb(struct mbx_flow *f, void *arg)
{
	struct mbx_table *t = arg;

	mbx_table_del(t, f);
	return 0;
}

START_TEST(expiry_is_lazy_and_bounded)
{
	struct mbx_table *t = table(256);
	uint32_t secs[MBX_TMO_MAX];
	uint64_t hz = rte_get_tsc_hz(), tmo = 10 * hz;
	struct mbx_flow *f;

	for (int i = 0; i < MBX_TMO_MAX; i++)
		secs[i] = 10;
	mbx_table_set_timeouts(t, secs);
	for (uint32_t i = 0; i < 100; i++) {
		struct mbx_flow_key k = key4(0x0a000000 + i, 1, 1, 1, IPPROTO_UDP);

		f = mbx_table_add(t, &k, MBX_TMO_UDP, 1000);
		ck_assert_ptr_nonnull(f);
	}
	/* nothing is due before the timeout */
	ck_assert_uint_eq(mbx_table_expire(t, 1000 + tmo - 1, 1000, count_cb, t), 0);
	/* a packet refreshes the last flow added */
	mbx_table_touch(t, f, 1000 + tmo - 1, IPPROTO_UDP, 0, MBX_DIR_ORIG);
	/* due now: at most the budget per call */
	ck_assert_uint_eq(mbx_table_expire(t, 1000 + tmo, 10, count_cb, t), 10);
	ck_assert_uint_eq(mbx_table_count(t), 90);
	ck_assert_uint_eq(mbx_table_expire(t, 1000 + tmo, 1000, count_cb, t), 89);
	ck_assert_uint_eq(mbx_table_count(t), 1);
	/* the refreshed one goes a timeout after its refresh */
	ck_assert_uint_eq(mbx_table_expire(t, 1000 + 2 * tmo - 2, 1000, count_cb, t), 0);
	ck_assert_uint_eq(mbx_table_expire(t, 1000 + 2 * tmo, 1000, count_cb, t), 1);
	ck_assert_uint_eq(mbx_table_count(t), 0);
	mbx_table_free(t);
}
END_TEST

START_TEST(tcp_timeout_classes)
{
	struct mbx_table *t = table(16);
	struct mbx_flow_key k = key4(1, 2, 3, 4, IPPROTO_TCP);
	struct mbx_flow *f;
	uint32_t secs[MBX_TMO_MAX];
	uint64_t hz = rte_get_tsc_hz();
	const uint8_t S = RTE_TCP_SYN_FLAG, A = RTE_TCP_ACK_FLAG, F = RTE_TCP_FIN_FLAG;

	for (int i = 0; i < MBX_TMO_MAX; i++)
		secs[i] = 100 + i;
	mbx_table_set_timeouts(t, secs);
	ck_assert_int_eq(mbx_tmo_class_of(IPPROTO_TCP, S), MBX_TMO_TCP_SYN_SENT);
	ck_assert_int_eq(mbx_tmo_class_of(IPPROTO_TCP, A), MBX_TMO_TCP_EST);
	ck_assert_int_eq(mbx_tmo_class_of(IPPROTO_UDP, 0), MBX_TMO_UDP_FIRST);
	ck_assert_int_eq(mbx_tmo_class_of(IPPROTO_ICMP, 0), MBX_TMO_ICMP);
	ck_assert_int_eq(mbx_tmo_class_of(47, 0), MBX_TMO_OTHER);

	/* the three-way handshake */
	f = mbx_table_add(t, &k, MBX_TMO_TCP_SYN_SENT, 0);
	mbx_table_touch(t, f, 0, IPPROTO_TCP, S, MBX_DIR_ORIG);
	ck_assert_uint_eq(f->tmo_class, MBX_TMO_TCP_SYN_SENT);
	mbx_table_touch(t, f, 0, IPPROTO_TCP, S | A, MBX_DIR_REPLY);
	ck_assert_uint_eq(f->tmo_class, MBX_TMO_TCP_SYN_RECV);
	mbx_table_touch(t, f, 0, IPPROTO_TCP, A, MBX_DIR_ORIG);
	ck_assert_uint_eq(f->tmo_class, MBX_TMO_TCP_EST);
	ck_assert_uint_eq(f->expire, secs[MBX_TMO_TCP_EST] * hz);
	/* data refreshes an established flow */
	mbx_table_touch(t, f, hz, IPPROTO_TCP, A, MBX_DIR_REPLY);
	ck_assert_uint_eq(f->expire, (secs[MBX_TMO_TCP_EST] + 1) * hz);
	/* close: one FIN, then the other */
	mbx_table_touch(t, f, 0, IPPROTO_TCP, F | A, MBX_DIR_ORIG);
	ck_assert_uint_eq(f->tmo_class, MBX_TMO_TCP_FIN_WAIT);
	mbx_table_touch(t, f, 0, IPPROTO_TCP, F | A, MBX_DIR_REPLY);
	ck_assert_uint_eq(f->tmo_class, MBX_TMO_TCP_TIME_WAIT);
	/* a retransmitted FIN does not push a closing flow's expiry out */
	mbx_table_touch(t, f, hz, IPPROTO_TCP, F | A, MBX_DIR_ORIG);
	ck_assert_uint_eq(f->expire, secs[MBX_TMO_TCP_TIME_WAIT] * hz);
	/* the port pair reused by a new connection */
	mbx_table_touch(t, f, 0, IPPROTO_TCP, S, MBX_DIR_ORIG);
	ck_assert_uint_eq(f->tmo_class, MBX_TMO_TCP_SYN_SENT);
	/* simultaneous open: the other side's bare SYN */
	mbx_table_touch(t, f, 0, IPPROTO_TCP, S, MBX_DIR_REPLY);
	ck_assert_uint_eq(f->tmo_class, MBX_TMO_TCP_SYN_RECV);
	mbx_table_touch(t, f, 0, IPPROTO_TCP, A, MBX_DIR_REPLY);
	ck_assert_uint_eq(f->tmo_class, MBX_TMO_TCP_EST);
	mbx_table_touch(t, f, 0, IPPROTO_TCP, RTE_TCP_RST_FLAG, MBX_DIR_REPLY);
	ck_assert_uint_eq(f->tmo_class, MBX_TMO_TCP_CLOSED);
	/* expired by its class's timeout */
	ck_assert_uint_eq(mbx_table_expire(t, secs[MBX_TMO_TCP_CLOSED] * hz - 1, 10, count_cb, t),
			  0);
	ck_assert_uint_eq(mbx_table_expire(t, secs[MBX_TMO_TCP_CLOSED] * hz, 10, count_cb, t), 1);

	/* UDP: unanswered, then answered */
	k = key4(1, 2, 3, 4, IPPROTO_UDP);
	f = mbx_table_add(t, &k, MBX_TMO_UDP_FIRST, 0);
	mbx_table_touch(t, f, 0, IPPROTO_UDP, 0, MBX_DIR_ORIG);
	ck_assert_uint_eq(f->tmo_class, MBX_TMO_UDP_FIRST);
	mbx_table_touch(t, f, 0, IPPROTO_UDP, 0, MBX_DIR_REPLY);
	ck_assert_uint_eq(f->tmo_class, MBX_TMO_UDP);
	mbx_table_free(t);
}
END_TEST

/* The control path: requests on a running worker's ring, ordered with its loop. */

struct put_get {
	struct mbx_flow_key key;
	unsigned int lcore; /* where the request ran */
	uint32_t count;
};

static int
req_put(struct mbx_worker *w, void *arg)
{
	struct put_get *a = arg;

	a->lcore = rte_lcore_id();
	if (mbx_table_add(w->table, &a->key, MBX_TMO_UDP, rte_rdtsc()) == NULL)
		return -rte_errno;
	a->count = mbx_table_count(w->table);
	return 0;
}

static int
req_get(struct mbx_worker *w, void *arg)
{
	struct put_get *a = arg;

	a->lcore = rte_lcore_id();
	return mbx_table_lookup(w->table, &a->key, NULL) != NULL ? 0 : -ENOENT;
}

static int
req_del(struct mbx_worker *w, void *arg)
{
	struct put_get *a = arg;
	struct mbx_flow *f = mbx_table_lookup(w->table, &a->key, NULL);

	if (f == NULL)
		return -ENOENT;
	mbx_worker_del_flow(w, f);
	return 0;
}

static int
parked_count(struct mbx_dp *dp, void *arg)
{
	/* every worker is parked: reading its table from here is safe */
	*(uint32_t *)arg = mbx_table_count(dp->workers[0]->table);
	return 7;
}

START_TEST(control_ring_to_running_worker)
{
	static const char *const nfs[] = {"nat,ext_ip=198.51.100.1", NULL};
	struct mbx_dp *dp = mbx_test_dp(nfs, 1, 0, 1024);
	struct mbx_worker *w;
	struct put_get a = {.key = key4(0x0a000001, 0xc0000201, 5, 6, IPPROTO_UDP)};
	struct mbx_ctrl_req r = {.fn = req_get, .arg = &a, .async = true};
	unsigned int worker_lcore = rte_get_next_lcore(-1, 1, 0);
	uint32_t parked = 0;
	uint64_t ev;

	ck_assert_ptr_nonnull(dp);
	w = dp->workers[0];
	w->resp_fd = eventfd(0, 0);
	ck_assert_int_ge(w->resp_fd, 0);
	ck_assert_int_eq(rte_eal_remote_launch(mbx_worker_loop, w, worker_lcore), 0);

	ck_assert_int_eq(mbx_ctrl_call(w, req_get, &a), -ENOENT);
	ck_assert_int_eq(mbx_ctrl_call(w, req_put, &a), 0);
	ck_assert_uint_eq(a.lcore, worker_lcore); /* it ran on the worker, not here */
	ck_assert_uint_eq(a.count, 1);
	ck_assert_int_eq(mbx_ctrl_call(w, req_put, &a), -EEXIST);

	/* asynchronous: the answer arrives on the response ring and the eventfd fires */
	ck_assert_int_eq(mbx_ctrl_post(w, &r), 0);
	ck_assert_int_eq(read(w->resp_fd, &ev, sizeof(ev)), sizeof(ev));
	ck_assert_ptr_eq(mbx_ctrl_reply(w), &r);
	ck_assert_int_eq(r.rc, 0);
	ck_assert_ptr_null(mbx_ctrl_reply(w));

	ck_assert_int_eq(mbx_ctrl_park_all(dp, parked_count, &parked), 7);
	ck_assert_uint_eq(parked, 1);

	ck_assert_int_eq(mbx_ctrl_call(w, req_del, &a), 0);
	ck_assert_int_eq(mbx_ctrl_call(w, req_get, &a), -ENOENT);
	ck_assert_uint_eq(mbx_dp_stat(dp, MBX_WSTAT_FLOWS_DELETED), 1);
	ck_assert_uint_ge(mbx_dp_stat(dp, MBX_WSTAT_CTRL_REQUESTS), 7);

	mbx_dp_stop(dp, 1000);
	ck_assert_int_eq(rte_eal_wait_lcore(worker_lcore), 0);
	close(w->resp_fd);
	mbx_test_dp_free(dp);
}
END_TEST

/* The southbound writes a record as the StateChunk protobuf-c would write for it. */
START_TEST(records_are_written_as_protobuf_c_chunks)
{
	static const char *const nfs[] = {"nat", "fw", "a-long-nf-name", ""};
	uint32_t seed = 7;

	for (int round = 0; round < 2000; round++) {
		union {
			struct mbx_state_rec r;
			uint8_t b[512];
		} u;
		Mbx__V1__StateChunk c = MBX__V1__STATE_CHUNK__INIT;
		struct mbx_pb_key pk[2];
		uint8_t want[1024], got[1024];
		const char *nf = nfs[round % 4];
		uint32_t version = round % 5 == 0 ? 0 : 1 + round % 300;
		size_t n;

		memset(&u, 0, sizeof(u));
		for (size_t i = 0; i < sizeof(u.r.key) * 2; i++) {
			seed = seed * 1103515245u + 12345u;
			((uint8_t *)&u.r.key)[i] = (uint8_t)(seed >> 16);
		}
		u.r.key.family = (uint8_t[]){0, MBX_FAMILY_V4, MBX_FAMILY_V6}[round % 3];
		u.r.reply_key.family = round % 7 ? MBX_FAMILY_V4 : MBX_FAMILY_V6;
		u.r.key.sport = round % 4 ? u.r.key.sport : 0;
		u.r.scope = (uint8_t)(round % 3);
		u.r.has_reply = round % 2;
		u.r.side = (uint8_t)(round / 2 % 2);
		u.r.state_len = (uint32_t)(round % 41) * (round % 11 == 0 ? 9 : 1);
		for (uint32_t i = 0; i < u.r.state_len; i++)
			u.r.state[i] = (uint8_t)(i * 31 + round);
		c.nf = (char *)(uintptr_t)nf;
		c.scope = (Mbx__V1__Scope)u.r.scope;
		c.version = version;
		if (u.r.key.family != 0)
			c.key = mbx_key_to_pb(&u.r.key, &pk[0]);
		if (u.r.has_reply)
			c.reply_key = mbx_key_to_pb(&u.r.reply_key, &pk[1]);
		c.state = (ProtobufCBinaryData){u.r.state_len, u.r.state};
		c.from_outside = u.r.side == MBX_SIDE_OUTSIDE;
		n = mbx__v1__state_chunk__pack(&c, want);
		ck_assert_uint_eq(sb_chunk_size(&u.r, nf, version), n);
		ck_assert_ptr_eq(sb_chunk_put(got, &u.r, nf, version), got + n);
		ck_assert_msg(memcmp(got, want, n) == 0, "round %d differs", round);
	}
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("state_table");
	TCase *tc = tcase_create("table");
	SRunner *sr;
	int failed;

	mbx_test_eal("state_table");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, add_lookup_delete);
	tcase_add_test(tc, bulk_lookup);
	tcase_add_test(tc, capacity_is_enforced);
	tcase_add_test(tc, walk_in_slices);
	tcase_add_test(tc, filters);
	tcase_add_test(tc, expiry_is_lazy_and_bounded);
	tcase_add_test(tc, tcp_timeout_classes);
	tcase_add_test(tc, control_ring_to_running_worker);
	tcase_add_test(tc, records_are_written_as_protobuf_c_chunks);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
