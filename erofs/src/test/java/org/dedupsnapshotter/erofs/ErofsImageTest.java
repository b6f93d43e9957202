package org.dedupsnapshotter.erofs;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** Parses real mkfs.erofs output. */
class ErofsImageTest {
    @TempDir
    Path dir;

    @Test
    void findsEveryChunkWithItsFileAndKeepsTheChecksumValid() throws Exception {
        Path src = Files.createDirectories(dir.resolve("src/sub/deeper"));
        byte[] big = new byte[9 * 1024 * 1024 + 5];
        new Random(1).nextBytes(big);
        Files.write(dir.resolve("src/big"), big);
        Files.writeString(dir.resolve("src/sub/deeper/small"), "hello");
        Files.write(dir.resolve("src/empty"), new byte[0]);
        Files.createLink(dir.resolve("src/sub/hardlink"), dir.resolve("src/big"));
        for (int i = 0; i < 300; i++) Files.writeString(dir.resolve("src/sub/f" + i), "x" + i); // a directory spanning blocks
        Path img = dir.resolve("img");
        new ErofsBuilder("mkfs.erofs", 4 << 20).buildMetadata(dir.resolve("src"), img);

        ErofsImage e = ErofsImage.read(img);
        assertTrue(e.checksumValid(), "mkfs.erofs's own checksum");
        List<ErofsImage.FileChunk> chunks = e.chunks();
        List<ErofsImage.FileChunk> ofBig = chunks.stream().filter(c -> c.path().equals("big") || c.path().equals("sub/hardlink")).toList();
        assertEquals(3, ofBig.size(), "9 MiB in 4 MiB chunks, hardlink counted once: " + ofBig);
        assertEquals(List.of(0L, 4L << 20, 8L << 20), ofBig.stream().map(ErofsImage.FileChunk::fileOffset).toList());
        assertEquals(List.of(4 << 20, 4 << 20, 1024 * 1024 + 5), ofBig.stream().map(ErofsImage.FileChunk::length).toList());
        assertTrue(chunks.stream().anyMatch(c -> c.path().equals("sub/deeper/small") && c.length() == 5));
        assertEquals(300, chunks.stream().filter(c -> c.path().startsWith("sub/f")).count());
        assertTrue(chunks.stream().noneMatch(c -> c.path().equals("empty")));

        e.setIndex(ofBig.getFirst().indexOffset(), 1234);
        e.setDeviceBlocks(99);
        assertFalse(e.checksumValid(), "an edit must invalidate the old checksum");
        e.fixChecksum();
        assertTrue(e.checksumValid());
        e.write(img);
        ErofsImage again = ErofsImage.read(img);
        assertTrue(again.checksumValid());
        assertEquals(1234, again.chunks().stream().filter(c -> c.indexOffset() == ofBig.getFirst().indexOffset()).findFirst().orElseThrow().blkaddr());
    }
}
