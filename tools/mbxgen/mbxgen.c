/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mbxgen: mbx's traffic generator and independent checker.
 * mbxgen [EAL options] -- [options]
 *
 * It sends N UDP and/or TCP flows at a paced rate on one port, plays the
 * TCP server on the ports the flows come back on (and the client on the tx
 * port), identifies every packet it receives by the flow id in its payload,
 * and reports per flow and in total what was sent, received, lost,
 * duplicated and reordered, the 5-tuple the flow arrived with (the NAT/LB
 * rewrite) and whether it changed, and latency percentiles, as JSON
 * (--report). See gen.h for the loop, pkt.h for the packets, check.h for
 * the accounting.
 *
 * The main lcore runs everything; the telemetry thread answers
 * /mbxgen/stats (phase and running totals). The report is written before
 * the ports are closed, so that a teardown crash of a PMD cannot lose it.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_telemetry.h>

#include "gen.h"
#include "mbx_memif.h"

#define NB_RXD 1024
#define NB_TXD 1024

RTE_LOG_REGISTER(mbxgen_logtype, user.mbxgen, NOTICE);

volatile sig_atomic_t mbxgen_signals;

static const char *prog_name = "mbxgen";
static struct mbxgen *the_gen; /* for the telemetry callback */
static const char *const proto_names[] = {"udp", "tcp", "mixed"};

static void
on_signal(int sig)
{
	(void)sig;
	mbxgen_signals = mbxgen_signals + 1;
}

static void
usage_hook(const char *prog)
{
	printf("\n");
	mbxgen_options_usage(prog);
}

/* --help after "--" needs no EAL: answer it at once. */
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

static int
tel_stats(const char *cmd, const char *params, struct rte_tel_data *d)
{
	const struct mbxgen_pub *p = &the_gen->pub;
	uint64_t phase = __atomic_load_n(&p->phase, __ATOMIC_RELAXED);

	(void)cmd;
	(void)params;
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "phase", mbxgen_phase_name((enum mbxgen_phase)phase));
	rte_tel_data_add_dict_u64(d, "sent", __atomic_load_n(&p->sent, __ATOMIC_RELAXED));
	rte_tel_data_add_dict_u64(d, "received", __atomic_load_n(&p->received, __ATOMIC_RELAXED));
	rte_tel_data_add_dict_u64(d, "inflight", __atomic_load_n(&p->inflight, __ATOMIC_RELAXED));
	rte_tel_data_add_dict_u64(d, "handshakes",
				  __atomic_load_n(&p->handshakes, __ATOMIC_RELAXED));
	rte_tel_data_add_dict_u64(d, "closes", __atomic_load_n(&p->closes, __ATOMIC_RELAXED));
	rte_tel_data_add_dict_u64(d, "foreign", __atomic_load_n(&p->foreign, __ATOMIC_RELAXED));
	return 0;
}

static int
port_start(uint16_t port, struct rte_mempool *mp)
{
	struct rte_eth_conf conf;
	uint16_t nb_rxd = NB_RXD, nb_txd = NB_TXD;
	int socket = rte_eth_dev_socket_id(port);
	int rc;

	memset(&conf, 0, sizeof(conf));
	if (socket < 0)
		socket = (int)rte_socket_id();
	rc = rte_eth_dev_configure(port, 1, 1, &conf);
	if (rc == 0)
		rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nb_rxd, &nb_txd);
	if (rc == 0)
		rc = rte_eth_rx_queue_setup(port, 0, nb_rxd, socket, NULL, mp);
	if (rc == 0)
		rc = rte_eth_tx_queue_setup(port, 0, nb_txd, socket, NULL);
	if (rc == 0)
		rc = rte_eth_dev_start(port);
	if (rc < 0)
		return rc;
	rc = rte_eth_promiscuous_enable(port);
	if (rc < 0 && rc != -ENOTSUP)
		GEN_LOG(WARNING, "port %u: promiscuous mode: %s", port, rte_strerror(-rc));
	return 0;
}

/* Wait until every port used is up, at most @p seconds. */
static int
wait_links(const struct mbxgen *g, uint32_t seconds)
{
	uint64_t deadline = rte_get_tsc_cycles() + (uint64_t)seconds * rte_get_tsc_hz();

	for (;;) {
		uint16_t down = RTE_MAX_ETHPORTS;

		for (uint16_t i = 0; i < g->nb_ports && down == RTE_MAX_ETHPORTS; i++) {
			struct rte_eth_link link;

			if (rte_eth_link_get_nowait(g->ports[i], &link) < 0 ||
			    link.link_status != RTE_ETH_LINK_UP)
				down = g->ports[i];
		}
		if (down == RTE_MAX_ETHPORTS)
			return 0;
		if (rte_get_tsc_cycles() > deadline || mbxgen_signals) {
			GEN_LOG(ERR, "port %u: link still down after %u s", down, seconds);
			return -ETIMEDOUT;
		}
		rte_delay_us_sleep(10000);
	}
}

static void
stop_ports(const struct mbxgen *g)
{
	for (uint16_t i = 0; i < g->nb_ports; i++) {
		rte_eth_dev_stop(g->ports[i]);
		rte_eth_dev_close(g->ports[i]);
	}
}

static uint64_t
unix_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Write the report to @p path ("-": stdout), atomically for a file. */
static int
write_report(const struct mbxgen *g, const char *path, const struct mbxgen_run *run)
{
	char tmp[4096];
	FILE *f;
	int rc;

	if (strcmp(path, "-") == 0)
		return mbxgen_check_report(g->chk, stdout, run);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "w");
	if (f == NULL)
		return -errno;
	rc = mbxgen_check_report(g->chk, f, run);
	if (fclose(f) != 0 && rc == 0)
		rc = -EIO;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc < 0)
		remove(tmp);
	return rc;
}

static void
print_summary(const struct mbxgen *g, const struct mbxgen_run *run)
{
	struct mbxgen_totals t;
	struct mbxgen_latency l;

	mbxgen_check_totals(g->chk, &t);
	mbxgen_check_latency(g->chk, &l);
	printf("mbxgen: %u flows, %s, %.3f s: sent %" PRIu64 " received %" PRIu64 " lost %" PRIu64
	       " duplicated %" PRIu64 " reordered %" PRIu64 " rewrite_changes %" PRIu64
	       " foreign %" PRIu64 " invalid %" PRIu64 "\n",
	       g->o->flows, run->proto, run->duration_s, t.sent, t.received, t.lost, t.duplicated,
	       t.reordered, t.rewrite_changes, t.ctr[MBXGEN_CTR_FOREIGN],
	       t.ctr[MBXGEN_CTR_INVALID]);
	printf("mbxgen: latency us p50 %" PRIu64 " p99 %" PRIu64 " p99.9 %" PRIu64
	       " max %.3f; %.0f pps sent\n",
	       l.p50_us, l.p99_us, l.p999_us, (double)l.max_ns / 1000.0,
	       run->duration_s > 0 ? (double)t.sent / run->duration_s : 0.0);
	if (run->tcp)
		printf("mbxgen: tcp handshakes %" PRIu64 " closes %" PRIu64 " failed %" PRIu64
		       " unexpected %" PRIu64 "\n",
		       t.handshakes, t.closes, t.failed, t.ctr[MBXGEN_CTR_TCP_UNEXPECTED]);
	fflush(stdout);
}

/* The ports to use: the tx port first, then the rx ports. */
static int
select_ports(struct mbxgen *g, const struct mbxgen_options *o)
{
	uint16_t avail = rte_eth_dev_count_avail();
	uint64_t rx = o->rx_ports;

	if (o->tx_port >= avail || !rte_eth_dev_is_valid_port(o->tx_port)) {
		GEN_LOG(ERR, "--tx-port %u: there are %u ports (--vdev ...)", o->tx_port, avail);
		return -EINVAL;
	}
	if (!o->rx_ports_set)
		for (uint16_t p = 0; p < avail && p < 64; p++)
			if (p != o->tx_port)
				rx |= UINT64_C(1) << p;
	g->ports[g->nb_ports++] = o->tx_port;
	for (uint16_t p = 0; p < 64; p++) {
		if (!(rx & (UINT64_C(1) << p)))
			continue;
		if (p >= avail || !rte_eth_dev_is_valid_port(p)) {
			GEN_LOG(ERR, "--rx-ports: no port %u (there are %u)", p, avail);
			return -EINVAL;
		}
		g->ports[g->nb_ports++] = p;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static struct mbxgen_options opt;
	struct mbxgen_check_conf cc;
	struct mbxgen_run run;
	struct mbxgen *g;
	unsigned int nb_mbufs;
	int64_t backed;
	int rc;

	prog_name = argv[0];
	if (app_help_requested(argc, argv)) {
		mbxgen_options_usage(prog_name);
		return 0;
	}
	rte_set_application_usage_hook(usage_hook);
	rc = rte_eal_init(argc, argv);
	if (rc < 0)
		rte_exit(EXIT_FAILURE, "EAL initialisation failed: %s\n", rte_strerror(rte_errno));
	argc -= rc;
	argv += rc;
	argv[0] = (char *)(uintptr_t)prog_name;

	mbxgen_options_defaults(&opt);
	rc = mbxgen_options_parse(&opt, argc, argv);
	if (rc != 0) {
		rte_eal_cleanup();
		return rc > 0 ? 0 : 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	g = calloc(1, sizeof(*g));
	if (g == NULL)
		rte_exit(EXIT_FAILURE, "out of memory\n");
	the_gen = g;
	g->o = &opt;
	g->hz = rte_get_tsc_hz();
	if (select_ports(g, &opt) < 0)
		rte_exit(EXIT_FAILURE, "no such port\n");
	if (rte_lcore_count() > 1)
		GEN_LOG(NOTICE, "one lcore runs everything; the %u others stay idle",
			rte_lcore_count() - 1);
	g->len_udp = (uint16_t)RTE_MAX(opt.size,
				       (uint32_t)(MBXGEN_HDR_UDP + sizeof(struct mbxgen_payload)));
	g->len_tcp = (uint16_t)RTE_MAX(opt.size,
				       (uint32_t)(MBXGEN_HDR_TCP + sizeof(struct mbxgen_payload)));
	g->tcp_plen = g->len_tcp - MBXGEN_HDR_TCP;
	if ((opt.proto != MBXGEN_PROTO_TCP && g->len_udp != opt.size) ||
	    (opt.proto != MBXGEN_PROTO_UDP && g->len_tcp != opt.size))
		GEN_LOG(NOTICE,
			"--size %u: frames are %u B (UDP) / %u B (TCP), the least that "
			"holds headers and payload",
			opt.size, g->len_udp, g->len_tcp);

	nb_mbufs = g->nb_ports * (NB_RXD + NB_TXD + MBXGEN_MAX_BURST) + MBXGEN_MAX_BURST + 2048;
	g->mp = rte_pktmbuf_pool_create("mbxgen_mbufs", nb_mbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					(int)rte_socket_id());
	if (g->mp == NULL)
		rte_exit(EXIT_FAILURE, "mbuf pool: %s (try a larger -m)\n",
			 rte_strerror(rte_errno));
	for (uint16_t i = 0; i < g->nb_ports; i++) {
		rc = port_start(g->ports[i], g->mp);
		if (rc < 0)
			rte_exit(EXIT_FAILURE, "port %u: %s\n", g->ports[i], rte_strerror(-rc));
	}
	rte_eth_macaddr_get(opt.tx_port, &g->eth.src);
	g->eth.dst = opt.dst_mac;

	g->flows = calloc(opt.flows, sizeof(*g->flows));
	if (g->flows == NULL)
		rte_exit(EXIT_FAILURE, "out of memory for %u flows\n", opt.flows);
	for (uint32_t i = 0; i < opt.flows; i++)
		mbxgen_flow_tuple(&opt, i, &g->flows[i].t);
	if (rte_telemetry_register_cmd("/mbxgen/stats", tel_stats,
				       "mbxgen's phase and running totals. No parameters") < 0)
		GEN_LOG(WARNING, "telemetry command not registered");

	if (wait_links(g, opt.link_wait) < 0) {
		stop_ports(g);
		rte_eal_cleanup();
		return 1;
	}
	/* a receiver that faults its way through a link's first packets falls behind */
	backed = mbx_memif_populate();
	if (backed < 0)
		GEN_LOG(WARNING, "memif packet memory not backed up front: %s",
			strerror((int)-backed));

	g->start_tsc = rte_rdtsc();
	memset(&run, 0, sizeof(run));
	run.start_unix_us = unix_us();
	cc = (struct mbxgen_check_conf){
		.nb_flows = opt.flows,
		.hz = g->hz,
		.start_tsc = g->start_tsc,
		.inflight_window_ms = opt.drain_ms,
	};
	g->chk = mbxgen_check_create(&cc);
	if (g->chk == NULL)
		rte_exit(EXIT_FAILURE, "checker: %s\n", strerror(errno));
	for (uint32_t i = 0; i < opt.flows; i++)
		mbxgen_check_flow_init(g->chk, i, &g->flows[i].t);
	GEN_LOG(NOTICE,
		"%u flows (%s) over %u hosts, %" PRIu64 " pps, tx port %u, %u ports polled, "
		"%u B frames",
		opt.flows, proto_names[opt.proto], opt.hosts, opt.rate, opt.tx_port, g->nb_ports,
		opt.proto == MBXGEN_PROTO_TCP ? g->len_tcp : g->len_udp);

	mbxgen_run(g);

	run.proto = proto_names[opt.proto];
	run.tcp = opt.proto != MBXGEN_PROTO_UDP;
	run.rate_pps = opt.rate;
	run.duration_s = g->last_tx_tsc > g->first_tx_tsc
				 ? (double)(g->last_tx_tsc - g->first_tx_tsc) / (double)g->hz
				 : 0.0;
	run.frame_size = opt.proto == MBXGEN_PROTO_TCP ? g->len_tcp : g->len_udp;
	run.tx_port = opt.tx_port;
	rc = 0;
	if (opt.report != NULL) {
		rc = write_report(g, opt.report, &run);
		if (rc < 0)
			GEN_LOG(ERR, "--report %s: %s", opt.report, strerror(-rc));
	}
	print_summary(g, &run);

	stop_ports(g);
	mbxgen_check_free(g->chk);
	free(g->flows);
	rte_mempool_free(g->mp);
	rte_eal_cleanup(); /* stops the telemetry thread, which reads g->pub: g stays */
	return rc < 0 ? 1 : 0;
}
