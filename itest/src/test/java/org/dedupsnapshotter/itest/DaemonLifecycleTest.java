package org.dedupsnapshotter.itest;

import org.dedupsnapshotter.proto.snapshots.v1.CommitSnapshotRequest;
import org.dedupsnapshotter.proto.snapshots.v1.PrepareSnapshotRequest;
import org.dedupsnapshotter.proto.snapshots.v1.StatSnapshotRequest;
import org.dedupsnapshotter.sys.Libc;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** Start-up and shutdown: one daemon per root and per socket, a private socket, stale sockets replaced, mounts kept. */
class DaemonLifecycleTest {
    TestEnv env;

    @BeforeEach
    void start() throws Exception {
        env = TestEnv.daemonOnly();
    }

    @AfterEach
    void stop() throws Exception {
        env.close();
    }

    private Proc.Result runDaemon(Path root, Path sock) throws Exception {
        return Proc.run(Duration.ofSeconds(60), List.of(TestEnv.TOP.resolve("bin/dedup-snapshotter").toString(),
                "--root", root.toString(), "--address", sock.toString()));
    }

    /** No config file: compression is on by default (decision 69), and the start-up line and stats say which. */
    @Test
    void theDefaultCompressionIsZstdByCompactionAndSaidSo() throws Exception {
        String summary = "zstd by compaction (level 9, 128 KiB pclusters, after 1m idle, or dedupctl compact; Commit writes uncompressed layers)";
        // the start-up line is logged right after the socket starts serving, which is what the test waited for
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!Files.readString(env.daemon.log).contains("compression=" + summary) && System.nanoTime() < deadline) Thread.sleep(20);
        assertTrue(Files.readString(env.daemon.log).contains("compression=" + summary), env.daemon.logTail());
        assertEquals(summary, env.stats().path("compression").asText());
    }

    @Test
    void socketIsPrivate() throws Exception {
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(env.dedupSock)));
    }

    @Test
    void secondDaemonOnTheSameRootOrSocketRefusesToStart() throws Exception {
        Proc.Result sameRoot = runDaemon(env.dedupRoot, env.dir.resolve("other.sock"));
        assertNotEquals(0, sameRoot.code());
        assertTrue(sameRoot.out().contains("another dedup-snapshotter") && sameRoot.out().contains("pid " + env.daemon.pid()), sameRoot.out());

        Proc.Result sameSocket = runDaemon(env.dir.resolve("other-root"), env.dedupSock);
        assertNotEquals(0, sameSocket.code());
        assertTrue(sameSocket.out().contains("already listening on " + env.dedupSock), sameSocket.out());
        // the first daemon was not disturbed
        assertTrue(env.daemon.alive());
        env.snapshots().prepare(PrepareSnapshotRequest.newBuilder().setKey("still-serving").build());
    }

    @Test
    void theDaemonsNativeLibrariesAreTheBuildsNotCopiesAKill9WouldLeaveInTmp() throws Exception {
        // sqlite-jdbc on its own copies its native library to java.io.tmpdir under a new name at every start and
        // deletes it at exit: every daemon killed with -9 left 1.1 MB in /tmp for good
        List<String> sqlite = Files.readAllLines(Path.of("/proc/" + env.daemon.pid() + "/maps")).stream()
                .filter(l -> l.contains("libsqlitejdbc")).map(l -> l.substring(l.indexOf('/'))).distinct().toList();
        assertEquals(List.of(TestEnv.TOP.resolve("build/lib/native/libsqlitejdbc.so").toRealPath().toString()), sqlite);
        // netty's epoll library the same way (java.library.path, which netty tries before its copy to /tmp)
        List<String> epoll = Files.readAllLines(Path.of("/proc/" + env.daemon.pid() + "/maps")).stream()
                .filter(l -> l.contains("libnetty_transport_native_epoll")).map(l -> l.substring(l.indexOf('/'))).distinct().toList();
        assertEquals(List.of(TestEnv.TOP.resolve("build/lib/native/libnetty_transport_native_epoll_x86_64.so").toRealPath().toString()), epoll);
    }

    @Test
    void staleSocketAfterKill9IsReplaced() throws Exception {
        env.killDaemon();
        assertTrue(Files.exists(env.dedupSock), "kill -9 leaves the socket file behind");
        env.startDaemon();
        env.snapshots().prepare(PrepareSnapshotRequest.newBuilder().setKey("after-stale").build());
    }

    @Test
    void sigtermStopsCleanlyAndKeepsLayerMounts() throws Exception {
        var api = env.snapshots();
        api.prepare(PrepareSnapshotRequest.newBuilder().setKey("a").build());
        api.commit(CommitSnapshotRequest.newBuilder().setName("layer").setKey("a").build());
        List<String> mounts = env.layerMounts();
        assertEquals(1, mounts.size(), "one mounted layer: " + mounts);

        assertEquals(143, env.stopDaemon(), "exit status after SIGTERM");
        assertFalse(Files.exists(env.dedupSock), "socket removed on a clean stop");
        assertEquals(mounts, env.layerMounts(), "a stop must leave layer mounts for running containers");

        env.startDaemon();
        assertEquals(mounts, env.layerMounts(), "restart mounted a layer twice or dropped it");
        assertEquals("layer", env.snapshots().stat(StatSnapshotRequest.newBuilder().setKey("layer").build()).getInfo().getName());
        assertTrue(Files.readString(env.daemon.log).contains("1 layers already mounted"), env.daemon.logTail());
    }

    @Test
    void readinessIsSignalledOnceTheSocketServesAndAStopIsAnnounced() throws Exception {
        assertEquals(143, env.stopDaemon());
        try (NotifySocket systemd = new NotifySocket(env.dir.resolve("notify.sock"))) {
            // the service manager's side: at READY=1, containerd would connect at once, so the socket must serve then
            var atReady = new java.util.concurrent.CompletableFuture<String>();
            Thread watcher = Thread.ofVirtual().start(() -> {
                try {
                    String msg = systemd.receive(Duration.ofSeconds(60));
                    if (msg == null || !msg.contains("READY=1")) {
                        atReady.complete("no READY=1 but: " + msg);
                        return;
                    }
                    try (var ch = java.nio.channels.SocketChannel.open(java.net.StandardProtocolFamily.UNIX)) {
                        ch.connect(java.net.UnixDomainSocketAddress.of(env.dedupSock));
                        atReady.complete(msg);
                    }
                } catch (Exception e) {
                    atReady.complete("the socket did not serve at READY=1: " + e);
                }
            });
            env.startDaemon(java.util.Map.of("NOTIFY_SOCKET", systemd.path.toString()));
            String ready = atReady.get(60, java.util.concurrent.TimeUnit.SECONDS);
            watcher.join();
            assertTrue(ready.startsWith("READY=1"), ready);
            assertTrue(ready.contains("MAINPID=" + env.daemon.pid()), "MAINPID is the daemon's own: " + ready);
            env.snapshots().prepare(PrepareSnapshotRequest.newBuilder().setKey("after-ready").build());

            assertEquals(143, env.stopDaemon(), "a SIGTERM stop exits 143, which the unit counts as success (SuccessExitStatus)");
            String stopping = systemd.receive(Duration.ofSeconds(5));
            assertEquals("STOPPING=1", stopping);
        }
        assertTrue(Files.readString(TestEnv.TOP.resolve("packaging/systemd/dedup-snapshotter.service")).lines()
                .anyMatch(l -> l.equals("SuccessExitStatus=143")), "the unit counts exit status 143 as a clean stop");
        env.startDaemon(); // without NOTIFY_SOCKET: nothing to tell, starts as before
        env.snapshots().prepare(PrepareSnapshotRequest.newBuilder().setKey("no-systemd").build());
    }

    @Test
    void missingLayerMountsAreRestoredAndStrayOnesRemovedAtStart() throws Exception {
        var api = env.snapshots();
        api.prepare(PrepareSnapshotRequest.newBuilder().setKey("a").build());
        api.commit(CommitSnapshotRequest.newBuilder().setName("layer").setKey("a").build());
        env.killDaemon();
        // someone unmounted our layer, and a directory no snapshot owns appeared with a mount on it
        for (String m : env.layerMounts()) Libc.umount2(m, 0);
        Path stray = Files.createDirectories(env.dedupRoot.resolve("snapshots/999/mnt"));
        Libc.mount("tmpfs", stray.toString(), "tmpfs", 0, null);

        env.startDaemon();
        List<String> mounts = env.layerMounts();
        assertEquals(1, mounts.size(), mounts.toString());
        assertTrue(mounts.getFirst().endsWith("/mnt") && !mounts.getFirst().contains("/999/"), mounts.toString());
        assertFalse(Files.exists(env.dedupRoot.resolve("snapshots/999")), "stray directory kept");
    }

    @Test
    void rootOnOverlayfsIsRefusedNamingTheFix() throws Exception {
        Path base = env.dir.resolve("ovl-test");
        for (String d : List.of("lower", "upper", "work", "merged")) Files.createDirectories(base.resolve(d));
        Libc.mount("overlay", base.resolve("merged").toString(), "overlay", 0,
                "lowerdir=" + base.resolve("lower") + ",upperdir=" + base.resolve("upper") + ",workdir=" + base.resolve("work"));
        try {
            Proc.Result r = runDaemon(base.resolve("merged/root"), env.dir.resolve("ovl.sock"));
            assertEquals(1, r.code(), r.out());
            assertTrue(r.out().contains("is on overlay") && r.out().contains("choose a root on ext4"), r.out());
        } finally {
            Libc.umount2(base.resolve("merged").toString(), Libc.MNT_DETACH);
        }
    }
}
