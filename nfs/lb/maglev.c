/* SPDX-License-Identifier: BSD-3-Clause */
/* Maglev's lookup table: see maglev.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_jhash.h>

#include "maglev.h"

bool
maglev_is_prime(uint32_t n)
{
	if (n < 2)
		return false;
	for (uint32_t d = 2; d <= n / d; d++)
		if (n % d == 0)
			return false;
	return true;
}

int
maglev_name_cmp(const struct maglev_backend *a, const struct maglev_backend *b)
{
	return memcmp(a->name, b->name, MAGLEV_NAME_LEN);
}

static int
perm_cmp(const void *a, const void *b)
{
	return maglev_name_cmp(((const struct maglev_perm *)a)->b,
			       ((const struct maglev_perm *)b)->b);
}

int
maglev_fill(const struct maglev_backend *be, uint16_t n, struct maglev_perm *work, uint16_t *table,
	    uint32_t size)
{
	uint64_t turns = 0;
	uint32_t filled = 0;

	if (size <= 2 || size > MAGLEV_MAX_SIZE || !maglev_is_prime(size) ||
	    n > MAGLEV_MAX_BACKENDS)
		return -EINVAL;
	/* the same set in any order gives the same permutations in the same order */
	for (uint16_t i = 0; i < n; i++) {
		work[i].b = &be[i];
		work[i].idx = i;
	}
	qsort(work, n, sizeof(work[0]), perm_cmp);
	for (uint16_t i = 0; i < n; i++) {
		const uint8_t *name = work[i].b->name;

		if (i > 0 && perm_cmp(&work[i - 1], &work[i]) == 0)
			return -EINVAL;
		/* offset and skip from two hashes of the name; skip in 1..M-1 */
		work[i].pos = rte_jhash(name, MAGLEV_NAME_LEN, MAGLEV_SEED_OFFSET) % size;
		work[i].skip = rte_jhash(name, MAGLEV_NAME_LEN, MAGLEV_SEED_SKIP) % (size - 1) + 1;
		turns += work[i].b->weight;
	}
	for (uint32_t s = 0; s < size; s++)
		table[s] = MAGLEV_NONE;
	if (turns == 0)
		return 0;
	/*
	 * Round-robin over the sorted backends, each taking as many turns as
	 * its weight; a turn claims the next free slot of its permutation. M
	 * prime makes every permutation visit every slot, so a turn always
	 * finds one while the table is not full.
	 */
	for (;;) {
		for (uint16_t i = 0; i < n; i++) {
			struct maglev_perm *p = &work[i];

			for (uint32_t t = 0; t < p->b->weight; t++) {
				while (table[p->pos] != MAGLEV_NONE) {
					p->pos += p->skip;
					if (p->pos >= size)
						p->pos -= size;
				}
				table[p->pos] = p->idx;
				if (++filled == size)
					return 0;
			}
		}
	}
}
