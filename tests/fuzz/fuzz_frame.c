/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the bytes a client sends, read as the server reads them
 * (frame header, envelope), and each envelope's payload decoded as every
 * request mbxd accepts. Built by the meson option -Dfuzz=true with clang.
 */
#include <stddef.h>
#include <stdint.h>

#include "mbx/v1/dataplane.pb-c.h"
#include "mbx/v1/events.pb-c.h"
#include "mbx/v1/nat.pb-c.h"
#include "mbx/v1/state.pb-c.h"
#include "mbx_frame.h"

static const ProtobufCMessageDescriptor *const requests[] = {
	&mbx__v1__get_info_request__descriptor,	     &mbx__v1__get_stats_request__descriptor,
	&mbx__v1__get_perflow_request__descriptor,   &mbx__v1__put_perflow_request__descriptor,
	&mbx__v1__del_perflow_request__descriptor,   &mbx__v1__get_multiflow_request__descriptor,
	&mbx__v1__put_multiflow_request__descriptor, &mbx__v1__del_multiflow_request__descriptor,
	&mbx__v1__get_allflows_request__descriptor,  &mbx__v1__put_allflows_request__descriptor,
	&mbx__v1__enable_events_request__descriptor, &mbx__v1__disable_events_request__descriptor,
	&mbx__v1__subscribe_request__descriptor,     &mbx__v1__nat_flow_state__descriptor,
	&mbx__v1__nat_host_ports__descriptor,	     &mbx__v1__nat_pool__descriptor,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (off < size) {
		long n = mbx_frame_peek(data + off, size - off, 1u << 20);
		Mbx__V1__Envelope *e;

		if (n <= 0 || (size_t)n > size - off)
			break;
		e = mbx_frame_unpack(data + off, (size_t)n);
		if (e == NULL)
			break;
		for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
			ProtobufCMessage *m = protobuf_c_message_unpack(
				requests[i], NULL, e->payload.len, e->payload.data);

			if (m != NULL)
				protobuf_c_message_free_unpacked(m, NULL);
		}
		mbx__v1__envelope__free_unpacked(e, NULL);
		off += (size_t)n;
	}
	return 0;
}
