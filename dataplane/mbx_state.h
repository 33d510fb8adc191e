/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * State export and import: the framework's half of get/put/delete.
 *
 * Theory of operation: the control plane asks each worker, through its
 * request ring, for one slice at a time: a walk of at most a few thousand
 * table slots that encodes the matching flows' state into a buffer of
 * records (and, for a move, deletes them in the same step), or a batch of
 * records to install. A record carries the flow's keys, the NF's index in
 * the chain and the NF's own encoded state; the southbound turns records into
 * protobuf StateChunks and back. Because a slice runs between two bursts, a
 * flow's export (and deletion) is atomic with respect to its packets.
 *
 * Imports are all or nothing per call: every slice logs what it created, and
 * mbx_state_undo() removes it again if a later slice of the call fails.
 * Multi-flow state goes through the NFs' multi_* hooks on each worker;
 * all-flows state through all_get/all_put while every worker is parked.
 *
 * Request functions (mbx_ctrl_fn) run on the worker; the rest on the main lcore.
 */
#ifndef MBX_STATE_H
#define MBX_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mbx_flow.h"
#include "mbx_worker.h"

/** One exported or imported piece of state, 8-byte aligned in a buffer. */
struct mbx_state_rec {
	uint32_t len;	   /**< bytes of the whole record, padding included */
	uint16_t nf;	   /**< index in the chain */
	uint8_t scope;	   /**< enum mbx_scope */
	uint8_t has_reply; /**< reply_key is set */
	struct mbx_flow_key key;
	struct mbx_flow_key reply_key;
	uint32_t state_len;
	uint8_t side; /**< per-flow: enum mbx_side of the flow's first packet */
	uint8_t pad[3];
	uint8_t state[];
};

/** The record following @p r. */
static inline struct mbx_state_rec *
mbx_state_rec_next(const struct mbx_state_rec *r)
{
	return (struct mbx_state_rec *)((const uint8_t *)r + r->len);
}

/** Bytes a record with @p state_len bytes of state takes. */
static inline size_t
mbx_state_rec_size(size_t state_len)
{
	return (sizeof(struct mbx_state_rec) + state_len + 7) & ~(size_t)7;
}

/** A per-flow export slice (mbx_state_export_slice). */
struct mbx_export {
	/* in */
	struct mbx_filter filter;
	int nf;		    /**< chain index, or -1: every NF with state */
	bool del;	    /**< delete each exported flow */
	uint32_t max_slots; /**< table slots to cover in this slice (empty ones are cheap) */
	uint32_t max_flows; /**< flows to export in this slice; 0: no limit */
	uint8_t *buf;	    /**< records out; NULL: only delete (with del) */
	size_t cap;
	/* in/out */
	uint32_t cursor; /**< table position; UINT32_MAX when the walk is done */
	/* out */
	size_t used;	/**< bytes of records in buf */
	uint32_t flows; /**< flows exported (or deleted) in this slice */
};

/** Request function: export (and maybe delete) the next slice of matching flows. */
int mbx_state_export_slice(struct mbx_worker *w, void *arg);

/** What an import slice created, so that it can be undone. */
struct mbx_undo {
	uint32_t index;	 /**< flow slot */
	uint16_t nf;	 /**< NF whose state was put */
	uint8_t created; /**< the import created the flow entry */
	uint8_t scope;
	struct mbx_flow_key key; /**< the flow (or multi-flow key) */
};

/** A per-flow or multi-flow import slice (mbx_state_import). */
struct mbx_import {
	/* in */
	const uint8_t *recs; /**< records, all for this worker */
	size_t len;
	struct mbx_undo *undo; /**< room for one entry per record */
	/* out */
	uint32_t done;		     /**< records installed (and undo entries) */
	struct mbx_flow_key bad_key; /**< the record that failed */
	uint16_t bad_nf;
	char why[MBX_NF_WHY_LEN]; /**< why, in words; empty: the errno says it */
};

/**
 * Request function: install records; on an error undo this slice's own
 * records and return it (bad_key/bad_nf say which record).
 */
int mbx_state_import(struct mbx_worker *w, void *arg);

/** Undo of one slice, for the worker that ran it. */
struct mbx_undo_req {
	const struct mbx_undo *undo;
	uint32_t n;
};

/** Request function: remove what an import logged in its undo entries. */
int mbx_state_undo(struct mbx_worker *w, void *arg);

/** A multi-flow export (mbx_state_multi_get): every entry of one worker. */
struct mbx_multi_get {
	struct mbx_filter filter;
	int nf; /**< chain index, or -1: every NF */
	uint8_t *buf;
	size_t cap;
	size_t used;
	uint32_t entries;
};

/** Request function: a worker's multi-flow state; -ENOBUFS if buf is too small. */
int mbx_state_multi_get(struct mbx_worker *w, void *arg);

/** Multi-flow delete (mbx_state_multi_del). */
struct mbx_multi_del {
	struct mbx_filter filter;
	int nf;
	uint32_t deleted;
};

/** Request function: delete a worker's unused multi-flow state matching filter. */
int mbx_state_multi_del(struct mbx_worker *w, void *arg);

/**
 * The worker that owns a flow (or a multi-flow key) written as @p key: the
 * owner of its first packet, which came from @p side (enum mbx_side;
 * MBX_SIDE_INSIDE for multi-flow keys).
 */
uint16_t mbx_state_owner(const struct mbx_dp *dp, const struct mbx_flow_key *key, uint8_t side);

/**
 * All-flows export, main lcore, workers running: parks them, appends one
 * record per NF (or only @p nf) to @p buf.
 * @return bytes used, or -errno (-ENOBUFS: buf too small).
 */
long mbx_state_all_get(struct mbx_dp *dp, int nf, uint8_t *buf, size_t cap);

/**
 * All-flows import, main lcore, workers running: parks them and installs
 * each record with its NF's all_put.
 * @return 0, or -errno; @p bad_nf says which NF refused.
 */
int mbx_state_all_put(struct mbx_dp *dp, const uint8_t *recs, size_t len, uint16_t *bad_nf);

/**
 * Turns all-flows records (@p len bytes at @p recs) into new ones at
 * @p *out (the callee's buffer, valid until mbx_state_all_update() returns).
 * @return their length, or -errno.
 */
typedef long (*mbx_all_edit_fn)(const uint8_t *recs, size_t len, const uint8_t **out, void *arg);

/**
 * Read, change and write NF @p nf's all-flows state with the workers
 * parked once (mbx_state_all_get(), @p edit, mbx_state_all_put()): no
 * packet sees a state between the two, and a change costs one stop.
 * @return 0, or -errno; @p bad_nf says which NF refused.
 */
int mbx_state_all_update(struct mbx_dp *dp, int nf, uint8_t *buf, size_t cap, mbx_all_edit_fn edit,
			 void *arg, uint16_t *bad_nf);

#endif /* MBX_STATE_H */
