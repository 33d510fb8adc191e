/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit-test helpers: see mbx_test.h. */
#include <arpa/inet.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "mbx_filter_str.h"
#include "mbx_sb.h"
#include "mbx_test.h"

static struct rte_mempool *pool;
static pid_t eal_pid;
static char run_dir[PATH_MAX];

/* At exit of the process that set EAL up (not of check's forked children):
 * leave no runtime directory behind in /var/run/dpdk. */
static void
eal_cleanup(void)
{
	DIR *d;
	struct dirent *e;

	if (getpid() != eal_pid)
		return;
	rte_eal_cleanup();
	d = opendir(run_dir);
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[PATH_MAX + 256];

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", run_dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(run_dir);
}

void
mbx_test_eal(const char *name)
{
	char prefix[64];
	char *argv[] = {
		(char *)name,  "--no-huge",	  "-m",	  "512", "--no-pci",
		"--no-shconf", "--file-prefix",	  prefix, "-l",	 "0-1",
		"--log-level", "lib.eal:warning", NULL,
	};

	if (pool != NULL)
		return;
	snprintf(prefix, sizeof(prefix), "mbxtest_%s_%d", name, getpid());
	if (rte_eal_init(RTE_DIM(argv) - 1, argv) < 0) {
		fprintf(stderr, "EAL init failed: %s\n", rte_strerror(rte_errno));
		exit(2);
	}
	eal_pid = getpid();
	snprintf(run_dir, sizeof(run_dir), "%s", rte_eal_get_runtime_dir());
	atexit(eal_cleanup);
	pool = rte_pktmbuf_pool_create("test_mbufs", 8192, 0, MBX_PKT_PRIV_SIZE,
				       RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	if (pool == NULL) {
		fprintf(stderr, "mbuf pool: %s\n", rte_strerror(rte_errno));
		exit(2);
	}
}

struct rte_mempool *
mbx_test_pool(void)
{
	return pool;
}

struct mbx_dp *
mbx_test_dp(const char *const *nfs, uint16_t nb_workers, uint16_t nb_ports, uint32_t flows)
{
	struct mbx_dp *dp = rte_zmalloc("test_dp", sizeof(*dp), RTE_CACHE_LINE_SIZE);
	struct mbx_nf_params p = {
		.nb_workers = nb_workers, .nb_ports = nb_ports, .socket = 0, .flows = flows};

	if (dp == NULL)
		return NULL;
	dp->nb_workers = nb_workers;
	dp->nb_ports = nb_ports;
	dp->flows = flows;
	memcpy(dp->timeouts, mbx_tmo_defaults, sizeof(dp->timeouts));
	for (; *nfs != NULL; nfs++)
		if (mbx_chain_add(&dp->chain, *nfs) < 0)
			goto fail;
	if (mbx_chain_create(&dp->chain, &p) < 0)
		goto fail;
	for (uint16_t i = 0; i < nb_workers; i++) {
		dp->workers[i] = mbx_worker_create(dp, i, 0);
		if (dp->workers[i] == NULL)
			goto fail;
		/* each worker sends on its own queue: packets wait in its TX buffers */
		for (uint16_t port = 0; port < nb_ports; port++)
			dp->workers[i]->txq[port] = (int16_t)i;
	}
	return dp;
fail:
	mbx_test_dp_free(dp);
	return NULL;
}

void
mbx_test_dp_free(struct mbx_dp *dp)
{
	if (dp == NULL)
		return;
	for (uint16_t i = 0; i < dp->nb_workers; i++)
		mbx_worker_free(dp->workers[i]);
	mbx_chain_destroy(&dp->chain);
	rte_free(dp);
}

uint16_t
mbx_test_take_tx(struct mbx_worker *w, uint16_t port, struct rte_mbuf **out, uint16_t max)
{
	struct mbx_txbuf *b = &w->tx[port];
	uint16_t n = RTE_MIN(b->n, max);

	memcpy(out, b->pkts, n * sizeof(out[0]));
	memmove(b->pkts, b->pkts + n, (b->n - n) * sizeof(out[0]));
	b->n -= n;
	return n;
}

struct rte_mbuf *
mbx_test_frame(const void *data, uint16_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	char *d;

	if (m == NULL)
		return NULL;
	d = rte_pktmbuf_append(m, len);
	if (d == NULL) {
		rte_pktmbuf_free(m);
		return NULL;
	}
	memcpy(d, data, len);
	return m;
}

rte_be32_t
mbx_test_ip4(const char *s)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		abort();
	return a.s_addr;
}

static struct rte_mbuf *
ip4_packet(const char *src, const char *dst, uint8_t proto, uint16_t l4_len, void **l4)
{
	uint16_t len = sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr) + l4_len;
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	struct rte_ether_hdr *eh;
	struct rte_ipv4_hdr *ip;

	if (m == NULL || rte_pktmbuf_append(m, len) == NULL)
		abort();
	eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	memset(eh, 0, len);
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	eh->src_addr.addr_bytes[5] = 1;
	eh->dst_addr.addr_bytes[5] = 2;
	ip = (struct rte_ipv4_hdr *)(eh + 1);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16(sizeof(*ip) + l4_len);
	ip->time_to_live = 64;
	ip->next_proto_id = proto;
	ip->src_addr = mbx_test_ip4(src);
	ip->dst_addr = mbx_test_ip4(dst);
	*l4 = ip + 1;
	for (uint16_t i = 0; i < l4_len; i++) /* a recognisable payload */
		((uint8_t *)*l4)[i] = (uint8_t)(i * 7 + 3);
	return m;
}

static void
finish_ip4(struct rte_mbuf *m)
{
	struct rte_ipv4_hdr *ip =
		rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, sizeof(struct rte_ether_hdr));
	void *l4 = (char *)ip + rte_ipv4_hdr_len(ip);

	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	if (ip->next_proto_id == IPPROTO_TCP) {
		struct rte_tcp_hdr *th = l4;

		th->cksum = 0;
		th->cksum = rte_ipv4_udptcp_cksum(ip, th);
	} else if (ip->next_proto_id == IPPROTO_UDP) {
		struct rte_udp_hdr *uh = l4;

		uh->dgram_cksum = 0;
		uh->dgram_cksum = rte_ipv4_udptcp_cksum(ip, uh);
	} else if (ip->next_proto_id == IPPROTO_ICMP) {
		struct rte_icmp_hdr *ih = l4;
		uint16_t l4_len = rte_be_to_cpu_16(ip->total_length) - rte_ipv4_hdr_len(ip);

		ih->icmp_cksum = 0;
		ih->icmp_cksum = (uint16_t)~rte_raw_cksum(ih, l4_len);
	}
}

struct rte_mbuf *
mbx_test_udp4(const char *src, const char *dst, uint16_t sport, uint16_t dport, uint16_t payload)
{
	void *l4;
	struct rte_mbuf *m =
		ip4_packet(src, dst, IPPROTO_UDP, sizeof(struct rte_udp_hdr) + payload, &l4);
	struct rte_udp_hdr *uh = l4;

	uh->src_port = rte_cpu_to_be_16(sport);
	uh->dst_port = rte_cpu_to_be_16(dport);
	uh->dgram_len = rte_cpu_to_be_16(sizeof(*uh) + payload);
	finish_ip4(m);
	return m;
}

struct rte_mbuf *
mbx_test_tcp4(const char *src, const char *dst, uint16_t sport, uint16_t dport, uint8_t flags,
	      uint16_t payload)
{
	void *l4;
	struct rte_mbuf *m =
		ip4_packet(src, dst, IPPROTO_TCP, sizeof(struct rte_tcp_hdr) + payload, &l4);
	struct rte_tcp_hdr *th = l4;

	th->src_port = rte_cpu_to_be_16(sport);
	th->dst_port = rte_cpu_to_be_16(dport);
	th->data_off = (sizeof(*th) / 4) << 4;
	th->tcp_flags = flags;
	th->sent_seq = rte_cpu_to_be_32(1000);
	th->rx_win = rte_cpu_to_be_16(65535);
	finish_ip4(m);
	return m;
}

struct rte_mbuf *
mbx_test_icmp4(const char *src, const char *dst, uint8_t type, uint16_t id, uint16_t payload)
{
	void *l4;
	struct rte_mbuf *m =
		ip4_packet(src, dst, IPPROTO_ICMP, sizeof(struct rte_icmp_hdr) + payload, &l4);
	struct rte_icmp_hdr *ih = l4;

	ih->icmp_type = type;
	ih->icmp_code = 0;
	ih->icmp_ident = rte_cpu_to_be_16(id);
	ih->icmp_seq_nb = rte_cpu_to_be_16(1);
	finish_ip4(m);
	return m;
}

struct rte_mbuf *
mbx_test_udp6(const char *src, const char *dst, uint16_t sport, uint16_t dport, uint16_t payload)
{
	uint16_t l4_len = sizeof(struct rte_udp_hdr) + payload;
	uint16_t len = sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv6_hdr) + l4_len;
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	struct rte_ether_hdr *eh;
	struct rte_ipv6_hdr *ip;
	struct rte_udp_hdr *uh;

	if (m == NULL || rte_pktmbuf_append(m, len) == NULL)
		abort();
	eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	memset(eh, 0, len);
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
	ip = (struct rte_ipv6_hdr *)(eh + 1);
	ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
	ip->payload_len = rte_cpu_to_be_16(l4_len);
	ip->proto = IPPROTO_UDP;
	ip->hop_limits = 64;
	if (inet_pton(AF_INET6, src, ip->src_addr) != 1 ||
	    inet_pton(AF_INET6, dst, ip->dst_addr) != 1)
		abort();
	uh = (struct rte_udp_hdr *)(ip + 1);
	uh->src_port = rte_cpu_to_be_16(sport);
	uh->dst_port = rte_cpu_to_be_16(dport);
	uh->dgram_len = rte_cpu_to_be_16(l4_len);
	uh->dgram_cksum = rte_ipv6_udptcp_cksum(ip, uh);
	return m;
}

int
mbx_test_verify_csums(struct rte_mbuf *m)
{
	struct rte_ipv4_hdr *ip =
		rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, sizeof(struct rte_ether_hdr));
	void *l4 = (char *)ip + rte_ipv4_hdr_len(ip);
	uint16_t l4_len = rte_be_to_cpu_16(ip->total_length) - rte_ipv4_hdr_len(ip);

	if (rte_raw_cksum(ip, rte_ipv4_hdr_len(ip)) != 0xffff)
		return -1;
	switch (ip->next_proto_id) {
	case IPPROTO_TCP:
		return rte_ipv4_udptcp_cksum_verify(ip, l4) == 0 ? 0 : -2;
	case IPPROTO_UDP:
		if (((struct rte_udp_hdr *)l4)->dgram_cksum == 0)
			return 0;
		return rte_ipv4_udptcp_cksum_verify(ip, l4) == 0 ? 0 : -2;
	case IPPROTO_ICMP:
		return rte_raw_cksum(l4, l4_len) == 0xffff ? 0 : -3;
	default:
		return 0;
	}
}

int
mbx_test_filter(struct mbx_filter *f, const char *s)
{
	struct mbx_filter_pb pb;

	if (mbx_filter_str_parse(s, &pb, NULL, 0) < 0)
		return -EINVAL;
	return mbx_filter_from_pb(&pb.f, f);
}
