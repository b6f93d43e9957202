package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.erofs.ErofsImage;
import org.dedupsnapshotter.storage.ChunkIndexer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class UpperChunksTest {
    static final int C = 4096;

    @Test
    void oneRangePerChunkOfEveryInodeAndImageOrderMapsBack(@TempDir Path root) throws Exception {
        Files.createDirectories(root.resolve("d"));
        Files.write(root.resolve("d/big"), new byte[2 * C + 10]);   // three chunks, the last short
        Files.write(root.resolve("small"), new byte[5]);
        Files.createLink(root.resolve("alias"), root.resolve("small")); // a hardlink: one inode, chunked once
        Files.write(root.resolve("empty"), new byte[0]);               // no data, no chunks
        Files.createSymbolicLink(root.resolve("link"), Path.of("small"));
        UpperChunks u = UpperChunks.of(root, C);
        assertEquals(4, u.ranges.size(), u.ranges.toString());
        long[] blocks = new long[u.ranges.size()];
        for (int i = 0; i < blocks.length; i++) blocks[i] = 100 + i;

        // the image names the hardlinked file by its other name and lists files in its own order
        String smallName = u.ranges.stream().anyMatch(r -> r.path().equals("small")) ? "alias" : "small";
        List<ErofsImage.FileChunk> image = List.of(
                new ErofsImage.FileChunk(smallName, 0, 5, 0, 0),
                new ErofsImage.FileChunk("d/big", 2L * C, 10, 0, 0),
                new ErofsImage.FileChunk("d/big", 0, C, 0, 0),
                new ErofsImage.FileChunk("d/big", C, C, 0, 0));
        long[] mapped = u.blocksFor(image, blocks);
        assertNotNull(mapped);
        for (int i = 0; i < image.size(); i++) {
            ErofsImage.FileChunk c = image.get(i);
            ChunkIndexer.FileRange r = u.ranges.get((int) (mapped[i] - 100));
            assertEquals(c.fileOffset(), r.offset());
            assertEquals(c.length(), r.length());
        }
    }

    @Test
    void anythingButAnExactMatchIsRefused(@TempDir Path root) throws Exception {
        Files.write(root.resolve("f"), new byte[C + 1]);
        UpperChunks u = UpperChunks.of(root, C);
        long[] blocks = {1, 2};
        var a = new ErofsImage.FileChunk("f", 0, C, 0, 0);
        var b = new ErofsImage.FileChunk("f", C, 1, 0, 0);
        assertNotNull(u.blocksFor(List.of(a, b), blocks));
        assertNull(u.blocksFor(List.of(a), blocks), "a chunk missing");
        assertNull(u.blocksFor(List.of(a, a), blocks), "a chunk twice");
        assertNull(u.blocksFor(List.of(a, new ErofsImage.FileChunk("f", C, 2, 0, 0)), blocks), "another length");
        assertNull(u.blocksFor(List.of(a, new ErofsImage.FileChunk("g", C, 1, 0, 0)), blocks), "another file");
    }
}
