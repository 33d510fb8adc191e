/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the bytes a client sends, read as the server reads them
 * (frame header, envelope), and each envelope's payload decoded as every
 * request mbxd accepts. The hand-written StateChunk and Status readers of
 * mbx_wire.h (the bulk state path) run on each payload and on each of its
 * length-delimited fields, and must accept and refuse what protobuf-c does,
 * with the same values; so must the peer stream's PeerMessage reader, on
 * each payload, and the peer stream's in-place envelope reader on each
 * frame. Built by the meson option -Dfuzz=true with clang.
 */
#include <stddef.h>
#include <stdint.h>

#include "mbx/v1/dataplane.pb-c.h"
#include "mbx/v1/events.pb-c.h"
#include "mbx/v1/move.pb-c.h"
#include "mbx/v1/nat.pb-c.h"
#include "mbx/v1/state.pb-c.h"
#include "mbx_frame.h"
#include "mbx_wire.h"

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

/* mbx_wire_chunk_parse() against protobuf-c on the same bytes. */
static void
check_chunk(const uint8_t *buf, size_t len)
{
	Mbx__V1__StateChunk *m = mbx__v1__state_chunk__unpack(NULL, len, buf);
	struct mbx_wire_chunk c;
	int rc = mbx_wire_chunk_parse(buf, len, &c);

	if ((m != NULL) != (rc == 0))
		__builtin_trap();
	if (m == NULL)
		return;
	/* protobuf-c's string ends at a NUL inside it */
	size_t nf_len = strnlen(c.nf, c.nf_len);

	if (c.scope != (int32_t)m->scope || c.version != m->version ||
	    c.from_outside != (bool)m->from_outside || nf_len != strlen(m->nf) ||
	    memcmp(c.nf, m->nf, nf_len) != 0 || c.state_len != m->state.len)
		__builtin_trap();
	mbx__v1__state_chunk__free_unpacked(m, NULL);
}

/*
 * The peer stream's reader (mbx_wire_peer_body(), the items of a PeerState
 * or PeerPackets body, each chunk or packet) against protobuf-c: what it
 * accepts it reads with protobuf-c's values, and it accepts everything
 * protobuf-c does. (It may accept more: body occurrences that a later
 * member replaced are not read.)
 */
static void
check_peer(const uint8_t *buf, size_t len)
{
	Mbx__V1__PeerMessage *m = mbx__v1__peer_message__unpack(NULL, len, buf);
	const uint8_t *p = buf != NULL ? buf : (const uint8_t *)"", *from, *item, *frame;
	struct mbx_wire_items it;
	size_t n = 0, item_len, frame_len;
	uint32_t body, port;
	bool ok = mbx_wire_peer_body(p, len, &body, &from) == 0;
	int rc = 0;

	if (ok && (body == MBX__V1__PEER_MESSAGE__BODY_STATE ||
		   body == MBX__V1__PEER_MESSAGE__BODY_PACKETS)) {
		mbx_wire_items_init(&it, body, from, p + len);
		while (ok && (rc = mbx_wire_items_next(&it, &item, &item_len)) > 0) {
			if (body == MBX__V1__PEER_MESSAGE__BODY_STATE) {
				struct mbx_wire_chunk c;

				ok = mbx_wire_chunk_parse(item, item_len, &c) == 0;
			} else {
				ok = mbx_wire_peer_packet(item, item_len, &frame, &frame_len,
							  &port) == 0;
				if (ok && m != NULL &&
				    (n >= m->packets->n_packets ||
				     m->packets->packets[n]->in_port != port ||
				     m->packets->packets[n]->frame.len != frame_len ||
				     (frame_len > 0 && memcmp(m->packets->packets[n]->frame.data,
							      frame, frame_len) != 0)))
					__builtin_trap();
			}
			n++;
		}
		ok = ok && rc == 0;
	}
	if (m == NULL)
		return;
	if (!ok || body != (uint32_t)m->body_case)
		__builtin_trap();
	if ((body == MBX__V1__PEER_MESSAGE__BODY_STATE && n != m->state->n_chunks) ||
	    (body == MBX__V1__PEER_MESSAGE__BODY_PACKETS && n != m->packets->n_packets))
		__builtin_trap();
	mbx__v1__peer_message__free_unpacked(m, NULL);
}

static void
check_wire(const uint8_t *buf, size_t len)
{
	const uint8_t *p = buf != NULL ? buf : (const uint8_t *)"", *end = p + len;
	struct mbx_wire_field f;
	const char *msg;
	size_t msg_len;
	int32_t code;

	check_chunk(buf, len);
	check_peer(buf, len);
	mbx_wire_status(buf, len, &code, &msg, &msg_len);
	while (mbx_wire_next(&p, end, &f) > 0)
		if (f.type == MBX_WIRE_LEN)
			check_chunk(f.data, f.len);
}

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
		/* the peer stream's in-place envelope reader agrees with protobuf-c */
		{
			const uint8_t *payload;
			size_t payload_len;
			int rc = mbx_wire_envelope_payload(data + off + MBX_FRAME_HDR_LEN,
							   (size_t)n - MBX_FRAME_HDR_LEN, &payload,
							   &payload_len);

			if ((e != NULL) != (rc == 0) ||
			    (e != NULL && (payload_len != e->payload.len ||
					   (payload_len > 0 &&
					    memcmp(payload, e->payload.data, payload_len) != 0))))
				__builtin_trap();
		}
		if (e == NULL)
			break;
		check_wire(e->payload.data, e->payload.len);
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
