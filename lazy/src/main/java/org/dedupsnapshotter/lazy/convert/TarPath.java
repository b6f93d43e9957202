package org.dedupsnapshotter.lazy.convert;

import java.util.ArrayDeque;
import java.util.Deque;

/** Tar entry names as containerd resolves them under the layer root. */
final class TarPath {
    private TarPath() {}

    /**
     * filepath.Clean("/" + name) without the leading "/": "./a//b/" → "a/b", "/a" → "a", ".." never climbs above the
     * root ("../a" → "a", as containerd's RootPath clamps it), and the root itself is ".".
     */
    static String normalise(String name) {
        Deque<String> parts = new ArrayDeque<>();
        for (String p : name.split("/")) {
            if (p.isEmpty() || p.equals(".")) continue;
            if (p.equals("..")) {
                parts.pollLast();
                continue;
            }
            parts.addLast(p);
        }
        return parts.isEmpty() ? "." : String.join("/", parts);
    }
}
