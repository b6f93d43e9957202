package org.dedupsnapshotter.itest;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A mirror named in hosts.toml (docker-registry as a pull-through cache of the upstream, as Harbor or a registry
 * cache is deployed) serves a node's lazy pull and its containers' demand reads; killed mid-run, the reads go on from
 * the upstream within the read deadline, right bytes and no EIO. Counted in both registries' logs.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class LazyMirrorTest {
    static final Duration DEADLINE = Duration.ofSeconds(10);
    static MirroredImage world;
    static TestEnv node;

    @BeforeAll
    static void start() throws Exception {
        world = new MirroredImage();
        node = TestEnv.node(world.dir, world.nodeConfig(DEADLINE));
    }

    @AfterAll
    static void stop() throws Exception {
        if (node != null) node.close();
        if (world != null) world.close();
    }

    private static long readsFailed() throws Exception { return node.stats().path("lazy").path("readsFailed").asLong(); }

    @Test
    @Order(1)
    void theMirrorServesThePullAndTheDemandReads() throws Exception {
        long up = world.upstream.log().mark(), mir = world.mirror.log().mark();
        world.pull(node);
        Proc.Result r = world.read(node, "mirror-read", 0, 1, 2);
        assertTrue(MirroredImage.readRight(r, 0, 1, 2), "wrong bytes or a failed read:\n" + r.out() + node.daemon.logTail());

        RegistryLog.BlobTraffic daemonAtMirror = world.mirror.log().blobTrafficSince(mir, MirroredImage.DAEMON_AGENT);
        RegistryLog.BlobTraffic containerdAtMirror = world.mirror.log().blobTrafficSince(mir, "containerd/");
        RegistryLog.BlobTraffic daemonAtUpstream = world.upstream.log().blobTrafficSince(up, MirroredImage.DAEMON_AGENT);
        RegistryLog.BlobTraffic containerdAtUpstream = world.upstream.log().blobTrafficSince(up, "containerd/");
        RegistryLog.BlobTraffic mirrorAtUpstream = world.upstream.log().blobTrafficSince(up, MirroredImage.MIRROR_AGENT);
        System.out.println("mirror: at the mirror: the daemon " + daemonAtMirror + ", containerd " + containerdAtMirror + "; at the upstream: the daemon " + daemonAtUpstream
                + ", containerd " + containerdAtUpstream + ", the mirror " + mirrorAtUpstream + "; image blobs " + world.blobBytes + " B");
        // the TOCs and at least the three files' chunks were read at the mirror, nothing by the node at the upstream
        assertTrue(daemonAtMirror.requests() >= 3 + 2, "the daemon's reads did not go to the mirror: " + daemonAtMirror + "\n" + node.daemon.logTail());
        assertTrue(containerdAtMirror.requests() > 0, "containerd's pull did not go to the mirror: " + containerdAtMirror);
        assertEquals(0, daemonAtUpstream.requests(), "the daemon read from the upstream with the mirror up: " + daemonAtUpstream);
        assertEquals(0, containerdAtUpstream.requests(), "containerd read blobs from the upstream with the mirror up: " + containerdAtUpstream);
        assertTrue(mirrorAtUpstream.requests() > 0, "the mirror fetched nothing from the upstream: " + mirrorAtUpstream);
    }

    @Test
    @Order(2)
    void theMirrorKilledMidRunTheReadsGoOnFromTheUpstream() throws Exception {
        if (!node.ctrResult("images", "ls", "-q").out().contains(world.image)) world.pull(node);
        world.read(node, "mirror-warm", 0); // the shell's chunks fetched while the mirror is up: what follows reads only files
        long up = world.upstream.log().mark(), failedBefore = readsFailed();
        world.mirror.kill9();
        long t0 = System.nanoTime();
        Proc.Result r = world.read(node, "mirror-gone", 3, 4, 5);
        double seconds = (System.nanoTime() - t0) / 1e9;
        assertTrue(MirroredImage.readRight(r, 3, 4, 5), "wrong bytes or a failed read with the mirror gone:\n" + r.out() + node.daemon.logTail());
        assertEquals(failedBefore, readsFailed(), "a read failed on the way:\n" + node.daemon.logTail());
        RegistryLog.BlobTraffic daemonAtUpstream = world.upstream.log().blobTrafficSince(up, MirroredImage.DAEMON_AGENT);
        System.out.println("mirror killed: 3 files read from the upstream in " + seconds + " s (container start included); the daemon at the upstream: " + daemonAtUpstream);
        assertTrue(daemonAtUpstream.ranges() >= 3, "the files' chunks were not read from the upstream: " + daemonAtUpstream);
        // a fallback costs a refused connection, not a deadline: the whole container run stays inside one read deadline
        assertTrue(seconds < DEADLINE.toSeconds(), "the reads took " + seconds + " s with the mirror gone (deadline " + DEADLINE.toSeconds() + " s)");
    }
}
