package org.dedupsnapshotter.itest;

import org.dedupsnapshotter.proto.snapshots.v1.Info;
import org.dedupsnapshotter.proto.snapshots.v1.ListSnapshotsRequest;
import org.dedupsnapshotter.proto.snapshots.v1.UsageRequest;

import com.fasterxml.jackson.databind.JsonNode;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import org.junit.jupiter.params.AfterParameterizedClassInvocation;
import org.junit.jupiter.params.BeforeParameterizedClassInvocation;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What a kubelet does, through CRI on containerd 2.4 driven by crictl: pods whose sandbox image (built here, pushed
 * to the test registry) and containers live in dedup, networked by Debian's bridge + host-local CNI plugins; a plain
 * image and a converted (lazy) one; `crictl imagefsinfo` and `crictl rmi`; the daemon killed under a running pod.
 * Once with CRI's default pull (the transfer service) and once with disable_snapshot_annotations = false (which
 * makes CRI pull with containerd's local client).
 */
@ParameterizedClass(name = "localPull={0}")
@ValueSource(booleans = {false, true})
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class CriPodTest {
    static final int FILE = 6 << 20;
    /** The pause container: waits for SIGTERM (it is PID 1 of the pod; only a trapped signal reaches it). */
    static final String WAIT_FOR_TERM = "trap 'exit 0' TERM; while :; do sleep 1; done";

    @Parameter
    boolean localPull;

    static CriNode node;
    static TestEnv env;
    static SlowProxy proxy;
    static String plain;

    @BeforeParameterizedClassInvocation
    static void start(boolean localPull) throws Exception {
        node = CriNode.start(Containerd.primary(), localPull);
        env = node.env;
        OciImage.push(env.registry(), "itest/pause", "1", List.of(Images.base().finish()), List.of("/bin/sh", "-c", WAIT_FOR_TERM));
        plain = OciImage.push(env.registry(), "itest/fidelity", "1", Images.fidelity(), List.of("/bin/sh"));
        // lazy images are served through a slow link, so what a container reads before its image is here shows
        proxy = new SlowProxy(env.registryPort, 2 << 20);
        node.trustRegistry(proxy.address());
    }

    @AfterParameterizedClassInvocation
    static void stop() throws Exception {
        if (proxy != null) proxy.close();
        if (node != null) node.close();
    }

    // ------------------------------------------------------------------ images

    static byte[] dataLayer(long seed) throws Exception {
        TarWriter t = new TarWriter().dir("./", TarWriter.Meta.of(0755)).dir("data", TarWriter.Meta.of(0755));
        for (int i = 0; i < 4; i++) t.file("data/f" + i, Images.random(seed + i, FILE), TarWriter.Meta.of(0644));
        return t.finish();
    }

    static String sha(long seed) throws Exception { return Images.sha256sum(Images.random(seed, FILE)); }

    /** busybox and four 6 MiB files of its own (seed..seed+3), converted and served through the slow proxy. */
    static String lazyImage(String name, long seed) throws Exception {
        String original = OciImage.push(env.registry(), "itest/" + name, "1", List.of(Images.base().finish(), dataLayer(seed)), List.of("/bin/sh"));
        return Images.convert(original, proxy.address() + "/itest/" + name + "-lazy:1");
    }

    /** The sum of the image's layer blobs' sizes (what a plain pull would download). */
    static long layerBytes(String ref) throws Exception {
        long sum = 0;
        for (JsonNode l : ImageRootfs.manifest(env, CriNode.K8S, ref).path("layers")) sum += l.path("size").asLong();
        return sum;
    }

    /** Bytes the daemon fetched from registries for lazy layers (on demand, in the background, TOCs). */
    static long lazyFetched() throws Exception {
        JsonNode l = env.stats().path("lazy");
        return l.path("fetchedDemandBytes").asLong() + l.path("fetchedPrefetchBytes").asLong() + l.path("fetchedTocBytes").asLong();
    }

    // ------------------------------------------------------------------ the daemon's snapshots

    /** The daemon's snapshots (containerd's backend keys, "namespace/id/key"). */
    static List<Info> daemonSnapshots() {
        List<Info> out = new ArrayList<>();
        var it = env.snapshots().list(ListSnapshotsRequest.newBuilder().setSnapshotter("dedup").build());
        while (it.hasNext()) out.addAll(it.next().getInfoList());
        return out;
    }

    static boolean hasSnapshotOf(String containerId) {
        return daemonSnapshots().stream().anyMatch(i -> i.getName().endsWith("/" + containerId));
    }

    /** containerd removes a deleted container's snapshot from the snapshotter in its garbage collection, soon after. */
    static void assertSnapshotGoneSoon(String containerId) throws Exception {
        for (int i = 0; i < 100 && hasSnapshotOf(containerId); i++) Thread.sleep(100);
        assertFalse(hasSnapshotOf(containerId), "the removed container's snapshot is still in the daemon after 10 s");
    }

    /** What CRI sums for its image filesystem: Usage of every snapshot of its namespace, asked of the daemon. */
    static long k8sUsage() {
        long sum = 0;
        for (Info i : daemonSnapshots()) {
            if (!i.getName().startsWith(CriNode.K8S + "/")) continue;
            try {
                sum += env.snapshots().usage(UsageRequest.newBuilder().setSnapshotter("dedup").setKey(i.getName()).build()).getSize();
            } catch (StatusRuntimeException e) { // removed by containerd's GC since the list, as CRI's own sum skips it
                if (e.getStatus().getCode() != Status.Code.NOT_FOUND) throw e;
            }
        }
        return sum;
    }

    static void assertUnpackedIntoDedup(String ref) throws Exception {
        for (String chain : ImageRootfs.chainIds(env, CriNode.K8S, ref)) {
            String info = ImageRootfs.ctr(env, CriNode.K8S, "snapshots", "--snapshotter", "dedup", "info", chain);
            assertTrue(info.contains("\"Kind\": \"Committed\""), info);
        }
    }

    // ------------------------------------------------------------------ tests

    @Test
    @Order(1)
    void aPodOfAPlainImageRunsLogsExecsAndIsRemoved() throws Exception {
        String pod = node.runPod("plain");
        assertEquals("SANDBOX_READY", node.podState(pod));
        assertUnpackedIntoDedup(CriNode.sandboxImage(env));
        node.crictl("pull", plain);
        assertUnpackedIntoDedup(plain);

        String c = node.runContainer(pod, "plain-app", plain, "/bin/sh", "-c", "cat /etc/hello; echo ready; " + WAIT_FOR_TERM);
        assertEquals("CONTAINER_RUNNING", node.containerState(c));
        String logs = node.awaitLogs(c, "ready", Duration.ofSeconds(60));
        assertTrue(logs.contains("hello again from layer 3"), logs);
        String sum = node.crictl("exec", c, "sha256sum", "/data/big");
        assertTrue(sum.contains(Images.sha256sum(Images.BIG)), sum);
        assertTrue(hasSnapshotOf(c), "the container's root is not a dedup snapshot: " + daemonSnapshots());

        node.crictl("stop", "-t", "10", c);
        assertEquals("CONTAINER_EXITED", node.containerState(c));
        node.crictl("rm", c);
        assertEquals(List.of(), CriNode.ids(node.crictl("ps", "-a", "-q", "--pod", pod)));
        assertSnapshotGoneSoon(c);
        node.removePod(pod);
        assertEquals(List.of(), CriNode.ids(node.crictl("pods", "-q", "--id", pod)));
        env.assertFsckClean();
    }

    @Test
    @Order(2)
    void imagefsinfoReportsDedupsRootAndTheUsageOfItsSnapshots() throws Exception {
        node.crictl("pull", plain);
        JsonNode fs = node.crictlJson("imagefsinfo", "-o", "json").path("status").path("imageFilesystems").get(0);
        assertEquals(env.dedupRoot.toString(), fs.path("fsId").path("mountpoint").asText(), fs.toString());
        // CRI refreshes its figures every stats_collect_period (1 s here)
        long expected = k8sUsage();
        long used = -1;
        for (int i = 0; i < 100 && used != expected; i++) {
            Thread.sleep(100);
            used = node.crictlJson("imagefsinfo", "-o", "json").path("status").path("imageFilesystems").get(0).path("usedBytes").path("value").asLong();
            expected = k8sUsage();
        }
        assertEquals(expected, used, "imagefsinfo's usedBytes against the daemon's Usage of CRI's snapshots");
        assertTrue(used >= Images.BIG.length, "the fidelity image alone holds more than " + used);
    }

    @Test
    @Order(3)
    void rmiThenContainerdsGcGivesThePoolSpaceBack() throws Exception {
        String ref = OciImage.push(env.registry(), "itest/removable", "1", List.of(Images.base().finish(), dataLayer(90)), List.of("/bin/sh"));
        long before = env.stats().path("storedBytes").asLong();
        node.crictl("pull", ref);
        long pulled = env.stats().path("storedBytes").asLong();
        assertTrue(pulled - before >= 4L * FILE, "the image's chunks were not stored: " + before + " -> " + pulled);

        node.crictl("rmi", ref);
        long after = pulled;
        for (int i = 0; i < 300 && after != before; i++) {
            Thread.sleep(100);
            after = env.stats().path("storedBytes").asLong();
        }
        assertEquals(before, after, "the pool did not give the removed image's chunks back");
        assertTrue(node.crictl("images").contains("itest/fidelity"), "the other images stay");
        env.assertFsckClean();
    }

    @Test
    @Order(4)
    void aLazyPodStartsBeforeItsImageIsDownloaded() throws Exception {
        String lazy = lazyImage("app", 40);
        long fetched0 = lazyFetched();
        node.crictl("pull", lazy);
        assertUnpackedIntoDedup(lazy);
        List<String> content = List.of(ImageRootfs.ctr(env, CriNode.K8S, "content", "ls", "-q").split("\n"));
        for (String layer : ImageRootfs.layerDigests(env, CriNode.K8S, lazy))
            assertFalse(content.contains(layer), "CRI downloaded layer blob " + layer);

        String pod = node.runPod("lazy");
        // the first output needs a chunk of the image's own (busybox's chunks are in the pool with the sandbox image)
        String c = node.runContainer(pod, "lazy-app", lazy, "/bin/sh", "-c", "head -c 4 /data/f0 >/dev/null && echo started; " + WAIT_FOR_TERM);
        node.awaitLogs(c, "started", Duration.ofSeconds(60));
        long atFirstOutput = lazyFetched() - fetched0;
        long image = layerBytes(lazy);
        System.out.printf("CriPodTest (localPull=" + localPull + "): lazy pod's first output after %d bytes fetched of a %d-byte image (%s)%n", atFirstOutput, image, env.stats().path("lazy"));
        assertTrue(atFirstOutput >= FILE / 2, "the first output came before f0's first chunk was fetched: " + atFirstOutput);
        assertTrue(atFirstOutput < image / 2, "fetched " + atFirstOutput + " bytes of a " + image + "-byte image before the first output");

        String sums = node.crictl("exec", c, "sha256sum", "/data/f0", "/data/f3");
        assertTrue(sums.contains(sha(40)) && sums.contains(sha(43)), sums);
        node.removePod(pod);
    }

    @Test
    @Order(5)
    void theDaemonKilledUnderARunningPodLeavesItReadingTheRightBytes() throws Exception {
        String lazy = lazyImage("killed", 70);
        node.crictl("pull", lazy);
        String pod = node.runPod("killed");
        String c = node.runContainer(pod, "killed-app", lazy, "/bin/sh", "-c", "echo started; " + WAIT_FOR_TERM);
        node.awaitLogs(c, "started", Duration.ofSeconds(60));

        Proc reader = node.crictlInBackground("killed-reader", "exec", c, "sha256sum", "/data/f2", "/data/f3");
        for (int i = 0; i < 600 && env.stats().path("lazy").path("readersWaiting").asLong() == 0; i++) Thread.sleep(20);
        assertTrue(env.stats().path("lazy").path("readersWaiting").asLong() > 0, "no reader ever waited for a chunk");
        env.killDaemon();
        Thread.sleep(1000);
        assertTrue(reader.alive(), "the exec's reader died with the daemon:\n" + reader.logTail());
        assertEquals("SANDBOX_READY", node.podState(pod));
        assertEquals("CONTAINER_RUNNING", node.containerState(c));

        env.startDaemon();
        assertEquals(0, reader.process.waitFor(), reader.logTail());
        String read = Files.readString(node.dir.resolve("killed-reader.out"));
        assertTrue(read.contains(sha(72)) && read.contains(sha(73)), "wrong bytes after the restart:\n" + read);
        String again = node.crictl("exec", c, "sha256sum", "/data/f1");
        assertTrue(again.contains(sha(71)), again);
        assertEquals("CONTAINER_RUNNING", node.containerState(c));

        // containerd redials the restarted daemon within its backoff (3 s at most): the removal then goes through
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (node.crictlResult("rmp", "-f", pod).code() != 0 && System.nanoTime() < deadline) Thread.sleep(200);
        assertEquals(List.of(), CriNode.ids(node.crictl("pods", "-q", "--id", pod)));
        assertSnapshotGoneSoon(c);
    }
}
