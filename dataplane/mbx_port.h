/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Ports: configure every probed ethdev port and give its queues to workers.
 *
 * Theory of operation: a port that can hash (RSS) into one RX queue per
 * worker gets the symmetric key and a redirection table that matches the
 * software owner function, and each worker polls and transmits on its own
 * queue pair. Any other port (net_pcap, net_memif, net_ring, a VF without
 * RSS) gets one queue pair, polled by one worker (port index modulo
 * workers); the other workers transmit on it through the port's TX ring,
 * which that worker empties. Either way, a packet that arrives at a worker
 * that does not own its flow is handed off (mbx_worker.h).
 *
 * Main lcore only, at start-up and shutdown.
 */
#ifndef MBX_PORT_H
#define MBX_PORT_H

#include <rte_mempool.h>

#include "mbx_worker.h"

/**
 * Configure and start all ports, and assign their queues to the workers,
 * which must exist already.
 * @return 0 or -errno (logged).
 */
int mbx_ports_init(struct mbx_dp *dp, struct rte_mempool *mp);

/**
 * Main lcore, periodically: log each port's link going up or down, and when
 * one came up, back the packet memory it shares with its peer (a memif
 * region) with pages now, not at its first packets (mbx_memif.h).
 */
void mbx_ports_watch(const struct mbx_dp *dp);

/** Stop and close every port (a pcap port then completes its output file). */
void mbx_ports_close(struct mbx_dp *dp);

/** RX+TX descriptors per queue, for sizing the mbuf pool. */
#define MBX_NB_RXD 1024
#define MBX_NB_TXD 1024

#endif /* MBX_PORT_H */
