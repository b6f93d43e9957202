package org.dedupsnapshotter.api;

import java.util.List;

/** A mount containerd performs for a snapshot (containerd.types.Mount). */
public record Mount(String type, String source, List<String> options) {
    public Mount {
        options = List.copyOf(options);
    }
}
