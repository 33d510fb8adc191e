/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mon: a flow and asset monitor (--nf mon[,flows_file=PATH][,flows_ring=N][,hosts=N]).
 *
 * Every packet passes unchanged. The packet path adds the packet to its
 * flow's counters (packets, bytes, TCP flags per direction, last seen) and,
 * for the few packets that reveal something about a host -- a SYN (its TTL
 * class and window: an OS hint), a SYN-ACK (a TCP service), the first reply
 * of a UDP flow (a UDP service) -- updates the sending host's record, whose
 * position the flow keeps from its start (mon_hosts.h). No lookup per
 * packet beyond the framework's own.
 *
 * Placement: with two ports, flows live on the worker of their inside host
 * (mbx_owner_by_host(), as nat does), so an inside host's record is on one
 * worker; only inside hosts are tracked, as PRADS tracks its home network.
 * With one port every host is inside; flows are placed by the symmetric
 * hash and a host may then have a record on several workers (multi_get
 * reports each).
 *
 * Finished flows go to flows_file as JSON lines (mon_flowlog.c).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ip.h>
#include <rte_kvargs.h>
#include <rte_malloc.h>
#include <rte_tcp.h>

#include "mon.h"

RTE_LOG_REGISTER(mon_logtype, user.mbx.mon, NOTICE);

#define MON_RING_DEFAULT  4096
#define MON_HOSTS_DEFAULT 16384
#define MON_MAX_SIZE	  (1u << 24) /* flows_ring and hosts */

static const char *const mon_counter_names[MON_CTR_MAX] = {
#define X(e, s) s,
	MON_COUNTERS(X)
#undef X
};

uint64_t
mon_tsc_to_ns(const struct mon *mon, uint64_t tsc)
{
	uint64_t d = tsc > mon->epoch_tsc ? tsc - mon->epoch_tsc : 0;

	return mon->epoch_ns + d / mon->tsc_hz * NS_PER_S +
	       d % mon->tsc_hz * NS_PER_S / mon->tsc_hz;
}

/*
 * Check the options of @p kv (unknown keys were refused by the parse): each
 * at most once, numbers in range. Logs what is wrong. @return 0 or -EINVAL.
 */
static int
check_args(const struct rte_kvargs *kv, const char *const *keys, uint32_t *ring, uint32_t *hosts)
{
	const char *num[] = {"flows_ring", "hosts"};
	uint32_t *out[] = {ring, hosts};

	for (; *keys != NULL; keys++) {
		if (rte_kvargs_count(kv, *keys) > 1) {
			MON_LOG(ERR, "%s given more than once", *keys);
			return -EINVAL;
		}
	}
	for (unsigned int i = 0; i < RTE_DIM(num); i++) {
		const char *v = rte_kvargs_get(kv, num[i]);
		unsigned long n;
		char *end;

		if (v == NULL)
			continue;
		errno = 0;
		n = strtoul(v, &end, 10);
		if (errno != 0 || end == v || *end != '\0' || n < 1 || n > MON_MAX_SIZE) {
			MON_LOG(ERR, "%s=%s: expected a number from 1 to %u", num[i], v,
				MON_MAX_SIZE);
			return -EINVAL;
		}
		*out[i] = (uint32_t)n;
	}
	if (rte_kvargs_get(kv, "flows_ring") != NULL && rte_kvargs_get(kv, "flows_file") == NULL) {
		MON_LOG(ERR, "flows_ring sizes the ring to flows_file: give flows_file=PATH too");
		return -EINVAL;
	}
	return 0;
}

static void
mon_destroy(void *nf)
{
	struct mon *mon = nf;

	mon_flowlog_close(mon);
	rte_free(mon->workers);
	rte_free(mon);
}

static void *
mon_create(const struct mbx_nf_params *p)
{
	static const char *const keys[] = {"flows_file", "flows_ring", "hosts", NULL};
	struct rte_kvargs *kv = rte_kvargs_parse(p->args, keys);
	uint32_t ring = MON_RING_DEFAULT, hosts = MON_HOSTS_DEFAULT;
	struct timespec ts;
	const char *path;
	struct mon *mon;
	int rc;

	if (kv == NULL)
		MON_LOG(ERR, "'%s': expected [flows_file=PATH][,flows_ring=N][,hosts=N]", p->args);
	if (kv == NULL || check_args(kv, keys, &ring, &hosts) < 0) {
		rte_kvargs_free(kv);
		rte_errno = EINVAL;
		return NULL;
	}
	mon = rte_zmalloc_socket("mon", sizeof(*mon), RTE_CACHE_LINE_SIZE, p->socket);
	if (mon != NULL)
		mon->workers =
			rte_zmalloc_socket("mon_workers", sizeof(mon->workers[0]) * p->nb_workers,
					   RTE_CACHE_LINE_SIZE, p->socket);
	if (mon == NULL || mon->workers == NULL) {
		rte_kvargs_free(kv);
		rte_free(mon);
		rte_errno = ENOMEM;
		return NULL;
	}
	mon->nb_hosts = hosts;
	mon->socket = p->socket;
	mon->one_armed = p->nb_ports == 1;
	mon->nb_workers = p->nb_workers;
	mon->tsc_hz = rte_get_tsc_hz();
	clock_gettime(CLOCK_REALTIME, &ts);
	mon->epoch_tsc = rte_rdtsc();
	mon->epoch_ns = (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
	path = rte_kvargs_get(kv, "flows_file");
	rc = path != NULL ? mon_flowlog_open(mon, path, ring) : 0;
	rte_kvargs_free(kv);
	if (rc < 0) {
		mon_destroy(mon);
		rte_errno = -rc;
		return NULL;
	}
	return mon;
}

static void *
mon_worker_init(void *nf, uint16_t worker, uint16_t nb_workers)
{
	struct mon *mon = nf;
	struct mon_worker *mw;

	(void)nb_workers;
	mw = rte_zmalloc_socket("mon_worker", sizeof(*mw), RTE_CACHE_LINE_SIZE, mon->socket);
	if (mw == NULL) {
		rte_errno = ENOMEM;
		return NULL;
	}
	mw->hosts = mon_hosts_create(mon->nb_hosts, mon->socket);
	if (mw->hosts == NULL) {
		MON_LOG(ERR, "worker %u: a table of %u hosts: %s (try a smaller hosts=)", worker,
			mon->nb_hosts, rte_strerror(rte_errno));
		rte_free(mw);
		return NULL;
	}
	mon->workers[worker] = mw;
	return mw;
}

static void
mon_worker_fini(void *nf, void *priv)
{
	struct mon *mon = nf;
	struct mon_worker *mw = priv;

	for (uint16_t i = 0; i < mon->nb_workers; i++)
		if (mon->workers[i] == mw)
			mon->workers[i] = NULL;
	mon_hosts_free(mw->hosts);
	rte_free(mw);
}

static int
mon_owner(const void *nf, const struct mbx_pkt *p, uint16_t nb_workers)
{
	const struct mon *mon = nf;

	if (mon->one_armed)
		return -1;
	/* the inside host: the source of packets from the inside, the destination of others */
	return mbx_owner_by_host(p->side == MBX_SIDE_INSIDE ? &p->key.src : &p->key.dst,
				 p->key.family, nb_workers);
}

void
mon_flow_attach(struct mbx_nf_ctx *c, struct mon_flow *st, const union mbx_addr *src,
		const union mbx_addr *dst, uint8_t family, bool count)
{
	const struct mon *mon = c->nf;
	struct mon_worker *mw = c->priv;
	const union mbx_addr *addr[2] = {src, dst};

	mw->tot.active++;
	for (int k = 0; k < 2; k++) {
		/* k = 0: the originator, on orig_side; k = 1: the responder, across */
		bool inside = mon->one_armed || (st->orig_side == MBX_SIDE_INSIDE) == (k == 0);
		struct mon_host_key hk = mon_host_key(addr[k], family);
		struct mon_host *e;

		st->host[k] = -1;
		if (!inside)
			continue;
		st->host[k] = mon_hosts_get(mw->hosts, &hk);
		if (st->host[k] < 0) {
			st->host[k] = -1;
			c->counters[MON_CTR_HOSTS_FULL]++;
			continue;
		}
		e = mon_hosts_at(mw->hosts, st->host[k]);
		e->active++;
		if (count)
			*(k == 0 ? &e->conns_out : &e->conns_in) += 1;
	}
}

/* The first packet of a flow mon sees (normally the one that created it). */
static void
flow_start(struct mbx_nf_ctx *c, struct mon_flow *st, const struct mbx_pkt *p, uint64_t now)
{
	const struct mon *mon = c->nf;
	bool orig = p->dir == MBX_DIR_ORIG;
	uint8_t syn_ack = p->tcp_flags & (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG);

	st->first_ns = now;
	st->orig_side = mon->one_armed || orig ? p->side : !p->side;
	st->midstream = p->key.proto == IPPROTO_TCP && !(orig && syn_ack == RTE_TCP_SYN_FLAG);
	mon_flow_attach(c, st, orig ? &p->key.src : &p->key.dst, orig ? &p->key.dst : &p->key.src,
			p->key.family, true);
	((struct mon_worker *)c->priv)->tot.flows++;
}

/* What a packet says about the host that sent it: an OS hint, a service. */
static void
learn(struct mon_worker *mw, struct rte_mbuf *m, const struct mbx_pkt *p, const struct mon_flow *st)
{
	struct mon_host *e = mon_hosts_at(mw->hosts, st->host[p->dir]);
	uint8_t syn_ack = p->tcp_flags & (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG);

	if (p->key.proto == IPPROTO_TCP && syn_ack == RTE_TCP_SYN_FLAG) {
		uint8_t ttl = p->key.family == MBX_FAMILY_V4
				      ? ((const struct rte_ipv4_hdr *)mbx_pkt_l3(m))->time_to_live
				      : ((const struct rte_ipv6_hdr *)mbx_pkt_l3(m))->hop_limits;
		const struct rte_tcp_hdr *th = mbx_pkt_l4(m);

		mon_host_add_os(e, mon_ttl_class(ttl), rte_be_to_cpu_16(th->rx_win));
	} else if (p->key.proto == IPPROTO_TCP &&
		   syn_ack == (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG)) {
		mon_host_add_service(e, IPPROTO_TCP, rte_be_to_cpu_16(p->key.sport));
	} else if (p->key.proto == IPPROTO_UDP && p->dir == MBX_DIR_REPLY &&
		   st->packets[MBX_DIR_REPLY] == 1) {
		mon_host_add_service(e, IPPROTO_UDP, rte_be_to_cpu_16(p->key.sport));
	}
}

static void
mon_process(struct mbx_nf_ctx *c, struct rte_mbuf **pkts, uint16_t n)
{
	struct mon_worker *mw = c->priv;
	uint64_t now = mon_tsc_to_ns(c->nf, c->now);

	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		struct mbx_pkt *p = mbx_pkt(m);
		struct mon_flow *st = mbx_nf_state(c, p->flow);
		uint32_t len = (uint32_t)p->l3_len + p->l4_len; /* the IP datagram */
		uint8_t d = p->dir;

		if (unlikely(st->first_ns == 0))
			flow_start(c, st, p, now);
		st->last_ns = now;
		st->packets[d]++;
		st->bytes[d] += len;
		st->tcp_flags[d] |= p->tcp_flags;
		mw->tot.packets++;
		mw->tot.bytes += len;
		if (st->host[d] >= 0)
			learn(mw, m, p, st);
	}
}

static void
mon_flow_free(struct mbx_nf_ctx *c, struct mbx_flow *f)
{
	struct mon_flow *st = mbx_nf_state(c, f);
	struct mon_worker *mw = c->priv;
	struct mon_rec r;

	if (st->first_ns == 0)
		return;
	for (int k = 0; k < 2; k++)
		if (st->host[k] >= 0)
			mon_hosts_at(mw->hosts, st->host[k])->active--;
	mw->tot.active--;
	c->counters[MON_CTR_FINISHED]++;
	if (((struct mon *)c->nf)->ring != NULL) {
		memset(&r, 0, sizeof(r));
		r.key = mbx_flow_keys(c->table, f)[0];
		r.st = *st;
		if (f->flags & MBX_FLOW_F_PENDING)
			r.end = MON_END_REFUSED; /* a later NF dropped its first packet */
		else if (f->expire <= rte_rdtsc())
			r.end = MON_END_EXPIRED;
		else
			r.end = MON_END_DELETED;
		mon_flowlog_put(c, &r);
	}
	st->first_ns = 0;
}

static const struct mbx_nf_ops mon_ops = {
	.name = "mon",
	.usage = "[flows_file=PATH][,flows_ring=N][,hosts=N]  flow and asset monitor; "
		 "finished flows appended to PATH as JSON lines (ring 4096, 16384 hosts/worker)",
	.flow_state_size = sizeof(struct mon_flow),
	.state_version = 1,
	.state_types = {"mbx.v1.MonFlowState", "mbx.v1.MonHost", "mbx.v1.MonTotals"},
	.counter_names = mon_counter_names,
	.nb_counters = MON_CTR_MAX,
	.create = mon_create,
	.destroy = mon_destroy,
	.worker_init = mon_worker_init,
	.worker_fini = mon_worker_fini,
	.owner = mon_owner,
	.process = mon_process,
	.flow_free = mon_flow_free,
	.flow_get = mon_flow_get,
	.flow_put = mon_flow_put,
	.multi_get = mon_multi_get,
	.multi_put = mon_multi_put,
	.multi_del = mon_multi_del,
	.ctrl_poll = mon_ctrl_poll,
	.all_get = mon_all_get,
	.all_put = mon_all_put,
};

MBX_NF_REGISTER(mon_ops);
