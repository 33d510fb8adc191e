/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Every message of proto/ round-trips: filled field by field through its
 * descriptor (nested messages and repeated fields included), packed,
 * unpacked and packed again to the same bytes. The list of messages is
 * generated from the protoc-c headers, so a new message is covered at once.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mbx_proto.h"

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

int
main(void)
{
	Suite *s = suite_create("messages");
	TCase *tc = tcase_create("messages");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, every_message_round_trips);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
