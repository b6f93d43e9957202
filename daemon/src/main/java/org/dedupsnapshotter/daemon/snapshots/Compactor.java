package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.api.LayerFormat;
import org.dedupsnapshotter.daemon.layers.LayerMounts;
import org.dedupsnapshotter.daemon.layers.Layout;
import org.dedupsnapshotter.erofs.ErofsBuilder;
import org.dedupsnapshotter.erofs.ErofsImage;
import org.dedupsnapshotter.erofs.Pclusters;
import org.dedupsnapshotter.mount.LayerMounter;
import org.dedupsnapshotter.storage.ChunkPool;
import org.dedupsnapshotter.storage.LazyLayer;
import org.dedupsnapshotter.storage.LazyLayerTable;
import org.dedupsnapshotter.storage.MetaStore;
import org.dedupsnapshotter.storage.Snapshot;
import org.dedupsnapshotter.storage.SnapshotTable;
import org.dedupsnapshotter.storage.Tx;
import org.dedupsnapshotter.sys.CrashPoints;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.sql.SQLException;
import java.util.Optional;
import java.util.function.BooleanSupplier;
import java.util.function.LongConsumer;
import java.util.concurrent.locks.Lock;

/**
 * Compaction (issue 23, decision 59): a committed layer written uncompressed (fast to unpack) is rewritten later
 * into the compressed form — its mounted tree read as Commit reads an upper dir, its chunks LZ4-HC encoded into the
 * pool's compressed chunks (each stored once per node), a metadata-only image — and swapped in. Crash-safe at every
 * step because a layer only ever gains references before the image that needs them is in place, and loses the old
 * ones only once nothing can read through the old image:
 * <ol>
 * <li>the new image written and fsynced at {@link #tmp}, its new compressed chunks written and synced (compact.written);</li>
 * <li>one transaction adds the layer's layer_zchunks references, its layer_chunks stay (compact.recorded);</li>
 * <li>under the service's creation gate (no Prepare or View can make a snapshot above the layer until the swap is
 *     done), no active snapshot or view above the layer, else undo and skip it; the image renamed into place and the
 *     directory fsynced (compact.image); the old mount unmounted and the new image mounted (compact.mount);</li>
 * <li>one transaction drops the layer's layer_chunks references, and a lazy layer's lazy_layers row (compact.dropped); GC
 *     punches what nobody references.</li>
 * </ol>
 * {@link Recovery} finishes or undoes a layer left with both kinds of references ({@link #recover}). Skipped: layers
 * with an active snapshot or view anywhere above them (a running container's overlay keeps the old mount privately,
 * and with it the old image's chunks: they must stay referenced), layers already compressed, directory layers, and
 * lazily pulled layers until they are complete and proven (decision 62: then a lazy layer is compacted like a local
 * one, its lazy_layers row going in the transaction of step 4, so that afterwards it is a local compressed layer).
 */
final class Compactor {
    private static final Logger log = LoggerFactory.getLogger(Compactor.class);

    /** What one pass did. bytes*: the compacted layers' own extents (chunks' blocks before, compressed chunks' blocks after). */
    /** stopped: the pass ended before its last layer because stop said so. */
    record Result(int compacted, int skippedInUse, int skippedLazy, int skippedOther, long layerBytesBefore, long layerBytesAfter, long nanos, boolean stopped) {}

    private final Layout layout;
    private final MetaStore store;
    private final LayerMounts layers;
    private final NativeImages images;
    private final Pclusters codec;
    private final IdLocks locks;
    private final Lock creationGate;
    /** Told of each lazily pulled layer compacted: it is no lazy layer any more (lazy pull forgets it as a source). */
    private final LongConsumer lazyCompacted;

    Compactor(Layout layout, MetaStore store, LayerMounts layers, NativeImages images, Pclusters codec, IdLocks locks, Lock creationGate) {
        this(layout, store, layers, images, codec, locks, creationGate, id -> { });
    }

    Compactor(Layout layout, MetaStore store, LayerMounts layers, NativeImages images, Pclusters codec, IdLocks locks, Lock creationGate,
              LongConsumer lazyCompacted) {
        this.layout = layout;
        this.store = store;
        this.layers = layers;
        this.images = images;
        this.codec = codec;
        this.locks = locks;
        this.creationGate = creationGate;
        this.lazyCompacted = lazyCompacted;
    }

    /** Where a compaction writes the layer's new image before the swap (Recovery deletes a leftover one). */
    static Path tmp(Layout layout, long id) { return layout.image(id).resolveSibling("layer.erofs.compact"); }

    /** Compacts every compactable layer, one at a time (a pass at a time: the caller serialises), until stop says so. */
    Result compactAll(BooleanSupplier stop) {
        long t0 = System.nanoTime();
        int compacted = 0, inUse = 0, lazy = 0, other = 0;
        long before = 0, after = 0;
        boolean stopped = false;
        for (Snapshot s : store.read(tx -> tx.snapshots().all())) {
            if (s.kind() != Kind.COMMITTED || s.format() != LayerFormat.EROFS) continue;
            if (stop.getAsBoolean()) {
                stopped = true;
                break;
            }
            try {
                Outcome o = compact(s.id());
                switch (o.state) {
                    case COMPACTED -> {
                        compacted++;
                        before += o.before;
                        after += o.after;
                    }
                    case IN_USE -> inUse++;
                    case LAZY -> lazy++;
                    case NOT_COMPACTABLE -> other++;
                    case DONE -> { }
                }
            } catch (IOException | RuntimeException e) {
                other++;
                log.warn("compaction of layer id={} failed, it stays as it was: {}", s.id(), e.getMessage());
            }
        }
        return new Result(compacted, inUse, lazy, other, before, after, System.nanoTime() - t0, stopped);
    }

    /**
     * DONE: nothing to compact (compressed already, no file data, being removed); LAZY: a lazily pulled layer not
     * complete or not proven yet (a later pass retries); NOT_COMPACTABLE: half-done, quarantined, no image, failed.
     */
    enum State { COMPACTED, IN_USE, LAZY, NOT_COMPACTABLE, DONE }

    record Outcome(State state, long before, long after) {
        static final Outcome IN_USE = new Outcome(State.IN_USE, 0, 0), NOT_COMPACTABLE = new Outcome(State.NOT_COMPACTABLE, 0, 0),
                DONE = new Outcome(State.DONE, 0, 0), LAZY = new Outcome(State.LAZY, 0, 0);
    }

    /**
     * Compacts layer id if it is compactable now. A Remove of it waits for its id lock: while the chunks are encoded
     * that ends the compaction (DONE, nothing of it left); during the swap, the Remove waits for it.
     */
    Outcome compact(long id) throws IOException {
        try (IdLocks.Held ignored = locks.lock(id)) {
            State state = compactable(id);
            if (state != null) return switch (state) {
                case DONE -> Outcome.DONE;
                case LAZY -> Outcome.LAZY;
                default -> Outcome.NOT_COMPACTABLE;
            };
            boolean wasLazy = store.read(tx -> tx.lazyLayers().find(id)).isPresent();
            if (store.read(tx -> inUse(tx, id))) return Outcome.IN_USE; // cheap first look; decided again under the gate
            long before = store.read(tx -> tx.chunks().ofLayer(id)).keySet().stream().mapToLong(c -> c.extent().blocks()).sum() * ChunkPool.BLOCK;
            long t0 = System.nanoTime();
            Path tmp = tmp(layout, id);
            log.info("compacting layer id={}: {} bytes of chunks", id, before);
            ImageBuilder.Built built;
            try {
                // a Remove of this layer waits for its lock: the encoding would be thrown away with the layer
                built = images.writeCompressed(layout.mnt(id), tmp, codec, "compact", () -> locks.removalWaiting(id));
            } catch (NativeImages.Abandoned e) {
                log.info("compaction of layer id={} abandoned after {} ms: the layer is being removed", id, (System.nanoTime() - t0) / 1_000_000);
                return Outcome.DONE;
            }
            try {
                if (!built.indexed().chunks.uses().isEmpty()) throw new IllegalStateException("a compressed image with chunk references");
                CrashPoints.reach("compact.written");
                // extra references are always safe: the layer keeps its chunks and gains its compressed chunks
                store.write("compact: add compressed refs", tx -> {
                    Snapshot s = tx.snapshots().byId(id).orElseThrow(() -> new IllegalStateException("layer " + id + " was removed"));
                    if (s.kind() != Kind.COMMITTED) throw new IllegalStateException("layer " + id + " is not committed");
                    return built.compressedLayer().record(tx, id);
                });
                built.committed();
            } catch (RuntimeException e) {
                built.abort();
                Files.deleteIfExists(tmp);
                throw e;
            }
            CrashPoints.reach("compact.recorded");
            long after = store.read(tx -> tx.zchunks().ofLayer(id)).keySet().stream().mapToLong(z -> z.extent().blocks()).sum() * ChunkPool.BLOCK;
            creationGate.lock();
            try {
                if (store.read(tx -> inUse(tx, id))) { // a snapshot appeared above it while the image was written
                    store.write("compact: undo", tx -> {
                        tx.zchunks().dropRefs(id);
                        return null;
                    });
                    Files.deleteIfExists(tmp);
                    return Outcome.IN_USE;
                }
                Path image = layout.image(id);
                Files.move(tmp, image, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                ErofsBuilder.fsync(image.getParent());
                CrashPoints.reach("compact.image");
                // nothing above the layer (the gate keeps it so): its old mount goes, nobody keeps it privately; a lazy
                // layer's whole stack (watched mount, and the plain one promotion put on top) goes with it
                layers.unmount(id);
                layers.mount(id);
                CrashPoints.reach("compact.mount");
                store.write("compact: drop chunk refs", tx -> {
                    dropOldRefs(tx, id);
                    return null;
                });
                CrashPoints.reach("compact.dropped");
            } finally {
                creationGate.unlock();
            }
            if (wasLazy) lazyCompacted.accept(id);
            log.info("compacted {}layer id={}: {} bytes of chunks -> {} bytes of compressed chunks ({} level={}) in {} ms", wasLazy ? "lazily pulled " : "",
                    id, before, after, codec.algorithm().configName(), codec.level(), (System.nanoTime() - t0) / 1_000_000);
            return new Outcome(State.COMPACTED, before, after);
        }
    }

    /**
     * The old form's traces, in the transaction that makes the swap final: the layer's chunk references, and for a
     * lazily pulled layer its lazy_layers row (and any lazy_sources naming its blob). From then on it is a local
     * compressed layer: no watch, no fd holder, no proof, not counted as lazy; a Prepare of its chain id shares it as
     * it shares any local layer (it was proven to be that layer before it was compacted).
     */
    private static void dropOldRefs(Tx tx, long id) throws SQLException {
        tx.chunks().dropRefs(id);
        tx.lazyLayers().delete(id);
    }

    /**
     * Null when layer id is compactable: a committed EROFS layer written uncompressed, with file data, with no
     * compressed chunk references yet (it is mounted on the way), and if lazily pulled, complete (no absent chunk: no
     * read of it waits for the watch) and proven (its proof reads its uncompressed chunks, and a quarantined layer
     * stays as it is). Else why not: DONE, LAZY or NOT_COMPACTABLE.
     */
    private State compactable(long id) throws IOException {
        Snapshot s = store.read(tx -> tx.snapshots().byId(id)).orElse(null);
        if (s == null || s.kind() != Kind.COMMITTED || s.format() != LayerFormat.EROFS) return State.DONE;
        Optional<LazyLayer> lazy = store.read(tx -> tx.lazyLayers().find(id));
        if (layers.isLazy(id)) return State.LAZY; // mounted through the watch: chunks absent
        if (lazy.isPresent()) {
            if (store.read(tx -> tx.lazyLayers().absentChunksByLayer()).containsKey(id)) return State.LAZY;
            Optional<LazyLayerTable.Proof> proof = store.read(tx -> tx.lazyLayers().proof(id));
            if (proof.isEmpty() || proof.get().state() == LazyLayerTable.ProofState.UNPROVEN) return State.LAZY;
            if (proof.get().state() != LazyLayerTable.ProofState.PROVEN) return State.NOT_COMPACTABLE; // quarantined: left for its removal
        }
        if (!Files.exists(layout.image(id))) return State.NOT_COMPACTABLE;
        if (LayerMounter.isCompressed(layout.image(id))) return State.DONE;
        if (store.read(tx -> tx.chunks().ofLayer(id)).isEmpty()) return State.DONE; // no file data: nothing to compress
        if (!store.read(tx -> tx.zchunks().ofLayer(id)).isEmpty()) return State.NOT_COMPACTABLE; // half-done: Recovery's to settle
        layers.ensureMounted(id);
        return null;
    }

    /** Whether any active snapshot or view has layer id among its ancestors (its overlay would keep the old mount). */
    static boolean inUse(Tx tx, long id) throws SQLException {
        for (Snapshot s : tx.snapshots().all()) {
            if (s.kind() == Kind.COMMITTED) continue;
            for (SnapshotTable.Layer l : tx.snapshots().ancestors(s.id()))
                if (l.id() == id) return true;
        }
        return false;
    }

    /**
     * Recovery's part, for a committed layer left with both chunk and compressed chunk references (a compaction that
     * died between compact.recorded and compact.dropped), before any snapshot is served: the image on disk decides.
     * Uncompressed (died before the rename, so its {@link #tmp} is still there): the swap never happened, the compressed
     * references go. Compressed: the swap happened under the gate with nothing above the layer, and nothing was made
     * above it since — but the kernel may still have the old image mounted there (died before compact.mount), so the
     * layer is unmounted and mounted again from the new image before its chunk references go. Anything else (no tmp
     * beside an uncompressed image, a compressed image that still has chunk indexes) keeps both kinds of references:
     * space is recoverable, wrong bytes are not. Returns what was done, or null when the layer is not half-compacted.
     */
    static String recover(Layout layout, MetaStore store, LayerMounts layers, long id) throws IOException {
        boolean chunks = !store.read(tx -> tx.chunks().ofLayer(id)).isEmpty(), zchunks = !store.read(tx -> tx.zchunks().ofLayer(id)).isEmpty();
        boolean tmpWritten = Files.deleteIfExists(tmp(layout, id));
        if (!chunks || !zchunks) return null;
        if (!LayerMounter.isCompressed(layout.image(id))) {
            if (!tmpWritten) return "left alone (no compacted image beside it: both kinds of references kept)";
            store.write("recovery: undo compaction", tx -> {
                tx.zchunks().dropRefs(id);
                return null;
            });
            return "undone";
        }
        if (ErofsImage.read(layout.image(id)).chunks().stream().anyMatch(c -> c.blkaddr() != ErofsImage.NULL_ADDR))
            return "left alone (its image has chunk indexes too: both kinds of references kept)";
        if (store.read(tx -> inUse(tx, id))) return "left alone (a snapshot above it: both kinds of references kept)"; // not reachable
        // a complete lazy layer is not marked lazy at start: it mounts from the plain pool path, as the swap did
        layers.unmount(id);
        layers.mount(id);
        store.write("recovery: finish compaction", tx -> {
            dropOldRefs(tx, id);
            return null;
        });
        return "finished";
    }
}
