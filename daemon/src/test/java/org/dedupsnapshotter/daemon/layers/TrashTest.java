package org.dedupsnapshotter.daemon.layers;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class TrashTest {
    static long entries(Path dir) throws Exception {
        try (var s = Files.list(dir)) {
            return s.count();
        }
    }

    @Test
    void deletesOnlyOnceTheSnapshotterIsQuiet(@TempDir Path root) throws Exception {
        Trash trash = new Trash(root.resolve("trash"));
        Path upper = Files.createDirectories(root.resolve("snapshots/7/fs/usr/bin"));
        Files.writeString(upper.resolve("tool"), "x");
        trash.discard(root.resolve("snapshots/7/fs"));
        assertFalse(Files.exists(root.resolve("snapshots/7/fs")), "moved out of the store at once");
        assertEquals(1, entries(root.resolve("trash")));
        // an unpack in progress: operations keep coming, so nothing is deleted
        long busyUntil = System.nanoTime() + 2 * Trash.QUIET_NANOS;
        while (System.nanoTime() < busyUntil) {
            trash.activity();
            Thread.sleep(100);
        }
        assertEquals(1, entries(root.resolve("trash")), "deleted while the snapshotter was busy");
        // quiet: gone within the quiet period and a little
        long deadline = System.nanoTime() + 3 * Trash.QUIET_NANOS;
        while (entries(root.resolve("trash")) > 0 && System.nanoTime() < deadline) Thread.sleep(100);
        assertEquals(0, entries(root.resolve("trash")));
    }
}
