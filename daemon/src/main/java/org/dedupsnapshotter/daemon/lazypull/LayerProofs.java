package org.dedupsnapshotter.daemon.lazypull;

import org.dedupsnapshotter.lazy.fetch.Members;
import org.dedupsnapshotter.lazy.fetch.Registries;
import org.dedupsnapshotter.lazy.toc.LazyLayerFormat;
import org.dedupsnapshotter.lazy.toc.Toc;
import org.dedupsnapshotter.storage.Chunk;
import org.dedupsnapshotter.storage.ChunkPool;
import org.dedupsnapshotter.storage.Digest;
import org.dedupsnapshotter.storage.Extent;
import org.dedupsnapshotter.storage.LazyLayer;
import org.dedupsnapshotter.storage.LazyLayerTable.ProofState;
import org.dedupsnapshotter.storage.LazyLayerTable;
import org.dedupsnapshotter.storage.MetaStore;
import org.dedupsnapshotter.storage.Snapshot;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

/**
 * Proves each lazily committed layer to be the layer its chain id names, once its data is on the node
 * ({@link LayerProof}); a layer whose content gives another chain id is quarantined: no new Prepare or View builds on
 * it, later pulls of that chain id get their own bytes, and it stays listed (dedupctl ls, metrics) until its images
 * are removed. Until a layer is proven, only a pull of the very same TOC may share it. One proof at a time: each
 * reads the whole layer once more.
 */
public final class LayerProofs {
    private static final Logger log = LoggerFactory.getLogger(LayerProofs.class);
    private static final int MAX_ATTEMPTS = 10;

    private final MetaStore store;
    private final ChunkPool pool;
    private final Registries registries;
    private final ExecutorService worker = Executors.newSingleThreadExecutor(Thread.ofVirtual().name("layer-proof").factory());
    private final ScheduledExecutorService retries = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().name("layer-proof-retry").daemon(true).factory());
    private final Set<Long> quarantined = ConcurrentHashMap.newKeySet();
    private final Map<Long, Integer> attempts = new ConcurrentHashMap<>();
    private final Set<Long> queued = ConcurrentHashMap.newKeySet();
    /** Told when a layer is proven (it may be compacted now: decision 62). */
    private volatile Runnable onProven = () -> { };

    public LayerProofs(MetaStore store, ChunkPool pool, Registries registries) {
        this.store = store;
        this.pool = pool;
        this.registries = registries;
        store.read(tx -> tx.lazyLayers().proofs()).values().stream().filter(p -> p.state() == ProofState.QUARANTINED).forEach(p -> quarantined.add(p.snapshotId()));
    }

    /** At start: the complete lazy layers not proven yet (a restart, or layers pulled before proofs existed). */
    public void resume() {
        Set<Long> incomplete = store.read(tx -> tx.lazyLayers().absentChunksByLayer()).keySet();
        store.read(tx -> tx.lazyLayers().proofs()).values().stream()
                .filter(p -> p.state() == ProofState.UNPROVEN && !incomplete.contains(p.snapshotId()))
                .forEach(p -> schedule(p.snapshotId()));
    }

    /**
     * Proves the layer in the background; its chunks must all be in the pool. Afterwards its chunks' pages leave the
     * pool's page cache: its fetches left them there for the reads of its buffered mount (and the proof's own reads
     * found them there), but a complete layer is mounted again with direct I/O, so nothing reads them there any more.
     */
    public void schedule(long layerId) {
        if (!queued.add(layerId)) return;
        worker.execute(() -> {
            queued.remove(layerId);
            try {
                prove(layerId);
            } catch (IOException | RuntimeException e) {
                int n = attempts.merge(layerId, 1, Integer::sum);
                if (n >= MAX_ATTEMPTS) {
                    log.warn("layer id={} stays unproven after {} attempts: {} (tried again at the next start)", layerId, n, e.getMessage());
                    store.write("record proof", tx -> tx.lazyLayers().setProof(layerId, ProofState.UNPROVEN, "not proven: " + e.getMessage()));
                    return;
                }
                log.info("proving layer id={} failed ({}); trying again in {} s", layerId, e.getMessage(), 5L << Math.min(n, 5));
                retries.schedule(() -> schedule(layerId), 5L << Math.min(n, 5), TimeUnit.SECONDS);
            } finally {
                dropPoolPages(layerId);
            }
        });
    }

    /** See {@link #schedule}; pages still dirty are written first, so that they can go too. */
    private void dropPoolPages(long layerId) {
        try {
            List<Extent> extents = store.read(tx -> tx.chunks().ofLayer(layerId)).keySet().stream()
                    .filter(Chunk::present).map(Chunk::extent).toList();
            pool.sync();
            pool.dropCached(extents);
        } catch (IOException | RuntimeException e) { // only memory is at stake
            log.debug("layer id={}: dropping its chunks' pool pages: {}", layerId, e.toString());
        }
    }

    /** r runs after each proof that proves its layer (on the proof's thread: it must be quick). */
    public void onProven(Runnable r) { onProven = r; }

    public boolean isQuarantined(long layerId) { return quarantined.contains(layerId); }

    public int quarantinedCount() { return quarantined.size(); }

    public Optional<LazyLayerTable.Proof> proof(long layerId) { return store.read(tx -> tx.lazyLayers().proof(layerId)); }

    /** Marks a layer as not what it claims: nothing new is built on it, and the reason is logged and kept. */
    public void quarantine(long layerId, String reason) {
        if (!store.write("record proof", tx -> tx.lazyLayers().setProof(layerId, ProofState.QUARANTINED, reason))) return;
        quarantined.add(layerId);
        String name = store.read(tx -> tx.snapshots().byId(layerId)).map(Snapshot::name).orElse("?");
        log.error("layer {} (id={}) is quarantined: {}; containers cannot start on it any more; remove the images that use it and pull them again",
                name, layerId, reason);
    }

    /**
     * Whether a Prepare of a lazy layer with this TOC may take the layer already committed under its chain id:
     * yes if that one was proven, or is the very same TOC (the same content, chunk by chunk); never if quarantined.
     */
    public boolean mayShare(long existingId, String tocDigest) {
        if (quarantined.contains(existingId)) return false;
        Optional<LazyLayer> origin = store.read(tx -> tx.lazyLayers().find(existingId));
        if (origin.isEmpty()) return true; // not a lazy layer: containerd unpacked it and checked its diff_id
        Optional<LazyLayerTable.Proof> p = store.read(tx -> tx.lazyLayers().proof(existingId));
        if (p.isPresent() && p.get().state() == ProofState.PROVEN) return true;
        return origin.get().tocDigest().equals(tocDigest);
    }

    void prove(long layerId) throws IOException {
        Optional<Snapshot> found = store.read(tx -> tx.snapshots().byId(layerId));
        Optional<LazyLayer> origin = store.read(tx -> tx.lazyLayers().find(layerId));
        if (found.isEmpty() || origin.isEmpty()) return; // removed meanwhile
        Optional<LazyLayerTable.Proof> current = store.read(tx -> tx.lazyLayers().proof(layerId));
        if (current.isPresent() && current.get().state() != ProofState.UNPROVEN) return;
        awaitRecorded(layerId);
        Snapshot s = found.get();
        Map<String, String> labels = s.labels();
        String target = labels.getOrDefault(RemoteLayers.SNAPSHOT_REF, s.name());
        String parentChain = null;
        if (s.hasParent()) {
            Snapshot parent = store.read(tx -> tx.snapshots().byId(s.parentId())).orElseThrow(() -> new IOException("parent of layer id=" + layerId + " is gone"));
            parentChain = parent.labels().get(RemoteLayers.SNAPSHOT_REF);
            if (parentChain == null) parentChain = chainIdInName(parent.name());
            if (parentChain == null) {
                store.write("record proof", tx -> tx.lazyLayers().setProof(layerId, ProofState.UNPROVEN, "cannot be proven: its parent " + parent.name() + " carries no chain id"));
                return;
            }
        }
        long t0 = System.nanoTime();
        String source = origin.get().source(), blob = origin.get().blobDigest();
        long tocOffset = Long.parseLong(labels.get(LazyLayerFormat.TOC_OFFSET)), tocLength = Long.parseLong(labels.get(LazyLayerFormat.TOC_LENGTH));
        if (tocLength <= 0 || tocLength > Integer.MAX_VALUE) throw new IOException("TOC length " + tocLength + " out of range");
        byte[] tocJson = RegistryTocs.tocJsonFromMember(registries.range(source, blob, tocOffset, (int) tocLength), origin.get().tocDigest(), blob);
        Toc toc = Toc.parse(tocJson);
        LayerProof.Result r = LayerProof.diffId(toc, tocJson, tocOffset, tocLength, new LayerProof.Blob() {
            public byte[] range(long offset, int length) throws IOException { return registries.range(source, blob, offset, length); }

            public long size() throws IOException { return registries.blobSize(source, blob); }
        }, this::chunk);
        String chain = LayerProof.chainId(parentChain, r.diffId());
        long ms = (System.nanoTime() - t0) / 1_000_000;
        if (chain.equals(target)) {
            store.write("record proof", tx -> tx.lazyLayers().setProof(layerId, ProofState.PROVEN, "diff_id " + r.diffId()));
            log.info("layer {} (id={}) proven: diff_id {} ({} bytes rebuilt, {} bytes of the blob in {} requests, {} ms)",
                    target, layerId, r.diffId(), r.streamBytes(), r.fetchedBytes(), r.requests(), ms);
            onProven.run();
        } else {
            quarantine(layerId, "its content has diff_id " + r.diffId() + ", which gives chain id " + chain + ", not " + target
                    + " (the image's config claims a layer it does not hold; from " + source + "@" + blob + ")");
        }
    }

    /**
     * The fetch that completes a layer says so once its chunks are in the pool, before PresentRecorder has recorded
     * them present (it batches them after an fdatasync): the proof, which reads the chunks by their rows, waits up to
     * 5 s for that record instead of failing and trying again 10 s later (which also held up the layer's compaction).
     */
    private void awaitRecorded(long layerId) throws IOException {
        try {
            for (int i = 0; i < 100 && store.read(tx -> tx.lazyLayers().absentChunksByLayer()).containsKey(layerId); i++) Thread.sleep(50);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
    }

    private static final Pattern CHAIN_ID_NAME = Pattern.compile("(?:.*/)?(sha256:[0-9a-f]{64})");

    /**
     * The chain id in a committed snapshot's name: a lazy layer is named by it, and containerd names the layers it
     * unpacks NAMESPACE/N/CHAINID. Null for any other name.
     */
    static String chainIdInName(String name) {
        var m = CHAIN_ID_NAME.matcher(name);
        return m.matches() ? m.group(1) : null;
    }

    /** A chunk's bytes from the pool; it must be there, with the length the TOC gives it. */
    private byte[] chunk(String digest, int length) throws IOException {
        Digest d = Digest.parse(digest);
        if (d == null) throw new IOException("bad chunk digest " + digest);
        Chunk c = store.read(tx -> tx.chunks().find(d)).orElseThrow(() -> new IOException("chunk " + digest + " is not in the pool"));
        if (!c.present()) throw new IOException("chunk " + digest + " is not fetched yet");
        if (c.length() != length) throw new IOException("chunk " + digest + " is " + c.length() + " bytes in the pool, " + length + " in the TOC");
        ByteBuffer buf = ByteBuffer.allocate(Math.toIntExact(Extent.blocksFor(length) * ChunkPool.BLOCK));
        pool.read(c.block(), buf);
        byte[] out = new byte[length];
        buf.flip().get(out);
        if (!Members.sha256(out).equals(digest)) throw new IOException("chunk " + digest + " in the pool does not match its digest (run dedupctl fsck)");
        return out;
    }

    public void close() {
        worker.shutdownNow();
        retries.shutdownNow();
    }
}
