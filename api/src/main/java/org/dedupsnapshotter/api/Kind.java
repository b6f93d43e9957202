package org.dedupsnapshotter.api;

import java.util.Locale;

/** containerd's snapshot kinds. Committed snapshots are immutable layers; active ones are writable; views read-only. */
public enum Kind {
    VIEW, ACTIVE, COMMITTED;

    public String filterName() { return name().toLowerCase(Locale.ROOT); }
}
