/* SPDX-License-Identifier: BSD-3-Clause */
/* Message types by name: see mbx_proto.h. */
#include <string.h>

#include "mbx_proto.h"

const ProtobufCMessageDescriptor *
mbx_proto_find(const char *full_name)
{
	for (const ProtobufCMessageDescriptor *const *d = mbx_proto_all; *d != NULL; d++)
		if (strcmp((*d)->name, full_name) == 0)
			return *d;
	return NULL;
}
