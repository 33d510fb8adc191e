/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fw NF's rule set: ordered 5-tuple rules with allow or deny, and a
 * default policy. The first rule whose filter matches a connection's first
 * packet (its key as seen on the wire) decides; no match: the default.
 *
 * Theory of operation: a rule is an mbx_filter (prefixes, port ranges,
 * protocol, family) and an action. A rule set is immutable once built: up
 * to FW_ACL_MIN - 1 rules are scanned in order with mbx_filter_match(); from
 * FW_ACL_MIN rules on, one rte_acl context per address family (IPv4, IPv6)
 * classifies the flow key itself, priority = order, so the answer is the
 * same. (Measured on this project's machines: the scan costs ~10 ns per rule,
 * one rte_acl lookup 55-125 ns whatever the count; 1000 rules: 17 us against
 * 58 ns.) Rules come from a rules file (fw_rules_load(), the mbxctl filter
 * syntax, text to mbx.v1.Filter to mbx_filter) or as all-flows state.
 *
 * Built and freed on the main lcore (at start-up, or by all_put with the
 * workers parked); matched on workers, read-only.
 */
#ifndef FW_RULES_H
#define FW_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include "mbx_flow.h"

/** Rule count from which rte_acl replaces the linear scan (the crossover is 6-8). */
#define FW_ACL_MIN 8
/** Most rules a set may hold. */
#define FW_RULES_MAX 65536

/** One rule. */
struct fw_rule {
	struct mbx_filter match; /**< address bits past a prefix are zero */
	bool allow;
};

struct rte_acl_ctx;

/** A rule set. */
struct fw_rules {
	uint32_t n;
	bool default_allow;
	uint32_t version;	    /**< CRC-32C of the rules and the default, in order */
	bool acl;		    /**< matched by rte_acl (else by a linear scan) */
	struct rte_acl_ctx *ctx[2]; /**< IPv4, IPv6; NULL: no rule of that family */
	struct fw_rule rule[];
};

/**
 * Build a rule set.
 * @param acl_min use rte_acl from this many rules on (FW_ACL_MIN normally).
 * @return the set, or NULL with rte_errno set.
 */
struct fw_rules *fw_rules_create(const struct fw_rule *rules, uint32_t n, bool default_allow,
				 uint32_t acl_min, int socket);

/** Free @p rs; NULL is allowed. */
void fw_rules_free(struct fw_rules *rs);

/**
 * The first rule that matches @p k.
 * @return its index, or -1 (the default applies).
 */
int fw_rules_match(const struct fw_rules *rs, const struct mbx_flow_key *k);

/** Does @p rs allow a connection whose first packet has key @p k? */
static inline bool
fw_rules_allow(const struct fw_rules *rs, const struct mbx_flow_key *k)
{
	int i = fw_rules_match(rs, k);

	return i < 0 ? rs->default_allow : rs->rule[i].allow;
}

/** Clear the address bits of @p r past its prefixes, so equal rules compare equal. */
void fw_rule_canon(struct fw_rule *r);

/** Do @p a and @p b match the same flows with the same action? */
bool fw_rule_equal(const struct fw_rule *a, const struct fw_rule *b);

/**
 * Parse one line of a rules file: "allow|deny [FILTER]" (mbxctl's filter
 * syntax; no filter matches everything), "#" starting a comment.
 * @return 1 (a rule in @p r), 0 (blank or comment), or -EINVAL with the
 *   reason in @p err.
 */
int fw_rule_parse(const char *line, struct fw_rule *r, char *err, size_t errlen);

/**
 * Read a rules file.
 * @param rules out: the rules, malloc()ed (free() them).
 * @return the number of rules, or -errno (the reason logged, with the line).
 */
int fw_rules_load(const char *path, struct fw_rule **rules);

#endif /* FW_RULES_H */
