package org.dedupsnapshotter.itest;

import org.dedupsnapshotter.lazy.registry.RegistryClient;
import org.dedupsnapshotter.lazy.toc.LazyLayerFormat;
import org.dedupsnapshotter.lazy.toc.Toc;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.*;

/**
 * `bin/dedupctl convert` against a real registry, and the result pulled by containerd (2.4) with its own overlayfs
 * snapshotter (a node without ours): the converted image must unpack (containerd checks every new diff_id) to
 * exactly the original's root filesystem and run; and its layers must carry TOCs a node finds with Range requests.
 */
class ConvertTest {
    static TestEnv env;
    static String original;
    static RegistryClient registry;
    static final ObjectMapper JSON = new ObjectMapper();

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

    private static Proc.Result convert(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("convert"));
        cmd.addAll(List.of(args));
        return TestEnv.cli(cmd.toArray(String[]::new));
    }

    private Map<String, String> listing(String ref) throws Exception {
        Path target = Files.createDirectories(env.dir.resolve("view-" + Integer.toHexString(ref.hashCode())));
        try (AutoCloseable mounted = env.mountImage("overlayfs", ref, target)) {
            return TreeListing.of(target);
        }
    }

    private void assertSameRootfs(String converted) throws Exception {
        env.ctr("images", "pull", "--plain-http", "--snapshotter", "overlayfs", converted);
        Map<String, String> before = withoutRootMtime(listing(original)), after = withoutRootMtime(listing(converted));
        assertTrue(before.size() > 50, "the original's listing looks empty: " + before.size());
        assertEquals(before, after, "differences (original vs converted):\n" + TreeListing.diff(before, after));
    }

    /** containerd skips a layer's root entry: "/" has the mtime of the moment its snapshot was made. */
    private static Map<String, String> withoutRootMtime(Map<String, String> listing) {
        Map<String, String> m = new TreeMap<>(listing);
        m.computeIfPresent("/", (k, v) -> v.replaceFirst(" mtime=\\d+", ""));
        return m;
    }

    @Test
    void convertedImageHasTheOriginalRootfsOnOverlayfsAndRuns() throws Exception {
        String lazy = env.registry() + "/itest/fidelity-lazy:1";
        Proc.Result r = convert("--plain-http", original, lazy).orThrow("dedupctl convert");
        assertTrue(r.out().contains("layer 4/4") && r.out().contains("pushed " + lazy), r.out());
        System.out.println(r.out());
        assertSameRootfs(lazy);
        String out = env.ctr("run", "--rm", "--snapshotter", "overlayfs", lazy, "convert-run", "/bin/sh", "-c", "cat /etc/hello; sha256sum /data/big");
        assertTrue(out.contains("hello again from layer 3"), out);
        assertTrue(out.contains(Images.sha256sum(Images.BIG)), out);

        // a node finds each TOC from the footer (two Range requests) and fetches a single chunk
        JsonNode manifest = JSON.readTree(registry.manifest("itest/fidelity-lazy", "1").body());
        assertEquals(RegistryClient.OCI_MANIFEST, manifest.path("mediaType").asText());
        JsonNode layer1 = manifest.path("layers").get(0);
        JsonNode a = layer1.path("annotations");
        String digest = layer1.path("digest").asText();
        long size = layer1.path("size").asLong();
        assertEquals(digest, a.path(LazyLayerFormat.LAYER_DIGEST).asText());
        assertEquals("1", a.path(LazyLayerFormat.TOC_VERSION).asText());
        assertEquals(env.registry() + "/itest/fidelity-lazy", a.path(LazyLayerFormat.SOURCE).asText());
        assertEquals(String.valueOf(4 << 20), a.path(LazyLayerFormat.CHUNK_SIZE).asText());
        long[] toc = LazyLayerFormat.parseFooter(registry.blobRange("itest/fidelity-lazy", digest, size - LazyLayerFormat.FOOTER_SIZE, LazyLayerFormat.FOOTER_SIZE));
        assertEquals(a.path(LazyLayerFormat.TOC_OFFSET).asLong(), toc[0]);
        assertEquals(a.path(LazyLayerFormat.TOC_LENGTH).asLong(), toc[1]);
        byte[] json = Images.gunzip(registry.blobRange("itest/fidelity-lazy", digest, toc[0], (int) toc[1]));
        assertEquals(a.path(LazyLayerFormat.TOC_DIGEST).asText(), RegistryClient.sha256(json));
        Toc.Entry big = Toc.parse(json).entries.stream().filter(e -> e.name.equals("data/big")).findFirst().orElseThrow();
        assertEquals(3, big.chunks.size());
        Toc.Chunk second = big.chunks.get(1);
        byte[] chunk = Images.gunzip(registry.blobRange("itest/fidelity-lazy", digest, second.blobOffset(), (int) second.blobLength()));
        assertArrayEquals(Arrays.copyOfRange(Images.BIG, 4 << 20, 8 << 20), chunk);
        assertEquals(second.digest(), RegistryClient.sha256(chunk));

        // the config is the original's but for rootfs.diff_ids, which are the converted layers' (TOC included)
        JsonNode before = JSON.readTree(registry.blob("itest/fidelity", JSON.readTree(registry.manifest("itest/fidelity", "1").body()).path("config").path("digest").asText()));
        ObjectNode after = (ObjectNode) JSON.readTree(
                registry.blob("itest/fidelity-lazy", manifest.path("config").path("digest").asText()));
        for (int i = 0; i < 4; i++)
            assertEquals(manifest.path("layers").get(i).path("annotations").path(LazyLayerFormat.DIFF_ID).asText(), after.path("rootfs").path("diff_ids").get(i).asText());
        ((ObjectNode) after.get("rootfs")).set("diff_ids", before.path("rootfs").path("diff_ids"));
        assertEquals(before, after);
        assertEquals(List.of("architecture", "os", "config", "rootfs"), fieldNames(after));

        // converting the converted image copies its layers as they are
        Proc.Result again = convert("--plain-http", lazy, env.registry() + "/itest/fidelity-lazy:again").orThrow("dedupctl convert (again)");
        assertEquals(4, again.out().split("already converted", -1).length - 1, again.out());
        JsonNode m2 = JSON.readTree(registry.manifest("itest/fidelity-lazy", "again").body());
        for (int i = 0; i < 4; i++) assertEquals(manifest.path("layers").get(i).path("digest"), m2.path("layers").get(i).path("digest"));
    }

    @Test
    void anOciLayoutExportedByContainerdConvertsToo() throws Exception {
        Path tar = env.dir.resolve("export.tar"), layout = Files.createDirectories(env.dir.resolve("layout"));
        env.ctr("images", "export", tar.toString(), original);
        Proc.run(Duration.ofMinutes(2), List.of("tar", "-xf", tar.toString(), "-C", layout.toString())).orThrow("tar -x");
        String lazy = env.registry() + "/itest/fidelity-from-layout:1";
        convert("--plain-http", "--chunk-size", "1MiB", "oci:" + layout + ":1", lazy).orThrow("dedupctl convert oci:");
        assertSameRootfs(lazy);
    }

    /**
     * An index of two platforms (amd64: the fidelity image, arm64: a one-layer image that is converted, never run):
     * without flags the host's (amd64) image alone, as a plain manifest; --all-platforms an index of both converted;
     * --platform linux/arm64 an index of that one; a platform the index lacks is an error naming those it has; and
     * the converted index pulled lazily here runs its amd64 image.
     */
    @Test
    void anIndexConvertsTheHostsImageOrThePlatformsAskedFor() throws Exception {
        OciImage.push(env.registry(), "itest/multi", "arm", List.of(new TarWriter().dir("./", TarWriter.Meta.of(0755))
                .file("arm", "arm", TarWriter.Meta.of(0644)).finish()), List.of("/bin/sh"));
        RegistryClient.Fetched arm = registry.manifest("itest/multi", "arm"), amd = registry.manifest("itest/fidelity", "1");
        JsonNode amdManifest = JSON.readTree(amd.body());
        List<String> blobs = new ArrayList<>(List.of(amdManifest.path("config").path("digest").asText()));
        amdManifest.path("layers").forEach(l -> blobs.add(l.path("digest").asText()));
        for (String b : blobs) registry.pushBlob("itest/multi", registry.blob("itest/fidelity", b), 1 << 20);
        registry.pushManifest("itest/multi", "amd", RegistryClient.OCI_MANIFEST, amd.body());
        String index = """
                {"schemaVersion":2,"mediaType":"%s","manifests":[
                 {"mediaType":"%s","digest":"%s","size":%d,"platform":{"architecture":"arm64","os":"linux"}},
                 {"mediaType":"%s","digest":"%s","size":%d,"platform":{"architecture":"amd64","os":"linux"}}]}"""
                .formatted(RegistryClient.OCI_INDEX, RegistryClient.OCI_MANIFEST, arm.digest(), arm.body().length,
                        RegistryClient.OCI_MANIFEST, amd.digest(), amd.body().length);
        registry.pushManifest("itest/multi", "index", RegistryClient.OCI_INDEX, index.getBytes(StandardCharsets.UTF_8));
        String src = env.registry() + "/itest/multi:index";

        Proc.Result host = convert("--plain-http", src, env.registry() + "/itest/multi-lazy:host").orThrow("dedupctl convert (index, no flags)");
        assertTrue(host.out().contains("layer 4/4") && !host.out().contains("\r"), "the host's (amd64) image, 4 layers, no live line when piped:\n" + host.out());
        assertEquals(RegistryClient.OCI_MANIFEST, JSON.readTree(registry.manifest("itest/multi-lazy", "host").body()).path("mediaType").asText());

        Proc.Result all = convert("--plain-http", "--all-platforms", src, env.registry() + "/itest/multi-lazy:all").orThrow("dedupctl convert --all-platforms");
        System.out.println(all.out());
        JsonNode allIndex = JSON.readTree(registry.manifest("itest/multi-lazy", "all").body());
        assertEquals(RegistryClient.OCI_INDEX, allIndex.path("mediaType").asText(), all.out());
        assertEquals(List.of("linux/arm64", "linux/amd64"), platforms(allIndex));
        for (JsonNode entry : allIndex.path("manifests")) assertConverted("itest/multi-lazy", entry);
        assertTrue(all.out().lines().toList().getLast().contains("an index of 2 images (linux/arm64, linux/amd64)"), all.out());

        Proc.Result one = convert("--plain-http", "--platform", "linux/arm64", src, env.registry() + "/itest/multi-lazy:arm").orThrow("dedupctl convert --platform");
        JsonNode armIndex = JSON.readTree(registry.manifest("itest/multi-lazy", "arm").body());
        assertEquals(List.of("linux/arm64"), platforms(armIndex), one.out());
        assertConverted("itest/multi-lazy", armIndex.path("manifests").get(0));
        assertTrue(one.out().contains("left out: linux/amd64"), one.out());

        Proc.Result missing = convert("--plain-http", "--platform", "linux/s390x", src, env.registry() + "/itest/multi-lazy:none");
        assertEquals(1, missing.code(), missing.out());
        assertTrue(missing.out().contains("an index without a linux/s390x image; it has linux/arm64, linux/amd64"), missing.out());

        // the converted index pulled lazily on this (amd64) node: its amd64 image, made from TOCs, runs
        String lazy = env.registry() + "/itest/multi-lazy:all";
        Proc.Result pulled = TestEnv.cli("pull", "--plain-http", "--containerd", env.containerdSock.toString(), "--namespace", TestEnv.NS, lazy).orThrow("dedupctl pull (index)");
        assertTrue(pulled.out().contains("4 layers: 4 lazily (not downloaded), 0 downloaded"), pulled.out());
        String out = env.ctr("run", "--rm", "--snapshotter", "dedup", lazy, "multi-run", "/bin/sh", "-c", "cat /etc/hello; sha256sum /data/big");
        assertTrue(out.contains("hello again from layer 3"), out);
        assertTrue(out.contains(Images.sha256sum(Images.BIG)), out);
        Proc.Result armPull = TestEnv.cli("pull", "--plain-http", "--containerd", env.containerdSock.toString(), "--namespace", TestEnv.NS,
                env.registry() + "/itest/multi-lazy:arm");
        assertEquals(1, armPull.code(), armPull.out());
        assertTrue(armPull.out().contains("without a linux/amd64 image (this host's platform; choose one with --platform); it has linux/arm64"), armPull.out());
    }

    private static List<String> platforms(JsonNode index) {
        List<String> out = new ArrayList<>();
        index.path("manifests").forEach(m -> out.add(m.path("platform").path("os").asText() + "/" + m.path("platform").path("architecture").asText()));
        return out;
    }

    /** An index entry names a converted manifest pushed to repo: its size and digest are right, every layer has a TOC. */
    private static void assertConverted(String repo, JsonNode entry) throws Exception {
        RegistryClient.Fetched m = registry.manifest(repo, entry.path("digest").asText());
        assertEquals(entry.path("size").asLong(), m.body().length);
        JsonNode manifest = JSON.readTree(m.body());
        assertEquals(RegistryClient.OCI_MANIFEST, entry.path("mediaType").asText());
        assertTrue(manifest.path("layers").size() >= 1);
        for (JsonNode l : manifest.path("layers")) assertTrue(l.path("annotations").has(LazyLayerFormat.TOC_DIGEST), l.toString());
    }

    @Test
    void errorsNameWhatIsWrong() throws Exception {
        Proc.Result unreachable = convert("--plain-http", "127.0.0.1:1/nothing:1", env.registry() + "/x/y:1");
        assertEquals(1, unreachable.code(), unreachable.out());
        assertTrue(unreachable.out().contains("cannot reach the registry 127.0.0.1:1"), unreachable.out());
        Proc.Result missing = convert("--plain-http", env.registry() + "/itest/fidelity:nope", env.registry() + "/x/y:1");
        assertEquals(1, missing.code(), missing.out());
        assertTrue(missing.out().contains("manifest itest/fidelity:nope") && missing.out().contains("404"), missing.out());
        Proc.Result notLayout = convert("oci:" + env.dir, env.registry() + "/x/y:1");
        assertTrue(notLayout.out().contains("is not an OCI image layout"), notLayout.out());
        Proc.Result usage = convert("--chunk-size", "3000", original, env.registry() + "/x/y:1");
        assertEquals(2, usage.code(), usage.out());
    }

    private static List<String> fieldNames(JsonNode n) {
        List<String> out = new ArrayList<>();
        n.fieldNames().forEachRemaining(out::add);
        return out;
    }
}
