/* SPDX-License-Identifier: BSD-3-Clause */
/* The per-worker flow table: see mbx_table.h. */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>
#include <rte_prefetch.h>
#include <rte_tcp.h>

#include "mbx_table.h"

const char *const mbx_tmo_names[MBX_TMO_MAX] = {
#define X(e, s, t) s,
	MBX_TIMEOUTS(X)
#undef X
};

const uint32_t mbx_tmo_defaults[MBX_TMO_MAX] = {
#define X(e, s, t) t,
	MBX_TIMEOUTS(X)
#undef X
};

TAILQ_HEAD(mbx_flow_list, mbx_flow);

struct mbx_table {
	struct rte_hash *hash;
	uint8_t *slots;	     /* capacity entries of @c stride bytes */
	uint32_t stride;     /* bytes per entry, cache-line multiple */
	uint32_t key_off;    /* offset of the two keys inside an entry */
	uint32_t capacity;   /* entries */
	uint32_t nb_free;    /* entries on the free stack */
	uint32_t *free_idx;  /* free stack: the top is free_idx[nb_free - 1] */
	uint64_t *used;	     /* bit per slot in use: the walk skips empty slots 64 at a time */
	uint32_t next_class; /* where the next sweep starts */
	uint64_t tmo_cycles[MBX_TMO_MAX];
	struct mbx_flow_list exp[MBX_TMO_MAX];
};

/*
 * The hash's data is the entry pointer with the matched direction in bit 0:
 * entries are cache-aligned, so a lookup yields both without a key compare.
 */
static inline void *
entry_data(struct mbx_flow *f, uint8_t dir)
{
	return (void *)((uintptr_t)f | dir);
}

static inline struct mbx_flow *
data_flow(void *d)
{
	return (struct mbx_flow *)((uintptr_t)d & ~(uintptr_t)1);
}

static inline struct mbx_flow *
slot(const struct mbx_table *t, uint32_t idx)
{
	return (struct mbx_flow *)(t->slots + (size_t)idx * t->stride);
}

struct mbx_flow_key *
mbx_flow_keys(const struct mbx_table *t, struct mbx_flow *f)
{
	return (struct mbx_flow_key *)((uint8_t *)f + t->key_off);
}

struct mbx_table *
mbx_table_create(const struct mbx_table_conf *conf)
{
	struct mbx_table *t;
	uint32_t i;

	if (conf->capacity == 0 || conf->capacity > (UINT32_MAX >> 2)) {
		rte_errno = EINVAL;
		return NULL;
	}
	t = rte_zmalloc_socket("mbx_table", sizeof(*t), RTE_CACHE_LINE_SIZE, conf->socket);
	if (t == NULL)
		goto nomem;
	t->capacity = conf->capacity;
	t->key_off = RTE_ALIGN(sizeof(struct mbx_flow) + conf->state_size, 8);
	t->stride = RTE_ALIGN(t->key_off + 2 * sizeof(struct mbx_flow_key), RTE_CACHE_LINE_SIZE);
	t->slots = rte_zmalloc_socket("mbx_flows", (size_t)t->capacity * t->stride,
				      RTE_CACHE_LINE_SIZE, conf->socket);
	t->free_idx =
		rte_malloc_socket("mbx_flow_free", sizeof(uint32_t) * t->capacity, 0, conf->socket);
	t->used = rte_zmalloc_socket("mbx_flow_used", sizeof(uint64_t) * (t->capacity / 64 + 1), 0,
				     conf->socket);
	if (t->slots == NULL || t->free_idx == NULL || t->used == NULL)
		goto nomem;
	/* Hand out low indices first: the walk then scans a dense prefix. */
	for (i = 0; i < t->capacity; i++)
		t->free_idx[i] = t->capacity - 1 - i;
	t->nb_free = t->capacity;
	for (i = 0; i < MBX_TMO_MAX; i++)
		TAILQ_INIT(&t->exp[i]);
	mbx_table_set_timeouts(t, mbx_tmo_defaults);

	struct rte_hash_parameters hp = {
		.name = conf->name,
		.entries = RTE_MAX(2 * t->capacity, 16u),
		.key_len = sizeof(struct mbx_flow_key),
		.hash_func = rte_hash_crc,
		.socket_id = conf->socket,
		/* With extendable buckets an insert below capacity never fails. */
		.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};
	t->hash = rte_hash_create(&hp);
	if (t->hash == NULL) {
		mbx_table_free(t);
		return NULL; /* rte_errno set by rte_hash_create */
	}
	return t;
nomem:
	mbx_table_free(t);
	rte_errno = ENOMEM;
	return NULL;
}

void
mbx_table_free(struct mbx_table *t)
{
	if (t == NULL)
		return;
	rte_hash_free(t->hash);
	rte_free(t->used);
	rte_free(t->free_idx);
	rte_free(t->slots);
	rte_free(t);
}

uint32_t
mbx_table_count(const struct mbx_table *t)
{
	return t->capacity - t->nb_free;
}

uint32_t
mbx_table_capacity(const struct mbx_table *t)
{
	return t->capacity;
}

void
mbx_table_set_timeouts(struct mbx_table *t, const uint32_t secs[MBX_TMO_MAX])
{
	for (int i = 0; i < MBX_TMO_MAX; i++)
		t->tmo_cycles[i] = (uint64_t)secs[i] * rte_get_tsc_hz();
}

unsigned int
mbx_table_lookup_bulk(struct mbx_table *t, const struct mbx_flow_key **keys, unsigned int n,
		      struct mbx_flow **flows, uint8_t *dirs)
{
	void *data[RTE_HASH_LOOKUP_BULK_MAX];
	uint64_t hits = 0;
	unsigned int i;

	RTE_ASSERT(n <= RTE_HASH_LOOKUP_BULK_MAX);
	if (rte_hash_lookup_bulk_data(t->hash, (const void **)keys, n, &hits, data) <= 0) {
		memset(flows, 0, n * sizeof(flows[0]));
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (hits & (1ULL << i)) {
			flows[i] = data_flow(data[i]);
			dirs[i] = (uintptr_t)data[i] & 1;
			/* the header and the NF state slots that follow it, for the caller */
			rte_prefetch0(flows[i]);
			rte_prefetch0((uint8_t *)flows[i] + RTE_CACHE_LINE_SIZE);
		} else {
			flows[i] = NULL;
		}
	}
	return __builtin_popcountll(hits);
}

struct mbx_flow *
mbx_table_lookup(struct mbx_table *t, const struct mbx_flow_key *k, uint8_t *dir)
{
	void *d;

	if (rte_hash_lookup_data(t->hash, k, &d) < 0)
		return NULL;
	if (dir != NULL)
		*dir = (uintptr_t)d & 1;
	return data_flow(d);
}

enum mbx_tmo_class
mbx_tmo_class_of(uint8_t proto, uint8_t tcp_flags)
{
	switch (proto) {
	case IPPROTO_TCP:
		if ((tcp_flags & (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG)) == RTE_TCP_SYN_FLAG)
			return MBX_TMO_TCP_SYN_SENT;
		return MBX_TMO_TCP_EST;
	case IPPROTO_UDP:
		return MBX_TMO_UDP_FIRST;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return MBX_TMO_ICMP;
	default:
		return MBX_TMO_OTHER;
	}
}

static void
queue_tail(struct mbx_table *t, struct mbx_flow *f)
{
	f->queued_expire = f->expire;
	TAILQ_INSERT_TAIL(&t->exp[f->tmo_class], f, exp_node);
}

struct mbx_flow *
mbx_table_add(struct mbx_table *t, const struct mbx_flow_key *key, enum mbx_tmo_class cls,
	      uint64_t now)
{
	struct mbx_flow *f;
	int rc;

	if (t->nb_free == 0) {
		rte_errno = ENOSPC;
		return NULL;
	}
	/* rte_hash_add_key_data() would silently repoint an existing key. */
	if (rte_hash_lookup(t->hash, key) >= 0) {
		rte_errno = EEXIST;
		return NULL;
	}
	f = slot(t, t->free_idx[t->nb_free - 1]);
	memset(f, 0, t->key_off);
	f->index = t->free_idx[t->nb_free - 1];
	rc = rte_hash_add_key_data(t->hash, key, entry_data(f, 0));
	if (rc < 0) {
		rte_errno = -rc;
		return NULL;
	}
	t->nb_free--;
	f->in_use = 1;
	t->used[f->index / 64] |= 1ULL << (f->index % 64);
	f->tmo_class = cls;
	f->expire = now + t->tmo_cycles[cls];
	mbx_flow_keys(t, f)[0] = *key;
	memset(&mbx_flow_keys(t, f)[1], 0, sizeof(struct mbx_flow_key));
	queue_tail(t, f);
	return f;
}

int
mbx_table_set_reply_key(struct mbx_table *t, struct mbx_flow *f, const struct mbx_flow_key *rev)
{
	struct mbx_flow_key *keys = mbx_flow_keys(t, f);
	void *d;
	int rc;

	if (rte_hash_lookup_data(t->hash, rev, &d) >= 0)
		return data_flow(d) == f ? 0 : -EEXIST;
	if (f->flags & MBX_FLOW_F_REV_KEYED) {
		rte_hash_del_key(t->hash, &keys[1]);
		f->flags &= ~MBX_FLOW_F_REV_KEYED;
	}
	keys[1] = *rev;
	rc = rte_hash_add_key_data(t->hash, rev, entry_data(f, 1));
	if (rc < 0)
		return rc;
	f->flags |= MBX_FLOW_F_REV_KEYED;
	return 0;
}

void
mbx_table_del(struct mbx_table *t, struct mbx_flow *f)
{
	struct mbx_flow_key *keys = mbx_flow_keys(t, f);

	RTE_ASSERT(f->in_use);
	rte_hash_del_key(t->hash, &keys[0]);
	if (f->flags & MBX_FLOW_F_REV_KEYED)
		rte_hash_del_key(t->hash, &keys[1]);
	TAILQ_REMOVE(&t->exp[f->tmo_class], f, exp_node);
	f->in_use = 0;
	t->used[f->index / 64] &= ~(1ULL << (f->index % 64));
	t->free_idx[t->nb_free++] = f->index;
}

int
mbx_table_walk(struct mbx_table *t, uint32_t *cursor, uint32_t max, mbx_flow_cb cb, void *arg)
{
	uint32_t idx = *cursor, end;
	int visited = 0, rc;

	if (idx >= t->capacity) {
		*cursor = UINT32_MAX;
		return 0;
	}
	/* bounded by slots covered, not entries found; empty words cost one read */
	end = max > t->capacity - idx ? t->capacity : idx + max;
	while (idx < end) {
		uint64_t bits = t->used[idx / 64] & (~0ULL << (idx % 64));

		if (bits == 0) {
			idx = (idx / 64 + 1) * 64;
			continue;
		}
		idx = (idx / 64) * 64 + (uint32_t)rte_bsf64(bits);
		if (idx >= end)
			break;
		visited++;
		rc = cb(slot(t, idx), arg);
		if (rc != 0) {
			*cursor = idx + 1 < t->capacity ? idx + 1 : UINT32_MAX;
			return -rc;
		}
		idx++;
	}
	*cursor = idx < t->capacity ? idx : UINT32_MAX;
	return visited;
}

void
mbx_flow_set_class(struct mbx_table *t, struct mbx_flow *f, enum mbx_tmo_class cls, uint64_t now)
{
	f->expire = now + t->tmo_cycles[cls];
	if (f->tmo_class == cls)
		return;
	TAILQ_REMOVE(&t->exp[f->tmo_class], f, exp_node);
	f->tmo_class = cls;
	queue_tail(t, f);
}

/* The TCP class after a packet with @fl in direction @dir. */
static enum mbx_tmo_class
tcp_next(struct mbx_flow *f, enum mbx_tmo_class cls, uint8_t fl, uint8_t dir)
{
	bool syn = fl & RTE_TCP_SYN_FLAG, ack = fl & RTE_TCP_ACK_FLAG;

	if (fl & RTE_TCP_RST_FLAG)
		return MBX_TMO_TCP_CLOSED;
	if (syn && !ack && dir == 0 &&
	    (cls == MBX_TMO_TCP_CLOSED || cls == MBX_TMO_TCP_TIME_WAIT)) {
		/* the port pair reused by a new connection */
		f->flags &= ~(MBX_FLOW_F_FIN_ORIG | MBX_FLOW_F_FIN_REPLY);
		return MBX_TMO_TCP_SYN_SENT;
	}
	if (fl & RTE_TCP_FIN_FLAG) {
		f->flags |= dir ? MBX_FLOW_F_FIN_REPLY : MBX_FLOW_F_FIN_ORIG;
		return (f->flags & MBX_FLOW_F_FIN_ORIG) && (f->flags & MBX_FLOW_F_FIN_REPLY)
			       ? MBX_TMO_TCP_TIME_WAIT
			       : MBX_TMO_TCP_FIN_WAIT;
	}
	switch (cls) {
	case MBX_TMO_TCP_SYN_SENT:
		/* a SYN-ACK, or the other side's SYN in a simultaneous open */
		return syn && dir == 1 ? MBX_TMO_TCP_SYN_RECV : cls;
	case MBX_TMO_TCP_SYN_RECV:
		return ack && !syn ? MBX_TMO_TCP_EST : cls;
	default:
		return cls;
	}
}

void
mbx_table_touch(struct mbx_table *t, struct mbx_flow *f, uint64_t now, uint8_t proto,
		uint8_t tcp_flags, uint8_t dir)
{
	enum mbx_tmo_class cls = f->tmo_class, next = cls;

	if (dir == 1)
		f->flags |= MBX_FLOW_F_REPLY_SEEN;
	if (proto == IPPROTO_TCP)
		next = tcp_next(f, cls, tcp_flags, dir);
	else if (cls == MBX_TMO_UDP_FIRST && dir == 1)
		next = MBX_TMO_UDP;
	if (next != cls) {
		mbx_flow_set_class(t, f, next, now);
		return;
	}
	/* a retransmitted FIN or RST does not keep a closed connection around */
	if (cls != MBX_TMO_TCP_TIME_WAIT && cls != MBX_TMO_TCP_CLOSED)
		f->expire = now + t->tmo_cycles[cls];
}

unsigned int
mbx_table_expire(struct mbx_table *t, uint64_t now, unsigned int budget, mbx_flow_cb cb, void *arg)
{
	unsigned int expired = 0, tried = 0;

	while (budget > 0 && tried < MBX_TMO_MAX) {
		struct mbx_flow_list *l = &t->exp[t->next_class];
		struct mbx_flow *f = TAILQ_FIRST(l);

		if (f == NULL || (f->expire > now && f->expire == f->queued_expire)) {
			/* this list has nothing due: try the next class */
			t->next_class = (t->next_class + 1) % MBX_TMO_MAX;
			tried++;
			continue;
		}
		budget--;
		if (f->expire <= now) {
			cb(f, arg);
			expired++;
		} else {
			/* refreshed since it was queued: requeue in time order */
			TAILQ_REMOVE(l, f, exp_node);
			queue_tail(t, f);
		}
	}
	return expired;
}
