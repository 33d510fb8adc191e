/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * service Steer: SetRoute, a read-modify-write of the steer NF's all-flows
 * state (mbx.v1.SteerRoutes), so that the route table, its checks and the
 * markers stay in one place: steer's all_put.
 */
#include <errno.h>
#include <stdlib.h>
#include <inttypes.h>
#include <string.h>

#include <rte_log.h>

#include "mbx/v1/steer.pb-c.h"
#include "mbx_sb.h"
#include "mbx_state.h"

#define SB_STEER_LOG(fmt, ...) \
	rte_log(RTE_LOG_NOTICE, RTE_LOGTYPE_USER1, "mbx.steer: " fmt "\n", ##__VA_ARGS__)

#define ROUTES_MAX_BYTES (256u << 10)

static int
set_route(struct sb_call *call, const uint8_t *payload, size_t len)
{
	Mbx__V1__SetRouteRequest *req = mbx__v1__set_route_request__unpack(NULL, len, payload);
	Mbx__V1__SetRouteResponse r = MBX__V1__SET_ROUTE_RESPONSE__INIT;
	Mbx__V1__Status st = MBX__V1__STATUS__INIT;
	Mbx__V1__SteerRoutes *routes = NULL;
	Mbx__V1__SteerRoute route = MBX__V1__STEER_ROUTE__INIT, **list = NULL, **orig = NULL;
	struct mbx_filter want, have;
	struct mbx_state_rec *rec;
	uint8_t *buf = NULL, *out = NULL;
	int nf = sb_nf_index("steer"), rc;
	size_t n = 0, found, orig_n = 0;
	long got;
	uint16_t bad;

	if (req == NULL)
		return -EBADMSG;
	if (nf < 0) {
		rc = sb_reply_error(call, ENOENT, "no steer NF in this instance");
		goto out;
	}
	if (mbx_filter_from_pb(req->filter, &want) < 0) {
		rc = sb_reply_error(call, EINVAL, "bad filter");
		goto out;
	}
	buf = malloc(ROUTES_MAX_BYTES);
	got = buf ? mbx_state_all_get(sb_dp(), nf, buf, ROUTES_MAX_BYTES) : -ENOMEM;
	if (got <= 0) {
		rc = got < 0 ? (int)got : -EIO;
		goto out;
	}
	rec = (struct mbx_state_rec *)buf;
	routes = mbx__v1__steer_routes__unpack(NULL, rec->state_len, rec->state);
	list = calloc(routes ? routes->n_routes + 2 : 2, sizeof(*list));
	if (routes == NULL || list == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	/* the new table: a new route first (the newest decision wins over older,
	 * wider ones: a flow moved out of a prefix), then the old routes, the one
	 * of this filter replaced or removed */
	orig = routes->routes;
	orig_n = routes->n_routes;
	found = routes->n_routes;
	for (size_t i = 0; i < routes->n_routes; i++) {
		if (mbx_filter_from_pb(routes->routes[i]->filter, &have) == 0 &&
		    memcmp(&have, &want, sizeof(have)) == 0)
			found = i;
	}
	if (found == routes->n_routes && !req->remove) {
		route.filter = req->filter;
		route.port = req->port;
		list[n++] = &route;
	}
	for (size_t i = 0; i < routes->n_routes; i++) {
		if (i == found) {
			if (req->remove)
				continue;
			routes->routes[i]->port = req->port;
		}
		list[n++] = routes->routes[i];
	}
	routes->n_routes = n;
	routes->routes = list;
	routes->marker_id = req->marker_id;
	/* re-pack into one record for the framework's all-flows put */
	out = malloc(mbx_state_rec_size(mbx__v1__steer_routes__get_packed_size(routes)));
	if (out == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rec = (struct mbx_state_rec *)out;
	memset(rec, 0, sizeof(*rec));
	rec->nf = (uint16_t)nf;
	rec->scope = MBX_SCOPE_ALL_FLOWS;
	rec->state_len = (uint32_t)mbx__v1__steer_routes__pack(routes, rec->state);
	rec->len = (uint32_t)mbx_state_rec_size(rec->state_len);
	rc = mbx_state_all_put(sb_dp(), out, rec->len, &bad);
	if (rc < 0) {
		rc = sb_reply_error(call, -rc, "steer refused the route: %s", strerror(-rc));
		goto out;
	}
	{
		char fs[MBX_FLOW_KEY_STRLEN];
		struct mbx_flow_key k = {.family = want.family,
					 .proto = want.proto,
					 .src = want.src.addr,
					 .dst = want.dst.addr};

		mbx_flow_key_str(&k, fs, sizeof(fs));
		SB_STEER_LOG("route %s (/%u) %s port %u, marker %" PRIu64 ": %zu routes", fs,
			     want.src.len, req->remove ? "removed from" : "to", req->port,
			     req->marker_id, n);
	}
	r.status = &st;
	r.routes = (uint32_t)n;
	rc = sb_reply(call, &r.base, false);
	rc = rc == -ECONNRESET ? 0 : rc;
out:
	if (routes != NULL) {
		/* give the message back its own route list to free */
		routes->n_routes = orig_n;
		routes->routes = orig;
		mbx__v1__steer_routes__free_unpacked(routes, NULL);
	}
	free(list);
	free(out);
	free(buf);
	mbx__v1__set_route_request__free_unpacked(req, NULL);
	return rc;
}

const struct sb_method sb_steer_methods[] = {
	{"/mbx.v1.Steer/SetRoute", set_route},
	{NULL, NULL},
};
