/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mon's asset table: what each host of the monitored network offers and
 * runs, in the spirit of PRADS.
 *
 * Theory of operation: every worker has its own table (an rte_hash from
 * address to a position in an array of records), written only by that
 * worker, so nothing here locks. mon places flows by their inside host
 * (mbx_owner_by_host()), so an inside host's flows, and therefore its
 * record, are all on one worker. A record holds two small sets filled from
 * packets that say something about the host -- the services it answered on
 * (a SYN-ACK, a UDP reply) and the (initial TTL class, window) pairs of its
 * SYNs -- and connection counts. Sets are bounded; what does not fit is
 * counted, never silently lost.
 *
 * A flow holds the positions of its hosts' records (and counts in their
 * @c active), so the packet path looks a host up only when a flow starts;
 * a record is deleted only while no flow holds it.
 *
 * Worker lcore (or the main lcore while workers are parked or stopped).
 */
#ifndef MON_HOSTS_H
#define MON_HOSTS_H

#include <stdbool.h>
#include <stdint.h>

#include "mbx_flow.h"

#define MON_HOST_SERVICES 16 /**< services recorded per host */
#define MON_HOST_OS	  4  /**< OS hints recorded per host */

/*
 * Initial TTL classes of p0f-style OS hints: X(initial TTL, OS family). A
 * TTL rounds up to the first class at or above it.
 */
#define MON_TTL_CLASSES(X)  \
	X(64, "linux/unix") \
	X(128, "windows")   \
	X(255, "solaris/network")

/** A host as a hash key: address and family, padding zero. */
struct mon_host_key {
	union mbx_addr addr;
	uint8_t family;
	uint8_t pad[3];
};

/** One host's record. */
struct mon_host {
	struct mon_host_key key;
	uint8_t nb_services;
	uint8_t nb_os;
	uint32_t services[MON_HOST_SERVICES]; /**< proto << 16 | port */
	uint32_t os[MON_HOST_OS];	      /**< ttl class << 16 | window */
	uint64_t services_lost;
	uint64_t os_lost;
	uint64_t conns_out; /**< flows it opened */
	uint64_t conns_in;  /**< flows opened to it */
	uint64_t active;    /**< flows holding this record now */
};

struct mon_hosts;

/**
 * A worker's table of up to @p capacity hosts.
 * @return it, or NULL with rte_errno set.
 */
struct mon_hosts *mon_hosts_create(uint32_t capacity, int socket);

/** Free @p h; NULL is allowed. */
void mon_hosts_free(struct mon_hosts *h);

/** A host's key for @p addr of @p family. */
struct mon_host_key mon_host_key(const union mbx_addr *addr, uint8_t family);

/**
 * The position of @p k's record, added (zeroed) if it is new.
 * @return the position, or -ENOSPC when the table is full.
 */
int32_t mon_hosts_get(struct mon_hosts *h, const struct mon_host_key *k);

/** The position of @p k's record, or -ENOENT. */
int32_t mon_hosts_find(const struct mon_hosts *h, const struct mon_host_key *k);

/** The record at @p pos (from mon_hosts_get/find). */
struct mon_host *mon_hosts_at(struct mon_hosts *h, int32_t pos);

/** Delete the record at @p pos. */
void mon_hosts_del(struct mon_hosts *h, int32_t pos);

/** Records in the table. */
uint32_t mon_hosts_count(const struct mon_hosts *h);

/**
 * Call @p cb for each record; stops at the first non-zero return. @p cb must
 * not add or delete records.
 * @return 0 or that value.
 */
int mon_hosts_foreach(struct mon_hosts *h, int (*cb)(struct mon_host *e, int32_t pos, void *arg),
		      void *arg);

/** Record service @p proto / @p port of @p e (counted as lost when the set is full). */
void mon_host_add_service(struct mon_host *e, uint8_t proto, uint16_t port);

/** Record an OS hint of @p e (counted as lost when the set is full). */
void mon_host_add_os(struct mon_host *e, uint8_t ttl_class, uint16_t window);

/** The initial TTL class (64, 128, 255) a TTL or hop limit rounds up to. */
uint8_t mon_ttl_class(uint8_t ttl);

/** The OS family of a TTL class, or NULL if @p ttl_class is not one. */
const char *mon_ttl_class_os(uint32_t ttl_class);

#endif /* MON_HOSTS_H */
