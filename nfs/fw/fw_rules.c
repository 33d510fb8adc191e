/* SPDX-License-Identifier: BSD-3-Clause */
/* The rule set: see fw_rules.h. */
#include <ctype.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_acl.h>
#include <rte_errno.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>

#include "fw.h"
#include "fw_rules.h"
#include "mbx_filter_str.h"
#include "mbx_pbconv.h"

/*
 * rte_acl reads its input from the flow key itself (network byte order, as
 * rte_acl wants): the protocol byte first (rte_acl needs a 1-byte first
 * field), then the addresses as 32-bit words, then both ports in one 4-byte
 * input word. An IPv4 key has its addresses in the first word of each field.
 */
#define ACL_FIELDS_V6 11 /* proto, 4 + 4 address words, sport, dport */
RTE_ACL_RULE_DEF(fw_acl_rule, ACL_FIELDS_V6);

static _Atomic unsigned int acl_seq;

static unsigned int
acl_config(struct rte_acl_config *cfg, bool v6)
{
	unsigned int words = v6 ? 4 : 1, n = 0;

	memset(cfg, 0, sizeof(*cfg));
	cfg->num_categories = 1;
	cfg->defs[n] = (struct rte_acl_field_def){
		.type = RTE_ACL_FIELD_TYPE_BITMASK,
		.size = 1,
		.offset = offsetof(struct mbx_flow_key, proto),
	};
	n++;
	for (unsigned int side = 0; side < 2; side++) {
		size_t base = side == 0 ? offsetof(struct mbx_flow_key, src)
					: offsetof(struct mbx_flow_key, dst);

		for (unsigned int w = 0; w < words; w++, n++)
			cfg->defs[n] = (struct rte_acl_field_def){
				.type = RTE_ACL_FIELD_TYPE_MASK,
				.size = 4,
				.field_index = n,
				.input_index = n,
				.offset = base + 4 * w,
			};
	}
	/* both ports in one input word */
	cfg->defs[n] = (struct rte_acl_field_def){
		.type = RTE_ACL_FIELD_TYPE_RANGE,
		.size = 2,
		.field_index = n,
		.input_index = n,
		.offset = offsetof(struct mbx_flow_key, sport),
	};
	cfg->defs[n + 1] = (struct rte_acl_field_def){
		.type = RTE_ACL_FIELD_TYPE_RANGE,
		.size = 2,
		.field_index = n + 1,
		.input_index = n,
		.offset = offsetof(struct mbx_flow_key, dport),
	};
	cfg->num_fields = n + 2;
	return cfg->num_fields;
}

/* Rule @i of @n as an rte_acl rule (values in host byte order, as rte_acl wants). */
static void
acl_rule(struct fw_acl_rule *ar, const struct fw_rule *r, uint32_t i, uint32_t n, bool v6)
{
	const struct mbx_prefix *pfx[2] = {&r->match.src, &r->match.dst};
	unsigned int words = v6 ? 4 : 1, f = 0;

	memset(ar, 0, sizeof(*ar));
	ar->data.category_mask = 1;
	ar->data.priority = (int32_t)(n - i); /* the first rule wins */
	ar->data.userdata = i + 1;	      /* 0 is "no match" */
	ar->field[f].value.u8 = r->match.proto;
	ar->field[f++].mask_range.u8 = r->match.proto != 0 ? 0xff : 0;
	for (unsigned int side = 0; side < 2; side++) {
		for (unsigned int w = 0; w < words; w++, f++) {
			int bits = RTE_MIN(RTE_MAX((int)pfx[side]->len - 32 * (int)w, 0), 32);

			ar->field[f].value.u32 =
				rte_be_to_cpu_32(((const rte_be32_t *)&pfx[side]->addr)[w]);
			ar->field[f].mask_range.u32 = (uint32_t)bits;
		}
	}
	ar->field[f].value.u16 = r->match.sport.lo;
	ar->field[f++].mask_range.u16 = r->match.sport.hi;
	ar->field[f].value.u16 = r->match.dport.lo;
	ar->field[f].mask_range.u16 = r->match.dport.hi;
}

/* The rte_acl context of family @v6 for the rules that can match it; NULL with rte_errno. */
static struct rte_acl_ctx *
acl_build(const struct fw_rules *rs, bool v6, int socket)
{
	uint8_t other = v6 ? MBX_FAMILY_V4 : MBX_FAMILY_V6;
	struct rte_acl_config cfg;
	unsigned int nf = acl_config(&cfg, v6);
	char name[RTE_ACL_NAMESIZE];
	struct rte_acl_param ap = {
		.name = name,
		.socket_id = socket,
		.rule_size = RTE_ACL_RULE_SZ(nf),
		.max_rule_num = rs->n,
	};
	struct rte_acl_ctx *ctx;
	struct fw_acl_rule ar;
	uint32_t added = 0;
	int rc = 0;

	snprintf(name, sizeof(name), "fw%d_%u", v6 ? 6 : 4, atomic_fetch_add(&acl_seq, 1));
	ctx = rte_acl_create(&ap);
	if (ctx == NULL)
		return NULL;
	for (uint32_t i = 0; i < rs->n && rc == 0; i++) {
		if (rs->rule[i].match.family == other)
			continue;
		acl_rule(&ar, &rs->rule[i], i, rs->n, v6);
		rc = rte_acl_add_rules(ctx, (const struct rte_acl_rule *)&ar, 1);
		added++;
	}
	if (rc == 0 && added == 0)
		rc = -ENOENT; /* nothing to build: no rule matches this family */
	if (rc == 0)
		rc = rte_acl_build(ctx, &cfg);
	if (rc < 0) {
		rte_acl_free(ctx);
		rte_errno = -rc;
		return NULL;
	}
	return ctx;
}

static uint32_t
rule_crc(const struct fw_rule *r, uint32_t crc)
{
	const struct mbx_filter *f = &r->match;
	const uint8_t b[5] = {f->family, f->proto, f->src.len, f->dst.len, r->allow};
	const uint16_t ports[4] = {f->sport.lo, f->sport.hi, f->dport.lo, f->dport.hi};

	crc = rte_hash_crc(b, sizeof(b), crc);
	crc = rte_hash_crc(&f->src.addr, sizeof(f->src.addr), crc);
	crc = rte_hash_crc(&f->dst.addr, sizeof(f->dst.addr), crc);
	return rte_hash_crc(ports, sizeof(ports), crc);
}

struct fw_rules *
fw_rules_create(const struct fw_rule *rules, uint32_t n, bool default_allow, uint32_t acl_min,
		int socket)
{
	struct fw_rules *rs;
	uint32_t crc = 0xffffffff;

	if (n > FW_RULES_MAX) {
		rte_errno = E2BIG;
		return NULL;
	}
	rs = rte_zmalloc_socket("fw_rules", sizeof(*rs) + n * sizeof(rs->rule[0]),
				RTE_CACHE_LINE_SIZE, socket);
	if (rs == NULL) {
		rte_errno = ENOMEM;
		return NULL;
	}
	rs->n = n;
	rs->default_allow = default_allow;
	for (uint32_t i = 0; i < n; i++) {
		rs->rule[i] = rules[i];
		fw_rule_canon(&rs->rule[i]);
		crc = rule_crc(&rs->rule[i], crc);
	}
	rs->version = rte_hash_crc_1byte(default_allow, crc) ^ 0xffffffff;
	rs->acl = n >= acl_min;
	for (int v6 = 0; rs->acl && v6 < 2; v6++) {
		rs->ctx[v6] = acl_build(rs, v6, socket);
		if (rs->ctx[v6] == NULL && rte_errno != ENOENT) {
			fw_rules_free(rs);
			return NULL;
		}
	}
	return rs;
}

void
fw_rules_free(struct fw_rules *rs)
{
	if (rs == NULL)
		return;
	rte_acl_free(rs->ctx[0]);
	rte_acl_free(rs->ctx[1]);
	rte_free(rs);
}

int
fw_rules_match(const struct fw_rules *rs, const struct mbx_flow_key *k)
{
	if (rs->acl) {
		const struct rte_acl_ctx *ctx = rs->ctx[k->family == MBX_FAMILY_V6];
		const uint8_t *data = (const uint8_t *)k;
		uint32_t res = 0;

		if (ctx != NULL)
			rte_acl_classify(ctx, &data, &res, 1, 1);
		return (int)res - 1;
	}
	for (uint32_t i = 0; i < rs->n; i++)
		if (mbx_filter_match(&rs->rule[i].match, k))
			return (int)i;
	return -1;
}

static void
prefix_canon(struct mbx_prefix *p, uint8_t family)
{
	uint8_t *a = (uint8_t *)&p->addr;
	unsigned int bytes = family == MBX_FAMILY_V6 ? 16 : 4;

	for (unsigned int i = 0; i < sizeof(p->addr); i++) {
		if (i >= bytes || p->len <= i * 8)
			a[i] = 0;
		else if (p->len < i * 8 + 8)
			a[i] &= (uint8_t)(0xff << (8 - (p->len - i * 8)));
	}
}

void
fw_rule_canon(struct fw_rule *r)
{
	prefix_canon(&r->match.src, r->match.family);
	prefix_canon(&r->match.dst, r->match.family);
}

bool
fw_rule_equal(const struct fw_rule *a, const struct fw_rule *b)
{
	const struct mbx_filter *x = &a->match, *y = &b->match;

	return a->allow == b->allow && x->family == y->family && x->proto == y->proto &&
	       x->src.len == y->src.len && x->dst.len == y->dst.len &&
	       memcmp(&x->src.addr, &y->src.addr, sizeof(x->src.addr)) == 0 &&
	       memcmp(&x->dst.addr, &y->dst.addr, sizeof(x->dst.addr)) == 0 &&
	       x->sport.lo == y->sport.lo && x->sport.hi == y->sport.hi &&
	       x->dport.lo == y->dport.lo && x->dport.hi == y->dport.hi;
}

int
fw_rule_parse(const char *line, struct fw_rule *r, char *err, size_t errlen)
{
	struct mbx_filter_pb pb;
	char buf[1024], *s, *word, *rest, *end;

	if (strlen(line) >= sizeof(buf)) {
		snprintf(err, errlen, "line longer than %zu characters", sizeof(buf) - 1);
		return -EINVAL;
	}
	strcpy(buf, line);
	s = strchr(buf, '#');
	if (s != NULL)
		*s = '\0';
	for (s = buf; isspace((unsigned char)*s); s++)
		;
	for (end = s + strlen(s); end > s && isspace((unsigned char)end[-1]); end--)
		;
	*end = '\0';
	if (*s == '\0')
		return 0;
	word = s;
	for (rest = s; *rest != '\0' && !isspace((unsigned char)*rest); rest++)
		;
	if (*rest != '\0')
		*rest++ = '\0';
	while (isspace((unsigned char)*rest))
		rest++;
	memset(r, 0, sizeof(*r));
	if (strcmp(word, "allow") == 0) {
		r->allow = true;
	} else if (strcmp(word, "deny") != 0) {
		snprintf(err, errlen, "expected 'allow' or 'deny', got '%s'", word);
		return -EINVAL;
	}
	if (strpbrk(rest, " \t") != NULL) {
		snprintf(err, errlen, "spaces inside the filter '%s' (terms are separated by ',')",
			 rest);
		return -EINVAL;
	}
	if (mbx_filter_str_parse(rest, &pb, err, errlen) < 0)
		return -EINVAL;
	if (mbx_filter_from_pb(&pb.f, &r->match) < 0) {
		snprintf(err, errlen, "bad filter '%s'", rest);
		return -EINVAL;
	}
	fw_rule_canon(r);
	return 1;
}

int
fw_rules_load(const char *path, struct fw_rule **rules)
{
	FILE *f = fopen(path, "r");
	struct fw_rule *out = NULL;
	uint32_t n = 0, cap = 0, lineno = 0;
	size_t len = 0;
	char *line = NULL, err[256];
	int rc = 0;

	if (f == NULL) {
		rc = -errno;
		FW_LOG(ERR, "rules file %s: %s", path, strerror(errno));
		return rc;
	}
	while (rc == 0 && getline(&line, &len, f) >= 0) {
		struct fw_rule r;

		lineno++;
		rc = fw_rule_parse(line, &r, err, sizeof(err));
		if (rc < 0) {
			FW_LOG(ERR, "%s:%u: %s", path, lineno, err);
			break;
		}
		if (rc == 0)
			continue;
		rc = 0;
		if (n == FW_RULES_MAX) {
			FW_LOG(ERR, "%s:%u: more than %u rules", path, lineno, FW_RULES_MAX);
			rc = -E2BIG;
			break;
		}
		if (n == cap) {
			void *b = realloc(out, (cap = cap ? cap * 2 : 64) * sizeof(*out));

			if (b == NULL) {
				rc = -ENOMEM;
				break;
			}
			out = b;
		}
		out[n++] = r;
	}
	free(line);
	fclose(f);
	if (rc < 0) {
		free(out);
		return rc;
	}
	*rules = out;
	return (int)n;
}
