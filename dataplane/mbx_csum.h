/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Incremental Internet checksum updates (RFC 1624, eqn. 3):
 * HC' = ~(~HC + ~m + m'). An NF that rewrites a field computes the delta
 * once per flow (mbx_csum_delta16/32, summed with mbx_csum_fold) and applies
 * it to every packet with mbx_csum_update(); the reverse rewrite applies
 * mbx_csum_negate(delta). Words are taken as they sit in memory: ones'
 * complement sums do not care about byte order as long as all terms agree.
 * Pure functions, for any lcore.
 */
#ifndef MBX_CSUM_H
#define MBX_CSUM_H

#include <stdint.h>

/** Fold a 32-bit ones'-complement sum to 16 bits. */
static inline uint16_t
mbx_csum_fold(uint32_t s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/** Delta (unfolded) of a 16-bit word changing from @p old to @p new. */
static inline uint32_t
mbx_csum_delta16(uint16_t old, uint16_t new)
{
	return (uint16_t)~old + (uint32_t) new;
}

/** Delta (unfolded) of a 32-bit field changing from @p old to @p new. */
static inline uint32_t
mbx_csum_delta32(uint32_t old, uint32_t new)
{
	return (uint32_t)(uint16_t)~old + (uint16_t) ~(old >> 16) + (new & 0xffff) + (new >> 16);
}

/** Apply a folded @p delta to checksum field @p csum. */
static inline uint16_t
mbx_csum_update(uint16_t csum, uint16_t delta)
{
	return (uint16_t)~mbx_csum_fold((uint32_t)(uint16_t)~csum + delta);
}

/** The delta that undoes @p delta. */
static inline uint16_t
mbx_csum_negate(uint16_t delta)
{
	return (uint16_t)~delta;
}

#endif /* MBX_CSUM_H */
