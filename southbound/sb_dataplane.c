/* SPDX-License-Identifier: BSD-3-Clause */
/* service Dataplane: GetInfo and GetStats. */
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_version.h>

#include "mbx/v1/dataplane.pb-c.h"
#include "mbx_sb.h"

static int
get_info(struct sb_call *call, const uint8_t *payload, size_t len)
{
	struct mbx_dp *dp = sb_dp();
	Mbx__V1__GetInfoRequest *req = mbx__v1__get_info_request__unpack(NULL, len, payload);
	Mbx__V1__GetInfoResponse r = MBX__V1__GET_INFO_RESPONSE__INIT;
	Mbx__V1__Status st = MBX__V1__STATUS__INIT;
	Mbx__V1__PortInfo ports[MBX_MAX_PORTS], *pp[MBX_MAX_PORTS];
	Mbx__V1__NfInfo nfs[MBX_CHAIN_MAX], *np[MBX_CHAIN_MAX];
	char *types[MBX_CHAIN_MAX][3];
	char names[MBX_MAX_PORTS][RTE_ETH_NAME_MAX_LEN];
	char rundir[PATH_MAX];
	int rc;

	if (req == NULL)
		return -EBADMSG;
	mbx__v1__get_info_request__free_unpacked(req, NULL);
	snprintf(rundir, sizeof(rundir), "%s", rte_eal_get_runtime_dir());
	r.status = &st;
	r.instance_id = basename(rundir);
	r.version = MBX_VERSION;
	r.dpdk_version = (char *)(uintptr_t)rte_version();
	r.lcores = rte_lcore_count();
	r.workers = dp->nb_workers;
	r.flows_per_worker = dp->flows;
	r.peer_addr = (char *)(uintptr_t)sb_move_peer_addr();
	for (uint16_t i = 0; i < dp->nb_ports; i++) {
		struct rte_eth_dev_info info;

		mbx__v1__port_info__init(&ports[i]);
		ports[i].id = i;
		snprintf(names[i], sizeof(names[i]), "?");
		rte_eth_dev_get_name_by_port(i, names[i]);
		ports[i].name = names[i];
		ports[i].side = i == 0 ? "inside" : "outside";
		if (rte_eth_dev_info_get(i, &info) == 0)
			ports[i].queues = info.nb_rx_queues;
		pp[i] = &ports[i];
	}
	r.n_ports = dp->nb_ports;
	r.ports = pp;
	for (int i = 0; i < dp->chain.n; i++) {
		mbx__v1__nf_info__init(&nfs[i]);
		nfs[i].name = (char *)(uintptr_t)dp->chain.nf[i].ops->name;
		nfs[i].args = dp->chain.nf[i].args;
		nfs[i].state_version = dp->chain.nf[i].ops->state_version;
		nfs[i].flow_state_size = dp->chain.nf[i].ops->flow_state_size;
		for (int k = 0; k < 3; k++) {
			const char *t = dp->chain.nf[i].ops->state_types[k];

			types[i][k] = (char *)(uintptr_t)(t != NULL ? t : "");
		}
		nfs[i].n_state_types = 3;
		nfs[i].state_types = types[i];
		np[i] = &nfs[i];
	}
	r.n_chain = dp->chain.n;
	r.chain = np;
	rc = sb_reply(call, &r.base, false);
	return rc == -ECONNRESET ? 0 : rc;
}

static Mbx__V1__Counter **
counters(Mbx__V1__Counter *c, Mbx__V1__Counter **p, const char *const *names, const uint64_t *vals,
	 size_t n)
{
	for (size_t i = 0; i < n; i++) {
		mbx__v1__counter__init(&c[i]);
		c[i].name = (char *)(uintptr_t)names[i];
		c[i].value = vals[i];
		p[i] = &c[i];
	}
	return p;
}

static int
get_stats(struct sb_call *call, const uint8_t *payload, size_t len)
{
	struct mbx_dp *dp = sb_dp();
	Mbx__V1__GetStatsRequest *req = mbx__v1__get_stats_request__unpack(NULL, len, payload);
	Mbx__V1__GetStatsResponse r = MBX__V1__GET_STATS_RESPONSE__INIT;
	Mbx__V1__Status st = MBX__V1__STATUS__INIT;
	Mbx__V1__PortStats ports[MBX_MAX_PORTS], *pp[MBX_MAX_PORTS];
	Mbx__V1__Counter wc[MBX_WSTAT_MAX], *wp[MBX_WSTAT_MAX], pc[MBX_PARSE_MAX],
		*ppc[MBX_PARSE_MAX];
	Mbx__V1__NfStats nfs[MBX_CHAIN_MAX], *np[MBX_CHAIN_MAX];
	uint64_t wv[MBX_WSTAT_MAX], pv[MBX_PARSE_MAX], *nv;
	Mbx__V1__Counter *nc, **ncp;
	int rc;

	if (req == NULL)
		return -EBADMSG;
	mbx__v1__get_stats_request__free_unpacked(req, NULL);
	nv = calloc(dp->chain.nb_counters + 1, sizeof(*nv));
	nc = calloc(dp->chain.nb_counters + 1, sizeof(*nc));
	ncp = calloc(dp->chain.nb_counters + 1, sizeof(*ncp));
	if (nv == NULL || nc == NULL || ncp == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	r.status = &st;
	for (uint16_t i = 0; i < dp->nb_ports; i++) {
		struct rte_eth_stats s;

		memset(&s, 0, sizeof(s));
		rte_eth_stats_get(i, &s);
		mbx__v1__port_stats__init(&ports[i]);
		ports[i].id = i;
		ports[i].rx_packets = s.ipackets;
		ports[i].tx_packets = s.opackets;
		ports[i].rx_bytes = s.ibytes;
		ports[i].tx_bytes = s.obytes;
		ports[i].rx_missed = s.imissed;
		for (uint16_t w = 0; w < dp->nb_workers; w++)
			ports[i].tx_dropped += dp->workers[w]->port_tx_drop[i];
		pp[i] = &ports[i];
	}
	r.n_ports = dp->nb_ports;
	r.ports = pp;
	for (int s = 0; s < MBX_WSTAT_MAX; s++)
		wv[s] = mbx_dp_stat(dp, s);
	r.n_workers = MBX_WSTAT_MAX;
	r.workers = counters(wc, wp, mbx_wstat_names, wv, MBX_WSTAT_MAX);
	/* the event counters, again under their own heading */
	r.n_events = MBX_WSTAT_MAX - MBX_WSTAT_EV_DROPPED;
	r.events = wp + MBX_WSTAT_EV_DROPPED;
	for (int p = 1; p < MBX_PARSE_MAX; p++)
		pv[p] = mbx_dp_parse_stat(dp, p);
	r.n_parse = MBX_PARSE_MAX - 1;
	r.parse = counters(pc + 1, ppc + 1, mbx_parse_result_names + 1, pv + 1, MBX_PARSE_MAX - 1);
	for (int i = 0; i < dp->chain.n; i++) {
		const struct mbx_chain_nf *e = &dp->chain.nf[i];

		for (uint16_t k = 0; k < e->ops->nb_counters; k++)
			nv[e->counter_off + k] = mbx_dp_nf_stat(dp, e->counter_off + k);
		mbx__v1__nf_stats__init(&nfs[i]);
		nfs[i].name = (char *)(uintptr_t)e->ops->name;
		nfs[i].n_counters = e->ops->nb_counters;
		nfs[i].counters =
			counters(nc + e->counter_off, ncp + e->counter_off, e->ops->counter_names,
				 nv + e->counter_off, e->ops->nb_counters);
		np[i] = &nfs[i];
	}
	r.n_nfs = dp->chain.n;
	r.nfs = np;
	r.flows = mbx_dp_flows(dp);
	r.flow_capacity = dp->chain.state_size ? (uint64_t)dp->flows * dp->nb_workers : 0;
	rc = sb_reply(call, &r.base, false);
	rc = rc == -ECONNRESET ? 0 : rc;
out:
	free(nv);
	free(nc);
	free(ncp);
	return rc;
}

const struct sb_method sb_dataplane_methods[] = {
	{"/mbx.v1.Dataplane/GetInfo", get_info},
	{"/mbx.v1.Dataplane/GetStats", get_stats},
	{NULL, NULL},
};
