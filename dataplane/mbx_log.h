/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Log types of mbxd: user.mbx.<area>, set with --log-level user.mbx.*:debug.
 * Never used on the fast path per packet.
 */
#ifndef MBX_LOG_H
#define MBX_LOG_H

#include <rte_log.h>

extern int mbx_logtype_main;
extern int mbx_logtype_port;
extern int mbx_logtype_worker;
extern int mbx_logtype_ctrl;

/** Log at @p level (ERR, WARNING, NOTICE, INFO, DEBUG) in @p area (main, port, ...). */
#define MBX_LOG(level, area, fmt, ...) \
	rte_log(RTE_LOG_##level, mbx_logtype_##area, "mbx." #area ": " fmt "\n", ##__VA_ARGS__)

#endif /* MBX_LOG_H */
