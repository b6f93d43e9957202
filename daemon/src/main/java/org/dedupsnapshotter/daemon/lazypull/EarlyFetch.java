package org.dedupsnapshotter.daemon.lazypull;

import org.dedupsnapshotter.lazy.fetch.Members;
import org.dedupsnapshotter.lazy.fetch.Registries;
import org.dedupsnapshotter.lazy.registry.RegistryClient;
import org.dedupsnapshotter.lazy.toc.LazyLayerFormat;
import org.dedupsnapshotter.lazy.toc.Toc;
import org.dedupsnapshotter.storage.Digest;
import org.dedupsnapshotter.storage.MetaStore;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * An image's start-up chunks on their way from its first lazy Prepare, not from each layer's own.
 * <p>
 * containerd prepares an image's layers one after another: were a layer's shipped trace (its TOC's prefetch region)
 * to wait for that layer's commit, it would wait for the TOC and metadata of every layer below it, ~0.3 s of a
 * link left idle (decision 22). CRI's labels on the first Prepare name the image's manifest: from it, every converted layer's TOC
 * is fetched at once (kept here for that layer's own Prepare), and each prefetch region is staged at once and streamed
 * when the image's TOCs are in (a Prepare waits for its TOC; the start-up chunks wait for the Prepares anyway), its
 * chunks checked against their digests and held in memory until their layer is committed and writes them into the
 * pool (the loader's layerAdded). Chunks the node has already are not fetched. Everything here is an
 * optimisation: whatever fails or is not here yet, the layer's own Prepare and the loader fetch it.
 */
public final class EarlyFetch {
    private static final Logger log = LoggerFactory.getLogger(EarlyFetch.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    /**
     * Chunk bytes held for layers not committed yet, at most: beyond it traced chunks wait for their layer as before.
     * They are on the heap, which the launcher keeps small (-Xmx384m: 96 MiB here).
     */
    static final long MAX_STAGED = Math.min(256L << 20, Runtime.getRuntime().maxMemory() / 4);
    /** What a pull never collected (it failed, or its layers were present) is dropped after this. */
    static final long EXPIRY_NANOS = 120_000_000_000L;
    /**
     * An image's first Prepare starts its fetch; its other layers' Prepares, within this, do not start another (each
     * would fetch again what the first one's layers have taken meanwhile). A later pull of it starts again.
     */
    static final long BEGUN_NANOS = 30_000_000_000L;

    /**
     * How long a staged region waits for the image's other TOCs at most before it streams (they come first; a slow
     * one must not hold the start-up chunks back for long).
     */
    static final long TOCS_FIRST_MILLIS = 500;

    /** Fetches and checks a layer's TOC from the manifest's annotations for it (RemoteLayers#fetchToc). */
    public interface TocFetcher { Toc fetch(String source, String blob, Map<String, String> annotations) throws IOException; }

    private record Staged(CompletableFuture<byte[]> data, int length, long at) {}
    /**
     * A staged member: a whole chunk (pieceLength 0) or one of its pieces (Toc.Prefetch), with the digest its bytes were
     * checked against (the chunk's, or the piece's): a layer claiming other bytes for the same piece takes nothing here.
     */
    private record Key(Digest chunk, int pieceOffset, int pieceLength, String dataDigest) {
        static Key of(Digest chunk, Toc.Prefetch p) { return new Key(chunk, p.pieceOffset(), p.pieceLength(), p.dataDigest()); }
    }
    private record EarlyToc(String tocDigest, CompletableFuture<Toc> toc, long at) {}

    private final Registries registries;
    private final MetaStore store;
    private final TocFetcher tocs;
    /** Whether anything is fetched before it is read (lazy.prefetchConcurrency 0: nothing is, early neither). */
    private final boolean fetchAhead;
    private final FetchEvents events;
    private final Map<String, Long> imagesBegun = new ConcurrentHashMap<>();
    private final Map<String, EarlyToc> tocsByBlob = new ConcurrentHashMap<>();
    private final Map<Key, Staged> staged = new ConcurrentHashMap<>();
    private final AtomicLong stagedBytes = new AtomicLong();

    public EarlyFetch(Registries registries, MetaStore store, TocFetcher tocs, boolean fetchAhead, FetchEvents events) {
        this.registries = registries;
        this.store = store;
        this.tocs = tocs;
        this.fetchAhead = fetchAhead;
        this.events = events;
    }

    /** A lazy Prepare's labels: the first one of an image (CRI's labels name its manifest) starts its layers' fetches. */
    public void imageSeen(Map<String, String> labels) {
        String ref = labels.get(LazyLayerFormat.CRI_IMAGE_REF), manifest = labels.get(LazyLayerFormat.CRI_MANIFEST_DIGEST);
        if (ref == null || manifest == null || !fetchAhead) return; // prefetchConcurrency 0: nothing ahead of reads
        expire();
        if (imagesBegun.putIfAbsent(manifest, System.nanoTime()) != null) return;
        String source;
        try {
            source = Registries.repositoryOf(ref);
        } catch (RuntimeException e) {
            return;
        }
        Thread.ofVirtual().name("early-fetch").start(() -> {
            try {
                begin(source, manifest);
            } catch (IOException | RuntimeException e) {
                log.debug("early fetch of image {} in {}: {}", manifest, source, e.getMessage());
            }
            try { // what this pull's layers did not take (it failed, or they were present) goes, even if no pull follows
                Thread.sleep(Duration.ofNanos(EXPIRY_NANOS).plusSeconds(1));
            } catch (InterruptedException e) {
                return;
            }
            expire();
        });
    }

    /**
     * A layer's TOC, fetched once however many ask: the layer's own Prepare and this class's thread for the image
     * (whoever comes first fetches, the other waits for it; a TOC is parsed on 2 cores in tens of milliseconds, and a
     * large one costs link time the start-up chunks need). Kept until that Prepare is done with it ({@link #tocUsed}),
     * or for {@link #EXPIRY_NANOS} if it never comes (the layer was here already).
     */
    public Toc toc(String blob, String tocDigest, Callable<Toc> fetch) throws IOException {
        EarlyToc mine = new EarlyToc(tocDigest, new CompletableFuture<>(), System.nanoTime());
        EarlyToc t = tocsByBlob.putIfAbsent(blob, mine);
        if (t != null && t.tocDigest().equals(tocDigest)) {
            try {
                return t.toc().get();
            } catch (Exception e) { // the other's fetch failed: try ourselves
                return call(fetch);
            }
        }
        if (t != null) return call(fetch); // another TOC for this blob (a different image's annotations): not shared
        try {
            Toc toc = call(fetch);
            mine.toc().complete(toc);
            return toc;
        } catch (IOException | RuntimeException e) {
            mine.toc().completeExceptionally(e);
            tocsByBlob.remove(blob, mine);
            throw e;
        }
    }

    /**
     * The layer's Prepare is done with its TOC: it is not kept any longer (a large layer's parsed TOC is tens of MB of
     * a small heap). The image's thread asked for it long before (right after the manifest), so nobody fetches it twice.
     */
    public void tocUsed(String blob) { tocsByBlob.remove(blob); }

    private static Toc call(Callable<Toc> fetch) throws IOException {
        try {
            return fetch.call();
        } catch (IOException | RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IOException(e);
        }
    }

    /**
     * The checked bytes of a prefetch entry fetched early (maybe still on their way), taken out of here for the layer
     * whose TOC lists p; null if none: a whole chunk of digest d (pieceLength 0), or the piece of it p describes. A
     * piece is staged by whichever TOC of the image named it first, so its bytes are checked again, on checks,
     * against the digest the taking layer's own TOC gives (a mismatch fails the future: the piece is not used). A
     * whole chunk's key is its own digest, against which it was checked already.
     */
    public CompletableFuture<byte[]> take(Digest d, Toc.Prefetch p, Executor checks) {
        Staged s = staged.remove(Key.of(d, p));
        if (s == null) return null;
        released(s);
        if (p.whole()) return s.data();
        String what = "early-fetched piece at " + p.pieceOffset() + " of chunk " + d;
        return s.data().thenApplyAsync(data -> {
            if (data.length != p.pieceLength()) throw new CompletionException(new IOException(what + " has " + data.length + " bytes, not " + p.pieceLength()));
            try {
                Members.verify(data, p.pieceDigest(), what);
            } catch (IOException e) {
                throw new CompletionException(e);
            }
            return data;
        }, checks);
    }

    private void begin(String source, String manifestDigest) throws IOException {
        String[] hr = Registries.split(source);
        RegistryClient.Fetched m = registries.client(hr[0], hr[1]).manifest(hr[1], manifestDigest);
        JsonNode layers = JSON.readTree(m.body()).path("layers");
        List<JsonNode> converted = new ArrayList<>();
        for (JsonNode l : layers) if (l.path("annotations").has(LazyLayerFormat.TOC_DIGEST) && !l.path("digest").asText().isEmpty()) converted.add(l);
        // the image's TOCs before its regions: each Prepare waits for its layer's TOC, and a TOC sharing the link with
        // megabytes of regions arrives late (python's base layer: 33-37 ms alone, 55-63 ms beside the regions)
        CountDownLatch tocsIn = new CountDownLatch(converted.size());
        List<Thread> threads = new ArrayList<>();
        for (JsonNode l : converted) {
            Map<String, String> annotations = new HashMap<>();
            l.path("annotations").properties().forEach(e -> annotations.put(e.getKey(), e.getValue().asText()));
            String blob = l.path("digest").asText(), tocDigest = annotations.get(LazyLayerFormat.TOC_DIGEST);
            threads.add(Thread.ofVirtual().name("early-fetch-layer").start(() -> {
                try {
                    Toc toc;
                    try {
                        toc = toc(blob, tocDigest, () -> tocs.fetch(source, blob, annotations));
                    } finally {
                        tocsIn.countDown();
                    }
                    // staged now, streamed once the other TOCs are in: a layer committed meanwhile waits for these
                    // chunks instead of fetching them itself
                    List<Pending> region = stage(toc.prefetch);
                    if (region.isEmpty()) return;
                    try {
                        if (!tocsIn.await(TOCS_FIRST_MILLIS, TimeUnit.MILLISECONDS))
                            log.debug("early fetch of layer {}: the image's other TOCs are slow; its region starts anyway", blob);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt(); // streamed right away: its chunks are staged, someone waits for them
                    }
                    stream(source, blob, region);
                } catch (IOException | RuntimeException e) {
                    log.debug("early fetch of layer {}: {}", blob, e.getMessage());
                }
            }));
        }
        for (Thread t : threads) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    /** Tests: stages region as {@link #begin} does, each entry then arriving with the bytes given for its data digest. */
    void stageArrived(List<Toc.Prefetch> region, Map<String, byte[]> bytes) {
        for (Pending m : stage(region)) m.s().data().complete(bytes.get(m.p().dataDigest()));
    }

    /** A prefetch entry staged for the stream of its region. */
    private record Pending(Toc.Prefetch p, Staged s) {}

    /**
     * Stages a layer's prefetch region (chunks, or their pieces): each entry the node lacks gets a place here that its
     * layer's loader takes ({@link #take}) and waits on, until {@link #stream} fills it. In blob order.
     */
    private List<Pending> stage(List<Toc.Prefetch> region) {
        List<Toc.Prefetch> wanted = new ArrayList<>();
        List<Digest> digests = new ArrayList<>();
        for (Toc.Prefetch p : region) {
            Digest d = Digest.parse(p.digest());
            if (d != null && sizedSanely(p)) {
                wanted.add(p);
                digests.add(d);
            }
        }
        if (wanted.isEmpty()) return List.of();
        Set<Digest> known = store.knownChunks(digests); // the node has these (maybe not fetched yet: the loader's business)
        List<Pending> mine = new ArrayList<>();
        for (int i = 0; i < wanted.size(); i++) {
            Toc.Prefetch p = wanted.get(i);
            if (known.contains(digests.get(i))) continue;
            if (stagedBytes.addAndGet(p.dataLength()) > MAX_STAGED) {
                stagedBytes.addAndGet(-p.dataLength());
                break;
            }
            Staged s = new Staged(new CompletableFuture<>(), p.dataLength(), System.nanoTime());
            if (staged.putIfAbsent(Key.of(digests.get(i), p), s) != null) {
                stagedBytes.addAndGet(-p.dataLength());
                continue;
            }
            mine.add(new Pending(p, s));
        }
        mine.sort(Comparator.comparingLong(m -> m.p().blobOffset())); // rank order is blob order in a region
        return mine;
    }

    /**
     * Sizes a TOC claims are bounded before they size anything: a negative one would lower the staged total and
     * defeat {@link #MAX_STAGED}, a huge one would be a buffer the heap cannot hold. Anything else is left to the loader.
     */
    private static boolean sizedSanely(Toc.Prefetch p) {
        return p.dataLength() > 0 && p.dataLength() <= Members.MAX_BUFFER && p.pieceOffset() >= 0
                && p.blobOffset() >= 0 && p.blobLength() > 0 && p.blobLength() <= Members.MAX_BUFFER;
    }

    /** Streams a layer's staged region in one request, back to back, completing each entry once its member is checked. */
    private void stream(String source, String blob, List<Pending> mine) throws IOException {
        long t0 = System.nanoTime(), from = mine.getFirst().p().blobOffset();
        long length = mine.getLast().p().blobOffset() + mine.getLast().p().blobLength() - from, chunkBytes = 0;
        long at = from;
        try (InputStream in = registries.rangeStream(source, blob, from, length)) {
            for (Pending m : mine) {
                Toc.Prefetch p = m.p();
                byte[] member = Members.read(in, at, p.blobOffset(), p.blobLength());
                at = p.blobOffset() + p.blobLength();
                byte[] data = Members.chunk(member, p.dataLength(), p.dataDigest(),
                        (p.whole() ? "traced chunk " : "traced piece at " + p.pieceOffset() + " of chunk ") + p.digest() + " of blob " + blob);
                m.s().data().complete(data);
                chunkBytes += p.dataLength();
            }
            counted(length, chunkBytes, System.nanoTime() - t0);
            log.debug("early fetch: {} traced chunk(s), {} bytes ({} compressed) of {} in {} ms", mine.size(), chunkBytes, length, blob,
                    (System.nanoTime() - t0) / 1_000_000);
        } catch (IOException | RuntimeException | Error e) { // an Error too: whoever waits for these chunks must not wait forever
            counted(at - from, chunkBytes, System.nanoTime() - t0); // what did arrive counts
            IOException failure = e instanceof IOException io ? io : new IOException(e);
            for (Pending m : mine) m.s().data().completeExceptionally(failure); // no effect on those already complete
            if (e instanceof Error err) throw err;
            throw failure;
        }
    }

    /** Bytes brought here count as background fetching, and as early. */
    private void counted(long compressedBytes, long chunkBytes, long nanos) {
        events.fetched(false, compressedBytes, chunkBytes, nanos);
        events.fetchedEarly(chunkBytes);
    }

    /** Drops what no pull collected in time. */
    private void expire() {
        long now = System.nanoTime();
        imagesBegun.values().removeIf(t -> now - t > BEGUN_NANOS);
        tocsByBlob.values().removeIf(t -> now - t.at() > EXPIRY_NANOS);
        for (var e : staged.entrySet())
            if (now - e.getValue().at() > EXPIRY_NANOS && staged.remove(e.getKey(), e.getValue())) released(e.getValue());
    }

    /** Its bytes no longer count against MAX_STAGED once whoever took them has them (or they failed). */
    private void released(Staged s) { s.data().whenComplete((b, e) -> stagedBytes.addAndGet(-s.length())); }
}
