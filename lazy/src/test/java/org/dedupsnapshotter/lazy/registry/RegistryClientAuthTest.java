package org.dedupsnapshotter.lazy.registry;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * How the client authenticates against registries played by the JDK's HTTP server: credentials read again after a
 * refusal (a rotated password), an identity token traded at the token realm, and credentials kept off other hosts.
 */
class RegistryClientAuthTest {
    static final byte[] BLOB = "hello, registry".getBytes(StandardCharsets.UTF_8);
    static final String DIGEST = RegistryClient.sha256(BLOB);
    @TempDir Path dir;
    final List<HttpServer> servers = new ArrayList<>();

    @AfterEach
    void stop() {
        servers.forEach(s -> s.stop(0));
    }

    private HttpServer server(String context, Handler h) throws IOException {
        HttpServer s = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        s.createContext(context, ex -> {
            try (ex) {
                h.handle(ex);
            }
        });
        s.start();
        servers.add(s);
        return s;
    }

    interface Handler { void handle(HttpExchange ex) throws IOException; }

    static String basic(String user, String pw) {
        return "Basic " + Base64.getEncoder().encodeToString((user + ":" + pw).getBytes(StandardCharsets.UTF_8));
    }

    static void send(HttpExchange ex, int status, byte[] body) throws IOException {
        ex.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
        if (body.length > 0) ex.getResponseBody().write(body);
    }

    static String host(HttpServer s) { return "127.0.0.1:" + s.getAddress().getPort(); }

    private DockerConfig configWith(String host, String user, String pw) throws IOException {
        Path cfg = dir.resolve("config.json");
        Files.writeString(cfg, "{\"auths\": {\"" + host + "\": {\"auth\": \"" + Base64.getEncoder().encodeToString((user + ":" + pw).getBytes()) + "\"}}}");
        return new DockerConfig(cfg, "");
    }

    @Test
    void aRotatedPasswordIsReadAgainAfterTheRegistryRefusesTheOldOne() throws Exception {
        AtomicReference<String> password = new AtomicReference<>("pw1");
        AtomicInteger refused = new AtomicInteger();
        HttpServer reg = server("/v2/", ex -> {
            if (basic("alice", password.get()).equals(ex.getRequestHeaders().getFirst("Authorization"))) {
                send(ex, 200, BLOB);
            } else {
                if (ex.getRequestHeaders().containsKey("Authorization")) refused.incrementAndGet();
                ex.getResponseHeaders().add("WWW-Authenticate", "Basic realm=\"test\"");
                send(ex, 401, new byte[0]);
            }
        });
        String host = host(reg);
        DockerConfig cfg = configWith(host, "alice", "pw1");
        AtomicInteger lookups = new AtomicInteger();
        RegistryClient client = new RegistryClient(host, true, h -> {
            lookups.incrementAndGet();
            return cfg.credentials(h);
        }, Duration.ofSeconds(10));
        assertArrayEquals(BLOB, client.blob("p/q", DIGEST));
        assertArrayEquals(BLOB, client.blob("p/q", DIGEST));
        assertEquals(1, lookups.get(), "credentials are read once while they work");

        password.set("pw2"); // the registry's password rotates; a moment later so does the config
        configWith(host, "alice", "pw2");
        assertArrayEquals(BLOB, client.blob("p/q", DIGEST), "the client read the new password after the refusal");
        assertEquals(2, lookups.get());
        assertTrue(refused.get() >= 1);

        password.set("pw3"); // and now the config lags behind: the refusal is an error that keeps the secret out
        RegistryException e = assertThrows(RegistryException.class, () -> client.blob("p/q", DIGEST));
        assertEquals(401, e.status());
        assertTrue(e.getMessage().contains("user alice"), e.getMessage());
        assertFalse(e.getMessage().contains("pw2") || e.getMessage().contains(basic("alice", "pw2").substring(6)), e.getMessage());
        assertEquals(3, lookups.get(), "one more read per refusal, not a loop");
    }

    @Test
    void aTokenRealmThatRefusesTheOldPasswordGetsTheNewOne() throws Exception {
        AtomicReference<String> password = new AtomicReference<>("pw1");
        AtomicInteger issued = new AtomicInteger();
        HttpServer realm = server("/token", ex -> {
            if (basic("alice", password.get()).equals(ex.getRequestHeaders().getFirst("Authorization"))) {
                send(ex, 200, ("{\"token\":\"T" + issued.incrementAndGet() + "-" + password.get() + "\"}").getBytes());
            } else {
                send(ex, 401, "bad credentials".getBytes());
            }
        });
        HttpServer reg = server("/v2/", ex -> {
            // tokens of the current password only: a rotation revokes the old ones
            if (("Bearer T" + issued.get() + "-" + password.get()).equals(ex.getRequestHeaders().getFirst("Authorization"))) {
                send(ex, 200, BLOB);
            } else {
                ex.getResponseHeaders().add("WWW-Authenticate", "Bearer realm=\"http://" + host(realm) + "/token\",service=\"svc\"");
                send(ex, 401, new byte[0]);
            }
        });
        String host = host(reg);
        DockerConfig cfg = configWith(host, "alice", "pw1");
        RegistryClient client = new RegistryClient(host, true, cfg, Duration.ofSeconds(10));
        assertArrayEquals(BLOB, client.blob("p/q", DIGEST));
        password.set("pw2");
        configWith(host, "alice", "pw2");
        assertArrayEquals(BLOB, client.blob("p/q", DIGEST));
        assertEquals(2, issued.get());
    }

    @Test
    void anIdentityTokenIsTradedForAnAccessTokenByAnOAuthPost() throws Exception {
        List<String> posts = new CopyOnWriteArrayList<>();
        HttpServer realm = server("/token", ex -> {
            String form = new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
            boolean ok = ex.getRequestMethod().equals("POST") && form.contains("grant_type=refresh_token") && form.contains("refresh_token=R%2Bfresh")
                    && form.contains("service=svc") && form.contains("scope=repository%3Ap%2Fq%3Apull")
                    && ex.getRequestHeaders().getFirst("Content-Type").startsWith("application/x-www-form-urlencoded");
            posts.add(ex.getRequestMethod() + " " + form);
            send(ex, ok ? 200 : 400, ok ? "{\"access_token\":\"ACCESS\",\"expires_in\":300}".getBytes() : "bad request".getBytes());
        });
        HttpServer reg = server("/v2/", ex -> {
            if ("Bearer ACCESS".equals(ex.getRequestHeaders().getFirst("Authorization"))) {
                send(ex, 200, BLOB);
            } else {
                ex.getResponseHeaders().add("WWW-Authenticate", "Bearer realm=\"http://" + host(realm) + "/token\",service=\"svc\",scope=\"repository:p/q:pull\"");
                send(ex, 401, new byte[0]);
            }
        });
        Path cfg = Files.writeString(dir.resolve("config.json"), "{\"auths\": {\"" + host(reg) + "\": {\"identitytoken\": \"R+fresh\"}}}");
        RegistryClient client = new RegistryClient(host(reg), true, new DockerConfig(cfg, ""), Duration.ofSeconds(10));
        assertArrayEquals(BLOB, client.blob("p/q", DIGEST), String.join("\n", posts));
        assertEquals(1, posts.size(), String.join("\n", posts));
    }

    @Test
    void aRedirectToAnotherHostCarriesNoCredentials() throws Exception {
        List<String> cdnAuthorizations = new CopyOnWriteArrayList<>();
        HttpServer cdn = server("/blobs/", ex -> {
            cdnAuthorizations.add(String.valueOf(ex.getRequestHeaders().getFirst("Authorization")));
            send(ex, 200, BLOB);
        });
        HttpServer reg = server("/v2/", ex -> {
            if (!basic("alice", "pw").equals(ex.getRequestHeaders().getFirst("Authorization"))) {
                ex.getResponseHeaders().add("WWW-Authenticate", "Basic realm=\"test\"");
                send(ex, 401, new byte[0]);
            } else {
                // "localhost", not 127.0.0.1: another host name, as a CDN's is
                ex.getResponseHeaders().add("Location", "http://localhost:" + cdn.getAddress().getPort() + "/blobs/x?sig=1");
                send(ex, 307, new byte[0]);
            }
        });
        RegistryClient client = new RegistryClient(host(reg), true, configWith(host(reg), "alice", "pw"), Duration.ofSeconds(10));
        assertArrayEquals(BLOB, client.blob("p/q", DIGEST));
        assertArrayEquals(new byte[] {BLOB[3], BLOB[4]}, client.blobRange("p/q", DIGEST, 3, 2));
        assertEquals(List.of("null", "null"), cdnAuthorizations, "the CDN got no Authorization header");
    }

    @Test
    void noCredentialsAtAllSaysToLogIn() throws Exception {
        HttpServer reg = server("/v2/", ex -> {
            ex.getResponseHeaders().add("WWW-Authenticate", "Basic realm=\"test\"");
            send(ex, 401, new byte[0]);
        });
        RegistryClient client = new RegistryClient(host(reg), true, Optional.empty(), Duration.ofSeconds(10));
        RegistryException e = assertThrows(RegistryException.class, () -> client.blob("p/q", DIGEST));
        assertTrue(e.getMessage().contains("docker login"), e.getMessage());
    }
}
