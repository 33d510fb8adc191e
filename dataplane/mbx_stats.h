/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Counters out: rte_telemetry commands under /mbx/ and printouts.
 *
 * Theory of operation: workers count in their own cache-aligned arrays; the
 * readers here (the telemetry thread, the main lcore) sum them on read with
 * relaxed loads. Commands, in DPDK's style (a list, then one item by id):
 * /mbx/info, /mbx/stats, /mbx/parse, /mbx/table, /mbx/ports and
 * /mbx/port,ID, /mbx/nf and /mbx/nf,NAME. Per-flow data is for the
 * southbound API, never here.
 */
#ifndef MBX_STATS_H
#define MBX_STATS_H

#include <stdbool.h>
#include <stdio.h>

#include "mbx_worker.h"

/** Register the /mbx/ telemetry commands for @p dp. @return 0 or -errno. */
int mbx_stats_telemetry_init(const struct mbx_dp *dp);

/** One line of rates since the previous call (for --stats-interval). */
void mbx_stats_print_interval(const struct mbx_dp *dp, FILE *f);

/** Every port, worker, parse and NF counter, for the end of a run. */
void mbx_stats_print_final(const struct mbx_dp *dp, FILE *f);

#endif /* MBX_STATS_H */
