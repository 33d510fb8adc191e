/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fw NF's state codecs, version 1 (proto/mbx/v1/fw.proto): per-flow
 * FwConnState (the connection's state and TCP windows), multi-flow
 * FwHostConns (a source host's connection count, keyed by the host as src),
 * all-flows FwRules (the rule set and the default action).
 *
 * An imported connection counts for its source host, so counts and
 * conn_limit follow imports without a multi-flow put; the multi-flow put only
 * checks its message. A rule set is put as a whole: the same rules are a
 * no-op; different rules replace the instance's only while it tracks no
 * connection (their verdicts came from the old rules), else -EBUSY.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_errno.h>

#include "fw.h"
#include "mbx/v1/fw.pb-c.h"
#include "mbx_pbconv.h"

/* FwState values by state: a state missing from the .proto does not compile. */
static const int state_pb[FW_ST_MAX] = {
#define X(e, s, c) MBX__V1__FW_STATE__FW_STATE_##e,
	FW_STATES(X)
#undef X
};

static int
state_from_pb(int v)
{
	for (int s = 0; s < FW_ST_MAX; s++)
		if (state_pb[s] == v)
			return s;
	return -1;
}

/* Can a flow of key @k be in state @s? */
static bool
state_fits(int s, const struct mbx_flow_key *k)
{
	bool icmp = (k->proto == IPPROTO_ICMP && k->family == MBX_FAMILY_V4) ||
		    (k->proto == IPPROTO_ICMPV6 && k->family == MBX_FAMILY_V6);

	if (fw_state_is_tcp((uint8_t)s))
		return k->proto == IPPROTO_TCP;
	switch (s) {
	case FW_ST_UDP_UNREPLIED:
	case FW_ST_UDP_REPLIED:
		return k->proto == IPPROTO_UDP;
	case FW_ST_ICMP_ECHO:
		return icmp;
	case FW_ST_OTHER:
		return k->proto != IPPROTO_TCP && k->proto != IPPROTO_UDP;
	default:
		return false;
	}
}

static void
peer_to_pb(const struct fw_peer *p, Mbx__V1__FwTcpPeer *m)
{
	mbx__v1__fw_tcp_peer__init(m);
	m->end = p->end;
	m->max_end = p->maxend;
	m->max_win = p->maxwin;
	m->wscale = p->wscale;
	m->wscale_ok = (p->flags & FW_PEER_WSCALE) != 0;
	m->fin = (p->flags & FW_PEER_FIN) != 0;
	m->fin_acked = (p->flags & FW_PEER_FIN_ACKED) != 0;
}

static int
peer_from_pb(const Mbx__V1__FwTcpPeer *m, struct fw_peer *p)
{
	if (m == NULL || m->wscale > 14 || (m->fin_acked && !m->fin))
		return -EINVAL;
	p->end = m->end;
	p->maxend = m->max_end;
	p->maxwin = m->max_win;
	p->wscale = (uint8_t)m->wscale;
	p->flags = (m->wscale_ok ? FW_PEER_WSCALE : 0) | (m->fin ? FW_PEER_FIN : 0) |
		   (m->fin_acked ? FW_PEER_FIN_ACKED : 0);
	return 0;
}

int
fw_flow_get(struct mbx_nf_ctx *c, struct mbx_flow *f, uint8_t *buf, size_t cap)
{
	const struct fw_conn *cn = mbx_nf_state(c, f);
	Mbx__V1__FwConnState m = MBX__V1__FW_CONN_STATE__INIT;
	Mbx__V1__FwTcpPeer orig, reply;

	if (cn->state == FW_ST_NONE)
		return 0;
	m.state = (Mbx__V1__FwState)state_pb[cn->state];
	if (fw_state_is_tcp(cn->state)) {
		peer_to_pb(&cn->peer[MBX_DIR_ORIG], &orig);
		peer_to_pb(&cn->peer[MBX_DIR_REPLY], &reply);
		m.orig = &orig;
		m.reply = &reply;
		m.liberal = (cn->flags & FW_CONN_LIBERAL) != 0;
	}
	if (mbx__v1__fw_conn_state__get_packed_size(&m) > cap)
		return -ENOBUFS;
	return (int)mbx__v1__fw_conn_state__pack(&m, buf);
}

int
fw_flow_put(struct mbx_nf_ctx *c, struct mbx_flow *f, const uint8_t *buf, size_t len)
{
	const struct mbx_flow_key *k = &mbx_flow_keys(c->table, f)[0];
	struct fw_conn *cn = mbx_nf_state(c, f), in;
	Mbx__V1__FwConnState *m = mbx__v1__fw_conn_state__unpack(NULL, len, buf);
	int s, slot, rc = -EINVAL;

	if (m == NULL)
		return -EBADMSG;
	memset(&in, 0, sizeof(in));
	s = state_from_pb(m->state);
	if (s <= FW_ST_NONE || !state_fits(s, k))
		goto out;
	if (fw_state_is_tcp((uint8_t)s)) {
		if (peer_from_pb(m->orig, &in.peer[MBX_DIR_ORIG]) < 0 ||
		    peer_from_pb(m->reply, &in.peer[MBX_DIR_REPLY]) < 0)
			goto out;
		in.flags = m->liberal ? FW_CONN_LIBERAL : 0;
	} else if (m->orig != NULL || m->reply != NULL || m->liberal) {
		goto out;
	}
	rc = -EEXIST;
	if (cn->state != FW_ST_NONE) {
		mbx_nf_refuse(c, rc, "the connection is tracked here already");
		goto out;
	}
	/* the connection counts for its source host, over conn_limit or not */
	slot = fw_host_get(c->priv, k->family, &k->src);
	rc = -ENOSPC;
	if (slot < 0) {
		mbx_nf_refuse(c, rc, "the firewall's host table is full");
		goto out;
	}
	fw_host_hold(c->priv, (uint32_t)slot);
	in.state = (uint8_t)s;
	in.host = (uint32_t)slot + 1;
	*cn = in;
	mbx_flow_set_class(c->table, f, fw_state_class[s], rte_rdtsc());
	rc = 0;
out:
	mbx__v1__fw_conn_state__free_unpacked(m, NULL);
	return rc;
}

/* A host as a multi-flow key: the host is the source. */
static struct mbx_flow_key
host_key(const struct fw_host *h)
{
	struct mbx_flow_key k;

	memset(&k, 0, sizeof(k));
	k.family = h->family;
	k.src = h->addr;
	return k;
}

struct multi_get {
	struct mbx_filter flt; /* the request's family and source prefix */
	mbx_state_emit emit;
	void *arg;
};

static int
emit_host(const struct fw_host *h, void *arg)
{
	struct multi_get *g = arg;
	struct mbx_flow_key k = host_key(h);
	Mbx__V1__FwHostConns m = MBX__V1__FW_HOST_CONNS__INIT;
	uint8_t buf[64];

	if (!mbx_filter_match(&g->flt, &k))
		return 0;
	m.host.len = mbx_pb_addr_len(h->family);
	m.host.data = (uint8_t *)(uintptr_t)&h->addr;
	m.conns = h->conns;
	return g->emit(g->arg, &k, NULL, buf, mbx__v1__fw_host_conns__pack(&m, buf));
}

int
fw_multi_get(struct mbx_nf_ctx *c, const struct mbx_filter *flt, mbx_state_emit emit, void *arg)
{
	struct multi_get g = {.emit = emit, .arg = arg};

	/* only the family and the source prefix of a filter apply to hosts */
	mbx_filter_init(&g.flt);
	g.flt.family = flt->family;
	g.flt.src = flt->src;
	return fw_hosts_foreach(c->priv, emit_host, &g);
}

int
fw_multi_put(struct mbx_nf_ctx *c, const struct mbx_flow_key *key, const uint8_t *buf, size_t len)
{
	Mbx__V1__FwHostConns *m = mbx__v1__fw_host_conns__unpack(NULL, len, buf);
	int rc = -EINVAL;

	(void)c;
	if (m == NULL)
		return -EBADMSG;
	/* nothing to install: the imported connections count for their hosts */
	if (m->host.len == mbx_pb_addr_len(key->family) && key->family != MBX_FAMILY_ANY &&
	    memcmp(m->host.data, &key->src, m->host.len) == 0)
		rc = 0;
	mbx__v1__fw_host_conns__free_unpacked(m, NULL);
	return rc;
}

int
fw_multi_del(struct mbx_nf_ctx *c, const struct mbx_filter *flt)
{
	(void)c;
	(void)flt;
	return 0; /* a host lives exactly as long as its connections */
}

int
fw_all_get(void *nf, mbx_state_emit emit, void *arg)
{
	const struct fw_rules *rs = ((const struct fw *)nf)->rules;
	Mbx__V1__FwRules m = MBX__V1__FW_RULES__INIT;
	Mbx__V1__FwRule *rules = calloc(rs->n + 1, sizeof(*rules));
	Mbx__V1__FwRule **ptrs = calloc(rs->n + 1, sizeof(*ptrs));
	struct mbx_pb_filter *pf = calloc(rs->n + 1, sizeof(*pf));
	uint8_t *buf = NULL;
	size_t len;
	int rc = -ENOMEM;

	if (rules == NULL || ptrs == NULL || pf == NULL)
		goto out;
	for (uint32_t i = 0; i < rs->n; i++) {
		mbx__v1__fw_rule__init(&rules[i]);
		rules[i].action = rs->rule[i].allow ? MBX__V1__FW_ACTION__FW_ACTION_ALLOW
						    : MBX__V1__FW_ACTION__FW_ACTION_DENY;
		rules[i].match = mbx_filter_to_pb(&rs->rule[i].match, &pf[i]);
		ptrs[i] = &rules[i];
	}
	m.n_rules = rs->n;
	m.rules = ptrs;
	m.default_action = rs->default_allow ? MBX__V1__FW_ACTION__FW_ACTION_ALLOW
					     : MBX__V1__FW_ACTION__FW_ACTION_DENY;
	m.version = rs->version;
	len = mbx__v1__fw_rules__get_packed_size(&m);
	buf = malloc(len + 1);
	if (buf == NULL)
		goto out;
	rc = emit(arg, NULL, NULL, buf, mbx__v1__fw_rules__pack(&m, buf));
out:
	free(buf);
	free(pf);
	free(ptrs);
	free(rules);
	return rc;
}

static bool
action_valid(Mbx__V1__FwAction a)
{
	return a == MBX__V1__FW_ACTION__FW_ACTION_ALLOW || a == MBX__V1__FW_ACTION__FW_ACTION_DENY;
}

/* Does @rs hold exactly these rules and default? */
static bool
same_rules(const struct fw_rules *rs, const struct fw_rule *r, uint32_t n, bool default_allow)
{
	if (rs->n != n || rs->default_allow != default_allow)
		return false;
	for (uint32_t i = 0; i < n; i++)
		if (!fw_rule_equal(&rs->rule[i], &r[i]))
			return false;
	return true;
}

int
fw_all_put(void *nf, const uint8_t *buf, size_t len, bool commit)
{
	struct fw *fw = nf;
	Mbx__V1__FwRules *m = mbx__v1__fw_rules__unpack(NULL, len, buf);
	struct fw_rule *rules = NULL;
	struct fw_rules *rs;
	uint64_t conns;
	bool allow;
	int rc = -EINVAL;

	if (m == NULL)
		return -EBADMSG;
	if (m->n_rules > FW_RULES_MAX || !action_valid(m->default_action))
		goto out;
	rc = -ENOMEM;
	rules = calloc(m->n_rules + 1, sizeof(*rules));
	if (rules == NULL)
		goto out;
	rc = -EINVAL;
	for (size_t i = 0; i < m->n_rules; i++) {
		if (!action_valid(m->rules[i]->action) ||
		    mbx_filter_from_pb(m->rules[i]->match, &rules[i].match) < 0)
			goto out;
		rules[i].allow = m->rules[i]->action == MBX__V1__FW_ACTION__FW_ACTION_ALLOW;
		fw_rule_canon(&rules[i]);
	}
	allow = m->default_action == MBX__V1__FW_ACTION__FW_ACTION_ALLOW;
	rc = 0;
	if (same_rules(fw->rules, rules, (uint32_t)m->n_rules, allow))
		goto out; /* the same rule set: nothing to do */
	/* the connections were admitted by the rules in place: keep them together */
	conns = fw_conns(fw);
	if (conns > 0) {
		if (!commit)
			FW_LOG(WARNING,
			       "refusing another rule set (%zu rules, default %s) while %" PRIu64
			       " connections admitted by this one (version %08x, %u rules) "
			       "are tracked",
			       m->n_rules, allow ? "allow" : "deny", conns, fw->rules->version,
			       fw->rules->n);
		rc = -EBUSY;
		goto out;
	}
	if (!commit)
		goto out;
	rs = fw_rules_create(rules, (uint32_t)m->n_rules, allow, FW_ACL_MIN, fw->socket);
	if (rs == NULL) {
		rc = -rte_errno;
		goto out;
	}
	fw_rules_free(fw->rules);
	fw->rules = rs;
	FW_LOG(NOTICE, "rule set replaced: %u rules, default %s, version %08x", rs->n,
	       allow ? "allow" : "deny", rs->version);
out:
	free(rules);
	mbx__v1__fw_rules__free_unpacked(m, NULL);
	return rc;
}
