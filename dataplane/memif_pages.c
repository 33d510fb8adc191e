/* SPDX-License-Identifier: BSD-3-Clause */
/* memif packet memory backed with pages up front: see mbx_memif.h. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "mbx_memif.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

int64_t
mbx_memif_populate(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[PATH_MAX + 128];
	int64_t bytes = 0;
	int err = 0;

	if (f == NULL)
		return -errno;
	while (fgets(line, sizeof(line), f) != NULL) {
		uintptr_t lo, hi;

		if (strstr(line, "/memfd:memif_region") == NULL ||
		    sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &lo, &hi) != 2)
			continue;
		if (madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE) == 0)
			bytes += (int64_t)(hi - lo);
		else if (err == 0)
			err = errno;
	}
	fclose(f);
	return err != 0 ? -err : bytes;
}
