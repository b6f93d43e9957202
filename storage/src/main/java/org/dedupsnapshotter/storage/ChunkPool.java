package org.dedupsnapshotter.storage;

import org.dedupsnapshotter.sys.Errno;
import org.dedupsnapshotter.sys.Libc;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * The node-wide chunk pool: one file holding every unique chunk once, each in an extent of whole 4 KiB blocks
 * (EROFS addresses chunks by block), and every compressed chunk's pclusters (issue 23). The allocator lives in memory
 * and is rebuilt at start-up from the chunk and zchunk tables, the only record of ownership: whatever no chunk row owns is free, and is hole-punched so the
 * filesystem gets the space back. Extents are reused best-fit; the file grows only when none fits.
 */
public final class ChunkPool implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ChunkPool.class);
    public static final int BLOCK = 4096;
    /** EROFS block addresses are 32-bit: one pool file addresses at most 16 TiB. */
    static final long MAX_BLOCKS = 0xFFFFFFFEL;

    private final Path file;
    private final FileChannel channel;
    private final int fd;
    private final long capBlocks;

    // allocator state, guarded by this
    private long end;
    private final TreeMap<Long, Long> freeByStart = new TreeMap<>();
    private final TreeMap<Long, TreeSet<Long>> freeBySize = new TreeMap<>();

    private ChunkPool(Path file, FileChannel channel, int fd, long capBlocks) {
        this.file = file;
        this.channel = channel;
        this.fd = fd;
        this.capBlocks = capBlocks;
    }

    /** capBytes 0 means no cap beyond what one pool file can address. */
    public static ChunkPool open(Path file, long capBytes) throws IOException {
        Files.createDirectories(file.getParent());
        FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
        int fd = Libc.open(file.toString(), Libc.O_RDWR, 0);
        long cap = capBytes <= 0 ? MAX_BLOCKS : Math.min(MAX_BLOCKS, capBytes / BLOCK);
        return new ChunkPool(file, ch, fd, cap);
    }

    public Path path() { return file; }

    /**
     * Rebuilds the allocator from the extents chunk rows and compressed chunk rows own ({@link Tx#ownedExtents}, any order): every gap is free and punched, and the
     * file is cut after the last owned block. Returns the number of blocks that were reclaimed as free.
     */
    public synchronized long rebuild(List<Extent> owned) throws IOException {
        freeByStart.clear();
        freeBySize.clear();
        List<Extent> sorted = owned.stream().sorted((a, b) -> Long.compare(a.start(), b.start())).toList();
        long cursor = 0, freed = 0;
        for (Extent e : sorted) {
            if (e.start() < cursor) throw new IOException("chunk extents overlap at block " + e.start() + " (run dedupctl fsck)");
            if (e.start() > cursor) {
                addFree(cursor, e.start() - cursor);
                punch(cursor, e.start() - cursor);
                freed += e.start() - cursor;
            }
            cursor = e.end();
        }
        end = cursor;
        long size = channel.size();
        if (size > end * BLOCK) {
            freed += blocksFor(size) - end;
            channel.truncate(end * BLOCK);
        }
        return freed;
    }

    private static long blocksFor(long bytes) { return Extent.blocksFor(bytes); }

    /** Reserves blocks for a new chunk: the smallest free extent that fits, else the end of the file. */
    public synchronized long allocate(long blocks) throws PoolFullException {
        // 0 or fewer blocks would hand out an extent that overlaps the next one (or move the end back over live chunks)
        if (blocks <= 0) throw new IllegalArgumentException("cannot allocate " + blocks + " blocks: a chunk takes at least one");
        Map.Entry<Long, TreeSet<Long>> fit = freeBySize.ceilingEntry(blocks);
        if (fit != null) {
            long size = fit.getKey();
            long start = fit.getValue().first();
            removeFree(start, size);
            if (size > blocks) addFree(start + blocks, size - blocks);
            return start;
        }
        if (end + blocks > capBlocks)
            throw new PoolFullException("the chunk pool is full: " + (end * BLOCK >> 20) + " MiB used of a cap of " + (capBlocks * BLOCK >> 20)
                    + " MiB (poolCap in config.json); remove images or raise the cap");
        long start = end;
        end += blocks;
        return start;
    }

    /**
     * Reserves blocks that end at or before limit (a block number): the smallest free extent that fits there, else the
     * end of the file. For compressed extents, which EROFS addresses as uniaddr + block in 32 bits (decision 50), so
     * they must lie lower in the pool than chunks need to.
     */
    public synchronized long allocateBelow(long blocks, long limit) throws PoolFullException {
        if (blocks <= 0) throw new IllegalArgumentException("cannot allocate " + blocks + " blocks: a chunk takes at least one");
        for (Map.Entry<Long, TreeSet<Long>> fit = freeBySize.ceilingEntry(blocks); fit != null; fit = freeBySize.higherEntry(fit.getKey())) {
            long size = fit.getKey();
            long start = fit.getValue().first(); // the lowest of this size
            if (start + blocks > limit) continue;
            removeFree(start, size);
            if (size > blocks) addFree(start + blocks, size - blocks);
            return start;
        }
        if (end + blocks > Math.min(capBlocks, limit))
            throw new PoolFullException("the chunk pool is full for compressed chunks: " + (end * BLOCK >> 20) + " MiB used of a cap of "
                    + (Math.min(capBlocks, limit) * BLOCK >> 20) + " MiB; remove images or raise the cap");
        long start = end;
        end += blocks;
        return start;
    }

    /** Gives an extent back: its blocks are punched out of the file and reusable. */
    public synchronized void free(Extent e) throws IOException {
        punch(e.start(), e.blocks());
        long start = e.start(), blocks = e.blocks();
        Map.Entry<Long, Long> before = freeByStart.floorEntry(start - 1);
        if (before != null && before.getKey() + before.getValue() == start) {
            removeFree(before.getKey(), before.getValue());
            start = before.getKey();
            blocks += before.getValue();
        }
        Long afterSize = freeByStart.get(start + blocks);
        if (afterSize != null) {
            removeFree(start + blocks, afterSize);
            blocks += afterSize;
        }
        if (start + blocks == end) {
            end = start; // the tail shrinks instead of keeping a free extent at the end
        } else {
            addFree(start, blocks);
        }
    }

    /** Extends the file (sparsely) over every allocated block, so reserved extents lie inside it. */
    public synchronized void extendToEnd() throws IOException {
        if (channel.size() >= end * BLOCK) return;
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            if (f.length() < end * BLOCK) f.setLength(end * BLOCK);
        }
    }

    public void write(long block, ByteBuffer data) throws IOException {
        long pos = block * BLOCK, from = pos;
        unsynced(pos, pos + data.remaining());
        while (data.hasRemaining()) pos += channel.write(data, pos);
        wrote(from, pos);
    }

    /** Dirty bytes after which writeback of what was written is started (sync_file_range), before any sync() asks. */
    static final long WRITEBACK_BATCH = 8 << 20;
    // bytes written since writeback was last started and the bounds of their ranges, guarded by itself
    private final long[] pendingWriteback = {0, Long.MAX_VALUE, 0};

    /**
     * Starts writeback (SYNC_FILE_RANGE_WRITE, which does not wait) of every WRITEBACK_BATCH bytes written: a commit's
     * fdatasync then waits for what is still in flight, not for all of its chunks to be written out from the start,
     * and the disk works while the chunks are still being hashed (decision 75). Durability stays with sync(): this
     * only starts it earlier. Batched, not per chunk: most chunks are a few KiB, and the ranges of a batch are usually
     * adjacent, so the kernel writes them in large requests.
     */
    private void wrote(long from, long to) {
        long start, end;
        synchronized (pendingWriteback) {
            long[] p = pendingWriteback;
            p[0] += to - from;
            p[1] = Math.min(p[1], from);
            p[2] = Math.max(p[2], to);
            if (p[0] < WRITEBACK_BATCH) return;
            start = p[1];
            end = p[2];
            p[0] = 0;
            p[1] = Long.MAX_VALUE;
            p[2] = 0;
        }
        try {
            Libc.syncFileRange(fd, start, end - start, Libc.SYNC_FILE_RANGE_WRITE);
        } catch (Errno e) { // only a head start: sync() makes the bytes durable either way
            log.debug("starting writeback of the pool's {}+{}: {}", start, end - start, e.getMessage());
        }
    }

    // byte ranges written and not yet made durable by a sync() (write sequence -> {from, to}): what a trimmer of the
    // pool's page cache leaves alone, since POSIX_FADV_DONTNEED starts writeback of the dirty pages it meets (decision 68)
    private final TreeMap<Long, long[]> unsynced = new TreeMap<>();
    private long writes;

    private void unsynced(long from, long to) {
        synchronized (unsynced) {
            unsynced.put(writes++, new long[] {from, to});
        }
    }

    /**
     * The byte range [from, to) that holds every write not yet made durable by {@link #sync()} (the bounds of them
     * all), or null when every write is; a write registers before it starts.
     */
    public long[] unsyncedBounds() {
        synchronized (unsynced) {
            if (unsynced.isEmpty()) return null;
            long from = Long.MAX_VALUE, to = 0;
            for (long[] r : unsynced.values()) {
                from = Math.min(from, r[0]);
                to = Math.max(to, r[1]);
            }
            return new long[] {from, to};
        }
    }

    private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(BLOCK).asReadOnlyBuffer();
    /** Chunks up to this are written as one padded copy (most of a rootfs's files are a few KiB). */
    private static final int SMALL = 64 << 10;

    /**
     * Writes data at block and zeroes the rest of its last block: whole blocks, as a padded copy would, without
     * copying data (a fetched chunk is up to 4 MiB, and lazy pulls write tens of them while a pull runs).
     */
    public void writePadded(long block, byte[] data) throws IOException {
        int tail = (int) ((BLOCK - data.length % BLOCK) % BLOCK);
        if (tail > 0 && data.length <= SMALL) { // a small chunk: one write of a padded copy costs less than a second write
            write(block, ByteBuffer.wrap(Arrays.copyOf(data, data.length + tail)));
            return;
        }
        write(block, ByteBuffer.wrap(data));
        if (tail == 0) return;
        ByteBuffer z = ZEROS.duplicate().limit(tail);
        long pos = block * BLOCK + data.length;
        unsynced(pos, pos + tail);
        while (z.hasRemaining()) pos += channel.write(z, pos);
    }

    public void read(long block, ByteBuffer dst) throws IOException {
        long pos = block * BLOCK;
        while (dst.hasRemaining()) {
            int n = channel.read(dst, pos);
            if (n < 0) throw new IOException("pool ends before block " + block);
            pos += n;
        }
    }

    /** Makes written chunks durable (fdatasync) before any row may name them. */
    public void sync() throws IOException {
        long upTo;
        synchronized (unsynced) {
            upTo = writes;
        }
        channel.force(false);
        synchronized (unsynced) { // what was written before the fdatasync began is durable now
            unsynced.headMap(upTo).clear();
        }
    }

    /**
     * Drops the pool's cached pages of extents written and synced: layers read the pool with direct I/O
     * (LayerMounter's directio), so what the daemon wrote would otherwise stay cached, unread, beside the copy in
     * the layers' own page cache. Pages still dirty are only queued for writeback, never lost. Adjacent extents go
     * as one call.
     */
    public void dropCached(List<Extent> written) {
        if (written.isEmpty()) return;
        List<Extent> sorted = written.stream().sorted((a, b) -> Long.compare(a.start(), b.start())).toList();
        long start = sorted.getFirst().start(), end = sorted.getFirst().end();
        try {
            for (Extent e : sorted.subList(1, sorted.size())) {
                if (e.start() <= end) {
                    end = Math.max(end, e.end());
                    continue;
                }
                Libc.posixFadvise(fd, start * BLOCK, (end - start) * BLOCK, Libc.POSIX_FADV_DONTNEED);
                start = e.start();
                end = e.end();
            }
            Libc.posixFadvise(fd, start * BLOCK, (end - start) * BLOCK, Libc.POSIX_FADV_DONTNEED);
        } catch (Errno e) { // only memory is at stake: the kernel reclaims those pages under pressure anyway
            log.debug("dropping the pool's cached pages: {}", e.getMessage());
        }
    }

    public synchronized long endBlock() { return end; }

    public synchronized long freeBlocks() {
        return freeByStart.values().stream().mapToLong(Long::longValue).sum();
    }

    public synchronized List<Extent> freeExtents() {
        return freeByStart.entrySet().stream().map(e -> new Extent(e.getKey(), e.getValue())).toList();
    }

    public long fileSize() throws IOException { return channel.size(); }

    int fdForTests() { return fd; }

    private void punch(long start, long blocks) throws IOException {
        long size = channel.size();
        long from = start * BLOCK;
        if (from >= size) return;
        long len = Math.min(blocks * BLOCK, size - from);
        try {
            Libc.fallocate(fd, Libc.FALLOC_FL_PUNCH_HOLE | Libc.FALLOC_FL_KEEP_SIZE, from, len);
        } catch (Errno e) {
            if (e.errno() == Errno.EOPNOTSUPP) {
                log.warn("the filesystem under {} cannot punch holes: freed chunks keep their disk space until reused", file);
                return;
            }
            throw e;
        }
    }

    private void addFree(long start, long blocks) {
        freeByStart.put(start, blocks);
        freeBySize.computeIfAbsent(blocks, k -> new TreeSet<>()).add(start);
    }

    private void removeFree(long start, long blocks) {
        freeByStart.remove(start);
        TreeSet<Long> s = freeBySize.get(blocks);
        s.remove(start);
        if (s.isEmpty()) freeBySize.remove(blocks);
    }

    @Override
    public void close() throws IOException {
        channel.close();
        Libc.close(fd);
    }
}
