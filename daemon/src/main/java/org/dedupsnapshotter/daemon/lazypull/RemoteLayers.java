package org.dedupsnapshotter.daemon.lazypull;

import org.dedupsnapshotter.api.LayerFormat;
import org.dedupsnapshotter.api.SnapshotException;
import org.dedupsnapshotter.api.Usage;
import org.dedupsnapshotter.daemon.layers.LayerImages;
import org.dedupsnapshotter.daemon.layers.LayerMounts;
import org.dedupsnapshotter.daemon.layers.Layout;
import org.dedupsnapshotter.daemon.layers.Trees;
import org.dedupsnapshotter.erofs.ErofsTree;
import org.dedupsnapshotter.erofs.ErofsWriter;
import org.dedupsnapshotter.lazy.fetch.Registries;
import org.dedupsnapshotter.lazy.toc.LazyLayerFormat;
import org.dedupsnapshotter.lazy.toc.Toc;
import org.dedupsnapshotter.lazy.toc.TocCheck;
import org.dedupsnapshotter.storage.Chunk;
import org.dedupsnapshotter.storage.ChunkIndexer;
import org.dedupsnapshotter.storage.Digest;
import org.dedupsnapshotter.storage.LazyLayer;
import org.dedupsnapshotter.storage.LazyLayerTable;
import org.dedupsnapshotter.storage.MetaStore;
import org.dedupsnapshotter.storage.Snapshot;
import org.dedupsnapshotter.storage.SnapshotTable;
import org.dedupsnapshotter.sys.CrashPoints;
import org.dedupsnapshotter.sys.Errno;
import org.dedupsnapshotter.sys.Libc;
import org.dedupsnapshotter.sys.Stat;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * Remote snapshots: a Prepare whose labels describe a converted layer (containerd's unpacker copies the layer
 * descriptor's containerd.io/snapshot/ annotations into them) is answered by committing that layer at once from
 * its table of contents — EROFS metadata whose chunks point into the pool, chunks the node lacks reserved there
 * and fetched when read — so containerd never downloads the layer. Anything unexpected makes {@link #tryPrepare}
 * return false and the Prepare goes the normal way: the pull still works, only not lazily.
 */
public final class RemoteLayers {
    private static final Logger log = LoggerFactory.getLogger(RemoteLayers.class);
    public static final String SNAPSHOT_REF = "containerd.io/snapshot.ref";

    private final Layout layout;
    private final MetaStore store;
    private final ChunkIndexer indexer;
    private final LayerMounts layers;
    private final LayerImages layerImages;
    private final LazyLoader loader;
    private final RegistryTocs tocs;
    private final GroupHold hold;
    private final EarlyFetch early;
    private final LayerProofs proofs;
    private final Predicate<String> registryAllowed;

    /** Keeps the pool watch's fanotify group alive past this daemon (its fd holder): needed once a layer misses chunks. */
    public interface GroupHold { void hold() throws IOException; }

    public RemoteLayers(Layout layout, MetaStore store, ChunkIndexer indexer, LayerMounts layers, LazyLoader loader, RegistryTocs tocs,
                        EarlyFetch early, GroupHold hold, LayerProofs proofs, Predicate<String> registryAllowed) {
        this.proofs = proofs;
        this.registryAllowed = registryAllowed;
        this.hold = hold;
        this.layout = layout;
        this.store = store;
        this.indexer = indexer;
        this.layers = layers;
        this.layerImages = new LayerImages(layout, layers);
        this.loader = loader;
        this.tocs = tocs;
        this.early = early;
    }

    /** What is known of each lazy layer's content against its chain id. */
    public LayerProofs proofs() { return proofs; }

    /** Whether labels describe a converted layer this node can pull lazily. */
    public static boolean isLazy(Map<String, String> labels) {
        return labels.containsKey(LazyLayerFormat.TOC_DIGEST) && labels.containsKey(SNAPSHOT_REF);
    }

    /**
     * Commits the layer the labels describe under its target name (the chain id containerd will Stat); true when
     * the target exists now, false when the layer must be unpacked the normal way.
     */
    public boolean tryPrepare(String parent, Map<String, String> labels) {
        String target = labels.get(SNAPSHOT_REF);
        early.imageSeen(labels); // the image's other layers' TOCs and traced chunks set off now, not at their own Prepare
        var existing = store.read(tx -> tx.snapshots().find(target));
        if (existing.isPresent()) {
            if (proofs.mayShare(existing.get().id(), labels.get(LazyLayerFormat.TOC_DIGEST))) return true;
            // another image's content under this chain id, not proven to be it: this pull gets its own bytes
            log.warn("layer {} here came from other content and is {}; this pull unpacks its own", target,
                    proofs.isQuarantined(existing.get().id()) ? "quarantined" : "not proven yet");
            return false;
        }
        long t0 = System.nanoTime();
        String blob = labels.getOrDefault(LazyLayerFormat.LAYER_DIGEST, labels.get(LazyLayerFormat.CRI_LAYER_DIGEST));
        loader.addingLayer(); // the fd holder stays from commit's hold until the loader knows the layer's absent chunks
        try {
            String source = labels.containsKey(LazyLayerFormat.CRI_IMAGE_REF)
                    ? Registries.repositoryOf(labels.get(LazyLayerFormat.CRI_IMAGE_REF)) : RegistryTocs.required(labels, LazyLayerFormat.SOURCE);
            if (!registryAllowed.test(Registries.split(source)[0]))
                throw new IOException("registry " + Registries.split(source)[0] + " is not among lazy.registries");
            if (blob == null) throw new IOException("no layer digest among the labels");
            Toc toc = fetchToc(source, blob, labels);
            long t1 = System.nanoTime();
            List<LazyLayerTable.Absent> absent = new ArrayList<>();
            Snapshot s = commit(target, parent, labels, toc, new LazyLayer(0, source, blob, labels.get(LazyLayerFormat.TOC_DIGEST)), absent);
            loader.layerAdded(s.id(), target, absent, toc.prefetch, directoriesOfMembers(toc));
            if (absent.isEmpty()) proofs.schedule(s.id()); // every chunk was here already
            log.info("lazily pulled layer {} (id={}) from {}@{}: {} entries, toc {}ms, metadata {}ms", target, s.id(), source, blob,
                    toc.entries.size(), (t1 - t0) / 1_000_000, (System.nanoTime() - t1) / 1_000_000);
            return true;
        } catch (SnapshotException e) {
            if (e.code() == SnapshotException.Code.ALREADY_EXISTS) return true; // another Prepare made it meanwhile
            log.warn("lazy pull of layer {} not possible ({}); unpacking it the normal way", target, e.getMessage());
            return false;
        } catch (IOException | RuntimeException e) {
            log.warn("lazy pull of layer {} not possible ({}); unpacking it the normal way", target, e.getMessage());
            return false;
        } finally {
            loader.addingDone();
            if (blob != null) early.tocUsed(blob);
        }
    }

    /** Where the TOC's own member starts in the blob: every other member lies before it. */
    private static long tocOffset(Map<String, String> labels) throws IOException {
        String v = RegistryTocs.required(labels, LazyLayerFormat.TOC_OFFSET);
        try {
            return Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw new IOException("label " + LazyLayerFormat.TOC_OFFSET + " is not a number: " + v);
        }
    }

    /** The TOC: one Range request for its gzip member, inflated, checked against its digest, parsed (or fetched so already, early). */
    Toc fetchToc(String source, String blob, Map<String, String> labels) throws IOException {
        String digest = labels.get(LazyLayerFormat.TOC_DIGEST);
        if (digest == null) return tocs.fetch(source, blob, labels);
        return early.toc(blob, digest, () -> tocs.fetch(source, blob, labels)); // checked against that digest
    }

    /** Builds the layer from its TOC and records it committed, in one transaction; its chunks stay absent until read. */
    Snapshot commit(String target, String parent, Map<String, String> labels, Toc toc, LazyLayer origin, List<LazyLayerTable.Absent> absent) throws IOException {
        // the TOC's claims, whole, before any of them touches the pool (its fields were checked when it was parsed)
        TocCheck.check(toc, indexer.chunkSize(), tocOffset(labels));
        List<SnapshotTable.Layer> lowers = new ArrayList<>();
        long rootUid = 0, rootGid = 0;
        if (!parent.isEmpty()) {
            Snapshot p = store.read(tx -> tx.snapshots().get(parent));
            lowers.add(new SnapshotTable.Layer(p.id(), p.format()));
            lowers.addAll(store.read(tx -> tx.snapshots().ancestors(p.id())));
            for (SnapshotTable.Layer l : lowers) layers.ensureMountedLayer(l);
            Stat st = Libc.lstat(layout.layerRoot(p.id(), p.format()).toString());
            rootUid = st.uid();
            rootGid = st.gid();
        }
        long[] at = new long[8];
        at[0] = System.nanoTime();
        TocTree tree = TocTree.apply(toc, rootUid, rootGid, path -> lowerDir(lowers, path));
        at[1] = System.nanoTime();

        // the chunks: known ones referenced, new ones reserved in the pool (absent until fetched)
        List<ChunkIndexer.Need> needs = new ArrayList<>();
        List<Toc.Chunk> placed = new ArrayList<>();
        Map<Digest, LazyLayerTable.ChunkSource> sources = new HashMap<>();
        long logical = 0;
        for (TocTree.Node f : tree.files()) {
            logical += f.size;
            for (Toc.Chunk c : f.chunks) {
                if (c.isHole()) continue;
                Digest d = digest(c.digest());
                needs.add(new ChunkIndexer.Need(d, c.size()));
                placed.add(c);
                sources.putIfAbsent(d, new LazyLayerTable.ChunkSource(0, c.blobOffset(), c.blobLength()));
            }
        }
        ChunkIndexer.Indexed reserved = indexer.reserve(needs, logical);
        at[2] = System.nanoTime();
        IdentityHashMap<Toc.Chunk, Long> blocks = new IdentityHashMap<>();
        for (int i = 0; i < placed.size(); i++) blocks.put(placed.get(i), reserved.blocks[i]);
        long[] usage = tree.usage();
        ErofsTree image = tree.toErofs(toc.chunkSize, c -> c.isHole() ? ErofsTree.HOLE : blocks.get(c));
        long[] madeId = {-1};
        at[3] = System.nanoTime();
        try {
            indexer.pool().extendToEnd(); // reserved extents lie inside the pool file
            // one transaction: the committed snapshot row, its chunk references (chunks the pool lacks are ABSENT: their
            // extents reserved, their bytes not there yet), its origin, where each absent chunk is in its blob; and the
            // layer's image written and installed, so a failure leaves no row behind
            Snapshot s = store.write("create lazy snapshot", tx -> {
                long id = tx.snapshots().insertCommitted(target, tx.snapshots().newSnapshotParent(target, parent), new Usage(usage[1], usage[0]),
                        LayerFormat.EROFS, reserved.chunks.logicalBytes());
                tx.snapshots().writeLabels(id, labels);
                Map<Digest, Chunk> rows = tx.chunks().addRefs(id, reserved.chunks);
                tx.lazyLayers().insert(id, origin);
                absent.clear();
                absent.addAll(tx.lazyLayers().addSources(id, rows, sources));
                Snapshot created = tx.snapshots().byId(id).orElseThrow();
                madeId[0] = created.id();
                Path dir = layout.dir(created.id());
                Trees.deleteRecursively(dir); // a leftover of a crash before this transaction ended
                Files.createDirectories(dir);
                at[4] = System.nanoTime();
                ErofsWriter.write(image, layerImages.tmp(created.id()), indexer.pool().endBlock(), layers.mounter().inodeShare().fingerprints());
                at[5] = System.nanoTime();
                if (reserved.absent > 0) { // else all its chunks are here already: a local layer from the start
                    hold.hold();
                    layers.markLazy(created.id());
                }
                layerImages.install(created.id(), "lazy");
                at[6] = System.nanoTime();
                return created;
            });
            at[7] = System.nanoTime();
            if (log.isDebugEnabled())
                log.debug("lazy layer {}: tree {}ms, chunks reserved {}ms, image tree {}ms, transaction start {}ms, image written {}ms, mounted {}ms, committed {}ms",
                        target, ms(at[0], at[1]), ms(at[1], at[2]), ms(at[2], at[3]), ms(at[3], at[4]), ms(at[4], at[5]), ms(at[5], at[6]), ms(at[6], at[7]));
            reserved.committed();
            CrashPoints.reach("lazy.db");
            return s;
        } catch (IOException | RuntimeException e) {
            reserved.abort();
            if (madeId[0] > 0) discard(madeId[0]);
            throw e;
        }
    }

    private static long ms(long from, long to) { return (to - from) / 1_000_000; }

    /** Blob offset of each data member → an id of the directory its file is in (for the loader's read-ahead). */
    static Map<Long, Integer> directoriesOfMembers(Toc toc) {
        Map<Long, Integer> out = new HashMap<>();
        for (Toc.Entry e : toc.entries) {
            if (e.chunks == null || e.chunks.isEmpty()) continue;
            int slash = e.name.lastIndexOf('/');
            int dir = (slash < 0 ? "" : e.name.substring(0, slash)).hashCode();
            for (Toc.Chunk c : e.chunks) if (c.digest() != null) out.put(c.blobOffset(), dir);
        }
        return out;
    }

    private void discard(long id) {
        try {
            layerImages.discard(id);
            Trees.deleteRecursively(layout.dir(id));
        } catch (IOException e) {
            log.warn("cleaning up after a failed lazy pull of id={}: {} (start-up recovery removes it)", id, e.getMessage());
        }
    }

    /** The directory a lower layer shows at path, as containerd's mkparent finds it (nearest layer first). */
    private TocTree.LowerDir lowerDir(List<SnapshotTable.Layer> lowers, String path) throws IOException {
        for (SnapshotTable.Layer l : lowers) {
            Path p = RootPath.resolve(layout.layerRoot(l.id(), l.format()), path); // symlinks stay inside the layer
            Stat st;
            try {
                st = Libc.lstat(p.toString());
            } catch (Errno e) {
                if (e.errno() == Errno.ENOENT) continue;
                throw e;
            }
            if (!st.isDir()) return null; // replaced there: containerd copies nothing
            Map<String, byte[]> x = new LinkedHashMap<>();
            for (String name : Libc.llistxattr(p.toString())) {
                byte[] v = Libc.lgetxattr(p.toString(), name);
                if (v != null) x.put(name, v);
            }
            return new TocTree.LowerDir(st.mode() & 07777, st.uid(), st.gid(), x);
        }
        return null;
    }

    private static Digest digest(String s) throws IOException {
        Digest d = Digest.parse(s);
        if (d == null) throw new IOException("bad chunk digest " + s);
        return d;
    }
}
