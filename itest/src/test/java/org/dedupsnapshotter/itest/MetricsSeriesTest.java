package org.dedupsnapshotter.itest;

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
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.*;

/**
 * What a Prometheus server pays for a busy node: the series the daemon exposes after 10 image pulls and with 10
 * containers running (merged by KSM through bin/dedup-runc, so each has its per-container series) stay within 500,
 * and the per-container series carry the container's id. Through real containerd 2.4 + runc and a registry.
 */
class MetricsSeriesTest {
    static final int IMAGES = 10, CONTAINERS = 10, BUDGET = 500;
    static TestEnv env;
    static int metricsPort;
    static final List<String> started = new ArrayList<>();

    @BeforeAll
    static void start() throws Exception {
        metricsPort = TestEnv.freePort();
        Path cfg = Files.createTempFile("dedup-itest-series", ".json");
        Files.writeString(cfg, "{\"metrics\": {\"address\": \"127.0.0.1:" + metricsPort + "\"}}");
        try {
            env = TestEnv.full(null, List.of("--config", cfg.toString()));
        } finally {
            Files.delete(cfg);
        }
    }

    @AfterAll
    static void stop() throws Exception {
        try {
            for (String id : started) {
                env.ctrResult("tasks", "kill", "-s", "SIGKILL", id);
                for (int i = 0; i < 100 && env.ctrResult("tasks", "rm", "-f", id).code() != 0; i++) Thread.sleep(100);
                env.ctrResult("containers", "rm", id);
            }
        } finally {
            if (env != null) env.close();
        }
    }

    static String scrape() throws Exception {
        HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + metricsPort + "/metrics")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode());
        return r.body();
    }

    static List<String> series(String body) {
        return body.lines().filter(l -> !l.isBlank() && !l.startsWith("#")).toList();
    }

    @Test
    void aBusyNodeStaysWithinFiveHundredSeries() throws Exception {
        List<String> refs = new ArrayList<>();
        for (int i = 0; i < IMAGES; i++) {
            String ref = OciImage.push(env.registry(), "itest/series" + i, "1", List.of(Images.base().finish(),
                    new TarWriter().dir("./", TarWriter.Meta.of(0755)).file("data", Images.random(100 + i, 1 << 20), TarWriter.Meta.of(0644)).finish()),
                    List.of("/bin/sh"));
            env.ctr("images", "pull", "--plain-http", "--snapshotter", "dedup", ref);
            refs.add(ref);
        }
        // one more container and image than counted, removed again: Remove, Cleanup and the admin calls have series too
        for (int i = 0; i <= CONTAINERS; i++) {
            String id = "series-" + i;
            // annotated for KSM: marked processes are listed whether or not ksmd scans (the test leaves ksmd alone)
            env.ctr("run", "-d", "--snapshotter", "dedup", "--runc-binary", TestEnv.TOP.resolve("bin/dedup-runc").toString(),
                    "--annotation", "org.dedup-snapshotter.ksm=true", refs.get(i % IMAGES), id, "/bin/sleep", "600");
            started.add(id);
        }
        String gone = "series-" + CONTAINERS;
        env.ctrResult("tasks", "kill", "-s", "SIGKILL", gone);
        for (int i = 0; i < 100 && env.ctrResult("tasks", "rm", "-f", gone).code() != 0; i++) Thread.sleep(100);
        env.ctr("containers", "rm", gone);
        started.remove(gone);
        String extra = OciImage.push(env.registry(), "itest/series-extra", "1", List.of(Images.base().finish()), List.of("/bin/sh"));
        env.ctr("images", "pull", "--plain-http", "--snapshotter", "dedup", extra);
        env.ctr("images", "rm", "--sync", extra);
        env.ctr("snapshots", "--snapshotter", "dedup", "usage");
        env.ctr("snapshots", "--snapshotter", "dedup", "ls");
        env.dedupctl("stats").orThrow("dedupctl stats");
        env.dedupctl("ls").orThrow("dedupctl ls");
        env.dedupctl("gc").orThrow("dedupctl gc");
        // the KSM figures are cached for a second: scrape until every container has its series
        String body = scrape();
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (perContainer(body) < CONTAINERS && System.nanoTime() < deadline) {
            Thread.sleep(500);
            body = scrape();
        }
        assertEquals(CONTAINERS, perContainer(body), "per-container series:\n"
                + body.lines().filter(l -> l.startsWith("dedup_ksm_container")).collect(Collectors.joining("\n")));
        for (int i = 0; i < CONTAINERS; i++)
            assertTrue(body.contains("dedup_ksm_container_merging_bytes{container_id=\"series-" + i + "\",namespace=\"" + TestEnv.NS + "\"}"),
                    "series-" + i + " by its container id");

        List<String> all = series(body);
        Map<String, Long> byName = new TreeMap<>(all.stream().collect(Collectors.groupingBy(l -> l.replaceAll("[{ ].*", "")
                .replaceAll("_(bucket|count|sum|max)$", ""), Collectors.counting())));
        System.out.println(body.lines().filter(l -> l.startsWith("dedup_grpc_requests_total")).collect(Collectors.joining("\n")));
        System.out.println("MetricsSeriesTest: " + all.size() + " series after " + IMAGES + " pulls and with " + CONTAINERS + " containers; by family: " + byName);
        assertTrue(body.contains("dedup_grpc_request_duration_seconds_bucket{method=\"Usage\",service=\"containerd.services.snapshots.v1.Snapshots\""),
                "containerd's calls are timed");
        assertFalse(body.contains("dedup_grpc_request_duration_seconds_count{method=\"Stats\""), "dedupctl's calls are counted, not timed");
        assertTrue(body.contains("dedup_grpc_requests_total{code=\"OK\",method=\"Stats\""), "dedupctl's calls are counted");
        assertTrue(all.size() <= BUDGET, all.size() + " series (budget " + BUDGET + "); by family: " + byName);

        Path file = Files.writeString(env.dir.resolve("metrics.txt"), body);
        Proc.Result check = Proc.run(Duration.ofMinutes(1), List.of("sh", "-c", "promtool check metrics < " + file));
        assertEquals(0, check.code(), "promtool check metrics:\n" + check.out());
    }

    static long perContainer(String body) {
        return body.lines().filter(l -> l.startsWith("dedup_ksm_container_merging_bytes{container_id=\"series-")).count();
    }
}
