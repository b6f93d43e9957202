package org.dedupsnapshotter.itest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.*;

/** Operating the daemon: Prometheus metrics, dedupctl stats, the Metrics log line, config errors. */
class OperationsTest {
    static TestEnv env;
    static int metricsPort;
    static Path cfg;

    @BeforeAll
    static void start() throws Exception {
        metricsPort = TestEnv.freePort();
        cfg = Files.createTempFile("dedup-itest-config", ".json");
        // the default compression, but no idle pass (after a minute) that could swap and punch between stats and du
        Files.writeString(cfg, "{\"compactWhenIdle\": 0, \"metrics\": {\"address\": \"127.0.0.1:" + metricsPort + "\", \"logInterval\": \"1s\"}}");
        env = TestEnv.full(null, List.of("--config", cfg.toString()));
        String ref = OciImage.push(env.registry(), "itest/ops", "1", List.of(Images.base().finish(),
                new TarWriter().dir("./", TarWriter.Meta.of(0755)).file("data", Images.random(5, 9 * 1024 * 1024), TarWriter.Meta.of(0644)).finish()),
                List.of("/bin/sh"));
        env.ctr("images", "pull", "--plain-http", "--snapshotter", "dedup", ref);
    }

    @AfterAll
    static void stop() throws Exception {
        try {
            if (env != null) env.close();
        } finally {
            if (cfg != null) Files.deleteIfExists(cfg);
        }
    }

    @Test
    void prometheusEndpointServesDedupSeriesThatPromtoolAccepts() throws Exception {
        HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + metricsPort + "/metrics")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode());
        Set<String> names = new TreeSet<>();
        r.body().lines().filter(l -> l.startsWith("dedup_")).forEach(l -> names.add(l.replaceAll("[{ ].*", "")));
        assertTrue(names.size() >= 10, "dedup_ series: " + names);
        assertTrue(r.body().contains("dedup_grpc_requests_total{code=\"OK\",method=\"Prepare\""), "per-method request series");
        assertTrue(r.body().contains("dedup_grpc_request_duration_seconds_bucket{method=\"Commit\""), "latency histograms");
        // at most 15 buckets (+Inf included) per histogram: series count stays small on a busy node
        java.util.Map<String, Long> buckets = r.body().lines().filter(l -> l.startsWith("dedup_") && l.contains("_bucket{"))
                .collect(java.util.stream.Collectors.groupingBy(l -> l.substring(0, l.indexOf(' ')).replaceAll("le=\"[^\"]*\",?", ""),
                        java.util.stream.Collectors.counting()));
        assertTrue(!buckets.isEmpty() && buckets.values().stream().allMatch(n -> n <= 15), "buckets per histogram: " + buckets);
        assertTrue(names.containsAll(Set.of("dedup_pool_stored_bytes", "dedup_pool_logical_bytes", "dedup_pool_chunks", "dedup_pool_dedup_ratio",
                "dedup_commit_metadata_seconds_count", "dedup_mounted_layers", "dedup_snapshots")), names.toString());
        assertTrue(r.body().lines().anyMatch(l -> l.startsWith("dedup_pool_logical_bytes ") && !l.endsWith(" 0.0")), "logical bytes after a pull");

        Path file = Files.writeString(env.dir.resolve("metrics.txt"), r.body());
        Proc.Result check = Proc.run(Duration.ofMinutes(1), List.of("sh", "-c", "promtool check metrics < " + file));
        assertEquals(0, check.code(), "promtool check metrics:\n" + check.out());
    }

    @Test
    void statsJsonMatchesThePoolOnDisk() throws Exception {
        Proc.Result r = env.dedupctl("stats", "--json");
        assertEquals(0, r.code(), r.out());
        JsonNode n = new ObjectMapper().readTree(r.out());
        long stored = n.get("storedBytes").asLong();
        long du = TestEnv.du(env.dedupRoot.resolve("pool/pool.0"));
        assertTrue(stored > 9 * 1024 * 1024, "stored " + stored);
        assertTrue(Math.abs(du - stored) <= stored / 100, "stats says " + stored + " bytes stored, du of the pool " + du);
        assertTrue(n.get("logicalBytes").asLong() >= 9 * 1024 * 1024);
        assertTrue(n.get("dedupRatio").asDouble() > 0);
    }

    @Test
    void probeMountsTimesItsCallsAndCanWriteEachOne() throws Exception {
        Path calls = env.dir.resolve("probe-calls.txt");
        Proc.Result r = env.dedupctl("probe-mounts", "--count", "50", "--calls", calls.toString());
        assertEquals(0, r.code(), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.matches("mounts: n=50 p50=[\\d.]+ms p99=[\\d.]+ms max=[\\d.]+ms")), r.out());
        // one line per timed call, in order: its start (CLOCK_MONOTONIC ns) and its length; each starts after the last ended
        List<long[]> lines = Files.readAllLines(calls).stream().map(l -> java.util.Arrays.stream(l.split(" ")).mapToLong(Long::parseLong).toArray()).toList();
        assertEquals(50, lines.size());
        for (int i = 0; i < lines.size(); i++) {
            assertEquals(2, lines.get(i).length);
            assertTrue(lines.get(i)[1] > 0, "call " + i + " took " + lines.get(i)[1] + " ns");
            if (i > 0) assertTrue(lines.get(i)[0] >= lines.get(i - 1)[0] + lines.get(i - 1)[1], "call " + i + " started before call " + (i - 1) + " ended");
        }
        // the probe's temporary view is gone
        Proc.Result ls = env.dedupctl("ls");
        assertEquals(0, ls.code(), ls.out());
        assertFalse(ls.out().contains("dedupctl-probe-"), ls.out());
    }

    @Test
    void probeMountsRepeatsInOneProcessWhileItsFileExists() throws Exception {
        Path flag = Files.createFile(env.dir.resolve("probing"));
        Path out = env.dir.resolve("probe-runs.txt");
        Process p = new ProcessBuilder(TestEnv.TOP.resolve("bin/dedupctl").toString(), "--address", env.dedupSock.toString(),
                "probe-mounts", "--count", "20", "--while-exists", flag.toString()).redirectOutput(out.toFile()).redirectErrorStream(true).start();
        try {
            long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.MINUTES.toNanos(2);
            while (Files.readAllLines(out).stream().filter(l -> l.startsWith("mounts: n=20 ")).count() < 2 && System.nanoTime() < deadline && p.isAlive())
                Thread.sleep(100);
            Files.delete(flag);
            assertTrue(p.waitFor(2, java.util.concurrent.TimeUnit.MINUTES), "the probe went on after its file was removed");
        } finally {
            p.destroyForcibly();
        }
        assertEquals(0, p.exitValue(), Files.readString(out));
        List<String> runs = Files.readAllLines(out).stream().filter(l -> l.startsWith("mounts: ")).toList();
        assertTrue(runs.size() >= 2 && runs.stream().allMatch(l -> l.matches("mounts: n=20 p50=[\\d.]+ms p99=[\\d.]+ms max=[\\d.]+ms")),
                Files.readString(out));
        Proc.Result ls = env.dedupctl("ls");
        assertFalse(ls.out().contains("dedupctl-probe-"), "a probe view left behind: " + ls.out());
    }

    @Test
    void metricsLineIsLoggedPeriodicallyAndAfterCommits() throws Exception {
        Thread.sleep(1500);
        List<String> lines = Files.readAllLines(env.daemon.log).stream().filter(l -> l.contains(" Metrics logical=")).toList();
        assertTrue(lines.size() >= 2, "Metrics lines: " + lines);
        assertTrue(lines.getLast().matches(".*Metrics logical=\\d+ stored=\\d+ saved=\\d+ ratio=[\\d.]+ snapshots=\\d+ committed=\\d+ chunks=\\d+.*"), lines.getLast());
    }

    @Test
    void badConfigStopsTheDaemonAndDedupctlNamesTheKey() throws Exception {
        for (var c : List.of(new String[] {"{\"root\": \"/x\", \"chunksize\": \"4MiB\"}", "chunksize"},
                new String[] {"{\"metrics\": {\"address\": \"127.0.0.1:9466\", \"logInterval\": \"often\"}}", "metrics.logInterval"})) {
            Path cfg = Files.writeString(env.dir.resolve("bad.json"), c[0]);
            Proc.Result daemon = Proc.run(Duration.ofMinutes(1), List.of(TestEnv.TOP.resolve("bin/dedup-snapshotter").toString(),
                    "--root", env.dir.resolve("never").toString(), "--address", env.dir.resolve("never.sock").toString(), "--config", cfg.toString()));
            assertEquals(2, daemon.code(), daemon.out());
            assertTrue(daemon.out().contains("\"" + c[1] + "\""), daemon.out());
            Proc.Result check = env.dedupctl("config", "check", cfg.toString());
            assertEquals(1, check.code(), check.out());
            assertTrue(check.out().contains("\"" + c[1] + "\""), check.out());
            assertFalse(Files.exists(env.dir.resolve("never")), "a refused start must not touch the root");
        }
    }

    @Test
    void dedupctlSaysPlainlyWhenTheDaemonIsNotRunning() throws Exception {
        Proc.Result r = Proc.run(Duration.ofMinutes(1), List.of(TestEnv.TOP.resolve("bin/dedupctl").toString(), "--address",
                env.dir.resolve("nothing.sock").toString(), "stats"));
        assertEquals(3, r.code(), r.out()); // cannot connect (decision 53's exit codes)
        assertTrue(r.out().contains("daemon is not running"), r.out());
    }
}
