/* SPDX-License-Identifier: BSD-3-Clause */
/* Event rules on the worker: see mbx_events.h. */
#include <errno.h>
#include <string.h>

#include "mbx_events.h"
#include "mbx_marker.h"
#include "mbx_worker.h"

int
mbx_events_enable(struct mbx_worker *w, void *arg)
{
	const struct mbx_event_enable *e = arg;

	if (w->ev.n == MBX_EVENT_RULES_MAX)
		return -ENOSPC;
	w->ev.rules[w->ev.n++] = e->rule;
	return 0;
}

/* Release (or drop) up to @p budget (0: all) packets of @p r. @return true when it is empty. */
static bool
release(struct mbx_worker *w, struct rte_ring *r, struct mbx_event_disable *d, uint32_t budget)
{
	struct rte_mbuf *pkts[MBX_BURST];
	uint64_t done = 0;
	unsigned int n;

	while ((budget == 0 || done < budget) &&
	       (n = rte_ring_sc_dequeue_burst(r, (void **)pkts, MBX_BURST, NULL)) > 0) {
		done += n;
		if (d->release_drop) {
			rte_pktmbuf_free_bulk(pkts, n);
			d->dropped += n;
			w->stats[MBX_WSTAT_EV_DROPPED] += n;
			continue;
		}
		d->released += n;
		w->stats[MBX_WSTAT_EV_RELEASED] += n;
		mbx_worker_owned(w, pkts, n);
	}
	mbx_worker_flush(w);
	return rte_ring_empty(r);
}

int
mbx_events_disable(struct mbx_worker *w, void *arg)
{
	struct mbx_event_disable *d = arg;
	struct mbx_event_rule held[MBX_EVENT_RULES_MAX];
	uint16_t at[MBX_EVENT_RULES_MAX], nb_held = 0, k = 0;

	if (!d->release_drop) {
		/*
		 * What was handed to this worker meanwhile goes first, through the
		 * rules as they are: a move's redirected packets (they came before
		 * the release) pass; packets of a held flow queue behind the others.
		 */
		struct rte_mbuf *pkts[MBX_BURST];
		unsigned int n;

		while ((n = rte_ring_sc_dequeue_burst(w->handoff, (void **)pkts, MBX_BURST, NULL)) >
		       0)
			mbx_worker_owned(w, pkts, n);
	}
	for (uint16_t i = 0; i < w->ev.n; i++) {
		struct mbx_event_rule *r = &w->ev.rules[i];
		bool hit = d->id != 0 ? r->id == d->id
				      : memcmp(&r->filter, &d->filter, sizeof(d->filter)) == 0;

		if (!hit) {
			w->ev.rules[k++] = *r;
		} else if (r->buf == NULL) {
			d->rules++;
		} else {
			/* counted once: a rule that holds on counts afresh */
			d->overflow += r->overflow;
			r->overflow = 0;
			at[nb_held] = k; /* where it goes back if it keeps holding */
			held[nb_held++] = *r;
		}
	}
	w->ev.n = k;
	/* released packets see the rules without the ones that held them */
	for (uint16_t i = 0, back = 0; i < nb_held; i++) {
		uint16_t pos = at[i] + back;

		if (release(w, held[i].buf, d, d->release_drop ? 0 : d->budget)) {
			d->rules++;
			d->bufs[d->nb_bufs++] = held[i].buf;
			continue;
		}
		/* more than a slice: the rule holds on, in its place, behind what it has */
		memmove(&w->ev.rules[pos + 1], &w->ev.rules[pos],
			(w->ev.n - pos) * sizeof(w->ev.rules[0]));
		w->ev.rules[pos] = held[i];
		w->ev.n++;
		back++;
		d->more = true;
	}
	return 0;
}

static struct mbx_event_rule *
match(struct mbx_events *ev, const struct mbx_flow_key *orig, const struct mbx_flow_key *k)
{
	struct mbx_flow_key rev;

	for (uint16_t i = 0; i < ev->n; i++) {
		if (orig != NULL) {
			if (mbx_filter_match(&ev->rules[i].filter, orig))
				return &ev->rules[i];
			continue;
		}
		/* no flow yet: the packet may come from either end */
		if (mbx_filter_match(&ev->rules[i].filter, k))
			return &ev->rules[i];
		mbx_flow_key_reverse(&rev, k);
		if (mbx_filter_match(&ev->rules[i].filter, &rev))
			return &ev->rules[i];
	}
	return NULL;
}

uint16_t
mbx_events_apply(struct mbx_worker *w, struct rte_mbuf **pkts, struct mbx_flow **flows,
		 uint8_t *dirs, uint16_t n)
{
	uint16_t k = 0;

	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i], *copy;
		const struct mbx_flow_key *orig =
			flows[i] != NULL ? &mbx_flow_keys(w->table, flows[i])[0] : NULL;
		struct mbx_event_rule *r;

		/* a move's redirected packets are what the rules wait for: let them by */
		if (m->ol_flags & mbx_flag_redirected)
			goto keep;
		r = match(&w->ev, orig, &mbx_pkt(m)->key);
		if (r == NULL)
			goto keep;
		switch (r->action) {
		case MBX_ACTION_DROP:
			rte_pktmbuf_free(m);
			w->stats[MBX_WSTAT_EV_DROPPED]++;
			continue;
		case MBX_ACTION_BUFFER:
			if (rte_ring_sp_enqueue(r->buf, m) != 0) {
				rte_pktmbuf_free(m);
				r->overflow++;
				w->stats[MBX_WSTAT_EV_OVERFLOW]++;
			} else {
				w->stats[MBX_WSTAT_EV_BUFFERED]++;
			}
			continue;
		case MBX_ACTION_REDIRECT:
			r->redirect(w, r->redirect_arg, &m, 1);
			continue;
		case MBX_ACTION_NOTIFY:
			copy = rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX);
			if (copy != NULL && rte_ring_sp_enqueue(w->ev.notify, copy) == 0) {
				w->stats[MBX_WSTAT_EV_NOTIFIED]++;
			} else {
				rte_pktmbuf_free(copy);
				w->stats[MBX_WSTAT_EV_NOTIFY_LOST]++;
			}
			break;
		default:
			break;
		}
	keep:
		pkts[k] = m;
		flows[k] = flows[i];
		dirs[k] = dirs[i];
		k++;
	}
	return k;
}
