/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libmbxctl: a small blocking client of the mbx southbound API, for mbxctl,
 * mbxctld and controllers written in C.
 *
 * Theory of operation: one connection (unix socket or TCP) carries framed
 * calls (proto/mbx_frame.h); mbxctl_send() starts a call, mbxctl_recv()
 * returns its next response frame, decoded, with the Status checked: a
 * non-zero code comes back as its negated errno and a message. Streams
 * (the state Gets, Subscribe) are read frame by frame until more is false.
 * Not thread-safe: one caller per connection.
 */
#ifndef MBXCTL_H
#define MBXCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

#include "mbx/v1/common.pb-c.h"

struct mbxctl;

/**
 * Connect to "unix:PATH" or "HOST:PORT" ("[v6]:PORT").
 * @param token access token sent with every call, or NULL.
 * @return the connection, or NULL with errno set.
 */
struct mbxctl *mbxctl_connect(const char *addr, const char *token);

/** Close and free. */
void mbxctl_close(struct mbxctl *c);

/** Nagle off on a TCP socket: each small frame goes at once. */
void mbxctl_nodelay(int fd);

/** Read an access token from a file (trailing newline removed). @return malloc'd or NULL. */
char *mbxctl_read_token(const char *path);

/**
 * Start a call of @p method ("/mbx.v1.State/GetPerflow").
 * @return its call id (> 0), or -errno.
 */
int64_t mbxctl_send(struct mbxctl *c, const char *method, const ProtobufCMessage *req);

/**
 * Read the next response frame of call @p id and decode it as @p desc.
 * @param resp out: the message (free with protobuf_c_message_free_unpacked).
 * @param more out (may be NULL): more frames of the call follow.
 * @param err out: the Status message or what went wrong.
 * @return 0; -code of a non-zero Status (resp is NULL); -EPROTO, -ECONNRESET.
 */
int mbxctl_recv(struct mbxctl *c, int64_t id, const ProtobufCMessageDescriptor *desc,
		ProtobufCMessage **resp, bool *more, char *err, size_t errlen);

/** As mbxctl_recv(), but a non-zero Status is left to the caller (mbxctl_status()). */
int mbxctl_recv_raw(struct mbxctl *c, int64_t id, const ProtobufCMessageDescriptor *desc,
		    ProtobufCMessage **resp, bool *more, char *err, size_t errlen);

/** The Status of a response: 0, or its -code with its message in @p err. */
int mbxctl_status(const ProtobufCMessage *m, char *err, size_t errlen);

/** A unary call: send, then the one response. Same returns as mbxctl_recv(). */
int mbxctl_call(struct mbxctl *c, const char *method, const ProtobufCMessage *req,
		const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp, char *err,
		size_t errlen);

/**
 * Start a call whose Request is already encoded.
 * @param payload @p len bytes of the method's Request message.
 * @return its call id (> 0), or -errno.
 */
int64_t mbxctl_send_payload(struct mbxctl *c, const char *method, const uint8_t *payload,
			    size_t len);

/**
 * Read the next response frame of whichever call it belongs to, without
 * decoding the Response message.
 * @param id out: the call it answers.
 * @param payload out: the Response message's @p len bytes, valid until the
 *   next receive on @p c.
 * @param more out (may be NULL): more frames of that call follow.
 * @return 0; -EPROTO, -ECONNRESET with a reason in @p err.
 */
int mbxctl_recv_payload(struct mbxctl *c, int64_t *id, const uint8_t **payload, size_t *len,
			bool *more, char *err, size_t errlen);

/**
 * The Status of an encoded Response: 0, or its -code with its message in
 * @p err; -EPROTO if the Response does not decode.
 */
int mbxctl_payload_status(const uint8_t *payload, size_t len, char *err, size_t errlen);

/**
 * Check an encoded StateChunk's wire format (its keys included, not the
 * NF's message) and read its scope.
 * @return 0, or -EINVAL if it does not decode.
 */
int mbxctl_chunk_scan(const uint8_t *chunk, size_t len, int *scope);

/**
 * Print @p m as one line of JSON (no newline): enums by name, bytes fields
 * that hold addresses (4 or 16 bytes, named like an address) as text, other
 * bytes as base64.
 */
void mbxctl_print_json(FILE *f, const ProtobufCMessage *m);

/**
 * The state message types of the instance's NFs, from GetInfo, to decode
 * StateChunk.state: mbxctl_state_types_load() once per connection, then
 * mbxctl_state_type() per chunk (NULL: unknown NF or none at that scope).
 */
struct mbxctl_state_types;
struct mbxctl_state_types *mbxctl_state_types_load(struct mbxctl *c);
const ProtobufCMessageDescriptor *mbxctl_state_type(const struct mbxctl_state_types *t,
						    const char *nf, int scope);
void mbxctl_state_types_free(struct mbxctl_state_types *t);

/**
 * State chunk files (mbxctl get-state -o): an 8-byte magic, then each
 * StateChunk as a 4-byte big-endian length and its bytes.
 */
#define MBXCTL_CHUNK_MAGIC "MBXSTAT1"

/* Moves (move.c). */

#include "mbx/v1/move.pb-c.h"

/** How to move, and where to report progress. */
struct mbxctl_move_opts {
	Mbx__V1__Guarantee guarantee;
	Mbx__V1__MoveMode mode;	 /**< p2p, or through a relay in this process */
	bool copy;		 /**< copy the state: no reroute, no delete */
	uint32_t steer_port;	 /**< the steering port that leads to the destination */
	uint32_t timeout_ms;	 /**< 0: the instances' default */
	uint32_t redirect_limit; /**< packets the source may hold; 0: its default */
	/** Called for each step, with a line for people (may be NULL). */
	void (*progress)(void *arg, Mbx__V1__MovePhase phase, const char *line);
	void *arg;
};

/**
 * Move (or copy) the flows of @p filter from @p src to @p dst: ExpectMove on
 * the destination, StartMove on the source and, once the source reports
 * STATE_SENT, Steer.SetRoute on @p steer (NULL: the caller reroutes).
 * @param summary out: the source's summary (free with
 *   mbx__v1__move_summary__free_unpacked), also when the move failed.
 * @return 0 when the move is done; -errno (the source's status for a failed
 *   move) with a reason in @p err.
 */
int mbxctl_move(struct mbxctl *src, struct mbxctl *dst, struct mbxctl *steer,
		const Mbx__V1__Filter *filter, const struct mbxctl_move_opts *o,
		Mbx__V1__MoveSummary **summary, char *err, size_t errlen);

#endif /* MBXCTL_H */
