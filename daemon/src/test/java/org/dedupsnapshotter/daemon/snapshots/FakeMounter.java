package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.mount.Mounter;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Stands in for the kernel's mounts in unit tests: records mounts instead of making them (the mount point is a plain
 * directory, as LayerMounts makes it). One instance outlives a simulated daemon restart, as the kernel's mount table
 * outlives the process. It can also refuse a mount, or "kill" the daemon at a mount or an unmount.
 */
final class FakeMounter implements Mounter {
    /** Stands for a kill -9: an Error, so nothing in the daemon catches it and cleans up. */
    static final class Killed extends Error {
        Killed(String where) { super("killed at " + where + " (test)"); }
    }

    /** Mount point → the image mounted there. */
    final Map<Path, Path> mounted = new HashMap<>();
    /** Every mount made, in order (a mount made again shows twice). */
    final List<Path> mountCalls = new ArrayList<>();
    volatile boolean fail;
    /** The next mount happens, then the process dies (a commit killed after its mount, before its transaction). */
    volatile boolean killAfterNextMount;
    /** The process dies at the next unmount, before it detaches anything (a removal killed after its transaction). */
    volatile boolean killAtNextUnmount;

    @Override public void mount(Path image, Path device, Path target, DeviceReads reads) throws IOException {
        if (fail) throw new IOException("mount refused (test)");
        assertTrue(Files.exists(image), "the image exists when it is mounted");
        mounted.put(target, image);
        mountCalls.add(target);
        if (killAfterNextMount) {
            killAfterNextMount = false;
            throw new Killed("mount of " + target);
        }
    }

    @Override public void unmountAll(Path dir) {
        if (killAtNextUnmount) {
            killAtNextUnmount = false;
            throw new Killed("unmount of " + dir);
        }
        mounted.keySet().removeIf(p -> p.startsWith(dir));
    }

    @Override public Set<String> mountPoints() {
        Set<String> out = new HashSet<>();
        mounted.keySet().forEach(p -> out.add(p.toString()));
        return out;
    }
}
