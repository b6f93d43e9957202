package org.dedupsnapshotter.itest;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Registry faults during lazy reads are retried, not passed on, with real containerd, runc, registry and kernel:
 * 503s, a 429 with Retry-After, reset connections, a stalled body, the registry unreachable for less than the read
 * deadline — the container reads the right bytes and no read fails. Unreachable for longer: the read fails with EIO
 * at the deadline, and once the registry is back the same file reads right. The faults come from a real TCP proxy
 * in front of the registry ({@link SlowProxy}); each test reads a file of its own, so its chunks are not fetched yet.
 */
class LazyRetryTest {
    static final int FILE = 3 << 20;
    static final Duration DEADLINE = Duration.ofSeconds(5);
    static TestEnv env;
    static SlowProxy proxy;
    static int metricsPort;
    static String image;

    @BeforeAll
    static void start() throws Exception {
        metricsPort = TestEnv.freePort();
        env = TestEnv.fullWithConfig("{\"lazy\": {\"readDeadline\": \"" + DEADLINE.toSeconds() + "s\", \"prefetchConcurrency\": 0, \"readAhead\": 0},"
                + " \"metrics\": {\"address\": \"127.0.0.1:" + metricsPort + "\"}}");
        proxy = new SlowProxy(env.registryPort, 1L << 30);
        String original = OciImage.push(env.registry(), "itest/retry", "1", List.of(Images.base().finish(), dataLayer()), List.of("/bin/sh"));
        image = Images.convert(original, proxy.address() + "/itest/retry-lazy:1");
        env.clientPull(image).orThrow("client pull");
        // the shell's own chunks fetched once, so that a test's faults meet only the reads of its file
        env.ctrResult("run", "--rm", "--snapshotter", "dedup", image, "retry-warm", "/bin/sh", "-c", "true").orThrow("warm-up run");
    }

    @AfterAll
    static void stop() throws Exception {
        if (proxy != null) proxy.close();
        if (env != null) env.close();
    }

    static byte[] dataLayer() throws Exception {
        TarWriter t = new TarWriter().dir("./", TarWriter.Meta.of(0755)).dir("data", TarWriter.Meta.of(0755));
        for (int i = 0; i < 8; i++) t.file("data/f" + i, Images.random(100 + i, FILE), TarWriter.Meta.of(0644));
        return t.finish();
    }

    static String sha(int file) throws Exception { return Images.sha256sum(Images.random(100 + file, FILE)); }

    private static Proc.Result read(String name, int file) throws Exception {
        return env.ctrResult("run", "--rm", "--snapshotter", "dedup", image, name, "/bin/sh", "-c", "sha256sum /data/f" + file + "; echo rc=$?");
    }

    private static long readsFailed() throws Exception { return env.stats().path("lazy").path("readsFailed").asLong(); }

    /** Reads file through the armed fault: the right bytes, no failed read, and the fault was really served. */
    private static void readsRightThrough(String name, int file, int faultsExpected) throws Exception {
        long failedBefore = readsFailed(), servedBefore = proxy.faultsServed();
        long t0 = System.nanoTime();
        Proc.Result r = read(name, file);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(r.out().contains(sha(file)) && r.out().contains("rc=0"), "wrong bytes or a failed read:\n" + r.out() + env.daemon.logTail());
        assertEquals(failedBefore, readsFailed(), "a read failed on the way:\n" + env.daemon.logTail());
        assertTrue(proxy.faultsServed() - servedBefore >= faultsExpected, "the proxy served " + (proxy.faultsServed() - servedBefore) + " faults");
        System.out.println(name + ": read through " + (proxy.faultsServed() - servedBefore) + " faults in " + ms + " ms");
    }

    /** One series' value from the daemon's Prometheus endpoint (0 when absent). */
    static double metric(String series) throws Exception {
        String body = java.net.http.HttpClient.newHttpClient().send(java.net.http.HttpRequest.newBuilder(
                java.net.URI.create("http://127.0.0.1:" + metricsPort + "/metrics")).build(), java.net.http.HttpResponse.BodyHandlers.ofString()).body();
        return body.lines().filter(l -> l.startsWith(series + " ")).mapToDouble(l -> Double.parseDouble(l.substring(series.length() + 1))).findFirst().orElse(0);
    }

    @Test
    void aBurstOf503sIsRetried() throws Exception {
        String errors = "dedup_registry_errors_total{class=\"5xx\"}", retries = "dedup_registry_retries_total",
                fetched = "dedup_lazy_reads_total{served=\"fetched\"}", held = "dedup_lazy_reader_held_seconds_count";
        double errorsBefore = metric(errors), retriesBefore = metric(retries), fetchedBefore = metric(fetched), heldBefore = metric(held);
        proxy.answerNext(4, 503, "");
        readsRightThrough("retry-503", 0, 4);
        // what an operator sees of it: the registry's errors and our retries, and readers held for fetches
        assertTrue(metric(errors) - errorsBefore >= 4, errors + " " + errorsBefore + " -> " + metric(errors));
        assertTrue(metric(retries) - retriesBefore >= 4, retries + " " + retriesBefore + " -> " + metric(retries));
        assertTrue(metric(fetched) > fetchedBefore, fetched + " " + fetchedBefore + " -> " + metric(fetched));
        assertTrue(metric(held) > heldBefore, held + " " + heldBefore + " -> " + metric(held));
        assertTrue(metric("process_resident_memory_bytes") > 20e6 && metric("process_open_fds") > 10, "the daemon's RSS and open fds");
    }

    @Test
    void a429IsRetriedAfterItsRetryAfter() throws Exception {
        proxy.answerNext(1, 429, "Retry-After: 2\r\n");
        long t0 = System.nanoTime();
        readsRightThrough("retry-429", 1, 1);
        assertTrue(System.nanoTime() - t0 >= 2_000_000_000L, "the Retry-After of 2 s was not waited for");
    }

    @Test
    void resetConnectionsAreRetried() throws Exception {
        proxy.resetNext(3, 64 << 10);
        // at least one: an armed reset goes to the next new connection, and one whose answer ends before 64 KiB (a small
        // range of the read's, or another request of the daemon's) takes it without being reset (seen once in CI: 2 of 3)
        readsRightThrough("retry-reset", 2, 1);
    }

    @Test
    void aStalledBodyIsGivenUpAndFetchedAgainWithinTheDeadline() throws Exception {
        proxy.stallNext(64 << 10, Duration.ofSeconds(60));
        readsRightThrough("retry-stall", 3, 1);
    }

    @Test
    void aRegistryUnreachableForLessThanTheDeadlineIsWaitedFor() throws Exception {
        proxy.refuseFor(Duration.ofSeconds(2));
        long t0 = System.nanoTime();
        readsRightThrough("retry-refused", 4, 0);
        assertTrue(System.nanoTime() - t0 >= 1_500_000_000L, "the read did not meet the refusal (it did not wait for the registry)");
    }

    @Test
    void aRegistryUnreachablePastTheDeadlineGivesEioAtTheDeadlineAndTheRightBytesOnceBack() throws Exception {
        long failedBefore = readsFailed();
        Duration down = DEADLINE.multipliedBy(3);
        long back = System.nanoTime() + down.toNanos();
        proxy.refuseFor(down);
        long t0 = System.nanoTime();
        Proc.Result cut = read("retry-down", 5);
        double seconds = (System.nanoTime() - t0) / 1e9;
        assertTrue(cut.out().contains("rc=1"), "a read of an unfetched chunk did not fail with the registry down:\n" + cut.out());
        assertFalse(cut.out().contains(sha(5)), cut.out());
        long denied = readsFailed() - failedBefore;
        assertTrue(denied > 0, env.stats().toString());
        System.out.println("retry-down: EIO after " + seconds + " s (deadline " + DEADLINE.toSeconds() + " s), " + denied + " read events denied");
        // each denied event waited its deadline, one after the other (the kernel may ask again for the page it failed)
        assertTrue(seconds >= DEADLINE.toSeconds() - 0.5, "the read failed after " + seconds + " s, before the deadline");
        assertTrue(seconds < denied * DEADLINE.toSeconds() + 8, "the read failed after " + seconds + " s, long past " + denied + " deadlines");
        while (System.nanoTime() < back + 500_000_000L) Thread.sleep(100);
        Proc.Result again = read("retry-back", 5);
        assertTrue(again.out().contains(sha(5)) && again.out().contains("rc=0"), "no right bytes with the registry back:\n" + again.out() + env.daemon.logTail());
    }
}
