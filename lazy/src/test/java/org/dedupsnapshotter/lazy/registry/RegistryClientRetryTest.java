package org.dedupsnapshotter.lazy.registry;

import com.sun.net.httpserver.HttpServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Whole-blob downloads (convert, pull) through registry faults: retried when worth it, failed at once when not. */
class RegistryClientRetryTest {
    static final byte[] BLOB = "the blob's bytes".getBytes();
    static final String DIGEST = RegistryClient.sha256(BLOB);
    @TempDir
    Path dir;
    HttpServer server;
    /** Statuses the next answers have instead of the blob. */
    final Queue<Integer> faults = new ConcurrentLinkedQueue<>();
    final AtomicInteger requests = new AtomicInteger();
    RegistryClient client;

    @BeforeEach
    void start() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        server.createContext("/v2/", ex -> {
            try (ex) {
                requests.incrementAndGet();
                Integer fault = faults.poll();
                if (fault != null) {
                    ex.sendResponseHeaders(fault, -1);
                    return;
                }
                ex.sendResponseHeaders(200, BLOB.length);
                try (OutputStream out = ex.getResponseBody()) {
                    out.write(BLOB);
                }
            }
        });
        server.start();
        client = new RegistryClient("127.0.0.1:" + server.getAddress().getPort(), true, Optional.empty(), Duration.ofSeconds(10));
    }

    @AfterEach
    void stop() { server.stop(0); }

    @Test
    void aBlobIsDownloadedThrough5xxAnswers() throws IOException {
        faults.add(503);
        faults.add(502);
        assertArrayEquals(BLOB, client.blob("repo", DIGEST));
        faults.add(500);
        Path f = dir.resolve("blob");
        assertEquals(BLOB.length, client.blobToFile("repo", DIGEST, f));
        assertArrayEquals(BLOB, Files.readAllBytes(f));
        assertEquals(5, requests.get());
    }

    @Test
    void aNotFoundIsAskedOnce() {
        faults.add(404);
        RegistryException e = assertThrows(RegistryException.class, () -> client.blob("repo", DIGEST));
        assertEquals(404, e.status());
        assertEquals(1, requests.get());
    }

    @Test
    void aHostThatNeverAnsweredAndRefusesFailsAtOnce() throws IOException {
        int closed;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            closed = s.getLocalPort();
        }
        RegistryClient nowhere = new RegistryClient("127.0.0.1:" + closed, true, Optional.empty(), Duration.ofSeconds(10));
        long t0 = System.nanoTime();
        IOException e = assertThrows(IOException.class, () -> nowhere.manifest("repo", "1"));
        assertTrue(e.getMessage().contains("cannot reach the registry"), e.getMessage());
        assertFalse(RetryPolicy.retryable(e));
        assertTrue(System.nanoTime() - t0 < 2_000_000_000L, "a wrong address was retried");
    }
}
