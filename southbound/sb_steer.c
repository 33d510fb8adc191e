/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * service Steer: SetRoute, a read-modify-write of the steer NF's all-flows
 * state (mbx.v1.SteerRoutes) with the workers parked once, so that the
 * route table, its checks and the markers stay in one place: steer's
 * all_put.
 */
#include <errno.h>
#include <stdlib.h>
#include <inttypes.h>
#include <string.h>

#include <rte_log.h>

#include "mbx/v1/steer.pb-c.h"
#include "mbx_sb.h"
#include "mbx_state.h"

#define ROUTES_MAX_BYTES (256u << 10)

/* A SetRoute applied to the route table (route_edit). */
struct route_edit {
	const Mbx__V1__SetRouteRequest *req;
	struct mbx_filter want;
	uint16_t nf;
	uint8_t *out; /* the new table's record, the caller frees it */
	size_t n;     /* routes in it */
};

/*
 * The new table: a new route first (the newest decision wins over older,
 * wider ones: a flow moved out of a prefix), then the old routes, the one
 * of this filter replaced or removed. Runs with the workers parked.
 */
static long
route_edit(const uint8_t *recs, size_t len, const uint8_t **out, void *arg)
{
	struct route_edit *e = arg;
	const struct mbx_state_rec *rec = (const void *)recs;
	Mbx__V1__SteerRoute route = MBX__V1__STEER_ROUTE__INIT, **list, **orig;
	Mbx__V1__SteerRoutes *routes;
	struct mbx_state_rec *r;
	struct mbx_filter have;
	size_t n = 0, found, orig_n;

	if (len == 0)
		return -EIO;
	routes = mbx__v1__steer_routes__unpack(NULL, rec->state_len, rec->state);
	list = calloc(routes ? routes->n_routes + 2 : 2, sizeof(*list));
	if (routes == NULL || list == NULL) {
		free(list);
		mbx__v1__steer_routes__free_unpacked(routes, NULL);
		return -ENOMEM;
	}
	orig = routes->routes;
	orig_n = routes->n_routes;
	found = routes->n_routes;
	for (size_t i = 0; i < routes->n_routes; i++) {
		if (mbx_filter_from_pb(routes->routes[i]->filter, &have) == 0 &&
		    memcmp(&have, &e->want, sizeof(have)) == 0)
			found = i;
	}
	if (found == routes->n_routes && !e->req->remove) {
		route.filter = e->req->filter;
		route.port = e->req->port;
		list[n++] = &route;
	}
	for (size_t i = 0; i < routes->n_routes; i++) {
		if (i == found) {
			if (e->req->remove)
				continue;
			routes->routes[i]->port = e->req->port;
		}
		list[n++] = routes->routes[i];
	}
	routes->n_routes = n;
	routes->routes = list;
	routes->marker_id = e->req->marker_id;
	/* re-packed into one record for the framework's all-flows put */
	e->out = malloc(mbx_state_rec_size(mbx__v1__steer_routes__get_packed_size(routes)));
	if (e->out != NULL) {
		r = (struct mbx_state_rec *)e->out;
		memset(r, 0, sizeof(*r));
		r->nf = e->nf;
		r->scope = MBX_SCOPE_ALL_FLOWS;
		r->state_len = (uint32_t)mbx__v1__steer_routes__pack(routes, r->state);
		r->len = (uint32_t)mbx_state_rec_size(r->state_len);
		e->n = n;
	}
	/* give the message back its own route list to free */
	routes->n_routes = orig_n;
	routes->routes = orig;
	mbx__v1__steer_routes__free_unpacked(routes, NULL);
	free(list);
	if (e->out == NULL)
		return -ENOMEM;
	*out = e->out;
	return ((struct mbx_state_rec *)e->out)->len;
}

static int
set_route(struct sb_call *call, const uint8_t *payload, size_t len)
{
	Mbx__V1__SetRouteRequest *req = mbx__v1__set_route_request__unpack(NULL, len, payload);
	Mbx__V1__SetRouteResponse r = MBX__V1__SET_ROUTE_RESPONSE__INIT;
	Mbx__V1__Status st = MBX__V1__STATUS__INIT;
	struct route_edit e = {.req = req};
	int nf = sb_nf_index("steer"), rc;
	uint8_t *buf = NULL;
	uint16_t bad;

	if (req == NULL)
		return -EBADMSG;
	if (nf < 0) {
		rc = sb_reply_error(call, ENOENT, "no steer NF in this instance");
		goto out;
	}
	if (mbx_filter_from_pb(req->filter, &e.want) < 0) {
		rc = sb_reply_error(call, EINVAL, "bad filter");
		goto out;
	}
	e.nf = (uint16_t)nf;
	buf = malloc(ROUTES_MAX_BYTES);
	rc = buf != NULL ? mbx_state_all_update(sb_dp(), nf, buf, ROUTES_MAX_BYTES, route_edit, &e,
						&bad)
			 : -ENOMEM;
	if (rc < 0) {
		rc = sb_reply_error(call, -rc, "the route was not set: %s", strerror(-rc));
		goto out;
	}
	{
		char fs[MBX_FLOW_KEY_STRLEN];
		struct mbx_flow_key k = {.family = e.want.family,
					 .proto = e.want.proto,
					 .src = e.want.src.addr,
					 .dst = e.want.dst.addr};

		mbx_flow_key_str(&k, fs, sizeof(fs));
		SB_LOG(NOTICE, "steer: route %s (/%u) %s port %u, marker %" PRIu64 ": %zu routes",
		       fs, e.want.src.len, req->remove ? "removed from" : "to", req->port,
		       req->marker_id, e.n);
	}
	r.status = &st;
	r.routes = (uint32_t)e.n;
	rc = sb_reply(call, &r.base, false);
	rc = rc == -ECONNRESET ? 0 : rc;
out:
	free(e.out);
	free(buf);
	mbx__v1__set_route_request__free_unpacked(req, NULL);
	return rc;
}

const struct sb_method sb_steer_methods[] = {
	{"/mbx.v1.Steer/SetRoute", set_route},
	{NULL, NULL},
};
