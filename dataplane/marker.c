/* SPDX-License-Identifier: BSD-3-Clause */
/* Markers: see mbx_marker.h. */
#include <errno.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ether.h>
#include <rte_ethdev.h>
#include <rte_mbuf_dyn.h>
#include <rte_pause.h>

#include "mbx_marker.h"
#include "mbx_nf.h"
#include "mbx_worker.h"

#define MARKER_MAGIC 0x4d42584d /* "MBXM" */
#define SEND_TRIES   1000

struct marker_payload {
	rte_be32_t magic;
	rte_be32_t pad;
	rte_be64_t id;
	rte_be16_t index;
	rte_be16_t count;
} __rte_packed;

uint64_t mbx_flag_redirected;
uint64_t mbx_flag_marker;
static struct mbx_dp *marker_dp;
static mbx_marker_fn marker_hook;

static int
register_flag(const char *name, uint64_t *flag)
{
	const struct rte_mbuf_dynflag desc = {.name = ""};
	struct rte_mbuf_dynflag d = desc;
	int bit;

	snprintf(d.name, sizeof(d.name), "%s", name);
	bit = rte_mbuf_dynflag_register(&d);
	if (bit < 0)
		return -rte_errno;
	*flag = 1ULL << bit;
	return 0;
}

int
mbx_marker_init(struct mbx_dp *dp)
{
	int rc = register_flag("mbx_redirected", &mbx_flag_redirected);

	if (rc == 0)
		rc = register_flag("mbx_marker", &mbx_flag_marker);
	marker_dp = dp;
	return rc;
}

void
mbx_marker_set_hook(mbx_marker_fn fn)
{
	marker_hook = fn;
}

struct rte_mbuf *
mbx_marker_build(struct rte_mempool *mp, uint64_t id, uint16_t index, uint16_t count)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
	struct rte_ether_hdr *eh;
	struct marker_payload *mk;

	if (m == NULL)
		return NULL;
	eh = (struct rte_ether_hdr *)rte_pktmbuf_append(m, RTE_ETHER_MIN_LEN - RTE_ETHER_CRC_LEN);
	if (eh == NULL) {
		rte_pktmbuf_free(m);
		return NULL;
	}
	memset(eh, 0, RTE_ETHER_MIN_LEN - RTE_ETHER_CRC_LEN);
	memset(&eh->dst_addr, 0xff, sizeof(eh->dst_addr));
	eh->src_addr.addr_bytes[0] = 0x02; /* locally administered */
	eh->ether_type = rte_cpu_to_be_16(MBX_MARKER_ETHERTYPE);
	mk = (struct marker_payload *)(eh + 1);
	mk->magic = rte_cpu_to_be_32(MARKER_MAGIC);
	mk->id = rte_cpu_to_be_64(id);
	mk->index = rte_cpu_to_be_16(index);
	mk->count = rte_cpu_to_be_16(count);
	return m;
}

bool
mbx_marker_parse(const struct rte_mbuf *m, uint64_t *id, uint16_t *index, uint16_t *count)
{
	const struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	const struct marker_payload *mk = (const struct marker_payload *)(eh + 1);

	if (rte_pktmbuf_data_len(m) < sizeof(*eh) + sizeof(*mk) ||
	    eh->ether_type != rte_cpu_to_be_16(MBX_MARKER_ETHERTYPE) ||
	    mk->magic != rte_cpu_to_be_32(MARKER_MAGIC))
		return false;
	*id = rte_be_to_cpu_64(mk->id);
	*index = rte_be_to_cpu_16(mk->index);
	*count = rte_be_to_cpu_16(mk->count);
	return true;
}

/* Send one frame on a TX queue, retrying while it is full: for up to a second,
 * as the peer drains it (the workers are parked, nothing else sends). */
static int
tx_one(uint16_t port, uint16_t queue, struct rte_mbuf *m)
{
	uint64_t deadline = rte_get_timer_cycles() + rte_get_timer_hz();

	while (rte_eth_tx_burst(port, queue, &m, 1) == 0) {
		if (rte_get_timer_cycles() > deadline) {
			rte_pktmbuf_free(m);
			return -ENOBUFS;
		}
		rte_delay_us_block(1);
	}
	return 0;
}

int
mbx_marker_send(struct mbx_dp *dp, uint16_t port, uint64_t id)
{
	int16_t queues[RTE_MAX_LCORE];
	uint16_t n = 0;

	if (port >= dp->nb_ports)
		return -EINVAL;
	if (dp->txring[port] == NULL) {
		/* one TX queue per worker that has one: each is a path of its own */
		for (uint16_t w = 0; w < dp->nb_workers; w++)
			if (dp->workers[w]->txq[port] >= 0)
				queues[n++] = dp->workers[w]->txq[port];
	}
	if (n == 0) {
		/* one queue, fed by a ring: behind what the ring holds */
		struct rte_mbuf *m = mbx_marker_build(dp->mp, id, 0, 1);

		if (m == NULL)
			return -ENOMEM;
		if (dp->txring[port] != NULL)
			return rte_ring_mp_enqueue(dp->txring[port], m) == 0 ? 1 : -ENOBUFS;
		return tx_one(port, 0, m) == 0 ? 1 : -ENOBUFS;
	}
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = mbx_marker_build(dp->mp, id, i, n);
		int rc;

		if (m == NULL)
			return -ENOMEM;
		rc = tx_one(port, (uint16_t)queues[i], m);
		if (rc < 0)
			return rc;
	}
	return n;
}

int
mbx_nf_send_marker(uint16_t port, uint64_t id)
{
	return marker_dp != NULL ? mbx_marker_send(marker_dp, port, id) : -ENODEV;
}

void
mbx_marker_meet(struct mbx_worker *w, struct rte_mbuf *m)
{
	uint64_t id;
	uint16_t index, count;

	if (marker_hook != NULL && mbx_marker_parse(m, &id, &index, &count))
		marker_hook(w, id, index, count);
	rte_pktmbuf_free(m);
}

void
mbx_marker_fan_out(struct mbx_worker *w, struct rte_mbuf *m)
{
	struct mbx_dp *dp = w->dp;

	for (uint16_t i = 0; i < dp->nb_workers; i++) {
		struct rte_mbuf *copy;

		if (i == w->id)
			continue;
		copy = rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX);
		if (copy == NULL) {
			w->stats[MBX_WSTAT_HANDOFF_DROP]++;
			continue;
		}
		copy->ol_flags |= mbx_flag_marker;
		/* wait for room behind the packets before it; bounded, as the other
		 * worker may be waiting for room here (counted: the move times out) */
		for (int t = 0; rte_ring_mp_enqueue(dp->workers[i]->handoff, copy) != 0; t++) {
			if (t == SEND_TRIES * 1000) {
				rte_pktmbuf_free(copy);
				w->stats[MBX_WSTAT_HANDOFF_DROP]++;
				break;
			}
			rte_pause();
		}
		mbx_wake(&dp->workers[i]->wake);
	}
	mbx_marker_meet(w, m);
}
