/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A chain of two NFs: order per side, separate state slots in one entry, the
 * fate of a flow whose first packet is dropped, and nat behind another NF.
 * Two probe NFs are registered here, as any NF module would register.
 */
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include "mbx_nf.h"
#include "mbx_test.h"

static char order[64];
static unsigned int freed;
static struct mbx_flow_key seen_key[2]; /* what probe_a saw last, per direction */

struct probe_state {
	uint32_t packets;
	uint32_t magic;
};

static void
probe_process(struct mbx_nf_ctx *c, struct rte_mbuf **pkts, uint16_t n)
{
	const char *name = c->nf; /* create() returned the NF's name */

	for (uint16_t i = 0; i < n; i++) {
		struct mbx_pkt *p = mbx_pkt(pkts[i]);
		struct probe_state *st = mbx_nf_state(c, p->flow);

		strncat(order, name, 1);
		if (st->magic == 0)
			st->magic = name[0];
		ck_assert_uint_eq(st->magic, (uint32_t)name[0]); /* nobody else writes my slot */
		st->packets++;
		if (name[0] == 'a')
			seen_key[p->dir] = p->key;
		if (name[0] == 'b' && rte_be_to_cpu_16(p->key.dport) == 666)
			mbx_nf_drop(c, pkts[i], 0);
	}
}

static void
probe_flow_free(struct mbx_nf_ctx *c, struct mbx_flow *f)
{
	(void)c;
	(void)f;
	freed++;
}

static void *
probe_a_create(const struct mbx_nf_params *p)
{
	(void)p;
	return "a";
}

static void *
probe_b_create(const struct mbx_nf_params *p)
{
	(void)p;
	return "b";
}

static const char *const probe_counters[] = {"dropped"};

static const struct mbx_nf_ops probe_a = {
	.name = "probe_a",
	.flow_state_size = sizeof(struct probe_state),
	.counter_names = probe_counters,
	.nb_counters = 1,
	.create = probe_a_create,
	.process = probe_process,
	.flow_free = probe_flow_free,
};
MBX_NF_REGISTER(probe_a);

static const struct mbx_nf_ops probe_b = {
	.name = "probe_b",
	.flow_state_size = sizeof(struct probe_state),
	.counter_names = probe_counters,
	.nb_counters = 1,
	.create = probe_b_create,
	.process = probe_process,
	.flow_free = probe_flow_free,
};
MBX_NF_REGISTER(probe_b);

static struct mbx_dp *
chain(const char *first, const char *second)
{
	const char *nfs[] = {first, second, NULL};
	struct mbx_dp *dp = mbx_test_dp(nfs, 1, 2, 1024);

	ck_assert_ptr_nonnull(dp);
	order[0] = '\0';
	freed = 0;
	return dp;
}

static struct rte_mbuf *
pass(struct mbx_dp *dp, struct rte_mbuf *m, uint16_t port)
{
	struct rte_mbuf *out = NULL;

	mbx_worker_rx(dp->workers[0], &m, 1, port);
	mbx_test_take_tx(dp->workers[0], port == 0 ? 1 : 0, &out, 1);
	return out;
}

START_TEST(order_by_side_and_separate_slots)
{
	struct mbx_dp *dp = chain("probe_a", "probe_b");
	struct mbx_worker *w = dp->workers[0];
	struct rte_mbuf *o;
	struct mbx_flow *f;
	uint8_t dir;

	ck_assert_uint_ne(dp->chain.nf[0].state_off, dp->chain.nf[1].state_off);
	o = pass(dp, mbx_test_udp4("10.0.0.1", "192.0.2.1", 10, 20, 0), 0);
	rte_pktmbuf_free(o);
	ck_assert_str_eq(order, "ab");
	o = pass(dp, mbx_test_udp4("192.0.2.1", "10.0.0.1", 20, 10, 0), 1);
	ck_assert_ptr_nonnull(o);
	rte_pktmbuf_free(o);
	ck_assert_str_eq(order, "abba"); /* from the outside: reverse order */
	o = pass(dp, mbx_test_udp4("10.0.0.1", "192.0.2.1", 10, 20, 0), 0);
	rte_pktmbuf_free(o);

	/* one entry, found from both directions, each NF's slot its own */
	ck_assert_uint_eq(mbx_table_count(w->table), 1);
	f = mbx_table_lookup(w->table, &seen_key[1], &dir);
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(dir, MBX_DIR_REPLY);
	ck_assert_uint_eq(((struct probe_state *)(f->state + dp->chain.nf[0].state_off))->packets,
			  3);
	ck_assert_uint_eq(((struct probe_state *)(f->state + dp->chain.nf[1].state_off))->packets,
			  3);
	mbx_test_dp_free(dp);
	ck_assert_uint_eq(freed, 2); /* shutdown ran both NFs' flow_free */
}
END_TEST

START_TEST(dropped_first_packet_leaves_no_flow)
{
	struct mbx_dp *dp = chain("probe_a", "probe_b");

	ck_assert_ptr_null(pass(dp, mbx_test_udp4("10.0.0.1", "192.0.2.1", 10, 666, 0), 0));
	ck_assert_str_eq(order, "ab");
	ck_assert_uint_eq(mbx_table_count(dp->workers[0]->table), 0);
	ck_assert_uint_eq(freed, 2); /* probe_a's state was released too */
	ck_assert_uint_eq(mbx_dp_stat(dp, MBX_WSTAT_FLOWS_CREATED), 0);
	ck_assert_uint_eq(mbx_dp_nf_stat(dp, dp->chain.nf[1].counter_off), 1);
	ck_assert_uint_eq(mbx_dp_stat(dp, MBX_WSTAT_NF_DROP), 1);
	/* two packets of one new flow in one burst share the entry */
	{
		struct rte_mbuf *b[2] = {mbx_test_udp4("10.0.0.9", "192.0.2.1", 1, 2, 0),
					 mbx_test_udp4("10.0.0.9", "192.0.2.1", 1, 2, 0)};
		struct rte_mbuf *out[2];

		mbx_worker_rx(dp->workers[0], b, 2, 0);
		ck_assert_uint_eq(mbx_test_take_tx(dp->workers[0], 1, out, 2), 2);
		rte_pktmbuf_free_bulk(out, 2);
		ck_assert_uint_eq(mbx_table_count(dp->workers[0]->table), 1);
	}
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(nat_behind_another_nf)
{
	struct mbx_dp *dp = chain("probe_a", "nat,ext_ip=198.51.100.7");
	struct rte_mbuf *o;
	struct rte_udp_hdr *uh;
	uint16_t ext;

	o = pass(dp, mbx_test_udp4("10.0.0.1", "192.0.2.1", 10, 20, 0), 0);
	ck_assert_ptr_nonnull(o);
	uh = rte_pktmbuf_mtod_offset(o, struct rte_udp_hdr *,
				     sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr));
	ext = rte_be_to_cpu_16(uh->src_port);
	rte_pktmbuf_free(o);
	/* probe_a ran before nat: it saw the inside address */
	ck_assert_uint_eq(seen_key[0].src.v4, mbx_test_ip4("10.0.0.1"));
	o = pass(dp, mbx_test_udp4("192.0.2.1", "198.51.100.7", 20, ext, 0), 1);
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(mbx_test_verify_csums(o), 0);
	rte_pktmbuf_free(o);
	/* and the reply after nat had translated it back, in the same flow */
	ck_assert_uint_eq(seen_key[1].dst.v4, mbx_test_ip4("10.0.0.1"));
	ck_assert_uint_eq(rte_be_to_cpu_16(seen_key[1].dport), 10);
	ck_assert_uint_eq(mbx_table_count(dp->workers[0]->table), 1);
	mbx_test_dp_free(dp);
}
END_TEST

START_TEST(chain_errors)
{
	struct mbx_chain c;

	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(mbx_chain_add(&c, "nope"), -ENOENT);
	ck_assert_int_eq(mbx_chain_add(&c, "probe_a"), 0);
	ck_assert_int_eq(mbx_chain_add(&c, "probe_a,x=1"), -EEXIST);
	ck_assert_int_eq(mbx_chain_find(&c, "probe_a"), 0);
	ck_assert_int_eq(mbx_chain_find(&c, "nat"), -1);
	mbx_chain_destroy(&c);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("chain");
	TCase *tc = tcase_create("chain");
	SRunner *sr;
	int failed;

	mbx_test_eal("chain");
	tcase_add_test(tc, order_by_side_and_separate_slots);
	tcase_add_test(tc, dropped_first_packet_leaves_no_flow);
	tcase_add_test(tc, nat_behind_another_nf);
	tcase_add_test(tc, chain_errors);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
