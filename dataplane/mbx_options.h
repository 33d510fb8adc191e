/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mbxd's options: one table gives the long options, the config-file keys
 * and the --help text, so the three never drift apart.
 *
 * Main lcore (or before EAL init, for --help).
 */
#ifndef MBX_OPTIONS_H
#define MBX_OPTIONS_H

#include <stdint.h>

#include "mbx_table.h"
#include "mbx_worker.h"

struct mbx_options {
	const char *nf[MBX_CHAIN_MAX]; /**< --nf, in order */
	uint16_t nb_nf;
	uint32_t flows;
	uint32_t stats_interval;
	uint32_t idle_sleep_us;
	uint32_t mbufs;
	uint32_t timeouts[MBX_TMO_MAX];
	const char *control;	   /**< --control ADDR, NULL: the default unix socket */
	const char *control_token; /**< --control-token FILE */
	uint32_t max_frame;	   /**< --max-frame BYTES */
	uint32_t max_conns;	   /**< --control-max-conns N */
	const char *peer;	   /**< --peer HOST:PORT, the moves' peer listener */
};

/** Fill @p o with the defaults. */
void mbx_options_defaults(struct mbx_options *o);

/**
 * Parse mbxd's options (what follows "--"), --config files included.
 * @return 0, 1 if --help was printed, or -EINVAL (reason printed).
 */
int mbx_options_parse(struct mbx_options *o, int argc, char **argv);

/** Print the usage of mbxd's options and of each registered NF. */
void mbx_options_usage(const char *prog);

#endif /* MBX_OPTIONS_H */
