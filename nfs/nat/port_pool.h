/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NAT's external port pool and the ports each inside host holds.
 *
 * Theory of operation: the pool is every (external address, port) of the
 * configured ranges, cut into blocks of 64 consecutive ports of one address
 * (the last block of an address may be shorter). An inside host gets a whole
 * block on its first flow and takes its next ports from its blocks, as a
 * carrier-grade NAT's port block allocation does; a block returns to the
 * pool when its last port is released.
 *
 * Every block records its owning worker in one atomic word: workers claim
 * free blocks with a compare-and-swap, and any worker can tell, for a reply
 * from outside, which worker holds the block of its destination port
 * (nat_pool_owner()). Everything else in a block, and the host table, is
 * written only by the owning worker: no locks.
 *
 * Multi-flow state of the NAT = the hosts and their blocks; all-flows state
 * = the pool.
 */
#ifndef NAT_PORT_POOL_H
#define NAT_PORT_POOL_H

#include <stdint.h>

#include <rte_byteorder.h>

#define NAT_BLOCK_PORTS 64
#define NAT_NONE	UINT32_MAX

struct nat_pool;
struct nat_hosts;

/** Pool ranges, host byte order, inclusive. */
struct nat_pool_conf {
	uint32_t addr_lo;
	uint32_t addr_hi;
	uint16_t port_lo;
	uint16_t port_hi;
	uint16_t nb_workers;
	int socket;
};

/** A host and the blocks it holds. */
struct nat_host {
	rte_be32_t addr;
	uint32_t head; /**< first block, NAT_NONE if none */
	uint32_t nb_blocks;
	uint32_t nb_ports; /**< ports in use */
	uint32_t used_idx; /**< its place in the table's list of hosts in use */
};

/** Create a pool. @return it, or NULL with rte_errno set. */
struct nat_pool *nat_pool_create(const struct nat_pool_conf *conf);

void nat_pool_free(struct nat_pool *p);

/** The pool's configuration. */
const struct nat_pool_conf *nat_pool_conf(const struct nat_pool *p);

/** Blocks in the pool, and blocks free now. */
uint32_t nat_pool_blocks(const struct nat_pool *p);
uint32_t nat_pool_free_blocks(const struct nat_pool *p);

/**
 * Which worker holds the block of (@p addr, @p port)?
 * @return the worker, -1 if the block is free, -2 if not in the pool.
 */
int nat_pool_owner(const struct nat_pool *p, rte_be32_t addr, rte_be16_t port);

/** A worker's host table for @p capacity hosts. @return it, or NULL + rte_errno. */
struct nat_hosts *nat_hosts_create(uint32_t capacity, int socket);

void nat_hosts_free(struct nat_hosts *h);

/** Host entry of @p addr, or NULL. */
const struct nat_host *nat_hosts_find(const struct nat_hosts *h, rte_be32_t addr);

/** Number of hosts in the table. */
uint32_t nat_hosts_count(const struct nat_hosts *h);

/**
 * Call @p cb for each host, in no order (@p cb adds or frees none); stops
 * at the first non-zero return.
 * @return 0 or that value.
 */
int nat_hosts_foreach(const struct nat_hosts *h, int (*cb)(const struct nat_host *host, void *arg),
		      void *arg);

/**
 * First port of block @p b, as an address and a port (network order), and
 * the mask of ports in use.
 */
void nat_block_get(const struct nat_pool *p, uint32_t b, rte_be32_t *addr, rte_be16_t *port,
		   uint64_t *used);

/** Next block of the same host after @p b, or NAT_NONE. */
uint32_t nat_block_next(const struct nat_pool *p, uint32_t b);

/**
 * Give @p host a free port: from one of its blocks, or from a block claimed
 * for it by @p worker.
 * @return 0 with @p addr and @p port set (network order), or -ENOSPC.
 */
int nat_port_alloc(struct nat_pool *p, struct nat_hosts *h, uint16_t worker, rte_be32_t host,
		   rte_be32_t *addr, rte_be16_t *port);

/**
 * Give @p host exactly (@p addr, @p port), as when a mapping is imported.
 * @return 0; -EINVAL if not in the pool; -EBUSY if the port is in use or its
 *   block belongs to another host or worker.
 */
int nat_port_claim(struct nat_pool *p, struct nat_hosts *h, uint16_t worker, rte_be32_t host,
		   rte_be32_t addr, rte_be16_t port);

/**
 * Reserve for @p host the block starting at (@p addr, @p port), with no port
 * in use yet (a host's blocks imported ahead of its flows).
 * @return 0 (also when the host holds it already), -EINVAL if it is not a
 *   block of the pool, -EBUSY if another host or worker holds it.
 */
int nat_block_reserve(struct nat_pool *p, struct nat_hosts *h, uint16_t worker, rte_be32_t host,
		      rte_be32_t addr, rte_be16_t port);

/**
 * Return @p host's blocks that have no port in use to the pool; a host left
 * without blocks is forgotten. @return blocks returned.
 */
uint32_t nat_host_trim(struct nat_pool *p, struct nat_hosts *h, rte_be32_t host);

/** Release a port that @p host holds; its block returns to the pool when empty. */
void nat_port_release(struct nat_pool *p, struct nat_hosts *h, rte_be32_t host, rte_be32_t addr,
		      rte_be16_t port);

#endif /* NAT_PORT_POOL_H */
