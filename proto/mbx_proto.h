/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Every message type of proto/, findable by its full name: how clients decode
 * an NF's state chunks with the type names an instance reports in GetInfo.
 */
#ifndef MBX_PROTO_H
#define MBX_PROTO_H

#include <protobuf-c/protobuf-c.h>

/** Every message descriptor of proto/mbx/v1, NULL-terminated (generated). */
extern const ProtobufCMessageDescriptor *const mbx_proto_all[];

/** The descriptor of "mbx.v1.NatFlowState" and the like, or NULL. */
const ProtobufCMessageDescriptor *mbx_proto_find(const char *full_name);

#endif /* MBX_PROTO_H */
