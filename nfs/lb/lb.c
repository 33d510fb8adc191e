/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lb: an L4 load balancer with Maglev consistent hashing
 * (--nf lb,vip=ADDR:PORT,backends=[ADDR[:PORT][@WEIGHT],...][,table=PRIME][,proto=P]).
 *
 * Clients on port 0 connect to the virtual service VIP:PORT; backends sit on
 * port 1. The first packet of a connection (TCP or UDP, as proto says)
 * picks a backend from the Maglev table (maglev.h) by a hash of its key and
 * stores it in the flow's state, with the checksum deltas of the rewrite,
 * so the connection keeps its backend for its life while the set changes
 * (connection affinity). Packets to the VIP leave with the destination
 * VIP:PORT rewritten to backend:port, replies with the source rewritten
 * back, each with two RFC 1624 incremental checksum updates. The framework
 * keys the reply (backend -> client) to the same flow entry, and lb_owner()
 * places both directions by the client, as every NF placing by the inside
 * host does.
 *
 * The backend set changes through PutAllflows (LbBackends): a drained
 * backend (weight 0) gets no new connections and keeps its own; a removed
 * one gets none and its connections end -- their packets are dropped and
 * counted and the flow expires as a closed one. Packets that are not for
 * the VIP pass unchanged, counted. IPv4 and IPv6 (one family per instance,
 * the VIP's).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_ip.h>
#include <rte_jhash.h>
#include <rte_kvargs.h>
#include <rte_malloc.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "lb.h"
#include "maglev.h"
#include "mbx_csum.h"
#include "mbx_nf.h"

RTE_LOG_REGISTER(lb_logtype, user.mbx.lb, NOTICE);

#define LB_USAGE \
	"vip=ADDR:PORT,backends=[ADDR[:PORT][@WEIGHT],...][,table=PRIME][,proto=tcp|udp|both]"

static const char *const lb_counter_names[LB_CTR_MAX] = {
#define X(e, s) s,
	LB_COUNTERS(X)
#undef X
};

/*
 * "A.B.C.D", "A.B.C.D:PORT", "[IPV6]:PORT" or "IPV6" (no port: an IPv6
 * address has colons of its own). @port is left alone when none is given.
 */
static int
parse_endpoint(const char *s, union mbx_addr *a, uint8_t *family, rte_be16_t *port)
{
	char host[INET6_ADDRSTRLEN];
	const char *colon = NULL, *end;
	size_t len;

	if (*s == '[') {
		end = strchr(s, ']');
		if (end == NULL || (end[1] != '\0' && end[1] != ':'))
			return -EINVAL;
		s++;
		colon = end[1] == ':' ? end + 1 : NULL;
	} else {
		colon = strchr(s, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			colon = NULL; /* a bare IPv6 address */
		end = colon != NULL ? colon : s + strlen(s);
	}
	len = (size_t)(end - s);
	if (len == 0 || len >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, len);
	host[len] = '\0';
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, host, &a->v4) == 1)
		*family = MBX_FAMILY_V4;
	else if (inet_pton(AF_INET6, host, a->v6) == 1)
		*family = MBX_FAMILY_V6;
	else
		return -EINVAL;
	if (colon != NULL) {
		char *e;
		unsigned long p = strtoul(colon + 1, &e, 10);

		if (*e != '\0' || e == colon + 1 || p == 0 || p > UINT16_MAX)
			return -EINVAL;
		*port = rte_cpu_to_be_16((uint16_t)p);
	}
	return 0;
}

const char *
lb_endpoint_str(uint8_t family, const union mbx_addr *a, rte_be16_t port, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	inet_ntop(family == MBX_FAMILY_V6 ? AF_INET6 : AF_INET, a, host, sizeof(host));
	snprintf(buf, len, family == MBX_FAMILY_V6 ? "[%s]:%u" : "%s:%u", host,
		 rte_be_to_cpu_16(port));
	return buf;
}

static int
parse_vip(const char *key, const char *v, void *arg)
{
	struct lb *lb = arg;

	(void)key;
	lb->vip_port = 0;
	if (parse_endpoint(v, &lb->vip, &lb->family, &lb->vip_port) < 0 || lb->vip_port == 0) {
		LB_LOG(ERR, "vip=%s: expected A.B.C.D:PORT or [IPV6]:PORT", v);
		return -EINVAL;
	}
	return 0;
}

struct backends_arg {
	const struct lb *lb;
	struct lb_set *set;
};

/* One backend, ADDR[:PORT][@WEIGHT], of the VIP's family; the port defaults to the VIP's. */
static int
parse_backend(const struct lb *lb, char *s, struct lb_set *set)
{
	char *at = strrchr(s, '@');
	unsigned long w = 1;
	uint8_t family;

	if (set->n == LB_MAX_BACKENDS) {
		LB_LOG(ERR, "backends: more than %u", LB_MAX_BACKENDS);
		return -EINVAL;
	}
	if (at != NULL) {
		char *e;

		*at = '\0';
		w = strtoul(at + 1, &e, 10);
		if (*e != '\0' || e == at + 1 || w > LB_MAX_WEIGHT) {
			LB_LOG(ERR, "backends: weight '%s' of %s is not 0-%u", at + 1, s,
			       LB_MAX_WEIGHT);
			return -EINVAL;
		}
	}
	set->be[set->n].port = lb->vip_port;
	if (parse_endpoint(s, &set->be[set->n].addr, &family, &set->be[set->n].port) < 0 ||
	    family != lb->family) {
		LB_LOG(ERR, "backends: '%s' is not an %s address[:PORT][@WEIGHT]", s,
		       lb->family == MBX_FAMILY_V6 ? "IPv6" : "IPv4");
		return -EINVAL;
	}
	set->be[set->n++].weight = (uint16_t)w;
	return 0;
}

/*
 * backends=[B1,B2,...] (rte_kvargs keeps the brackets), or one backend:
 * backends=B1, backends=[IPV6]:PORT.
 */
static int
parse_backends(const char *key, const char *v, void *arg)
{
	struct backends_arg *ba = arg;
	size_t len = strlen(v);
	char *list, *tok, *save = NULL;
	int rc = 0;

	(void)key;
	if (len >= 2 && v[0] == '[' && v[len - 1] == ']') {
		v++;
		len -= 2;
	}
	list = strndup(v, len);
	if (list == NULL)
		return -ENOMEM;
	for (tok = strtok_r(list, ",", &save); tok != NULL && rc == 0;
	     tok = strtok_r(NULL, ",", &save))
		rc = parse_backend(ba->lb, tok, ba->set);
	free(list);
	return rc;
}

static int
parse_table(const char *key, const char *v, void *arg)
{
	struct lb *lb = arg;
	char *e;
	unsigned long n = strtoul(v, &e, 10);

	(void)key;
	if (*e != '\0' || e == v || n <= 2 || n > MAGLEV_MAX_SIZE || !maglev_is_prime(n)) {
		LB_LOG(ERR, "table=%s: expected a prime from 3 to %u (65537 or 655373, say)", v,
		       MAGLEV_MAX_SIZE);
		return -EINVAL;
	}
	lb->table_size = (uint32_t)n;
	return 0;
}

static int
parse_proto(const char *key, const char *v, void *arg)
{
	struct lb *lb = arg;

	(void)key;
	if (strcmp(v, "tcp") == 0)
		lb->protos = LB_TCP;
	else if (strcmp(v, "udp") == 0)
		lb->protos = LB_UDP;
	else if (strcmp(v, "both") == 0)
		lb->protos = LB_TCP | LB_UDP;
	else {
		LB_LOG(ERR, "proto=%s: expected tcp, udp or both", v);
		return -EINVAL;
	}
	return 0;
}

void
lb_backend_name(uint8_t name[MAGLEV_NAME_LEN], const union mbx_addr *addr, rte_be16_t port,
		uint8_t family)
{
	memcpy(name, addr->v6, 16);
	memcpy(name + 16, &port, 2);
	name[18] = family;
	name[19] = 0;
}

int
lb_slot_find(const struct lb *lb, const union mbx_addr *addr, rte_be16_t port)
{
	for (uint16_t k = 0; k < lb->nb_used; k++) {
		const struct lb_backend *b = &lb->be[lb->used[k]];

		if (b->port == port && b->addr.u64[0] == addr->u64[0] &&
		    b->addr.u64[1] == addr->u64[1])
			return lb->used[k];
	}
	return -1;
}

int
lb_set_check(const struct lb *lb, const struct lb_set *s)
{
	char ep[64];

	if (s->n > LB_MAX_BACKENDS)
		return -EINVAL;
	for (uint16_t i = 0; i < s->n; i++) {
		for (uint16_t j = 0; j < i; j++) {
			if (s->be[j].port == s->be[i].port &&
			    memcmp(&s->be[j].addr, &s->be[i].addr, sizeof(s->be[i].addr)) == 0) {
				LB_LOG(ERR, "backend %s given twice",
				       lb_endpoint_str(lb->family, &s->be[i].addr, s->be[i].port,
						       ep, sizeof(ep)));
				return -EINVAL;
			}
		}
	}
	return 0;
}

/* The backend of @slot leaves: connections to it see another generation, its counts go. */
static void
slot_free(struct lb *lb, uint16_t slot)
{
	lb->be[slot].in_use = false;
	lb->be[slot].gen++;
	for (unsigned int w = 0; w < RTE_DIM(lb->workers); w++)
		if (lb->workers[w] != NULL)
			memset(&lb->workers[w]->be[slot], 0, sizeof(lb->workers[w]->be[slot]));
}

void
lb_set_apply(struct lb *lb, const struct lb_set *s)
{
	bool stays[LB_MAX_BACKENDS] = {false};
	uint16_t n = 0, slot = 0;

	for (uint16_t i = 0; i < s->n; i++) {
		int k = lb_slot_find(lb, &s->be[i].addr, s->be[i].port);

		if (k >= 0)
			stays[k] = true;
	}
	for (uint16_t k = 0; k < lb->nb_used; k++)
		if (!stays[lb->used[k]])
			slot_free(lb, lb->used[k]);
	for (uint16_t i = 0; i < s->n; i++) {
		int k = lb_slot_find(lb, &s->be[i].addr, s->be[i].port);

		if (k < 0) {
			while (lb->be[slot].in_use)
				slot++;
			k = slot;
			lb->be[k].addr = s->be[i].addr;
			lb->be[k].port = s->be[i].port;
			lb->be[k].in_use = true;
		}
		lb->be[k].weight = s->be[i].weight;
	}
	/* the slots in use, in slot order, and the table over them */
	for (uint16_t k = 0; k < LB_MAX_BACKENDS; k++) {
		struct lb_backend *b = &lb->be[k];

		if (!b->in_use)
			continue;
		lb_backend_name(lb->fill[n].name, &b->addr, b->port, lb->family);
		lb->fill[n].weight = b->weight;
		lb->used[n++] = k;
	}
	lb->nb_used = n;
	/* cannot fail: the size was checked, names are unique */
	RTE_VERIFY(maglev_fill(lb->fill, n, lb->perm, lb->spare, lb->table_size) == 0);
	for (uint32_t e = 0; e < lb->table_size; e++)
		if (lb->spare[e] != MAGLEV_NONE)
			lb->spare[e] = lb->used[lb->spare[e]];
	RTE_SWAP(lb->table, lb->spare);
}

void
lb_flow_set(const struct lb *lb, struct lb_flow *st, uint16_t slot)
{
	const struct lb_backend *b = &lb->be[slot];
	unsigned int words = lb->family == MBX_FAMILY_V6 ? 4 : 1;
	uint32_t ip = 0;

	for (unsigned int i = 0; i < words; i++) {
		uint32_t from, to;

		memcpy(&from, &lb->vip.v6[4 * i], 4);
		memcpy(&to, &b->addr.v6[4 * i], 4);
		ip += mbx_csum_delta32(from, to);
	}
	st->backend = b->addr;
	st->port = b->port;
	st->slot = slot;
	st->gen = b->gen;
	st->ip_delta = mbx_csum_fold(ip);
	/* TCP and UDP sum the pseudo-header's addresses and the port */
	st->l4_delta = mbx_csum_fold(ip + mbx_csum_delta16(lb->vip_port, b->port));
	st->assigned = 1;
}

static void *
lb_create(const struct mbx_nf_params *p)
{
	static const char *const keys[] = {"vip", "backends", "table", "proto", NULL};
	struct rte_kvargs *kv = rte_kvargs_parse(p->args, keys);
	struct lb *lb = NULL;
	struct backends_arg ba;
	char ep[64];

	if (p->nb_ports < 2) {
		LB_LOG(ERR, "needs two ports: clients on port 0, backends on port 1");
		goto fail;
	}
	if (kv == NULL || rte_kvargs_count(kv, "vip") != 1 ||
	    rte_kvargs_count(kv, "backends") > 1 || rte_kvargs_count(kv, "table") > 1 ||
	    rte_kvargs_count(kv, "proto") > 1) {
		LB_LOG(ERR, "expected " LB_USAGE ", got '%s'", p->args);
		goto fail;
	}
	lb = rte_zmalloc_socket("lb", sizeof(*lb), RTE_CACHE_LINE_SIZE, p->socket);
	if (lb == NULL) {
		rte_errno = ENOMEM;
		goto fail_nomem;
	}
	lb->socket = p->socket;
	lb->table_size = LB_TABLE_SIZE;
	lb->protos = LB_TCP | LB_UDP;
	ba.lb = lb;
	ba.set = &lb->put;
	if (rte_kvargs_process(kv, "vip", parse_vip, lb) < 0 ||
	    rte_kvargs_process(kv, "table", parse_table, lb) < 0 ||
	    rte_kvargs_process(kv, "proto", parse_proto, lb) < 0 ||
	    rte_kvargs_process(kv, "backends", parse_backends, &ba) < 0 ||
	    lb_set_check(lb, &lb->put) < 0)
		goto fail;
	lb->table = rte_malloc_socket("lb_table", lb->table_size * sizeof(uint16_t), 0, p->socket);
	lb->spare = rte_malloc_socket("lb_table", lb->table_size * sizeof(uint16_t), 0, p->socket);
	if (lb->table == NULL || lb->spare == NULL) {
		rte_errno = ENOMEM;
		goto fail_nomem;
	}
	lb_set_apply(lb, &lb->put);
	rte_kvargs_free(kv);
	LB_LOG(INFO, "%s: %u backends, table of %u",
	       lb_endpoint_str(lb->family, &lb->vip, lb->vip_port, ep, sizeof(ep)), lb->nb_used,
	       lb->table_size);
	return lb;
fail:
	rte_errno = EINVAL;
fail_nomem:
	rte_kvargs_free(kv);
	if (lb != NULL) {
		rte_free(lb->table);
		rte_free(lb->spare);
		rte_free(lb);
	}
	return NULL;
}

static void
lb_destroy(void *nf)
{
	struct lb *lb = nf;

	rte_free(lb->table);
	rte_free(lb->spare);
	rte_free(lb);
}

static void *
lb_worker_init(void *nf, uint16_t worker, uint16_t nb_workers)
{
	struct lb *lb = nf;
	struct lb_worker *w =
		rte_zmalloc_socket("lb_worker", sizeof(*w), RTE_CACHE_LINE_SIZE, lb->socket);

	(void)nb_workers;
	if (w == NULL) {
		rte_errno = ENOMEM;
		return NULL;
	}
	lb->workers[worker] = w;
	return w;
}

static void
lb_worker_fini(void *nf, void *priv)
{
	struct lb *lb = nf;

	for (unsigned int w = 0; w < RTE_DIM(lb->workers); w++)
		if (lb->workers[w] == priv)
			lb->workers[w] = NULL;
	rte_free(priv);
}

/* Both directions of a connection on the worker of its client, the inside host. */
static int
lb_owner(const void *nf, const struct mbx_pkt *p, uint16_t nb_workers)
{
	(void)nf;
	return mbx_owner_by_host(p->side == MBX_SIDE_INSIDE ? &p->key.src : &p->key.dst,
				 p->key.family, nb_workers);
}

/*
 * Rewrite one endpoint of a TCP or UDP packet and its key: the destination
 * (to the backend) or the source (a reply, back to the VIP).
 */
static void
rewrite(struct rte_mbuf *m, struct mbx_pkt *p, const union mbx_addr *addr, rte_be16_t port,
	uint16_t ip_delta, uint16_t l4_delta, bool dst)
{
	void *l4 = mbx_pkt_l4(m);

	if (p->key.family == MBX_FAMILY_V4) {
		struct rte_ipv4_hdr *ip = mbx_pkt_l3(m);

		*(dst ? &ip->dst_addr : &ip->src_addr) = addr->v4;
		ip->hdr_checksum = mbx_csum_update(ip->hdr_checksum, ip_delta);
	} else {
		struct rte_ipv6_hdr *ip = mbx_pkt_l3(m);

		memcpy(dst ? ip->dst_addr : ip->src_addr, addr->v6, 16);
	}
	if (p->key.proto == IPPROTO_TCP) {
		struct rte_tcp_hdr *th = l4;

		*(dst ? &th->dst_port : &th->src_port) = port;
		th->cksum = mbx_csum_update(th->cksum, l4_delta);
	} else {
		struct rte_udp_hdr *uh = l4;

		*(dst ? &uh->dst_port : &uh->src_port) = port;
		if (uh->dgram_cksum != 0) { /* 0: no checksum, stays so */
			uint16_t c = mbx_csum_update(uh->dgram_cksum, l4_delta);

			uh->dgram_cksum = c == 0 ? 0xffff : c;
		}
	}
	if (dst) {
		p->key.dst = *addr;
		p->key.dport = port;
	} else {
		p->key.src = *addr;
		p->key.sport = port;
	}
}

/* A new connection: its backend from the table, by the hash of its key. */
static int
assign(struct mbx_nf_ctx *c, struct lb *lb, const struct mbx_pkt *p, struct lb_flow *st)
{
	struct lb_stats *s;
	uint16_t slot;

	slot = lb->table[rte_jhash(&p->key, sizeof(p->key), LB_FLOW_SEED) % lb->table_size];
	if (slot == MAGLEV_NONE)
		return -1;
	lb_flow_set(lb, st, slot);
	s = &((struct lb_worker *)c->priv)->be[slot];
	s->active++;
	s->connections++;
	c->counters[LB_CTR_NEW]++;
	return 0;
}

static void
lb_process(struct mbx_nf_ctx *c, struct rte_mbuf **pkts, uint16_t n)
{
	struct lb *lb = c->nf;
	struct lb_worker *w = c->priv;

	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		struct mbx_pkt *p = mbx_pkt(m);
		struct lb_flow *st = mbx_nf_state(c, p->flow);
		struct lb_stats *s;

		if (!st->assigned) {
			/* a connection's first packet (or another of its first burst) */
			if (p->dir != MBX_DIR_ORIG || p->side != MBX_SIDE_INSIDE ||
			    !(p->flow->flags & MBX_FLOW_F_PENDING) || !lb_is_vip(lb, &p->key)) {
				c->counters[LB_CTR_PASSED]++;
				continue;
			}
			if (assign(c, lb, p, st) < 0) {
				mbx_nf_drop(c, m, LB_CTR_NO_BACKEND);
				continue;
			}
		} else if (unlikely(lb->be[st->slot].gen != st->gen)) {
			/* the backend was removed: the connection ends */
			mbx_flow_set_class(c->table, p->flow, MBX_TMO_TCP_CLOSED, c->now);
			mbx_nf_drop(c, m, LB_CTR_REMOVED);
			continue;
		}
		s = &w->be[st->slot];
		s->packets++;
		s->bytes += rte_pktmbuf_pkt_len(m);
		if (p->dir == MBX_DIR_ORIG) {
			rewrite(m, p, &st->backend, st->port, st->ip_delta, st->l4_delta, true);
			c->counters[LB_CTR_TO_BACKEND]++;
		} else {
			rewrite(m, p, &lb->vip, lb->vip_port, mbx_csum_negate(st->ip_delta),
				mbx_csum_negate(st->l4_delta), false);
			c->counters[LB_CTR_FROM_BACKEND]++;
		}
	}
}

static void
lb_flow_free(struct mbx_nf_ctx *c, struct mbx_flow *f)
{
	struct lb_flow *st = mbx_nf_state(c, f);
	struct lb *lb = c->nf;

	if (!st->assigned)
		return;
	if (lb->be[st->slot].gen == st->gen)
		((struct lb_worker *)c->priv)->be[st->slot].active--;
	st->assigned = 0;
	c->counters[LB_CTR_ENDED]++;
}

static const struct mbx_nf_ops lb_ops = {
	.name = "lb",
	.usage = LB_USAGE "  Maglev L4 load balancer; table 65537, proto both by default",
	.flow_state_size = sizeof(struct lb_flow),
	.state_version = 1,
	.state_types = {"mbx.v1.LbFlowState", "mbx.v1.LbBackendStats", "mbx.v1.LbBackends"},
	.counter_names = lb_counter_names,
	.nb_counters = LB_CTR_MAX,
	.create = lb_create,
	.destroy = lb_destroy,
	.worker_init = lb_worker_init,
	.worker_fini = lb_worker_fini,
	.owner = lb_owner,
	.process = lb_process,
	.flow_free = lb_flow_free,
	.flow_get = lb_flow_get,
	.flow_put = lb_flow_put,
	.multi_get = lb_multi_get,
	.multi_put = lb_multi_put,
	.multi_del = lb_multi_del,
	.all_get = lb_all_get,
	.all_put = lb_all_put,
};

MBX_NF_REGISTER(lb_ops);
