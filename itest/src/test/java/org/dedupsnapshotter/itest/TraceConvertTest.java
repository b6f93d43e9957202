package org.dedupsnapshotter.itest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.dedupsnapshotter.lazy.registry.RegistryClient;
import org.dedupsnapshotter.lazy.toc.LazyLayerFormat;
import org.dedupsnapshotter.lazy.toc.Toc;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.*;

/**
 * `dedupctl convert` with start-up traces (issue 7) against a real registry, containerd (2.4) and daemon: a traced
 * image (prefetch regions between each layer's tar and its TOC) still unpacks with containerd's own overlayfs to
 * exactly the original's root filesystem, and each prefetch entry is a member a node fetches with one Range
 * request; `--trace CMD` records the trace on this node through containerd and the daemon, then converts with it.
 */
class TraceConvertTest {
    static final String NOT_IN_IMAGE = "sha256:" + "0".repeat(64);
    static final int CHUNK = 4 << 20;
    static final ObjectMapper JSON = new ObjectMapper();
    static TestEnv env;
    static String original;
    static RegistryClient registry;

    @BeforeAll
    static void start() throws Exception {
        env = TestEnv.full();
        original = OciImage.push(env.registry(), "itest/fidelity", "1", Images.fidelity(), List.of("/bin/sh"));
        env.ctr("images", "pull", "--plain-http", "--snapshotter", "overlayfs", original);
        registry = new RegistryClient(env.registry(), true, Optional.empty(), Duration.ofSeconds(30));
    }

    @AfterAll
    static void stop() throws Exception {
        if (env != null) env.close();
    }

    /** A converted layer as a node sees it: its blob digest and size, and its TOC (footer, then TOC member). */
    record Layer(String digest, long size, long tocOffset, Toc toc) {}

    static List<Layer> layers(String repo, String tag) throws Exception {
        List<Layer> out = new ArrayList<>();
        for (JsonNode l : JSON.readTree(registry.manifest(repo, tag).body()).path("layers")) {
            String digest = l.path("digest").asText();
            long size = l.path("size").asLong();
            long[] toc = LazyLayerFormat.parseFooter(registry.blobRange(repo, digest, size - LazyLayerFormat.FOOTER_SIZE, LazyLayerFormat.FOOTER_SIZE));
            out.add(new Layer(digest, size, toc[0], Toc.parse(Images.gunzip(registry.blobRange(repo, digest, toc[0], (int) toc[1])))));
        }
        return out;
    }

    static Toc.Entry entry(Toc toc, String name) {
        return toc.entries.stream().filter(e -> e.name.equals(name)).reduce((a, b) -> b).orElseThrow(() -> new AssertionError("no " + name));
    }

    static String trace(List<String> chunks) throws Exception {
        return JSON.writeValueAsString(Map.of("image", "sha256:" + "f".repeat(64), "runs", 1, "layers", List.of(), "chunks", chunks));
    }

    /** Every prefetch entry inflates alone, from one Range request, to the chunk with its digest; the region ends at the non-data copy. */
    static void assertPrefetchMembersFetchAlone(String repo, Layer layer) throws Exception {
        List<Toc.Prefetch> prefetch = layer.toc().prefetch;
        if (prefetch.isEmpty()) return;
        long at = prefetch.getFirst().blobOffset();
        for (Toc.Prefetch p : prefetch) {
            assertEquals(at, p.blobOffset(), "the region's members are back to back, in rank order");
            byte[] chunk = Images.gunzip(registry.blobRange(repo, layer.digest(), p.blobOffset(), (int) p.blobLength()));
            assertEquals(p.size(), chunk.length);
            assertEquals(p.digest(), RegistryClient.sha256(chunk));
            at += p.blobLength();
        }
        // then the copy of the non-data members (decision 43), then the TOC member
        Toc.Region copy = layer.toc().nonData;
        assertEquals(at, copy.blobOffset(), "the non-data copy follows the region");
        assertEquals(layer.tocOffset(), copy.blobOffset() + copy.blobLength(), "the TOC member follows the copy");
    }

    static Map<String, String> rootfs(String snapshotter, String ref) throws Exception {
        Map<String, String> m = new TreeMap<>(ImageRootfs.listing(env, TestEnv.NS, snapshotter, ref));
        m.computeIfPresent("/", (k, v) -> v.replaceFirst(" mtime=\\d+", "")); // containerd skips a layer's root entry
        return m;
    }

    static void assertSameRootfsOnOverlayfs(String originalRef, String converted) throws Exception {
        env.ctr("images", "pull", "--plain-http", "--snapshotter", "overlayfs", converted);
        Map<String, String> before = rootfs("overlayfs", originalRef), after = rootfs("overlayfs", converted);
        assertTrue(before.size() > 10, "the original's listing looks empty: " + before.size());
        assertTrue(before.equals(after), () -> "differences (original vs traced):\n" + TreeListing.diff(before, after));
    }

    static long blobBytes(List<Layer> layers) { return layers.stream().mapToLong(Layer::size).sum(); }

    static List<Integer> ranks(Layer l) { return l.toc().prefetch.stream().map(Toc.Prefetch::rank).toList(); }

    @Test
    void anImageConvertedWithATraceFileUnpacksOnOverlayfsToTheOriginalRootfsAndItsPrefetchMembersFetchAlone() throws Exception {
        Proc.Result plain = TestEnv.cli("convert", "--plain-http", original, env.registry() + "/itest/fidelity-lazy:1").orThrow("dedupctl convert");
        List<Layer> untraced = layers("itest/fidelity-lazy", "1");
        Toc bottom = untraced.get(0).toc(), third = untraced.get(2).toc();
        List<Toc.Chunk> big = entry(bottom, "data/big").chunks;
        String one = entry(bottom, "opq/old1").chunks.getFirst().digest(); // "1": names/with space holds it too
        String zeros = RegistryClient.sha256(new byte[CHUNK]); // data/sparse's first chunk: a hole, never traced
        assertNull(entry(bottom, "data/sparse").chunks.getFirst().digest());
        List<String> chunks = List.of(big.get(2).digest(), NOT_IN_IMAGE, entry(bottom, "bin/busybox").chunks.getFirst().digest(),
                big.get(0).digest(), entry(third, "etc/hello").chunks.getFirst().digest(), one, zeros, big.get(2).digest());
        Path file = env.dir.resolve("trace.json");
        Files.writeString(file, trace(chunks));

        String traced = env.registry() + "/itest/fidelity-traced:1";
        Proc.Result r = TestEnv.cli("convert", "--plain-http", "--trace-file", file.toString(), original, traced).orThrow("dedupctl convert --trace-file");
        System.out.println(plain.out() + r.out());
        assertTrue(r.out().contains("traced: 5 of the trace's 7 chunks"), r.out());
        assertTrue(r.out().contains("2 not in this image"), r.out());

        List<Layer> layers = layers("itest/fidelity-traced", "1");
        assertEquals(List.of(0, 2, 3, 5), ranks(layers.get(0)), "the bottom layer's traced chunks, in trace order, each once");
        assertEquals(List.of(), ranks(layers.get(1)));
        assertEquals(List.of(4), ranks(layers.get(2)));
        assertEquals(List.of(), ranks(layers.get(3)));
        Set<String> seen = new HashSet<>();
        for (Layer l : layers) {
            assertPrefetchMembersFetchAlone("itest/fidelity-traced", l);
            for (Toc.Prefetch p : l.toc().prefetch) assertTrue(seen.add(p.digest()), p.digest() + " is in two prefetch regions");
        }
        for (int i = 0; i < 4; i++) {
            assertEquals(JSON.writeValueAsString(untraced.get(i).toc().entries), JSON.writeValueAsString(layers.get(i).toc().entries),
                    "layer " + (i + 1) + ": the tar part is laid out as without a trace");
            if (layers.get(i).toc().prefetch.isEmpty()) assertEquals(untraced.get(i).digest(), layers.get(i).digest(), "an untraced layer is the same blob");
        }
        long region = layers.stream().flatMap(l -> l.toc().prefetch.stream()).mapToLong(Toc.Prefetch::blobLength).sum();
        long growth = blobBytes(layers) - blobBytes(untraced);
        System.out.printf("traced image: %d blob bytes vs %d untraced (+%d, %.1f %%), of which the region's members %d, the TOCs' prefetch lists %d%n",
                blobBytes(layers), blobBytes(untraced), growth, 100.0 * growth / blobBytes(untraced), region, growth - region);
        assertTrue(growth >= region && growth - region < 4096, "what a trace adds: its members and the TOC's list; " + growth + " vs " + region);

        // a node without our snapshotter: containerd checks every new diff_id (region included) and unpacks the tars
        assertSameRootfsOnOverlayfs(original, traced);
        String out = env.ctr("run", "--rm", "--snapshotter", "overlayfs", traced, "traced-run", "/bin/sh", "-c", "cat /etc/hello; sha256sum /data/big");
        assertTrue(out.contains("hello again from layer 3") && out.contains(Images.sha256sum(Images.BIG)), out);
        // and ours, lazily
        TestEnv.cli("pull", "--plain-http", "--containerd", env.containerdSock.toString(), "--namespace", TestEnv.NS, traced).orThrow("dedupctl pull");
        String lazy = env.ctr("run", "--rm", "--snapshotter", "dedup", traced, "traced-lazy-run", "/bin/sh", "-c", "sha256sum /data/big");
        assertTrue(lazy.contains(Images.sha256sum(Images.BIG)), lazy + "\n" + env.daemon.logTail());
    }

    @Test
    void aTraceFromStdinWorksAndABadOneIsRefusedByName() throws Exception {
        Path bad = env.dir.resolve("bad-trace.json");
        Files.writeString(bad, "{\"chunks\": [\"sha256:nothex\"]}");
        Proc.Result r = TestEnv.cli("convert", "--plain-http", "--trace-file", bad.toString(), original, env.registry() + "/itest/x:1");
        assertEquals(1, r.code(), r.out());
        assertTrue(r.out().contains(bad + ": trace chunk 0 is not a digest"), r.out());
        Path good = env.dir.resolve("stdin-trace.json");
        Files.writeString(good, trace(List.of(RegistryClient.sha256(Arrays.copyOfRange(Images.BIG, 0, CHUNK)))));
        Proc.Result piped = Proc.run(Duration.ofMinutes(5), List.of("sh", "-c", "\"$0\" convert --plain-http --trace-file - \"$1\" \"$2\" < \"$3\"",
                TestEnv.TOP.resolve("bin/dedupctl").toString(), original, env.registry() + "/itest/fidelity-stdin:1", good.toString())).orThrow("convert --trace-file -");
        assertTrue(piped.out().contains("traced: 1 of the trace's 1 chunks"), piped.out());
        Proc.Result usage = TestEnv.cli("convert", "--trace-file", good.toString(), "--trace", "true", original, env.registry() + "/itest/x:1");
        assertEquals(2, usage.code(), usage.out());
        Proc.Result noContainerd = TestEnv.cli("convert", "--plain-http", "--trace", "true", "--containerd", env.dir.resolve("none.sock").toString(),
                "--address", env.dedupSock.toString(), original, env.registry() + "/itest/x:1");
        assertEquals(3, noContainerd.code(), noContainerd.out()); // cannot connect
        assertTrue(noContainerd.out().contains("containerd is not running: no socket at"), noContainerd.out());
        Proc.Result noDaemon = TestEnv.cli("convert", "--plain-http", "--trace", "true", "--containerd", env.containerdSock.toString(),
                "--address", env.dir.resolve("none.sock").toString(), original, env.registry() + "/itest/x:1");
        assertEquals(3, noDaemon.code(), noDaemon.out());
        assertTrue(noDaemon.out().contains("the daemon is not running"), noDaemon.out());
    }

    /** An image of busybox and a file of random bytes no other test reads (chunks read before may be in the page cache). */
    static String appImage(String repo, byte[] data) throws Exception {
        return OciImage.push(env.registry(), repo, "1", List.of(Images.base().finish(),
                new TarWriter().dir("./", TarWriter.Meta.of(0755)).dir("data", TarWriter.Meta.of(0755)).file("data/big", data, TarWriter.Meta.of(0644)).finish()),
                List.of("/bin/sh"));
    }

    @Test
    void aCmdStillRunningAtTheTimeLimitIsStoppedAndWhatItReadIsTheTrace() throws Exception {
        byte[] data = Images.random(78, 5 * 1024 * 1024);
        String app = appImage("itest/server", data);
        long t0 = System.nanoTime();
        Proc.Result r = TestEnv.cli("convert", "--plain-http", "--trace", "head -c 1000 /data/big > /dev/null; echo serving; exec sleep 600",
                "--trace-seconds", "3", "--containerd", env.containerdSock.toString(), "--namespace", TestEnv.NS, "--address", env.dedupSock.toString(),
                app, env.registry() + "/itest/server-traced:1");
        double seconds = (System.nanoTime() - t0) / 1e9;
        System.out.println(r.out());
        r.orThrow("dedupctl convert --trace (a server)\n" + env.daemon.logTail());
        assertTrue(r.out().contains("  | serving") && r.out().contains("CMD was stopped at the time limit"), r.out());
        assertTrue(seconds < 60, "stopped after 3 s, not after sleep 600: " + seconds + " s");
        List<String> traced = layers("itest/server-traced", "1").get(1).toc().prefetch.stream().map(Toc.Prefetch::digest).toList();
        assertEquals(List.of(RegistryClient.sha256(Arrays.copyOfRange(data, 0, CHUNK))), traced, "only the chunk head read");
        assertFalse(env.ctr("containers", "ls", "-q").contains("dedup-trace-"), env.ctr("containers", "ls", "-q"));
        assertFalse(env.ctr("tasks", "ls").contains("dedup-trace-"), env.ctr("tasks", "ls"));
    }

    /** Needs the daemon's side of issue 7: recording what containers read, and GetTrace. */
    @Test
    void aRecordingRunTracesWhatCmdReadsRemovesTheImageAndConvertsWithTheTrace() throws Exception {
        byte[] data = Images.random(77, 9 * 1024 * 1024 + 77);
        String app = appImage("itest/app", data);
        String dst = env.registry() + "/itest/app-traced:1";
        long t0 = System.nanoTime();
        Proc.Result r = TestEnv.cli("convert", "--plain-http", "--trace", "cat /data/big > /dev/null; echo read it", "--trace-seconds", "60",
                "--containerd", env.containerdSock.toString(), "--namespace", TestEnv.NS, "--address", env.dedupSock.toString(), app, dst);
        System.out.println(r.out());
        System.out.printf("recording run: %.1f s%n", (System.nanoTime() - t0) / 1e9);
        r.orThrow("dedupctl convert --trace\n" + env.daemon.logTail());
        assertTrue(r.out().contains("  | read it") && r.out().contains("CMD exited with 0"), r.out());
        assertTrue(r.out().contains("trace 6/6"), r.out());

        List<Layer> layers = layers("itest/app-traced", "1");
        List<String> bigChunks = List.of(RegistryClient.sha256(Arrays.copyOfRange(data, 0, CHUNK)), RegistryClient.sha256(Arrays.copyOfRange(data, CHUNK, 2 * CHUNK)),
                RegistryClient.sha256(Arrays.copyOfRange(data, 2 * CHUNK, data.length)));
        List<Toc.Prefetch> prefetch = layers.get(1).toc().prefetch;
        List<String> traced = prefetch.stream().map(Toc.Prefetch::digest).toList();
        assertEquals(bigChunks, traced.stream().filter(bigChunks::contains).toList(), "cat's chunks, in the order it read them: " + prefetch);
        for (Layer l : layers) assertPrefetchMembersFetchAlone("itest/app-traced", l);

        // the image and its container are gone from the namespace (the converted image's snapshots with them)
        assertFalse(env.ctr("images", "ls", "-q").contains("itest/app-traced"), env.ctr("images", "ls", "-q"));
        assertFalse(env.ctr("containers", "ls", "-q").contains("dedup-trace-"), env.ctr("containers", "ls", "-q"));
        env.ctr("images", "pull", "--plain-http", "--snapshotter", "overlayfs", app);
        assertSameRootfsOnOverlayfs(app, dst);
        env.assertFsckClean();
    }
}
