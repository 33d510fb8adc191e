/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fw NF's multi-flow state: connections per source host.
 *
 * Theory of operation: each worker has one table, an rte_hash keyed by
 * (family, address) whose position indexes an array of counts. A host is in
 * the table while it has at least one connection on that worker: fw_host_get()
 * adds it with the connection that needs it, fw_host_put() removes it with
 * the last one (the connection's flow_free). The count therefore always
 * equals the connections this worker tracks for the host, imported ones
 * included, and conn_limit compares against it. fw_host_get() then
 * fw_host_hold() count a connection; fw_host_unused() undoes a get whose
 * connection did not start.
 *
 * Only the owning worker touches its table (the control plane reaches it
 * through the worker's request ring), so nothing here locks.
 */
#ifndef FW_HOSTS_H
#define FW_HOSTS_H

#include <stdint.h>

#include "mbx_flow.h"

struct fw_hosts;

/** One host's entry. */
struct fw_host {
	union mbx_addr addr;
	uint8_t family; /**< enum mbx_family */
	uint32_t conns; /**< connections on this worker; 0: slot free */
};

/**
 * Create a table for at most @p capacity hosts.
 * @return the table, or NULL with rte_errno set.
 */
struct fw_hosts *fw_hosts_create(uint32_t capacity, int socket);

/** Free @p h; NULL is allowed. */
void fw_hosts_free(struct fw_hosts *h);

/**
 * The slot of host @p addr, added with no connections if absent.
 * @return the slot, or -ENOSPC.
 */
int fw_host_get(struct fw_hosts *h, uint8_t family, const union mbx_addr *addr);

/** The entry in slot @p slot (from fw_host_get()). */
struct fw_host *fw_host_at(struct fw_hosts *h, uint32_t slot);

/** A connection of the host in @p slot starts. */
void fw_host_hold(struct fw_hosts *h, uint32_t slot);

/** One connection of the host in @p slot ended; the host goes with its last. */
void fw_host_put(struct fw_hosts *h, uint32_t slot);

/**
 * Drop the host in @p slot if it has no connections (undoing a
 * fw_host_get() whose connection did not come).
 */
void fw_host_unused(struct fw_hosts *h, uint32_t slot);

/** Connections of every host of @p h. */
uint64_t fw_hosts_conns(const struct fw_hosts *h);

/**
 * Call @p cb for every host, until it returns non-zero.
 * @return that value, or 0.
 */
int fw_hosts_foreach(struct fw_hosts *h, int (*cb)(const struct fw_host *host, void *arg),
		     void *arg);

#endif /* FW_HOSTS_H */
