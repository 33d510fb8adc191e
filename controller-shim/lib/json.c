/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Any protobuf-c message as one line of JSON, by reflection over its
 * descriptor, and the table of NF state message types. See mbxctl.h.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <string.h>

#include "mbxctl.h"

static void
print_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s != NULL && *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void
print_base64(FILE *f, const uint8_t *p, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	fputc('"', f);
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
			     (i + 2 < n ? p[i + 2] : 0);

		fputc(tab[v >> 18], f);
		fputc(tab[(v >> 12) & 63], f);
		fputc(i + 1 < n ? tab[(v >> 6) & 63] : '=', f);
		fputc(i + 2 < n ? tab[v & 63] : '=', f);
	}
	fputc('"', f);
}

static bool
is_address_field(const char *name)
{
	/* every address of the mbx.v1 messages (NF state included) */
	static const char *const names[] = {"src",	"dst",	   "addr",    "host", "in_addr",
					    "ext_addr", "addr_lo", "addr_hi", "vip",  "backend"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return true;
	return false;
}

static void
print_value(FILE *f, const ProtobufCFieldDescriptor *fd, const void *v)
{
	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		fprintf(f, "%" PRId32, *(const int32_t *)v);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		fprintf(f, "%" PRIu32, *(const uint32_t *)v);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		fprintf(f, "%" PRId64, *(const int64_t *)v);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		fprintf(f, "%" PRIu64, *(const uint64_t *)v);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		fprintf(f, "%g", *(const float *)v);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		fprintf(f, "%g", *(const double *)v);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		fputs(*(const protobuf_c_boolean *)v ? "true" : "false", f);
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev =
			protobuf_c_enum_descriptor_get_value(fd->descriptor, *(const int *)v);

		if (ev != NULL)
			print_string(f, ev->name);
		else
			fprintf(f, "%d", *(const int *)v);
		break;
	}
	case PROTOBUF_C_TYPE_STRING:
		print_string(f, *(char *const *)v);
		break;
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = v;
		char a[INET6_ADDRSTRLEN];

		if ((b->len == 4 || b->len == 16) && is_address_field(fd->name) &&
		    inet_ntop(b->len == 4 ? AF_INET : AF_INET6, b->data, a, sizeof(a)) != NULL)
			print_string(f, a);
		else
			print_base64(f, b->data, b->len);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		mbxctl_print_json(f, *(ProtobufCMessage *const *)v);
		break;
	}
}

static size_t
value_size(const ProtobufCFieldDescriptor *fd)
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

void
mbxctl_print_json(FILE *f, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	bool first = true;

	fputc('{', f);
	for (unsigned int i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];
		const char *base = (const char *)m + fd->offset;

		if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)((const char *)m + fd->quantifier_offset);
			const char *arr = *(const char *const *)base;

			fprintf(f, "%s\"%s\":[", first ? "" : ",", fd->name);
			for (size_t k = 0; k < n; k++) {
				if (k > 0)
					fputc(',', f);
				print_value(f, fd, arr + k * value_size(fd));
			}
			fputc(']', f);
		} else {
			if (fd->type == PROTOBUF_C_TYPE_MESSAGE && *(void *const *)base == NULL)
				continue;
			fprintf(f, "%s\"%s\":", first ? "" : ",", fd->name);
			print_value(f, fd, base);
		}
		first = false;
	}
	fputc('}', f);
}
