/* SPDX-License-Identifier: BSD-3-Clause */
/* The command-line filter syntax: see mbx_filter_str.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mbx_filter_str.h"

static int
fail(char *err, size_t errlen, const char *what, const char *v)
{
	if (err != NULL)
		snprintf(err, errlen, "bad %s '%s'", what, v);
	return -EINVAL;
}

static int
set_family(Mbx__V1__Filter *f, Mbx__V1__Family family)
{
	if (f->family != MBX__V1__FAMILY__FAMILY_ANY && f->family != family)
		return -EINVAL;
	f->family = family;
	return 0;
}

static int
parse_prefix(Mbx__V1__Filter *f, Mbx__V1__Prefix *p, uint8_t *addr, const char *v)
{
	char a[INET6_ADDRSTRLEN];
	const char *slash = strchr(v, '/');
	size_t alen = slash ? (size_t)(slash - v) : strlen(v), bits;
	Mbx__V1__Family family;
	char *end;

	if (alen == 0 || alen >= sizeof(a))
		return -EINVAL;
	memcpy(a, v, alen);
	a[alen] = '\0';
	if (inet_pton(AF_INET, a, addr) == 1) {
		family = MBX__V1__FAMILY__FAMILY_IPV4;
		bits = 32;
	} else if (inet_pton(AF_INET6, a, addr) == 1) {
		family = MBX__V1__FAMILY__FAMILY_IPV6;
		bits = 128;
	} else {
		return -EINVAL;
	}
	if (set_family(f, family) < 0)
		return -EINVAL;
	p->addr.data = addr;
	p->addr.len = bits / 8;
	p->len = (uint32_t)bits;
	if (slash != NULL) {
		unsigned long len = strtoul(slash + 1, &end, 10);

		if (end == slash + 1 || *end != '\0' || len > bits)
			return -EINVAL;
		p->len = (uint32_t)len;
	}
	return 0;
}

static int
parse_range(Mbx__V1__PortRange *r, const char *v)
{
	unsigned long lo, hi;
	char *end;

	lo = strtoul(v, &end, 10);
	if (end == v || lo > 65535)
		return -EINVAL;
	hi = lo;
	if (*end == '-') {
		const char *h = end + 1;

		hi = strtoul(h, &end, 10);
		if (end == h || hi > 65535 || hi < lo)
			return -EINVAL;
	}
	if (*end != '\0')
		return -EINVAL;
	r->lo = (uint32_t)lo;
	r->hi = (uint32_t)hi;
	return 0;
}

static int
parse_proto(Mbx__V1__Filter *f, const char *v)
{
	static const struct {
		const char *name;
		uint32_t proto;
	} names[] = {{"tcp", 6},     {"udp", 17},   {"icmp", 1},
		     {"icmpv6", 58}, {"sctp", 132}, {"gre", 47}};
	unsigned long p;
	char *end;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(v, names[i].name) == 0) {
			f->proto = names[i].proto;
			return 0;
		}
	}
	p = strtoul(v, &end, 10);
	if (end == v || *end != '\0' || p == 0 || p > 255)
		return -EINVAL;
	f->proto = (uint32_t)p;
	return 0;
}

int
mbx_filter_str_parse(const char *s, struct mbx_filter_pb *out, char *err, size_t errlen)
{
	char *copy, *save = NULL, *kv;
	unsigned int seen = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	mbx__v1__filter__init(&out->f);
	mbx__v1__prefix__init(&out->src);
	mbx__v1__prefix__init(&out->dst);
	mbx__v1__port_range__init(&out->sport);
	mbx__v1__port_range__init(&out->dport);
	if (s == NULL || *s == '\0')
		return 0;
	copy = strdup(s);
	if (copy == NULL)
		return -ENOMEM;
	for (kv = strtok_r(copy, ",", &save); kv != NULL && rc == 0;
	     kv = strtok_r(NULL, ",", &save)) {
		static const char *const keys[] = {"src",   "dst",   "sport",
						   "dport", "proto", "family"};
		char *v = strchr(kv, '=');
		unsigned int k;

		if (v == NULL) {
			rc = fail(err, errlen, "filter term", kv);
			break;
		}
		*v++ = '\0';
		for (k = 0; k < 6 && strcmp(kv, keys[k]) != 0; k++)
			;
		if (k == 6 || (seen & (1u << k))) {
			rc = fail(err, errlen, k == 6 ? "filter key" : "repeated filter key", kv);
			break;
		}
		seen |= 1u << k;
		switch (k) {
		case 0:
			rc = parse_prefix(&out->f, &out->src, out->src_addr, v);
			out->f.src = &out->src;
			break;
		case 1:
			rc = parse_prefix(&out->f, &out->dst, out->dst_addr, v);
			out->f.dst = &out->dst;
			break;
		case 2:
			rc = parse_range(&out->sport, v);
			out->f.sport = &out->sport;
			break;
		case 3:
			rc = parse_range(&out->dport, v);
			out->f.dport = &out->dport;
			break;
		case 4:
			rc = parse_proto(&out->f, v);
			break;
		default:
			rc = strcmp(v, "4") == 0 || strcmp(v, "ipv4") == 0
				     ? set_family(&out->f, MBX__V1__FAMILY__FAMILY_IPV4)
			     : strcmp(v, "6") == 0 || strcmp(v, "ipv6") == 0
				     ? set_family(&out->f, MBX__V1__FAMILY__FAMILY_IPV6)
				     : -EINVAL;
			break;
		}
		if (rc < 0)
			fail(err, errlen, kv, v);
	}
	free(copy);
	return rc < 0 ? -EINVAL : 0;
}
