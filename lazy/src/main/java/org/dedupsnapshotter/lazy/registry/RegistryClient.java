package org.dedupsnapshotter.lazy.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A client of the OCI distribution API (v2): manifests, blobs, byte ranges of blobs, and chunked uploads, over HTTP
 * or HTTPS. Authentication follows the registry's challenge: a Bearer challenge gets a token from the named realm
 * (with the docker config's credentials when there are any), a Basic challenge gets the credentials. Everything
 * fetched by digest is verified. Redirects (blob storage elsewhere) are followed without our credentials.
 */
public final class RegistryClient {
    public static final String OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
    public static final String OCI_INDEX = "application/vnd.oci.image.index.v1+json";
    public static final String DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
    public static final String DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
    private static final Pattern CHALLENGE_PARAM = Pattern.compile("(\\w+)=\"([^\"]*)\"");
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String host;
    private final String scheme;
    private final Optional<Credentials> credentials;
    private final Duration timeout;
    private final HttpClient http;
    /** Bearer tokens by scope ("repository:NAME:pull" or ":pull,push"). */
    private final Map<String, String> tokens = new ConcurrentHashMap<>();

    public RegistryClient(String host, boolean plainHttp, Optional<Credentials> credentials, Duration timeout) {
        this.host = host;
        this.scheme = plainHttp ? "http" : "https";
        this.credentials = credentials;
        this.timeout = timeout;
        this.http = HttpClient.newBuilder().connectTimeout(timeout).followRedirects(HttpClient.Redirect.NEVER).build();
    }

    /** A client for ref's registry with the credentials `docker login` stored for it. */
    public static RegistryClient forRef(ImageRef ref, boolean plainHttp) throws IOException {
        return new RegistryClient(ref.host(), plainHttp, Credentials.forHost(Credentials.defaultConfig(), ref.host()), Duration.ofSeconds(30));
    }

    public record Fetched(byte[] body, String mediaType, String digest) {}

    /** A manifest or index by tag or digest. */
    public Fetched manifest(String repo, String reference) throws IOException {
        HttpResponse<byte[]> r = send(repo, false, () -> request(path(repo, "manifests/" + reference))
                .header("Accept", String.join(", ", OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)).GET());
        expect(r, 200, "manifest " + repo + ":" + reference);
        String digest = sha256(r.body());
        if (reference.startsWith("sha256:") && !reference.equals(digest))
            throw new IOException("manifest " + repo + "@" + reference + ": the registry sent content with digest " + digest);
        return new Fetched(r.body(), r.headers().firstValue("Content-Type").orElse(""), digest);
    }

    /** A whole blob, verified against its digest. */
    public byte[] blob(String repo, String digest) throws IOException {
        HttpResponse<byte[]> r = followRedirects(send(repo, false, () -> request(path(repo, "blobs/" + digest)).GET()));
        expect(r, 200, "blob " + digest);
        String got = sha256(r.body());
        if (!got.equals(digest)) throw new IOException("blob " + repo + "@" + digest + ": the registry sent content with digest " + got);
        return r.body();
    }

    /** length bytes of a blob from offset (an HTTP Range request; a registry that ignores Range costs a whole download). */
    public byte[] blobRange(String repo, String digest, long offset, int length) throws IOException {
        if (length == 0) return new byte[0];
        String range = "bytes=" + offset + "-" + (offset + length - 1);
        HttpResponse<byte[]> r = followRedirects(send(repo, false, () -> request(path(repo, "blobs/" + digest)).header("Range", range).GET()));
        if (r.statusCode() == 206 && r.body().length == length) return r.body();
        if (r.statusCode() == 200 && r.body().length >= offset + length)
            return java.util.Arrays.copyOfRange(r.body(), (int) offset, (int) offset + length);
        throw error(r, "range " + range + " of blob " + digest);
    }

    public boolean hasBlob(String repo, String digest) throws IOException {
        HttpResponse<byte[]> r = followRedirects(send(repo, false, () -> request(path(repo, "blobs/" + digest)).method("HEAD", HttpRequest.BodyPublishers.noBody())));
        if (r.statusCode() == 200) return true;
        if (r.statusCode() == 404) return false;
        throw error(r, "HEAD blob " + digest);
    }

    /** Uploads a blob unless the registry has it: POST, then PATCH in pieces of chunkSize bytes, then PUT with the digest. */
    public void pushBlob(String repo, byte[] data, int chunkSize) throws IOException {
        String digest = sha256(data);
        if (hasBlob(repo, digest)) return;
        HttpResponse<byte[]> start = send(repo, true, () -> request(path(repo, "blobs/uploads/")).POST(HttpRequest.BodyPublishers.noBody()));
        expect(start, 202, "upload start of " + digest);
        URI location = location(start);
        for (int off = 0; off < data.length; off += chunkSize) {
            int end = Math.min(data.length, off + chunkSize);
            URI at = location;
            int from = off;
            HttpResponse<byte[]> r = send(repo, true, () -> HttpRequest.newBuilder(at).timeout(timeout)
                    .header("Content-Type", "application/octet-stream").header("Content-Range", from + "-" + (end - 1))
                    .method("PATCH", HttpRequest.BodyPublishers.ofByteArray(data, from, end - from)));
            expect(r, 202, "upload of bytes " + from + "-" + (end - 1) + " of " + digest);
            location = location(r);
        }
        URI done = withQuery(location, "digest=" + URLEncoder.encode(digest, StandardCharsets.UTF_8));
        HttpResponse<byte[]> r = send(repo, true, () -> HttpRequest.newBuilder(done).timeout(timeout)
                .header("Content-Type", "application/octet-stream").PUT(HttpRequest.BodyPublishers.noBody()));
        expect(r, 201, "upload end of " + digest);
    }

    /** Puts a manifest under tag (or its digest); returns its digest. */
    public String pushManifest(String repo, String tag, String mediaType, byte[] body) throws IOException {
        String digest = sha256(body);
        HttpResponse<byte[]> r = send(repo, true, () -> request(path(repo, "manifests/" + (tag == null ? digest : tag)))
                .header("Content-Type", mediaType).PUT(HttpRequest.BodyPublishers.ofByteArray(body)));
        expect(r, 201, "manifest " + repo + ":" + tag);
        return digest;
    }

    // ---------------------------------------------------------------- plumbing

    private URI path(String repo, String rest) {
        return URI.create(scheme + "://" + host + "/v2/" + repo + "/" + rest);
    }

    private HttpRequest.Builder request(URI uri) {
        return HttpRequest.newBuilder(uri).timeout(timeout);
    }

    /** Sends, answering one authentication challenge if the registry makes one. */
    private HttpResponse<byte[]> send(String repo, boolean push, Supplier<HttpRequest.Builder> make) throws IOException {
        String scope = "repository:" + repo + ":" + (push ? "pull,push" : "pull");
        HttpResponse<byte[]> r = exchange(authorize(make.get(), scope).build());
        if (r.statusCode() != 401) return r;
        String challenge = r.headers().firstValue("WWW-Authenticate").orElse("");
        if (challenge.regionMatches(true, 0, "Bearer", 0, 6)) {
            tokens.put(scope, token(challenge, scope));
        } else if (challenge.regionMatches(true, 0, "Basic", 0, 5)) {
            if (credentials.isEmpty()) throw new RegistryException(401, host + " wants a user name and password: run `docker login " + host + "`");
            tokens.put(scope, credentials.get().basic());
        } else {
            throw error(r, "authentication");
        }
        r = exchange(authorize(make.get(), scope).build());
        if (r.statusCode() == 401) throw error(r, "authentication (with " + (credentials.isPresent() ? "the docker config's credentials" : "no credentials") + ")");
        return r;
    }

    private HttpRequest.Builder authorize(HttpRequest.Builder b, String scope) {
        String t = tokens.get(scope);
        if (t != null) b.header("Authorization", t.startsWith("Basic ") ? t : "Bearer " + t);
        return b;
    }

    /** A Bearer token from the challenge's realm for scope. */
    private String token(String challenge, String scope) throws IOException {
        Map<String, String> p = new LinkedHashMap<>();
        Matcher m = CHALLENGE_PARAM.matcher(challenge);
        while (m.find()) p.put(m.group(1), m.group(2));
        String realm = p.get("realm");
        if (realm == null) throw new RegistryException(401, host + ": Bearer challenge without a realm: " + challenge);
        StringBuilder q = new StringBuilder();
        if (p.containsKey("service")) q.append("service=").append(URLEncoder.encode(p.get("service"), StandardCharsets.UTF_8)).append('&');
        q.append("scope=").append(URLEncoder.encode(p.getOrDefault("scope", scope), StandardCharsets.UTF_8));
        HttpRequest.Builder b = HttpRequest.newBuilder(withQuery(URI.create(realm), q.toString())).timeout(timeout).GET();
        credentials.ifPresent(c -> b.header("Authorization", c.basic()));
        HttpResponse<byte[]> r = exchange(b.build());
        if (r.statusCode() != 200) throw error(r, "token from " + realm);
        JsonNode n = JSON.readTree(r.body());
        String t = n.hasNonNull("token") ? n.get("token").asText() : n.path("access_token").asText("");
        if (t.isEmpty()) throw new RegistryException(r.statusCode(), "token from " + realm + ": no token in the answer");
        return t;
    }

    private HttpResponse<byte[]> exchange(HttpRequest req) throws IOException {
        try {
            return http.send(req, HttpResponse.BodyHandlers.ofByteArray());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted: " + req.method() + " " + req.uri(), e);
        } catch (IOException e) {
            throw new IOException(req.method() + " " + req.uri() + ": " + (e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage()), e);
        }
    }

    /** Blob storage may live elsewhere: follow up to 5 redirects, without our Authorization header. */
    private HttpResponse<byte[]> followRedirects(HttpResponse<byte[]> r) throws IOException {
        for (int i = 0; i < 5 && r.statusCode() / 100 == 3 && r.headers().firstValue("Location").isPresent(); i++) {
            HttpRequest prev = r.request();
            HttpRequest.Builder b = HttpRequest.newBuilder(prev.uri().resolve(r.headers().firstValue("Location").get())).timeout(timeout)
                    .method(prev.method(), HttpRequest.BodyPublishers.noBody());
            prev.headers().firstValue("Range").ifPresent(v -> b.header("Range", v));
            r = exchange(b.build());
        }
        return r;
    }

    private URI location(HttpResponse<byte[]> r) throws IOException {
        String loc = r.headers().firstValue("Location").orElseThrow(() -> new IOException(r.request().uri() + ": no Location in the registry's answer"));
        return r.request().uri().resolve(loc);
    }

    private static URI withQuery(URI u, String q) {
        String s = u.toString();
        return URI.create(s + (s.contains("?") ? "&" : "?") + q);
    }

    private static void expect(HttpResponse<byte[]> r, int status, String what) throws RegistryException {
        if (r.statusCode() != status) throw error(r, what);
    }

    private static RegistryException error(HttpResponse<byte[]> r, String what) {
        String body = new String(r.body() == null ? new byte[0] : r.body(), StandardCharsets.UTF_8).strip();
        if (body.length() > 500) body = body.substring(0, 500) + "…";
        return new RegistryException(r.statusCode(), what + ": " + r.request().method() + " " + r.request().uri() + " answered " + r.statusCode()
                + (body.isEmpty() ? "" : ": " + body));
    }

    public static String sha256(byte[] data) {
        try {
            return "sha256:" + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
