package org.dedupsnapshotter.lazy.registry;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * An upload whose Location names another host (blob storage behind the registry, or a hostile registry): the pieces
 * go there, our password does not (JDK HttpServers as the registry and the other host).
 */
class RegistryClientUploadTest {
    static final String AUTH = "Basic " + Base64.getEncoder().encodeToString("user:pw".getBytes(StandardCharsets.UTF_8));
    HttpServer registry, storage;
    final List<String> seenByStorage = new CopyOnWriteArrayList<>();
    final List<String> methodsAtStorage = new CopyOnWriteArrayList<>();

    @AfterEach
    void tearDown() {
        if (registry != null) registry.stop(0);
        if (storage != null) storage.stop(0);
    }

    @Test
    void theCredentialsStayWithTheRegistryWhenItsUploadLocationIsElsewhere() throws Exception {
        storage = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        storage.createContext("/upload/", ex -> {
            try (ex) {
                methodsAtStorage.add(ex.getRequestMethod());
                String a = ex.getRequestHeaders().getFirst("Authorization");
                if (a != null) seenByStorage.add(a);
                ex.getRequestBody().readAllBytes();
                if (ex.getRequestMethod().equals("PUT")) ex.sendResponseHeaders(201, -1);
                else {
                    ex.getResponseHeaders().set("Location", storageBase() + "/upload/1");
                    ex.sendResponseHeaders(202, -1);
                }
            }
        });
        storage.start();
        registry = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        registry.createContext("/v2/", this::registry);
        registry.start();

        RegistryClient client = new RegistryClient("127.0.0.1:" + registry.getAddress().getPort(), true, Optional.of(new Credentials("user", "pw")), Duration.ofSeconds(10));
        client.pushBlob("repo", "some layer bytes".getBytes(StandardCharsets.UTF_8), 8);
        assertEquals(List.of("PATCH", "PATCH", "PUT"), methodsAtStorage, "the pieces did not go where the registry said");
        assertEquals(List.of(), seenByStorage, "our Authorization went to another host");
    }

    private String storageBase() { return "http://localhost:" + storage.getAddress().getPort(); }

    private void registry(HttpExchange ex) throws IOException {
        try (ex) {
            if (!AUTH.equals(ex.getRequestHeaders().getFirst("Authorization"))) {
                ex.getResponseHeaders().set("WWW-Authenticate", "Basic realm=\"test\"");
                ex.sendResponseHeaders(401, -1);
                return;
            }
            assertFalse(ex.getRequestURI().getPath().isEmpty());
            if (ex.getRequestMethod().equals("HEAD")) ex.sendResponseHeaders(404, -1);
            else if (ex.getRequestMethod().equals("POST")) {
                ex.getResponseHeaders().set("Location", storageBase() + "/upload/1");
                ex.sendResponseHeaders(202, -1);
            } else ex.sendResponseHeaders(405, -1);
        }
    }
}
