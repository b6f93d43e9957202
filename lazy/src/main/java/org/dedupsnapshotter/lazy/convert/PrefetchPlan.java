package org.dedupsnapshotter.lazy.convert;

import java.util.HashMap;
import java.util.Map;

/**
 * The traced chunks still to be placed in a prefetch region while an image's layers are converted bottom-up: a
 * digest goes into the first layer that holds it — the lowest, which a node prepares first — and is then taken off,
 * so a digest several layers (or several files of one layer) hold is copied once. Digests no layer holds stay here.
 */
public final class PrefetchPlan {
    /** A traced chunk to place: its rank, and the pieces of it the trace read (TracePieces). */
    record Traced(int rank, long pieces) {}

    private final Map<String, Traced> unplaced;
    private final int traced;

    private PrefetchPlan(Map<String, Traced> traced) {
        this.unplaced = new HashMap<>(traced);
        this.traced = traced.size();
    }

    public static PrefetchPlan of(StartupTrace trace) {
        Map<String, Long> masks = trace.pieceMasks();
        Map<String, Traced> traced = new HashMap<>();
        trace.ranks().forEach((d, rank) -> traced.put(d, new Traced(rank, masks.get(d))));
        return new PrefetchPlan(traced);
    }

    /** No trace: every layer is written as without one. */
    public static PrefetchPlan none() {
        return new PrefetchPlan(Map.of());
    }

    /** The digest's rank and pieces if it is traced and not placed yet, taking it off the plan; else null. */
    Traced take(String digest) {
        return unplaced.remove(digest);
    }

    public boolean isEmpty() { return unplaced.isEmpty(); }

    /** Distinct digests in the trace. */
    public int traced() { return traced; }

    /** Traced digests no layer converted so far holds. */
    public int unplaced() { return unplaced.size(); }
}
