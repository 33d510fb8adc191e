/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Every message of proto/ round-trips: filled field by field through its
 * descriptor (nested messages and repeated fields included), packed,
 * unpacked and packed again to the same bytes. The list of messages is
 * generated from the protoc-c headers, so a new message is covered at once.
 *
 * The hand-written wire reader (mbx_wire.h) reads StateChunks as
 * protobuf-c does: the same values from the same bytes, in the order every
 * encoder writes and in any other, and the same verdict on damaged bytes.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mbx/v1/state.pb-c.h"
#include "mbx_proto.h"
#include "mbx_wire.h"

static unsigned int seed = 1;

static uint32_t
next(void)
{
	seed = seed * 1103515245u + 12345u;
	return seed >> 8;
}

static size_t
elem_size(const ProtobufCFieldDescriptor *fd)
{
	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_ENUM:
		return sizeof(int);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default:
		return 4;
	}
}

static ProtobufCMessage *fill(const ProtobufCMessageDescriptor *d, int depth);

static void
fill_value(const ProtobufCFieldDescriptor *fd, void *v, int depth)
{
	switch (fd->type) {
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *ed = fd->descriptor;

		*(int *)v = ed->values[next() % ed->n_values].value;
		break;
	}
	case PROTOBUF_C_TYPE_BOOL:
		*(protobuf_c_boolean *)v = 1;
		break;
	case PROTOBUF_C_TYPE_STRING: {
		char *s = malloc(8);

		snprintf(s, 8, "s%u", next() % 1000);
		*(char **)v = s;
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData *b = v;

		b->len = 1 + next() % 16;
		b->data = malloc(b->len);
		for (size_t i = 0; i < b->len; i++)
			b->data[i] = (uint8_t)next();
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		*(ProtobufCMessage **)v = depth < 3 ? fill(fd->descriptor, depth + 1) : NULL;
		break;
	default:
		if (elem_size(fd) == 8)
			*(uint64_t *)v = 1 + ((uint64_t)next() << 20 | next());
		else
			*(uint32_t *)v = 1 + next() % 100000;
		break;
	}
}

static ProtobufCMessage *
fill(const ProtobufCMessageDescriptor *d, int depth)
{
	ProtobufCMessage *m = calloc(1, d->sizeof_message);

	d->message_init(m);
	for (unsigned int i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];
		char *at = (char *)m + fd->offset;

		if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = depth < 3 ? 1 + next() % 3 : 0;
			char *arr = calloc(n + 1, elem_size(fd));

			for (size_t k = 0; k < n; k++) {
				fill_value(fd, arr + k * elem_size(fd), depth);
				/* a repeated message must not hold NULL */
				if (fd->type == PROTOBUF_C_TYPE_MESSAGE &&
				    *(void **)(arr + k * elem_size(fd)) == NULL)
					*(void **)(arr + k * elem_size(fd)) =
						fill(fd->descriptor, 9);
			}
			*(size_t *)((char *)m + fd->quantifier_offset) = n;
			*(char **)at = arr;
		} else {
			fill_value(fd, at, depth);
		}
	}
	return m;
}

START_TEST(every_message_round_trips)
{
	unsigned int n = 0;

	for (const ProtobufCMessageDescriptor *const *d = mbx_proto_all; *d != NULL; d++, n++) {
		for (int round = 0; round < 5; round++) {
			ProtobufCMessage *m = fill(*d, 0), *back;
			size_t len = protobuf_c_message_get_packed_size(m);
			uint8_t *a = malloc(len + 1), *b = malloc(len + 1);

			ck_assert_uint_eq(protobuf_c_message_pack(m, a), len);
			ck_assert_msg(protobuf_c_message_check(m), "%s fill invalid", (*d)->name);
			back = protobuf_c_message_unpack(*d, NULL, len, a);
			ck_assert_msg(back != NULL, "%s does not unpack", (*d)->name);
			ck_assert_uint_eq(protobuf_c_message_get_packed_size(back), len);
			protobuf_c_message_pack(back, b);
			ck_assert_msg(memcmp(a, b, len) == 0, "%s changed in a round trip",
				      (*d)->name);
			/* truncated input never decodes into garbage silently */
			for (size_t cut = 0; cut < len; cut += 1 + len / 7) {
				ProtobufCMessage *t = protobuf_c_message_unpack(*d, NULL, cut, a);

				if (t != NULL)
					protobuf_c_message_free_unpacked(t, NULL);
			}
			protobuf_c_message_free_unpacked(back, NULL);
			free(a);
			free(b);
			/* the filled tree was malloc'd piecewise: leak it, the process is short */
		}
	}
	ck_assert_uint_ge(n, 40); /* every service's requests, responses and the NF messages */
}
END_TEST

/* A random FlowKey, fields set or not, values in range or not. */
static Mbx__V1__FlowKey *
rand_key(uint8_t *src, uint8_t *dst)
{
	static const int fam[] = {0, 4, 6, 5, -1};
	static const size_t lens[] = {0, 4, 16, 3};
	Mbx__V1__FlowKey *k = calloc(1, sizeof(*k));

	mbx__v1__flow_key__init(k);
	k->family = (Mbx__V1__Family)fam[next() % 5];
	k->proto = next() % 4 == 0 ? 300 : next() % 256;
	k->src = (ProtobufCBinaryData){lens[next() % 4], src};
	k->dst = (ProtobufCBinaryData){lens[next() % 4], dst};
	k->sport = next() % 5 == 0 ? 70000 + next() : next() % 65536;
	k->dport = next() % 3 == 0 ? 0 : next() % 65536;
	for (int i = 0; i < 16; i++)
		src[i] = (uint8_t)next(), dst[i] = (uint8_t)next();
	return k;
}

static void
key_same(const Mbx__V1__FlowKey *pb, const struct mbx_wire_key *w)
{
	ck_assert_int_eq(pb != NULL, w->present);
	if (pb == NULL)
		return;
	ck_assert_int_eq((int32_t)pb->family, w->family);
	ck_assert_uint_eq(pb->proto, w->proto);
	ck_assert_uint_eq(pb->src.len, w->src_len);
	ck_assert_uint_eq(pb->dst.len, w->dst_len);
	ck_assert(pb->src.len == 0 || memcmp(pb->src.data, w->src, w->src_len) == 0);
	ck_assert(pb->dst.len == 0 || memcmp(pb->dst.data, w->dst, w->dst_len) == 0);
	ck_assert_uint_eq(pb->sport, w->sport);
	ck_assert_uint_eq(pb->dport, w->dport);
}

/* Read @p buf both ways: the same verdict, and the same values when it decodes. */
static bool
read_alike(const uint8_t *buf, size_t len)
{
	Mbx__V1__StateChunk *pb = mbx__v1__state_chunk__unpack(NULL, len, buf);
	struct mbx_wire_chunk w;
	int rc = mbx_wire_chunk_parse(buf, len, &w);

	if ((pb != NULL) != (rc == 0)) {
		fprintf(stderr, "bytes:");
		for (size_t i = 0; i < len; i++)
			fprintf(stderr, " %02x", buf[i]);
		fprintf(stderr, "\n");
	}
	ck_assert_msg((pb != NULL) == (rc == 0), "protobuf-c %s, mbx_wire %s (%zu bytes)",
		      pb ? "decodes" : "refuses", rc == 0 ? "decodes" : "refuses", len);
	if (pb == NULL)
		return false;
	/* protobuf-c keeps every byte of a string (a NUL in it ends it for strcmp) */
	ck_assert(memcmp(pb->nf, w.nf, w.nf_len) == 0 && pb->nf[w.nf_len] == '\0');
	ck_assert_int_eq((int32_t)pb->scope, w.scope);
	key_same(pb->key, &w.key);
	key_same(pb->reply_key, &w.reply_key);
	ck_assert_uint_eq(pb->version, w.version);
	ck_assert_uint_eq(pb->state.len, w.state_len);
	ck_assert(w.state_len == 0 || memcmp(pb->state.data, w.state, w.state_len) == 0);
	ck_assert_int_eq(pb->from_outside, w.from_outside);
	mbx__v1__state_chunk__free_unpacked(pb, NULL);
	return true;
}

/*
 * Damaged copies of @p buf read both ways by @p alike: cut short at random
 * lengths, then eight times with a byte or two changed (some to 0xff or
 * 0x80, a varint's continuation). Counts what decoded and what was refused.
 */
static void
damaged_alike(const uint8_t *buf, size_t len, bool (*alike)(const uint8_t *buf, size_t len),
	      unsigned int *decoded, unsigned int *refused)
{
	uint8_t tmp[1024];

	ck_assert_uint_le(len, sizeof(tmp));
	for (size_t n = 0; n < len; n += 1 + next() % 5)
		alike(buf, n) ? (*decoded)++ : (*refused)++;
	for (int k = 0; k < 8; k++) {
		memcpy(tmp, buf, len);
		tmp[next() % (len > 0 ? len : 1)] = (uint8_t)next();
		if (next() % 2 && len > 1)
			tmp[next() % len] = (uint8_t)(next() % 2 ? 0xff : 0x80);
		alike(tmp, len) ? (*decoded)++ : (*refused)++;
	}
}

START_TEST(wire_reads_state_chunks_as_protobuf_c_does)
{
	unsigned int decoded = 0, refused = 0;

	for (int round = 0; round < 3000; round++) {
		Mbx__V1__StateChunk c = MBX__V1__STATE_CHUNK__INIT;
		uint8_t a[4][16], st[64], buf[1024], tmp[1024];
		char nf[8];
		size_t len;
		struct mbx_wire_chunk w;

		snprintf(nf, sizeof(nf), "%.*s", (int)(next() % 5), "natfw");
		c.nf = nf;
		c.scope = (Mbx__V1__Scope)(next() % 7 == 0 ? -2 : (int)(next() % 4));
		c.key = next() % 5 ? rand_key(a[0], a[1]) : NULL;
		c.reply_key = next() % 3 ? rand_key(a[2], a[3]) : NULL;
		c.version = next() % 4 == 0 ? 0 : next() % 4;
		c.state = (ProtobufCBinaryData){next() % 40, st};
		for (size_t i = 0; i < sizeof(st); i++)
			st[i] = (uint8_t)next();
		c.from_outside = next() % 2;
		len = mbx__v1__state_chunk__pack(&c, buf);
		free(c.key);
		free(c.reply_key);
		/* as packed (the fast path) */
		ck_assert(read_alike(buf, len));
		/* the fields in reverse order, an unknown field in between (field by field) */
		{
			const uint8_t *p = buf, *starts[32];
			struct mbx_wire_field f;
			size_t k = 0, o = 0;

			while (mbx_wire_next(&p, buf + len, &f) > 0 && k < 31)
				starts[k++] = p; /* the end of each field */
			for (size_t i = k; i > 0; i--) {
				const uint8_t *from = i > 1 ? starts[i - 2] : buf;

				memcpy(tmp + o, from, (size_t)(starts[i - 1] - from));
				o += (size_t)(starts[i - 1] - from);
				if (i == k / 2 + 1)
					o = (size_t)(mbx_wire_put_bytes(tmp + o, 99, "x", 1) - tmp);
			}
			ck_assert(read_alike(tmp, o));
		}
		/* the same chunk twice over: the last scalar wins, keys merge */
		memcpy(tmp, buf, len);
		memcpy(tmp + len, buf, len);
		ck_assert(read_alike(tmp, 2 * len));
		/* damaged: cut short, bytes changed, a wrong wire type */
		damaged_alike(buf, len, read_alike, &decoded, &refused);
		ck_assert_int_eq(mbx_wire_chunk_parse((const uint8_t *)"\x0b\x01", 2, &w), -1);
	}
	{
		/* a key given twice, the second with an empty src, no family, a dport */
		static const uint8_t twice[] = {0x1a, 0x08, 0x08, 0x04, 0x1a, 0x04, 1,	  2,   3, 4,
						0x1a, 0x06, 0x1a, 0x00, 0x30, 0x07, 0x28, 0x09};
		/* from_outside as a length-delimited field; a 6-byte tag; field 0 at length 2 */
		static const uint8_t odd1[] = {0x3a, 0x01, 0x00, 0x10, 0x01};
		static const uint8_t odd2[] = {0x88, 0x80, 0x80, 0x80, 0x80, 0x00, 0x01};
		static const uint8_t odd3[] = {0x80, 0x00, 0x05, 0x0a, 0x01, 'x'};

		ck_assert(read_alike(twice, sizeof(twice)));
		ck_assert(read_alike(odd1, sizeof(odd1)));
		ck_assert(!read_alike(odd2, sizeof(odd2)));
		ck_assert(read_alike(odd3, sizeof(odd3)));
	}
	/* both kinds were met, so the comparison above meant something */
	ck_assert_uint_gt(decoded, 1000);
	ck_assert_uint_gt(refused, 1000);
}
END_TEST

/* mbx_wire_envelope_payload() against protobuf-c on the same bytes: the same verdict, the same
 * payload. */
static bool
envelope_alike(const uint8_t *buf, size_t len)
{
	Mbx__V1__Envelope *e = mbx__v1__envelope__unpack(NULL, len, buf);
	const uint8_t *payload;
	size_t payload_len;
	int rc = mbx_wire_envelope_payload(buf, len, &payload, &payload_len);

	ck_assert_int_eq(e != NULL, rc == 0);
	if (e == NULL)
		return false;
	ck_assert_uint_eq(payload_len, e->payload.len);
	ck_assert(payload_len == 0 || memcmp(payload, e->payload.data, payload_len) == 0);
	mbx__v1__envelope__free_unpacked(e, NULL);
	return true;
}

START_TEST(wire_reads_envelopes_as_protobuf_c_does)
{
	unsigned int decoded = 0, refused = 0;

	for (int round = 0; round < 3000; round++) {
		Mbx__V1__Envelope e = MBX__V1__ENVELOPE__INIT;
		uint8_t data[48], buf[256], tmp[512];
		char method[16];
		size_t len;

		for (size_t i = 0; i < sizeof(data); i++)
			data[i] = (uint8_t)next();
		snprintf(method, sizeof(method), "%.*s", (int)(next() % 12), "/mbx.v1.Peer");
		e.call_id = next() % 3 ? (uint64_t)next() << (next() % 32) : 0;
		e.method = method;
		e.payload = (ProtobufCBinaryData){next() % 5 ? next() % sizeof(data) : 0, data};
		e.token = (ProtobufCBinaryData){next() % 4 == 0 ? next() % 8 : 0, data + 40};
		e.more = next() % 2;
		len = mbx__v1__envelope__pack(&e, buf);
		ck_assert(envelope_alike(buf, len));
		/* twice over: the last payload wins */
		memcpy(tmp, buf, len);
		memcpy(tmp + len, buf, len);
		ck_assert(envelope_alike(tmp, 2 * len));
		damaged_alike(buf, len, envelope_alike, &decoded, &refused);
	}
	/* both kinds were met, so the comparison above meant something */
	ck_assert_uint_gt(decoded, 1000);
	ck_assert_uint_gt(refused, 1000);
}
END_TEST

START_TEST(wire_writes_as_protobuf_c_does)
{
	for (int round = 0; round < 2000; round++) {
		uint64_t v = round < 64 ? 1ULL << round : (uint64_t)next() << (next() % 40);
		uint8_t a[16], b[16], *end;
		const uint8_t *p = b;
		uint64_t back;

		/* a varint: as protobuf-c writes a uint64 field, and read back */
		Mbx__V1__Envelope e = MBX__V1__ENVELOPE__INIT;
		uint8_t pa[32], pb[32];
		size_t la, lb;

		e.call_id = v;
		la = mbx__v1__envelope__pack(&e, pa);
		lb = (size_t)(mbx_wire_put_uint(pb, 1, v) - pb);
		ck_assert_uint_eq(la, lb);
		ck_assert(memcmp(pa, pb, la) == 0);
		ck_assert_uint_eq(mbx_wire_uint_size(1, v), lb);
		end = mbx_wire_put_varint(b, v);
		ck_assert_uint_eq((size_t)(end - b), mbx_wire_varint_size(v));
		ck_assert_int_eq(mbx_wire_get_varint(&p, end, &back), 0);
		ck_assert(back == v && p == end);
		p = b;
		ck_assert_int_eq(mbx_wire_get_varint(&p, end - 1, &back), -1);
		(void)a;
	}
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("messages");
	TCase *tc = tcase_create("messages");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, every_message_round_trips);
	tcase_add_test(tc, wire_reads_state_chunks_as_protobuf_c_does);
	tcase_add_test(tc, wire_reads_envelopes_as_protobuf_c_does);
	tcase_add_test(tc, wire_writes_as_protobuf_c_does);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
