/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fw: a stateful firewall (--nf fw[,rules=FILE][,default=allow|deny]
 * [,conn_limit=N][,window_check=on|off][,pickup=on|off]); see fw.h.
 *
 * A packet meets, in this order: ICMP errors are judged by the connection
 * they report on; a packet of a tracked connection by the connection's
 * state; the first packet of a connection by its opening (TCP: a SYN, or any
 * valid segment with pickup=on; ICMP: not an echo reply), then the rules,
 * then its source host's connection count. Whatever is refused is dropped
 * and counted by reason; the framework deletes a flow whose first packet was
 * dropped, so refused connections hold no state.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_kvargs.h>
#include <rte_malloc.h>
#include <rte_tcp.h>

#include "fw.h"
#include "mbx_nf.h"

RTE_LOG_REGISTER(fw_logtype, user.mbx.fw, NOTICE);

#define FW_USAGE \
	"[rules=FILE][,default=allow|deny][,conn_limit=N][,window_check=on|off][,pickup=on|off]"

#define ICMP_DEST_UNREACH   3
#define ICMP_SOURCE_QUENCH  4
#define ICMP_TIME_EXCEEDED  11
#define ICMP_PARAM_PROBLEM  12
#define ICMP6_PARAM_PROBLEM 4 /* types 1-4: unreachable, too big, time exceeded, parameter */
#define ICMP6_ECHO_REQUEST  128
#define ICMP6_ECHO_REPLY    129

static const char *const fw_counter_names[FW_CTR_MAX] = {
#define X(e, s) s,
	FW_COUNTERS(X)
#undef X
};

const char *const fw_state_names[FW_ST_MAX] = {
#define X(e, s, c) s,
	FW_STATES(X)
#undef X
};

const uint8_t fw_state_class[FW_ST_MAX] = {
#define X(e, s, c) MBX_TMO_##c,
	FW_STATES(X)
#undef X
};

/* Options. */

static int
parse_onoff(const char *key, const char *v, void *arg)
{
	if (v != NULL && strcmp(v, "on") == 0)
		*(bool *)arg = true;
	else if (v != NULL && strcmp(v, "off") == 0)
		*(bool *)arg = false;
	else {
		FW_LOG(ERR, "%s=%s: expected on or off", key, v ? v : "");
		return -EINVAL;
	}
	return 0;
}

static int
parse_default(const char *key, const char *v, void *arg)
{
	if (v != NULL && strcmp(v, "allow") == 0)
		*(bool *)arg = true;
	else if (v != NULL && strcmp(v, "deny") == 0)
		*(bool *)arg = false;
	else {
		FW_LOG(ERR, "%s=%s: expected allow or deny", key, v ? v : "");
		return -EINVAL;
	}
	return 0;
}

static int
parse_limit(const char *key, const char *v, void *arg)
{
	unsigned long n;
	char *end;

	errno = 0;
	n = v != NULL ? strtoul(v, &end, 10) : 0;
	if (v == NULL || end == v || *end != '\0' || errno != 0 || n > UINT32_MAX || *v == '-') {
		FW_LOG(ERR, "%s=%s: expected a number of connections (0: no limit)", key,
		       v ? v : "");
		return -EINVAL;
	}
	*(uint32_t *)arg = (uint32_t)n;
	return 0;
}

static void *
fw_create(const struct mbx_nf_params *p)
{
	static const char *const keys[] = {"rules",	   "default", "conn_limit",
					   "window_check", "pickup",  NULL};
	struct rte_kvargs *kv = rte_kvargs_parse(p->args, keys);
	bool default_allow = false, window_check = true, pickup = false;
	struct fw_rule *rules = NULL;
	uint32_t conn_limit = 0;
	int n = 0;
	struct fw *fw;

	if (kv == NULL) {
		FW_LOG(ERR, "unknown or malformed option in '%s'; expected %s", p->args, FW_USAGE);
		goto inval;
	}
	for (const char *const *k = keys; *k != NULL; k++) {
		if (rte_kvargs_count(kv, *k) > 1) {
			FW_LOG(ERR, "%s given twice", *k);
			goto inval;
		}
	}
	if (rte_kvargs_process(kv, "default", parse_default, &default_allow) < 0 ||
	    rte_kvargs_process(kv, "conn_limit", parse_limit, &conn_limit) < 0 ||
	    rte_kvargs_process(kv, "window_check", parse_onoff, &window_check) < 0 ||
	    rte_kvargs_process(kv, "pickup", parse_onoff, &pickup) < 0)
		goto inval;
	if (rte_kvargs_count(kv, "rules") == 1) {
		const char *path = rte_kvargs_get(kv, "rules");

		if (path == NULL || *path == '\0') {
			FW_LOG(ERR, "rules= needs a file name");
			goto inval;
		}
		n = fw_rules_load(path, &rules); /* logs what is wrong, with the line */
		if (n < 0)
			goto inval;
	}
	rte_kvargs_free(kv);
	kv = NULL;
	fw = rte_zmalloc_socket("fw", sizeof(*fw), RTE_CACHE_LINE_SIZE, p->socket);
	if (fw == NULL) {
		free(rules);
		rte_errno = ENOMEM;
		return NULL;
	}
	fw->rules = fw_rules_create(rules, (uint32_t)n, default_allow, FW_ACL_MIN, p->socket);
	free(rules);
	if (fw->rules == NULL) {
		FW_LOG(ERR, "rule set of %d rules: %s", n, rte_strerror(rte_errno));
		rte_free(fw);
		return NULL;
	}
	fw->conn_limit = conn_limit;
	fw->window_check = window_check;
	fw->pickup = pickup;
	fw->one_armed = p->nb_ports == 1;
	fw->flows = p->flows;
	fw->socket = p->socket;
	fw->nb_workers = p->nb_workers;
	FW_LOG(INFO, "%u rules (%s), default %s, conn_limit %u, window_check %s, pickup %s",
	       fw->rules->n, fw->rules->acl ? "rte_acl" : "linear",
	       default_allow ? "allow" : "deny", conn_limit, window_check ? "on" : "off",
	       pickup ? "on" : "off");
	return fw;
inval:
	rte_kvargs_free(kv);
	free(rules);
	rte_errno = EINVAL;
	return NULL;
}

static void
fw_destroy(void *nf)
{
	struct fw *fw = nf;

	fw_rules_free(fw->rules);
	rte_free(fw);
}

static void *
fw_worker_init(void *nf, uint16_t worker, uint16_t nb_workers)
{
	struct fw *fw = nf;

	(void)nb_workers;
	fw->hosts[worker] = fw_hosts_create(fw->flows, fw->socket);
	return fw->hosts[worker];
}

static void
fw_worker_fini(void *nf, void *priv)
{
	struct fw *fw = nf;

	for (unsigned int i = 0; i < RTE_DIM(fw->hosts); i++)
		if (fw->hosts[i] == priv)
			fw->hosts[i] = NULL;
	fw_hosts_free(priv);
}

uint64_t
fw_conns(const struct fw *fw)
{
	uint64_t n = 0;

	for (uint16_t i = 0; i < fw->nb_workers; i++)
		if (fw->hosts[i] != NULL)
			n += fw_hosts_conns(fw->hosts[i]);
	return n;
}

static int
fw_owner(const void *nf, const struct mbx_pkt *p, uint16_t nb_workers)
{
	const struct fw *fw = nf;

	if (fw->one_armed)
		return -1; /* no inside host: the symmetric hash keeps both directions together */
	/* every flow of an inside host on one worker, the ICMP errors sent to it too */
	return mbx_owner_by_host(p->side == MBX_SIDE_INSIDE ? &p->key.src : &p->key.dst,
				 p->key.family, nb_workers);
}

/* ICMP. */

static inline uint8_t
echo_request(const struct mbx_pkt *p)
{
	return p->key.family == MBX_FAMILY_V6 ? ICMP6_ECHO_REQUEST : RTE_IP_ICMP_ECHO_REQUEST;
}

static inline uint8_t
echo_reply(const struct mbx_pkt *p)
{
	return p->key.family == MBX_FAMILY_V6 ? ICMP6_ECHO_REPLY : RTE_IP_ICMP_ECHO_REPLY;
}

static inline bool
icmp_is_error(const struct mbx_pkt *p)
{
	uint8_t t = p->icmp_type;

	if (p->key.proto == IPPROTO_ICMP && p->key.family == MBX_FAMILY_V4)
		return t == ICMP_DEST_UNREACH || t == ICMP_SOURCE_QUENCH ||
		       t == ICMP_TIME_EXCEEDED || t == ICMP_PARAM_PROBLEM;
	if (p->key.proto == IPPROTO_ICMPV6 && p->key.family == MBX_FAMILY_V6)
		return t >= 1 && t <= ICMP6_PARAM_PROBLEM;
	return false;
}

/*
 * The key of the packet an ICMP error quotes, as its sender sent it: IPv4
 * (with options) or IPv6 (no extension headers) and at least 8 bytes of its
 * L4 header, as RFC 792 and RFC 4443 guarantee.
 * @return 0, or -1 if the quote is too short or names no connection.
 */
static int
icmp_quoted_key(struct rte_mbuf *m, const struct mbx_pkt *p, struct mbx_flow_key *k)
{
	const uint8_t *d = (const uint8_t *)mbx_pkt_l4(m) + sizeof(struct rte_icmp_hdr);
	uint32_t len = p->l4_len - sizeof(struct rte_icmp_hdr), hl;
	const uint8_t *l4;
	rte_be16_t frag;

	memset(k, 0, sizeof(*k));
	k->family = p->key.family;
	if (k->family == MBX_FAMILY_V4) {
		if (len < sizeof(struct rte_ipv4_hdr) || (d[0] >> 4) != 4)
			return -1;
		hl = (d[0] & 0xf) * 4u;
		memcpy(&frag, d + offsetof(struct rte_ipv4_hdr, fragment_offset), 2);
		if (hl < sizeof(struct rte_ipv4_hdr) ||
		    (frag & rte_cpu_to_be_16(RTE_IPV4_HDR_OFFSET_MASK)) != 0)
			return -1; /* a later fragment has no ports */
		k->proto = d[offsetof(struct rte_ipv4_hdr, next_proto_id)];
		memcpy(&k->src.v4, d + offsetof(struct rte_ipv4_hdr, src_addr), 4);
		memcpy(&k->dst.v4, d + offsetof(struct rte_ipv4_hdr, dst_addr), 4);
	} else {
		hl = sizeof(struct rte_ipv6_hdr);
		if (len < hl || (d[0] >> 4) != 6)
			return -1;
		k->proto = d[offsetof(struct rte_ipv6_hdr, proto)];
		memcpy(k->src.v6, d + offsetof(struct rte_ipv6_hdr, src_addr), 16);
		memcpy(k->dst.v6, d + offsetof(struct rte_ipv6_hdr, dst_addr), 16);
	}
	if (len < hl + 8)
		return -1;
	l4 = d + hl;
	switch (k->proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		memcpy(&k->sport, l4, 2);
		memcpy(&k->dport, l4 + 2, 2);
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		/* an error about an echo (never about another error) */
		if (l4[0] != echo_request(p) && l4[0] != echo_reply(p))
			return -1;
		memcpy(&k->sport, l4 + offsetof(struct rte_icmp_hdr, icmp_ident), 2);
		k->dport = k->sport;
		break;
	default:
		break;
	}
	return 0;
}

/* An ICMP error passes if it reports on a connection, to the host that sent the packet. */
static enum fw_counter
icmp_error(struct mbx_nf_ctx *c, struct rte_mbuf *m, const struct mbx_pkt *p, struct fw_conn *cn)
{
	const struct fw_conn *related;
	struct mbx_flow_key k;
	struct mbx_flow *f;

	if (icmp_quoted_key(m, p, &k) < 0 || memcmp(&k.src, &p->key.dst, sizeof(k.src)) != 0)
		return FW_CTR_ICMP_UNRELATED;
	f = mbx_nf_flow_lookup(c, &k, NULL);
	if (f == NULL || f == p->flow)
		return FW_CTR_ICMP_UNRELATED;
	related = mbx_nf_state(c, f);
	if (related->state == FW_ST_NONE)
		return FW_CTR_ICMP_UNRELATED;
	c->counters[FW_CTR_ICMP_RELATED]++;
	/* the error's own entry is no connection: let it go soon */
	if (cn->state == FW_ST_NONE && p->flow->tmo_class != MBX_TMO_TCP_CLOSED)
		mbx_flow_set_class(c->table, p->flow, MBX_TMO_TCP_CLOSED, c->now);
	return FW_PASS;
}

/* The packet path. */

/* A connection whose first packet is @p passes the rules and its host's limit? */
static enum fw_counter
admit(struct mbx_nf_ctx *c, const struct mbx_pkt *p, struct fw_conn *cn)
{
	const struct fw *fw = c->nf;
	int slot;

	if (!fw_rules_allow(fw->rules, &p->key))
		return FW_CTR_DENIED;
	slot = fw_host_get(c->priv, p->key.family, &p->key.src);
	if (slot < 0)
		return FW_CTR_HOSTS_FULL;
	/* a host just added has no connection, and a limit is at least 1 */
	if (fw->conn_limit != 0 && fw_host_at(c->priv, (uint32_t)slot)->conns >= fw->conn_limit)
		return FW_CTR_CONN_LIMIT;
	fw_host_hold(c->priv, (uint32_t)slot);
	cn->host = (uint32_t)slot + 1;
	c->counters[FW_CTR_ALLOWED]++;
	return FW_PASS;
}

/* The first packet of a connection. */
static enum fw_counter
fw_open(struct mbx_nf_ctx *c, struct rte_mbuf *m, const struct mbx_pkt *p, struct fw_conn *cn)
{
	const struct fw *fw = c->nf;
	enum fw_counter why;
	uint8_t state;

	switch (p->key.proto) {
	case IPPROTO_TCP: {
		uint8_t fl = p->tcp_flags & (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG |
					     RTE_TCP_FIN_FLAG | RTE_TCP_RST_FLAG);
		struct fw_seg s;

		if (!fw_tcp_flags_valid(fl))
			return FW_CTR_TCP_BAD_FLAGS;
		/* a SYN opens; with pickup, any segment but a SYN-ACK or a RST */
		if (p->dir != MBX_DIR_ORIG ||
		    (fl != RTE_TCP_SYN_FLAG &&
		     !(fw->pickup && !(fl & (RTE_TCP_SYN_FLAG | RTE_TCP_RST_FLAG)))))
			return FW_CTR_TCP_NO_CONN;
		why = admit(c, p, cn);
		if (why == FW_PASS) {
			fw_seg_read(&s, mbx_pkt_l4(m), p->l4_len, p->dir);
			fw_tcp_open(cn, &s);
		}
		return why;
	}
	case IPPROTO_UDP:
		state = FW_ST_UDP_UNREPLIED;
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if (p->icmp_type == echo_reply(p))
			return FW_CTR_ICMP_BAD; /* a reply to no request */
		state = p->icmp_type == echo_request(p) ? FW_ST_ICMP_ECHO : FW_ST_OTHER;
		break;
	default:
		state = FW_ST_OTHER;
		break;
	}
	why = admit(c, p, cn);
	if (why == FW_PASS)
		cn->state = state;
	return why;
}

/* A packet of a tracked connection. */
static enum fw_counter
fw_follow(struct mbx_nf_ctx *c, struct rte_mbuf *m, const struct mbx_pkt *p, struct fw_conn *cn)
{
	const struct fw *fw = c->nf;
	struct fw_seg s;

	switch (cn->state) {
	case FW_ST_UDP_UNREPLIED:
		if (p->dir == MBX_DIR_REPLY)
			cn->state = FW_ST_UDP_REPLIED;
		return FW_PASS;
	case FW_ST_ICMP_ECHO:
		/* requests one way, replies the other */
		return p->icmp_type == (p->dir == MBX_DIR_ORIG ? echo_request(p) : echo_reply(p))
			       ? FW_PASS
			       : FW_CTR_ICMP_BAD;
	case FW_ST_UDP_REPLIED:
	case FW_ST_OTHER:
		return FW_PASS;
	default:
		fw_seg_read(&s, mbx_pkt_l4(m), p->l4_len, p->dir);
		return fw_tcp_track(cn, &s, fw->window_check);
	}
}

static void
fw_process(struct mbx_nf_ctx *c, struct rte_mbuf **pkts, uint16_t n)
{
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		struct mbx_pkt *p = mbx_pkt(m);
		struct mbx_flow *f = p->flow;
		struct fw_conn *cn = mbx_nf_state(c, f);
		enum fw_counter why;

		if (unlikely(icmp_is_error(p)))
			why = icmp_error(c, m, p, cn);
		else if (likely(cn->state != FW_ST_NONE))
			why = fw_follow(c, m, p, cn);
		else
			why = fw_open(c, m, p, cn);
		if (unlikely(why != FW_PASS))
			mbx_nf_drop(c, m, why);
		/* expire by the connection's state, whatever the framework made of the packet */
		if (cn->state != FW_ST_NONE && f->tmo_class != fw_state_class[cn->state])
			mbx_flow_set_class(c->table, f, fw_state_class[cn->state], c->now);
	}
}

static void
fw_flow_free(struct mbx_nf_ctx *c, struct mbx_flow *f)
{
	struct fw_conn *cn = mbx_nf_state(c, f);

	if (cn->host == 0)
		return;
	fw_host_put(c->priv, cn->host - 1);
	cn->host = 0;
	c->counters[FW_CTR_ENDED]++;
}

static const struct mbx_nf_ops fw_ops = {
	.name = "fw",
	.usage = FW_USAGE "  stateful firewall; default=deny, conn_limit=0 (none), "
			  "window_check=on, pickup=off",
	.flow_state_size = sizeof(struct fw_conn),
	.state_version = 1,
	.state_types = {"mbx.v1.FwConnState", "mbx.v1.FwHostConns", "mbx.v1.FwRules"},
	/* a destination without the rules gets them with the first flows it takes */
	.move_scopes =
		1u << MBX_SCOPE_PER_FLOW | 1u << MBX_SCOPE_MULTI_FLOW | 1u << MBX_SCOPE_ALL_FLOWS,
	.counter_names = fw_counter_names,
	.nb_counters = FW_CTR_MAX,
	.create = fw_create,
	.destroy = fw_destroy,
	.worker_init = fw_worker_init,
	.worker_fini = fw_worker_fini,
	.owner = fw_owner,
	.process = fw_process,
	.flow_free = fw_flow_free,
	.flow_get = fw_flow_get,
	.flow_put = fw_flow_put,
	.multi_get = fw_multi_get,
	.multi_put = fw_multi_put,
	.multi_del = fw_multi_del,
	.all_get = fw_all_get,
	.all_put = fw_all_put,
};

MBX_NF_REGISTER(fw_ops);
