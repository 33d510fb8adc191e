/* SPDX-License-Identifier: BSD-3-Clause */
/* Flow keys and filters: see mbx_flow.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_kvargs.h>

#include "mbx_flow.h"

void
mbx_filter_init(struct mbx_filter *f)
{
	memset(f, 0, sizeof(*f));
	f->sport.hi = UINT16_MAX;
	f->dport.hi = UINT16_MAX;
}

static bool
prefix_match(const struct mbx_prefix *p, uint8_t family, const union mbx_addr *a)
{
	if (p->len == 0)
		return true;
	if (family == MBX_FAMILY_V4) {
		rte_be32_t mask = rte_cpu_to_be_32(~0u << (32 - p->len));

		return ((a->v4 ^ p->addr.v4) & mask) == 0;
	}
	for (unsigned int i = 0, bits = p->len; i < 2 && bits > 0; i++) {
		uint64_t mask = bits >= 64 ? ~0ULL : ~0ULL << (64 - bits);

		if (((rte_be_to_cpu_64(a->u64[i]) ^ rte_be_to_cpu_64(p->addr.u64[i])) & mask) != 0)
			return false;
		bits = bits >= 64 ? bits - 64 : 0;
	}
	return true;
}

static bool
range_match(const struct mbx_port_range *r, rte_be16_t port)
{
	uint16_t v = rte_be_to_cpu_16(port);

	return v >= r->lo && v <= r->hi;
}

bool
mbx_filter_match(const struct mbx_filter *f, const struct mbx_flow_key *k)
{
	if (f->family != MBX_FAMILY_ANY && f->family != k->family)
		return false;
	if (f->proto != 0 && f->proto != k->proto)
		return false;
	return prefix_match(&f->src, k->family, &k->src) &&
	       prefix_match(&f->dst, k->family, &k->dst) && range_match(&f->sport, k->sport) &&
	       range_match(&f->dport, k->dport);
}

static int
parse_prefix(const char *key, const char *value, void *arg)
{
	struct mbx_filter *f = arg;
	struct mbx_prefix *p = strcmp(key, "src") == 0 ? &f->src : &f->dst;
	char addr[INET6_ADDRSTRLEN];
	const char *slash = strchr(value, '/');
	size_t alen = slash ? (size_t)(slash - value) : strlen(value);
	uint8_t family;
	unsigned long len;
	char *end;

	if (alen == 0 || alen >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, value, alen);
	addr[alen] = '\0';
	memset(&p->addr, 0, sizeof(p->addr));
	if (inet_pton(AF_INET, addr, &p->addr.v4) == 1)
		family = MBX_FAMILY_V4;
	else if (inet_pton(AF_INET6, addr, p->addr.v6) == 1)
		family = MBX_FAMILY_V6;
	else
		return -EINVAL;
	if (f->family != MBX_FAMILY_ANY && f->family != family)
		return -EINVAL;
	f->family = family;
	len = family == MBX_FAMILY_V4 ? 32 : 128;
	if (slash != NULL) {
		unsigned long max = len;

		errno = 0;
		len = strtoul(slash + 1, &end, 10);
		if (errno != 0 || *end != '\0' || end == slash + 1 || len > max)
			return -EINVAL;
	}
	p->len = (uint8_t)len;
	return 0;
}

static int
parse_range(const char *key, const char *value, void *arg)
{
	struct mbx_filter *f = arg;
	struct mbx_port_range *r = strcmp(key, "sport") == 0 ? &f->sport : &f->dport;
	unsigned long lo, hi;
	char *end;

	errno = 0;
	lo = strtoul(value, &end, 10);
	if (errno != 0 || end == value || lo > UINT16_MAX)
		return -EINVAL;
	hi = lo;
	if (*end == '-') {
		const char *h = end + 1;

		hi = strtoul(h, &end, 10);
		if (errno != 0 || end == h || hi > UINT16_MAX || hi < lo)
			return -EINVAL;
	}
	if (*end != '\0')
		return -EINVAL;
	r->lo = (uint16_t)lo;
	r->hi = (uint16_t)hi;
	return 0;
}

static int
parse_proto(const char *key, const char *value, void *arg)
{
	static const struct {
		const char *name;
		uint8_t proto;
	} names[] = {
		{"tcp", IPPROTO_TCP},	    {"udp", IPPROTO_UDP},   {"icmp", IPPROTO_ICMP},
		{"icmpv6", IPPROTO_ICMPV6}, {"sctp", IPPROTO_SCTP}, {"gre", IPPROTO_GRE},
	};
	struct mbx_filter *f = arg;
	unsigned long v;
	char *end;

	(void)key;
	for (unsigned int i = 0; i < RTE_DIM(names); i++) {
		if (strcmp(value, names[i].name) == 0) {
			f->proto = names[i].proto;
			return 0;
		}
	}
	errno = 0;
	v = strtoul(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || v == 0 || v > 255)
		return -EINVAL;
	f->proto = (uint8_t)v;
	return 0;
}

static int
parse_family(const char *key, const char *value, void *arg)
{
	struct mbx_filter *f = arg;
	uint8_t family;

	(void)key;
	if (strcmp(value, "4") == 0 || strcmp(value, "ipv4") == 0)
		family = MBX_FAMILY_V4;
	else if (strcmp(value, "6") == 0 || strcmp(value, "ipv6") == 0)
		family = MBX_FAMILY_V6;
	else
		return -EINVAL;
	if (f->family != MBX_FAMILY_ANY && f->family != family)
		return -EINVAL;
	f->family = family;
	return 0;
}

int
mbx_filter_parse(struct mbx_filter *f, const char *s)
{
	static const char *const keys[] = {"src", "dst", "sport", "dport", "proto", "family", NULL};
	static const struct {
		const char *key;
		arg_handler_t fn;
	} handlers[] = {
		{"family", parse_family}, {"src", parse_prefix},  {"dst", parse_prefix},
		{"sport", parse_range},	  {"dport", parse_range}, {"proto", parse_proto},
	};
	struct rte_kvargs *kv;
	int rc = 0;

	mbx_filter_init(f);
	if (s == NULL || *s == '\0')
		return 0;
	kv = rte_kvargs_parse(s, keys);
	if (kv == NULL)
		return -EINVAL;
	for (unsigned int i = 0; i < RTE_DIM(handlers) && rc == 0; i++) {
		/* each key at most once: "src=a,src=b" is ambiguous */
		if (rte_kvargs_count(kv, handlers[i].key) > 1)
			rc = -EINVAL;
		else
			rc = rte_kvargs_process(kv, handlers[i].key, handlers[i].fn, f);
	}
	rte_kvargs_free(kv);
	return rc < 0 ? -EINVAL : 0;
}

static const char *
proto_name(uint8_t proto, char *buf, size_t len)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "tcp";
	case IPPROTO_UDP:
		return "udp";
	case IPPROTO_ICMP:
		return "icmp";
	case IPPROTO_ICMPV6:
		return "icmpv6";
	default:
		snprintf(buf, len, "proto-%u", proto);
		return buf;
	}
}

char *
mbx_flow_key_str(const struct mbx_flow_key *k, char *buf, size_t len)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN], p[16];
	int af = k->family == MBX_FAMILY_V6 ? AF_INET6 : AF_INET;
	const char *lb = af == AF_INET6 ? "[" : "", *rb = af == AF_INET6 ? "]" : "";

	inet_ntop(af, &k->src, s, sizeof(s));
	inet_ntop(af, &k->dst, d, sizeof(d));
	snprintf(buf, len, "%s %s%s%s:%u > %s%s%s:%u", proto_name(k->proto, p, sizeof(p)), lb, s,
		 rb, rte_be_to_cpu_16(k->sport), lb, d, rb, rte_be_to_cpu_16(k->dport));
	return buf;
}
