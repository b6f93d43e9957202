/** Memory dedup with KSM (madvise MADV_MERGEABLE, prctl PR_SET_MEMORY_MERGE): arrives with its issue. */
package org.dedupsnapshotter.ksm;
