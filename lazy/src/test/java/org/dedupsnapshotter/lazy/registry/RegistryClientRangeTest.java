package org.dedupsnapshotter.lazy.registry;

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
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A registry that ignores Range and answers 200 with the whole blob: the client keeps only the wanted bytes and drops
 * the connection after them, so a blob's size (a remote claim) never sizes a buffer. The server counts what it got
 * to send before the client hung up.
 */
class RegistryClientRangeTest {
    static final long BLOB = 64L << 20;
    HttpServer server;
    final AtomicLong sent = new AtomicLong();
    final CountDownLatch answered = new CountDownLatch(1);
    RegistryClient client;

    static byte at(long i) { return (byte) (i * 31 + (i >>> 9)); }

    @BeforeEach
    void setUp() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/v2/", ex -> {
            try (ex) {
                ex.sendResponseHeaders(200, BLOB); // Range or not: the whole blob
                OutputStream out = ex.getResponseBody();
                byte[] buf = new byte[64 << 10];
                for (long pos = 0; pos < BLOB; pos += buf.length) {
                    for (int i = 0; i < buf.length; i++) buf[i] = at(pos + i);
                    out.write(buf);
                    sent.addAndGet(buf.length);
                }
            } catch (IOException hungUp) {
                // the client closed the connection: what it wanted has come
            } finally {
                answered.countDown();
            }
        });
        server.start();
        client = new RegistryClient("127.0.0.1:" + server.getAddress().getPort(), true, Optional.empty(), Duration.ofSeconds(20));
    }

    @AfterEach
    void tearDown() { server.stop(0); }

    private static byte[] expected(long offset, int length) {
        byte[] b = new byte[length];
        for (int i = 0; i < length; i++) b[i] = at(offset + i);
        return b;
    }

    @Test
    void aRangeOfABlobSentWholeKeepsOnlyTheRangeAndStopsReading() throws Exception {
        long offset = 3L << 20;
        int length = 100_000;
        assertArrayEquals(expected(offset, length), client.blobRange("repo", "sha256:00", offset, length));
        assertTrue(answered.await(20, TimeUnit.SECONDS), "the server is still sending: the client did not hang up");
        assertTrue(sent.get() < BLOB / 2, "the client let the registry send " + sent.get() + " of " + BLOB + " bytes for a range of " + length);
    }

    @Test
    void aRangeStreamOfABlobSentWholeEndsAfterTheRange() throws Exception {
        long offset = 1234567;
        int length = 70_000;
        try (InputStream in = client.blobRangeStream("repo", "sha256:00", offset, length)) {
            assertArrayEquals(expected(offset, length), in.readNBytes(length));
            assertEquals(-1, in.read(), "the stream goes on past the range");
        }
        assertTrue(answered.await(20, TimeUnit.SECONDS), "the server is still sending: the client did not hang up");
        assertTrue(sent.get() < BLOB / 2, "the client let the registry send " + sent.get() + " of " + BLOB + " bytes");
    }
}
