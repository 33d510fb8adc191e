/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Helpers for the unit suites: one real EAL per test binary (--no-huge, a
 * unique --file-prefix, one worker lcore), a dataplane built from NF specs
 * without ports, and packet builders with correct checksums.
 * Suites run with CK_FORK=no: worker lcores do not survive a fork.
 */
#ifndef MBX_TEST_H
#define MBX_TEST_H

#include <stdint.h>

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "mbx_worker.h"

/** Initialise the EAL once for this binary; aborts on failure. */
void mbx_test_eal(const char *name);

/** The packet pool (private area sized for struct mbx_pkt). */
struct rte_mempool *mbx_test_pool(void);

/**
 * A dataplane of @p nb_workers workers (not launched) and @p nb_ports
 * virtual ports (none configured: packets stay in the workers' TX buffers).
 * @p nfs is a NULL-terminated list of --nf specs.
 */
struct mbx_dp *mbx_test_dp(const char *const *nfs, uint16_t nb_workers, uint16_t nb_ports,
			   uint32_t flows);

/** Free a dataplane from mbx_test_dp(). */
void mbx_test_dp_free(struct mbx_dp *dp);

/** Move what @p w queued for @p port into @p out (at most @p max). @return count. */
uint16_t mbx_test_take_tx(struct mbx_worker *w, uint16_t port, struct rte_mbuf **out, uint16_t max);

/** A frame holding @p len bytes from @p data. */
struct rte_mbuf *mbx_test_frame(const void *data, uint16_t len);

/** IPv4 packets with valid IP and L4 checksums; addresses as "a.b.c.d". */
struct rte_mbuf *mbx_test_udp4(const char *src, const char *dst, uint16_t sport, uint16_t dport,
			       uint16_t payload);
struct rte_mbuf *mbx_test_tcp4(const char *src, const char *dst, uint16_t sport, uint16_t dport,
			       uint8_t flags, uint16_t payload);
struct rte_mbuf *mbx_test_icmp4(const char *src, const char *dst, uint8_t type, uint16_t id,
				uint16_t payload);
/** IPv6 packets; addresses as "2001:db8::1". */
struct rte_mbuf *mbx_test_udp6(const char *src, const char *dst, uint16_t sport, uint16_t dport,
			       uint16_t payload);

/** Recompute every checksum of an IPv4 packet from scratch; 0 if all match. */
int mbx_test_verify_csums(struct rte_mbuf *m);

/**
 * A filter from the command-line syntax, the way a request carries it: text
 * to mbx.v1.Filter (as mbxctl does) to the dataplane's filter (as mbxd does).
 * @return 0 or -EINVAL.
 */
int mbx_test_filter(struct mbx_filter *f, const char *s);

/** "a.b.c.d" in network order. */
rte_be32_t mbx_test_ip4(const char *s);

#endif /* MBX_TEST_H */
