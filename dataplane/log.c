/* SPDX-License-Identifier: BSD-3-Clause */
/* The dataplane's log types: see mbx_log.h. */
#include "mbx_log.h"

RTE_LOG_REGISTER(mbx_logtype_main, user.mbx.main, NOTICE);
RTE_LOG_REGISTER(mbx_logtype_port, user.mbx.port, NOTICE);
RTE_LOG_REGISTER(mbx_logtype_worker, user.mbx.worker, NOTICE);
RTE_LOG_REGISTER(mbx_logtype_ctrl, user.mbx.ctrl, NOTICE);
