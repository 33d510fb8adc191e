/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The frame codec as a server reads a byte stream: partial headers and
 * bodies, oversized and compressed frames, pipelined frames, garbage.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mbx_frame.h"

static size_t
make_frame(uint8_t *out, uint64_t id, const char *method, size_t payload)
{
	Mbx__V1__Envelope env = MBX__V1__ENVELOPE__INIT;
	uint8_t *p = calloc(1, payload + 1);
	size_t n;

	env.call_id = id;
	env.method = (char *)method;
	env.payload.data = p;
	env.payload.len = payload;
	n = mbx_frame_pack(&env, out);
	ck_assert_uint_eq(n, mbx_frame_size(&env));
	free(p);
	return n;
}

START_TEST(partial_header_and_body)
{
	uint8_t f[256];
	size_t n = make_frame(f, 7, "/mbx.v1.Dataplane/GetInfo", 10);

	for (size_t i = 0; i < MBX_FRAME_HDR_LEN; i++)
		ck_assert_int_eq(mbx_frame_peek(f, i, MBX_FRAME_MAX_DEFAULT), 0);
	/* once the header is in, the size is known even if the body is not */
	ck_assert_int_eq(mbx_frame_peek(f, MBX_FRAME_HDR_LEN, MBX_FRAME_MAX_DEFAULT), (long)n);
	ck_assert_ptr_null(mbx_frame_unpack(f, 3));
	{
		Mbx__V1__Envelope *e = mbx_frame_unpack(f, n);

		ck_assert_ptr_nonnull(e);
		ck_assert_uint_eq(e->call_id, 7);
		ck_assert_str_eq(e->method, "/mbx.v1.Dataplane/GetInfo");
		ck_assert_uint_eq(e->payload.len, 10);
		mbx__v1__envelope__free_unpacked(e, NULL);
	}
}
END_TEST

START_TEST(oversized_and_compressed)
{
	uint8_t h[MBX_FRAME_HDR_LEN] = {0, 0xff, 0xff, 0xff, 0xff}; /* a 4 GiB prefix */

	ck_assert_int_eq(mbx_frame_peek(h, 5, MBX_FRAME_MAX_DEFAULT), -EMSGSIZE);
	h[1] = 0;
	h[2] = 0x01;
	h[3] = 0;
	h[4] = 1; /* 64 KiB + 1 */
	ck_assert_int_eq(mbx_frame_peek(h, 5, 65536), -EMSGSIZE);
	ck_assert_int_eq(mbx_frame_peek(h, 5, 65537), 65537 + 5);
	h[0] = 1; /* gRPC's compressed flag: not supported */
	ck_assert_int_eq(mbx_frame_peek(h, 5, MBX_FRAME_MAX_DEFAULT), -EPROTO);
}
END_TEST

START_TEST(pipelined_frames)
{
	uint8_t stream[4096];
	size_t len = 0, off = 0;
	uint64_t want = 1;

	for (uint64_t id = 1; id <= 20; id++)
		len += make_frame(stream + len, id, "/mbx.v1.State/GetPerflow", id * 3);
	while (off < len) {
		long n = mbx_frame_peek(stream + off, len - off, MBX_FRAME_MAX_DEFAULT);
		Mbx__V1__Envelope *e;

		ck_assert_int_gt(n, 0);
		e = mbx_frame_unpack(stream + off, (size_t)n);
		ck_assert_ptr_nonnull(e);
		ck_assert_uint_eq(e->call_id, want);
		ck_assert_uint_eq(e->payload.len, want * 3);
		want++;
		off += (size_t)n;
		mbx__v1__envelope__free_unpacked(e, NULL);
	}
	ck_assert_uint_eq(want, 21);
}
END_TEST

START_TEST(garbage_is_refused_not_crashed_on)
{
	uint8_t buf[512];
	unsigned int seed = 42, decoded = 0;

	for (int i = 0; i < 100000; i++) {
		size_t len = 5 + (seed % 200);
		long n;

		for (size_t k = 0; k < len; k++) {
			seed = seed * 1103515245u + 12345u;
			buf[k] = (uint8_t)(seed >> 16);
		}
		buf[0] = 0;
		n = mbx_frame_peek(buf, len, 256);
		if (n > 0 && (size_t)n <= len) {
			Mbx__V1__Envelope *e = mbx_frame_unpack(buf, (size_t)n);

			if (e != NULL) {
				decoded++;
				mbx__v1__envelope__free_unpacked(e, NULL);
			}
		}
	}
	/* random bytes rarely form an envelope; the point is that nothing crashed */
	ck_assert_uint_lt(decoded, 100000);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("frame");
	TCase *tc = tcase_create("frame");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, partial_header_and_body);
	tcase_add_test(tc, oversized_and_compressed);
	tcase_add_test(tc, pipelined_frames);
	tcase_add_test(tc, garbage_is_refused_not_crashed_on);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
