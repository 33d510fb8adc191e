/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control plane mbxd runs on its main lcore, registered from outside
 * the dataplane (the southbound registers itself), so that the dataplane
 * knows it only through this table.
 */
#ifndef MBX_CTRL_PLANE_H
#define MBX_CTRL_PLANE_H

#include <rte_common.h>

struct mbx_dp;
struct mbx_options;

struct mbx_ctrl_plane {
	const char *name;
	/**
	 * Main lcore, after the workers started: serve until SIGINT/SIGTERM.
	 * @return 0, or -errno if it could not start (logged).
	 */
	int (*run)(struct mbx_dp *dp, const struct mbx_options *o);
};

/** Register the control plane (one per program). */
void mbx_ctrl_plane_register(const struct mbx_ctrl_plane *cp);

/** The registered control plane, or NULL. */
const struct mbx_ctrl_plane *mbx_ctrl_plane_get(void);

#define MBX_CTRL_PLANE_REGISTER(cp)             \
	RTE_INIT(mbx_ctrl_plane_register_##cp)  \
	{                                       \
		mbx_ctrl_plane_register(&(cp)); \
	}

#endif /* MBX_CTRL_PLANE_H */
