/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable
 * Software Network Load Balancer", NSDI 2016, section 3.4).
 *
 * Theory of operation: each backend has a name (bytes); two hashes of the
 * name give it an offset and a skip, and so a permutation of the M slots of
 * the lookup table (M prime): offset, offset + skip, offset + 2 skip, ...
 * mod M. The backends then take turns, round-robin, each claiming the next
 * slot of its permutation that is still free, until the table is full. A
 * backend of weight w takes w turns per round, so it ends up with w shares
 * of the table; weight 0 takes none. The result balances the table to
 * within one turn per backend and, when a backend leaves, moves little more
 * than that backend's own slots.
 *
 * The backends are sorted by name before the fill, so that every instance
 * given the same set, in any order, builds the same table; the hashes are
 * DPDK's jhash with fixed seeds, the same on every machine.
 *
 * Pure functions, no allocation: the lb NF calls them on the main lcore
 * when its backend set changes, the tests call them directly.
 */
#ifndef MAGLEV_H
#define MAGLEV_H

#include <stdbool.h>
#include <stdint.h>

/** Bytes of a backend's name. */
#define MAGLEV_NAME_LEN 20
/** A table entry that names no backend (every weight was 0). */
#define MAGLEV_NONE UINT16_MAX
/** Most backends in one fill (entries are uint16_t indices). */
#define MAGLEV_MAX_BACKENDS 4096
/** Largest table size: 2^24 - 3, the largest prime below 2^24. */
#define MAGLEV_MAX_SIZE 16777213u

/** Seeds of the two name hashes (offset, skip). */
#define MAGLEV_SEED_OFFSET 0x6d61676cu
#define MAGLEV_SEED_SKIP   0x65763031u

/** A backend as the fill sees it. */
struct maglev_backend {
	uint8_t name[MAGLEV_NAME_LEN]; /**< hashed, and compared bytewise to sort */
	uint32_t weight;	       /**< turns per round; 0: no slot */
};

/** Per-backend working space of a fill, provided by the caller. */
struct maglev_perm {
	const struct maglev_backend *b;
	uint16_t idx;  /**< index of b in the caller's array */
	uint32_t pos;  /**< the next slot of its permutation to try */
	uint32_t skip; /**< step of its permutation */
};

/**
 * Is @p n prime? (Trial division; for table sizes.)
 * @return true if it is.
 */
bool maglev_is_prime(uint32_t n);

/**
 * Fill the lookup table.
 * @param be the backends, in any order, names unique.
 * @param n number of backends, at most MAGLEV_MAX_BACKENDS.
 * @param work room for @p n entries.
 * @param table out: @p size entries, each an index into @p be (MAGLEV_NONE
 *   everywhere when no backend has a weight).
 * @param size the table size: a prime, 2 < size <= MAGLEV_MAX_SIZE.
 * @return 0, or -EINVAL (a bad size, too many backends, a name twice).
 */
int maglev_fill(const struct maglev_backend *be, uint16_t n, struct maglev_perm *work,
		uint16_t *table, uint32_t size);

/** Order of names in a fill: memcmp of the names. */
int maglev_name_cmp(const struct maglev_backend *a, const struct maglev_backend *b);

#endif /* MAGLEV_H */
