package org.dedupsnapshotter.itest;

import org.dedupsnapshotter.lazy.registry.RegistryClient;
import org.dedupsnapshotter.proto.snapshots.v1.ListSnapshotsRequest;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.*;

/**
 * `bin/dedupctl pull` against a real containerd (2.4), registry and daemon: a plain image is downloaded and unpacked
 * through containerd's differ into dedup, with the labels containerd's own pull sets, and reads back as overlayfs
 * shows it; a converted image is made by the snapshotter from its TOCs, with no layer blob downloaded.
 */
class DedupctlPullTest {
    static TestEnv env;
    static String original;

    @BeforeAll
    static void start() throws Exception {
        env = TestEnv.full();
        original = OciImage.push(env.registry(), "itest/fidelity", "1", Images.fidelity(), List.of("/bin/sh"));
    }

    @AfterAll
    static void stop() throws Exception {
        if (env != null) env.close();
    }

    static Proc.Result pull(String ref) throws Exception {
        return TestEnv.cli("pull", "--plain-http", "--containerd", env.containerdSock.toString(), "--namespace", TestEnv.NS, ref);
    }

    private static List<String> layerDigests(String ref) throws Exception {
        List<String> out = new ArrayList<>();
        ImageRootfs.manifest(env, TestEnv.NS, ref).path("layers").forEach(l -> out.add(l.path("digest").asText()));
        return out;
    }

    /** `ctr content ls` as digest → its labels column. */
    private static Map<String, String> content() throws Exception {
        Map<String, String> out = new TreeMap<>();
        for (String line : env.ctr("content", "ls").split("\n")) {
            String[] f = line.trim().split("\\s+");
            if (f[0].startsWith("sha256:")) out.put(f[0], line);
        }
        return out;
    }

    /** The labels the daemon holds for the snapshot containerd knows as chainId. */
    private static Map<String, String> daemonLabels(String chainId) {
        var it = env.snapshots().list(ListSnapshotsRequest.newBuilder().setSnapshotter("dedup").build());
        while (it.hasNext())
            for (var info : it.next().getInfoList())
                if (chainId.equals(info.getLabelsMap().get("containerd.io/snapshot.ref"))) return info.getLabelsMap();
        return Map.of();
    }

    private static void assertNoLeasesLeft() throws Exception {
        String leases = env.ctr("leases", "ls");
        assertFalse(leases.contains("dedupctl-pull"), "dedupctl pull left its lease:\n" + leases);
    }

    @Test
    void aPlainImageIsDownloadedUnpackedIntoDedupRunsAndReadsAsOverlayfsShowsIt() throws Exception {
        Proc.Result r = pull(original).orThrow("dedupctl pull");
        System.out.println(r.out());
        assertTrue(r.out().contains("4 layers: 0 lazily (not downloaded), 4 downloaded"), r.out());
        assertNoLeasesLeft();

        // what containerd's own pull records: the blobs, GC references from manifest to config and layers, from
        // the config to the unpacked snapshot, the registry each blob came from, each layer's uncompressed digest
        JsonNode manifest = ImageRootfs.manifest(env, TestEnv.NS, original);
        String manifestDigest = ImageRootfs.manifestDigest(env, TestEnv.NS, original);
        Map<String, String> content = content();
        String m = content.get(manifestDigest);
        assertNotNull(m, "the manifest is in the content store");
        assertTrue(m.contains("containerd.io/gc.ref.content.config=" + manifest.path("config").path("digest").asText()), m);
        List<String> layers = layerDigests(original);
        for (int i = 0; i < layers.size(); i++) {
            assertTrue(m.contains("containerd.io/gc.ref.content.l." + i + "=" + layers.get(i)), m);
            String l = content.get(layers.get(i));
            assertNotNull(l, "layer " + i + " was downloaded");
            assertTrue(l.contains("containerd.io/uncompressed=sha256:") && l.contains("containerd.io/distribution.source.127.0.0.1=itest/fidelity"), l);
        }
        List<String> chain = ImageRootfs.chainIds(env, TestEnv.NS, original);
        String config = content.get(manifest.path("config").path("digest").asText());
        assertTrue(config.contains("containerd.io/gc.ref.snapshot.dedup=" + chain.getLast()), config);
        assertTrue(env.ctr("snapshots", "--snapshotter", "dedup", "info", chain.getLast()).contains("Committed"));
        // the snapshotter saw the labels a remote snapshotter needs (asked of the daemon itself)
        Map<String, String> top = daemonLabels(chain.getLast());
        assertEquals(original, top.get("containerd.io/snapshot/cri.image-ref"), top.toString());
        assertEquals(layers.getLast(), top.get("containerd.io/snapshot/cri.layer-digest"), top.toString());
        assertEquals(manifestDigest, top.get("containerd.io/snapshot/cri.manifest-digest"), top.toString());

        String out = env.ctr("run", "--rm", "--snapshotter", "dedup", original, "pulled-run", "/bin/sh", "-c", "cat /etc/hello; sha256sum /data/big");
        assertTrue(out.contains("hello again from layer 3"), out);
        assertTrue(out.contains(Images.sha256sum(Images.BIG)), out);

        env.ctr("images", "pull", "--plain-http", "--snapshotter", "overlayfs", original);
        Map<String, String> overlay = ImageRootfs.listing(env, TestEnv.NS, "overlayfs", original);
        Map<String, String> dedup = ImageRootfs.listing(env, TestEnv.NS, "dedup", original);
        assertTrue(overlay.size() > 50, "overlayfs listing looks empty: " + overlay.size());
        assertTrue(overlay.equals(dedup), () -> "differences (overlayfs vs dedup):\n" + TreeListing.diff(overlay, dedup));

        // a second pull finds everything in place
        Proc.Result again = pull(original).orThrow("dedupctl pull (again)");
        assertTrue(again.out().contains("0 downloaded (0 bytes), 4 already present"), again.out());
        // --json: the result as one JSON document on stdout (the per-layer lines go to stderr)
        Proc.Result json = Proc.run(Duration.ofMinutes(5), List.of("sh", "-c", "\"$0\" pull --plain-http --containerd \"$1\" --namespace \"$2\" --json \"$3\" 2>/dev/null",
                TestEnv.TOP.resolve("bin/dedupctl").toString(), env.containerdSock.toString(), TestEnv.NS, original)).orThrow("dedupctl pull --json");
        JsonNode n = new com.fasterxml.jackson.databind.ObjectMapper().readTree(json.out());
        assertEquals(4, n.get("present").asInt(), json.out());
        assertEquals(0, n.get("downloaded").asInt(), json.out());
        assertTrue(n.get("digest").asText().startsWith("sha256:"), json.out());
    }

    @Test
    void aConvertedImageIsPulledWithoutDownloadingAnyLayerAndRuns() throws Exception {
        String lazy = env.registry() + "/itest/fidelity-lazy:1";
        TestEnv.cli("convert", "--plain-http", original, lazy).orThrow("dedupctl convert");
        Proc.Result r = pull(lazy).orThrow("dedupctl pull");
        System.out.println(r.out());
        assertTrue(r.out().contains("4 layers: 4 lazily (not downloaded), 0 downloaded"), r.out());
        assertNoLeasesLeft();
        Map<String, String> content = content();
        for (String layer : layerDigests(lazy)) assertFalse(content.containsKey(layer), "layer blob " + layer + " was downloaded");

        String out = env.ctr("run", "--rm", "--snapshotter", "dedup", lazy, "lazy-run", "/bin/sh", "-c", "cat /etc/hello; sha256sum /data/big");
        assertTrue(out.contains("hello again from layer 3"), out);
        assertTrue(out.contains(Images.sha256sum(Images.BIG)), out);
        for (String layer : layerDigests(lazy)) assertFalse(content().containsKey(layer), "running downloaded layer blob " + layer);

        // the lazily made root filesystem is the original's, as containerd's overlayfs unpacks the original
        env.ctr("images", "pull", "--plain-http", "--snapshotter", "overlayfs", original);
        Map<String, String> overlay = ImageRootfs.listing(env, TestEnv.NS, "overlayfs", original);
        Map<String, String> dedup = ImageRootfs.listing(env, TestEnv.NS, "dedup", lazy);
        assertTrue(overlay.equals(dedup), () -> "differences (original on overlayfs vs converted, lazily on dedup):\n" + TreeListing.diff(overlay, dedup));
    }

    @Test
    void anIndexIsRecordedAsTheImageAndItsLinuxAmd64ImageIsPulled() throws Exception {
        RegistryClient registry = new RegistryClient(env.registry(), true, Optional.empty(), Duration.ofSeconds(30));
        OciImage.push(env.registry(), "itest/multi", "arm", List.of(new TarWriter().dir("./", TarWriter.Meta.of(0755))
                .file("arm", "arm", TarWriter.Meta.of(0644)).finish()), List.of("/bin/sh"));
        OciImage.push(env.registry(), "itest/multi", "amd", List.of(Images.base().dir("etc", TarWriter.Meta.of(0755))
                .file("etc/hello", "hello from amd64\n", TarWriter.Meta.of(0644)).finish()), List.of("/bin/sh"));
        RegistryClient.Fetched arm = registry.manifest("itest/multi", "arm"), amd = registry.manifest("itest/multi", "amd");
        String index = """
                {"schemaVersion":2,"mediaType":"%s","manifests":[
                 {"mediaType":"%s","digest":"%s","size":%d,"platform":{"architecture":"arm64","os":"linux"}},
                 {"mediaType":"%s","digest":"%s","size":%d,"platform":{"architecture":"amd64","os":"linux"}}]}"""
                .formatted(RegistryClient.OCI_INDEX, RegistryClient.OCI_MANIFEST, arm.digest(), arm.body().length,
                        RegistryClient.OCI_MANIFEST, amd.digest(), amd.body().length);
        String indexDigest = registry.pushManifest("itest/multi", "index", RegistryClient.OCI_INDEX, index.getBytes(StandardCharsets.UTF_8));
        String ref = env.registry() + "/itest/multi:index";

        Proc.Result r = pull(ref).orThrow("dedupctl pull (index)");
        assertTrue(r.out().contains("(" + indexDigest + ")") && r.out().contains("1 layer: 0 lazily (not downloaded), 1 downloaded"), r.out());
        assertEquals(indexDigest, ImageRootfs.manifestDigest(env, TestEnv.NS, ref), "the image record points at the index");
        String labels = content().get(indexDigest);
        assertTrue(labels.contains("containerd.io/gc.ref.content.m.0=" + arm.digest()) && labels.contains("containerd.io/gc.ref.content.m.1=" + amd.digest()), labels);
        assertTrue(content().containsKey(amd.digest()) && !content().containsKey(arm.digest()), "only the linux/amd64 manifest is fetched");
        String out = env.ctr("run", "--rm", "--snapshotter", "dedup", ref, "index-run", "/bin/cat", "/etc/hello");
        assertTrue(out.contains("hello from amd64"), out);
    }

    @Test
    void failuresSayWhatIsWrongAndLeaveNoLease() throws Exception {
        Proc.Result noSocket = TestEnv.cli("pull", "--containerd", env.dir.resolve("nothing.sock").toString(), original);
        assertEquals(3, noSocket.code(), noSocket.out()); // cannot connect
        assertTrue(noSocket.out().contains("containerd is not running: no socket at"), noSocket.out());
        // --address is the dedup daemon's socket everywhere; it was containerd's for pull before issue 22
        Proc.Result oldFlag = TestEnv.cli("pull", "--address", env.containerdSock.toString(), original);
        assertEquals(2, oldFlag.code(), oldFlag.out());
        assertTrue(oldFlag.out().contains("--containerd SOCK"), oldFlag.out());

        Proc.Result unreachable = pull("127.0.0.1:1/nothing:1");
        assertEquals(1, unreachable.code(), unreachable.out());
        assertTrue(unreachable.out().contains("cannot reach the registry 127.0.0.1:1"), unreachable.out());

        Proc.Result missing = pull(env.registry() + "/itest/fidelity:nope");
        assertEquals(1, missing.code(), missing.out());
        assertTrue(missing.out().contains("manifest itest/fidelity:nope") && missing.out().contains("404"), missing.out());

        Proc.Result noSnapshotter = TestEnv.cli("pull", "--plain-http", "--containerd", env.containerdSock.toString(), "--namespace", TestEnv.NS,
                "--snapshotter", "nosuch", original);
        assertEquals(1, noSnapshotter.code(), noSnapshotter.out());
        assertTrue(noSnapshotter.out().contains("nosuch"), noSnapshotter.out());
        assertNoLeasesLeft();

        assertEquals(2, TestEnv.cli("pull").code());
        assertEquals(2, TestEnv.cli("pull", "--namespace").code());
        assertEquals(2, TestEnv.cli("pull", "--what", original).code());
    }
}
