package org.dedupsnapshotter.lazy.registry;

import com.sun.net.httpserver.HttpServer;
import org.dedupsnapshotter.lazy.registry.hosts.HostsDir;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.http.HttpClient;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Queue;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Reads through hosts.toml's mirrors: in order, by capability, falling to the next within the caller's deadline. */
class MirroredRegistryTest {
    static final byte[] BLOB = "0123456789abcdefghijklmnopqrstuvwxyz".getBytes(StandardCharsets.US_ASCII);
    static final String DIGEST = RegistryClient.sha256(BLOB);
    static final byte[] MANIFEST = "{\"schemaVersion\":2}".getBytes(StandardCharsets.US_ASCII);
    @TempDir
    Path dir;
    final List<HttpServer> servers = new ArrayList<>();

    /** A registry on loopback answering status (or its content when 200); counts requests and keeps their headers. */
    final class Fake {
        final HttpServer server;
        final AtomicInteger requests = new AtomicInteger();
        final Queue<String> mirrorHeaders = new ConcurrentLinkedQueue<>();
        final Queue<String> authorizations = new ConcurrentLinkedQueue<>();
        /** Answer every request without Authorization with a Basic challenge. */
        volatile boolean basicAuth;
        volatile int status;
        volatile long delayMillis;

        Fake(int status) throws IOException {
            this.status = status;
            server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
            server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
            server.createContext("/", ex -> {
                try (ex) {
                    requests.incrementAndGet();
                    mirrorHeaders.add(String.valueOf(ex.getRequestHeaders().getFirst("X-Mirror")));
                    String auth = ex.getRequestHeaders().getFirst("Authorization");
                    if (auth != null) authorizations.add(auth);
                    if (basicAuth && auth == null) {
                        ex.getResponseHeaders().add("WWW-Authenticate", "Basic realm=\"itest\"");
                        ex.sendResponseHeaders(401, -1);
                        return;
                    }
                    if (delayMillis > 0) Thread.sleep(delayMillis);
                    if (this.status != 200) {
                        ex.sendResponseHeaders(this.status, -1);
                        return;
                    }
                    String path = ex.getRequestURI().getPath();
                    byte[] body = path.contains("/manifests/") ? MANIFEST : BLOB;
                    String range = ex.getRequestHeaders().getFirst("Range");
                    int code = 200;
                    if (range != null) {
                        String[] r = range.substring(6).split("-");
                        int from = Integer.parseInt(r[0]), to = Integer.parseInt(r[1]);
                        body = Arrays.copyOfRange(body, from, to + 1);
                        code = 206;
                    }
                    ex.getResponseHeaders().add("Content-Type", RegistryClient.OCI_MANIFEST);
                    ex.sendResponseHeaders(code, body.length);
                    try (OutputStream out = ex.getResponseBody()) {
                        out.write(body);
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            server.start();
            servers.add(server);
        }

        String address() { return "127.0.0.1:" + server.getAddress().getPort(); }
    }

    @AfterEach
    void stop() { servers.forEach(s -> s.stop(0)); }

    private MirroredRegistry registry(Fake upstream, String hostsToml) throws IOException {
        return registry(upstream, hostsToml, h -> Optional.empty());
    }

    private MirroredRegistry registry(Fake upstream, String hostsToml, CredentialSource credentials) throws IOException {
        Path d = Files.createDirectories(dir.resolve(upstream.address()));
        Files.writeString(d.resolve("hosts.toml"), hostsToml);
        return MirroredRegistry.of(upstream.address(), true, HostsDir.parse(dir.toString()), credentials, Duration.ofSeconds(10), HttpClient.Builder.NO_PROXY);
    }

    @Test
    void eachEndpointGetsOnlyTheCredentialsOfItsOwnHost() throws IOException {
        Fake upstream = new Fake(200), mirror = new Fake(200);
        upstream.basicAuth = true;
        mirror.basicAuth = true;
        Queue<String> asked = new ConcurrentLinkedQueue<>();
        MirroredRegistry r = registry(upstream, "[host.\"http://" + mirror.address() + "\"]\n", h -> {
            asked.add(h);
            return h.equals(upstream.address()) ? Optional.of(new Credentials("alice", "upstream-secret")) : Optional.empty();
        });
        assertArrayEquals(BLOB, r.blob("repo", DIGEST));
        assertEquals(Set.of(mirror.address(), upstream.address()), Set.copyOf(asked), "each endpoint asks for its own host only");
        assertTrue(mirror.authorizations.isEmpty(), "the mirror got no credentials: " + mirror.authorizations);
        assertEquals(1, upstream.authorizations.size());
        assertEquals(1, upstream.requests.get() - 1, "the upstream served after its challenge");
    }

    @Test
    void theFirstMirrorServesAndGetsItsHeaders() throws IOException {
        Fake upstream = new Fake(200), mirror = new Fake(200);
        MirroredRegistry r = registry(upstream, "[host.\"http://" + mirror.address() + "\"]\n  header.X-Mirror = \"yes\"\n");
        assertArrayEquals(BLOB, r.blob("repo", DIGEST));
        assertEquals(1, mirror.requests.get());
        assertEquals(0, upstream.requests.get());
        assertEquals("yes", mirror.mirrorHeaders.poll());
    }

    @Test
    void aMirrorThatFailsIsSkippedForAWhileWithinTheReadDeadline() throws IOException {
        Fake upstream = new Fake(200), broken = new Fake(503);
        MirroredRegistry r = registry(upstream, "[host.\"http://" + broken.address() + "\"]\n");
        long start = System.nanoTime();
        long deadline = start + TimeUnit.SECONDS.toNanos(6);
        assertArrayEquals(new byte[] {'2', '3', '4'}, r.blobRange("repo", DIGEST, 2, 3, deadline));
        assertTrue(System.nanoTime() < deadline, "the upstream answered inside the caller's deadline");
        int askedBroken = broken.requests.get();
        assertTrue(askedBroken >= 1);
        for (int i = 0; i < 5; i++)
            try (InputStream in = r.blobRangeStream("repo", DIGEST, i, 1, System.nanoTime() + TimeUnit.SECONDS.toNanos(5))) {
                assertEquals(BLOB[i], in.readAllBytes()[0]);
            }
        assertEquals(askedBroken, broken.requests.get(), "the failed mirror is not asked again for every chunk");
    }

    @Test
    void aRefusingMirrorFallsThroughAtOnce() throws IOException {
        Fake upstream = new Fake(200);
        int closed;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            closed = s.getLocalPort();
        }
        MirroredRegistry r = registry(upstream, "[host.\"http://127.0.0.1:" + closed + "\"]\n");
        long start = System.nanoTime();
        assertArrayEquals(BLOB, r.blob("repo", DIGEST));
        assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(3), "no retries on an address that refuses");
    }

    @Test
    void aMirrorWithout404IsAskedAgainNextTime() throws IOException {
        Fake upstream = new Fake(200), empty = new Fake(404);
        MirroredRegistry r = registry(upstream, "[host.\"http://" + empty.address() + "\"]\n");
        assertArrayEquals(BLOB, r.blob("repo", DIGEST));
        assertArrayEquals(BLOB, r.blob("repo", DIGEST));
        assertEquals(2, empty.requests.get());
        assertEquals(2, upstream.requests.get());
    }

    @Test
    void tagsAreResolvedOnlyByEndpointsThatMayResolve() throws IOException {
        Fake upstream = new Fake(200), pullOnly = new Fake(200);
        MirroredRegistry r = registry(upstream, "[host.\"http://" + pullOnly.address() + "\"]\n  capabilities = [\"pull\"]\n");
        r.manifest("repo", "latest");
        assertEquals(0, pullOnly.requests.get());
        assertEquals(1, upstream.requests.get());
        r.manifest("repo", RegistryClient.sha256(MANIFEST));
        assertEquals(1, pullOnly.requests.get(), "by digest the mirror may serve");
    }

    @Test
    void theRegistrysOwnFailureIsWhatTheCallerSees() throws IOException {
        Fake upstream = new Fake(404), mirror = new Fake(404);
        MirroredRegistry r = registry(upstream, "[host.\"http://" + mirror.address() + "\"]\n");
        RegistryException e = assertThrows(RegistryException.class, () -> r.blob("repo", DIGEST));
        assertEquals(404, e.status());
        assertTrue(e.getMessage().contains(upstream.address()), e.getMessage());
        assertEquals(1, e.getSuppressed().length, "the mirror's failure comes along");
    }

    @Test
    void aSlowMirrorGetsOnlyPartOfTheDeadline() throws IOException {
        Fake upstream = new Fake(200), slow = new Fake(200);
        slow.delayMillis = 20_000;
        MirroredRegistry r = registry(upstream, "[host.\"http://" + slow.address() + "\"]\n");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(6);
        try (InputStream in = r.blobRangeStream("repo", DIGEST, 0, 4, deadline)) {
            assertArrayEquals(new byte[] {'0', '1', '2', '3'}, in.readAllBytes());
        }
        assertTrue(System.nanoTime() < deadline, "the upstream answered before the caller's deadline");
    }
}
