/* SPDX-License-Identifier: BSD-3-Clause */
/* mbxd's option table: see mbx_options.h. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cfgfile.h>
#include <rte_common.h>

#include "mbx_nf.h"
#include "mbx_options.h"

typedef int (*opt_fn)(struct mbx_options *o, const char *v);

static int opt_nf(struct mbx_options *o, const char *v);
static int opt_flows(struct mbx_options *o, const char *v);
static int opt_timeout(struct mbx_options *o, const char *v);
static int opt_stats_interval(struct mbx_options *o, const char *v);
static int opt_idle_sleep_us(struct mbx_options *o, const char *v);
static int opt_mbufs(struct mbx_options *o, const char *v);
static int opt_config(struct mbx_options *o, const char *v);
static int opt_control(struct mbx_options *o, const char *v);
static int opt_control_token(struct mbx_options *o, const char *v);
static int opt_max_frame(struct mbx_options *o, const char *v);
static int opt_max_conns(struct mbx_options *o, const char *v);
static int opt_peer(struct mbx_options *o, const char *v);

/* X(name, handler, metavar, help); a NULL handler is --help. */
#define MBX_OPTIONS(X)                                                                            \
	X("nf", opt_nf, "NAME[,key=value...]",                                                    \
	  "append NF NAME to the chain (repeatable, in chain order)")                             \
	X("flows", opt_flows, "N", "flow table capacity per worker (default 65536)")              \
	X("timeout", opt_timeout, "CLASS=SEC", "idle timeout of a flow class (repeatable)")       \
	X("stats-interval", opt_stats_interval, "SEC",                                            \
	  "print counters every SEC seconds, 0 = never (default 0)")                              \
	X("idle-sleep-us", opt_idle_sleep_us, "US",                                               \
	  "sleep US microseconds when a worker loop finds no work, 0 = busy poll (default 0)")    \
	X("mbufs", opt_mbufs, "N", "packet buffers in the pool (default: sized from the ports)")  \
	X("control", opt_control, "ADDR",                                                         \
	  "southbound listener: unix:PATH or HOST:PORT (default unix:<runtime dir>/mbx.sock)")    \
	X("control-token", opt_control_token, "FILE",                                             \
	  "access token clients must send; required for a listener not on loopback")              \
	X("max-frame", opt_max_frame, "BYTES",                                                    \
	  "largest southbound frame accepted (default 16 MiB)")                                   \
	X("control-max-conns", opt_max_conns, "N", "southbound connections at once (default 64)") \
	X("peer", opt_peer, "HOST:PORT",                                                          \
	  "listen for other instances' moves here (default 127.0.0.1:0, any free port)")          \
	X("config", opt_config, "FILE", "read options from FILE: one 'key = value' per line")     \
	X("help", NULL, "", "print this help and exit")

static const struct opt {
	const char *name;
	opt_fn fn;
	const char *metavar;
	const char *help;
} opts[] = {
#define X(n, f, m, h) {n, f, m, h},
	MBX_OPTIONS(X)
#undef X
};

static const struct opt *
opt_find(const char *name)
{
	for (unsigned int i = 0; i < RTE_DIM(opts); i++)
		if (strcmp(opts[i].name, name) == 0)
			return &opts[i];
	return NULL;
}

static int
parse_u32(const char *v, uint32_t min, uint32_t max, uint32_t *out)
{
	unsigned long long x;
	char *end;

	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || *v == '-' || x < min || x > max)
		return -EINVAL;
	*out = (uint32_t)x;
	return 0;
}

static int
opt_nf(struct mbx_options *o, const char *v)
{
	if (o->nb_nf == MBX_CHAIN_MAX) {
		fprintf(stderr, "mbxd: at most %d NFs in a chain\n", MBX_CHAIN_MAX);
		return -EINVAL;
	}
	o->nf[o->nb_nf] = strdup(v);
	if (o->nf[o->nb_nf] == NULL)
		return -ENOMEM;
	o->nb_nf++;
	return 0;
}

static int
opt_flows(struct mbx_options *o, const char *v)
{
	return parse_u32(v, 1, 1u << 27, &o->flows);
}

static int
opt_timeout(struct mbx_options *o, const char *v)
{
	const char *eq = strchr(v, '=');

	if (eq == NULL)
		return -EINVAL;
	for (int i = 0; i < MBX_TMO_MAX; i++)
		if (strlen(mbx_tmo_names[i]) == (size_t)(eq - v) &&
		    strncmp(v, mbx_tmo_names[i], eq - v) == 0)
			return parse_u32(eq + 1, 1, 30 * 86400, &o->timeouts[i]);
	return -EINVAL;
}

static int
opt_stats_interval(struct mbx_options *o, const char *v)
{
	return parse_u32(v, 0, 86400, &o->stats_interval);
}

static int
opt_idle_sleep_us(struct mbx_options *o, const char *v)
{
	return parse_u32(v, 0, 1000000, &o->idle_sleep_us);
}

static int
opt_mbufs(struct mbx_options *o, const char *v)
{
	return parse_u32(v, 1024, UINT32_MAX, &o->mbufs);
}

static int
opt_control(struct mbx_options *o, const char *v)
{
	o->control = strdup(v);
	return o->control != NULL ? 0 : -ENOMEM;
}

static int
opt_control_token(struct mbx_options *o, const char *v)
{
	o->control_token = strdup(v);
	return o->control_token != NULL ? 0 : -ENOMEM;
}

static int
opt_max_frame(struct mbx_options *o, const char *v)
{
	return parse_u32(v, 4096, 1u << 30, &o->max_frame);
}

static int
opt_max_conns(struct mbx_options *o, const char *v)
{
	return parse_u32(v, 1, 65536, &o->max_conns);
}

static int
opt_peer(struct mbx_options *o, const char *v)
{
	o->peer = strdup(v);
	return o->peer != NULL ? 0 : -ENOMEM;
}

static int
apply(struct mbx_options *o, const struct opt *op, const char *v, const char *where)
{
	int rc = op->fn(o, v);

	if (rc < 0)
		fprintf(stderr, "mbxd: %s%s %s: invalid value\n", where, op->name, v);
	return rc;
}

static int
opt_config(struct mbx_options *o, const char *v)
{
	static const char *const sections[] = {"GLOBAL", "mbxd"};
	struct rte_cfgfile *cfg = rte_cfgfile_load(v, CFG_FLAG_GLOBAL_SECTION);
	int rc = 0;

	if (cfg == NULL) {
		fprintf(stderr, "mbxd: --config %s: cannot read or parse it\n", v);
		return -EINVAL;
	}
	for (unsigned int s = 0; s < RTE_DIM(sections) && rc == 0; s++) {
		int n = rte_cfgfile_section_num_entries(cfg, sections[s]);
		struct rte_cfgfile_entry *e;

		if (n <= 0)
			continue;
		e = calloc(n, sizeof(*e));
		if (e == NULL) {
			rc = -ENOMEM;
			break;
		}
		n = rte_cfgfile_section_entries(cfg, sections[s], e, n);
		for (int i = 0; i < n && rc == 0; i++) {
			const struct opt *op = opt_find(e[i].name);

			if (op == NULL || op->fn == NULL || op->fn == opt_config) {
				fprintf(stderr, "mbxd: %s: unknown key '%s'\n", v, e[i].name);
				rc = -EINVAL;
			} else {
				rc = apply(o, op, e[i].value, "config key ");
			}
		}
		free(e);
	}
	rte_cfgfile_close(cfg);
	return rc;
}

void
mbx_options_defaults(struct mbx_options *o)
{
	memset(o, 0, sizeof(*o));
	o->flows = 65536;
	o->max_frame = 16u << 20;
	o->max_conns = 64;
	memcpy(o->timeouts, mbx_tmo_defaults, sizeof(o->timeouts));
}

static void
print_nf(const struct mbx_nf_ops *ops, void *arg)
{
	(void)arg;
	printf("  %-8s %s\n", ops->name, ops->usage ? ops->usage : "(no options)");
}

void
mbx_options_usage(const char *prog)
{
	printf("Usage: %s [EAL options] -- [options]\n\nOptions:\n", prog);
	for (unsigned int i = 0; i < RTE_DIM(opts); i++) {
		char left[64];

		snprintf(left, sizeof(left), "--%s %s", opts[i].name, opts[i].metavar);
		printf("  %-32s %s\n", left, opts[i].help);
	}
	printf("\nNFs (--nf NAME,key=value,...):\n");
	mbx_nf_foreach(print_nf, NULL);
	printf("\nTimeout classes (--timeout CLASS=SEC), with defaults:\n ");
	for (int i = 0; i < MBX_TMO_MAX; i++)
		printf(" %s=%u", mbx_tmo_names[i], mbx_tmo_defaults[i]);
	printf("\n\nPort 0 faces the inside, port 1 the outside; with one port, packets leave\n"
	       "where they came in. Every lcore but the main one is a worker.\n");
}

int
mbx_options_parse(struct mbx_options *o, int argc, char **argv)
{
	struct option longopts[RTE_DIM(opts) + 1];
	int c, idx;

	for (unsigned int i = 0; i < RTE_DIM(opts); i++)
		longopts[i] =
			(struct option){opts[i].name, opts[i].fn ? required_argument : no_argument,
					NULL, 256 + (int)i};
	memset(&longopts[RTE_DIM(opts)], 0, sizeof(longopts[0]));
	optind = 1;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, &idx)) != -1) {
		const struct opt *op;

		if (c == 'h')
			c = 256 + (int)(opt_find("help") - opts);
		if (c < 256) {
			fprintf(stderr, "mbxd: see --help\n");
			return -EINVAL;
		}
		op = &opts[c - 256];
		if (op->fn == NULL) {
			mbx_options_usage(argv[0]);
			return 1;
		}
		if (apply(o, op, optarg, "--") < 0)
			return -EINVAL;
	}
	if (optind < argc) {
		fprintf(stderr, "mbxd: unexpected argument '%s'; see --help\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
}
