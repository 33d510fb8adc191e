/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * service Events: event rules on every worker, and the stream of NOTIFY
 * copies to subscribers. See mbx_events.h for what the workers do.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <rte_lcore.h>
#include <rte_ring.h>

#include "mbx/v1/events.pb-c.h"
#include "mbx_ctrl.h"
#include "mbx_events.h"
#include "mbx_sb.h"

#define MAX_SUBSCRIBERS 16
/* NOTIFY copies per frame to a subscriber. */
#define EVENTS_PER_FRAME 64

static uint32_t next_rule_id = 1;
static struct sb_call *subscribers[MAX_SUBSCRIBERS];
/* Held packets a worker releases per request: it serves its queues between two (ms, not 100s). */
#define RELEASE_SLICE 4096

static unsigned int nb_subscribers;
static uint64_t lost_unsent; /* copies drained with nobody to send them to */

/* Undo an enable on the workers that took it (those before @upto). */
static void
disable_on(uint32_t id, uint16_t upto, struct rte_ring **rings)
{
	struct mbx_dp *dp = sb_dp();

	for (uint16_t w = 0; w < upto; w++) {
		struct mbx_event_disable d = {.id = id, .release_drop = true};

		mbx_ctrl_call(dp->workers[w], mbx_events_disable, &d);
	}
	for (uint16_t w = 0; w < dp->nb_workers; w++)
		rte_ring_free(rings[w]);
}

/* Rings handed back, freed once the loop has polled and written what was ready. */
#define LATER_MAX 64
static struct rte_ring *later[LATER_MAX];
static unsigned int nb_later;
static struct event *later_ev;

static void
free_later(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	while (nb_later > 0)
		rte_ring_free(later[--nb_later]);
}

void
sb_ring_free_later(struct rte_ring *r)
{
	/* a timer: libevent runs a zero-timeout event_base_once() in the same turn */
	static const struct timeval now = {0, 0};

	if (r == NULL)
		return;
	if (later_ev == NULL)
		later_ev = evtimer_new(sb_base(), free_later, NULL);
	if (later_ev == NULL || nb_later == LATER_MAX) {
		rte_ring_free(r);
		return;
	}
	later[nb_later++] = r;
	evtimer_add(later_ev, &now);
}

uint32_t
sb_rule_add(uint8_t action, const struct mbx_filter *f, uint32_t limit, mbx_redirect_fn redirect,
	    void *arg, char *msg, size_t mlen)
{
	struct mbx_dp *dp = sb_dp();
	struct rte_ring *rings[RTE_MAX_LCORE] = {NULL};
	struct mbx_event_enable e;

	memset(&e, 0, sizeof(e));
	e.rule.filter = *f;
	e.rule.action = action;
	e.rule.redirect = redirect;
	e.rule.redirect_arg = arg;
	e.rule.id = next_rule_id++;
	for (uint16_t w = 0; w < dp->nb_workers && action == MBX_ACTION_BUFFER; w++) {
		char name[RTE_RING_NAMESIZE];

		snprintf(name, sizeof(name), "mbx_ev_%u_%u", e.rule.id, w);
		rings[w] = rte_ring_create(name, limit ? limit : MBX_EVENT_BUFFER_DEFAULT,
					   rte_socket_id(),
					   RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
		if (rings[w] == NULL) {
			disable_on(e.rule.id, 0, rings);
			snprintf(msg, mlen, "no memory for a buffer of %u packets", limit);
			return 0;
		}
	}
	for (uint16_t w = 0; w < dp->nb_workers; w++) {
		int rc;

		e.rule.buf = rings[w];
		rc = mbx_ctrl_call(dp->workers[w], mbx_events_enable, &e);
		if (rc < 0) {
			disable_on(e.rule.id, w, rings);
			snprintf(msg, mlen, "worker %u: %s (at most %d rules)", w, strerror(-rc),
				 MBX_EVENT_RULES_MAX);
			return 0;
		}
	}
	return e.rule.id;
}

uint32_t
sb_rule_remove(uint32_t id, const struct mbx_filter *f, bool drop, uint64_t *released,
	       uint64_t *dropped, uint64_t *overflow)
{
	struct mbx_dp *dp = sb_dp();
	struct mbx_event_disable d;

	memset(&d, 0, sizeof(d));
	d.id = id;
	d.release_drop = drop;
	d.budget = RELEASE_SLICE;
	if (f != NULL)
		d.filter = *f;
	for (uint16_t w = 0; w < dp->nb_workers; w++) {
		do {
			d.nb_bufs = 0;
			d.more = false;
			if (mbx_ctrl_call(dp->workers[w], mbx_events_disable, &d) < 0)
				break;
			for (uint16_t i = 0; i < d.nb_bufs; i++)
				sb_ring_free_later(d.bufs[i]);
		} while (d.more);
	}
	if (released != NULL)
		*released = d.released;
	if (dropped != NULL)
		*dropped = d.dropped;
	if (overflow != NULL)
		*overflow = d.overflow;
	return d.rules / dp->nb_workers;
}

static int
enable_events(struct sb_call *call, const uint8_t *payload, size_t len)
{
	Mbx__V1__EnableEventsRequest *req =
		mbx__v1__enable_events_request__unpack(NULL, len, payload);
	Mbx__V1__EnableEventsResponse r = MBX__V1__ENABLE_EVENTS_RESPONSE__INIT;
	Mbx__V1__Status st = MBX__V1__STATUS__INIT;
	struct mbx_filter f;
	uint32_t limit, id;
	uint8_t action;
	char msg[128];
	int rc;

	if (req == NULL)
		return -EBADMSG;
	rc = mbx_filter_from_pb(req->filter, &f);
	action = (uint8_t)req->action;
	limit = req->buffer_limit;
	mbx__v1__enable_events_request__free_unpacked(req, NULL);
	if (rc < 0)
		return sb_reply_error(call, EINVAL, "bad filter");
	if (action >= MBX_ACTION_MAX)
		return sb_reply_error(call, EINVAL, "unknown action %u", action);
	if (action == MBX_ACTION_REDIRECT)
		return sb_reply_error(call, ENOTSUP, "REDIRECT is set up by a move, not directly");
	if (limit > (1u << 20))
		return sb_reply_error(call, EINVAL, "buffer_limit %u above 1048576", limit);
	id = sb_rule_add(action, &f, limit, NULL, NULL, msg, sizeof(msg));
	if (id == 0)
		return sb_reply_error(call, ENOSPC, "%s", msg);
	r.status = &st;
	r.rule_id = id;
	sb_reply(call, &r.base, false);
	return 0;
}

static int
disable_events(struct sb_call *call, const uint8_t *payload, size_t len)
{
	Mbx__V1__DisableEventsRequest *req =
		mbx__v1__disable_events_request__unpack(NULL, len, payload);
	Mbx__V1__DisableEventsResponse r = MBX__V1__DISABLE_EVENTS_RESPONSE__INIT;
	Mbx__V1__Status st = MBX__V1__STATUS__INIT;
	struct mbx_filter f;
	uint32_t id;
	bool drop;
	int rc;

	if (req == NULL)
		return -EBADMSG;
	id = req->rule_id;
	drop = req->release == MBX__V1__RELEASE__RELEASE_DROP;
	rc = mbx_filter_from_pb(req->filter, &f);
	mbx__v1__disable_events_request__free_unpacked(req, NULL);
	if (rc < 0)
		return sb_reply_error(call, EINVAL, "bad filter");
	r.rules =
		sb_rule_remove(id, id != 0 ? NULL : &f, drop, &r.released, &r.dropped, &r.overflow);
	if (r.rules == 0)
		return sb_reply_error(call, ENOENT, "no such rule");
	r.status = &st;
	sb_reply(call, &r.base, false);
	return 0;
}

static void
unsubscribe(struct sb_call *call, void *arg)
{
	(void)arg;
	for (unsigned int i = 0; i < nb_subscribers; i++) {
		if (subscribers[i] == call) {
			subscribers[i] = subscribers[--nb_subscribers];
			return;
		}
	}
}

static int
subscribe(struct sb_call *call, const uint8_t *payload, size_t len)
{
	Mbx__V1__SubscribeRequest *req = mbx__v1__subscribe_request__unpack(NULL, len, payload);

	if (req == NULL)
		return -EBADMSG;
	mbx__v1__subscribe_request__free_unpacked(req, NULL);
	if (nb_subscribers == MAX_SUBSCRIBERS)
		return sb_reply_error(call, EBUSY, "%d subscribers already", MAX_SUBSCRIBERS);
	subscribers[nb_subscribers++] = call;
	sb_call_keep(call, unsubscribe, NULL);
	return 0;
}

static void
send_events(struct rte_mbuf **copies, unsigned int n, uint64_t lost)
{
	Mbx__V1__SubscribeResponse r = MBX__V1__SUBSCRIBE_RESPONSE__INIT;
	Mbx__V1__Event ev[EVENTS_PER_FRAME], *evp[EVENTS_PER_FRAME];
	struct mbx_pb_key keys[EVENTS_PER_FRAME];

	for (unsigned int i = 0; i < n; i++) {
		struct rte_mbuf *m = copies[i];

		mbx__v1__event__init(&ev[i]);
		ev[i].reason = MBX__V1__REASON__REASON_NOTIFY;
		ev[i].in_port = m->port;
		/* a copy has no metadata: parse it again, here on the main lcore */
		if (mbx_parse(m) == MBX_PARSE_OK)
			ev[i].key = mbx_key_to_pb(&mbx_pkt(m)->key, &keys[i]);
		ev[i].packet.data = rte_pktmbuf_mtod(m, uint8_t *);
		ev[i].packet.len = rte_pktmbuf_data_len(m);
		evp[i] = &ev[i];
	}
	r.n_events = n;
	r.events = evp;
	r.lost = lost;
	for (unsigned int s = 0; s < nb_subscribers; s++)
		if (sb_call_writable(subscribers[s]))
			sb_reply(subscribers[s], &r.base, true);
}

void
sb_events_pump(void)
{
	struct mbx_dp *dp = sb_dp();
	struct rte_mbuf *copies[EVENTS_PER_FRAME];

	for (uint16_t w = 0; w < dp->nb_workers; w++) {
		unsigned int n;

		while ((n = rte_ring_sc_dequeue_burst(dp->workers[w]->ev.notify, (void **)copies,
						      EVENTS_PER_FRAME, NULL)) > 0) {
			if (nb_subscribers > 0) {
				send_events(copies, n, lost_unsent);
				lost_unsent = 0;
			} else {
				lost_unsent += n;
			}
			rte_pktmbuf_free_bulk(copies, n);
		}
	}
}

void
sb_events_fini(void)
{
	nb_subscribers = 0;
	/* the loop has stopped: what a move's end handed back is freed here */
	free_later(-1, 0, NULL);
	if (later_ev != NULL)
		event_free(later_ev);
	later_ev = NULL;
}

const struct sb_method sb_events_methods[] = {
	{"/mbx.v1.Events/EnableEvents", enable_events},
	{"/mbx.v1.Events/DisableEvents", disable_events},
	{"/mbx.v1.Events/Subscribe", subscribe},
	{NULL, NULL},
};
