/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Maglev's lookup table (nfs/lb/maglev.c): balance with equal weights,
 * weights respected, minimal disruption when a backend leaves or joins, the
 * same table whatever the order of the backends, and a deterministic fill
 * pinned by known answers (computed by the Python reference of
 * tests/golden/lb_golden.py, so that both agree on every machine).
 * Pure functions: no EAL needed.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_jhash.h>

#include "maglev.h"

#define M 65537u

static uint16_t table[M], other[M];
static struct maglev_perm work[MAGLEV_MAX_BACKENDS];

/* Backend i: 10.x.y.z:80 as lb names it (address, port, family). */
static void
name_of(struct maglev_backend *b, unsigned int i, uint32_t weight)
{
	memset(b, 0, sizeof(*b));
	b->name[0] = 10;
	b->name[1] = (uint8_t)(i >> 16);
	b->name[2] = (uint8_t)(i >> 8);
	b->name[3] = (uint8_t)i;
	b->name[17] = 80;
	b->name[18] = 4;
	b->weight = weight;
}

static void
counts(const uint16_t *t, uint32_t size, uint32_t *per, unsigned int n)
{
	memset(per, 0, n * sizeof(*per));
	for (uint32_t e = 0; e < size; e++) {
		ck_assert_uint_lt(t[e], n);
		per[t[e]]++;
	}
}

static void
check_balance(unsigned int n)
{
	struct maglev_backend *be = calloc(n, sizeof(*be));
	uint32_t *per = calloc(n, sizeof(*per));
	double share = (double)M / n;

	for (unsigned int i = 0; i < n; i++)
		name_of(&be[i], i + 1, 1);
	ck_assert_int_eq(maglev_fill(be, n, work, table, M), 0);
	counts(table, M, per, n);
	for (unsigned int i = 0; i < n; i++)
		ck_assert_msg(per[i] >= share * 0.99 && per[i] <= share * 1.01,
			      "%u backends: backend %u has %u entries, share %.1f", n, i, per[i],
			      share);
	free(be);
	free(per);
}

START_TEST(balance_equal_weights)
{
	check_balance(10);
	check_balance(100);
	check_balance(1000);
}
END_TEST

START_TEST(weights_respected)
{
	static const uint32_t w[] = {1, 2, 3, 4, 0, 10};
	struct maglev_backend be[RTE_DIM(w)];
	uint32_t per[RTE_DIM(w)], sum = 0;

	for (unsigned int i = 0; i < RTE_DIM(w); i++) {
		name_of(&be[i], 100 + i, w[i]);
		sum += w[i];
	}
	ck_assert_int_eq(maglev_fill(be, RTE_DIM(w), work, table, M), 0);
	counts(table, M, per, RTE_DIM(w));
	for (unsigned int i = 0; i < RTE_DIM(w); i++) {
		double share = (double)M * w[i] / sum;

		ck_assert_msg(per[i] >= share * 0.99 && per[i] <= share * 1.01,
			      "weight %u: %u entries, share %.1f", w[i], per[i], share);
	}
	ck_assert_uint_eq(per[4], 0); /* weight 0: drained, no entry */

	/* no weight at all: no backend anywhere */
	for (unsigned int i = 0; i < RTE_DIM(w); i++)
		be[i].weight = 0;
	ck_assert_int_eq(maglev_fill(be, RTE_DIM(w), work, table, M), 0);
	for (uint32_t e = 0; e < M; e++)
		ck_assert_uint_eq(table[e], MAGLEV_NONE);
	ck_assert_int_eq(maglev_fill(be, 0, work, table, M), 0);
	ck_assert_uint_eq(table[M / 2], MAGLEV_NONE);
}
END_TEST

/*
 * Removing backend @gone of @n moves its own entries and few others: at most
 * @extra times its share in total. Adding it back restores the table.
 */
static void
check_disruption(unsigned int n, unsigned int gone, double extra)
{
	struct maglev_backend *be = calloc(n, sizeof(*be));
	uint32_t moved = 0, own = 0;

	for (unsigned int i = 0; i < n; i++)
		name_of(&be[i], i + 1, 1);
	ck_assert_int_eq(maglev_fill(be, n, work, table, M), 0);
	/* without backend @gone: indices above it shift down by one */
	memmove(&be[gone], &be[gone + 1], (n - gone - 1) * sizeof(*be));
	ck_assert_int_eq(maglev_fill(be, n - 1, work, other, M), 0);
	for (uint32_t e = 0; e < M; e++) {
		uint16_t after = other[e] >= gone ? other[e] + 1 : other[e];

		own += table[e] == gone;
		moved += table[e] != after;
	}
	ck_assert_msg(moved >= own && moved <= own + (double)M / n * extra,
		      "removing 1 of %u backends moved %u entries, %u of them its own (%.2f%%)", n,
		      moved, own, 100.0 * moved / M);
	free(be);
}

START_TEST(minimal_disruption)
{
	/* the paper's property: little beyond the leaving backend's own share */
	check_disruption(10, 3, 0.2);
	check_disruption(100, 57, 1.0);
	check_disruption(100, 0, 1.0);
}
END_TEST

START_TEST(same_table_in_any_order)
{
	enum { N = 50 };
	struct maglev_backend be[N], shuffled[N];
	unsigned int perm[N];

	for (unsigned int i = 0; i < N; i++) {
		name_of(&be[i], 7 * i + 3, 1 + i % 3);
		perm[i] = i;
	}
	srand(42);
	for (unsigned int i = N - 1; i > 0; i--) {
		unsigned int j = (unsigned int)rand() % (i + 1), t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	for (unsigned int i = 0; i < N; i++)
		shuffled[i] = be[perm[i]];
	ck_assert_int_eq(maglev_fill(be, N, work, table, M), 0);
	ck_assert_int_eq(maglev_fill(shuffled, N, work, other, M), 0);
	/* the same backend, by name, in every entry */
	for (uint32_t e = 0; e < M; e++)
		ck_assert_uint_eq(perm[other[e]], table[e]);
}
END_TEST

START_TEST(deterministic_fill)
{
	/* known answers from the Python reference in tests/golden/lb_golden.py */
	static const uint16_t want_a[13] = {0, 2, 0, 2, 1, 0, 1, 2, 1, 1, 0, 1, 2};
	static const uint16_t want_b[13] = {0, 1, 1, 2, 0, 2, 0, 1, 0, 1, 1, 2, 1};
	struct maglev_backend be[3];
	uint8_t bytes[40];

	for (unsigned int i = 0; i < sizeof(bytes); i++)
		bytes[i] = (uint8_t)i;
	ck_assert_uint_eq(rte_jhash(bytes, 20, 0), 0x94b659b5);
	ck_assert_uint_eq(rte_jhash(bytes, 40, 1), 0x412d93d3);

	/* names 0x03..., 0x01..., 0x02... with equal weights, a table of 13 */
	for (unsigned int i = 0; i < 3; i++) {
		memset(be[i].name, (int)(i == 0 ? 3 : i), MAGLEV_NAME_LEN);
		be[i].weight = 1;
	}
	ck_assert_int_eq(maglev_fill(be, 3, work, table, 13), 0);
	ck_assert_mem_eq(table, want_a, sizeof(want_a));
	/* 10.1.0.1-3:80, weights 1, 2, 1 */
	for (unsigned int i = 0; i < 3; i++)
		name_of(&be[i], (1u << 16) + i + 1, i == 1 ? 2 : 1);
	ck_assert_int_eq(maglev_fill(be, 3, work, table, 13), 0);
	ck_assert_mem_eq(table, want_b, sizeof(want_b));
	/* and again: a fill depends on nothing but its input */
	ck_assert_int_eq(maglev_fill(be, 3, work, other, 13), 0);
	ck_assert_mem_eq(other, want_b, sizeof(want_b));
}
END_TEST

START_TEST(bad_input_refused)
{
	struct maglev_backend be[2];

	name_of(&be[0], 1, 1);
	name_of(&be[1], 2, 1);
	ck_assert(maglev_is_prime(65537) && maglev_is_prime(655373) && maglev_is_prime(3));
	ck_assert(!maglev_is_prime(65536) && !maglev_is_prime(1) && !maglev_is_prime(65539 * 3));
	ck_assert_int_eq(maglev_fill(be, 2, work, table, 65535), -EINVAL);
	ck_assert_int_eq(maglev_fill(be, 2, work, table, 2), -EINVAL);
	name_of(&be[1], 1, 5);
	ck_assert_int_eq(maglev_fill(be, 2, work, table, 13), -EINVAL);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("maglev");
	TCase *tc = tcase_create("maglev");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, balance_equal_weights);
	tcase_add_test(tc, weights_respected);
	tcase_add_test(tc, minimal_disruption);
	tcase_add_test(tc, same_table_in_any_order);
	tcase_add_test(tc, deterministic_fill);
	tcase_add_test(tc, bad_input_refused);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
