/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The southbound frame: a gRPC Length-Prefixed-Message (1 flag byte, a
 * 4-byte big-endian length, the bytes) whose bytes are an mbx.v1.Envelope.
 * Pure functions over buffers, shared by the server in mbxd, the peer
 * channel, libmbxctl and the fuzzer; they never trust a length.
 */
#ifndef MBX_FRAME_H
#define MBX_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "mbx/v1/common.pb-c.h"

#define MBX_FRAME_HDR_LEN     5
#define MBX_FRAME_MAX_DEFAULT (16u << 20)

/**
 * Look at the start of a byte stream.
 * @return the whole frame's size (header included) once the header is in,
 *   0 when fewer than MBX_FRAME_HDR_LEN bytes are there, -EMSGSIZE when the
 *   message is longer than @p max, -EPROTO for a flag other than 0
 *   (compression is not supported).
 */
long mbx_frame_peek(const uint8_t *buf, size_t len, uint32_t max);

/**
 * Decode a whole frame (as sized by mbx_frame_peek()).
 * @return the envelope (free with mbx__v1__envelope__free_unpacked(e, NULL)),
 *   or NULL if it does not decode.
 */
Mbx__V1__Envelope *mbx_frame_unpack(const uint8_t *frame, size_t len);

/** Bytes mbx_frame_pack() writes for @p env. */
size_t mbx_frame_size(const Mbx__V1__Envelope *env);

/** Write the header and @p env to @p out (mbx_frame_size() bytes). @return bytes written. */
size_t mbx_frame_pack(const Mbx__V1__Envelope *env, uint8_t *out);

#endif /* MBX_FRAME_H */
