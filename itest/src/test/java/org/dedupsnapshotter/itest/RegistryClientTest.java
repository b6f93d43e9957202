package org.dedupsnapshotter.itest;

import org.dedupsnapshotter.lazy.registry.Credentials;
import org.dedupsnapshotter.lazy.registry.RegistryClient;
import org.dedupsnapshotter.lazy.registry.RegistryException;

import com.sun.net.httpserver.HttpServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Base64;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

/** The distribution-API client against a real docker-registry (plain HTTP on loopback). */
class RegistryClientTest {
    static TestEnv env;
    static RegistryClient client;

    @BeforeAll
    static void start() throws Exception {
        env = TestEnv.registryOnly();
        client = new RegistryClient(env.registry(), true, Optional.empty(), Duration.ofSeconds(30));
    }

    @AfterAll
    static void stop() throws Exception {
        if (env != null) env.close();
    }

    @Test
    void chunkedUploadThenWholeAndRangeReadsAreByteExact() throws Exception {
        byte[] data = Images.random(11, 3 * 1024 * 1024 + 17);
        String digest = RegistryClient.sha256(data);
        assertFalse(client.hasBlob("t/blobs", digest));
        client.pushBlob("t/blobs", data, 1 << 20); // four PATCHes
        assertTrue(client.hasBlob("t/blobs", digest));
        assertArrayEquals(data, client.blob("t/blobs", digest));
        assertArrayEquals(Arrays.copyOfRange(data, 1_000_000, 1_000_000 + 4096), client.blobRange("t/blobs", digest, 1_000_000, 4096));
        assertArrayEquals(Arrays.copyOfRange(data, data.length - 17, data.length), client.blobRange("t/blobs", digest, data.length - 17, 17));
        client.pushBlob("t/blobs", data, 1 << 20); // already there: nothing to do
    }

    @Test
    void blobsStreamFromAndIntoFiles() throws Exception {
        byte[] data = Images.random(12, 2 * 1024 * 1024 + 5);
        Path file = Files.write(env.dir.resolve("upload.bin"), data), back = env.dir.resolve("download.bin");
        String digest = RegistryClient.sha256(data);
        client.pushBlob("t/files", file, digest, 1 << 20); // three PATCHes from the file
        assertEquals(data.length, client.blobToFile("t/files", digest, back));
        assertArrayEquals(data, Files.readAllBytes(back));
        Path other = Files.write(env.dir.resolve("other.bin"), "other".getBytes(StandardCharsets.UTF_8));
        RegistryException wrong = assertThrows(RegistryException.class, () -> client.pushBlob("t/files", other, "sha256:" + "2".repeat(64), 1 << 20));
        assertTrue(wrong.getMessage().contains("upload end"), wrong.getMessage());
        assertTrue(assertThrows(RegistryException.class, () -> client.blobToFile("t/files", "sha256:" + "0".repeat(64), back)).notFound());

        // streamed: the bytes, and the end of the stream may be read more than once
        try (InputStream in = client.blobStream("t/files", digest, data.length)) {
            assertArrayEquals(data, in.readAllBytes());
            assertEquals(-1, in.read());
        }
        // a size that is not the blob's: the end of the stream is an error, not an end
        try (InputStream in = client.blobStream("t/files", digest, data.length + 1L)) {
            assertTrue(assertThrows(IOException.class, in::readAllBytes).getMessage().contains("not " + (data.length + 1L) + " bytes"));
        }
    }

    @Test
    void manifestsRoundTripAndMissingThingsAre404() throws Exception {
        byte[] config = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}".getBytes(StandardCharsets.UTF_8);
        client.pushBlob("t/man", config, 1 << 20);
        String manifest = """
                {"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[]}"""
                .formatted(RegistryClient.OCI_MANIFEST, RegistryClient.sha256(config), config.length);
        String digest = client.pushManifest("t/man", "v1", RegistryClient.OCI_MANIFEST, manifest.getBytes(StandardCharsets.UTF_8));
        RegistryClient.Fetched byTag = client.manifest("t/man", "v1");
        assertEquals(digest, byTag.digest());
        assertEquals(RegistryClient.OCI_MANIFEST, byTag.mediaType());
        assertArrayEquals(byTag.body(), client.manifest("t/man", digest).body());
        RegistryException e = assertThrows(RegistryException.class, () -> client.manifest("t/man", "nope"));
        assertTrue(e.notFound(), e.getMessage());
        assertTrue(assertThrows(RegistryException.class, () -> client.blob("t/man", "sha256:" + "0".repeat(64))).notFound());
    }

    /**
     * The Bearer token flow. docker-registry's token auth needs a separate token service signing JWTs, which
     * Debian does not package; so here a stand-in registry (the JDK's HTTP server) plays both parts, speaking
     * the distribution spec's challenge: 401 + WWW-Authenticate: Bearer realm,service,scope.
     */
    @Test
    void bearerChallengeGetsATokenWithTheDockerConfigCredentials() throws Exception {
        HttpServer s = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 8);
        AtomicInteger tokensIssued = new AtomicInteger();
        String basic = "Basic " + Base64.getEncoder().encodeToString("alice:pw".getBytes(StandardCharsets.UTF_8));
        s.createContext("/token", ex -> {
            boolean ok = basic.equals(ex.getRequestHeaders().getFirst("Authorization"))
                    && ex.getRequestURI().getRawQuery().contains("scope=repository%3Ap%2Fq%3Apull") && ex.getRequestURI().getRawQuery().contains("service=test");
            byte[] body = ok ? "{\"token\":\"T0K\"}".getBytes() : "denied".getBytes();
            if (ok) tokensIssued.incrementAndGet();
            ex.sendResponseHeaders(ok ? 200 : 401, body.length);
            ex.getResponseBody().write(body);
            ex.close();
        });
        byte[] blob = "hello".getBytes(StandardCharsets.UTF_8);
        s.createContext("/v2/", ex -> {
            if (!"Bearer T0K".equals(ex.getRequestHeaders().getFirst("Authorization"))) {
                ex.getResponseHeaders().add("WWW-Authenticate", "Bearer realm=\"http://127.0.0.1:" + s.getAddress().getPort()
                        + "/token\",service=\"test\",scope=\"repository:p/q:pull\"");
                ex.sendResponseHeaders(401, -1);
            } else {
                ex.sendResponseHeaders(200, blob.length);
                ex.getResponseBody().write(blob);
            }
            ex.close();
        });
        s.start();
        try {
            var cfg = Files.writeString(env.dir.resolve("docker-config.json"),
                    "{\"auths\": {\"127.0.0.1:" + s.getAddress().getPort() + "\": {\"auth\": \"" + Base64.getEncoder().encodeToString("alice:pw".getBytes()) + "\"}}}");
            String host = "127.0.0.1:" + s.getAddress().getPort();
            RegistryClient authed = new RegistryClient(host, true, Credentials.forHost(cfg, host), Duration.ofSeconds(10));
            assertArrayEquals(blob, authed.blob("p/q", RegistryClient.sha256(blob)));
            assertArrayEquals(blob, authed.blob("p/q", RegistryClient.sha256(blob)));
            assertEquals(1, tokensIssued.get(), "the token is reused for the same scope");
            RegistryClient anonymous = new RegistryClient(host, true, Optional.empty(), Duration.ofSeconds(10));
            RegistryException e = assertThrows(RegistryException.class, () -> anonymous.blob("p/q", RegistryClient.sha256(blob)));
            assertTrue(e.getMessage().contains("token from"), e.getMessage());
            // content that does not match its digest is refused
            assertTrue(assertThrows(IOException.class, () -> authed.blob("p/q", "sha256:" + "1".repeat(64))).getMessage().contains("digest"));
        } finally {
            s.stop(0);
        }
    }
}
