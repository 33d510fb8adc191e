/* SPDX-License-Identifier: BSD-3-Clause */
/* Port set-up and queue assignment: see mbx_port.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_errno.h>

#include "mbx_log.h"
#include "mbx_memif.h"
#include "mbx_port.h"

static int
set_reta(uint16_t port, uint16_t reta_size, uint16_t nb_workers)
{
	struct rte_eth_rss_reta_entry64 reta[RTE_ETH_RSS_RETA_SIZE_512 / RTE_ETH_RETA_GROUP_SIZE];

	if (reta_size == 0 || reta_size > RTE_ETH_RSS_RETA_SIZE_512)
		return 0;
	for (uint16_t i = 0; i < reta_size; i++) {
		struct rte_eth_rss_reta_entry64 *g = &reta[i / RTE_ETH_RETA_GROUP_SIZE];

		g->mask = ~0ULL;
		/* the same mapping as mbx_owner(): (hash % MBX_RETA_SIZE) % workers */
		g->reta[i % RTE_ETH_RETA_GROUP_SIZE] = (i % MBX_RETA_SIZE) % nb_workers;
	}
	return rte_eth_dev_rss_reta_update(port, reta, reta_size);
}

/* Configure and start @port; @return its number of queue pairs or -errno. */
static int
port_start(struct mbx_dp *dp, uint16_t port, struct rte_mempool *mp)
{
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf = {0};
	uint16_t nb_rxd = MBX_NB_RXD, nb_txd = MBX_NB_TXD, nq = 1;
	int socket = rte_eth_dev_socket_id(port);
	uint64_t hf;
	int rc;

	rc = rte_eth_dev_info_get(port, &info);
	if (rc < 0)
		return rc;
	if (socket < 0)
		socket = (int)rte_socket_id();
	hf = info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP);
	if (dp->nb_workers > 1 && hf != 0 && info.max_rx_queues >= dp->nb_workers &&
	    info.max_tx_queues >= dp->nb_workers) {
		nq = dp->nb_workers;
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf = hf;
		if (info.hash_key_size == MBX_RSS_KEY_LEN) {
			conf.rx_adv_conf.rss_conf.rss_key = (uint8_t *)(uintptr_t)mbx_rss_key;
			conf.rx_adv_conf.rss_conf.rss_key_len = MBX_RSS_KEY_LEN;
		}
	}
	rc = rte_eth_dev_configure(port, nq, nq, &conf);
	if (rc < 0)
		return rc;
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nb_rxd, &nb_txd);
	if (rc < 0)
		return rc;
	for (uint16_t q = 0; q < nq; q++) {
		rc = rte_eth_rx_queue_setup(port, q, nb_rxd, socket, NULL, mp);
		if (rc < 0)
			return rc;
		rc = rte_eth_tx_queue_setup(port, q, nb_txd, socket, NULL);
		if (rc < 0)
			return rc;
	}
	rc = rte_eth_dev_start(port);
	if (rc < 0)
		return rc;
	rc = rte_eth_promiscuous_enable(port);
	if (rc < 0 && rc != -ENOTSUP)
		MBX_LOG(WARNING, port, "port %u: promiscuous mode: %s", port, rte_strerror(-rc));
	if (nq > 1) {
		rc = set_reta(port, info.reta_size, dp->nb_workers);
		if (rc < 0 && rc != -ENOTSUP)
			MBX_LOG(WARNING, port,
				"port %u: RETA: %s; flows are handed off in software", port,
				rte_strerror(-rc));
	}
	return nq;
}

int
mbx_ports_init(struct mbx_dp *dp, struct rte_mempool *mp)
{
	uint16_t nb = rte_eth_dev_count_avail(), port;

	if (nb == 0 || nb > MBX_MAX_PORTS) {
		MBX_LOG(ERR, port, "mbxd needs 1 to %d ports (--vdev or a PCI device), found %u",
			MBX_MAX_PORTS, nb);
		return -EINVAL;
	}
	dp->nb_ports = nb;
	RTE_ETH_FOREACH_DEV (port) {
		char name[RTE_ETH_NAME_MAX_LEN] = "?";
		struct rte_ether_addr mac;
		int nq;

		if (port >= nb) {
			MBX_LOG(ERR, port, "port ids must be 0..%u, found %u", nb - 1, port);
			return -EINVAL;
		}
		nq = port_start(dp, port, mp);
		if (nq < 0) {
			MBX_LOG(ERR, port, "port %u: %s", port, rte_strerror(-nq));
			return nq;
		}
		if (nq == dp->nb_workers) {
			for (uint16_t w = 0; w < dp->nb_workers; w++) {
				struct mbx_worker *wk = dp->workers[w];

				wk->rxq[wk->nb_rxq++] = (struct mbx_rxq){port, w};
				wk->txq[port] = (int16_t)w;
			}
		} else {
			struct mbx_worker *wk = dp->workers[port % dp->nb_workers];
			char rname[RTE_RING_NAMESIZE];

			wk->rxq[wk->nb_rxq++] = (struct mbx_rxq){port, 0};
			wk->txq[port] = 0;
			if (dp->nb_workers > 1) {
				snprintf(rname, sizeof(rname), "mbx_tx_%u", port);
				dp->txring[port] = rte_ring_create(rname, MBX_NB_TXD,
								   rte_socket_id(), RING_F_SC_DEQ);
				if (dp->txring[port] == NULL)
					return -rte_errno;
				wk->drains[port] = true;
			}
		}
		rte_eth_dev_get_name_by_port(port, name);
		rte_eth_macaddr_get(port, &mac);
		MBX_LOG(NOTICE, port,
			"port %u (%s, %s): %d queue pair%s, %s, MAC " RTE_ETHER_ADDR_PRT_FMT, port,
			name, port == 0 ? "inside" : "outside", nq, nq > 1 ? "s" : "",
			nq > 1 ? "RSS" : "software hand-off", RTE_ETHER_ADDR_BYTES(&mac));
	}
	return 0;
}

void
mbx_ports_watch(const struct mbx_dp *dp)
{
	static bool up[MBX_MAX_PORTS];
	bool came_up = false;

	for (uint16_t port = 0; port < dp->nb_ports; port++) {
		struct rte_eth_link link;

		if (rte_eth_link_get_nowait(port, &link) < 0 ||
		    (link.link_status == RTE_ETH_LINK_UP) == up[port])
			continue;
		up[port] = !up[port];
		came_up |= up[port];
		MBX_LOG(NOTICE, port, "port %u: link %s", port, up[port] ? "up" : "down");
	}
	if (came_up) {
		uint64_t t0 = rte_get_timer_cycles();
		int64_t bytes = mbx_memif_populate();

		if (bytes < 0)
			MBX_LOG(WARNING, port,
				"memif packet memory: %s; its pages come at first touch",
				strerror((int)-bytes));
		else if (bytes > 0)
			MBX_LOG(INFO, port,
				"memif packet memory backed: %" PRId64 " MiB in %.1f ms",
				bytes >> 20,
				(double)(rte_get_timer_cycles() - t0) * 1e3 / rte_get_timer_hz());
	}
}

void
mbx_ports_close(struct mbx_dp *dp)
{
	for (uint16_t port = 0; port < dp->nb_ports; port++) {
		int rc = rte_eth_dev_stop(port);

		if (rc < 0)
			MBX_LOG(WARNING, port, "port %u: stop: %s", port, rte_strerror(-rc));
		rte_eth_dev_close(port);
		if (dp->txring[port] != NULL) {
			void *m;

			while (rte_ring_dequeue(dp->txring[port], &m) == 0)
				rte_pktmbuf_free(m);
			rte_ring_free(dp->txring[port]);
			dp->txring[port] = NULL;
		}
	}
}
