package org.dedupsnapshotter.itest;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A Docker-Hub-like token service for docker-registry 2.8's `auth.token`: a JDK HttpServer on loopback answering
 * the realm /token with JWTs signed by an RSA key whose self-signed certificate (made with openssl) is the registry's
 * rootcertbundle; the header carries the certificate in `x5c`, which the registry checks against that bundle. It
 * grants
 * <ul>
 * <li>GET with Basic user:password (docker's and our RegistryClient's way with a password);</li>
 * <li>POST grant_type=password (containerd with a password) and grant_type=refresh_token (an identity token,
 * as docker, containerd and our RegistryClient send one);</li>
 * <li>an anonymous GET: pull of the public repositories only.</li>
 * </ul>
 * Refresh tokens can be revoked, and the lifetime of the tokens it issues shortened, so that a client's cached token
 * dies soon and it must come back with its refresh token.
 */
final class TokenService implements AutoCloseable {
    static final String ISSUER = "itest-token-service", SERVICE = "itest-registry";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final HttpServer server;
    private final PrivateKey key;
    private final String certBase64;
    final Path certFile;
    private final Map<String, String> passwords = new ConcurrentHashMap<>();
    private final Set<String> refreshTokens = ConcurrentHashMap.newKeySet();
    private final Set<String> publicRepos = ConcurrentHashMap.newKeySet();
    private volatile Duration lifetime = Duration.ofMinutes(5);
    /**
     * What was asked, one line per request, with the outcome: "GET basic alice granted [access]", "GET anonymous …",
     * "POST refresh_token by CLIENT_ID refused" (containerd's client_id is containerd-client, ours dedup-snapshotter).
     */
    final List<String> requests = new CopyOnWriteArrayList<>();

    TokenService(Path dir) throws Exception {
        Path keyFile = dir.resolve("token-key.pem");
        certFile = dir.resolve("token-cert.pem");
        Proc.run(Duration.ofMinutes(1), List.of("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyFile.toString(),
                "-out", certFile.toString(), "-days", "2", "-subj", "/CN=" + ISSUER)).orThrow("openssl req (token signing certificate)");
        key = KeyFactory.getInstance("RSA").generatePrivate(new PKCS8EncodedKeySpec(pem(Files.readString(keyFile), "PRIVATE KEY")));
        X509Certificate cert;
        try (InputStream in = Files.newInputStream(certFile)) {
            cert = (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
        }
        certBase64 = Base64.getEncoder().encodeToString(cert.getEncoded());
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/token", this::handle);
        server.start();
    }

    String realm() { return "http://127.0.0.1:" + server.getAddress().getPort() + "/token"; }

    void user(String name, String password) { passwords.put(name, password); }

    void grantRefreshToken(String token) { refreshTokens.add(token); }

    void revokeRefreshToken(String token) { refreshTokens.remove(token); }

    void publicRepository(String repo) { publicRepos.add(repo); }

    /** Tokens issued from now on live this long (the registry adds a minute of leeway for clock skew, taken off here). */
    void tokenLifetime(Duration d) { lifetime = d; }

    /** Requests whose line holds all these parts. */
    long count(String... parts) { return requests.stream().filter(r -> List.of(parts).stream().allMatch(r::contains)).count(); }

    private void handle(HttpExchange ex) throws IOException {
        try (ex) {
            Map<String, List<String>> params = new ConcurrentHashMap<>();
            parseForm(ex.getRequestURI().getRawQuery(), params);
            String subject;
            String how;
            if (ex.getRequestMethod().equals("POST")) {
                parseForm(new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8), params);
                String grant = first(params, "grant_type");
                how = "POST " + grant + " by " + first(params, "client_id");
                if ("refresh_token".equals(grant)) subject = refreshTokens.contains(first(params, "refresh_token")) ? "refreshed" : null;
                else if ("password".equals(grant)) subject = password(first(params, "username"), first(params, "password"));
                else subject = null;
            } else {
                String auth = ex.getRequestHeaders().getFirst("Authorization");
                if (auth != null && auth.regionMatches(true, 0, "Basic ", 0, 6)) {
                    String[] up = new String(Base64.getDecoder().decode(auth.substring(6).strip()), StandardCharsets.UTF_8).split(":", 2);
                    how = "GET basic " + up[0];
                    subject = up.length == 2 ? password(up[0], up[1]) : null;
                } else {
                    how = "GET anonymous";
                    subject = "";
                }
            }
            if (subject == null) {
                requests.add(how + " refused");
                send(ex, 401, "{\"details\":\"invalid credentials\"}");
                return;
            }
            ArrayNode access = JSON.createArrayNode();
            for (String scopes : params.getOrDefault("scope", List.of()))
                for (String scope : scopes.split(" ")) {
                    String[] s = scope.split(":");
                    if (s.length != 3 || !s[0].equals("repository")) continue;
                    List<String> actions = new ArrayList<>();
                    for (String a : s[2].split(",")) if (!subject.isEmpty() || (a.equals("pull") && publicRepos.contains(s[1]))) actions.add(a);
                    ObjectNode r = access.addObject();
                    r.put("type", "repository");
                    r.put("name", s[1]);
                    actions.forEach(r.putArray("actions")::add);
                }
            requests.add(how + " granted " + access);
            String jwt = jwt(subject.isEmpty() ? "anonymous" : subject, access);
            ObjectNode body = JSON.createObjectNode();
            body.put("token", jwt);
            body.put("access_token", jwt);
            body.put("expires_in", Math.max(1, lifetime.toSeconds()));
            send(ex, 200, body.toString());
        } catch (Exception e) {
            requests.add("error " + e);
            throw e instanceof IOException io ? io : new IOException(e);
        }
    }

    private String password(String user, String password) {
        return user != null && password != null && password.equals(passwords.get(user)) ? user : null;
    }

    private String jwt(String subject, ArrayNode access) throws Exception {
        long now = System.currentTimeMillis() / 1000;
        ObjectNode header = JSON.createObjectNode();
        header.put("typ", "JWT");
        header.put("alg", "RS256");
        header.putArray("x5c").add(certBase64);
        ObjectNode claims = JSON.createObjectNode();
        claims.put("iss", ISSUER);
        claims.put("sub", subject);
        claims.put("aud", SERVICE);
        claims.put("exp", now + lifetime.toSeconds() - 60); // the registry accepts a token 60 s after its exp
        claims.put("nbf", now - 10);
        claims.put("iat", now);
        claims.put("jti", UUID.randomUUID().toString());
        claims.set("access", access);
        Base64.Encoder b64 = Base64.getUrlEncoder().withoutPadding();
        String signed = b64.encodeToString(header.toString().getBytes(StandardCharsets.UTF_8)) + "." + b64.encodeToString(claims.toString().getBytes(StandardCharsets.UTF_8));
        Signature sig = Signature.getInstance("SHA256withRSA");
        sig.initSign(key);
        sig.update(signed.getBytes(StandardCharsets.US_ASCII));
        return signed + "." + b64.encodeToString(sig.sign());
    }

    private static void parseForm(String raw, Map<String, List<String>> into) {
        if (raw == null || raw.isEmpty()) return;
        for (String kv : raw.split("&")) {
            int eq = kv.indexOf('=');
            String k = URLDecoder.decode(eq < 0 ? kv : kv.substring(0, eq), StandardCharsets.UTF_8);
            String v = eq < 0 ? "" : URLDecoder.decode(kv.substring(eq + 1), StandardCharsets.UTF_8);
            into.computeIfAbsent(k, x -> new CopyOnWriteArrayList<>()).add(v);
        }
    }

    private static String first(Map<String, List<String>> params, String key) {
        List<String> v = params.get(key);
        return v == null || v.isEmpty() ? null : v.getFirst();
    }

    private static void send(HttpExchange ex, int status, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(status, b.length);
        ex.getResponseBody().write(b);
    }

    private static byte[] pem(String text, String type) {
        String body = text.substring(text.indexOf("-----BEGIN " + type + "-----") + 16 + type.length(), text.indexOf("-----END " + type + "-----"));
        return Base64.getMimeDecoder().decode(body);
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
