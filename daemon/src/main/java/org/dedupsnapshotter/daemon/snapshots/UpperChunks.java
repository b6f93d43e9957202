package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.erofs.ErofsImage;
import org.dedupsnapshotter.storage.ChunkIndexer;
import org.dedupsnapshotter.storage.Digest;

import java.io.IOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * An upper dir's regular files cut into chunks, one entry per inode (hardlinks share one), so that hashing and
 * storing can run while mkfs.erofs is still laying out the image: the image's chunks are the same file ranges,
 * matched afterwards by (inode, offset). A match that is not exact makes the caller fall back to indexing the
 * image's own list, so a layout we did not foresee costs time, never correctness.
 */
final class UpperChunks {
    private record Key(Object inode, long offset) {}

    final List<ChunkIndexer.FileRange> ranges = new ArrayList<>();
    private final Map<Key, Integer> byKey = new HashMap<>();
    private final Map<String, Object> inodeByPath = new HashMap<>();

    static UpperChunks of(Path root, long chunkSize) throws IOException {
        UpperChunks u = new UpperChunks();
        Files.walkFileTree(root, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes a) {
                if (!a.isRegularFile() || a.size() == 0) return FileVisitResult.CONTINUE;
                String rel = root.relativize(file).toString();
                Object inode = a.fileKey();
                u.inodeByPath.put(rel, inode);
                if (u.byKey.containsKey(new Key(inode, 0))) return FileVisitResult.CONTINUE; // another name of a file we have
                for (long off = 0; off < a.size(); off += chunkSize) {
                    u.byKey.put(new Key(inode, off), u.ranges.size());
                    u.ranges.add(new ChunkIndexer.FileRange(rel, off, (int) Math.min(chunkSize, a.size() - off)));
                }
                return FileVisitResult.CONTINUE;
            }
        });
        return u;
    }

    /**
     * Where the chunk of the file at rel (relative to the upper dir) starting at offset went, from indexed (aligned
     * with {@link #ranges}): a pool block or {@link ChunkIndexer#HOLE}. A file that is not the one we cut (it changed
     * while committing, which containerd never does) is an IOException rather than a wrong index.
     */
    long block(String rel, long offset, int length, long[] indexed) throws IOException {
        return indexed[at(rel, offset, length)];
    }

    /** As {@link #block}, the chunk's digest from digests (aligned with {@link #ranges}): null for a hole. */
    Digest digest(String rel, long offset, int length, Digest[] digests) throws IOException {
        return digests[at(rel, offset, length)];
    }

    /** The index in {@link #ranges} of the chunk of the file at rel starting at offset (checked as {@link #block}). */
    int index(String rel, long offset, int length) throws IOException { return at(rel, offset, length); }

    private int at(String rel, long offset, int length) throws IOException {
        Object inode = inodeByPath.get(rel);
        Integer at = inode == null ? null : byKey.get(new Key(inode, offset));
        if (at == null || ranges.get(at).length() != length)
            throw new IOException(rel + " changed during the commit (no chunk of " + length + " bytes at offset " + offset + " was read)");
        return at;
    }

    /**
     * The blocks of indexed (aligned with {@link #ranges}) in the order of the image's chunks, or null unless the
     * image's chunks are exactly our ranges, each once.
     */
    long[] blocksFor(List<ErofsImage.FileChunk> chunks, long[] indexed) {
        if (chunks.size() != ranges.size()) return null;
        long[] out = new long[chunks.size()];
        boolean[] used = new boolean[ranges.size()];
        for (int i = 0; i < chunks.size(); i++) {
            ErofsImage.FileChunk c = chunks.get(i);
            Object inode = inodeByPath.get(c.path());
            Integer at = inode == null ? null : byKey.get(new Key(inode, c.fileOffset()));
            if (at == null || used[at] || ranges.get(at).length() != c.length()) return null;
            used[at] = true;
            out[i] = indexed[at];
        }
        return out;
    }
}
