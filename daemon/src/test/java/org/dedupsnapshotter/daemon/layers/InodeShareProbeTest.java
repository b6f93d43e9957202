package org.dedupsnapshotter.daemon.layers;

import org.dedupsnapshotter.mount.InodeShare;
import org.dedupsnapshotter.mount.MountInfo;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The start-up probe against the running kernel (needs root: it mounts). */
class InodeShareProbeTest {
    @TempDir
    Path tmp;

    /** Linux before 7.0 has no inode_share: mount(2) answers EINVAL for the unknown option, and the probe says so. */
    @Test
    void aKernelBefore7ReportsUnsupportedBecauseItRejectsTheOption() throws Exception {
        assumeTrue(kernelMajor() < 7, "this kernel may offer inode_share: " + System.getProperty("os.version"));
        Path dir = tmp.resolve("probe");
        InodeShare s = InodeShareProbe.run(dir, InodeShare.NODE_DOMAIN);
        assertFalse(s.supported());
        assertTrue(s.reason().contains("rejects the mount option inode_share (EINVAL)"), s.reason());
        assertEquals("", s.mountOptions());
        assertTrue(s.fingerprints(), "6.18 reads images with long xattr name prefixes: they keep their fingerprints");
        assertFalse(Files.exists(dir), "the probe cleans up");
        assertTrue(MountInfo.read().stream().noneMatch(m -> m.mountPoint().startsWith(tmp.toString())), "no mount left");
    }

    /** What a crashed probe left (its dir with a file in it) does not stop the next one. */
    @Test
    void leftoversOfAnEarlierProbeAreRemoved() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("probe/mnt"));
        Files.writeString(dir.resolveSibling("image"), "old");
        InodeShare s = InodeShareProbe.run(tmp.resolve("probe"), InodeShare.NODE_DOMAIN);
        assertFalse(s.reason().contains("probe failed"), s.reason());
        assertFalse(Files.exists(tmp.resolve("probe")));
    }

    private static int kernelMajor() {
        return Integer.parseInt(System.getProperty("os.version").split("\\.")[0]);
    }
}
