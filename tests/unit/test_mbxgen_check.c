/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mbxgen's checker driven with crafted sequences: exact lost, duplicated
 * and reordered counts, rewrite changes and receive ports, nearest-rank
 * percentiles of a known distribution, the timeline, the in-flight window,
 * invalid packets, and a report that parses back to the same figures.
 * No DPDK: time is a made-up TSC of 1 GHz (1 tick = 1 ns).
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* by path: <check.h> is the check framework */
#include "../../tools/mbxgen/check.h"

#define HZ    UINT64_C(1000000000)
#define START UINT64_C(5000000000) /* the run starts at 5 s of TSC */
#define US    UINT64_C(1000)
#define MS    UINT64_C(1000000)

static const struct mbxgen_tuple inside = {0x0a000001, 0xc0000201, 1024, 5000, 17};
static const struct mbxgen_tuple nat_a = {0xc6336401, 0xc0000201, 1100, 5000, 17};
static const struct mbxgen_tuple nat_b = {0xc6336401, 0xc0000201, 1101, 5000, 17};

static struct mbxgen_check *
make(uint32_t flows, uint32_t window_ms)
{
	struct mbxgen_check_conf conf = {
		.nb_flows = flows, .hz = HZ, .start_tsc = START, .inflight_window_ms = window_ms};
	struct mbxgen_check *c = mbxgen_check_create(&conf);

	ck_assert_ptr_nonnull(c);
	for (uint32_t i = 0; i < flows; i++)
		ck_assert_int_eq(mbxgen_check_flow_init(c, i, &inside), 0);
	return c;
}

/* Send @p n packets of @p flow at time @p t (ns since start). */
static void
send_n(struct mbxgen_check *c, uint32_t flow, uint64_t n, uint64_t t)
{
	for (uint64_t i = 0; i < n; i++) {
		uint64_t seq = mbxgen_check_flow(c, flow)->assigned;

		ck_assert_uint_eq(mbxgen_check_assign(c, flow), seq);
		ck_assert_int_eq(mbxgen_check_sent(c, flow, START + t), 0);
	}
}

static enum mbxgen_verdict
rx(struct mbxgen_check *c, uint32_t flow, uint64_t seq, uint64_t tx, uint64_t lat, uint16_t port,
   const struct mbxgen_tuple *t)
{
	struct mbxgen_rx r = {
		.flow = flow,
		.seq = seq,
		.tx_tsc = START + tx,
		.rx_tsc = START + tx + lat,
		.port = port,
		.tuple = *t,
	};

	return mbxgen_check_rx(c, &r);
}

START_TEST(lost_duplicated_reordered)
{
	struct mbxgen_check *c = make(3, 0);
	static const uint64_t seqs[] = {0, 1, 2, 5, 3, 4, 4, 9, 0, 8};
	static const enum mbxgen_verdict want[] = {
		MBXGEN_RX_NEW,	     MBXGEN_RX_NEW,	  MBXGEN_RX_NEW,       MBXGEN_RX_NEW,
		MBXGEN_RX_REORDERED, MBXGEN_RX_REORDERED, MBXGEN_RX_DUPLICATE, MBXGEN_RX_NEW,
		MBXGEN_RX_DUPLICATE, MBXGEN_RX_REORDERED,
	};
	const struct mbxgen_flow *f;
	struct mbxgen_totals t;

	for (uint32_t i = 0; i < 3; i++)
		send_n(c, i, 10, 0);
	/* flow 0: everything, in order */
	for (uint64_t s = 0; s < 10; s++)
		ck_assert_int_eq(rx(c, 0, s, 0, 10 * US, 1, &nat_a), MBXGEN_RX_NEW);
	/* flow 1: 6 and 7 lost; 3 and 4 late; 4 and 0 twice; 8 after 9 */
	for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++)
		ck_assert_int_eq(rx(c, 1, seqs[i], 0, 10 * US, 1, &nat_a), want[i]);
	/* flow 2: nothing arrives */

	f = mbxgen_check_flow(c, 0);
	ck_assert_uint_eq(f->sent, 10);
	ck_assert_uint_eq(f->received, 10);
	ck_assert_uint_eq(f->duplicated + f->reordered, 0);
	f = mbxgen_check_flow(c, 1);
	ck_assert_uint_eq(f->received, 8);
	ck_assert_uint_eq(f->sent - f->received, 2);
	ck_assert_uint_eq(f->duplicated, 2);
	ck_assert_uint_eq(f->reordered, 3);
	ck_assert_uint_eq(f->max_seq, 9);
	f = mbxgen_check_flow(c, 2);
	ck_assert_uint_eq(f->received, 0);
	ck_assert(!f->arrived);

	mbxgen_check_totals(c, &t);
	ck_assert_uint_eq(t.sent, 30);
	ck_assert_uint_eq(t.received, 18);
	ck_assert_uint_eq(t.lost, 12);
	ck_assert_uint_eq(t.duplicated, 2);
	ck_assert_uint_eq(t.reordered, 3);
	ck_assert_uint_eq(t.rewrite_changes, 0);
	ck_assert_uint_eq(t.ctr[MBXGEN_CTR_INVALID], 0);
	mbxgen_check_free(c);
}
END_TEST

/* A duplicate far behind (beyond any window) is still a duplicate, and seqs past 64 work. */
START_TEST(late_duplicate_of_a_long_flow)
{
	struct mbxgen_check *c = make(1, 0);

	send_n(c, 0, 100000, 0);
	for (uint64_t s = 0; s < 100000; s++)
		ck_assert_int_eq(rx(c, 0, s, 0, US, 0, &nat_a), MBXGEN_RX_NEW);
	ck_assert_int_eq(rx(c, 0, 3, 0, US, 0, &nat_a), MBXGEN_RX_DUPLICATE);
	ck_assert_int_eq(rx(c, 0, 99999, 0, US, 0, &nat_a), MBXGEN_RX_DUPLICATE);
	ck_assert_uint_eq(mbxgen_check_flow(c, 0)->duplicated, 2);
	ck_assert_uint_eq(mbxgen_check_flow(c, 0)->reordered, 0);
	mbxgen_check_free(c);
}
END_TEST

START_TEST(invalid_packets_change_nothing)
{
	struct mbxgen_check *c = make(2, 0);
	struct mbxgen_totals t;
	struct mbxgen_rx r = {.flow = 0, .seq = 0, .rx_tsc = START + 2 * MS, .tuple = nat_a};

	send_n(c, 0, 3, 0);
	/* assigned but not sent: cannot have arrived */
	ck_assert_uint_eq(mbxgen_check_assign(c, 0), 3);
	ck_assert_int_eq(rx(c, 0, 3, 0, US, 0, &nat_a), MBXGEN_RX_INVALID);
	ck_assert_int_eq(rx(c, 0, 1000, 0, US, 0, &nat_a), MBXGEN_RX_INVALID);
	ck_assert_int_eq(rx(c, 2, 0, 0, US, 0, &nat_a), MBXGEN_RX_INVALID);	 /* no flow 2 */
	ck_assert_int_eq(rx(c, 1, 0, 0, US, 0, &nat_a), MBXGEN_RX_INVALID);	 /* nothing sent */
	ck_assert_int_eq(rx(c, 0, 0, 5 * MS, US, 0, &nat_a), MBXGEN_RX_INVALID); /* sent later */
	r.tx_tsc = START - 1; /* before the run: a stale packet of another run */
	ck_assert_int_eq(mbxgen_check_rx(c, &r), MBXGEN_RX_INVALID);
	r.tx_tsc = START + 500 * US; /* received (at 100 us) before it was sent */
	r.rx_tsc = START + 100 * US;
	ck_assert_int_eq(mbxgen_check_rx(c, &r), MBXGEN_RX_INVALID);
	mbxgen_check_totals(c, &t);
	ck_assert_uint_eq(t.ctr[MBXGEN_CTR_INVALID], 7);
	ck_assert_uint_eq(t.received, 0);
	ck_assert(!mbxgen_check_flow(c, 0)->arrived);
	/* sent needs an assigned seq and a time in the run */
	ck_assert_int_eq(mbxgen_check_sent(c, 1, START), -EINVAL);
	ck_assert_int_eq(mbxgen_check_sent(c, 0, START - 1), -EINVAL);
	ck_assert_int_eq(mbxgen_check_sent(c, 5, START), -EINVAL);
	ck_assert_uint_eq(mbxgen_check_assign(c, 5), UINT64_MAX);
	mbxgen_check_free(c);
}
END_TEST

START_TEST(rewrite_changes_and_ports)
{
	struct mbxgen_check *c = make(2, 0);
	const struct mbxgen_flow *f;
	struct mbxgen_totals t;

	send_n(c, 0, 6, 0);
	send_n(c, 1, 4, 0);
	/* flow 0: A A B B A, then a control segment with A: 2 changes, ends at A */
	ck_assert_int_eq(rx(c, 0, 0, 0, US, 1, &nat_a), MBXGEN_RX_NEW);
	ck_assert_int_eq(rx(c, 0, 1, 0, US, 1, &nat_a), MBXGEN_RX_NEW);
	ck_assert_int_eq(rx(c, 0, 2, 0, US, 1, &nat_b), MBXGEN_RX_NEW);
	ck_assert_int_eq(rx(c, 0, 3, 0, US, 1, &nat_b), MBXGEN_RX_NEW);
	ck_assert_int_eq(rx(c, 0, 4, 0, US, 1, &nat_a), MBXGEN_RX_NEW);
	ck_assert_int_eq(mbxgen_check_seen(c, 0, 1, &nat_a), 0);
	f = mbxgen_check_flow(c, 0);
	ck_assert_uint_eq(f->rewrite_changes, 2);
	ck_assert_uint_eq(f->rewrite.sport, 1100);
	ck_assert_uint_eq(f->last.sport, 1100);
	ck_assert_uint_eq(f->rx_ports, 1u << 1);
	ck_assert_uint_eq(f->port_changes, 0);

	/* flow 1 moves from port 1 to port 2 with the same mapping: not a rewrite change */
	ck_assert_int_eq(rx(c, 1, 0, 0, US, 1, &nat_b), MBXGEN_RX_NEW);
	ck_assert_int_eq(rx(c, 1, 1, 0, US, 1, &nat_b), MBXGEN_RX_NEW);
	ck_assert_int_eq(rx(c, 1, 2, 0, US, 2, &nat_b), MBXGEN_RX_NEW);
	ck_assert_int_eq(rx(c, 1, 3, 0, US, 2, &nat_b), MBXGEN_RX_NEW);
	f = mbxgen_check_flow(c, 1);
	ck_assert_uint_eq(f->rewrite_changes, 0);
	ck_assert_uint_eq(f->rx_ports, (1u << 1) | (1u << 2));
	ck_assert_uint_eq(f->port_changes, 1);
	ck_assert_uint_eq(f->last_port, 2);

	/* a protocol change is a change of the 5-tuple too */
	{
		struct mbxgen_tuple tcp = nat_b;

		tcp.proto = 6;
		ck_assert_int_eq(mbxgen_check_seen(c, 1, 2, &tcp), 0);
	}
	ck_assert_int_eq(mbxgen_check_seen(c, 9, 2, &nat_a), -EINVAL);
	mbxgen_check_totals(c, &t);
	ck_assert_uint_eq(t.rewrite_changes, 3);
	mbxgen_check_free(c);
}
END_TEST

START_TEST(percentiles_of_a_known_distribution)
{
	struct mbxgen_check *c = make(1, 0);
	struct mbxgen_latency l;

	/* latencies 1, 2, ..., 1000 us plus 0.5 ns-free offsets, in a shuffled order */
	send_n(c, 0, 1000, 0);
	for (uint64_t i = 0; i < 1000; i++) {
		uint64_t s = (i * 7919) % 1000; /* a permutation of 0..999 */

		ck_assert_int_ne(rx(c, 0, s, 0, (s + 1) * US + 500, 0, &nat_a), MBXGEN_RX_INVALID);
	}
	mbxgen_check_latency(c, &l);
	ck_assert_uint_eq(l.count, 1000);
	ck_assert_uint_eq(l.p50_us, 500);  /* the 500th smallest: 500.5 us, floored */
	ck_assert_uint_eq(l.p99_us, 990);  /* the 990th */
	ck_assert_uint_eq(l.p999_us, 999); /* the 999th */
	ck_assert_uint_eq(l.min_ns, 1500);
	ck_assert_uint_eq(l.max_ns, 1000500);
	ck_assert(l.mean_ns > 501000 - 1 && l.mean_ns < 501000 + 1);
	ck_assert_uint_eq(l.overflow, 0);
	ck_assert_uint_eq(mbxgen_check_flow(c, 0)->lat_max_ns, 1000500);
	mbxgen_check_free(c);
}
END_TEST

START_TEST(percentiles_small_and_overflow)
{
	struct mbxgen_check *c = make(1, 0);
	struct mbxgen_latency l;

	mbxgen_check_latency(c, &l);
	ck_assert_uint_eq(l.count, 0);
	ck_assert_uint_eq(l.p99_us, 0);
	/* 1 sample */
	send_n(c, 0, 4, 0);
	rx(c, 0, 0, 0, 7 * US, 0, &nat_a);
	mbxgen_check_latency(c, &l);
	ck_assert_uint_eq(l.p50_us, 7);
	ck_assert_uint_eq(l.p999_us, 7);
	/* 3 samples: 7 us, 2 s, 3 s: p50 is the 2nd, in the overflow: reported as the max */
	rx(c, 0, 1, 0, 2 * HZ, 0, &nat_a);
	rx(c, 0, 2, 0, 3 * HZ, 0, &nat_a);
	mbxgen_check_latency(c, &l);
	ck_assert_uint_eq(l.overflow, 2);
	ck_assert_uint_eq(l.p50_us, 3000000);
	ck_assert_uint_eq(l.max_ns, 3 * HZ);
	/* a duplicate adds no latency sample */
	rx(c, 0, 0, 0, 9 * US, 0, &nat_a);
	mbxgen_check_latency(c, &l);
	ck_assert_uint_eq(l.count, 3);
	mbxgen_check_free(c);
}
END_TEST

START_TEST(timeline_buckets)
{
	struct mbxgen_check *c = make(2, 0);
	const struct mbxgen_bucket *b;

	/* ms 0: 4 packets; ms 1: none; ms 2: 3 packets (at 2.9 ms) */
	send_n(c, 0, 2, 100 * US);
	send_n(c, 1, 2, 999 * US);
	send_n(c, 0, 3, 2900 * US);
	ck_assert_uint_eq(mbxgen_check_nb_buckets(c), 3);
	rx(c, 0, 0, 100 * US, 10 * US, 1, &nat_a);
	rx(c, 0, 1, 100 * US, 30 * US, 1, &nat_a);
	rx(c, 1, 0, 999 * US, 20 * US, 1, &nat_a); /* received in ms 1: counts in send ms 0 */
	rx(c, 0, 3, 2900 * US, 50 * US, 1, &nat_a);
	rx(c, 0, 3, 2900 * US, 70 * US, 1, &nat_a); /* duplicate: not counted again */
	b = mbxgen_check_bucket(c, 0);
	ck_assert_uint_eq(b->sent, 4);
	ck_assert_uint_eq(b->received, 3);
	ck_assert_uint_eq(b->lat_sum_ns, 60 * US);
	ck_assert_uint_eq(b->lat_max_ns, 30 * US);
	b = mbxgen_check_bucket(c, 1);
	ck_assert_uint_eq(b->sent + b->received, 0);
	b = mbxgen_check_bucket(c, 2);
	ck_assert_uint_eq(b->sent, 3);
	ck_assert_uint_eq(b->received, 1);
	ck_assert_uint_eq(b->lat_max_ns, 50 * US);
	ck_assert_ptr_null(mbxgen_check_bucket(c, 3));
	/* a long run grows the timeline */
	send_n(c, 1, 1, 5000 * MS);
	ck_assert_uint_eq(mbxgen_check_nb_buckets(c), 5001);
	ck_assert_uint_eq(mbxgen_check_bucket(c, 5000)->sent, 1);
	mbxgen_check_free(c);
}
END_TEST

START_TEST(inflight_window)
{
	struct mbxgen_check *c = make(2, 10); /* lost packets stop counting after 10 ms */

	send_n(c, 0, 10, 0);
	send_n(c, 1, 5, 4 * MS);
	ck_assert_uint_eq(mbxgen_check_inflight(c, START + 4 * MS), 15);
	for (uint64_t s = 0; s < 3; s++)
		rx(c, 0, s, 0, US, 1, &nat_a);
	rx(c, 0, 0, 0, US, 1, &nat_a); /* a duplicate frees nothing */
	ck_assert_uint_eq(mbxgen_check_inflight(c, START + 5 * MS), 12);
	/* at 10 ms, ms 0 leaves the window: its 7 unanswered are presumed lost */
	ck_assert_uint_eq(mbxgen_check_inflight(c, START + 10 * MS), 5);
	/* a late packet of ms 0 does not count twice */
	rx(c, 0, 5, 0, 11 * MS, 1, &nat_a);
	ck_assert_uint_eq(mbxgen_check_inflight(c, START + 11 * MS), 5);
	rx(c, 1, 0, 4 * MS, US, 1, &nat_a);
	ck_assert_uint_eq(mbxgen_check_inflight(c, START + 12 * MS), 4);
	ck_assert_uint_eq(mbxgen_check_inflight(c, START + 14 * MS), 0);
	/* long after, with nothing sent in between */
	send_n(c, 1, 2, 900 * MS);
	ck_assert_uint_eq(mbxgen_check_inflight(c, START + 905 * MS), 2);
	ck_assert_uint_eq(mbxgen_check_inflight(c, START + 910 * MS), 0);
	mbxgen_check_free(c);

	/* window 0: in flight until received */
	c = make(1, 0);
	send_n(c, 0, 3, 0);
	ck_assert_uint_eq(mbxgen_check_inflight(c, START + 100 * HZ), 3);
	mbxgen_check_free(c);
}
END_TEST

START_TEST(tcp_milestones_and_counters)
{
	struct mbxgen_check *c = make(3, 0);
	struct mbxgen_totals t;

	mbxgen_check_tcp(c, 0, MBXGEN_TCP_HANDSHAKE);
	mbxgen_check_tcp(c, 0, MBXGEN_TCP_HANDSHAKE); /* once per flow */
	mbxgen_check_tcp(c, 0, MBXGEN_TCP_CLOSED);
	mbxgen_check_tcp(c, 1, MBXGEN_TCP_HANDSHAKE);
	mbxgen_check_tcp(c, 2, MBXGEN_TCP_FAILED);
	mbxgen_check_tcp(c, 7, MBXGEN_TCP_FAILED);
	mbxgen_check_count(c, MBXGEN_CTR_FOREIGN, 5);
	mbxgen_check_count(c, MBXGEN_CTR_FOREIGN, 1);
	mbxgen_check_totals(c, &t);
	ck_assert_uint_eq(t.handshakes, 2);
	ck_assert_uint_eq(t.closes, 1);
	ck_assert_uint_eq(t.failed, 1);
	ck_assert_uint_eq(t.ctr[MBXGEN_CTR_FOREIGN], 6);
	ck_assert_str_eq(mbxgen_ctr_name(MBXGEN_CTR_FOREIGN), "foreign");
	mbxgen_check_free(c);
}
END_TEST

/* The report parses back (with Python's json) to the figures above. */
START_TEST(report_is_json_with_the_totals)
{
	struct mbxgen_check *c = make(2, 0);
	struct mbxgen_run run = {.proto = "mixed",
				 .tcp = true,
				 .rate_pps = 1000,
				 .duration_s = 0.5,
				 .start_unix_us = 1700000000123456,
				 .frame_size = 66};
	char path[] = "/tmp/test_mbxgen_check_XXXXXX", cmd[2048];
	struct mbxgen_tuple tcp_inside = inside;
	FILE *f;
	int fd;

	tcp_inside.proto = 6;
	ck_assert_int_eq(mbxgen_check_flow_init(c, 1, &tcp_inside), 0);
	send_n(c, 0, 5, 0);
	send_n(c, 1, 5, MS);
	for (uint64_t s = 0; s < 5; s++)
		rx(c, 0, 4 - s, 0, 3 * US, 1, &nat_a); /* 4 reordered */
	rx(c, 1, 0, MS, 3 * US, 2, &nat_a);
	rx(c, 1, 0, MS, 3 * US, 2, &nat_b); /* a duplicate with a rewrite change */
	mbxgen_check_tcp(c, 1, MBXGEN_TCP_HANDSHAKE);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_int_eq(mbxgen_check_report(c, f, &run), 0);
	fclose(f);
	snprintf(
		cmd, sizeof(cmd),
		"/usr/bin/python3 -c 'import json,sys; d=json.load(open(\"%s\"));"
		"l=d[\"latency_us\"];f=d[\"flows\"];"
		"ok=(d[\"sent\"],d[\"received\"],d[\"lost\"],d[\"duplicated\"],d[\"reordered\"],"
		"d[\"rewrite_changes\"],d[\"handshakes\"],l[\"p50\"],l[\"p999\"],len(f),"
		"f[1][\"rewrite\"][\"sport\"],f[1][\"rewrite_last\"][\"sport\"],f[1][\"rx_ports\"],"
		"f[0][\"lost\"],len(d[\"timeline\"]),d[\"timeline\"][1][\"lost\"],"
		"d[\"start_unix_us\"],f[1][\"handshake\"],d[\"foreign\"])=="
		"(10,6,4,1,4,1,1,3,3,2,1100,1101,[2],0,2,4,1700000000123456,True,0);"
		"sys.exit(0 if ok else 1)'",
		path);
	ck_assert_int_eq(system(cmd), 0);
	unlink(path);
	mbxgen_check_free(c);
}
END_TEST

START_TEST(bad_configuration)
{
	struct mbxgen_check_conf conf = {.nb_flows = 0, .hz = HZ};

	errno = 0;
	ck_assert_ptr_null(mbxgen_check_create(&conf));
	ck_assert_int_eq(errno, EINVAL);
	conf.nb_flows = 1;
	conf.hz = 0;
	ck_assert_ptr_null(mbxgen_check_create(&conf));
	mbxgen_check_free(NULL);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("mbxgen_check");
	TCase *tc = tcase_create("check");

	tcase_add_test(tc, lost_duplicated_reordered);
	tcase_add_test(tc, late_duplicate_of_a_long_flow);
	tcase_add_test(tc, invalid_packets_change_nothing);
	tcase_add_test(tc, rewrite_changes_and_ports);
	tcase_add_test(tc, percentiles_of_a_known_distribution);
	tcase_add_test(tc, percentiles_small_and_overflow);
	tcase_add_test(tc, timeline_buckets);
	tcase_add_test(tc, inflight_window);
	tcase_add_test(tc, tcp_milestones_and_counters);
	tcase_add_test(tc, report_is_json_with_the_totals);
	tcase_add_test(tc, bad_configuration);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
