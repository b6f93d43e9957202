package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.api.Mount;
import org.dedupsnapshotter.api.SnapshotException;
import org.dedupsnapshotter.daemon.layers.Layout;
import org.dedupsnapshotter.erofs.ErofsImage;
import org.dedupsnapshotter.erofs.InodeFingerprint;
import org.dedupsnapshotter.storage.MetaStore;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The containerd verbs against temp dirs, a real store, pool and image builder, and a stand-in for the kernel's
 * mounts (no root needed): what a commit leaves in the pool and the image, the mounts containerd gets, and what a
 * failed commit or a refused removal leaves behind.
 */
class SnapshotServiceTest {
    private static final long CHUNK = TestDaemon.CHUNK;

    @TempDir Path dir;
    private final FakeMounter mounter = new FakeMounter();
    private TestDaemon daemon;
    private MetaStore store;
    private Layout layout;
    private SnapshotService service;
    private final List<Long> newBytes = new ArrayList<>();

    private void start(String builder, long poolCap) throws IOException {
        ServiceEvents events = new ServiceEvents() {
            @Override public void committed(String key, long m, long h, long c, long w, long t, long added, long logical) { newBytes.add(added); }
        };
        daemon = new TestDaemon(dir.resolve("root"), mounter, builder.equals("native"), poolCap, events);
        store = daemon.store;
        layout = daemon.layout;
        service = daemon.service();
    }

    @AfterEach
    void close() throws IOException {
        if (daemon != null) daemon.close();
    }

    private static boolean hasMkfs() {
        return Arrays.stream(System.getenv("PATH").split(":")).anyMatch(d -> Files.isExecutable(Path.of(d, "mkfs.erofs")));
    }

    private static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    private Path upper(String key) {
        return layout.fs(store.read(tx -> tx.snapshots().get(key)).id());
    }

    @ParameterizedTest
    @ValueSource(strings = {"native", "mkfs"})
    void commitPutsEveryChunkInThePoolAndMountsTheImage(String builder) throws IOException {
        Assumptions.assumeTrue(builder.equals("native") || hasMkfs(), "mkfs.erofs is not installed");
        start(builder, 0);
        List<Mount> m = service.prepare("k1", "", Map.of());
        assertEquals(List.of(new Mount("bind", layout.fs(store.read(tx -> tx.snapshots().get("k1")).id()).toString(), List.of("rw", "rbind"))), m);
        byte[] big = random((int) (2.5 * CHUNK), 1), small = "hello\n".getBytes();
        Files.createDirectories(upper("k1").resolve("etc"));
        Files.write(upper("k1").resolve("etc/big"), big);
        Files.write(upper("k1").resolve("small"), small);
        long id = store.read(tx -> tx.snapshots().get("k1")).id();

        service.commit("layer1", "k1", Map.of("a", "b"));

        assertEquals(Kind.COMMITTED, service.stat("layer1").kind());
        assertEquals(Map.of("a", "b"), service.stat("layer1").labels());
        assertEquals(layout.image(id), mounter.mounted.get(layout.mnt(id)), "the layer's image is mounted at its mnt dir");
        assertFalse(Files.exists(layout.image(id).resolveSibling("layer.erofs.tmp")));
        Map<String, byte[]> expected = Map.of("etc/big", big, "small", small);
        for (ErofsImage.FileChunk c : ErofsImage.read(layout.image(id)).chunks()) {
            byte[] want = Arrays.copyOfRange(expected.get(c.path().replaceFirst("^/", "")), (int) c.fileOffset(), (int) c.fileOffset() + c.length());
            assertArrayEquals(want, readPool(c.blkaddr() * 4096, c.length()), c.path() + " at " + c.fileOffset() + ": the pool holds its bytes");
        }
        assertEquals(big.length + small.length, newBytes.getFirst());
    }

    /** Decision 36: each regular file of a native commit carries the fingerprint of its chunks; equal files an equal one. */
    @Test
    void nativeCommitsFingerprintEachFileFromItsChunkDigests() throws Exception {
        start("native", 0);
        service.prepare("k1", "", Map.of());
        byte[] big = random((int) (2.5 * CHUNK), 3);
        Arrays.fill(big, (int) CHUNK, (int) (2 * CHUNK), (byte) 0); // the middle chunk is a hole
        Files.createDirectories(upper("k1").resolve("a"));
        Files.write(upper("k1").resolve("a/big"), big);
        Files.write(upper("k1").resolve("copy"), big);
        long id = store.read(tx -> tx.snapshots().get("k1")).id();

        service.commit("layer1", "k1", Map.of());

        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        byte[] expected = InodeFingerprint.ofChunks(big.length, CHUNK, Arrays.asList(
                sha.digest(Arrays.copyOf(big, (int) CHUNK)), null, sha.digest(Arrays.copyOfRange(big, (int) (2 * CHUNK), big.length))));
        byte[] image = Files.readAllBytes(layout.image(id));
        int first = indexOf(image, expected, 0);
        assertTrue(first > 0, "the image holds big's fingerprint");
        assertTrue(indexOf(image, expected, first + 1) > 0, "and copy's, the same");
    }

    /** Byte search: ISO-8859-1 maps each byte to one char, so String's search finds the same offsets. */
    private static int indexOf(byte[] hay, byte[] needle, int from) {
        return new String(hay, StandardCharsets.ISO_8859_1).indexOf(new String(needle, StandardCharsets.ISO_8859_1), from);
    }

    @Test
    void theSameContentTwiceAddsNothingToThePool() throws IOException {
        start("native", 0);
        byte[] data = random((int) (1.5 * CHUNK), 2);
        for (String k : List.of("a", "b")) {
            service.prepare(k, "", Map.of());
            Files.write(upper(k).resolve("f"), data);
            service.commit("layer-" + k, k, Map.of());
        }
        assertEquals(List.of((long) data.length, 0L), newBytes);
        assertEquals(2, store.read(tx -> tx.chunks().figures()).chunks());
    }

    @Test
    void mountsAreThoseOfContainerdsOverlaySnapshotter() throws IOException {
        start("native", 0);
        service.prepare("k1", "", Map.of());
        service.commit("l1", "k1", Map.of());
        service.prepare("k2", "l1", Map.of());
        service.commit("l2", "k2", Map.of());
        long l1 = store.read(tx -> tx.snapshots().get("l1")).id(), l2 = store.read(tx -> tx.snapshots().get("l2")).id();

        List<Mount> active = service.prepare("c", "l2", Map.of());
        long c = store.read(tx -> tx.snapshots().get("c")).id();
        assertEquals(List.of(new Mount("overlay", "overlay", List.of("index=off", "workdir=" + layout.work(c), "upperdir=" + layout.fs(c),
                "lowerdir=" + layout.mnt(l2) + ":" + layout.mnt(l1)))), active);
        assertEquals(active, service.mounts("c"));
        assertEquals(List.of(new Mount("bind", layout.mnt(l1).toString(), List.of("ro", "rbind"))), service.view("v", "l1", Map.of()));
        SnapshotException e = assertThrows(SnapshotException.class, () -> service.mounts("l1"));
        assertEquals(SnapshotException.Code.FAILED_PRECONDITION, e.code());
    }

    @Test
    void mountsAnswersWhileACommitsTransactionRunsAndARemovedSnapshotIsNotFoundAtOnce() throws Exception {
        start("native", 0);
        service.prepare("k1", "", Map.of());
        service.commit("l1", "k1", Map.of());
        List<Mount> prepared = service.prepare("c", "l1", Map.of());
        CountDownLatch inside = new CountDownLatch(1), release = new CountDownLatch(1);
        Thread writer = Thread.ofPlatform().start(() -> store.write("commit snapshot", tx -> {
            tx.snapshots().insert(Kind.ACTIVE, "pending", 0);
            inside.countDown();
            release.await(); // as a Commit's chunk rows and fsync: the store's one write connection is busy
            return null;
        }));
        try {
            assertTrue(inside.await(10, TimeUnit.SECONDS));
            assertTimeoutPreemptively(Duration.ofSeconds(2), () -> assertEquals(prepared, service.mounts("c")), "Mounts waited for the write");
            SnapshotException e = assertThrows(SnapshotException.class, () -> service.mounts("pending"));
            assertEquals(SnapshotException.Code.NOT_FOUND, e.code(), "an uncommitted snapshot has no mounts");
        } finally {
            release.countDown();
            writer.join();
        }
        service.remove("c");
        SnapshotException e = assertThrows(SnapshotException.class, () -> service.mounts("c"));
        assertEquals(SnapshotException.Code.NOT_FOUND, e.code());
    }

    @Test
    void aKeptMountsAnswerNeverOutlivesTheSnapshotNorItsKeyTakenAgain() throws Exception {
        start("native", 0);
        service.prepare("k1", "", Map.of());
        service.commit("l1", "k1", Map.of());
        service.prepare("k2", "l1", Map.of());
        service.commit("l2", "k2", Map.of());
        // a reader asking all along, as probes and kubelets do, keeps answers around between the writes
        List<Mount> steady = service.view("steady", "l1", Map.of());
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.atomic.AtomicReference<Throwable> failed = new java.util.concurrent.atomic.AtomicReference<>();
        Thread reader = Thread.ofPlatform().start(() -> {
            try {
                while (!stop.get()) assertEquals(steady, service.mounts("steady"));
            } catch (Throwable t) {
                failed.set(t);
            }
        });
        try {
            for (int i = 0; i < 40; i++) {
                String parent = i % 2 == 0 ? "l1" : "l2";
                List<Mount> m = service.prepare("c", parent, Map.of());
                assertEquals(m, service.mounts("c"));
                assertEquals(m, service.mounts("c"), "asked again before any write");
                service.remove("c");
                SnapshotException e = assertThrows(SnapshotException.class, () -> service.mounts("c"), "removed: round " + i);
                assertEquals(SnapshotException.Code.NOT_FOUND, e.code());
            }
            // the key of an active snapshot that is committed: gone as an active one, the name is a layer
            service.prepare("k3", "l2", Map.of());
            assertEquals(1, service.mounts("k3").size());
            service.commit("l3", "k3", Map.of());
            assertEquals(SnapshotException.Code.NOT_FOUND, assertThrows(SnapshotException.class, () -> service.mounts("k3")).code());
            assertEquals(SnapshotException.Code.FAILED_PRECONDITION, assertThrows(SnapshotException.class, () -> service.mounts("l3")).code());
        } finally {
            stop.set(true);
            reader.join();
        }
        assertEquals(null, failed.get());
    }

    @Test
    void aFailedMountLeavesTheSnapshotActiveWithItsDataAndNothingInThePool() throws IOException {
        start("native", 0);
        service.prepare("k", "", Map.of());
        byte[] data = random((int) CHUNK + 10, 3);
        Files.write(upper("k").resolve("f"), data);
        long id = store.read(tx -> tx.snapshots().get("k")).id();
        mounter.fail = true;
        assertThrows(RuntimeException.class, () -> service.commit("l", "k", Map.of()));
        assertEquals(Kind.ACTIVE, service.stat("k").kind());
        assertArrayEquals(data, Files.readAllBytes(upper("k").resolve("f")));
        assertFalse(Files.exists(layout.image(id)));
        assertFalse(Files.exists(layout.image(id).resolveSibling("layer.erofs.tmp")));
        assertEquals(0, store.read(tx -> tx.chunks().figures()).chunks(), "the chunks the failed commit stored are not kept");

        mounter.fail = false;
        service.commit("l", "k", Map.of()); // and it commits once the mount works
        assertEquals(Kind.COMMITTED, service.stat("l").kind());
    }

    @Test
    void aFullPoolIsResourceExhaustedAndLosesNothing() throws IOException {
        start("native", 2 * CHUNK);
        service.prepare("k", "", Map.of());
        byte[] data = random((int) (3 * CHUNK), 4);
        Files.write(upper("k").resolve("f"), data);
        SnapshotException e = assertThrows(SnapshotException.class, () -> service.commit("l", "k", Map.of()));
        assertEquals(SnapshotException.Code.RESOURCE_EXHAUSTED, e.code());
        assertEquals(Kind.ACTIVE, service.stat("k").kind());
        assertArrayEquals(data, Files.readAllBytes(upper("k").resolve("f")));
    }

    @Test
    void removingALayerUnmountsItAndFreesItsChunksButNotWhileItHasChildren() throws IOException {
        start("native", 0);
        service.prepare("k", "", Map.of());
        Files.write(upper("k").resolve("f"), random((int) CHUNK, 5));
        service.commit("l", "k", Map.of());
        long id = store.read(tx -> tx.snapshots().get("l")).id();
        service.prepare("c", "l", Map.of());

        SnapshotException e = assertThrows(SnapshotException.class, () -> service.remove("l"));
        assertEquals(SnapshotException.Code.FAILED_PRECONDITION, e.code());
        assertTrue(mounter.mounted.containsKey(layout.mnt(id)));

        service.remove("c");
        service.remove("l");
        assertFalse(mounter.mounted.containsKey(layout.mnt(id)));
        assertEquals(0, store.read(tx -> tx.chunks().figures()).chunks());
        assertEquals(SnapshotException.Code.NOT_FOUND, assertThrows(SnapshotException.class, () -> service.stat("l")).code());
    }

    @Test
    void commitChecksItsNamesBeforeBuilding() throws IOException {
        start("native", 0);
        service.prepare("k", "", Map.of());
        service.prepare("k2", "", Map.of());
        service.commit("taken", "k2", Map.of());
        assertEquals(SnapshotException.Code.ALREADY_EXISTS, assertThrows(SnapshotException.class, () -> service.commit("taken", "k", Map.of())).code());
        assertEquals(SnapshotException.Code.NOT_FOUND, assertThrows(SnapshotException.class, () -> service.commit("x", "missing", Map.of())).code());
        assertEquals(SnapshotException.Code.FAILED_PRECONDITION, assertThrows(SnapshotException.class, () -> service.commit("y", "taken", Map.of())).code());
        assertEquals(Kind.ACTIVE, service.stat("k").kind());
    }

    private byte[] readPool(long offset, int length) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(layout.pool().toFile(), "r")) {
            byte[] b = new byte[length];
            f.seek(offset);
            f.readFully(b);
            return b;
        }
    }
}
