/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fwd: forwards every packet unchanged and keeps no state. It is the
 * reference the benchmarks divide by: the cost of mbxd itself (RX, parse,
 * hand-off, TX) without any NF work.
 */
#include "mbx_nf.h"

static void
fwd_process(struct mbx_nf_ctx *c, struct rte_mbuf **pkts, uint16_t n)
{
	(void)c;
	(void)pkts;
	(void)n;
}

static const struct mbx_nf_ops fwd_ops = {
	.name = "fwd",
	.process = fwd_process,
};

MBX_NF_REGISTER(fwd_ops);
