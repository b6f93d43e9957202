package org.dedupsnapshotter.daemon.lazypull;

import com.sun.net.httpserver.HttpServer;
import org.dedupsnapshotter.api.LayerFormat;
import org.dedupsnapshotter.api.Usage;
import org.dedupsnapshotter.lazy.fetch.Members;
import org.dedupsnapshotter.lazy.fetch.Registries;
import org.dedupsnapshotter.lazy.registry.RegistryException;
import org.dedupsnapshotter.lazy.registry.RetryPolicy;
import org.dedupsnapshotter.storage.Chunk;
import org.dedupsnapshotter.storage.ChunkIndexer;
import org.dedupsnapshotter.storage.ChunkPool;
import org.dedupsnapshotter.storage.Digest;
import org.dedupsnapshotter.storage.LazyLayer;
import org.dedupsnapshotter.storage.LazyLayerTable;
import org.dedupsnapshotter.storage.MetaStore;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The lazy fetch path against a registry on the loopback: a lazy layer of two chunks, each a gzip member of its blob;
 * a read's fetch brings the chunk's bytes into its extent in the pool, records it present, and once the layer's last
 * chunk is in says the layer is complete. Bytes that do not hash to the chunk's digest are an error, never the
 * chunk. No root: the store, the pool and the blob live in temp files and memory.
 */
class ChunkFetcherTest {
    @TempDir
    Path dir;
    HttpServer server;
    /** What the registry serves, by blob digest; the Range headers it was asked for. */
    final Map<String, byte[]> blobs = new HashMap<>();
    final List<String> ranges = new CopyOnWriteArrayList<>();
    /** Faults the registry answers the next requests with, in order: an HTTP status, or {@link #STALL}. */
    final Queue<Integer> faults = new ConcurrentLinkedQueue<>();
    /** A body that sends half its bytes, then nothing for a minute. */
    static final int STALL = 0;
    /** While closed, answers wait for it to open. */
    volatile CountDownLatch gate = new CountDownLatch(0);
    MetaStore store;
    ChunkPool pool;
    ChunkIndexer indexer;
    AbsentChunks absent;
    PresentRecorder present;
    ChunkFetcher fetcher;
    final List<Long> completed = new CopyOnWriteArrayList<>();
    final AtomicInteger allComplete = new AtomicInteger();

    final byte[] one = random(5000, 1), two = random(3000, 2);
    final Digest d1 = ChunkIndexer.sha256(one), d2 = ChunkIndexer.sha256(two);
    long layerId;
    String repository;

    @BeforeEach
    void open() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/v2/", ex -> {
            try (ex) {
                String path = ex.getRequestURI().getPath();
                byte[] blob = blobs.get(path.substring(path.lastIndexOf('/') + 1));
                String range = ex.getRequestHeaders().getFirst("Range");
                if (blob == null || range == null) {
                    ex.sendResponseHeaders(404, -1);
                    return;
                }
                ranges.add(range);
                gate.await();
                Integer fault = faults.poll();
                if (fault != null && fault != STALL) {
                    ex.getResponseHeaders().add("Retry-After", "0");
                    ex.sendResponseHeaders(fault, -1);
                    return;
                }
                String[] fromTo = range.substring("bytes=".length()).split("-");
                int from = Integer.parseInt(fromTo[0]), to = Math.min(blob.length - 1, Integer.parseInt(fromTo[1]));
                ex.getResponseHeaders().add("Content-Range", "bytes " + from + "-" + to + "/" + blob.length);
                ex.sendResponseHeaders(206, to - from + 1);
                try (OutputStream out = ex.getResponseBody()) {
                    if (fault != null) { // STALL
                        out.write(blob, from, (to - from + 1) / 2);
                        out.flush();
                        Thread.sleep(60_000);
                    }
                    out.write(blob, from, to - from + 1);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        server.setExecutor(Executors.newVirtualThreadPerTaskExecutor()); // a stalled answer must not hold up the next
        server.start();
        repository = "127.0.0.1:" + server.getAddress().getPort() + "/library/app";
        store = MetaStore.open(dir.resolve("m.db"));
        pool = ChunkPool.open(dir.resolve("pool/pool.0"), 0);
        indexer = new ChunkIndexer(pool, store, 2, 4L << 20);
    }

    /** The parts of the fetch path, as Lazy.start wires them. */
    void start(long readAhead) { start(readAhead, Duration.ofSeconds(10)); }

    void start(long readAhead, Duration deadline) {
        PieceLedger pieces = new PieceLedger();
        absent = new AbsentChunks(pieces);
        absent.onCompletion(new AbsentChunks.Completion() {
            @Override
            public void layerComplete(long id) { completed.add(id); }

            @Override
            public void allComplete() { allComplete.incrementAndGet(); }
        });
        present = new PresentRecorder(pool, store);
        fetcher = new ChunkFetcher(pool, indexer, new Registries(List.of(), Duration.ofSeconds(10)), absent, pieces, present, FetchEvents.NONE, readAhead, deadline);
    }

    @AfterEach
    void close() throws IOException {
        if (fetcher != null) fetcher.close();
        if (present != null) present.close();
        server.stop(0);
        indexer.close();
        pool.close();
        store.close();
    }

    static byte[] random(int length, long seed) {
        byte[] b = new byte[length];
        new Random(seed).nextBytes(b);
        return b;
    }

    static byte[] gzip(byte[] data) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (GZIPOutputStream z = new GZIPOutputStream(out)) {
            z.write(data);
        }
        return out.toByteArray();
    }

    /**
     * Commits a lazy layer of chunks one and two whose members, in this order, are the blob the registry serves (the
     * members given: what the blob really holds); the loader knows its absent chunks.
     */
    void layer(byte[] member1, byte[] member2) throws IOException {
        byte[] blob = new byte[member1.length + member2.length];
        System.arraycopy(member1, 0, blob, 0, member1.length);
        System.arraycopy(member2, 0, blob, member1.length, member2.length);
        String blobDigest = Members.sha256(blob);
        blobs.put(blobDigest, blob);
        ChunkIndexer.Indexed r = indexer.reserve(List.of(new ChunkIndexer.Need(d1, one.length), new ChunkIndexer.Need(d2, two.length)), one.length + two.length);
        List<LazyLayerTable.Absent> absentChunks = new ArrayList<>();
        layerId = store.write("create lazy snapshot", tx -> { // as RemoteLayers records a lazy layer
            long id = tx.snapshots().insertCommitted("layer", 0, new Usage(one.length + two.length, 3), LayerFormat.EROFS, r.chunks.logicalBytes());
            Map<Digest, Chunk> rows = tx.chunks().addRefs(id, r.chunks);
            tx.lazyLayers().insert(id, new LazyLayer(id, repository, blobDigest, "sha256:" + "0".repeat(64)));
            absentChunks.addAll(tx.lazyLayers().addSources(id, rows,
                    Map.of(d1, new LazyLayerTable.ChunkSource(0, 0, member1.length), d2, new LazyLayerTable.ChunkSource(0, member1.length, member2.length))));
            return id;
        });
        r.committed();
        Map<Long, LazyLayer> layers = store.read(tx -> tx.lazyLayers().all());
        for (LazyLayerTable.Absent a : absentChunks) absent.add(a, layers);
    }

    byte[] inPool(AbsentChunk c) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(c.length());
        pool.read(c.block(), b);
        return b.array();
    }

    /** The pool holds nothing at c's extent: it ends before it, or has zeros there. */
    boolean nothingAt(AbsentChunk c) throws IOException {
        if (pool.fileSize() <= c.block() * ChunkPool.BLOCK) return true;
        return Arrays.equals(new byte[c.length()], inPool(c));
    }

    boolean recordedPresent(Digest d) throws InterruptedException {
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (System.nanoTime() < until) {
            if (store.read(tx -> tx.chunks().find(d)).orElseThrow().present()) return true;
            Thread.sleep(20);
        }
        return false;
    }

    @Test
    void aFetchedChunkLandsInItsExtentIsRecordedPresentAndTheLastOneCompletesItsLayer() throws Exception {
        start(0); // no read-ahead: each chunk alone
        layer(gzip(one), gzip(two));
        AbsentChunk c1 = absent.get(d1), c2 = absent.get(d2);
        assertNotNull(c1);
        assertTrue(absent.incomplete());

        fetcher.fetch(c1, true).get(10, TimeUnit.SECONDS);
        assertArrayEquals(one, inPool(c1), "the chunk's bytes are not at its block");
        assertNull(absent.get(d1), "a fetched chunk is still absent");
        assertTrue(recordedPresent(d1), "the fetched chunk was not recorded present");
        assertTrue(completed.isEmpty(), "the layer was complete with a chunk still absent");
        assertEquals(List.of("bytes=0-" + (gzip(one).length - 1)), ranges, "one Range request for the chunk's member alone");

        fetcher.fetch(c2, true).get(10, TimeUnit.SECONDS);
        assertArrayEquals(two, inPool(c2));
        assertTrue(recordedPresent(d2));
        assertEquals(List.of(layerId), completed, "the layer's last chunk did not complete it");
        assertEquals(1, allComplete.get(), "no lazy layer misses chunks: the holder may go");
        assertFalse(absent.incomplete());
    }

    @Test
    void aReadBringsTheChunksRightAfterItAlongInOneRequest() throws Exception {
        start(1L << 20);
        layer(gzip(one), gzip(two));
        AbsentChunk c2 = absent.get(d2);
        fetcher.fetch(absent.get(d1), true).get(10, TimeUnit.SECONDS);
        assertEquals(1, ranges.size(), "read-ahead made more than one request: " + ranges);
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        // the layer's completion is announced after its last chunk leaves the absent set: wait for both
        while ((absent.get(d2) != null || completed.isEmpty()) && System.nanoTime() < until) Thread.sleep(10);
        assertArrayEquals(two, inPool(c2), "the chunk read ahead is not in its extent");
        assertEquals(List.of(layerId), completed);
    }

    @Test
    void bytesThatDoNotHashToTheChunksDigestAreAnErrorNotTheChunk() throws Exception {
        start(0);
        byte[] forged = one.clone();
        forged[100] ^= 1; // the same length, other bytes
        layer(gzip(forged), gzip(two));
        AbsentChunk c1 = absent.get(d1);
        ExecutionException e = assertThrows(ExecutionException.class, () -> fetcher.fetch(c1, true).get(10, TimeUnit.SECONDS));
        assertInstanceOf(Members.BadDigestException.class, e.getCause());
        assertTrue(nothingAt(c1), "bytes of a failed check were written into the pool");
        assertNotNull(absent.get(d1), "a chunk whose fetch failed is no longer absent");
        Thread.sleep(300); // a batch of the recorder would have been written by now
        assertFalse(store.read(tx -> tx.chunks().find(d1)).orElseThrow().present(), "a chunk whose fetch failed was recorded present");
        assertTrue(completed.isEmpty());
    }

    @Test
    void fiveHundredsAndA429AreRetriedAndTheReaderGetsTheRightBytes() throws Exception {
        start(0);
        layer(gzip(one), gzip(two));
        AbsentChunk c1 = absent.get(d1);
        faults.addAll(List.of(503, 503, 429, 500));
        fetcher.fetch(c1, true).get(10, TimeUnit.SECONDS);
        assertArrayEquals(one, inPool(c1));
        assertEquals(5, ranges.size(), "four faults, then the answer: " + ranges);
    }

    @Test
    void aStalledBodyIsGivenUpAndAskedForAgainWithinTheDeadline() throws Exception {
        start(0, Duration.ofSeconds(3));
        layer(gzip(one), gzip(two));
        AbsentChunk c1 = absent.get(d1);
        faults.add(STALL);
        long t0 = System.nanoTime();
        fetcher.fetch(c1, true).get(10, TimeUnit.SECONDS);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertArrayEquals(one, inPool(c1));
        assertEquals(2, ranges.size(), ranges.toString());
        assertTrue(ms < 3000, "the stalled body was given up after " + ms + " ms, past the deadline");
    }

    @Test
    void aNotFoundIsNotRetried() throws Exception {
        start(0);
        layer(gzip(one), gzip(two));
        faults.add(404);
        ExecutionException e = assertThrows(ExecutionException.class, () -> fetcher.fetch(absent.get(d1), true).get(10, TimeUnit.SECONDS));
        assertInstanceOf(RegistryException.class, e.getCause());
        assertEquals(1, ranges.size());
    }

    @Test
    void concurrentReadersOfOneChunkShareOneRequest() throws Exception {
        start(0);
        layer(gzip(one), gzip(two));
        AbsentChunk c1 = absent.get(d1);
        gate = new CountDownLatch(1);
        List<CompletableFuture<Void>> readers = new ArrayList<>();
        for (int i = 0; i < 8; i++) readers.add(fetcher.fetch(c1, true));
        Thread.sleep(200);
        gate.countDown();
        for (CompletableFuture<Void> r : readers) r.get(10, TimeUnit.SECONDS);
        assertEquals(1, ranges.size(), "eight readers of one chunk made more than one request: " + ranges);
        assertArrayEquals(one, inPool(c1));
    }

    @Test
    void aRegistryFailingPastTheDeadlineFailsTheFetchThereAndTheNextReaderFetchesAgain() throws Exception {
        start(0, Duration.ofSeconds(1));
        layer(gzip(one), gzip(two));
        AbsentChunk c1 = absent.get(d1);
        for (int i = 0; i < 1000; i++) faults.add(503);
        long t0 = System.nanoTime();
        ExecutionException e = assertThrows(ExecutionException.class, () -> fetcher.fetch(c1, true).get(10, TimeUnit.SECONDS));
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(RetryPolicy.retryable(e.getCause()), e.getCause().toString());
        assertTrue(ms >= 950 && ms < 3000, "gave up after " + ms + " ms, not at the 1 s deadline");
        assertTrue(ranges.size() > 2, "not retried: " + ranges);
        faults.clear();
        fetcher.fetch(c1, true).get(10, TimeUnit.SECONDS);
        assertArrayEquals(one, inPool(c1), "the chunk was left pending, or not fetched again");
    }
}
