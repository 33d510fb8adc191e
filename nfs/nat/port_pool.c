/* SPDX-License-Identifier: BSD-3-Clause */
/* The NAT's port pool and per-host port blocks: see port_pool.h. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <rte_common.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>

#include "port_pool.h"

/* More blocks than this would be a configuration mistake (and gigabytes). */
#define NAT_MAX_BLOCKS (1u << 24)

struct nat_block {
	_Atomic uint32_t owner; /* 0: free; otherwise the owning worker + 1 */
	uint32_t next;		/* next block of the same host */
	rte_be32_t host;	/* the host holding it */
	uint32_t pad;
	uint64_t used; /* bit i: first port + i is in use */
};

struct nat_pool {
	struct nat_pool_conf conf;
	uint32_t bpa; /* blocks per address */
	uint32_t nb_blocks;
	uint64_t tail_mask; /* ports that exist in the last block of an address */
	_Atomic uint32_t nb_free;
	struct nat_block *blocks;
	uint32_t cursor[]; /* per worker: where its next claim starts looking */
};

struct nat_hosts {
	struct rte_hash *hash; /* addr -> position in hosts[] */
	struct nat_host *hosts;
	uint32_t *used; /* positions of the hosts in use, dense: a walk costs what is there */
	uint32_t count;
};

static _Atomic unsigned int name_seq;

struct nat_pool *
nat_pool_create(const struct nat_pool_conf *conf)
{
	uint64_t addrs, ports, blocks;
	struct nat_pool *p;

	if (conf->addr_hi < conf->addr_lo || conf->port_hi < conf->port_lo ||
	    conf->nb_workers == 0) {
		rte_errno = EINVAL;
		return NULL;
	}
	addrs = (uint64_t)conf->addr_hi - conf->addr_lo + 1;
	ports = (uint64_t)conf->port_hi - conf->port_lo + 1;
	blocks = addrs * ((ports + NAT_BLOCK_PORTS - 1) / NAT_BLOCK_PORTS);
	if (blocks > NAT_MAX_BLOCKS) {
		rte_errno = E2BIG;
		return NULL;
	}
	p = rte_zmalloc_socket("nat_pool", sizeof(*p) + conf->nb_workers * sizeof(uint32_t),
			       RTE_CACHE_LINE_SIZE, conf->socket);
	if (p == NULL)
		goto nomem;
	p->conf = *conf;
	p->bpa = (uint32_t)((ports + NAT_BLOCK_PORTS - 1) / NAT_BLOCK_PORTS);
	p->nb_blocks = (uint32_t)blocks;
	p->tail_mask = ports % NAT_BLOCK_PORTS ? (1ULL << (ports % NAT_BLOCK_PORTS)) - 1 : ~0ULL;
	atomic_init(&p->nb_free, p->nb_blocks);
	p->blocks = rte_zmalloc_socket("nat_blocks", sizeof(struct nat_block) * p->nb_blocks,
				       RTE_CACHE_LINE_SIZE, conf->socket);
	if (p->blocks == NULL)
		goto nomem;
	for (uint32_t i = 0; i < conf->nb_workers; i++)
		p->cursor[i] = (uint32_t)((uint64_t)p->nb_blocks * i / conf->nb_workers);
	return p;
nomem:
	nat_pool_free(p);
	rte_errno = ENOMEM;
	return NULL;
}

void
nat_pool_free(struct nat_pool *p)
{
	if (p == NULL)
		return;
	rte_free(p->blocks);
	rte_free(p);
}

const struct nat_pool_conf *
nat_pool_conf(const struct nat_pool *p)
{
	return &p->conf;
}

uint32_t
nat_pool_blocks(const struct nat_pool *p)
{
	return p->nb_blocks;
}

uint32_t
nat_pool_free_blocks(const struct nat_pool *p)
{
	return atomic_load_explicit(&p->nb_free, memory_order_relaxed);
}

static inline uint64_t
valid_mask(const struct nat_pool *p, uint32_t b)
{
	return b % p->bpa == p->bpa - 1 ? p->tail_mask : ~0ULL;
}

/* Block and bit of (addr, port); false when outside the pool. */
static inline bool
locate(const struct nat_pool *p, rte_be32_t addr, rte_be16_t port, uint32_t *b, unsigned int *bit)
{
	uint32_t a = rte_be_to_cpu_32(addr), po = rte_be_to_cpu_16(port);

	if (a < p->conf.addr_lo || a > p->conf.addr_hi || po < p->conf.port_lo ||
	    po > p->conf.port_hi)
		return false;
	po -= p->conf.port_lo;
	*b = (a - p->conf.addr_lo) * p->bpa + po / NAT_BLOCK_PORTS;
	*bit = po % NAT_BLOCK_PORTS;
	return true;
}

int
nat_pool_owner(const struct nat_pool *p, rte_be32_t addr, rte_be16_t port)
{
	unsigned int bit;
	uint32_t b;

	if (!locate(p, addr, port, &b, &bit))
		return -2;
	return (int)atomic_load_explicit(&p->blocks[b].owner, memory_order_acquire) - 1;
}

void
nat_block_get(const struct nat_pool *p, uint32_t b, rte_be32_t *addr, rte_be16_t *port,
	      uint64_t *used)
{
	*addr = rte_cpu_to_be_32(p->conf.addr_lo + b / p->bpa);
	*port = rte_cpu_to_be_16((uint16_t)(p->conf.port_lo + (b % p->bpa) * NAT_BLOCK_PORTS));
	*used = p->blocks[b].used;
}

uint32_t
nat_block_next(const struct nat_pool *p, uint32_t b)
{
	return p->blocks[b].next;
}

struct nat_hosts *
nat_hosts_create(uint32_t capacity, int socket)
{
	char name[RTE_HASH_NAMESIZE];
	struct nat_hosts *h;

	h = rte_zmalloc_socket("nat_hosts", sizeof(*h), RTE_CACHE_LINE_SIZE, socket);
	if (h == NULL) {
		rte_errno = ENOMEM;
		return NULL;
	}
	snprintf(name, sizeof(name), "nat_hosts_%u", atomic_fetch_add(&name_seq, 1));
	struct rte_hash_parameters hp = {
		.name = name,
		.entries = RTE_MAX(capacity, 16u),
		.key_len = sizeof(rte_be32_t),
		.hash_func = rte_hash_crc,
		.socket_id = socket,
		.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};
	h->hash = rte_hash_create(&hp);
	if (h->hash != NULL) {
		uint32_t n = (uint32_t)rte_hash_max_key_id(h->hash) + 1;

		h->hosts = rte_zmalloc_socket("nat_host_entries", sizeof(struct nat_host) * n,
					      RTE_CACHE_LINE_SIZE, socket);
		h->used = rte_malloc_socket("nat_hosts_used", sizeof(uint32_t) * n, 0, socket);
	}
	if (h->hash == NULL || h->hosts == NULL || h->used == NULL) {
		nat_hosts_free(h);
		rte_errno = ENOMEM;
		return NULL;
	}
	return h;
}

void
nat_hosts_free(struct nat_hosts *h)
{
	if (h == NULL)
		return;
	rte_hash_free(h->hash);
	rte_free(h->hosts);
	rte_free(h->used);
	rte_free(h);
}

uint32_t
nat_hosts_count(const struct nat_hosts *h)
{
	return h->count;
}

const struct nat_host *
nat_hosts_find(const struct nat_hosts *h, rte_be32_t addr)
{
	int pos = rte_hash_lookup(h->hash, &addr);

	return pos < 0 ? NULL : &h->hosts[pos];
}

int
nat_hosts_foreach(const struct nat_hosts *h, int (*cb)(const struct nat_host *host, void *arg),
		  void *arg)
{
	for (uint32_t i = 0; i < h->count; i++) {
		int rc = cb(&h->hosts[h->used[i]], arg);

		if (rc != 0)
			return rc;
	}
	return 0;
}

static struct nat_host *
host_get(struct nat_hosts *h, rte_be32_t addr)
{
	int pos = rte_hash_lookup(h->hash, &addr);

	if (pos >= 0)
		return &h->hosts[pos];
	pos = rte_hash_add_key(h->hash, &addr);
	if (pos < 0)
		return NULL;
	h->hosts[pos] = (struct nat_host){.addr = addr, .head = NAT_NONE, .used_idx = h->count};
	h->used[h->count++] = (uint32_t)pos;
	return &h->hosts[pos];
}

static void
host_put(struct nat_hosts *h, struct nat_host *host)
{
	if (host->nb_blocks > 0)
		return;
	rte_hash_del_key(h->hash, &host->addr);
	/* the last host in use takes this one's place in used[] */
	h->used[host->used_idx] = h->used[--h->count];
	h->hosts[h->used[host->used_idx]].used_idx = host->used_idx;
}

static void
block_link(struct nat_pool *p, struct nat_host *host, uint32_t b)
{
	p->blocks[b].host = host->addr;
	p->blocks[b].used = 0;
	p->blocks[b].next = host->head;
	host->head = b;
	host->nb_blocks++;
}

static uint32_t
block_claim_any(struct nat_pool *p, uint16_t worker)
{
	uint32_t start = p->cursor[worker];

	if (atomic_load_explicit(&p->nb_free, memory_order_relaxed) == 0)
		return NAT_NONE;
	for (uint32_t i = 0; i < p->nb_blocks; i++) {
		uint32_t b = (start + i) % p->nb_blocks, expected = 0;

		if (atomic_load_explicit(&p->blocks[b].owner, memory_order_relaxed) != 0)
			continue;
		if (atomic_compare_exchange_strong(&p->blocks[b].owner, &expected, worker + 1u)) {
			atomic_fetch_sub(&p->nb_free, 1);
			p->cursor[worker] = b + 1;
			return b;
		}
	}
	return NAT_NONE;
}

int
nat_port_alloc(struct nat_pool *p, struct nat_hosts *h, uint16_t worker, rte_be32_t host,
	       rte_be32_t *addr, rte_be16_t *port)
{
	struct nat_host *e = host_get(h, host);
	uint64_t avail = 0, used;
	uint32_t b;

	if (e == NULL)
		return -ENOSPC;
	for (b = e->head; b != NAT_NONE; b = p->blocks[b].next) {
		avail = ~p->blocks[b].used & valid_mask(p, b);
		if (avail != 0)
			break;
	}
	if (b == NAT_NONE) {
		b = block_claim_any(p, worker);
		if (b == NAT_NONE) {
			host_put(h, e);
			return -ENOSPC;
		}
		block_link(p, e, b);
		avail = valid_mask(p, b);
	}
	p->blocks[b].used |= avail & -avail; /* lowest free port */
	e->nb_ports++;
	nat_block_get(p, b, addr, port, &used);
	*port = rte_cpu_to_be_16(rte_be_to_cpu_16(*port) + rte_bsf64(avail));
	return 0;
}

int
nat_port_claim(struct nat_pool *p, struct nat_hosts *h, uint16_t worker, rte_be32_t host,
	       rte_be32_t addr, rte_be16_t port)
{
	struct nat_block *blk;
	struct nat_host *e;
	unsigned int bit;
	uint32_t b, owner, expected = 0;

	if (!locate(p, addr, port, &b, &bit))
		return -EINVAL;
	blk = &p->blocks[b];
	owner = atomic_load_explicit(&blk->owner, memory_order_acquire);
	if (owner == worker + 1u) {
		if (blk->host != host || (blk->used & (1ULL << bit)))
			return -EBUSY;
		e = host_get(h, host);
		if (e == NULL)
			return -ENOSPC;
	} else {
		if (owner != 0)
			return -EBUSY;
		e = host_get(h, host);
		if (e == NULL)
			return -ENOSPC;
		if (!atomic_compare_exchange_strong(&blk->owner, &expected, worker + 1u)) {
			host_put(h, e);
			return -EBUSY;
		}
		atomic_fetch_sub(&p->nb_free, 1);
		block_link(p, e, b);
	}
	blk->used |= 1ULL << bit;
	e->nb_ports++;
	return 0;
}

void
nat_port_release(struct nat_pool *p, struct nat_hosts *h, rte_be32_t host, rte_be32_t addr,
		 rte_be16_t port)
{
	int pos = rte_hash_lookup(h->hash, &host);
	struct nat_host *e;
	unsigned int bit;
	uint32_t b, *link;

	if (pos < 0 || !locate(p, addr, port, &b, &bit))
		return;
	e = &h->hosts[pos];
	p->blocks[b].used &= ~(1ULL << bit);
	e->nb_ports--;
	if (p->blocks[b].used != 0)
		return;
	for (link = &e->head; *link != NAT_NONE; link = &p->blocks[*link].next) {
		if (*link == b) {
			*link = p->blocks[b].next;
			break;
		}
	}
	p->blocks[b].next = NAT_NONE;
	e->nb_blocks--;
	atomic_store_explicit(&p->blocks[b].owner, 0, memory_order_release);
	atomic_fetch_add(&p->nb_free, 1);
	host_put(h, e);
}

int
nat_block_reserve(struct nat_pool *p, struct nat_hosts *h, uint16_t worker, rte_be32_t host,
		  rte_be32_t addr, rte_be16_t port)
{
	uint32_t b, owner, expected = 0;
	struct nat_host *e;
	unsigned int bit;

	if (!locate(p, addr, port, &b, &bit) || bit != 0)
		return -EINVAL;
	owner = atomic_load_explicit(&p->blocks[b].owner, memory_order_acquire);
	if (owner == worker + 1u && p->blocks[b].host == host)
		return 0;
	if (owner != 0)
		return -EBUSY;
	e = host_get(h, host);
	if (e == NULL)
		return -ENOSPC;
	if (!atomic_compare_exchange_strong(&p->blocks[b].owner, &expected, worker + 1u)) {
		host_put(h, e);
		return -EBUSY;
	}
	atomic_fetch_sub(&p->nb_free, 1);
	block_link(p, e, b);
	return 0;
}

uint32_t
nat_host_trim(struct nat_pool *p, struct nat_hosts *h, rte_be32_t host)
{
	int pos = rte_hash_lookup(h->hash, &host);
	uint32_t *link, freed = 0;
	struct nat_host *e;

	if (pos < 0)
		return 0;
	e = &h->hosts[pos];
	link = &e->head;
	while (*link != NAT_NONE) {
		uint32_t b = *link;

		if (p->blocks[b].used != 0) {
			link = &p->blocks[b].next;
			continue;
		}
		*link = p->blocks[b].next;
		p->blocks[b].next = NAT_NONE;
		e->nb_blocks--;
		atomic_store_explicit(&p->blocks[b].owner, 0, memory_order_release);
		atomic_fetch_add(&p->nb_free, 1);
		freed++;
	}
	host_put(h, e);
	return freed;
}
