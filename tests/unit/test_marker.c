/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Markers: recognised by the parser, fanned out to every worker behind the
 * packets that came before them, met once per worker, never forwarded.
 */
#include <check.h>
#include <string.h>

#include <rte_ring.h>

#include "mbx_marker.h"
#include "mbx_test.h"

static struct {
	unsigned int calls;
	uint64_t id;
	uint16_t index, count;
	uint64_t tx_at_hook[2]; /* packets each worker had sent when it met the marker */
} seen;

static void
hook(struct mbx_worker *w, uint64_t id, uint16_t index, uint16_t count)
{
	seen.calls++;
	seen.id = id;
	seen.index = index;
	seen.count = count;
	seen.tx_at_hook[w->id] = w->tx[1].n;
}

START_TEST(build_and_parse)
{
	struct rte_mbuf *m = mbx_marker_build(mbx_test_pool(), 0x1122334455667788ULL, 1, 3);
	uint64_t id;
	uint16_t index, count;

	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(mbx_parse(m), MBX_PARSE_MARKER);
	ck_assert(mbx_marker_parse(m, &id, &index, &count));
	ck_assert_uint_eq(id, 0x1122334455667788ULL);
	ck_assert_uint_eq(index, 1);
	ck_assert_uint_eq(count, 3);
	/* a frame with the ethertype but not the magic is not a marker */
	rte_pktmbuf_mtod_offset(m, uint8_t *, 14)[0] ^= 0xff;
	ck_assert(!mbx_marker_parse(m, &id, &index, &count));
	rte_pktmbuf_free(m);
}
END_TEST

START_TEST(behind_every_packet_on_every_worker)
{
	static const char *const nfs[] = {"nat,ext_ip=198.51.100.1", NULL};
	struct mbx_dp *dp = mbx_test_dp(nfs, 2, 2, 1024);
	struct rte_mbuf *burst[MBX_BURST], *h[MBX_BURST], *out[MBX_BURST];
	unsigned int owned[2] = {0, 0}, n = 0, k;

	ck_assert_ptr_nonnull(dp);
	dp->mp = mbx_test_pool();
	ck_assert_int_eq(mbx_marker_init(dp), 0);
	mbx_marker_set_hook(hook);
	memset(&seen, 0, sizeof(seen));
	for (int i = 0; i < 20; i++) {
		char src[32];

		snprintf(src, sizeof(src), "10.0.0.%d", i + 1);
		burst[n] = mbx_test_udp4(src, "192.0.2.1", 1000, 53, 0);
		mbx_parse(burst[n]);
		mbx_pkt(burst[n])->side = MBX_SIDE_INSIDE;
		owned[mbx_owner(dp, mbx_pkt(burst[n]))]++;
		n++;
	}
	ck_assert_uint_gt(owned[0], 0);
	ck_assert_uint_gt(owned[1], 0);
	burst[n++] = mbx_marker_build(mbx_test_pool(), 42, 0, 1);

	/* worker 0 receives the burst: it meets the marker after its own packets */
	mbx_worker_rx(dp->workers[0], burst, n, 0);
	ck_assert_uint_eq(seen.calls, 1);
	ck_assert_uint_eq(seen.id, 42);
	ck_assert_uint_eq(seen.tx_at_hook[0], owned[0]);
	/* worker 1 finds its packets, then the marker, in its hand-off ring */
	k = rte_ring_dequeue_burst(dp->workers[1]->handoff, (void **)h, MBX_BURST, NULL);
	ck_assert_uint_eq(k, owned[1] + 1);
	ck_assert(h[k - 1]->ol_flags & mbx_flag_marker);
	mbx_worker_owned(dp->workers[1], h, k);
	ck_assert_uint_eq(seen.calls, 2);
	ck_assert_uint_eq(seen.tx_at_hook[1], owned[1]);
	/* the marker never leaves: only the packets are queued for sending */
	ck_assert_uint_eq(mbx_test_take_tx(dp->workers[0], 1, out, MBX_BURST), owned[0]);
	rte_pktmbuf_free_bulk(out, owned[0]);
	ck_assert_uint_eq(mbx_test_take_tx(dp->workers[1], 1, out, MBX_BURST), owned[1]);
	rte_pktmbuf_free_bulk(out, owned[1]);
	ck_assert_uint_eq(mbx_dp_parse_stat(dp, MBX_PARSE_MARKER), 1);
	mbx_marker_set_hook(NULL);
	mbx_test_dp_free(dp);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("marker");
	TCase *tc = tcase_create("marker");
	SRunner *sr;
	int failed;

	mbx_test_eal("marker");
	tcase_add_test(tc, build_and_parse);
	tcase_add_test(tc, behind_every_packet_on_every_worker);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
