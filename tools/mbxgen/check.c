/* SPDX-License-Identifier: BSD-3-Clause */
/* mbxgen's checker: see check.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

struct mbxgen_check {
	struct mbxgen_flow *flows;
	uint32_t nb_flows;
	uint64_t hz;
	uint64_t start_tsc;
	uint64_t ticks_per_ms;
	uint32_t window_ms;
	/* timeline, indexed by send millisecond */
	struct mbxgen_bucket *buckets;
	size_t nb_buckets; /* in use: up to the last bucket anything was sent in */
	size_t cap_buckets;
	/* in flight: buckets below cursor are out of the window */
	uint64_t inflight;
	size_t cursor;
	/* latency over first copies */
	uint64_t *hist;
	uint64_t hist_overflow;
	uint64_t lat_count;
	uint64_t lat_sum_ns;
	uint64_t lat_min_ns;
	uint64_t lat_max_ns;
	struct mbxgen_totals tot; /* running, so that reading them costs nothing */
};

static const char *const ctr_names[MBXGEN_CTR_MAX] = {
#define X(e, s) s,
	MBXGEN_COUNTERS(X)
#undef X
};

const char *
mbxgen_ctr_name(enum mbxgen_ctr ctr)
{
	return ctr < MBXGEN_CTR_MAX ? ctr_names[ctr] : "?";
}

struct mbxgen_check *
mbxgen_check_create(const struct mbxgen_check_conf *conf)
{
	struct mbxgen_check *c;

	if (conf->nb_flows == 0 || conf->hz < 1000) {
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->flows = calloc(conf->nb_flows, sizeof(*c->flows));
	c->hist = calloc(MBXGEN_HIST_US, sizeof(*c->hist));
	c->cap_buckets = 1024;
	c->buckets = calloc(c->cap_buckets, sizeof(*c->buckets));
	if (c->flows == NULL || c->hist == NULL || c->buckets == NULL) {
		mbxgen_check_free(c);
		errno = ENOMEM;
		return NULL;
	}
	c->nb_flows = conf->nb_flows;
	c->hz = conf->hz;
	c->start_tsc = conf->start_tsc;
	c->ticks_per_ms = conf->hz / 1000;
	c->window_ms = conf->inflight_window_ms;
	c->lat_min_ns = UINT64_MAX;
	return c;
}

void
mbxgen_check_free(struct mbxgen_check *c)
{
	if (c == NULL)
		return;
	if (c->flows != NULL)
		for (uint32_t i = 0; i < c->nb_flows; i++)
			free(c->flows[i].seen);
	free(c->flows);
	free(c->hist);
	free(c->buckets);
	free(c);
}

int
mbxgen_check_flow_init(struct mbxgen_check *c, uint32_t flow, const struct mbxgen_tuple *inside)
{
	if (flow >= c->nb_flows)
		return -EINVAL;
	c->flows[flow].inside = *inside;
	return 0;
}

uint64_t
mbxgen_check_assign(struct mbxgen_check *c, uint32_t flow)
{
	struct mbxgen_flow *f;
	uint64_t seq, need;

	if (flow >= c->nb_flows)
		return UINT64_MAX;
	f = &c->flows[flow];
	seq = f->assigned;
	need = seq / 64 + 1;
	if (need > f->seen_words) {
		uint64_t words = f->seen_words ? f->seen_words * 2 : 16;
		uint64_t *bits;

		while (words < need)
			words *= 2;
		bits = realloc(f->seen, words * sizeof(*bits));
		if (bits == NULL)
			return UINT64_MAX;
		memset(bits + f->seen_words, 0, (words - f->seen_words) * sizeof(*bits));
		f->seen = bits;
		f->seen_words = words;
	}
	f->assigned++;
	return seq;
}

/* The send-time bucket of @p tsc, or SIZE_MAX before the start. */
static size_t
bucket_of(const struct mbxgen_check *c, uint64_t tsc)
{
	if (tsc < c->start_tsc)
		return SIZE_MAX;
	return (size_t)((tsc - c->start_tsc) / c->ticks_per_ms);
}

static int
grow_buckets(struct mbxgen_check *c, size_t b)
{
	if (b >= c->cap_buckets) {
		size_t cap = c->cap_buckets * 2;
		struct mbxgen_bucket *nb;

		while (cap <= b)
			cap *= 2;
		nb = realloc(c->buckets, cap * sizeof(*nb));
		if (nb == NULL)
			return -ENOMEM;
		memset(nb + c->cap_buckets, 0, (cap - c->cap_buckets) * sizeof(*nb));
		c->buckets = nb;
		c->cap_buckets = cap;
	}
	if (b >= c->nb_buckets)
		c->nb_buckets = b + 1;
	return 0;
}

int
mbxgen_check_sent(struct mbxgen_check *c, uint32_t flow, uint64_t tx_tsc)
{
	struct mbxgen_flow *f;
	size_t b = bucket_of(c, tx_tsc);

	if (flow >= c->nb_flows || b == SIZE_MAX)
		return -EINVAL;
	f = &c->flows[flow];
	if (f->sent >= f->assigned)
		return -EINVAL;
	if (grow_buckets(c, b) < 0)
		return -ENOMEM;
	f->sent++;
	c->tot.sent++;
	c->buckets[b].sent++;
	if (b >= c->cursor)
		c->inflight++;
	return 0;
}

static bool
tuple_eq(const struct mbxgen_tuple *a, const struct mbxgen_tuple *b)
{
	return a->src == b->src && a->dst == b->dst && a->sport == b->sport &&
	       a->dport == b->dport && a->proto == b->proto;
}

static void
seen(struct mbxgen_check *c, struct mbxgen_flow *f, uint16_t port, const struct mbxgen_tuple *t)
{
	if (!f->arrived) {
		f->rewrite = *t;
		f->last = *t;
		f->last_port = port;
		f->arrived = true;
	} else {
		if (!tuple_eq(&f->last, t)) {
			f->rewrite_changes++;
			c->tot.rewrite_changes++;
			f->last = *t;
		}
		if (port != f->last_port) {
			f->port_changes++;
			f->last_port = port;
		}
	}
	if (port < 64)
		f->rx_ports |= UINT64_C(1) << port;
}

int
mbxgen_check_seen(struct mbxgen_check *c, uint32_t flow, uint16_t port,
		  const struct mbxgen_tuple *tuple)
{
	if (flow >= c->nb_flows)
		return -EINVAL;
	seen(c, &c->flows[flow], port, tuple);
	return 0;
}

/* @p ticks as nanoseconds, without overflow for any 64-bit tick count. */
static uint64_t
ticks_to_ns(const struct mbxgen_check *c, uint64_t ticks)
{
	return ticks / c->hz * UINT64_C(1000000000) + ticks % c->hz * UINT64_C(1000000000) / c->hz;
}

enum mbxgen_verdict
mbxgen_check_rx(struct mbxgen_check *c, const struct mbxgen_rx *r)
{
	struct mbxgen_flow *f;
	struct mbxgen_bucket *bk;
	uint64_t word, bit, ns;
	size_t b;

	b = bucket_of(c, r->tx_tsc);
	if (r->flow >= c->nb_flows || b == SIZE_MAX || b >= c->nb_buckets ||
	    r->rx_tsc < r->tx_tsc || r->seq >= c->flows[r->flow].sent) {
		c->tot.ctr[MBXGEN_CTR_INVALID]++;
		return MBXGEN_RX_INVALID;
	}
	f = &c->flows[r->flow];
	seen(c, f, r->port, &r->tuple);
	word = r->seq / 64;
	bit = UINT64_C(1) << (r->seq % 64);
	if (f->seen[word] & bit) {
		f->duplicated++;
		c->tot.duplicated++;
		return MBXGEN_RX_DUPLICATE;
	}
	f->seen[word] |= bit;

	ns = ticks_to_ns(c, r->rx_tsc - r->tx_tsc);
	if (ns / 1000 < MBXGEN_HIST_US)
		c->hist[ns / 1000]++;
	else
		c->hist_overflow++;
	c->lat_count++;
	c->lat_sum_ns += ns;
	if (ns < c->lat_min_ns)
		c->lat_min_ns = ns;
	if (ns > c->lat_max_ns)
		c->lat_max_ns = ns;
	if (ns > f->lat_max_ns)
		f->lat_max_ns = ns;
	bk = &c->buckets[b];
	bk->received++;
	bk->lat_sum_ns += ns;
	if (ns > bk->lat_max_ns)
		bk->lat_max_ns = ns;
	if (b >= c->cursor)
		c->inflight--;

	f->received++;
	c->tot.received++;
	if (f->received > 1 && r->seq < f->max_seq) {
		f->reordered++;
		c->tot.reordered++;
		return MBXGEN_RX_REORDERED;
	}
	f->max_seq = r->seq;
	return MBXGEN_RX_NEW;
}

void
mbxgen_check_tcp(struct mbxgen_check *c, uint32_t flow, uint8_t bits)
{
	uint8_t fresh;

	if (flow >= c->nb_flows)
		return;
	fresh = bits & ~c->flows[flow].tcp;
	c->flows[flow].tcp |= bits;
	c->tot.handshakes += !!(fresh & MBXGEN_TCP_HANDSHAKE);
	c->tot.closes += !!(fresh & MBXGEN_TCP_CLOSED);
	c->tot.failed += !!(fresh & MBXGEN_TCP_FAILED);
}

void
mbxgen_check_count(struct mbxgen_check *c, enum mbxgen_ctr ctr, uint64_t n)
{
	if (ctr < MBXGEN_CTR_MAX)
		c->tot.ctr[ctr] += n;
}

uint64_t
mbxgen_check_inflight(struct mbxgen_check *c, uint64_t now_tsc)
{
	size_t now = bucket_of(c, now_tsc);

	if (c->window_ms == 0 || now == SIZE_MAX)
		return c->inflight;
	/* retire the buckets that left the window: what they still hold is lost */
	while (c->cursor + c->window_ms <= now) {
		if (c->cursor >= c->nb_buckets) {
			c->cursor = now - c->window_ms + 1;
			break;
		}
		c->inflight -= c->buckets[c->cursor].sent - c->buckets[c->cursor].received;
		c->cursor++;
	}
	return c->inflight;
}

void
mbxgen_check_totals(const struct mbxgen_check *c, struct mbxgen_totals *t)
{
	*t = c->tot;
	t->lost = t->sent - t->received;
}

const struct mbxgen_flow *
mbxgen_check_flow(const struct mbxgen_check *c, uint32_t flow)
{
	return flow < c->nb_flows ? &c->flows[flow] : NULL;
}

/* Nearest rank: the smallest bin holding at least ceil(count * num / den) samples. */
static uint64_t
percentile_us(const struct mbxgen_check *c, uint64_t num, uint64_t den)
{
	uint64_t rank = (c->lat_count * num + den - 1) / den, acc = 0;

	if (rank == 0)
		rank = 1;
	for (uint64_t i = 0; i < MBXGEN_HIST_US; i++) {
		acc += c->hist[i];
		if (acc >= rank)
			return i;
	}
	return c->lat_max_ns / 1000; /* in the overflow */
}

void
mbxgen_check_latency(const struct mbxgen_check *c, struct mbxgen_latency *l)
{
	memset(l, 0, sizeof(*l));
	l->count = c->lat_count;
	l->overflow = c->hist_overflow;
	if (c->lat_count == 0)
		return;
	l->p50_us = percentile_us(c, 50, 100);
	l->p99_us = percentile_us(c, 99, 100);
	l->p999_us = percentile_us(c, 999, 1000);
	l->min_ns = c->lat_min_ns;
	l->max_ns = c->lat_max_ns;
	l->mean_ns = (double)c->lat_sum_ns / (double)c->lat_count;
}

size_t
mbxgen_check_nb_buckets(const struct mbxgen_check *c)
{
	return c->nb_buckets;
}

const struct mbxgen_bucket *
mbxgen_check_bucket(const struct mbxgen_check *c, size_t i)
{
	return i < c->nb_buckets ? &c->buckets[i] : NULL;
}

static void
put_tuple(FILE *f, const char *name, const struct mbxgen_tuple *t)
{
	fprintf(f,
		"\"%s\":{\"src\":\"%u.%u.%u.%u\",\"sport\":%u,\"dst\":\"%u.%u.%u.%u\","
		"\"dport\":%u,\"proto\":%u}",
		name, t->src >> 24, (t->src >> 16) & 0xff, (t->src >> 8) & 0xff, t->src & 0xff,
		t->sport, t->dst >> 24, (t->dst >> 16) & 0xff, (t->dst >> 8) & 0xff, t->dst & 0xff,
		t->dport, t->proto);
}

static const char *
proto_name(uint8_t proto)
{
	return proto == 6 ? "tcp" : proto == 17 ? "udp" : "other";
}

static void
put_flow(FILE *f, uint32_t id, const struct mbxgen_flow *fl)
{
	bool first = true;

	fprintf(f, "{\"id\":%" PRIu32 ",\"proto\":\"%s\",", id, proto_name(fl->inside.proto));
	put_tuple(f, "inside", &fl->inside);
	fprintf(f,
		",\"sent\":%" PRIu64 ",\"received\":%" PRIu64 ",\"lost\":%" PRIu64
		",\"duplicated\":%" PRIu64 ",\"reordered\":%" PRIu64 ",",
		fl->sent, fl->received, fl->sent - fl->received, fl->duplicated, fl->reordered);
	if (fl->arrived) {
		put_tuple(f, "rewrite", &fl->rewrite);
		fputc(',', f);
		put_tuple(f, "rewrite_last", &fl->last);
	} else {
		fputs("\"rewrite\":null,\"rewrite_last\":null", f);
	}
	fprintf(f, ",\"rewrite_changes\":%" PRIu64 ",\"rx_ports\":[", fl->rewrite_changes);
	for (unsigned int p = 0; p < 64; p++)
		if (fl->rx_ports & (UINT64_C(1) << p)) {
			fprintf(f, "%s%u", first ? "" : ",", p);
			first = false;
		}
	fprintf(f, "],\"rx_port_changes\":%" PRIu64 ",\"latency_max_us\":%.3f", fl->port_changes,
		(double)fl->lat_max_ns / 1000.0);
	if (fl->inside.proto == 6)
		fprintf(f, ",\"handshake\":%s,\"closed\":%s,\"handshake_failed\":%s",
			fl->tcp & MBXGEN_TCP_HANDSHAKE ? "true" : "false",
			fl->tcp & MBXGEN_TCP_CLOSED ? "true" : "false",
			fl->tcp & MBXGEN_TCP_FAILED ? "true" : "false");
	fputc('}', f);
}

int
mbxgen_check_report(const struct mbxgen_check *c, FILE *f, const struct mbxgen_run *run)
{
	struct mbxgen_totals t;
	struct mbxgen_latency l;

	mbxgen_check_totals(c, &t);
	mbxgen_check_latency(c, &l);
	fprintf(f,
		"{\"sent\":%" PRIu64 ",\"received\":%" PRIu64 ",\"lost\":%" PRIu64
		",\"duplicated\":%" PRIu64 ",\"reordered\":%" PRIu64 ",\"rewrite_changes\":%" PRIu64
		",\n",
		t.sent, t.received, t.lost, t.duplicated, t.reordered, t.rewrite_changes);
	fprintf(f,
		"\"latency_us\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64
		",\"max\":%.3f,\"min\":%.3f,\"mean\":%.3f,\"samples\":%" PRIu64
		",\"over_1s\":%" PRIu64 "},\n",
		l.p50_us, l.p99_us, l.p999_us, (double)l.max_ns / 1000.0, (double)l.min_ns / 1000.0,
		l.mean_ns / 1000.0, l.count, l.overflow);
	if (run->tcp)
		fprintf(f,
			"\"handshakes\":%" PRIu64 ",\"closes\":%" PRIu64
			",\"handshakes_failed\":%" PRIu64 ",\n",
			t.handshakes, t.closes, t.failed);
	for (int i = 0; i < MBXGEN_CTR_MAX; i++)
		fprintf(f, "\"%s\":%" PRIu64 ",", ctr_names[i], t.ctr[i]);
	fprintf(f,
		"\n\"start_unix_us\":%" PRIu64 ",\"rate_pps\":%" PRIu64
		",\"duration_s\":%.6f,\"proto\":\"%s\",\"frame_size\":%" PRIu32
		",\"tx_port\":%u,\"nb_flows\":%" PRIu32 ",\n",
		run->start_unix_us, run->rate_pps, run->duration_s, run->proto, run->frame_size,
		run->tx_port, c->nb_flows);
	fputs("\"flows\":[\n", f);
	for (uint32_t i = 0; i < c->nb_flows; i++) {
		put_flow(f, i, &c->flows[i]);
		fputs(i + 1 < c->nb_flows ? ",\n" : "\n", f);
	}
	fputs("],\n\"timeline\":[\n", f);
	for (size_t i = 0; i < c->nb_buckets; i++) {
		const struct mbxgen_bucket *b = &c->buckets[i];

		fprintf(f,
			"{\"t_ms\":%zu,\"sent\":%" PRIu64 ",\"received\":%" PRIu64
			",\"lost\":%" PRIu64
			",\"latency_mean_us\":%.3f,\"latency_max_us\":%.3f}%s\n",
			i, b->sent, b->received, b->sent - b->received,
			b->received ? (double)b->lat_sum_ns / (double)b->received / 1000.0 : 0.0,
			(double)b->lat_max_ns / 1000.0, i + 1 < c->nb_buckets ? "," : "");
	}
	fputs("]}\n", f);
	return ferror(f) ? -EIO : 0;
}
