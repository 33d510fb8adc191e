/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memif packet memory backed with pages up front.
 *
 * A memif region is a memfd that both ends of a link map when it comes up.
 * Without hugepages its pages come one page fault at a time as packets first
 * touch them: two packet buffers a page, some 2000 faults before a 4096-slot
 * ring runs warm, each of them slow in a VM. A link that has carried nothing
 * yet, such as a move's destination's, would make its first flows wait
 * milliseconds, and a receiver reading it for the first time falls behind.
 */
#ifndef MBX_MEMIF_H
#define MBX_MEMIF_H

#include <stdint.h>

/**
 * Back every memif region this process maps with pages now
 * (MADV_POPULATE_WRITE: the content, which the peer may be writing, is left
 * alone). Cheap for regions backed already; call it when a link comes up.
 * @return bytes backed, or -errno of the first region that could not be.
 */
int64_t mbx_memif_populate(void);

#endif /* MBX_MEMIF_H */
