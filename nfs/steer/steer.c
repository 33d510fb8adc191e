/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * steer: routes flows to NF instances (`--nf steer[,spread=LO-HI]`).
 *
 * Packets from the inside (port 0) leave by the port of the first route
 * whose filter matches, or else by a port chosen by the flow's symmetric
 * hash among the spread ports (every outside port by default); packets
 * from the outside go back to port 0. It keeps no per-flow state: a route
 * change moves every flow of its filter at once, which is what a move
 * wants. In a deployment an SDN switch can play this part.
 *
 * The route table is all-flows state (mbx.v1.SteerRoutes), changed by
 * PutAllflows or Steer.SetRoute while the workers are parked between
 * bursts, so every packet sees either the old table or the new. A change
 * installed with a marker id sends a MARKER on every outside port behind
 * the last packet sent there: the instance at the end of the old path
 * learns that nothing of the moved flows follows (mbx_marker.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_kvargs.h>
#include <rte_malloc.h>

#include "mbx/v1/steer.pb-c.h"
#include "mbx_nf.h"
#include "mbx_pbconv.h"

#define STEER_MAX_ROUTES 64

RTE_LOG_REGISTER(steer_logtype, user.mbx.steer, NOTICE);
#define STEER_LOG(level, fmt, ...) \
	rte_log(RTE_LOG_##level, steer_logtype, "mbx.steer: " fmt "\n", ##__VA_ARGS__)

#define STEER_COUNTERS(X)   \
	X(ROUTED, "routed") \
	X(HASHED, "hashed") \
	X(RETURNED, "returned")

enum steer_counter {
#define X(e, s) STEER_CTR_##e,
	STEER_COUNTERS(X)
#undef X
		STEER_CTR_MAX
};

static const char *const steer_counter_names[STEER_CTR_MAX] = {
#define X(e, s) s,
	STEER_COUNTERS(X)
#undef X
};

struct steer_route {
	struct mbx_filter filter;
	uint16_t port;
};

struct steer {
	uint16_t nb_ports;
	uint16_t nb_routes;
	uint16_t nb_spread;
	uint16_t spread[MBX_MAX_PORTS];
	struct steer_route routes[STEER_MAX_ROUTES];
};

static void
steer_process(struct mbx_nf_ctx *c, struct rte_mbuf **pkts, uint16_t n)
{
	const struct steer *s = c->nf;

	for (uint16_t i = 0; i < n; i++) {
		struct mbx_pkt *p = mbx_pkt(pkts[i]);
		uint16_t r;

		if (p->side != MBX_SIDE_INSIDE) {
			c->counters[STEER_CTR_RETURNED]++;
			continue;
		}
		for (r = 0; r < s->nb_routes; r++)
			if (mbx_filter_match(&s->routes[r].filter, &p->key))
				break;
		if (r < s->nb_routes) {
			p->out_port = (uint8_t)s->routes[r].port;
			c->counters[STEER_CTR_ROUTED]++;
		} else {
			p->out_port = (uint8_t)s->spread[mbx_flow_hash(&p->key) % s->nb_spread];
			c->counters[STEER_CTR_HASHED]++;
		}
	}
}

static int
parse_spread(const char *key, const char *v, void *arg)
{
	struct steer *s = arg;
	unsigned long lo, hi;
	char *end;

	(void)key;
	lo = strtoul(v, &end, 10);
	hi = lo;
	if (*end == '-')
		hi = strtoul(end + 1, &end, 10);
	if (*end != '\0' || lo == 0 || hi < lo || hi >= s->nb_ports)
		return -EINVAL;
	s->nb_spread = 0;
	for (unsigned long p = lo; p <= hi; p++)
		s->spread[s->nb_spread++] = (uint16_t)p;
	return 0;
}

static void *
steer_create(const struct mbx_nf_params *p)
{
	static const char *const keys[] = {"spread", NULL};
	struct rte_kvargs *kv = rte_kvargs_parse(p->args, keys);
	struct steer *s;

	if (p->nb_ports < 2 || kv == NULL) {
		STEER_LOG(ERR, "needs two ports or more and 'spread=LO-HI' at most, got '%s'",
			  p->args);
		rte_kvargs_free(kv);
		rte_errno = EINVAL;
		return NULL;
	}
	s = rte_zmalloc_socket("steer", sizeof(*s), RTE_CACHE_LINE_SIZE, p->socket);
	if (s == NULL) {
		rte_kvargs_free(kv);
		rte_errno = ENOMEM;
		return NULL;
	}
	s->nb_ports = p->nb_ports;
	for (uint16_t port = 1; port < p->nb_ports; port++)
		s->spread[s->nb_spread++] = port;
	if (rte_kvargs_process(kv, "spread", parse_spread, s) < 0) {
		STEER_LOG(ERR, "spread=LO-HI must name outside ports 1-%u", p->nb_ports - 1);
		rte_kvargs_free(kv);
		rte_free(s);
		rte_errno = EINVAL;
		return NULL;
	}
	rte_kvargs_free(kv);
	return s;
}

static void
steer_destroy(void *nf)
{
	rte_free(nf);
}

static int
steer_all_get(void *nf, mbx_state_emit emit, void *arg)
{
	const struct steer *s = nf;
	Mbx__V1__SteerRoutes m = MBX__V1__STEER_ROUTES__INIT;
	Mbx__V1__SteerRoute routes[STEER_MAX_ROUTES], *rp[STEER_MAX_ROUTES];
	struct mbx_pb_filter filters[STEER_MAX_ROUTES];
	uint32_t spread[MBX_MAX_PORTS];
	uint8_t *buf;
	size_t len;
	int rc;

	for (uint16_t i = 0; i < s->nb_routes; i++) {
		mbx__v1__steer_route__init(&routes[i]);
		routes[i].filter = mbx_filter_to_pb(&s->routes[i].filter, &filters[i]);
		routes[i].port = s->routes[i].port;
		rp[i] = &routes[i];
	}
	for (uint16_t i = 0; i < s->nb_spread; i++)
		spread[i] = s->spread[i];
	m.n_routes = s->nb_routes;
	m.routes = rp;
	m.n_spread_ports = s->nb_spread;
	m.spread_ports = spread;
	len = mbx__v1__steer_routes__get_packed_size(&m);
	buf = malloc(len + 1);
	if (buf == NULL)
		return -ENOMEM;
	mbx__v1__steer_routes__pack(&m, buf);
	rc = emit(arg, NULL, NULL, buf, len);
	free(buf);
	return rc;
}

static int
steer_all_put(void *nf, const uint8_t *buf, size_t len, bool commit)
{
	struct steer *s = nf;
	Mbx__V1__SteerRoutes *m = mbx__v1__steer_routes__unpack(NULL, len, buf);
	struct steer next = *s;
	int rc = -EINVAL;

	if (m == NULL)
		return -EBADMSG;
	if (m->n_routes > STEER_MAX_ROUTES || m->n_spread_ports > MBX_MAX_PORTS)
		goto out;
	next.nb_routes = 0;
	for (size_t i = 0; i < m->n_routes; i++) {
		struct steer_route *r = &next.routes[next.nb_routes++];

		if (mbx_filter_from_pb(m->routes[i]->filter, &r->filter) < 0 ||
		    m->routes[i]->port == 0 || m->routes[i]->port >= s->nb_ports)
			goto out;
		r->port = (uint16_t)m->routes[i]->port;
	}
	if (m->n_spread_ports > 0) {
		next.nb_spread = 0;
		for (size_t i = 0; i < m->n_spread_ports; i++) {
			if (m->spread_ports[i] == 0 || m->spread_ports[i] >= s->nb_ports)
				goto out;
			next.spread[next.nb_spread++] = (uint16_t)m->spread_ports[i];
		}
	}
	rc = 0;
	if (!commit)
		goto out;
	/* the workers are parked: no packet sees half a table */
	*s = next;
	/* the receiving instances count them (parse result "marker") */
	for (uint16_t port = 1; m->marker_id != 0 && port < s->nb_ports && rc >= 0; port++)
		rc = mbx_nf_send_marker(port, m->marker_id);
	if (rc < 0)
		STEER_LOG(ERR, "marker %" PRIu64 ": %s", m->marker_id, rte_strerror(-rc));
	rc = rc < 0 ? rc : 0;
out:
	mbx__v1__steer_routes__free_unpacked(m, NULL);
	return rc;
}

static const struct mbx_nf_ops steer_ops = {
	.name = "steer",
	.usage = "[spread=LO-HI]  routes flows to outside ports by filter, else by hash",
	.state_version = 1,
	.state_types = {NULL, NULL, "mbx.v1.SteerRoutes"},
	.counter_names = steer_counter_names,
	.nb_counters = STEER_CTR_MAX,
	.create = steer_create,
	.destroy = steer_destroy,
	.process = steer_process,
	.all_get = steer_all_get,
	.all_put = steer_all_put,
};

MBX_NF_REGISTER(steer_ops);
