/* SPDX-License-Identifier: BSD-3-Clause */
/* The southbound frame codec: see mbx_frame.h. */
#include <errno.h>

#include "mbx_frame.h"

long
mbx_frame_peek(const uint8_t *buf, size_t len, uint32_t max)
{
	uint32_t n;

	if (len < MBX_FRAME_HDR_LEN)
		return 0;
	if (buf[0] != 0)
		return -EPROTO;
	n = (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 8 | buf[4];
	if (n > max)
		return -EMSGSIZE;
	return (long)n + MBX_FRAME_HDR_LEN;
}

Mbx__V1__Envelope *
mbx_frame_unpack(const uint8_t *frame, size_t len)
{
	if (len < MBX_FRAME_HDR_LEN)
		return NULL;
	return mbx__v1__envelope__unpack(NULL, len - MBX_FRAME_HDR_LEN, frame + MBX_FRAME_HDR_LEN);
}

size_t
mbx_frame_size(const Mbx__V1__Envelope *env)
{
	return MBX_FRAME_HDR_LEN + mbx__v1__envelope__get_packed_size(env);
}

size_t
mbx_frame_pack(const Mbx__V1__Envelope *env, uint8_t *out)
{
	size_t n = mbx__v1__envelope__pack(env, out + MBX_FRAME_HDR_LEN);

	out[0] = 0;
	out[1] = (uint8_t)(n >> 24);
	out[2] = (uint8_t)(n >> 16);
	out[3] = (uint8_t)(n >> 8);
	out[4] = (uint8_t)n;
	return n + MBX_FRAME_HDR_LEN;
}
