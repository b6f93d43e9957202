package org.dedupsnapshotter.itest;

import org.dedupsnapshotter.proto.containerd.types.Mount;
import org.dedupsnapshotter.sys.Libc;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** What containerd does with the mounts a snapshot's Prepare or View returns, for tests that call the snapshotter directly. */
final class SnapshotMounts {
    private SnapshotMounts() {}

    /** What containerd's mount.All does for our two mount kinds. */
    static void mount(List<Mount> mounts, Path target) throws Exception {
        assertEquals(1, mounts.size());
        var m = mounts.getFirst();
        if (m.getType().equals("bind")) Libc.mount(m.getSource(), target.toString(), null, Libc.MS_BIND | Libc.MS_REC, null);
        else Libc.mount(m.getSource(), target.toString(), m.getType(), 0, String.join(",", m.getOptionsList()));
    }

    /** Writes files where containerd's applier would: the bind source, or the overlay's upperdir. */
    static void writeLayer(List<Mount> mounts, Map<String, byte[]> files) throws Exception {
        var m = mounts.getFirst();
        Path dir = m.getType().equals("bind") ? Path.of(m.getSource())
                : Path.of(m.getOptionsList().stream().filter(o -> o.startsWith("upperdir=")).findFirst().orElseThrow().substring("upperdir=".length()));
        for (var e : files.entrySet()) Files.write(dir.resolve(e.getKey()), e.getValue());
    }
}
