package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.daemon.layers.LayerMounts;
import org.dedupsnapshotter.daemon.layers.Layout;
import org.dedupsnapshotter.daemon.lazypull.LazyPull;
import org.dedupsnapshotter.erofs.ErofsBuilder;
import org.dedupsnapshotter.erofs.Pclusters;
import org.dedupsnapshotter.storage.ChunkIndexer;
import org.dedupsnapshotter.storage.ChunkPool;
import org.dedupsnapshotter.storage.MetaStore;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;

/**
 * A daemon's objects on a temp root, as Main wires them (native image builder, no lazy pull), with the kernel's
 * mounts played by a {@link FakeMounter}. {@link #restart} drops them as a kill -9 would and opens them again on the
 * same root and the same mount table, ready for {@link #recovery}; the service is made on first use, after it.
 */
final class TestDaemon implements AutoCloseable {
    static final long CHUNK = 1 << 20;

    final Layout layout;
    final FakeMounter mounter;
    final MetaStore store;
    final ChunkPool pool;
    final ChunkIndexer indexer;
    final LayerMounts layers;
    private final boolean nativeImages;
    private final long poolCap;
    private final ServiceEvents events;
    private Pclusters compression;
    private SnapshotService service;

    TestDaemon(Path root, FakeMounter mounter) throws IOException {
        this(root, mounter, true, 0, ServiceEvents.NONE);
    }

    /** nativeImages: our writer, else mkfs.erofs; poolCap: the pool's cap in bytes (0: none). */
    TestDaemon(Path root, FakeMounter mounter, boolean nativeImages, long poolCap, ServiceEvents events) throws IOException {
        this.layout = new Layout(root);
        this.mounter = mounter;
        this.nativeImages = nativeImages;
        this.poolCap = poolCap;
        this.events = events;
        Files.createDirectories(layout.snapshots());
        store = MetaStore.open(layout.db());
        pool = ChunkPool.open(layout.pool(), poolCap);
        indexer = new ChunkIndexer(pool, store, 2, CHUNK);
        layers = new LayerMounts(layout, mounter);
    }

    /** Commits from now on write compressed layers with this codec (before the service is first used). */
    TestDaemon compressed(Pclusters codec) {
        if (service != null) throw new IllegalStateException("the service exists already");
        this.compression = codec;
        return this;
    }

    SnapshotService service() {
        if (service == null)
            service = new SnapshotService(layout, store, new ErofsBuilder("mkfs.erofs", CHUNK), nativeImages, layers, indexer, LazyPull.OFF, events, compression);
        return service;
    }

    Recovery recovery() { return new Recovery(layout, store, layers, indexer); }

    Fsck fsck() { return new Fsck(layout, store, pool, layers, service()); }

    /** This process dies (its files closed, nothing else undone); a new one opens the same root. */
    TestDaemon restart() throws IOException {
        close();
        TestDaemon next = new TestDaemon(layout.root(), mounter, nativeImages, poolCap, events);
        next.compression = compression;
        return next;
    }

    long id(String key) { return store.read(tx -> tx.snapshots().get(key)).id(); }

    /** An active snapshot with one file of random bytes in its upper dir. */
    long prepareWithFile(String key, String parent, int bytes, long seed) throws IOException {
        service().prepare(key, parent, Map.of());
        long id = id(key);
        Files.write(layout.fs(id).resolve("f"), random(bytes, seed));
        return id;
    }

    static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    @Override public void close() throws IOException {
        indexer.close();
        pool.close();
        store.close();
    }
}
