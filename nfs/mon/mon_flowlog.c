/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mon's finished flows: workers enqueue fixed-size records on one bounded
 * MP/SC rte_ring (a full ring drops the record and counts it); the main
 * lcore writes them to flows_file as JSON lines from ctrl_poll, at most
 * MON_DRAIN_BUDGET per call, and flushes after each call that wrote. See
 * mon.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_ring_elem.h>

#include "mon.h"

#define MON_DRAIN_BUDGET 1024 /* records written per ctrl_poll */

static _Atomic unsigned int name_seq;

static const char *const end_names[MON_END_MAX] = {
#define X(e, s) s,
	MON_ENDS(X)
#undef X
};

int
mon_flowlog_open(struct mon *mon, const char *path, uint32_t size)
{
	char name[RTE_RING_NAMESIZE];

	mon->file = fopen(path, "a");
	if (mon->file == NULL) {
		int err = errno;

		MON_LOG(ERR, "flows_file=%s: cannot open for appending: %s", path, strerror(err));
		return -err;
	}
	mon->path = strdup(path);
	snprintf(name, sizeof(name), "mon_flows_%u", atomic_fetch_add(&name_seq, 1));
	mon->ring = rte_ring_create_elem(name, sizeof(struct mon_rec), size, mon->socket,
					 RING_F_SC_DEQ | RING_F_EXACT_SZ);
	if (mon->path == NULL || mon->ring == NULL) {
		MON_LOG(ERR, "flows_ring=%u: %s", size,
			rte_strerror(mon->ring == NULL ? rte_errno : ENOMEM));
		return mon->ring == NULL ? -rte_errno : -ENOMEM;
	}
	MON_LOG(INFO, "finished flows to %s, through a ring of %u records", path, size);
	return 0;
}

void
mon_flowlog_close(struct mon *mon)
{
	if (mon->ring != NULL && mon->file != NULL)
		mon_flowlog_drain(mon, UINT32_MAX);
	if (mon->file != NULL) {
		if (fclose(mon->file) != 0)
			mon->write_errors++;
		MON_LOG(INFO, "%" PRIu64 " finished flows written to %s, %" PRIu64 " write errors",
			mon->written, mon->path, mon->write_errors);
	}
	rte_ring_free(mon->ring);
	free(mon->path);
	mon->file = NULL;
	mon->ring = NULL;
	mon->path = NULL;
}

void
mon_flowlog_put(struct mbx_nf_ctx *c, const struct mon_rec *r)
{
	struct mon *mon = c->nf;

	if (rte_ring_mp_enqueue_elem(mon->ring, (void *)(uintptr_t)r, sizeof(*r)) == 0) {
		c->counters[MON_CTR_QUEUED]++;
		return;
	}
	/* the main lcore (shutdown deletes every flow there) may write the file */
	if (rte_lcore_id() == rte_get_main_lcore()) {
		mon_flowlog_drain(mon, UINT32_MAX);
		if (rte_ring_mp_enqueue_elem(mon->ring, (void *)(uintptr_t)r, sizeof(*r)) == 0) {
			c->counters[MON_CTR_QUEUED]++;
			return;
		}
	}
	c->counters[MON_CTR_RING_FULL]++;
}

int
mon_rec_json(const struct mon_rec *r, char *buf, size_t len)
{
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
	int af = r->key.family == MBX_FAMILY_V6 ? AF_INET6 : AF_INET;
	const struct mon_flow *st = &r->st;

	inet_ntop(af, &r->key.src, src, sizeof(src));
	inet_ntop(af, &r->key.dst, dst, sizeof(dst));
	return snprintf(buf, len,
			"{\"first_ns\":%" PRIu64 ",\"last_ns\":%" PRIu64
			",\"family\":%u,\"proto\":%u,\"src\":\"%s\",\"sport\":%u,\"dst\":\"%s\","
			"\"dport\":%u,\"originator_side\":\"%s\",\"midstream\":%s,"
			"\"orig\":{\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"tcp_flags\":%u},"
			"\"reply\":{\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64
			",\"tcp_flags\":%u},\"end\":\"%s\"}",
			st->first_ns, st->last_ns, r->key.family, r->key.proto, src,
			rte_be_to_cpu_16(r->key.sport), dst, rte_be_to_cpu_16(r->key.dport),
			st->orig_side == MBX_SIDE_INSIDE ? "inside" : "outside",
			st->midstream ? "true" : "false", st->packets[0], st->bytes[0],
			st->tcp_flags[0], st->packets[1], st->bytes[1], st->tcp_flags[1],
			r->end < MON_END_MAX ? end_names[r->end] : "unknown");
}

unsigned int
mon_flowlog_drain(struct mon *mon, unsigned int max)
{
	struct mon_rec recs[32];
	unsigned int done = 0, n;
	char line[640];

	while (done < max &&
	       (n = rte_ring_sc_dequeue_burst_elem(mon->ring, recs, sizeof(recs[0]),
						   RTE_MIN((unsigned int)RTE_DIM(recs), max - done),
						   NULL)) > 0) {
		for (unsigned int i = 0; i < n; i++) {
			int len = RTE_MIN(mon_rec_json(&recs[i], line, sizeof(line) - 1),
					  (int)sizeof(line) - 2);

			line[len++] = '\n';
			if (fwrite(line, 1, (size_t)len, mon->file) == (size_t)len) {
				mon->written++;
			} else if (mon->write_errors++ == 0) {
				MON_LOG(ERR, "flows_file %s: %s (counting further errors silently)",
					mon->path, strerror(errno));
			}
		}
		done += n;
	}
	if (done > 0 && fflush(mon->file) != 0 && mon->write_errors++ == 0)
		MON_LOG(ERR, "flows_file %s: %s (counting further errors silently)", mon->path,
			strerror(errno));
	return done;
}

void
mon_ctrl_poll(void *nf)
{
	struct mon *mon = nf;

	if (mon->ring != NULL)
		mon_flowlog_drain(mon, MON_DRAIN_BUDGET);
}
