/* SPDX-License-Identifier: BSD-3-Clause */
/* Connections per source host: see fw_hosts.h. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>

#include "fw_hosts.h"

/* The hash key: all padding zero, so that it hashes whole. */
struct host_key {
	union mbx_addr addr;
	uint8_t family;
	uint8_t pad[3];
};

struct fw_hosts {
	struct rte_hash *hash;
	uint32_t capacity; /* slots */
	uint64_t conns;	   /* sum of the hosts' connections */
	struct fw_host slot[];
};

static _Atomic unsigned int name_seq;

struct fw_hosts *
fw_hosts_create(uint32_t capacity, int socket)
{
	char name[RTE_HASH_NAMESIZE];
	struct rte_hash_parameters hp = {
		.name = name,
		.entries = RTE_MAX(capacity, 64u),
		.key_len = sizeof(struct host_key),
		.hash_func = rte_hash_crc,
		.socket_id = socket,
		/* with extendable buckets an insert below capacity never fails */
		.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};
	struct fw_hosts *h;

	h = rte_zmalloc_socket("fw_hosts", sizeof(*h) + sizeof(h->slot[0]) * hp.entries,
			       RTE_CACHE_LINE_SIZE, socket);
	if (h == NULL) {
		rte_errno = ENOMEM;
		return NULL;
	}
	snprintf(name, sizeof(name), "fw_hosts_%u", atomic_fetch_add(&name_seq, 1));
	h->capacity = hp.entries;
	h->hash = rte_hash_create(&hp);
	if (h->hash == NULL) {
		rte_free(h);
		return NULL; /* rte_errno set by rte_hash_create */
	}
	return h;
}

void
fw_hosts_free(struct fw_hosts *h)
{
	if (h == NULL)
		return;
	rte_hash_free(h->hash);
	rte_free(h);
}

static struct host_key
host_key(uint8_t family, const union mbx_addr *addr)
{
	struct host_key k;

	memset(&k, 0, sizeof(k));
	k.family = family;
	memcpy(&k.addr, addr, family == MBX_FAMILY_V6 ? 16 : 4);
	return k;
}

int
fw_host_get(struct fw_hosts *h, uint8_t family, const union mbx_addr *addr)
{
	struct host_key k = host_key(family, addr);
	int32_t pos = rte_hash_lookup(h->hash, &k);

	if (pos >= 0)
		return pos;
	pos = rte_hash_add_key(h->hash, &k);
	if (pos < 0 || (uint32_t)pos >= h->capacity) {
		if (pos >= 0)
			rte_hash_del_key(h->hash, &k);
		return -ENOSPC;
	}
	h->slot[pos].addr = k.addr;
	h->slot[pos].family = family;
	h->slot[pos].conns = 0;
	return pos;
}

struct fw_host *
fw_host_at(struct fw_hosts *h, uint32_t slot)
{
	return &h->slot[slot];
}

void
fw_host_unused(struct fw_hosts *h, uint32_t slot)
{
	struct fw_host *e = &h->slot[slot];
	struct host_key k;

	if (e->conns != 0)
		return;
	k = host_key(e->family, &e->addr);
	rte_hash_del_key(h->hash, &k);
	memset(e, 0, sizeof(*e));
}

void
fw_host_hold(struct fw_hosts *h, uint32_t slot)
{
	h->slot[slot].conns++;
	h->conns++;
}

void
fw_host_put(struct fw_hosts *h, uint32_t slot)
{
	struct fw_host *e = &h->slot[slot];

	RTE_ASSERT(e->conns > 0);
	e->conns--;
	h->conns--;
	fw_host_unused(h, slot);
}

uint64_t
fw_hosts_conns(const struct fw_hosts *h)
{
	return h->conns;
}

int
fw_hosts_foreach(struct fw_hosts *h, int (*cb)(const struct fw_host *host, void *arg), void *arg)
{
	const void *key;
	void *data;
	uint32_t next = 0;
	int32_t pos;
	int rc;

	while ((pos = rte_hash_iterate(h->hash, &key, &data, &next)) >= 0) {
		rc = cb(&h->slot[pos], arg);
		if (rc != 0)
			return rc;
	}
	return 0;
}
