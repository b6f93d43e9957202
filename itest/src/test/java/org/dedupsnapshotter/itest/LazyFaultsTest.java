package org.dedupsnapshotter.itest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.dedupsnapshotter.lazy.toc.LazyLayerFormat;
import org.dedupsnapshotter.lazy.toc.Toc;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.RandomAccessFile;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.zip.GZIPInputStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What a lazily pulled image does when things go wrong, with real containerd, runc, registry and kernel: a registry
 * that goes away mid-read gives readers EIO within the deadline and nothing else breaks; reads work again when it is
 * back; the daemon killed with -9 while containers read leaves them reading the right bytes after its restart; a TOC
 * or a chunk that does not match its digest is refused and nothing is written to the pool.
 */
class LazyFaultsTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final int FILE = 6 << 20;
    static final Duration DEADLINE = Duration.ofSeconds(3);
    static TestEnv env;
    static SlowProxy proxy;
    static String converted;

    @BeforeAll
    static void start() throws Exception {
        env = TestEnv.fullWithConfig("{\"lazy\": {\"readDeadline\": \"" + DEADLINE.toSeconds() + "s\", \"prefetchConcurrency\": 0}}");
        proxy = new SlowProxy(env.registryPort, 4 << 20);
        String original = OciImage.push(env.registry(), "itest/faults", "1", List.of(Images.base().finish(), dataLayer(10)), List.of("/bin/sh"));
        converted = Images.convert(original, proxy.address() + "/itest/faults-lazy:1");
        env.clientPull(converted).orThrow("client pull");
    }

    @AfterAll
    static void stop() throws Exception {
        if (proxy != null) proxy.close();
        if (env != null) env.close();
    }

    static byte[] dataLayer(long seed) throws Exception {
        TarWriter t = new TarWriter().dir("./", TarWriter.Meta.of(0755)).dir("data", TarWriter.Meta.of(0755));
        for (int i = 0; i < 4; i++) t.file("data/f" + i, Images.random(seed + i, FILE), TarWriter.Meta.of(0644));
        return t.finish();
    }

    static String sha(long seed) throws Exception { return Images.sha256sum(Images.random(seed, FILE)); }

    private Proc.Result run(String name, String script) throws Exception {
        return env.ctrResult("run", "--rm", "--snapshotter", "dedup", converted, name, "/bin/sh", "-c", script);
    }

    private static JsonNode stats() throws Exception { return env.stats(); }

    @Test
    void registryGoneMidReadGivesEioWithinTheDeadlineAndReadsWorkOnceItIsBack() throws Exception {
        Proc.Result first = run("faults-a", "sha256sum /data/f0");
        assertTrue(first.out().contains(sha(10)), first.out());
        env.stopRegistry();
        try {
            long t0 = System.nanoTime();
            Proc.Result cut = run("faults-b", "sha256sum /data/f1; echo rc=$?");
            long seconds = (System.nanoTime() - t0) / 1_000_000_000L;
            assertTrue(cut.out().contains("rc=1"), "a read of an unfetched chunk did not fail:\n" + cut.out());
            assertFalse(cut.out().contains(sha(11)), cut.out());
            assertTrue(seconds < DEADLINE.toSeconds() + 20, "the reader took " + seconds + " s");
            // what is here already keeps working, for this image and for others
            Proc.Result fetched = run("faults-c", "sha256sum /data/f0");
            assertTrue(fetched.out().contains(sha(10)), fetched.out());
            assertTrue(stats().path("lazy").path("readsFailed").asLong() > 0, stats().toString());
        } finally {
            env.restartRegistry();
        }
        Proc.Result again = run("faults-d", "sha256sum /data/f1");
        assertTrue(again.out().contains(sha(11)), "reads did not recover with the registry back:\n" + again.out() + env.daemon.logTail());
    }

    @Test
    void daemonKilledDuringReadsLeavesTheContainerReadingTheRightBytes() throws Exception {
        // an image of its own: chunks other tests fetched (or unpacked, with the same digests) would not be fetched again
        String original = OciImage.push(env.registry(), "itest/killed", "1", List.of(Images.base().finish(), dataLayer(70)), List.of("/bin/sh"));
        String ref = Images.convert(original, proxy.address() + "/itest/killed-lazy:1");
        env.clientPull(ref).orThrow("client pull");
        long holder = env.fdHolderPid();
        Path out = env.dir.resolve("kill-reader.out");
        Proc reader = Proc.start("reader", out, List.of(env.ctrBin(), "--address", env.containerdSock.toString(), "-n", TestEnv.NS, "run", "--rm",
                "--snapshotter", "dedup", ref, "faults-kill", "/bin/sh", "-c", "sha256sum /data/f2 /data/f3"));
        for (int i = 0; i < 600 && stats().path("lazy").path("readersWaiting").asLong() == 0; i++) Thread.sleep(20);
        assertTrue(stats().path("lazy").path("readersWaiting").asLong() > 0, "no reader ever waited for a chunk");
        env.killDaemon();
        Thread.sleep(1000);
        assertTrue(reader.alive(), "the container's reader died with the daemon:\n" + Files.readString(out));
        env.startDaemon();
        assertEquals(holder, env.fdHolderPid(), "the fd holder was replaced: the fanotify group did not survive");
        assertEquals(0, reader.process.waitFor(), Files.readString(out));
        String text = Files.readString(out);
        assertTrue(text.contains(sha(72)) && text.contains(sha(73)), "wrong bytes after the restart:\n" + text);
        assertTrue(env.daemon.logTail().contains("took the fanotify group back"), env.daemon.logTail());
        env.assertFsckClean();
    }

    @Test
    void aTocWithAWrongDigestFallsBackToTheNormalPull() throws Exception {
        String repo = "itest/faults-lazy";
        HttpClient http = HttpClient.newHttpClient();
        String accept = "application/vnd.oci.image.manifest.v1+json";
        byte[] manifest = http.send(HttpRequest.newBuilder(URI.create("http://" + env.registry() + "/v2/" + repo + "/manifests/1")).header("Accept", accept).build(),
                HttpResponse.BodyHandlers.ofByteArray()).body();
        ObjectNode m = (ObjectNode) JSON.readTree(manifest);
        ((ObjectNode) m.get("layers").get(1).get("annotations")).put(LazyLayerFormat.TOC_DIGEST, "sha256:" + "0".repeat(64));
        HttpResponse<String> put = http.send(HttpRequest.newBuilder(URI.create("http://" + env.registry() + "/v2/" + repo + "/manifests/badtoc"))
                .header("Content-Type", accept).PUT(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(m))).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(201, put.statusCode(), put.body());
        env.ctr("images", "rm", "--sync", converted);
        Pull pull = env.clientPull(env.registry() + "/" + repo + ":badtoc").orThrow("pull");
        assertTrue(pull.layersDownloaded() == 1, pull.out());
        assertTrue(env.daemon.logTail().contains("unpacking it the normal way"), env.daemon.logTail());
        Proc.Result r = env.ctrResult("run", "--rm", "--snapshotter", "dedup", env.registry() + "/" + repo + ":badtoc", "faults-toc", "sha256sum", "/data/f3");
        assertTrue(r.out().contains(sha(13)), r.out());
        env.clientPull(converted).orThrow("pull again");
    }

    @Test
    void aChunkWithWrongBytesIsRefusedAndNothingIsWritten() throws Exception {
        String original = OciImage.push(env.registry(), "itest/tampered", "1", List.of(Images.base().finish(), dataLayer(50)), List.of("/bin/sh"));
        String ref = Images.convert(original, env.registry() + "/itest/tampered-lazy:1");
        // flip bytes inside one chunk's gzip member, in the registry's own storage: it serves what it has
        HttpClient http = HttpClient.newHttpClient();
        JsonNode layer = JSON.readTree(http.send(HttpRequest.newBuilder(URI.create("http://" + env.registry() + "/v2/itest/tampered-lazy/manifests/1"))
                .header("Accept", "application/vnd.oci.image.manifest.v1+json").build(), HttpResponse.BodyHandlers.ofByteArray()).body()).get("layers").get(1);
        String blob = layer.get("digest").asText();
        Path data = env.dir.resolve("registry/docker/registry/v2/blobs/sha256/" + blob.substring(7, 9) + "/" + blob.substring(7) + "/data");
        long tocOffset = Long.parseLong(layer.get("annotations").get(LazyLayerFormat.TOC_OFFSET).asText());
        int tocLength = Integer.parseInt(layer.get("annotations").get(LazyLayerFormat.TOC_LENGTH).asText());
        Toc toc;
        try (RandomAccessFile f = new RandomAccessFile(data.toFile(), "r")) {
            byte[] member = new byte[tocLength];
            f.seek(tocOffset);
            f.readFully(member);
            toc = Toc.parse(new GZIPInputStream(new ByteArrayInputStream(member)).readAllBytes());
        }
        // the victim is the layer's last chunk (f3's second): a lazy layer reads the pool buffered, and the pool file's
        // read-ahead (the disk's window, 8 MiB here) asks for the chunks after the one read, so with a victim in the
        // middle of the layer a good neighbour after it may be fetched and written too, rightly
        Toc.Chunk victim = toc.entries.stream().filter(e -> e.name.equals("data/f3")).findFirst().orElseThrow().chunks.get(1);
        try (RandomAccessFile f = new RandomAccessFile(data.toFile(), "rw")) {
            long at = victim.blobOffset() + victim.blobLength() / 2;
            byte[] garbage = Images.random(99, 64);
            f.seek(at);
            f.write(garbage);
        }
        env.clientPull(ref).orThrow("pull");
        long absentBefore = stats().path("lazy").path("absentChunks").asLong();
        long poolBefore = stats().path("poolAllocatedBytes").asLong();
        Proc.Result r = env.ctrResult("run", "--rm", "--snapshotter", "dedup", ref, "faults-bad", "/bin/sh", "-c", "sha256sum /data/f3; echo rc=$?");
        assertTrue(r.out().contains("rc=1"), "a tampered chunk was read:\n" + r.out());
        assertNotEquals(true, r.out().contains(sha(53)));
        assertTrue(env.daemon.logTail().contains("digest") || env.daemon.logTail().contains("inflate") || env.daemon.logTail().contains("Corrupt"),
                env.daemon.logTail());
        JsonNode after = stats();
        // chunk 0 of f3 was fetched before the bad one (4 MiB, one chunk): at most that one became present
        assertTrue(after.path("lazy").path("absentChunks").asLong() >= absentBefore - 1, after.toString());
        assertTrue(after.path("poolAllocatedBytes").asLong() - poolBefore <= 4L << 20, "more than the good chunk was written: " + after);
        env.assertFsckClean();
    }
}
