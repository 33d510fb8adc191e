/* SPDX-License-Identifier: BSD-3-Clause */
/* The NF chain by name, for the services: see mbx_sb.h. */
#include <errno.h>
#include <string.h>

#include "mbx_sb.h"

int
sb_nf_index(const char *name)
{
	int i;

	if (name == NULL || *name == '\0')
		return -1;
	i = mbx_chain_find(&sb_dp()->chain, name);
	return i < 0 ? -ENOENT : i;
}
