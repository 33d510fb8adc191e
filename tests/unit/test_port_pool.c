/* SPDX-License-Identifier: BSD-3-Clause */
/* The NAT port pool: blocks per host, claims, releases, exhaustion, owners. */
#include <check.h>
#include <errno.h>

#include "mbx_test.h"
#include "port_pool.h"

static rte_be32_t
host(uint32_t i)
{
	return rte_cpu_to_be_32(0x0a000000 + i);
}

static struct nat_pool *
pool(uint32_t addr_lo, uint32_t addr_hi, uint16_t lo, uint16_t hi, uint16_t workers)
{
	struct nat_pool_conf c = {addr_lo, addr_hi, lo, hi, workers, 0};
	struct nat_pool *p = nat_pool_create(&c);

	ck_assert_ptr_nonnull(p);
	return p;
}

START_TEST(ports_come_from_the_hosts_block)
{
	struct nat_pool *p = pool(0xc6336401, 0xc6336401, 1024, 65535, 1);
	struct nat_hosts *h = nat_hosts_create(1024, 0);
	rte_be32_t a, a2;
	rte_be16_t port, port2;

	ck_assert_uint_eq(nat_pool_blocks(p), 1008);
	ck_assert_int_eq(nat_port_alloc(p, h, 0, host(1), &a, &port), 0);
	ck_assert_uint_eq(rte_be_to_cpu_32(a), 0xc6336401);
	ck_assert_uint_ge(rte_be_to_cpu_16(port), 1024);
	/* the host's second port is in the same block; another host gets another block */
	ck_assert_int_eq(nat_port_alloc(p, h, 0, host(1), &a2, &port2), 0);
	ck_assert_uint_eq(rte_be_to_cpu_16(port2), rte_be_to_cpu_16(port) + 1);
	ck_assert_int_eq(nat_port_alloc(p, h, 0, host(2), &a2, &port2), 0);
	ck_assert_uint_ne((rte_be_to_cpu_16(port2) - 1024) / 64,
			  (rte_be_to_cpu_16(port) - 1024) / 64);
	ck_assert_uint_eq(nat_pool_free_blocks(p), 1006);
	ck_assert_uint_eq(nat_hosts_count(h), 2);
	ck_assert_uint_eq(nat_hosts_find(h, host(1))->nb_ports, 2);
	ck_assert_int_eq(nat_pool_owner(p, a, port), 0);
	nat_hosts_free(h);
	nat_pool_free(p);
}
END_TEST

START_TEST(distinct_until_exhausted)
{
	/* two addresses x 100 ports: blocks of 64 and 36 per address */
	struct nat_pool *p = pool(0xc6336401, 0xc6336402, 2000, 2099, 1);
	struct nat_hosts *h = nat_hosts_create(1024, 0);
	static uint8_t seen[2][100];
	rte_be32_t a;
	rte_be16_t port;

	ck_assert_uint_eq(nat_pool_blocks(p), 4);
	for (int i = 0; i < 200; i++) {
		uint32_t ai, pi;

		ck_assert_int_eq(nat_port_alloc(p, h, 0, host(1), &a, &port), 0);
		ai = rte_be_to_cpu_32(a) - 0xc6336401;
		pi = rte_be_to_cpu_16(port) - 2000;
		ck_assert_uint_lt(ai, 2);
		ck_assert_uint_lt(pi, 100);
		ck_assert_uint_eq(seen[ai][pi]++, 0);
	}
	ck_assert_int_eq(nat_port_alloc(p, h, 0, host(1), &a, &port), -ENOSPC);
	ck_assert_int_eq(nat_port_alloc(p, h, 0, host(2), &a, &port), -ENOSPC);
	/* a host that got nothing leaves no entry behind */
	ck_assert_ptr_null(nat_hosts_find(h, host(2)));
	ck_assert_uint_eq(nat_pool_free_blocks(p), 0);
	nat_hosts_free(h);
	nat_pool_free(p);
}
END_TEST

START_TEST(release_returns_the_block)
{
	struct nat_pool *p = pool(0xc6336401, 0xc6336401, 1024, 1151, 2);
	struct nat_hosts *h = nat_hosts_create(64, 0);
	rte_be32_t a[3];
	rte_be16_t port[3];

	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(nat_port_alloc(p, h, 1, host(7), &a[i], &port[i]), 0);
	ck_assert_int_eq(nat_pool_owner(p, a[0], port[0]), 1);
	nat_port_release(p, h, host(7), a[1], port[1]);
	ck_assert_uint_eq(nat_pool_free_blocks(p), 1);
	/* the freed port is handed out again */
	ck_assert_int_eq(nat_port_alloc(p, h, 1, host(7), &a[1], &port[1]), 0);
	nat_port_release(p, h, host(7), a[0], port[0]);
	nat_port_release(p, h, host(7), a[1], port[1]);
	nat_port_release(p, h, host(7), a[2], port[2]);
	ck_assert_uint_eq(nat_pool_free_blocks(p), 2);
	ck_assert_int_eq(nat_pool_owner(p, a[0], port[0]), -1);
	ck_assert_ptr_null(nat_hosts_find(h, host(7)));
	/* outside the pool */
	ck_assert_int_eq(nat_pool_owner(p, a[0], rte_cpu_to_be_16(80)), -2);
	nat_hosts_free(h);
	nat_pool_free(p);
}
END_TEST

START_TEST(claims_are_exclusive)
{
	struct nat_pool *p = pool(0xc6336401, 0xc6336401, 1024, 1279, 2);
	struct nat_hosts *h0 = nat_hosts_create(64, 0), *h1 = nat_hosts_create(64, 0);
	rte_be32_t a = rte_cpu_to_be_32(0xc6336401);

	ck_assert_int_eq(nat_port_claim(p, h0, 0, host(1), a, rte_cpu_to_be_16(1030)), 0);
	/* same port again, same block for another host, same block from another worker */
	ck_assert_int_eq(nat_port_claim(p, h0, 0, host(1), a, rte_cpu_to_be_16(1030)), -EBUSY);
	ck_assert_int_eq(nat_port_claim(p, h0, 0, host(2), a, rte_cpu_to_be_16(1031)), -EBUSY);
	ck_assert_int_eq(nat_port_claim(p, h1, 1, host(1), a, rte_cpu_to_be_16(1031)), -EBUSY);
	/* another port of the host's block is fine */
	ck_assert_int_eq(nat_port_claim(p, h0, 0, host(1), a, rte_cpu_to_be_16(1031)), 0);
	ck_assert_int_eq(nat_port_claim(p, h0, 0, host(1), rte_cpu_to_be_32(0xc6336402),
					rte_cpu_to_be_16(1031)),
			 -EINVAL);
	ck_assert_int_eq(nat_pool_owner(p, a, rte_cpu_to_be_16(1087)), 0);
	ck_assert_int_eq(nat_pool_owner(p, a, rte_cpu_to_be_16(1088)), -1);
	/* an allocation for host 1 uses its claimed block first */
	{
		rte_be32_t aa;
		rte_be16_t pp;

		ck_assert_int_eq(nat_port_alloc(p, h0, 0, host(1), &aa, &pp), 0);
		ck_assert_uint_lt(rte_be_to_cpu_16(pp), 1088);
		ck_assert_uint_eq(nat_hosts_find(h0, host(1))->nb_blocks, 1);
	}
	nat_hosts_free(h0);
	nat_hosts_free(h1);
	nat_pool_free(p);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("port_pool");
	TCase *tc = tcase_create("pool");
	SRunner *sr;
	int failed;

	mbx_test_eal("port_pool");
	tcase_add_test(tc, ports_come_from_the_hosts_block);
	tcase_add_test(tc, distinct_until_exhausted);
	tcase_add_test(tc, release_returns_the_block);
	tcase_add_test(tc, claims_are_exclusive);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
