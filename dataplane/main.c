/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mbxd: one NF instance. mbxd [EAL options] -- [options]
 *
 * The main lcore sets everything up, launches a worker loop on every other
 * lcore and then runs the registered control plane (the southbound: one
 * libevent loop for signals, timers and the control server). On SIGINT or
 * SIGTERM it stops receiving, lets the workers drain their rings, prints the
 * final counters and closes the ports, so that a pcap output is complete.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_memory.h>

#include "mbx_ctrl_plane.h"
#include "mbx_log.h"
#include "mbx_marker.h"
#include "mbx_options.h"
#include "mbx_port.h"
#include "mbx_stats.h"
#include "mbx_worker.h"

/* How long the workers get to empty their rings at shutdown. */
#define DRAIN_TIMEOUT_MS 2000
/* The C heap: what is backed at start-up, and what it keeps (warm_heap()). */
#define HEAP_WARM (16u << 20)
#define HEAP_KEEP (64 << 20)

static const char *prog_name = "mbxd";

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

static int
populate(const struct rte_memseg_list *msl, const struct rte_memseg *ms, size_t len, void *arg)
{
	(void)msl;
	(void)arg;
	return madvise(ms->addr, len, MADV_POPULATE_WRITE) == 0 ? 0 : -1;
}

/*
 * Without hugepages, EAL memory is backed on first touch: a table's first
 * flows, an import's or a burst's fresh mbufs would pay page faults in the
 * packet path. Back it all now, as hugepages are.
 */
static void
populate_memory(void)
{
	if (rte_eal_has_hugepages())
		return;
	if (rte_memseg_contig_walk(populate, NULL) != 0)
		MBX_LOG(WARNING, main, "cannot back DPDK memory in advance: %s", strerror(errno));
}

/*
 * The control plane's own buffers (a move's state and peer stream, a put's
 * records) come from the C heap. A page's first touch costs microseconds,
 * more under a hypervisor: in a 1k-flow move the source spent ~0.4 ms in
 * page faults between the export and the first write. So, as real-time
 * programs do: the heap serves blocks up to HEAP_KEEP too, keeps up to
 * HEAP_KEEP of freed pages, and has HEAP_WARM of them backed now.
 */
static void
warm_heap(void)
{
	volatile uint8_t *p;

	mallopt(M_MMAP_THRESHOLD, HEAP_KEEP);
	mallopt(M_TRIM_THRESHOLD, HEAP_KEEP);
	p = malloc(HEAP_WARM);
	if (p == NULL)
		return;
	for (size_t i = 0; i < HEAP_WARM; i += 4096)
		p[i] = 0;
	free((void *)(uintptr_t)p);
}

static void
usage_hook(const char *prog)
{
	printf("\n");
	mbx_options_usage(prog);
}

/* --help after "--" needs no EAL (and no hugepages): answer it at once. */
static bool
app_help_requested(int argc, char **argv)
{
	int i = 1;

	while (i < argc && strcmp(argv[i], "--") != 0)
		i++;
	for (i++; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

static unsigned int
pool_size(const struct mbx_dp *dp, uint16_t nb_ports)
{
	/* every descriptor, every ring, every per-lcore cache and burst, and slack */
	return nb_ports * dp->nb_workers * (MBX_NB_RXD + MBX_NB_TXD) +
	       dp->nb_workers * (MBX_HANDOFF_RING_SIZE + MBX_MAX_PORTS * 2 * MBX_BURST) +
	       nb_ports * MBX_NB_TXD + rte_lcore_count() * 512 + 4096;
}

static int
build_chain(struct mbx_dp *dp, const struct mbx_options *o, uint16_t nb_ports)
{
	struct mbx_nf_params p = {
		.nb_workers = dp->nb_workers,
		.nb_ports = nb_ports,
		.socket = (int)rte_socket_id(),
		.flows = dp->flows,
	};

	for (uint16_t i = 0; i < o->nb_nf; i++) {
		int rc = mbx_chain_add(&dp->chain, o->nf[i]);

		if (rc == -ENOENT)
			MBX_LOG(ERR, main, "--nf %s: no such NF (see --help)", o->nf[i]);
		else if (rc == -EEXIST)
			MBX_LOG(ERR, main, "--nf %s: already in the chain", o->nf[i]);
		else if (rc < 0)
			MBX_LOG(ERR, main, "--nf %s: %s", o->nf[i], strerror(-rc));
		if (rc < 0)
			return rc;
	}
	if (dp->chain.n == 0) {
		MBX_LOG(NOTICE, main, "no --nf given: forwarding with 'fwd'");
		if (mbx_chain_add(&dp->chain, "fwd") < 0)
			return -ENOENT;
	}
	return mbx_chain_create(&dp->chain, &p);
}

int
main(int argc, char **argv)
{
	struct mbx_options opt;
	struct rte_mempool *mp;
	struct mbx_dp *dp;
	unsigned int lcore;
	uint16_t nb_ports, i;
	int rc;

	prog_name = argv[0];
	if (app_help_requested(argc, argv)) {
		mbx_options_usage(prog_name);
		return 0;
	}
	rte_set_application_usage_hook(usage_hook);
	rc = rte_eal_init(argc, argv);
	if (rc < 0)
		rte_exit(EXIT_FAILURE, "EAL initialisation failed: %s\n", rte_strerror(rte_errno));
	argc -= rc;
	argv += rc;
	argv[0] = (char *)(uintptr_t)prog_name;
	populate_memory();
	warm_heap();

	mbx_options_defaults(&opt);
	rc = mbx_options_parse(&opt, argc, argv);
	if (rc != 0) {
		rte_eal_cleanup();
		return rc > 0 ? 0 : 2;
	}
	if (mbx_ctrl_plane_get() == NULL)
		rte_exit(EXIT_FAILURE, "no control plane linked into this program\n");
	if (rte_lcore_count() < 2)
		rte_exit(EXIT_FAILURE,
			 "mbxd needs a main lcore and at least one worker (-l 0-1)\n");

	dp = rte_zmalloc("mbx_dp", sizeof(*dp), RTE_CACHE_LINE_SIZE);
	if (dp == NULL)
		rte_exit(EXIT_FAILURE, "out of memory\n");
	dp->nb_workers = (uint16_t)(rte_lcore_count() - 1);
	dp->flows = opt.flows;
	dp->idle_sleep_us = opt.idle_sleep_us;
	memcpy(dp->timeouts, opt.timeouts, sizeof(dp->timeouts));
	nb_ports = rte_eth_dev_count_avail();
	if (build_chain(dp, &opt, nb_ports) < 0)
		rte_exit(EXIT_FAILURE, "cannot build the NF chain\n");

	mp = rte_pktmbuf_pool_create(
		"mbx_mbufs", opt.mbufs ? opt.mbufs : pool_size(dp, RTE_MAX(nb_ports, 1)), 256,
		MBX_PKT_PRIV_SIZE, RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (mp == NULL)
		rte_exit(EXIT_FAILURE,
			 "mbuf pool: %s (try a larger -m or a smaller --mbufs; without hugepages "
			 "each mbuf takes a 4 KiB page)\n",
			 rte_strerror(rte_errno));

	dp->mp = mp;
	if (mbx_marker_init(dp) < 0)
		rte_exit(EXIT_FAILURE, "cannot register the dynamic mbuf flags\n");
	i = 0;
	RTE_LCORE_FOREACH_WORKER (lcore) {
		dp->workers[i] = mbx_worker_create(dp, i, (int)rte_lcore_to_socket_id(lcore));
		if (dp->workers[i] == NULL)
			rte_exit(EXIT_FAILURE, "cannot create worker %u (try a larger -m)\n", i);
		i++;
	}
	if (mbx_ports_init(dp, mp) < 0)
		rte_exit(EXIT_FAILURE, "port set-up failed\n");
	if (mbx_stats_telemetry_init(dp) < 0)
		MBX_LOG(WARNING, main, "telemetry commands not registered");

	MBX_LOG(NOTICE, main, "mbxd %s: %u workers, %u ports, %u NFs, %u flows per worker",
		MBX_VERSION, dp->nb_workers, dp->nb_ports, dp->chain.n, dp->flows);
	i = 0;
	RTE_LCORE_FOREACH_WORKER (lcore) {
		rte_eal_remote_launch(mbx_worker_loop, dp->workers[i], lcore);
		i++;
	}

	rc = mbx_ctrl_plane_get()->run(dp, &opt);
	if (rc < 0)
		MBX_LOG(ERR, main, "control plane: %s; stopping", strerror(-rc));

	mbx_dp_stop(dp, DRAIN_TIMEOUT_MS);
	rte_eal_mp_wait_lcore();
	mbx_stats_print_final(dp, stdout);
	mbx_ports_close(dp);
	for (i = 0; i < dp->nb_workers; i++)
		mbx_worker_free(dp->workers[i]);
	mbx_chain_destroy(&dp->chain);
	rte_mempool_free(mp);
	rte_free(dp);
	for (i = 0; i < opt.nb_nf; i++)
		free((void *)(uintptr_t)opt.nf[i]);
	free((void *)(uintptr_t)opt.control);
	free((void *)(uintptr_t)opt.control_token);
	free((void *)(uintptr_t)opt.peer);
	rte_eal_cleanup();
	return rc < 0 ? 1 : 0;
}
