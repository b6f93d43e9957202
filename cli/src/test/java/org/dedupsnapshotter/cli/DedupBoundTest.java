package org.dedupsnapshotter.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** The bound calculator on tars made by GNU tar, plain and gzip. */
class DedupBoundTest {
    @TempDir
    Path dir;

    @Test
    void countsEachDistinctChunkOnceRoundedToBlocks() throws Exception {
        byte[] a = new byte[5 * 1024 * 1024 + 10]; // two chunks: 4 MiB + (1 MiB + 10)
        new Random(1).nextBytes(a);
        Path src = Files.createDirectories(dir.resolve("src"));
        Files.write(src.resolve("a"), a);
        Files.write(src.resolve("a-copy"), a);          // same chunks again
        Files.writeString(src.resolve("small"), "hi");  // one chunk of 2 bytes -> 4 KiB
        Path tar = dir.resolve("l1.tar"), tgz = dir.resolve("l2.tar.gz");
        assertEquals(0, new ProcessBuilder("tar", "-C", src.toString(), "-cf", tar.toString(), ".").inheritIO().start().waitFor());
        assertEquals(0, new ProcessBuilder("tar", "-C", src.toString(), "-czf", tgz.toString(), "a", "small").inheritIO().start().waitFor());

        DedupBound.Result r = DedupBound.of(List.of(tar, tgz, tar), 4L << 20);
        assertEquals(2, r.layers(), "the same layer twice counts once");
        assertEquals(5, r.files());
        assertEquals(3, r.uniqueChunks());
        assertEquals((4L << 20) + (1024 * 1024 + 4096) + 4096, r.boundBytes());
    }
}
