package org.dedupsnapshotter.daemon.lazypull;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;

/**
 * A path inside a layer's root as containerd's fs.RootPath resolves it: every symlink on the way is followed, the
 * last one too, but always as if the root were "/" — an absolute target or a ".." starts again at the root, never
 * above it. So a lower layer's {@code x -> /root} names the layer's own /root, not the host's.
 */
final class RootPath {
    /** Go's filepath-walk limit, as in continuity's fs.RootPath. */
    private static final int MAX_LINKS = 255;

    private RootPath() {}

    static Path resolve(Path root, String path) throws IOException {
        Deque<String> todo = new ArrayDeque<>(parts(path));
        List<String> done = new ArrayList<>();
        int links = 0;
        while (!todo.isEmpty()) {
            String part = todo.pollFirst();
            if (part.equals("..")) {
                if (!done.isEmpty()) done.removeLast();
                continue;
            }
            Path at = join(root, done).resolve(part);
            if (!Files.isSymbolicLink(at)) {
                done.add(part);
                continue;
            }
            if (++links > MAX_LINKS) throw new IOException("too many symlinks resolving " + path + " in " + root);
            String target = Files.readSymbolicLink(at).toString();
            if (target.startsWith("/")) done.clear();
            List<String> t = parts(target);
            for (int i = t.size() - 1; i >= 0; i--) todo.addFirst(t.get(i));
        }
        return join(root, done);
    }

    private static List<String> parts(String path) {
        List<String> out = new ArrayList<>();
        for (String p : path.split("/")) if (!p.isEmpty() && !p.equals(".")) out.add(p);
        return out;
    }

    private static Path join(Path root, List<String> parts) {
        return parts.isEmpty() ? root : root.resolve(String.join("/", parts));
    }
}
