package org.dedupsnapshotter.mount;

import org.dedupsnapshotter.erofs.BlockAppender;
import org.dedupsnapshotter.erofs.ChunkPlacer;
import org.dedupsnapshotter.erofs.CompressedChunkStore;
import org.dedupsnapshotter.erofs.ErofsTree;
import org.dedupsnapshotter.erofs.ErofsWriter;
import org.dedupsnapshotter.erofs.Pclusters;
import org.dedupsnapshotter.mount.Mounter.DeviceReads;
import org.dedupsnapshotter.sys.Libc;
import org.dedupsnapshotter.sys.ReadAhead;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import static java.nio.file.StandardOpenOption.CREATE;
import static java.nio.file.StandardOpenOption.READ;
import static java.nio.file.StandardOpenOption.WRITE;
import static org.junit.jupiter.api.Assertions.*;

/**
 * How layers are mounted by kind (decision 54), with real mounts: a compressed layer reads the pool with direct I/O,
 * without EROFS's managed cache of compressed pages and with the disk's read-ahead, so reading it cold caches its
 * files once (about its logical size), where the kernel's default cache strategy adds its compressed bytes on top;
 * a chunk-indexed layer keeps directio and the kernel's cache strategy, and reads ahead as the disk does too (decision 58).
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class CompressedLayerMountTest {
    private static final long CHUNK = 4 << 20;

    @TempDir
    Path tmp;

    /** A tree of compressible files (words from a small vocabulary: LZ4 HC roughly halves them), some 70 MiB. */
    private static long buildTree(Path src) throws IOException {
        Random r = new Random(32);
        String[] words = new String[2000];
        for (int i = 0; i < words.length; i++) {
            StringBuilder w = new StringBuilder();
            for (int j = 3 + r.nextInt(8); j > 0; j--) w.append((char) ('a' + r.nextInt(26)));
            words[i] = w.toString();
        }
        long total = 0;
        for (int d = 0; d < 8; d++) {
            Path dir = Files.createDirectories(src.resolve("d" + d));
            for (int f = 0; f < 40; f++) {
                int size = f % 8 == 0 ? (1 << 20) + r.nextInt(1 << 20) : 1 + r.nextInt(96 << 10);
                StringBuilder b = new StringBuilder(size + 16);
                while (b.length() < size) b.append(words[r.nextInt(words.length)]).append(r.nextInt(9) == 0 ? '\n' : ' ');
                b.setLength(size);
                Files.writeString(dir.resolve("f" + f), b);
                total += size;
            }
        }
        return total;
    }

    /** Appends whole blocks to a pool file (the writers' allocator for both kinds of data). */
    private static final class Pool implements BlockAppender, ChunkPlacer, AutoCloseable {
        final FileChannel ch;
        long blocks;

        Pool(Path file) throws IOException { ch = FileChannel.open(file, CREATE, READ, WRITE); }

        @Override
        public long append(ByteBuffer data) throws IOException {
            long at = blocks, pos = at * 4096;
            while (data.hasRemaining()) pos += ch.write(data, pos);
            blocks = pos / 4096;
            return at;
        }

        @Override
        public long place(Path file, long offset, int length) throws IOException {
            ByteBuffer chunk = ByteBuffer.allocate((length + 4095) & ~4095);
            try (FileChannel in = FileChannel.open(file, READ)) {
                while (chunk.position() < length && in.read(chunk, offset + chunk.position()) > 0) { }
            }
            return append(chunk.clear());
        }

        @Override
        public void close() throws IOException {
            ch.force(true);
            ch.close();
        }
    }

    private static void dropCached(Path f) throws IOException {
        int fd = Libc.open(f.toString(), Libc.O_RDONLY, 0);
        try {
            Libc.posixFadvise(fd, 0, 0, Libc.POSIX_FADV_DONTNEED);
        } finally {
            Libc.close(fd);
        }
    }

    /** Reads every file under root and compares it with its source; returns the bytes read. */
    private static long readAllAndCompare(Path root, Path src) throws IOException {
        long n = 0;
        List<Path> files;
        try (var w = Files.walk(root)) {
            files = w.filter(p -> Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)).toList();
        }
        for (Path f : files) {
            byte[] got = Files.readAllBytes(f);
            assertArrayEquals(Files.readAllBytes(src.resolve(root.relativize(f).toString())), got, f.toString());
            n += got.length;
        }
        return n;
    }

    /** The page cache a cold read of every file of the mount at mnt added: drops image and pool first, then checks the bytes. */
    private static long coldReadGrowth(Path image, Path pool, Path mnt, Path src, long logical) throws IOException, InterruptedException {
        dropCached(image);
        dropCached(pool);
        long grown = ChargedPageCache.ofReadingAll(mnt);
        assertEquals(logical, readAllAndCompare(mnt, src));
        return grown;
    }

    private static String superOptions(Path mnt) throws IOException {
        for (MountInfo m : MountInfo.read()) if (m.mountPoint().equals(mnt.toString())) return m.superOptions();
        return fail("not mounted: " + mnt);
    }

    private static Set<String> newBdis(Set<String> before) throws IOException {
        Set<String> now = new HashSet<>(LayerMounter.erofsBdis());
        now.removeAll(before);
        return now;
    }

    /**
     * The mount made one new backing_dev_info, reading ahead as the pool's disk does (decision 58: its own bdi would
     * start at 128 KiB, where overlayfs on the same disk reads ahead with the disk's).
     */
    private static void assertOwnBdiReadsAheadLikeTheDisk(Set<String> before, Path poolFile) throws IOException {
        Set<String> mine = newBdis(before);
        assertEquals(1, mine.size(), "one new backing_dev_info: " + mine);
        int disk = ReadAhead.diskKib(poolFile);
        int ra = Integer.parseInt(Files.readString(Path.of("/sys/class/bdi", mine.iterator().next(), "read_ahead_kb")).strip());
        if (disk > 0) assertEquals(Math.max(128, disk), ra, "the layer reads ahead as the pool's disk does");
    }

    @Test
    void aCompressedLayerReadColdIsCachedOnceAndReadsAheadLikeTheDisk() throws Exception {
        Path src = tmp.resolve("src");
        long logical = buildTree(src);
        Path image = tmp.resolve("z.erofs"), poolFile = tmp.resolve("pool");
        try (Pool pool = new Pool(poolFile)) {
            CompressedChunkStore store = new CompressedChunkStore(new Pclusters(4, 64 << 10), pool);
            ErofsWriter.write(ErofsTree.fromDirectoryCompressed(src, CHUNK, store), image, pool.blocks);
        }
        long stored = Files.size(poolFile);
        assertTrue(stored < logical * 6 / 10, "the tree compresses: " + stored + " of " + logical);
        assertTrue(LayerMounter.isCompressed(image));
        Libc.syncfs(tmp.toString());

        LayerMounter mounter = new LayerMounter("file");
        Path mnt = Files.createDirectories(tmp.resolve("mnt"));
        Set<String> bdis = LayerMounter.erofsBdis();
        mounter.mount(image, poolFile, mnt, DeviceReads.DIRECT);
        long cold;
        try {
            String opts = superOptions(mnt);
            assertTrue(opts.contains("directio") && opts.contains("cache_strategy=disabled"), opts);
            assertOwnBdiReadsAheadLikeTheDisk(bdis, poolFile);
            cold = coldReadGrowth(image, poolFile, mnt, src, logical);
        } finally {
            mounter.unmountAll(mnt);
        }
        System.out.printf("compressed layer: logical %d B, pool %d B, page cache after a cold read +%d B (%.2fx logical)%n",
                logical, stored, cold, cold / (double) logical);
        assertTrue(cold < logical * 115 / 100 + (4 << 20),
                "a cold read of a compressed layer caches its files once, not its compressed pages too: +" + cold + " B for " + logical + " B");

        // the kernel's default cache strategy, for contrast: the compressed pages stay cached beside the files
        Libc.mount(image.toString(), mnt.toString(), "erofs", Libc.MS_RDONLY, "device=" + poolFile + ",directio");
        long dflt;
        try {
            dflt = coldReadGrowth(image, poolFile, mnt, src, logical);
        } finally {
            Libc.umount2(mnt.toString(), 0);
        }
        System.out.printf("the same with cache_strategy=readaround (the kernel's default): +%d B (%.2fx logical)%n", dflt, dflt / (double) logical);
        assertTrue(dflt > cold + stored / 2,
                "on this kernel (6.18) the default cache strategy keeps the compressed pages: +" + dflt + " vs +" + cold + " B; if a kernel no longer does, revisit decision 54");
    }

    @Test
    void aChunkIndexedLayerKeepsItsCacheStrategyAndReadsAheadLikeTheDisk() throws Exception {
        Path src = tmp.resolve("src");
        long logical = buildTree(src);
        Path image = tmp.resolve("c.erofs"), poolFile = tmp.resolve("pool");
        try (Pool pool = new Pool(poolFile)) {
            ErofsWriter.write(ErofsTree.fromDirectory(src, CHUNK, pool), image, pool.blocks);
        }
        assertFalse(LayerMounter.isCompressed(image));
        Libc.syncfs(tmp.toString());
        LayerMounter mounter = new LayerMounter("file");
        Path mnt = Files.createDirectories(tmp.resolve("mnt"));
        Set<String> bdis = LayerMounter.erofsBdis();
        mounter.mount(image, poolFile, mnt, DeviceReads.DIRECT);
        try {
            String opts = superOptions(mnt);
            assertTrue(opts.contains("directio") && opts.contains("cache_strategy=readaround"), opts);
            assertOwnBdiReadsAheadLikeTheDisk(bdis, poolFile);
            long grown = coldReadGrowth(image, poolFile, mnt, src, logical);
            assertTrue(grown < logical * 115 / 100 + (4 << 20), "+" + grown + " B for " + logical + " B");
        } finally {
            mounter.unmountAll(mnt);
        }
    }

    @Test
    void withBufferedPoolReadsAChunkIndexedLayerReadsRightAndIsStillCachedOnce() throws Exception {
        Path src = tmp.resolve("src");
        long logical = buildTree(src);
        Path image = tmp.resolve("c.erofs"), poolFile = tmp.resolve("pool");
        try (Pool pool = new Pool(poolFile)) {
            ErofsWriter.write(ErofsTree.fromDirectory(src, CHUNK, pool), image, pool.blocks);
        }
        Libc.syncfs(tmp.toString());
        LayerMounter mounter = new LayerMounter("file", InodeShare.unsupported("test"), LayerMounter.PoolReads.BUFFERED);
        Path mnt = Files.createDirectories(tmp.resolve("mnt"));
        Set<String> bdis = LayerMounter.erofsBdis();
        try (PoolPageTrimmer trimmer = PoolPageTrimmer.start(poolFile, PoolPageTrimmer.INTERVAL, () -> null)) {
            mounter.mount(image, poolFile, mnt, DeviceReads.DIRECT);
            try {
                String opts = superOptions(mnt);
                assertFalse(opts.contains("directio"), opts);
                assertTrue(mounter.directIo().startsWith("off (poolReads buffered"), mounter.directIo());
                assertEquals("buffered", mounter.poolReads());
                assertOwnBdiReadsAheadLikeTheDisk(bdis, poolFile);
                dropCached(image);
                dropCached(poolFile);
                long grown;
                try (ChargedPageCache charged = ChargedPageCache.create()) {
                    charged.readAll(mnt);
                    Thread.sleep(3 * PoolPageTrimmer.INTERVAL.toMillis());
                    grown = charged.bytes();
                }
                assertEquals(logical, readAllAndCompare(mnt, src)); // every byte right through the buffered pool
                assertTrue(trimmer.trims() > 0, "the layer's reads of the pool woke the trimmer (inotify IN_ACCESS)");
                // without the trimmer the pool's pages would stay too: about twice the logical bytes
                assertTrue(grown < logical * 115 / 100 + (4 << 20), "+" + grown + " B for " + logical + " B");
            } finally {
                mounter.unmountAll(mnt);
            }
        }
    }

    @Test
    void notAnImageIsNotCompressed() throws Exception {
        Path f = Files.writeString(tmp.resolve("x"), "not erofs");
        assertFalse(LayerMounter.isCompressed(f));
        assertFalse(LayerMounter.isCompressed(tmp.resolve("absent")));
    }
}
