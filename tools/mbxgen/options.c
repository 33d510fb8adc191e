/* SPDX-License-Identifier: BSD-3-Clause */
/* mbxgen's option table: see options.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>
#include <rte_ethdev.h>

#include "options.h"
#include "pkt.h"

typedef int (*opt_fn)(struct mbxgen_options *o, const char *v);

static int opt_tx_port(struct mbxgen_options *o, const char *v);
static int opt_rx_ports(struct mbxgen_options *o, const char *v);
static int opt_flows(struct mbxgen_options *o, const char *v);
static int opt_hosts(struct mbxgen_options *o, const char *v);
static int opt_rate(struct mbxgen_options *o, const char *v);
static int opt_duration(struct mbxgen_options *o, const char *v);
static int opt_count(struct mbxgen_options *o, const char *v);
static int opt_size(struct mbxgen_options *o, const char *v);
static int opt_proto(struct mbxgen_options *o, const char *v);
static int opt_tcp_fin(struct mbxgen_options *o, const char *v);
static int opt_src(struct mbxgen_options *o, const char *v);
static int opt_dst(struct mbxgen_options *o, const char *v);
static int opt_sport(struct mbxgen_options *o, const char *v);
static int opt_dport(struct mbxgen_options *o, const char *v);
static int opt_dst_mac(struct mbxgen_options *o, const char *v);
static int opt_max_inflight(struct mbxgen_options *o, const char *v);
static int opt_drain_ms(struct mbxgen_options *o, const char *v);
static int opt_burst(struct mbxgen_options *o, const char *v);
static int opt_idle_sleep_us(struct mbxgen_options *o, const char *v);
static int opt_stats_interval(struct mbxgen_options *o, const char *v);
static int opt_link_wait(struct mbxgen_options *o, const char *v);
static int opt_syn_retry_ms(struct mbxgen_options *o, const char *v);
static int opt_open_rate(struct mbxgen_options *o, const char *v);
static int opt_report(struct mbxgen_options *o, const char *v);

/* X(name, handler, metavar, help); a NULL handler is --help. A "" metavar: no value. */
#define MBXGEN_OPTIONS(X)                                                                        \
	X("tx-port", opt_tx_port, "P", "send on port P (default 0)")                             \
	X("rx-ports", opt_rx_ports, "LIST",                                                      \
	  "receive and check on ports LIST (1,2 or 1-3; 'none'); default every other port")      \
	X("flows", opt_flows, "N", "number of flows (default 16)")                               \
	X("hosts", opt_hosts, "N",                                                               \
	  "inside source addresses the flows are spread over, round robin (default 16)")         \
	X("rate", opt_rate, "PPS", "packets per second in total, 0 = unpaced (default 10000)")   \
	X("duration", opt_duration, "SEC",                                                       \
	  "send for SEC seconds (default 5; ignored with --count)")                              \
	X("count", opt_count, "N", "send N data packets per flow, then stop")                    \
	X("size", opt_size, "BYTES",                                                             \
	  "data frame size without FCS, 64-1514; raised to what headers and payload need "       \
	  "(66 UDP, 78 TCP) (default 64)")                                                       \
	X("proto", opt_proto, "udp|tcp|mixed",                                                   \
	  "flow protocol; mixed: even flows UDP, odd TCP (default udp)")                         \
	X("tcp-fin", opt_tcp_fin, "", "close each TCP flow at the end: FIN, FIN-ACK, ACK")       \
	X("src", opt_src, "ADDR[/N]",                                                            \
	  "first inside source address; the hosts follow it (within /N if given) (default "      \
	  "10.0.0.1)")                                                                           \
	X("dst", opt_dst, "ADDR", "destination address (default 192.0.2.1)")                     \
	X("sport", opt_sport, "PORT",                                                            \
	  "first source port; flow i uses sport + i / hosts (default 1024)")                     \
	X("dport", opt_dport, "PORT", "destination port (default 5000)")                         \
	X("dst-mac", opt_dst_mac, "MAC",                                                         \
	  "destination MAC of sent frames (default 02:00:00:00:00:02)")                          \
	X("max-inflight", opt_max_inflight, "N",                                                 \
	  "send only while fewer than N data packets are in flight, 0 = unbounded (default 0)")  \
	X("drain-ms", opt_drain_ms, "MS",                                                        \
	  "after sending, receive MS more milliseconds before reporting; also how long an "      \
	  "unanswered packet counts as in flight (default 500)")                                 \
	X("burst", opt_burst, "N", "largest burst sent at once (default 32)")                    \
	X("idle-sleep-us", opt_idle_sleep_us, "US",                                              \
	  "sleep US microseconds when a loop found nothing to do, 0 = busy poll (default 0)")    \
	X("stats-interval", opt_stats_interval, "SEC",                                           \
	  "log progress every SEC seconds, 0 = never (default 0)")                               \
	X("link-wait", opt_link_wait, "SEC", "wait up to SEC seconds for links up (default 10)") \
	X("syn-retry-ms", opt_syn_retry_ms, "MS",                                                \
	  "send a SYN again after MS without SYN-ACK, 3 times at most (default 1000)")           \
	X("open-rate", opt_open_rate, "N",                                                       \
	  "open flows N per second in flow order (nothing of a flow, not even its SYN, is sent " \
	  "before its turn), 0 = all at once (default 0)")                                       \
	X("report", opt_report, "FILE", "write the JSON report to FILE ('-': standard output)")  \
	X("help", NULL, "", "print this help and exit")

static const struct opt {
	const char *name;
	opt_fn fn;
	const char *metavar;
	const char *help;
} opts[] = {
#define X(n, f, m, h) {n, f, m, h},
	MBXGEN_OPTIONS(X)
#undef X
};

static int
parse_u64(const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long x;
	char *end;

	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || *v == '-' || x < min || x > max)
		return -EINVAL;
	*out = x;
	return 0;
}

static int
parse_u32(const char *v, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t x;
	int rc = parse_u64(v, min, max, &x);

	if (rc == 0)
		*out = (uint32_t)x;
	return rc;
}

static int
parse_u16(const char *v, uint16_t min, uint16_t max, uint16_t *out)
{
	uint64_t x;
	int rc = parse_u64(v, min, max, &x);

	if (rc == 0)
		*out = (uint16_t)x;
	return rc;
}

static int
parse_addr(const char *v, uint32_t *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, v, &a) != 1)
		return -EINVAL;
	*out = ntohl(a.s_addr);
	return 0;
}

static int
opt_tx_port(struct mbxgen_options *o, const char *v)
{
	return parse_u16(v, 0, RTE_MAX_ETHPORTS - 1, &o->tx_port);
}

static int
opt_rx_ports(struct mbxgen_options *o, const char *v)
{
	char buf[256], *save = NULL, *tok;

	o->rx_ports = 0;
	o->rx_ports_set = true;
	if (strcmp(v, "none") == 0)
		return 0;
	if (strlen(v) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, v);
	for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		char *dash = strchr(tok, '-');
		uint16_t lo, hi;

		if (dash != NULL)
			*dash = '\0';
		if (parse_u16(tok, 0, 63, &lo) < 0)
			return -EINVAL;
		hi = lo;
		if (dash != NULL && (parse_u16(dash + 1, lo, 63, &hi) < 0))
			return -EINVAL;
		for (uint16_t p = lo; p <= hi; p++)
			o->rx_ports |= UINT64_C(1) << p;
	}
	return o->rx_ports != 0 ? 0 : -EINVAL;
}

static int
opt_flows(struct mbxgen_options *o, const char *v)
{
	return parse_u32(v, 1, MBXGEN_MAX_FLOWS, &o->flows);
}

static int
opt_hosts(struct mbxgen_options *o, const char *v)
{
	return parse_u32(v, 1, 1u << 24, &o->hosts);
}

static int
opt_rate(struct mbxgen_options *o, const char *v)
{
	return parse_u64(v, 0, 1000000000, &o->rate);
}

static int
opt_duration(struct mbxgen_options *o, const char *v)
{
	char *end;
	double d = strtod(v, &end);

	if (end == v || *end != '\0' || !isfinite(d) || d <= 0 || d > 86400 * 30)
		return -EINVAL;
	o->duration = d;
	return 0;
}

static int
opt_count(struct mbxgen_options *o, const char *v)
{
	return parse_u64(v, 1, UINT64_C(1) << 40, &o->count);
}

static int
opt_size(struct mbxgen_options *o, const char *v)
{
	return parse_u32(v, 64, 1514, &o->size);
}

static int
opt_proto(struct mbxgen_options *o, const char *v)
{
	if (strcmp(v, "udp") == 0)
		o->proto = MBXGEN_PROTO_UDP;
	else if (strcmp(v, "tcp") == 0)
		o->proto = MBXGEN_PROTO_TCP;
	else if (strcmp(v, "mixed") == 0)
		o->proto = MBXGEN_PROTO_MIXED;
	else
		return -EINVAL;
	return 0;
}

static int
opt_tcp_fin(struct mbxgen_options *o, const char *v)
{
	(void)v;
	o->tcp_fin = true;
	return 0;
}

static int
opt_src(struct mbxgen_options *o, const char *v)
{
	char buf[INET_ADDRSTRLEN];
	const char *slash = strchr(v, '/');
	size_t len = slash ? (size_t)(slash - v) : strlen(v);
	uint32_t plen = 32;

	if (len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, v, len);
	buf[len] = '\0';
	if (slash != NULL && parse_u32(slash + 1, 0, 32, &plen) < 0)
		return -EINVAL;
	o->src_plen = (uint8_t)plen;
	return parse_addr(buf, &o->src);
}

static int
opt_dst(struct mbxgen_options *o, const char *v)
{
	return parse_addr(v, &o->dst);
}

static int
opt_sport(struct mbxgen_options *o, const char *v)
{
	return parse_u16(v, 1, 65535, &o->sport);
}

static int
opt_dport(struct mbxgen_options *o, const char *v)
{
	return parse_u16(v, 1, 65535, &o->dport);
}

static int
opt_dst_mac(struct mbxgen_options *o, const char *v)
{
	return rte_ether_unformat_addr(v, &o->dst_mac) == 0 ? 0 : -EINVAL;
}

static int
opt_max_inflight(struct mbxgen_options *o, const char *v)
{
	return parse_u32(v, 0, UINT32_MAX, &o->max_inflight);
}

static int
opt_open_rate(struct mbxgen_options *o, const char *v)
{
	return parse_u32(v, 0, UINT32_MAX, &o->open_rate);
}

static int
opt_drain_ms(struct mbxgen_options *o, const char *v)
{
	return parse_u32(v, 1, 3600 * 1000, &o->drain_ms);
}

static int
opt_burst(struct mbxgen_options *o, const char *v)
{
	return parse_u32(v, 1, MBXGEN_MAX_BURST, &o->burst);
}

static int
opt_idle_sleep_us(struct mbxgen_options *o, const char *v)
{
	return parse_u32(v, 0, 1000000, &o->idle_sleep_us);
}

static int
opt_stats_interval(struct mbxgen_options *o, const char *v)
{
	return parse_u32(v, 0, 86400, &o->stats_interval);
}

static int
opt_link_wait(struct mbxgen_options *o, const char *v)
{
	return parse_u32(v, 0, 3600, &o->link_wait);
}

static int
opt_syn_retry_ms(struct mbxgen_options *o, const char *v)
{
	return parse_u32(v, 1, 600000, &o->syn_retry_ms);
}

static int
opt_report(struct mbxgen_options *o, const char *v)
{
	o->report = v;
	return 0;
}

void
mbxgen_options_defaults(struct mbxgen_options *o)
{
	static const struct rte_ether_addr dst_mac = {{0x02, 0, 0, 0, 0, 0x02}};

	memset(o, 0, sizeof(*o));
	o->flows = 16;
	o->hosts = 16;
	o->rate = 10000;
	o->duration = 5;
	o->size = 64;
	o->proto = MBXGEN_PROTO_UDP;
	o->src = RTE_IPV4(10, 0, 0, 1);
	o->src_plen = 32;
	o->dst = RTE_IPV4(192, 0, 2, 1);
	o->sport = 1024;
	o->dport = 5000;
	o->dst_mac = dst_mac;
	o->drain_ms = 500;
	o->burst = 32;
	o->link_wait = 10;
	o->syn_retry_ms = 1000;
}

void
mbxgen_options_usage(const char *prog)
{
	printf("Usage: %s [EAL options] -- [options]\n\nOptions:\n", prog);
	for (unsigned int i = 0; i < RTE_DIM(opts); i++) {
		char left[64];

		snprintf(left, sizeof(left), "--%s %s", opts[i].name, opts[i].metavar);
		printf("  %-28s %s\n", left, opts[i].help);
	}
	printf("\nFlow i: source (src + i %% hosts):(sport + i / hosts), destination dst:dport.\n"
	       "Sends on the tx port, receives on every port it uses (the tx port too), and\n"
	       "answers TCP as both ends. One lcore runs everything (-l 0 is enough).\n"
	       "Stop early with SIGINT or SIGTERM (a second one skips the drain).\n");
}

/* Checks across options, once all are known. */
static int
validate(struct mbxgen_options *o)
{
	uint64_t per_host;

	if (o->hosts > o->flows)
		o->hosts = o->flows;
	per_host = (o->flows + o->hosts - 1) / o->hosts;
	if (o->sport + per_host - 1 > 65535) {
		fprintf(stderr,
			"mbxgen: %u flows over %u hosts need source ports %u..%" PRIu64
			"; use more --hosts or a lower --sport\n",
			o->flows, o->hosts, o->sport, o->sport + per_host - 1);
		return -EINVAL;
	}
	if ((uint64_t)o->src + o->hosts - 1 > UINT32_MAX) {
		fprintf(stderr, "mbxgen: --src + --hosts passes 255.255.255.255\n");
		return -EINVAL;
	}
	if (o->src_plen < 32) {
		uint32_t span = (uint32_t)((UINT64_C(1) << (32 - o->src_plen)) - 1);
		uint32_t last = o->src + o->hosts - 1;

		if ((o->src & ~span) != (last & ~span)) {
			fprintf(stderr, "mbxgen: %u hosts from --src do not fit in its /%u\n",
				o->hosts, o->src_plen);
			return -EINVAL;
		}
	}
	if (o->rx_ports_set && (o->rx_ports & (UINT64_C(1) << o->tx_port)) != 0)
		o->rx_ports &= ~(UINT64_C(1) << o->tx_port); /* the tx port is always polled */
	return 0;
}

int
mbxgen_options_parse(struct mbxgen_options *o, int argc, char **argv)
{
	struct option longopts[RTE_DIM(opts) + 1];
	int c, idx;

	for (unsigned int i = 0; i < RTE_DIM(opts); i++)
		longopts[i] = (struct option){opts[i].name,
					      opts[i].fn != NULL && opts[i].metavar[0] != '\0'
						      ? required_argument
						      : no_argument,
					      NULL, 256 + (int)i};
	memset(&longopts[RTE_DIM(opts)], 0, sizeof(longopts[0]));
	optind = 1;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, &idx)) != -1) {
		const struct opt *op;

		if (c == 'h') {
			mbxgen_options_usage(argv[0]);
			return 1;
		}
		if (c < 256) {
			fprintf(stderr, "mbxgen: see --help\n");
			return -EINVAL;
		}
		op = &opts[c - 256];
		if (op->fn == NULL) {
			mbxgen_options_usage(argv[0]);
			return 1;
		}
		if (op->fn(o, optarg) < 0) {
			fprintf(stderr, "mbxgen: --%s %s: invalid value\n", op->name,
				optarg ? optarg : "");
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mbxgen: unexpected argument '%s'; see --help\n", argv[optind]);
		return -EINVAL;
	}
	return validate(o);
}
