package org.dedupsnapshotter.api;

import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * Validation of what clients send. Keys never become paths (snapshots live under numeric ids), so "../" is
 * harmless; NUL and oversized keys or labels are refused as containerd's own metadata store refuses labels
 * over 4096 bytes.
 */
public final class Names {
    public static final int MAX_KEY_BYTES = 4096;
    public static final int MAX_LABEL_BYTES = 4096;

    private Names() {}

    public static String key(String what, String key) {
        if (key == null || key.isEmpty()) throw SnapshotException.invalidArgument("%s must not be empty", what);
        checkText(what, key, MAX_KEY_BYTES);
        return key;
    }

    public static String optionalKey(String what, String key) {
        return key == null || key.isEmpty() ? "" : key(what, key);
    }

    public static Map<String, String> labels(Map<String, String> labels) {
        if (labels == null) return Map.of();
        for (var e : labels.entrySet()) {
            if (e.getKey().isEmpty()) throw SnapshotException.invalidArgument("label key must not be empty");
            int size = e.getKey().getBytes(StandardCharsets.UTF_8).length + e.getValue().getBytes(StandardCharsets.UTF_8).length;
            if (size > MAX_LABEL_BYTES)
                throw SnapshotException.invalidArgument("label key and value greater than maximum size (%d bytes), key: %s",
                        MAX_LABEL_BYTES, shorten(e.getKey()));
            if (e.getKey().indexOf('\0') >= 0 || e.getValue().indexOf('\0') >= 0)
                throw SnapshotException.invalidArgument("label %s contains a NUL character", shorten(e.getKey()));
        }
        return labels;
    }

    private static void checkText(String what, String s, int max) {
        if (s.indexOf('\0') >= 0) throw SnapshotException.invalidArgument("%s %s contains a NUL character", what, shorten(s));
        int n = s.getBytes(StandardCharsets.UTF_8).length;
        if (n > max) throw SnapshotException.invalidArgument("%s is %d bytes long, more than the maximum of %d", what, n, max);
    }

    /** Keeps error messages short when a hostile client sends megabytes. */
    public static String shorten(String s) {
        String printable = s.replace("\0", "\\0");
        return printable.length() <= 80 ? '"' + printable + '"' : '"' + printable.substring(0, 77) + "...\"";
    }
}
