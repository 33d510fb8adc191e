/* SPDX-License-Identifier: BSD-3-Clause */
/* mon's per-worker asset table: see mon_hosts.h. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <rte_common.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>

#include "mon_hosts.h"

struct mon_hosts {
	struct rte_hash *hash; /* key -> position in hosts[] */
	struct mon_host *hosts;
	uint32_t count;
};

static _Atomic unsigned int name_seq;

struct mon_hosts *
mon_hosts_create(uint32_t capacity, int socket)
{
	char name[RTE_HASH_NAMESIZE];
	struct mon_hosts *h;

	h = rte_zmalloc_socket("mon_hosts", sizeof(*h), RTE_CACHE_LINE_SIZE, socket);
	if (h == NULL) {
		rte_errno = ENOMEM;
		return NULL;
	}
	snprintf(name, sizeof(name), "mon_hosts_%u", atomic_fetch_add(&name_seq, 1));
	struct rte_hash_parameters hp = {
		.name = name,
		.entries = RTE_MAX(capacity, 16u),
		.key_len = sizeof(struct mon_host_key),
		.hash_func = rte_hash_crc,
		.socket_id = socket,
		.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};
	h->hash = rte_hash_create(&hp);
	if (h->hash != NULL)
		h->hosts = rte_zmalloc_socket("mon_host_records",
					      sizeof(struct mon_host) *
						      (rte_hash_max_key_id(h->hash) + 1),
					      RTE_CACHE_LINE_SIZE, socket);
	if (h->hash == NULL || h->hosts == NULL) {
		mon_hosts_free(h);
		rte_errno = ENOMEM;
		return NULL;
	}
	return h;
}

void
mon_hosts_free(struct mon_hosts *h)
{
	if (h == NULL)
		return;
	rte_hash_free(h->hash);
	rte_free(h->hosts);
	rte_free(h);
}

struct mon_host_key
mon_host_key(const union mbx_addr *addr, uint8_t family)
{
	struct mon_host_key k;

	memset(&k, 0, sizeof(k));
	if (family == MBX_FAMILY_V6)
		k.addr = *addr;
	else
		k.addr.v4 = addr->v4;
	k.family = family;
	return k;
}

int32_t
mon_hosts_get(struct mon_hosts *h, const struct mon_host_key *k)
{
	int32_t pos = rte_hash_lookup(h->hash, k);

	if (pos >= 0)
		return pos;
	pos = rte_hash_add_key(h->hash, k);
	if (pos < 0)
		return -ENOSPC;
	memset(&h->hosts[pos], 0, sizeof(h->hosts[pos]));
	h->hosts[pos].key = *k;
	h->count++;
	return pos;
}

int32_t
mon_hosts_find(const struct mon_hosts *h, const struct mon_host_key *k)
{
	int32_t pos = rte_hash_lookup(h->hash, k);

	return pos < 0 ? -ENOENT : pos;
}

struct mon_host *
mon_hosts_at(struct mon_hosts *h, int32_t pos)
{
	return &h->hosts[pos];
}

void
mon_hosts_del(struct mon_hosts *h, int32_t pos)
{
	if (rte_hash_del_key(h->hash, &h->hosts[pos].key) >= 0)
		h->count--;
}

uint32_t
mon_hosts_count(const struct mon_hosts *h)
{
	return h->count;
}

int
mon_hosts_foreach(struct mon_hosts *h, int (*cb)(struct mon_host *e, int32_t pos, void *arg),
		  void *arg)
{
	const void *key;
	void *data;
	uint32_t next = 0;
	int32_t pos;

	while ((pos = rte_hash_iterate(h->hash, &key, &data, &next)) >= 0) {
		int rc = cb(&h->hosts[pos], pos, arg);

		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Add @v to a bounded set; false if it was full. */
static bool
set_add(uint32_t *set, uint8_t *n, unsigned int max, uint32_t v)
{
	for (unsigned int i = 0; i < *n; i++)
		if (set[i] == v)
			return true;
	if (*n == max)
		return false;
	set[(*n)++] = v;
	return true;
}

void
mon_host_add_service(struct mon_host *e, uint8_t proto, uint16_t port)
{
	if (!set_add(e->services, &e->nb_services, MON_HOST_SERVICES, (uint32_t)proto << 16 | port))
		e->services_lost++;
}

void
mon_host_add_os(struct mon_host *e, uint8_t ttl_class, uint16_t window)
{
	if (!set_add(e->os, &e->nb_os, MON_HOST_OS, (uint32_t)ttl_class << 16 | window))
		e->os_lost++;
}

static const struct {
	uint8_t ttl;
	const char *os;
} ttl_classes[] = {
#define X(t, s) {t, s},
	MON_TTL_CLASSES(X)
#undef X
};

uint8_t
mon_ttl_class(uint8_t ttl)
{
	unsigned int i = 0;

	while (ttl > ttl_classes[i].ttl) /* the last class is 255: always stops */
		i++;
	return ttl_classes[i].ttl;
}

const char *
mon_ttl_class_os(uint32_t ttl_class)
{
	for (unsigned int i = 0; i < RTE_DIM(ttl_classes); i++)
		if (ttl_classes[i].ttl == ttl_class)
			return ttl_classes[i].os;
	return NULL;
}
