package org.dedupsnapshotter.lazy.registry;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A registry (Basic auth) that answers blob GETs with a 307 to a signed URL at a second server, the "CDN", as Docker
 * Hub and registries on S3 do. Both count what they are asked: a blob's later ranges go to the CDN directly (one
 * request per range), without our credentials; an expired, refused or unreachable CDN URL is resolved again through
 * the registry, in the same attempt.
 */
class RegistryClientRedirectTest {
    static final long BLOB = 64L << 20;
    static final String DIGEST = "sha256:" + "ab".repeat(32);
    static final String AUTH = new Credentials("user", "pw").basic();
    static final DateTimeFormatter AMZ_DATE = DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'");
    static final Pattern RANGE = Pattern.compile("bytes=(\\d+)-(\\d+)");
    static final Pattern SIGNATURE = Pattern.compile("X-Amz-Signature=(\\d+)");

    HttpServer registry;
    final AtomicInteger redirected = new AtomicInteger();
    final AtomicInteger signatures = new AtomicInteger();
    final AtomicInteger expiresSeconds = new AtomicInteger(1200);
    final AtomicReference<Cdn> target = new AtomicReference<>();
    Cdn cdn;
    RegistryClient client;

    static byte at(long i) { return (byte) (i * 31 + (i >>> 9)); }

    static byte[] expected(long offset, int length) {
        byte[] b = new byte[length];
        for (int i = 0; i < length; i++) b[i] = at(offset + i);
        return b;
    }

    /** Blob storage: serves the blob by Range (or whole, if told to ignore Range), refuses revoked signatures. */
    static final class Cdn implements AutoCloseable {
        final HttpServer server;
        final AtomicInteger requests = new AtomicInteger(), refused = new AtomicInteger();
        final List<String> authorizations = new CopyOnWriteArrayList<>();
        final Set<String> revoked = ConcurrentHashMap.newKeySet();
        final AtomicBoolean ignoreRange = new AtomicBoolean();
        /** Answers to come that name (and send) the blob's first bytes whatever range was asked. */
        final AtomicInteger wrongRanges = new AtomicInteger();
        final AtomicLong sent = new AtomicLong();

        Cdn() throws IOException {
            server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
            server.createContext("/blobs/", this::serve);
            server.start();
        }

        String base() { return "http://127.0.0.1:" + server.getAddress().getPort(); }

        private void serve(HttpExchange ex) throws IOException {
            try (ex) {
                requests.incrementAndGet();
                String auth = ex.getRequestHeaders().getFirst("Authorization");
                if (auth != null) authorizations.add(auth);
                Matcher sig = SIGNATURE.matcher(ex.getRequestURI().getRawQuery());
                if (!sig.find() || revoked.contains(sig.group(1))) {
                    refused.incrementAndGet();
                    ex.sendResponseHeaders(403, -1);
                    return;
                }
                Matcher m = RANGE.matcher(String.valueOf(ex.getRequestHeaders().getFirst("Range")));
                long from = 0, to = BLOB - 1;
                if (m.matches() && !ignoreRange.get()) {
                    from = Long.parseLong(m.group(1));
                    to = Math.min(BLOB - 1, Long.parseLong(m.group(2)));
                    if (wrongRanges.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
                        to -= from;
                        from = 0;
                    }
                    ex.getResponseHeaders().set("Content-Range", "bytes " + from + "-" + to + "/" + BLOB);
                    ex.sendResponseHeaders(206, to - from + 1);
                } else {
                    ex.sendResponseHeaders(200, BLOB);
                }
                OutputStream out = ex.getResponseBody();
                byte[] buf = new byte[64 << 10];
                for (long pos = from; pos <= to; pos += buf.length) {
                    int n = (int) Math.min(buf.length, to - pos + 1);
                    for (int i = 0; i < n; i++) buf[i] = at(pos + i);
                    out.write(buf, 0, n);
                    sent.addAndGet(n);
                }
            } catch (IOException hungUp) {
                // the client had what it wanted
            }
        }

        /** Refuses every URL handed out so far (as storage does once a signature expires). */
        void revokeAll(int upTo) {
            for (int i = 1; i <= upTo; i++) revoked.add(String.valueOf(i));
        }

        @Override
        public void close() { server.stop(0); }
    }

    @BeforeEach
    void setUp() throws IOException {
        cdn = new Cdn();
        target.set(cdn);
        registry = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        registry.createContext("/v2/", ex -> {
            try (ex) {
                if (!AUTH.equals(ex.getRequestHeaders().getFirst("Authorization"))) {
                    ex.getResponseHeaders().set("WWW-Authenticate", "Basic realm=\"test\"");
                    ex.sendResponseHeaders(401, -1);
                    return;
                }
                redirected.incrementAndGet();
                String date = ZonedDateTime.now(ZoneOffset.UTC).format(AMZ_DATE);
                ex.getResponseHeaders().set("Location", target.get().base() + "/blobs/" + DIGEST + "/data?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=" + date
                        + "&X-Amz-Expires=" + expiresSeconds.get() + "&X-Amz-Signature=" + signatures.incrementAndGet());
                ex.sendResponseHeaders(307, -1);
            }
        });
        registry.start();
        client = new RegistryClient("127.0.0.1:" + registry.getAddress().getPort(), true, Optional.of(new Credentials("user", "pw")), Duration.ofSeconds(20));
    }

    @AfterEach
    void tearDown() {
        registry.stop(0);
        cdn.close();
    }

    private void readsRight(long offset, int length) throws IOException {
        assertArrayEquals(expected(offset, length), client.blobRange("repo", DIGEST, offset, length), "wrong bytes at " + offset);
    }

    @Test
    void aBlobsLaterRangesGoStraightToTheCdnWithoutCredentials() throws Exception {
        for (int i = 0; i < 10; i++) readsRight(i * 1_000_003L, 100_000);
        assertEquals(1, redirected.get(), "the registry was asked where the blob is for each range");
        assertEquals(10, cdn.requests.get(), "requests at the CDN for 10 ranges");
        assertEquals(List.of(), cdn.authorizations, "our credentials went to the CDN");
    }

    @Test
    void eachBlobIsResolvedOnItsOwn() throws Exception {
        readsRight(0, 1000);
        client.blobRange("repo", "sha256:" + "cd".repeat(32), 0, 1000);
        client.blobRange("other", DIGEST, 0, 1000);
        readsRight(5000, 1000);
        assertEquals(3, redirected.get(), "one resolution per registry blob (repository + digest)");
    }

    @Test
    void aRefusedCdnUrlIsResolvedAgainInTheSameAttempt() throws Exception {
        readsRight(0, 1000);
        cdn.revokeAll(signatures.get());
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        try (InputStream in = client.blobRangeStream("repo", DIGEST, 7_000_000, 5000, deadline)) { // one attempt: not retried
            assertArrayEquals(expected(7_000_000, 5000), in.readAllBytes());
        }
        assertEquals(1, cdn.refused.get(), "the cached URL was not tried");
        assertEquals(2, redirected.get());
        readsRight(9_000_000, 1000); // and the new URL is the one kept
        assertEquals(2, redirected.get());
    }

    @Test
    void aCdnUrlAnsweringAnotherRangeIsForgottenAndTheRegistryAskedAgain() throws Exception {
        readsRight(0, 1000);
        cdn.wrongRanges.set(1);
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        try (InputStream in = client.blobRangeStream("repo", DIGEST, 5_000_000, 4000, deadline)) { // one attempt
            assertArrayEquals(expected(5_000_000, 4000), in.readAllBytes());
        }
        assertEquals(2, redirected.get(), "the URL that answered another range was kept");
    }

    @Test
    void anUrlPastItsExpiryIsNotUsed() throws Exception {
        expiresSeconds.set(3);
        readsRight(0, 1000);
        readsRight(1000, 1000);
        assertEquals(1, redirected.get());
        Thread.sleep(3200);
        readsRight(2000, 1000);
        assertEquals(2, redirected.get(), "an expired URL was used or the registry was not asked again");
        assertEquals(0, cdn.refused.get(), "the expired URL was sent to the CDN");
    }

    @Test
    void anUnreachableCdnIsForgottenAndTheRegistryAskedAgain() throws Exception {
        readsRight(0, 1000);
        try (Cdn second = new Cdn()) {
            target.set(second);
            cdn.close(); // the first CDN node is gone; the registry now sends clients to the second
            long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            try (InputStream in = client.blobRangeStream("repo", DIGEST, 123_456, 4000, deadline)) {
                assertArrayEquals(expected(123_456, 4000), in.readAllBytes());
            }
            assertEquals(2, redirected.get());
            assertEquals(1, second.requests.get());
        }
    }

    @Test
    void aCdnThatIgnoresRangeIsStreamedNotBuffered() throws Exception {
        cdn.ignoreRange.set(true);
        long offset = 3L << 20;
        int length = 100_000;
        readsRight(offset, length);
        readsRight(offset * 2, length); // the cached URL, still ignoring Range
        assertEquals(1, redirected.get());
        // each answer was the whole 64 MiB blob: had the client read it whole, the CDN would have sent 128 MiB
        Thread.sleep(500);
        assertTrue(cdn.sent.get() < BLOB, "the client let the CDN send " + cdn.sent.get() + " bytes for two ranges of " + length);
    }
}
