/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The protobuf wire format by hand, for the paths that move state in bulk:
 * a million StateChunks are copied from a response into a file, from a file
 * into requests, and from a request into the dataplane's records without
 * ever becoming protobuf-c structures (no allocation per chunk, no second
 * encoding). Everything else uses protobuf-c.
 *
 * Reading accepts what protobuf-c's unpack accepts for these messages and
 * refuses what it refuses: a varint has at most 10 bytes, a length never
 * runs past its buffer, a tag whose first byte names field 0, groups and
 * wire types 6 and 7 are malformed, a known field with the wrong wire type
 * is malformed (but for a bool, which protobuf-c takes with any), unknown
 * fields are skipped, the last occurrence of a field wins and a repeated
 * sub-message merges into the earlier one. Numbers are truncated to their
 * field's width as protobuf-c does; tests/unit/test_messages.c holds both
 * to it. Writing follows protobuf-c's packing of proto3 messages (fields in
 * number order, zero values left out), so that both produce the same bytes.
 *
 * Header only: pure functions over buffers, shared by libmbxctl, mbxd and
 * the NFs' codecs; they never trust a length.
 */
#ifndef MBX_WIRE_H
#define MBX_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/** Wire types. */
enum mbx_wire_type {
	MBX_WIRE_VARINT = 0,
	MBX_WIRE_I64 = 1,
	MBX_WIRE_LEN = 2,
	MBX_WIRE_I32 = 5,
};

/** One field as read by mbx_wire_next(). */
struct mbx_wire_field {
	uint32_t num;	     /**< field number */
	uint8_t type;	     /**< enum mbx_wire_type */
	uint64_t v;	     /**< VARINT, I64, I32: the value */
	bool nz;	     /**< VARINT: a bit set, even past the 64 that v holds */
	const uint8_t *data; /**< LEN: the bytes */
	size_t len;	     /**< LEN: their length */
};

/** Read the varint at @p *p and advance. @return 0, or -1 (truncated, over 10 bytes). */
static inline int
mbx_wire_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	const uint8_t *q = *p;
	uint64_t r = 0;

	if (q < end && *q < 0x80) {
		*v = *q;
		*p = q + 1;
		return 0;
	}
	for (unsigned int shift = 0; shift < 64; shift += 7) {
		uint8_t b;

		if (q >= end)
			return -1;
		b = *q++;
		r |= (uint64_t)(b & 0x7f) << shift;
		if (b < 0x80) {
			*v = r;
			*p = q;
			return 0;
		}
	}
	return -1;
}

/** Does the varint from @p a to @p b have a bit set (a bool's value, as protobuf-c reads it)? */
static inline bool
mbx_wire_varint_nz(const uint8_t *a, const uint8_t *b)
{
	while (a < b)
		if (*a++ & 0x7f)
			return true;
	return false;
}

/**
 * Read the field at @p *p and advance past it. As protobuf-c's unpack: a
 * tag takes at most 5 bytes and its first byte must not say field 0 (a
 * longer encoding of 0 reads as an unknown field 0), a length at most 5
 * bytes and INT_MAX.
 * @return 1 (a field in @p f), 0 at @p end, -1 malformed.
 */
static inline int
mbx_wire_next(const uint8_t **p, const uint8_t *end, struct mbx_wire_field *f)
{
	const uint8_t *q = *p;
	uint32_t tag;
	uint64_t n;
	unsigned int i, max;

	f->v = 0;
	f->nz = false;
	f->data = NULL;
	f->len = 0;
	if (q >= end)
		return 0;
	if ((q[0] & 0xf8) == 0)
		return -1;
	f->type = q[0] & 7;
	tag = (q[0] & 0x7f) >> 3;
	max = end - q < 5 ? (unsigned int)(end - q) : 5;
	for (i = 0; q[i] & 0x80; i++) {
		if (i + 1 >= max)
			return -1;
		tag |= (uint32_t)(q[i + 1] & 0x7f) << (4 + 7 * i);
	}
	f->num = tag;
	q += i + 1;
	switch (f->type) {
	case MBX_WIRE_VARINT:
		f->data = q;
		if (mbx_wire_get_varint(&q, end, &f->v) < 0)
			return -1;
		f->nz = mbx_wire_varint_nz(f->data, q);
		f->data = NULL;
		break;
	case MBX_WIRE_I64:
	case MBX_WIRE_I32:
		n = f->type == MBX_WIRE_I64 ? 8 : 4;
		if ((size_t)(end - q) < n)
			return -1;
		for (i = 0; i < n; i++)
			f->v |= (uint64_t)q[i] << (8 * i);
		q += n;
		break;
	case MBX_WIRE_LEN:
		max = end - q < 5 ? (unsigned int)(end - q) : 5;
		for (i = 0, n = 0;; i++) {
			if (i >= max)
				return -1;
			n |= (uint64_t)(q[i] & 0x7f) << (7 * i);
			if (!(q[i] & 0x80))
				break;
		}
		q += i + 1;
		if (n > INT32_MAX || n > (uint64_t)(end - q))
			return -1;
		f->data = q;
		f->len = (size_t)n;
		q += n;
		break;
	default:
		return -1; /* groups (3, 4) and 6, 7 */
	}
	*p = q;
	return 1;
}

/**
 * A bool field's value as protobuf-c reads it: from whatever wire type it
 * came with (any non-zero bit but the continuation bits of its bytes).
 */
static inline bool
mbx_wire_bool(const struct mbx_wire_field *f)
{
	if (f->type == MBX_WIRE_LEN)
		return f->len != 0;
	if (f->type == MBX_WIRE_VARINT)
		return f->nz;
	return (f->v & 0x7f7f7f7f7f7f7f7fULL) != 0;
}

/** Is every field of @p buf well formed (not looking into sub-messages)? */
static inline bool
mbx_wire_valid(const uint8_t *buf, size_t len)
{
	const uint8_t *p = buf != NULL ? buf : (const uint8_t *)"", *end = p + len;
	struct mbx_wire_field f;
	int rc;

	while ((rc = mbx_wire_next(&p, end, &f)) > 0)
		;
	return rc == 0;
}

/*
 * Fast paths: every encoder writes a message's fields in number order, so a
 * reader first takes the fields it expects where they usually are (one
 * predictable byte compare each) and goes field by field with
 * mbx_wire_next() only for what is left (other orders, unknown fields,
 * repeats). Both give the same result: fields are taken in the order they
 * come.
 */

/**
 * Take a varint field with the one-byte tag @p tag at @p *p, if it is there.
 * @return 1 (taken, @p *p advanced), 0 (another field, or the end), -1 malformed.
 */
static inline int
mbx_wire_take_varint(const uint8_t **p, const uint8_t *end, uint8_t tag, uint64_t *v)
{
	const uint8_t *q;

	if (*p >= end || **p != tag)
		return 0;
	q = *p + 1;
	if (mbx_wire_get_varint(&q, end, v) < 0)
		return -1;
	*p = q;
	return 1;
}

/** As mbx_wire_take_varint(), for a length-delimited field. */
static inline int
mbx_wire_take_len(const uint8_t **p, const uint8_t *end, uint8_t tag, const uint8_t **data,
		  size_t *len)
{
	const uint8_t *q;
	uint64_t n;

	if (*p >= end || **p != tag)
		return 0;
	q = *p + 1;
	if (mbx_wire_get_varint(&q, end, &n) < 0 || q - *p > 6 || n > INT32_MAX ||
	    n > (uint64_t)(end - q))
		return -1;
	*data = q;
	*len = (size_t)n;
	*p = q + n;
	return 1;
}

/** Bytes of the varint for @p v. */
static inline size_t
mbx_wire_varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/** Write @p v as a varint at @p out. @return the byte after it. */
static inline uint8_t *
mbx_wire_put_varint(uint8_t *out, uint64_t v)
{
	while (v >= 0x80) {
		*out++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*out++ = (uint8_t)v;
	return out;
}

/** Write a tag. @return the byte after it. */
static inline uint8_t *
mbx_wire_put_tag(uint8_t *out, uint32_t num, enum mbx_wire_type type)
{
	return mbx_wire_put_varint(out, (uint64_t)num << 3 | type);
}

/** Bytes of a varint field with value @p v (proto3: 0 when @p v is 0). */
static inline size_t
mbx_wire_uint_size(uint32_t num, uint64_t v)
{
	return v == 0 ? 0 : mbx_wire_varint_size((uint64_t)num << 3) + mbx_wire_varint_size(v);
}

/** Write a varint field, left out when @p v is 0 (proto3). @return the byte after it. */
static inline uint8_t *
mbx_wire_put_uint(uint8_t *out, uint32_t num, uint64_t v)
{
	if (v == 0)
		return out;
	out = mbx_wire_put_tag(out, num, MBX_WIRE_VARINT);
	return mbx_wire_put_varint(out, v);
}

/** Bytes of a length-delimited field of @p len bytes (written even when empty). */
static inline size_t
mbx_wire_len_size(uint32_t num, size_t len)
{
	return mbx_wire_varint_size((uint64_t)num << 3) + mbx_wire_varint_size(len) + len;
}

/** Write the tag and length of a length-delimited field. @return where its bytes go. */
static inline uint8_t *
mbx_wire_put_len_hdr(uint8_t *out, uint32_t num, size_t len)
{
	out = mbx_wire_put_tag(out, num, MBX_WIRE_LEN);
	return mbx_wire_put_varint(out, len);
}

/** Write a length-delimited field. @return the byte after it. */
static inline uint8_t *
mbx_wire_put_bytes(uint8_t *out, uint32_t num, const void *data, size_t len)
{
	out = mbx_wire_put_len_hdr(out, num, len);
	memcpy(out, data, len);
	return out + len;
}

/*
 * mbx.v1.FlowKey and mbx.v1.StateChunk (common.proto), read without
 * decoding: the fields point into the buffer read.
 */

/** A FlowKey as on the wire. */
struct mbx_wire_key {
	bool present;	    /**< the field was there (possibly empty) */
	int32_t family;	    /**< enum Family */
	uint32_t proto;	    /**< as sent, not range-checked */
	const uint8_t *src; /**< src.len bytes; NULL when absent */
	size_t src_len;
	const uint8_t *dst;
	size_t dst_len;
	uint32_t sport;
	uint32_t dport;
};

/** A StateChunk as on the wire. */
struct mbx_wire_chunk {
	const char *nf; /**< not NUL-terminated: nf_len bytes */
	size_t nf_len;
	int32_t scope; /**< enum Scope */
	struct mbx_wire_key key;
	struct mbx_wire_key reply_key;
	uint32_t version;
	const uint8_t *state;
	size_t state_len;
	bool from_outside;
};

/* FlowKey field by field, from @p p on. */
static inline int
mbx_wire_key_fields(const uint8_t *p, const uint8_t *end, struct mbx_wire_key *k)
{
	struct mbx_wire_field f;
	int rc;

	while ((rc = mbx_wire_next(&p, end, &f)) > 0) {
		uint8_t want = f.num == 3 || f.num == 4 ? MBX_WIRE_LEN : MBX_WIRE_VARINT;

		if (f.num == 0 || f.num > 6)
			continue; /* unknown: skipped */
		if (f.type != want)
			return -1;
		switch (f.num) {
		case 1:
			k->family = (int32_t)(uint32_t)f.v;
			break;
		case 2:
			k->proto = (uint32_t)f.v;
			break;
		case 3:
			k->src = f.data;
			k->src_len = f.len;
			break;
		case 4:
			k->dst = f.data;
			k->dst_len = f.len;
			break;
		case 5:
			k->sport = (uint32_t)f.v;
			break;
		default:
			k->dport = (uint32_t)f.v;
			break;
		}
	}
	return rc;
}

/**
 * Read a FlowKey into @p k. A key that comes again merges into the earlier
 * one as protobuf-c merges sub-messages: its numbers replace the earlier
 * ones (absent is 0), its bytes replace the earlier ones unless empty.
 * @return 0 or -1 (malformed).
 */
static inline int
mbx_wire_key_parse(const uint8_t *buf, size_t len, struct mbx_wire_key *k)
{
	const uint8_t *p = buf != NULL ? buf : (const uint8_t *)"", *end = p + len;
	struct mbx_wire_key t, *o = k->present ? &t : k;
	uint64_t v;
	int rc;

	/* straight into @p k unless it merges (no copy of a half-written struct) */
	memset(o, 0, sizeof(*o));
	o->present = true;
	if ((rc = mbx_wire_take_varint(&p, end, 0x08, &v)) > 0)
		o->family = (int32_t)(uint32_t)v;
	if (rc >= 0 && (rc = mbx_wire_take_varint(&p, end, 0x10, &v)) > 0)
		o->proto = (uint32_t)v;
	if (rc >= 0)
		rc = mbx_wire_take_len(&p, end, 0x1a, &o->src, &o->src_len);
	if (rc >= 0)
		rc = mbx_wire_take_len(&p, end, 0x22, &o->dst, &o->dst_len);
	if (rc >= 0 && (rc = mbx_wire_take_varint(&p, end, 0x28, &v)) > 0)
		o->sport = (uint32_t)v;
	if (rc >= 0 && (rc = mbx_wire_take_varint(&p, end, 0x30, &v)) > 0)
		o->dport = (uint32_t)v;
	if (rc < 0 || (p != end && mbx_wire_key_fields(p, end, o) < 0))
		return -1;
	if (o == &t) {
		if (t.src_len == 0) {
			t.src = k->src;
			t.src_len = k->src_len;
		}
		if (t.dst_len == 0) {
			t.dst = k->dst;
			t.dst_len = k->dst_len;
		}
		*k = t;
	}
	return 0;
}

/* StateChunk field by field, from @p p on. */
static inline int
mbx_wire_chunk_fields(const uint8_t *p, const uint8_t *end, struct mbx_wire_chunk *c)
{
	/* from_outside, a bool, is taken with any wire type, as protobuf-c does */
	static const uint8_t want[8] = {0,
					MBX_WIRE_LEN,
					MBX_WIRE_VARINT,
					MBX_WIRE_LEN,
					MBX_WIRE_LEN,
					MBX_WIRE_VARINT,
					MBX_WIRE_LEN,
					0xff};
	struct mbx_wire_field f;
	int rc;

	while ((rc = mbx_wire_next(&p, end, &f)) > 0) {
		if (f.num == 0 || f.num > 7)
			continue;
		if (f.type != want[f.num] && want[f.num] != 0xff)
			return -1;
		switch (f.num) {
		case 1:
			c->nf = (const char *)f.data;
			c->nf_len = f.len;
			break;
		case 2:
			c->scope = (int32_t)(uint32_t)f.v;
			break;
		case 3:
		case 4:
			if (mbx_wire_key_parse(f.data, f.len,
					       f.num == 3 ? &c->key : &c->reply_key) < 0)
				return -1;
			break;
		case 5:
			c->version = (uint32_t)f.v;
			break;
		case 6:
			c->state = f.data;
			c->state_len = f.len;
			break;
		default:
			c->from_outside = mbx_wire_bool(&f);
			break;
		}
	}
	return rc;
}

/**
 * Read a StateChunk. Only the wire format is checked here; what the values
 * mean (an NF's name, a key's family) is the reader's to judge.
 * @return 0, or -1 if it is malformed.
 */
static inline int
mbx_wire_chunk_parse(const uint8_t *buf, size_t len, struct mbx_wire_chunk *c)
{
	/* an empty bytes field may come as NULL */
	const uint8_t *p = buf != NULL ? buf : (const uint8_t *)"", *end = p + len, *d;
	size_t n;
	uint64_t v;
	int rc;

	memset(c, 0, sizeof(*c));
	c->nf = "";
	if ((rc = mbx_wire_take_len(&p, end, 0x0a, &d, &n)) > 0) {
		c->nf = (const char *)d;
		c->nf_len = n;
	}
	if (rc >= 0 && (rc = mbx_wire_take_varint(&p, end, 0x10, &v)) > 0)
		c->scope = (int32_t)(uint32_t)v;
	if (rc >= 0 && (rc = mbx_wire_take_len(&p, end, 0x1a, &d, &n)) > 0)
		rc = mbx_wire_key_parse(d, n, &c->key) < 0 ? -1 : 1;
	if (rc >= 0 && (rc = mbx_wire_take_len(&p, end, 0x22, &d, &n)) > 0)
		rc = mbx_wire_key_parse(d, n, &c->reply_key) < 0 ? -1 : 1;
	if (rc >= 0 && (rc = mbx_wire_take_varint(&p, end, 0x28, &v)) > 0)
		c->version = (uint32_t)v;
	if (rc >= 0)
		rc = mbx_wire_take_len(&p, end, 0x32, &c->state, &c->state_len);
	d = p;
	if (rc >= 0 && (rc = mbx_wire_take_varint(&p, end, 0x38, &v)) > 0)
		c->from_outside = mbx_wire_varint_nz(d + 1, p);
	if (rc < 0)
		return -1;
	return p == end ? 0 : mbx_wire_chunk_fields(p, end, c);
}

/**
 * Read the Status (field 1) of any Response message: @p code and, when not
 * NULL, its message (not NUL-terminated). An absent Status is code 0.
 * @return 0, or -1 if the message is malformed.
 */
static inline int
mbx_wire_status(const uint8_t *buf, size_t len, int32_t *code, const char **msg, size_t *msg_len)
{
	const uint8_t *p = buf != NULL ? buf : (const uint8_t *)"", *end = p + len;
	struct mbx_wire_field f;
	int rc;

	*code = 0;
	if (msg != NULL) {
		*msg = "";
		*msg_len = 0;
	}
	while ((rc = mbx_wire_next(&p, end, &f)) > 0) {
		const uint8_t *q, *qend;
		struct mbx_wire_field g;
		int r2;

		if (f.num != 1)
			continue;
		if (f.type != MBX_WIRE_LEN)
			return -1;
		q = f.data;
		qend = f.data + f.len;
		while ((r2 = mbx_wire_next(&q, qend, &g)) > 0) {
			if (g.num == 1 && g.type == MBX_WIRE_VARINT) {
				*code = (int32_t)(uint32_t)g.v;
			} else if (g.num == 2 && g.type == MBX_WIRE_LEN) {
				if (msg != NULL) {
					*msg = (const char *)g.data;
					*msg_len = g.len;
				}
			} else if (g.num == 1 || g.num == 2) {
				return -1;
			}
		}
		if (r2 < 0)
			return -1;
	}
	return rc;
}

/**
 * The payload of an mbx.v1.Envelope (common.proto), in place: what
 * protobuf-c would copy out, for a stream that needs nothing else of it.
 * @return 0, or -1 if the envelope is malformed.
 */
static inline int
mbx_wire_envelope_payload(const uint8_t *buf, size_t len, const uint8_t **payload,
			  size_t *payload_len)
{
	/* the wire type of fields 1..5: call_id, method, payload, token, more (a bool, taken
	 * with any wire type, as protobuf-c does) */
	static const uint8_t type[] = {MBX_WIRE_VARINT, MBX_WIRE_LEN, MBX_WIRE_LEN, MBX_WIRE_LEN,
				       0xff};
	const uint8_t *p = buf, *end = buf + len;
	struct mbx_wire_field f;
	int rc;

	*payload = buf;
	*payload_len = 0;
	while ((rc = mbx_wire_next(&p, end, &f)) > 0) {
		if (f.num >= 1 && f.num <= sizeof(type) && f.type != type[f.num - 1] &&
		    type[f.num - 1] != 0xff)
			return -1;
		if (f.num == 3) {
			*payload = f.data;
			*payload_len = f.len;
		}
	}
	return rc;
}

/*
 * mbx.v1.PeerMessage (move.proto), the bulk of a move's peer stream: its
 * body's PeerState chunks and PeerPackets packets read in place.
 */

/** PeerMessage fields: move_id, then the oneof body (PeerHello .. PeerAbort). */
enum { MBX_WIRE_PEER_MOVE_ID = 1, MBX_WIRE_PEER_BODY_FIRST = 2, MBX_WIRE_PEER_BODY_LAST = 8 };

/**
 * Which body a PeerMessage has: the oneof field that came last (protobuf-c
 * keeps that one; 0: none), and @p from, where the run of its occurrences
 * starts (protobuf-c merges those into one message).
 * @return 0, or -1 if the message is malformed.
 */
static inline int
mbx_wire_peer_body(const uint8_t *buf, size_t len, uint32_t *body, const uint8_t **from)
{
	const uint8_t *p = buf, *end = buf + len, *at = p;
	struct mbx_wire_field f;
	int rc;

	*body = 0;
	*from = buf;
	while ((rc = mbx_wire_next(&p, end, &f)) > 0) {
		if (f.num == MBX_WIRE_PEER_MOVE_ID && f.type != MBX_WIRE_VARINT)
			return -1;
		if (f.num >= MBX_WIRE_PEER_BODY_FIRST && f.num <= MBX_WIRE_PEER_BODY_LAST) {
			if (f.type != MBX_WIRE_LEN)
				return -1;
			if (f.num != *body) {
				*body = f.num;
				*from = at;
			}
		}
		at = p;
	}
	return rc;
}

/**
 * The items of a body whose messages are one repeated message field 1
 * (PeerState's chunks, PeerPackets' packets), in order over every
 * occurrence of the body from mbx_wire_peer_body()'s @p from on.
 */
struct mbx_wire_items {
	const uint8_t *p, *end;	 /* the rest of the PeerMessage */
	const uint8_t *q, *qend; /* the rest of the body occurrence being read */
	uint32_t body;
};

static inline void
mbx_wire_items_init(struct mbx_wire_items *it, uint32_t body, const uint8_t *from,
		    const uint8_t *end)
{
	it->p = from;
	it->end = end;
	it->q = it->qend = NULL;
	it->body = body;
}

/** The next item's bytes. @return 1, 0 at the end, -1 if the message is malformed. */
static inline int
mbx_wire_items_next(struct mbx_wire_items *it, const uint8_t **data, size_t *len)
{
	struct mbx_wire_field f;
	int rc;

	for (;;) {
		while (it->q != NULL && (rc = mbx_wire_next(&it->q, it->qend, &f)) != 0) {
			if (rc < 0 || (f.num == 1 && f.type != MBX_WIRE_LEN))
				return -1;
			if (f.num == 1) {
				*data = f.data;
				*len = f.len;
				return 1;
			}
		}
		do {
			rc = mbx_wire_next(&it->p, it->end, &f);
			if (rc <= 0)
				return rc;
		} while (f.num != it->body);
		it->q = f.data;
		it->qend = f.data + f.len;
	}
}

/**
 * Read a PeerPacket: the frame (1) and the port it came in on (2).
 * @return 0, or -1 if it is malformed.
 */
static inline int
mbx_wire_peer_packet(const uint8_t *p, size_t len, const uint8_t **frame, size_t *frame_len,
		     uint32_t *port)
{
	const uint8_t *end = p + len;
	struct mbx_wire_field f;
	int rc;

	*frame = NULL;
	*frame_len = 0;
	*port = 0;
	while ((rc = mbx_wire_next(&p, end, &f)) > 0) {
		if (f.num == 1 && f.type == MBX_WIRE_LEN) {
			*frame = f.data;
			*frame_len = f.len;
		} else if (f.num == 2 && f.type == MBX_WIRE_VARINT) {
			*port = (uint32_t)f.v;
		} else if (f.num == 1 || f.num == 2) {
			return -1;
		}
	}
	return rc;
}

#endif /* MBX_WIRE_H */
