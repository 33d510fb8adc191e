/* SPDX-License-Identifier: BSD-3-Clause */
/* Telemetry and printed counters: see mbx_stats.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_telemetry.h>
#include <rte_version.h>

#include "mbx_stats.h"

static const struct mbx_dp *tel_dp;

static uint64_t
port_tx_dropped(const struct mbx_dp *dp, uint16_t port)
{
	uint64_t sum = 0;

	for (uint16_t i = 0; i < dp->nb_workers; i++)
		sum += __atomic_load_n(&dp->workers[i]->port_tx_drop[port], __ATOMIC_RELAXED);
	return sum;
}

static int
tel_info(const char *cmd, const char *params, struct rte_tel_data *d)
{
	const struct mbx_dp *dp = tel_dp;
	struct rte_tel_data *chain = rte_tel_data_alloc();

	(void)cmd;
	(void)params;
	if (chain == NULL)
		return -ENOMEM;
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "version", MBX_VERSION);
	rte_tel_data_add_dict_string(d, "dpdk", rte_version());
	rte_tel_data_add_dict_u64(d, "lcores", rte_lcore_count());
	rte_tel_data_add_dict_u64(d, "workers", dp->nb_workers);
	rte_tel_data_add_dict_u64(d, "ports", dp->nb_ports);
	rte_tel_data_add_dict_u64(d, "flows_per_worker", dp->flows);
	rte_tel_data_start_array(chain, RTE_TEL_STRING_VAL);
	for (int i = 0; i < dp->chain.n; i++)
		rte_tel_data_add_array_string(chain, dp->chain.nf[i].ops->name);
	rte_tel_data_add_dict_container(d, "chain", chain, 0);
	return 0;
}

static int
parse_index(const char *params, unsigned long max, unsigned long *out)
{
	char *end;

	if (params == NULL || *params == '\0')
		return -EINVAL;
	*out = strtoul(params, &end, 10);
	return *end == '\0' && *out < max ? 0 : -EINVAL;
}

static int
tel_ports(const char *cmd, const char *params, struct rte_tel_data *d)
{
	(void)cmd;
	(void)params;
	rte_tel_data_start_array(d, RTE_TEL_INT_VAL);
	for (uint16_t port = 0; port < tel_dp->nb_ports; port++)
		rte_tel_data_add_array_int(d, port);
	return 0;
}

static int
tel_port(const char *cmd, const char *params, struct rte_tel_data *d)
{
	char name[RTE_ETH_NAME_MAX_LEN] = "?";
	struct rte_eth_stats st;
	unsigned long port;

	(void)cmd;
	if (parse_index(params, tel_dp->nb_ports, &port) < 0)
		return -EINVAL;
	memset(&st, 0, sizeof(st));
	rte_eth_stats_get(port, &st);
	rte_eth_dev_get_name_by_port(port, name);
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "name", name);
	rte_tel_data_add_dict_string(d, "side", port == 0 ? "inside" : "outside");
	rte_tel_data_add_dict_u64(d, "rx_packets", st.ipackets);
	rte_tel_data_add_dict_u64(d, "tx_packets", st.opackets);
	rte_tel_data_add_dict_u64(d, "rx_bytes", st.ibytes);
	rte_tel_data_add_dict_u64(d, "tx_bytes", st.obytes);
	rte_tel_data_add_dict_u64(d, "rx_missed", st.imissed);
	rte_tel_data_add_dict_u64(d, "rx_errors", st.ierrors);
	rte_tel_data_add_dict_u64(d, "tx_errors", st.oerrors);
	rte_tel_data_add_dict_u64(d, "tx_dropped", port_tx_dropped(tel_dp, port));
	return 0;
}

static int
tel_stats(const char *cmd, const char *params, struct rte_tel_data *d)
{
	(void)cmd;
	(void)params;
	rte_tel_data_start_dict(d);
	for (int s = 0; s < MBX_WSTAT_MAX; s++)
		rte_tel_data_add_dict_u64(d, mbx_wstat_names[s], mbx_dp_stat(tel_dp, s));
	return 0;
}

static int
tel_parse(const char *cmd, const char *params, struct rte_tel_data *d)
{
	(void)cmd;
	(void)params;
	rte_tel_data_start_dict(d);
	for (int r = 1; r < MBX_PARSE_MAX; r++)
		rte_tel_data_add_dict_u64(d, mbx_parse_result_names[r],
					  mbx_dp_parse_stat(tel_dp, r));
	return 0;
}

static int
tel_nf(const char *cmd, const char *params, struct rte_tel_data *d)
{
	const struct mbx_chain_nf *e;
	int i;

	(void)cmd;
	if (params == NULL || *params == '\0') {
		rte_tel_data_start_array(d, RTE_TEL_STRING_VAL);
		for (i = 0; i < tel_dp->chain.n; i++)
			rte_tel_data_add_array_string(d, tel_dp->chain.nf[i].ops->name);
		return 0;
	}
	i = mbx_chain_find(&tel_dp->chain, params);
	if (i < 0)
		return -EINVAL;
	e = &tel_dp->chain.nf[i];
	rte_tel_data_start_dict(d);
	for (uint16_t k = 0; k < e->ops->nb_counters; k++)
		rte_tel_data_add_dict_u64(d, e->ops->counter_names[k],
					  mbx_dp_nf_stat(tel_dp, e->counter_off + k));
	return 0;
}

static int
tel_table(const char *cmd, const char *params, struct rte_tel_data *d)
{
	const struct mbx_dp *dp = tel_dp;
	struct rte_tel_data *per = rte_tel_data_alloc();

	(void)cmd;
	(void)params;
	if (per == NULL)
		return -ENOMEM;
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "flows", mbx_dp_flows(dp));
	rte_tel_data_add_dict_u64(d, "capacity",
				  dp->chain.state_size ? (uint64_t)dp->flows * dp->nb_workers : 0);
	rte_tel_data_add_dict_u64(d, "full_drops", mbx_dp_stat(dp, MBX_WSTAT_TABLE_FULL));
	rte_tel_data_start_array(per, RTE_TEL_U64_VAL);
	for (uint16_t i = 0; i < dp->nb_workers; i++)
		rte_tel_data_add_array_u64(
			per, dp->workers[i]->table ? mbx_table_count(dp->workers[i]->table) : 0);
	rte_tel_data_add_dict_container(d, "flows_per_worker", per, 0);
	return 0;
}

int
mbx_stats_telemetry_init(const struct mbx_dp *dp)
{
	static const struct {
		const char *cmd;
		telemetry_cb fn;
		const char *help;
	} cmds[] = {
		{"/mbx/info", tel_info,
		 "mbxd version, workers, ports and NF chain. No parameters."},
		{"/mbx/ports", tel_ports, "Port ids. No parameters."},
		{"/mbx/port", tel_port, "Counters of a port. Parameter: a port id."},
		{"/mbx/stats", tel_stats, "Worker counters, summed over workers. No parameters."},
		{"/mbx/parse", tel_parse, "Dropped malformed packets by reason. No parameters."},
		{"/mbx/nf", tel_nf, "NF names in chain order, or with an NF name, its counters."},
		{"/mbx/table", tel_table, "Flow table occupancy. No parameters."},
	};

	tel_dp = dp;
	for (unsigned int i = 0; i < RTE_DIM(cmds); i++) {
		int rc = rte_telemetry_register_cmd(cmds[i].cmd, cmds[i].fn, cmds[i].help);

		if (rc < 0)
			return rc;
	}
	return 0;
}

void
mbx_stats_print_interval(const struct mbx_dp *dp, FILE *f)
{
	static uint64_t last_rx, last_tx, last_drop, last_tsc;
	uint64_t now = rte_get_timer_cycles();
	uint64_t rx = mbx_dp_stat(dp, MBX_WSTAT_RX), tx = mbx_dp_stat(dp, MBX_WSTAT_TX);
	uint64_t drop = mbx_dp_stat(dp, MBX_WSTAT_NF_DROP) + mbx_dp_stat(dp, MBX_WSTAT_TX_DROP) +
			mbx_dp_stat(dp, MBX_WSTAT_TABLE_FULL) +
			mbx_dp_stat(dp, MBX_WSTAT_HANDOFF_DROP);
	double secs = last_tsc ? (double)(now - last_tsc) / rte_get_timer_hz() : 0;

	for (int r = MBX_PARSE_FIRST_DROP; r < MBX_PARSE_MAX; r++)
		drop += mbx_dp_parse_stat(dp, r);
	if (secs > 0)
		fprintf(f,
			"mbxd: rx %.0f pps, tx %.0f pps, dropped %.0f pps; %" PRIu64
			" flows; totals rx %" PRIu64 " tx %" PRIu64 " dropped %" PRIu64 "\n",
			(rx - last_rx) / secs, (tx - last_tx) / secs, (drop - last_drop) / secs,
			mbx_dp_flows(dp), rx, tx, drop);
	fflush(f);
	last_rx = rx;
	last_tx = tx;
	last_drop = drop;
	last_tsc = now;
}

void
mbx_stats_print_final(const struct mbx_dp *dp, FILE *f)
{
	fprintf(f, "mbxd: final counters\n");
	for (uint16_t port = 0; port < dp->nb_ports; port++) {
		struct rte_eth_stats st;
		char name[RTE_ETH_NAME_MAX_LEN] = "?";

		memset(&st, 0, sizeof(st));
		rte_eth_stats_get(port, &st);
		rte_eth_dev_get_name_by_port(port, name);
		fprintf(f,
			"  port %u %s: rx %" PRIu64 " tx %" PRIu64 " rx_missed %" PRIu64
			" tx_dropped %" PRIu64 "\n",
			port, name, st.ipackets, st.opackets, st.imissed,
			port_tx_dropped(dp, port));
	}
	fprintf(f, "  workers:");
	for (int s = 0; s < MBX_WSTAT_MAX; s++)
		fprintf(f, " %s=%" PRIu64, mbx_wstat_names[s], mbx_dp_stat(dp, s));
	fprintf(f, "\n  parse:");
	for (int r = 1; r < MBX_PARSE_MAX; r++) {
		uint64_t v = mbx_dp_parse_stat(dp, r);

		if (v > 0 || r == MBX_PARSE_NON_IP)
			fprintf(f, " %s=%" PRIu64, mbx_parse_result_names[r], v);
	}
	fprintf(f, "\n");
	for (int i = 0; i < dp->chain.n; i++) {
		const struct mbx_chain_nf *e = &dp->chain.nf[i];

		fprintf(f, "  nf %s:", e->ops->name);
		for (uint16_t k = 0; k < e->ops->nb_counters; k++)
			fprintf(f, " %s=%" PRIu64, e->ops->counter_names[k],
				mbx_dp_nf_stat(dp, e->counter_off + k));
		fprintf(f, "\n");
	}
	fprintf(f, "  table: %" PRIu64 " flows in use\n", mbx_dp_flows(dp));
	fflush(f);
}
