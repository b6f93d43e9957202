package org.dedupsnapshotter.lazy.convert;

import java.util.HashMap;
import java.util.Map;

/**
 * The traced chunks still to be placed in a prefetch region while an image's layers are converted bottom-up: a
 * digest goes into the first layer that holds it — the lowest, which a node prepares first — and is then taken off,
 * so a digest several layers (or several files of one layer) hold is copied once. Digests no layer holds stay here.
 */
public final class PrefetchPlan {
    private final Map<String, Integer> unplaced;
    private final int traced;

    private PrefetchPlan(Map<String, Integer> ranks) {
        this.unplaced = new HashMap<>(ranks);
        this.traced = ranks.size();
    }

    public static PrefetchPlan of(StartupTrace trace) {
        return new PrefetchPlan(trace.ranks());
    }

    /** No trace: every layer is written as without one. */
    public static PrefetchPlan none() {
        return new PrefetchPlan(Map.of());
    }

    /** The digest's rank if it is traced and not placed yet, and takes it off the plan; else -1. */
    int take(String digest) {
        Integer rank = unplaced.remove(digest);
        return rank == null ? -1 : rank;
    }

    public boolean isEmpty() { return unplaced.isEmpty(); }

    /** Distinct digests in the trace. */
    public int traced() { return traced; }

    /** Traced digests no layer converted so far holds. */
    public int unplaced() { return unplaced.size(); }
}
