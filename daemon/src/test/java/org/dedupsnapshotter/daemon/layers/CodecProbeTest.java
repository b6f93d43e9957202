package org.dedupsnapshotter.daemon.layers;

import org.dedupsnapshotter.erofs.Algorithm;
import org.dedupsnapshotter.mount.MountInfo;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The start-up probe against the running kernel (needs root: it mounts). This machine's 6.18 decodes every codec
 * our writer has, so the refusing side (a kernel without the codec) cannot be shown here; its message is the mount's
 * or the read's error, which the daemon logs before it runs uncompressed.
 */
class CodecProbeTest {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @EnumSource(names = {"LZ4HC", "ZSTD"})
    void thisKernelReadsBackALayerCompressedWithTheCodec(Algorithm algorithm) throws Exception {
        Path dir = tmp.resolve("probe");
        assertNull(CodecProbe.cannotDecode(dir, algorithm));
        assertFalse(Files.exists(dir), "the probe cleans up");
        assertTrue(MountInfo.read().stream().noneMatch(m -> m.mountPoint().startsWith(tmp.toString())), "no mount left");
    }

    /** What a crashed probe left (its mount point and files) does not stop the next one. */
    @Test
    void leftoversOfAnEarlierProbeAreRemoved() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("probe/mnt"));
        Files.writeString(dir.resolveSibling("image"), "old");
        Files.createDirectories(tmp.resolve("probe/src/f"));
        assertNull(CodecProbe.cannotDecode(tmp.resolve("probe"), Algorithm.ZSTD));
        assertFalse(Files.exists(tmp.resolve("probe")));
    }
}
