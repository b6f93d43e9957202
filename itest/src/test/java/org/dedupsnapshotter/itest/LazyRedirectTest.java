package org.dedupsnapshotter.itest;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

import java.util.List;
import java.util.function.Predicate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Lazy reads from a registry that redirects blob GETs to a CDN (Debian's nginx: {@link RedirectingNginx}), with real
 * containerd, runc and kernel. Once a blob's redirect is resolved, each demand-fetched chunk costs one request, at
 * the CDN: the registry's 307s for that blob stay at one while the signed URL lives. An expired URL (a short
 * X-Amz-Expires) is resolved again; a refused one (403) too, without failing the read. Requests are counted in
 * nginx's access log, fetches in the daemon's stats.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class) // the refusal adds a 307 for the blob the first test counts
class LazyRedirectTest {
    static final int FILE = 10 << 20; // several chunks each
    static final int LONG_LIFE = 1200, SHORT_LIFE = 6;
    static TestEnv env;
    static RedirectingNginx nginx;
    static String lasting, expiring;

    @BeforeAll
    static void start() throws Exception {
        env = TestEnv.fullWithConfig("{\"lazy\": {\"readDeadline\": \"20s\", \"prefetchConcurrency\": 0, \"readAhead\": 0}}");
        nginx = new RedirectingNginx(env.dir.resolve("nginx"), env.registryPort, env.dir.resolve("registry"), List.of(LONG_LIFE, SHORT_LIFE));
        lasting = pushConverted("lasting", 0, nginx.front(0));
        expiring = pushConverted("expiring", 100, nginx.front(1));
        for (String image : List.of(lasting, expiring)) {
            env.clientPull(image).orThrow("client pull of " + image);
            env.ctrResult("run", "--rm", "--snapshotter", "dedup", image, "warm-" + Math.abs(image.hashCode()), "/bin/sh", "-c", "true").orThrow("warm-up run");
        }
    }

    @AfterAll
    static void stop() throws Exception {
        if (nginx != null) nginx.close();
        if (env != null) env.close();
    }

    /** An image of its own data (seeds from seed), converted in the registry and named through front. */
    static String pushConverted(String name, int seed, String front) throws Exception {
        TarWriter t = new TarWriter().dir("./", TarWriter.Meta.of(0755)).dir("data", TarWriter.Meta.of(0755));
        for (int i = 0; i < 4; i++) t.file("data/f" + i, Images.random(seed + i, FILE), TarWriter.Meta.of(0644));
        String original = OciImage.push(env.registry(), "itest/" + name, "1", List.of(Images.base().finish(), t.finish()), List.of("/bin/sh"));
        Images.convert(original, env.registry() + "/itest/" + name + "-lazy:1");
        return front + "/itest/" + name + "-lazy:1";
    }

    static String dataLayer(String image) throws Exception {
        List<String> layers = ImageRootfs.layerDigests(env, TestEnv.NS, image);
        return layers.get(layers.size() - 1);
    }

    static long demandFetches() throws Exception { return env.stats().path("lazy").path("demandFetches").asLong(); }

    /** Requests logged since the first `since` lines that match. */
    static long count(int since, Predicate<RedirectingNginx.Request> which) throws Exception {
        List<RedirectingNginx.Request> all = nginx.requests();
        return all.subList(Math.min(since, all.size()), all.size()).stream().filter(which).count();
    }

    static String since(int mark) throws Exception {
        List<RedirectingNginx.Request> all = nginx.requests();
        StringBuilder b = new StringBuilder();
        for (RedirectingNginx.Request q : all.subList(Math.min(mark, all.size()), all.size())) b.append(q).append('\n');
        return b.toString();
    }

    static void readsRight(String image, String name, int seed, int... files) throws Exception {
        StringBuilder cmd = new StringBuilder();
        for (int f : files) cmd.append("sha256sum /data/f").append(f).append("; ");
        Proc.Result r = env.ctrResult("run", "--rm", "--snapshotter", "dedup", image, name, "/bin/sh", "-c", cmd + "echo rc=$?");
        for (int f : files)
            assertTrue(r.out().contains(Images.sha256sum(Images.random(seed + f, FILE))), "wrong bytes of /data/f" + f + ":\n" + r.out() + env.daemon.logTail());
        assertTrue(r.out().contains("rc=0"), r.out());
    }

    /** 307s the front at port gave for blob to the daemon (not to containerd). */
    static Predicate<RedirectingNginx.Request> redirectOf(String blob, int port) {
        return q -> q.port() == port && q.status() == 307 && q.isBlobOf(blob) && !q.agent().startsWith("containerd/");
    }

    static Predicate<RedirectingNginx.Request> cdnGetOf(String blob, int status) {
        return q -> q.port() == nginx.cdnPort && q.status() == status && q.isBlobOf(blob) && !q.agent().startsWith("containerd/");
    }

    @Test
    @Order(1)
    void eachDemandFetchedChunkCostsOneRequestAtTheCdnAndTheRegistryRedirectsTheBlobOnce() throws Exception {
        String blob = dataLayer(lasting);
        int front = nginx.frontPorts.get(0);
        int mark = nginx.requests().size();
        long fetchesBefore = demandFetches();
        readsRight(lasting, "redirect-lasting", 0, 0, 1);
        long fetches = demandFetches() - fetchesBefore;
        long redirectsNow = count(mark, redirectOf(blob, front)), cdn = count(mark, cdnGetOf(blob, 206));
        long redirectsEver = count(0, redirectOf(blob, front));
        System.out.println("redirect-lasting: " + fetches + " demand fetches, " + cdn + " CDN range requests, " + redirectsNow
                + " registry 307s during the reads (" + redirectsEver + " for the blob since the pull)");
        assertTrue(fetches >= 4, "the reads fetched " + fetches + " chunks: not several chunks per file");
        assertEquals(1, redirectsEver, "the registry redirected the data blob more than once while its URL lives");
        assertTrue(cdn + redirectsNow <= fetches, cdn + " CDN + " + redirectsNow + " registry requests for " + fetches + " fetches:\n" + since(mark));
        assertEquals(0, count(mark, cdnGetOf(blob, 200)), "a range answered whole");
    }

    @Test
    @Order(2)
    void aRefusedUrlIsResolvedAgainAndTheReadGoesOn() throws Exception {
        String blob = dataLayer(lasting);
        int front = nginx.frontPorts.get(0);
        readsRight(lasting, "redirect-before-revoke", 0, 2);
        nginx.revokeAllHandedOut();
        int mark = nginx.requests().size();
        long fetchesBefore = demandFetches();
        readsRight(lasting, "redirect-revoked", 0, 3);
        long fetches = demandFetches() - fetchesBefore;
        long refused = count(mark, cdnGetOf(blob, 403)), redirects = count(mark, redirectOf(blob, front)), cdn = count(mark, cdnGetOf(blob, 206));
        System.out.println("redirect-revoked: " + fetches + " demand fetches, " + refused + " refused at the CDN, " + redirects + " registry 307s, " + cdn + " CDN range requests");
        assertTrue(refused >= 1, "the revoked URL was not tried");
        assertTrue(redirects >= 1 && redirects <= refused, redirects + " 307s for " + refused + " refusals");
        // the CDN also serves the daemon's layer proof reads (a HEAD and ranges, not demand fetches): no bound on cdn here
    }

    @Test
    @Order(3)
    void anExpiredUrlIsResolvedAgain() throws Exception {
        String blob = dataLayer(expiring);
        int front = nginx.frontPorts.get(1);
        int mark = nginx.requests().size();
        readsRight(expiring, "redirect-expiring-1", 100, 0);
        long first = count(mark, redirectOf(blob, front));
        Thread.sleep((SHORT_LIFE + 1) * 1000L);
        int mark2 = nginx.requests().size();
        long fetchesBefore = demandFetches();
        readsRight(expiring, "redirect-expiring-2", 100, 1);
        long fetches = demandFetches() - fetchesBefore;
        long again = count(mark2, redirectOf(blob, front)), cdn = count(mark2, cdnGetOf(blob, 206));
        System.out.println("redirect-expiring: " + first + " 307s in the first read, " + again + " after the URL's expiry, " + fetches + " fetches, " + cdn
                + " CDN range requests");
        assertTrue(again >= 1, "no new 307 after the URL expired: the expired URL was used");
        assertTrue(again < fetches, again + " 307s for " + fetches + " fetches: the new URL was not reused");
    }
}
