/**
 * Memory dedup with KSM: FFM bindings for prctl(PR_SET/GET_MEMORY_MERGE) and madvise(MADV_MERGEABLE), control of
 * /sys/kernel/mm/ksm, and node and per-process figures. Containers are made mergeable by bin/dedup-runc
 * (src/main/c), not by the daemon: KSM marks belong to the processes themselves. See docs/ksm.md.
 */
package org.dedupsnapshotter.ksm;
