package org.dedupsnapshotter.itest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

/**
 * The world of the mirror tests, all under one temp dir: an upstream docker-registry holding a small converted lazy
 * image (busybox and a layer of FILES random files of 1 MiB, one chunk each), a docker-registry as its pull-through
 * cache, and a hosts dir naming that cache as the upstream's mirror. Nodes ({@link TestEnv#node}) are started with
 * {@link #nodeConfig} and pull and read through it.
 */
final class MirroredImage implements AutoCloseable {
    static final int FILES = 6, FILE = 1 << 20;
    /** The daemons' user agent (Java's HTTP client): their requests in a registry's log. */
    static final String DAEMON_AGENT = "Java-http-client";
    /** docker-registry's own HTTP client (Go's): the mirror's requests in the upstream's log. */
    static final String MIRROR_AGENT = "Go-http-client";

    final Path dir;
    final LocalRegistry upstream;
    LocalRegistry mirror;
    final Path hosts;
    final String image;
    /** The upstream's log once the image is converted (dedupctl convert's reads are not a node's). */
    final long upstreamMarkAfterSetup;
    /** The converted image's blobs (config and layers), as its manifest gives them. */
    final long blobBytes;

    MirroredImage() throws Exception {
        dir = Files.createTempDirectory("dedup-itest-mirror-");
        try {
            upstream = LocalRegistry.plain(dir.resolve("upstream"));
            String original = OciImage.push(upstream.address(), "itest/mirror", "1", List.of(Images.base().finish(), dataLayer()), List.of("/bin/sh"));
            image = Images.convert(original, upstream.address() + "/itest/mirror-lazy:1");
            blobBytes = blobBytes(upstream.address(), "itest/mirror-lazy", "1");
            upstreamMarkAfterSetup = upstream.log().mark();
            mirror = LocalRegistry.pullThrough(dir.resolve("mirror"), upstream);
            hosts = HostsDir.withMirror(dir.resolve("hosts"), upstream.address(), mirror.address());
        } catch (Exception e) {
            close();
            throw e;
        }
    }

    /**
     * The daemon's config: the hosts dir, no background fetching and no read-ahead (every chunk is fetched when a
     * container reads it, so the reads the tests count are the demand reads).
     */
    String nodeConfig(Duration readDeadline) {
        return "{\"lazy\": {\"hostsDir\": \"" + hosts + "\", \"readDeadline\": \"" + readDeadline.toSeconds()
                + "s\", \"prefetchConcurrency\": 0, \"readAhead\": 0}}";
    }

    static byte[] dataLayer() throws Exception {
        TarWriter t = new TarWriter().dir("./", TarWriter.Meta.of(0755)).dir("data", TarWriter.Meta.of(0755));
        for (int i = 0; i < FILES; i++) t.file("data/f" + i, Images.random(200 + i, FILE), TarWriter.Meta.of(0644));
        return t.finish();
    }

    static String sha(int file) throws Exception { return Images.sha256sum(Images.random(200 + file, FILE)); }

    /** A lazy pull into the node's dedup, through the hosts dir (containerd reads it as the daemon does). */
    void pull(TestEnv node) throws Exception {
        node.ctr("images", "pull", "--plain-http", "--hosts-dir", hosts.toString(), "--snapshotter", "dedup", image);
    }

    /** A container on node that prints the SHA-256 of the given files, then rc=0 if all reads succeeded. */
    Proc.Result read(TestEnv node, String name, int... files) throws Exception {
        String paths = IntStream.of(files).mapToObj(f -> "/data/f" + f).collect(Collectors.joining(" "));
        return node.ctrResult("run", "--rm", "--snapshotter", "dedup", image, name, "/bin/sh", "-c", "sha256sum " + paths + "; echo rc=$?");
    }

    /** Whether the container's output shows the right bytes of every file and no failed read. */
    static boolean readRight(Proc.Result r, int... files) throws Exception {
        if (!r.out().contains("rc=0")) return false;
        for (int f : files) if (!r.out().contains(sha(f))) return false;
        return true;
    }

    /** A fresh mirror, on the same port with empty storage (as a cache that has never served this image). */
    void emptyMirror() throws Exception {
        mirror.close();
        Proc.run(Duration.ofMinutes(1), List.of("rm", "-rf", mirror.dir.resolve("storage").toString())).orThrow("rm mirror storage");
        mirror.start();
    }

    private static long blobBytes(String registry, String repo, String tag) throws Exception {
        JsonNode m = manifest(registry, repo, tag);
        long sum = m.path("config").path("size").asLong();
        for (JsonNode l : m.path("layers")) sum += l.path("size").asLong();
        return sum;
    }

    private static JsonNode manifest(String registry, String repo, String tag) throws Exception {
        try (HttpClient http = HttpClient.newHttpClient()) {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://" + registry + "/v2/" + repo + "/manifests/" + tag))
                    .header("Accept", "application/vnd.oci.image.manifest.v1+json").build(), HttpResponse.BodyHandlers.ofString());
            return new ObjectMapper().readTree(r.body());
        }
    }

    /**
     * The least any client can cost the upstream through this mirror: each of the image's blobs GET once, whole, one
     * after another (as curl would), from the mirror; the upstream's blob bytes from then until the mirror's
     * background stores have ended (the upstream's log still for a second).
     */
    long upstreamBytesForEachBlobOnce() throws Exception {
        long mark = upstream.log().mark();
        JsonNode m = manifest(upstream.address(), "itest/mirror-lazy", "1");
        List<String> blobs = new ArrayList<>(List.of(m.path("config").path("digest").asText()));
        for (JsonNode l : m.path("layers")) blobs.add(l.path("digest").asText());
        try (HttpClient http = HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NORMAL).build()) {
            for (String b : blobs) {
                HttpResponse<byte[]> r = http.send(HttpRequest.newBuilder(URI.create("http://" + mirror.address() + "/v2/itest/mirror-lazy/blobs/" + b)).build(),
                        HttpResponse.BodyHandlers.ofByteArray());
                if (r.statusCode() != 200 || !Images.sha256sum(r.body()).equals(b.substring("sha256:".length())))
                    throw new IllegalStateException("GET " + b + " from the mirror: " + r.statusCode() + ", " + r.body().length + " B");
            }
        }
        return settledUpstreamBytesSince(mark);
    }

    /** The upstream's blob bytes since mark, once its log has not grown for a second (the mirror stores in the background). */
    long settledUpstreamBytesSince(long mark) throws Exception {
        long size = -1, until = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (size != upstream.log().mark() && System.nanoTime() < until) {
            size = upstream.log().mark();
            Thread.sleep(1000);
        }
        return upstream.log().blobTrafficSince(mark, "").bytes();
    }

    @Override
    public void close() throws Exception {
        if (mirror != null) mirror.close();
        if (upstream != null) upstream.close();
        if (System.getenv("DEDUP_ITEST_KEEP") == null) Proc.run(Duration.ofMinutes(2), List.of("rm", "-rf", "--one-file-system", dir.toString()));
    }
}
