package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.api.Names;
import org.dedupsnapshotter.erofs.CompressedChunk;
import org.dedupsnapshotter.erofs.ErofsTree;
import org.dedupsnapshotter.erofs.ErofsWriter;
import org.dedupsnapshotter.erofs.Pclusters;
import org.dedupsnapshotter.storage.ChunkIndexer;
import org.dedupsnapshotter.storage.ChunkPool;
import org.dedupsnapshotter.storage.Digest;
import org.dedupsnapshotter.storage.Extent;
import org.dedupsnapshotter.sys.CrashPoints;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;

/**
 * Our writer (decision 21): every chunk is hashed and stored first (new ones written once, known ones
 * referenced), then the image is written from the upper dir's metadata with each index already naming its pool
 * block. The data is read once; mkfs.erofs 1.5 would read and hash all of it a second time. A tree the writer
 * refuses (EROFS could not hold it as we lay it out) goes to mkfs.erofs, which may. Regular files get page-cache-share
 * fingerprints made of their chunks' digests (decision 36) where the kernel can mount such images; mkfs.erofs 1.5
 * images have none.
 */
final class NativeImages implements ImageBuilder {
    private static final Logger log = LoggerFactory.getLogger(NativeImages.class);

    private final ChunkIndexer indexer;
    private final long chunkSize;
    private final MkfsImages fallback;
    private final boolean fingerprints;
    /** Compressed layers: their codec and the threads that hash, encode and write their chunks; null: uncompressed. */
    private final Pclusters codec;
    private ExecutorService compressors;

    NativeImages(ChunkIndexer indexer, long chunkSize, MkfsImages fallback, boolean fingerprints, Pclusters codec) {
        this.indexer = indexer;
        this.chunkSize = chunkSize;
        this.fallback = fallback;
        this.fingerprints = fingerprints;
        this.codec = codec;
    }

    /** The compressor threads, made on first use (a daemon that commits uncompressed layers and never compacts has none). */
    private synchronized ExecutorService compressors() {
        // as many as the chunk hashers (ChunkIndexer's threads), which a compressed layer leaves idle
        if (compressors == null) compressors = Executors.newFixedThreadPool(Math.max(2, Runtime.getRuntime().availableProcessors()),
                Thread.ofPlatform().name("chunk-compressor-", 0).daemon(true).factory());
        return compressors;
    }

    /** The codec of compressed layers, or null. */
    Pclusters compression() { return codec; }

    @Override public String name() { return "native"; }

    @Override public boolean encodesNames(int longestNameBytes) { return true; }

    @Override
    public Built build(Path upper, Path tmp, String key) throws IOException {
        try {
            return codec != null ? writeCompressed(upper, tmp, codec, "commit", () -> false) : write(upper, tmp);
        } catch (IllegalArgumentException e) {
            log.warn("commit of {}: the native EROFS writer refused the tree ({}); building it with mkfs.erofs", Names.shorten(key), e.getMessage());
            return fallback.build(upper, tmp, key);
        }
    }

    private Built write(Path upper, Path tmp) throws IOException {
        long t0 = System.nanoTime();
        UpperChunks plan = UpperChunks.of(upper, chunkSize);
        ChunkIndexer.Indexed indexed = indexer.index(upper, plan.ranges);
        try {
            long t1 = System.nanoTime();
            ErofsTree tree = ErofsTree.fromDirectory(upper, chunkSize, (file, offset, length) -> {
                long b = plan.block(upper.relativize(file).toString(), offset, length, indexed.blocks);
                return b == ChunkIndexer.HOLE ? ErofsTree.HOLE : b;
            }, (file, offset, length) -> {
                Digest d = plan.digest(upper.relativize(file).toString(), offset, length, indexed.digests);
                return d == null ? null : d.bytes();
            });
            ErofsWriter.write(tree, tmp, indexer.pool().endBlock(), fingerprints);
            CrashPoints.reach("commit.metadata");
            return new Built(indexed, plan.ranges.size(), System.nanoTime() - t1, t1 - t0);
        } catch (IOException | RuntimeException e) {
            indexed.abort();
            Files.deleteIfExists(tmp);
            throw e;
        }
    }

    /**
     * A compressed layer (issue 23): every chunk of the upper dir's files is read, hashed and, unless the pool has a
     * form of it, LZ4-HC encoded and written on the compressor threads, while the directory is read into the tree
     * in this thread (each file's chunks are awaited as it comes). Then, as for uncompressed chunks, the pool is
     * synced before the image names the extents, and the written extents' cached pages are dropped. Compressed
     * files carry no page-cache-share fingerprints (the writer has none for them yet). Compaction (Compactor) calls this
     * too, on a committed layer's mounted tree with its own codec; crashPoints names its crash points ("commit", "compact").
     * The caller owns the result: committed() after recording it, else abort(). Once abandon says true, no further
     * chunk is encoded: the chunks placed so far are released and {@link Abandoned} is thrown.
     */
    Built writeCompressed(Path upper, Path tmp, Pclusters codec, String crashPoints, BooleanSupplier abandon) throws IOException {
        long t0 = System.nanoTime();
        UpperChunks plan = UpperChunks.of(upper, chunkSize);
        CompressedPoolPlacer placer = new CompressedPoolPlacer(codec, indexer.compressed().layer(), true);
        ExecutorService compressors = compressors();
        AtomicBoolean failed = new AtomicBoolean();
        List<Future<CompressedChunk>> placed = new ArrayList<>(plan.ranges.size());
        try {
            for (ChunkIndexer.FileRange r : plan.ranges) {
                placed.add(compressors.submit(() -> {
                    if (failed.get()) throw new CancellationException("another chunk of the layer failed");
                    if (abandon.getAsBoolean()) throw new Abandoned();
                    return placer.place(upper.resolve(r.path()), r.offset(), r.length());
                }));
            }
            ErofsTree tree = ErofsTree.fromDirectoryCompressed(upper, chunkSize,
                    (file, offset, length) -> await(placed.get(plan.index(upper.relativize(file).toString(), offset, length))));
            for (Future<CompressedChunk> f : placed) await(f); // every name of a hard-linked file was placed once, under one of them
            List<Extent> written = placer.layer().written();
            if (!written.isEmpty()) {
                CrashPoints.reach(crashPoints + ".pool-write");
                placer.layer().sync();
                CrashPoints.reach(crashPoints + ".pool-sync");
                indexer.pool().dropCached(written); // as for chunks: layers read the pool with direct I/O
            }
            long t1 = System.nanoTime();
            ErofsWriter.write(tree, tmp, indexer.pool().endBlock(), fingerprints);
            CrashPoints.reach(crashPoints + ".metadata");
            long newBytes = written.stream().mapToLong(e -> e.blocks() * ChunkPool.BLOCK).sum();
            Compressed c = new Compressed(placer.layer(), placer.logicalBytes.get(), written.size(), newBytes, placer.hashNanos.get(),
                    placer.encodeNanos.get(), placer.writeNanos.get());
            // no chunk references: an empty Indexed (index of no ranges holds nothing) keeps Commit's one path
            return new Built(indexer.index(upper, List.of()), c, plan.ranges.size(), System.nanoTime() - t1, t1 - t0);
        } catch (IOException | RuntimeException e) {
            failed.set(true);
            for (Future<CompressedChunk> f : placed) { // every task ended (none cancelled while running) before the holds go
                try {
                    f.get();
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                } catch (ExecutionException | CancellationException ignored) {
                    // the first failure is the one thrown
                }
            }
            placer.layer().abort();
            Files.deleteIfExists(tmp);
            throw e;
        }
    }

    /** A compressed write given up because its caller said so (abandon); nothing of it is left. */
    static final class Abandoned extends CancellationException {
        Abandoned() { super("abandoned by its caller"); }
    }

    private static CompressedChunk await(Future<CompressedChunk> f) throws IOException {
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted placing compressed chunks", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof IOException io) throw io;
            if (e.getCause() instanceof RuntimeException re) throw re;
            throw new IOException("placing a compressed chunk failed: " + e.getCause(), e.getCause());
        }
    }
}
