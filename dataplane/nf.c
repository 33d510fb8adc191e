/* SPDX-License-Identifier: BSD-3-Clause */
/* NF registry and the chain: see mbx_nf.h and mbx_worker.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_errno.h>

#include "mbx_ctrl_plane.h"
#include "mbx_log.h"
#include "mbx_nf.h"
#include "mbx_worker.h"

#define MBX_NF_MAX 32

static const struct mbx_nf_ops *registry[MBX_NF_MAX];
static unsigned int nb_registered;

int
mbx_nf_refuse(struct mbx_nf_ctx *c, int rc, const char *fmt, ...)
{
	va_list ap;

	if (c->why == NULL)
		return rc;
	va_start(ap, fmt);
	vsnprintf(c->why, MBX_NF_WHY_LEN, fmt, ap);
	va_end(ap);
	return rc;
}

void
mbx_nf_register(const struct mbx_nf_ops *ops)
{
	/* Constructors run before main(): a clash is a build error, say so loudly. */
	RTE_VERIFY(nb_registered < MBX_NF_MAX && ops->name != NULL && ops->process != NULL);
	RTE_VERIFY(mbx_nf_find(ops->name) == NULL);
	registry[nb_registered++] = ops;
}

const struct mbx_nf_ops *
mbx_nf_find(const char *name)
{
	for (unsigned int i = 0; i < nb_registered; i++)
		if (strcmp(registry[i]->name, name) == 0)
			return registry[i];
	return NULL;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp((*(const struct mbx_nf_ops *const *)a)->name,
		      (*(const struct mbx_nf_ops *const *)b)->name);
}

void
mbx_nf_foreach(void (*cb)(const struct mbx_nf_ops *ops, void *arg), void *arg)
{
	const struct mbx_nf_ops *sorted[MBX_NF_MAX];

	memcpy(sorted, registry, sizeof(registry[0]) * nb_registered);
	qsort(sorted, nb_registered, sizeof(sorted[0]), by_name);
	for (unsigned int i = 0; i < nb_registered; i++)
		cb(sorted[i], arg);
}

int
mbx_chain_find(const struct mbx_chain *c, const char *name)
{
	for (int i = 0; i < c->n; i++)
		if (strcmp(c->nf[i].ops->name, name) == 0)
			return i;
	return -1;
}

int
mbx_chain_add(struct mbx_chain *c, const char *spec)
{
	const char *comma = strchr(spec, ',');
	size_t nlen = comma ? (size_t)(comma - spec) : strlen(spec);
	const struct mbx_nf_ops *ops;
	char name[64];

	if (nlen == 0 || nlen >= sizeof(name))
		return -ENOENT;
	memcpy(name, spec, nlen);
	name[nlen] = '\0';
	ops = mbx_nf_find(name);
	if (ops == NULL)
		return -ENOENT;
	if (mbx_chain_find(c, name) >= 0)
		return -EEXIST;
	if (c->n == MBX_CHAIN_MAX)
		return -ENOSPC;
	c->nf[c->n].args = strdup(comma ? comma + 1 : "");
	if (c->nf[c->n].args == NULL)
		return -ENOMEM;
	c->nf[c->n].ops = ops;
	c->n++;
	return 0;
}

int
mbx_chain_create(struct mbx_chain *c, const struct mbx_nf_params *base)
{
	c->state_size = 0;
	c->nb_counters = 0;
	for (int i = 0; i < c->n; i++) {
		struct mbx_chain_nf *e = &c->nf[i];
		struct mbx_nf_params p = *base;

		e->state_off = c->state_size;
		e->counter_off = c->nb_counters;
		c->state_size += RTE_ALIGN(e->ops->flow_state_size, 8);
		c->nb_counters += e->ops->nb_counters;
		if (e->ops->create == NULL)
			continue;
		p.args = e->args;
		e->nf = e->ops->create(&p);
		if (e->nf == NULL) {
			int err = rte_errno ? rte_errno : EINVAL;

			MBX_LOG(ERR, main, "--nf %s,%s: %s", e->ops->name, e->args,
				rte_strerror(err));
			return -err;
		}
	}
	return 0;
}

void
mbx_chain_poll(const struct mbx_chain *c)
{
	for (int i = 0; i < c->n; i++)
		if (c->nf[i].ops->ctrl_poll != NULL)
			c->nf[i].ops->ctrl_poll(c->nf[i].nf);
}

void
mbx_chain_destroy(struct mbx_chain *c)
{
	for (int i = c->n - 1; i >= 0; i--) {
		if (c->nf[i].nf != NULL && c->nf[i].ops->destroy != NULL)
			c->nf[i].ops->destroy(c->nf[i].nf);
		free(c->nf[i].args);
	}
	memset(c, 0, sizeof(*c));
}

static const struct mbx_ctrl_plane *ctrl_plane;

void
mbx_ctrl_plane_register(const struct mbx_ctrl_plane *cp)
{
	RTE_VERIFY(ctrl_plane == NULL);
	ctrl_plane = cp;
}

const struct mbx_ctrl_plane *
mbx_ctrl_plane_get(void)
{
	return ctrl_plane;
}
