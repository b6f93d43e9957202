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
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Memory dedup through real containerd (2.4) + runc with bin/dedup-runc as the runc binary: containers annotated
 * org.dedup-snapshotter.ksm=true get merged, the one annotated false does not; the node policy (ksm.containers)
 * decides for containers without the annotation and "off" overrides it; the daemon turns KSM on from its config
 * and reports the figures per container. The kernel's KSM settings are global: they are restored afterwards.
 */
class KsmTest {
    static final Path KSM = Path.of("/sys/kernel/mm/ksm");
    static final List<String> SAVED = List.of("pages_to_scan", "sleep_millisecs", "run");
    static final Map<String, String> saved = new LinkedHashMap<>();
    static final ObjectMapper JSON = new ObjectMapper();
    static TestEnv env;
    static String ref;
    static int metricsPort;
    static final List<String> started = new ArrayList<>();

    @BeforeAll
    static void start() throws Exception {
        for (String f : SAVED) saved.put(f, Files.readString(KSM.resolve(f)).trim());
        Files.writeString(KSM.resolve("run"), "0"); // the daemon, not the test, must turn it on
        metricsPort = TestEnv.freePort();
        Path cfg = Files.createTempFile("dedup-itest-ksm", ".json");
        Files.writeString(cfg, """
                {"metrics": {"address": "127.0.0.1:%d", "logInterval": "1s"},
                 "ksm": {"containers": "opt-in", "kernel": {"run": true, "pagesToScan": 4000, "sleepMillisecs": 10}}}""".formatted(metricsPort));
        try {
            env = TestEnv.full(null, List.of("--config", cfg.toString()));
        } finally {
            Files.delete(cfg);
        }
        Path memfill = env.dir.resolve("memfill");
        Proc.run(Duration.ofMinutes(2), List.of("sh", "-c", "cc -O2 -static -o " + memfill + " " + TestEnv.TOP.resolve("itest/src/test/c/memfill.c")
                + " || cc -O2 -o " + memfill + " " + TestEnv.TOP.resolve("itest/src/test/c/memfill.c"))).orThrow("cc memfill.c");
        ref = OciImage.push(env.registry(), "itest/ksm", "1", List.of(Images.base().finish(),
                new TarWriter().dir("./", TarWriter.Meta.of(0755)).file("bin/memfill", Files.readAllBytes(memfill), TarWriter.Meta.of(0755)).finish()),
                List.of("/bin/memfill", "64"));
        env.ctr("images", "pull", "--plain-http", "--snapshotter", "dedup", ref);
    }

    @AfterAll
    static void stop() throws Exception {
        try {
            if (env != null) env.close();
        } finally {
            // unmerge what the test merged, then put the node's settings back
            Files.writeString(KSM.resolve("run"), "2");
            for (var e : saved.entrySet()) Files.writeString(KSM.resolve(e.getKey()), e.getValue());
        }
    }

    /** Starts a detached container through bin/dedup-runc; annotation null = none. Returns its init pid. */
    static long run(String id, String annotation, String... cmd) throws Exception {
        List<String> args = new ArrayList<>(List.of("run", "-d", "--snapshotter", "dedup", "--runc-binary", TestEnv.TOP.resolve("bin/dedup-runc").toString()));
        if (annotation != null) args.addAll(List.of("--annotation", "org.dedup-snapshotter.ksm=" + annotation));
        args.add(ref);
        args.add(id);
        args.addAll(List.of(cmd));
        env.ctr(args.toArray(String[]::new));
        started.add(id);
        for (String line : env.ctr("tasks", "ls").split("\n")) {
            String[] f = line.trim().split("\\s+");
            if (f.length >= 3 && f[0].equals(id)) return Long.parseLong(f[1]);
        }
        throw new AssertionError("no task " + id + " in:\n" + env.ctr("tasks", "ls"));
    }

    static void remove(String id) throws Exception {
        env.ctrResult("tasks", "kill", "-s", "SIGKILL", id);
        for (int i = 0; i < 100 && env.ctrResult("tasks", "rm", "-f", id).code() != 0; i++) Thread.sleep(100);
        env.ctr("containers", "rm", id);
    }

    static String ksmStat(long pid, String field) throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/ksm_stat")))
            if (line.startsWith(field)) return line.substring(field.length()).replace(":", "").trim();
        throw new AssertionError("no " + field + " in /proc/" + pid + "/ksm_stat");
    }

    static long merging(long pid) throws Exception {
        return Long.parseLong(Files.readString(Path.of("/proc/" + pid + "/ksm_merging_pages")).trim());
    }

    static void awaitFilled(String id) throws Exception {
        // memfill prints once its memory is written; ctr run -d keeps no output, so wait on its RSS instead
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (System.nanoTime() < deadline) {
            String ps = env.ctr("tasks", "ps", id);
            long pid = Long.parseLong(ps.split("\n")[1].trim().split("\\s+")[0]);
            for (String l : Files.readAllLines(Path.of("/proc/" + pid + "/status")))
                if (l.startsWith("VmRSS:") && Long.parseLong(l.replaceAll("\\D", "")) >= 60 * 1024) return;
            Thread.sleep(200);
        }
        throw new AssertionError(id + " did not fill its memory within 30 s");
    }

    @Test
    void annotatedContainersMergeAndTheOneAnnotatedFalseDoesNot() throws Exception {
        assertEquals("1", Files.readString(KSM.resolve("run")).trim(), "the daemon applies ksm.kernel.run from its config");
        long a = run("ksm-a", "true"), b = run("ksm-b", "true"), c = run("ksm-c", "false");
        try {
            for (String id : List.of("ksm-a", "ksm-b", "ksm-c")) awaitFilled(id);
            assertEquals("yes", ksmStat(a, "ksm_merge_any"));
            assertEquals("yes", ksmStat(b, "ksm_merge_any"));
            assertEquals("no", ksmStat(c, "ksm_merge_any"));

            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while ((merging(a) == 0 || merging(b) == 0) && System.nanoTime() < deadline) Thread.sleep(500);
            assertTrue(merging(a) > 0 && merging(b) > 0, "no merged pages within a minute: a=" + merging(a) + " b=" + merging(b));
            // ksmd has had two more full scans to touch c's identical memory: it must still have merged nothing
            long scans = Long.parseLong(Files.readString(KSM.resolve("full_scans")).trim());
            while (Long.parseLong(Files.readString(KSM.resolve("full_scans")).trim()) < scans + 2) Thread.sleep(200);
            assertEquals(0, merging(c), "the container annotated false has merged pages");
            // 64 MiB each of identical pages: nearly all of a and b end up merged
            assertTrue(merging(a) > 8192 && merging(b) > 8192, "a=" + merging(a) + " b=" + merging(b));

            JsonNode stats = JSON.readTree(env.dedupctl("stats", "--json").orThrow("dedupctl stats").out());
            JsonNode k = stats.get("ksm");
            assertTrue(k.get("running").asBoolean(), k.toString());
            assertTrue(k.get("savedBytes").asLong() >= 64L << 20, k.toString());
            Map<String, Long> byContainer = new LinkedHashMap<>();
            for (JsonNode x : k.get("containers")) byContainer.put(x.get("container").asText(), x.get("mergingPages").asLong());
            assertTrue(byContainer.getOrDefault("itest/ksm-a", 0L) > 8192 && byContainer.getOrDefault("itest/ksm-b", 0L) > 8192, byContainer.toString());
            assertFalse(byContainer.containsKey("itest/ksm-c"), "a container that is not mergeable is listed: " + byContainer);
            // the id as containerd (and the kubelet's containerID) name the container, to join with pod metrics
            assertTrue(k.get("containers").findValuesAsText("id").containsAll(List.of("ksm-a", "ksm-b")), k.toString());
            String human = env.dedupctl("stats").out();
            assertTrue(human.contains("itest/ksm-a") && human.contains("MERGING_BYTES"), human);

            String metrics = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + metricsPort + "/metrics")).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
            assertTrue(metrics.matches("(?s).*dedup_ksm_container_merging_bytes\\{container_id=\"ksm-a\",namespace=\"itest\"} [1-9].*"), metrics);
            assertTrue(metrics.matches("(?s).*\ndedup_ksm_saved_bytes [1-9].*"), metrics);
            assertFalse(metrics.contains("dedup_ksm_container_merging_bytes{container_id=\"\""), "a series for a process outside containers");
            Thread.sleep(1500);
            List<String> lines = Files.readAllLines(env.daemon.log).stream().filter(l -> l.contains(" Metrics logical=")).toList();
            assertTrue(lines.getLast().matches(".* ksm=running ksmSaved=[1-9]\\d* ksmContainers=2( .*)?"), lines.getLast());
        } finally {
            for (String id : List.of("ksm-a", "ksm-b", "ksm-c")) remove(id);
        }
    }

    @Test
    void nodePolicyDecidesWithoutAnnotationAndOffOverridesIt() throws Exception {
        try {
            Files.deleteIfExists(env.nodeConfig());
            assertEquals("no", ksmStat(run("pol-default", null, "/bin/sleep", "600"), "ksm_merge_any"), "opt-in is the default");
            Files.writeString(env.nodeConfig(), "{\"ksm\": {\"containers\": \"all\"}}");
            assertEquals("yes", ksmStat(run("pol-all", null, "/bin/sleep", "600"), "ksm_merge_any"));
            assertEquals("no", ksmStat(run("pol-all-false", "false", "/bin/sleep", "600"), "ksm_merge_any"));
            Files.writeString(env.nodeConfig(), "{\"ksm\": {\"containers\": \"off\"}}");
            assertEquals("no", ksmStat(run("pol-off", "true", "/bin/sleep", "600"), "ksm_merge_any"), "off overrides the annotation");
            // processes exec'd into a container follow the container's annotation
            Files.writeString(env.nodeConfig(), "{\"ksm\": {\"containers\": \"opt-in\"}}");
            run("pol-exec", "true", "/bin/sleep", "600");
            String exec = env.ctr("tasks", "exec", "--exec-id", "probe", "pol-exec", "/bin/cat", "/proc/self/ksm_stat");
            assertTrue(exec.contains("ksm_merge_any: yes"), exec);
            String plain = env.ctr("tasks", "exec", "--exec-id", "probe", "pol-default", "/bin/cat", "/proc/self/ksm_stat");
            assertTrue(plain.contains("ksm_merge_any: no"), plain);
        } finally {
            Files.deleteIfExists(env.nodeConfig());
            for (String id : List.of("pol-default", "pol-all", "pol-all-false", "pol-off", "pol-exec"))
                if (started.contains(id)) remove(id);
        }
    }

    @Test
    void containersRunNormallyThroughTheWrapper() throws Exception {
        String out = env.ctr("run", "--rm", "--snapshotter", "dedup", "--runc-binary", TestEnv.TOP.resolve("bin/dedup-runc").toString(),
                "--annotation", "org.dedup-snapshotter.ksm=true", ref, "wrapped-run", "/bin/sh", "-c", "echo hello-from-wrapped");
        assertTrue(out.contains("hello-from-wrapped"), out);
        Proc.Result r = env.ctrResult("run", "--rm", "--snapshotter", "dedup", "--runc-binary", TestEnv.TOP.resolve("bin/dedup-runc").toString(),
                ref, "wrapped-exit", "/bin/sh", "-c", "exit 3");
        assertEquals(3, r.code(), "the container's exit status must come through the wrapper: " + r.out());
    }
}
