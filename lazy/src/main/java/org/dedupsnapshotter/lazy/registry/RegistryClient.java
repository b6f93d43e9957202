package org.dedupsnapshotter.lazy.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.dedupsnapshotter.lazy.registry.hosts.RegistryEndpoint;

import java.io.EOFException;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.LongConsumer;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.SSLException;

/**
 * A client of the OCI distribution API (v2): manifests, blobs, byte ranges of blobs, and chunked uploads, over HTTP
 * or HTTPS. Authentication follows the registry's challenge: a Bearer challenge gets a token from the named realm
 * (with the credentials when there are any: a GET with Basic auth, or for an identity token an OAuth2 refresh-token
 * POST, as docker and containerd do), a Basic challenge gets the credentials. Credentials are asked of the source
 * once and kept; a 401 that persists after answering the challenge makes the client forget its tokens and
 * credentials, ask the source again and retry once (a rotated password works without a restart). Everything
 * fetched by digest is verified. Redirects (blob storage elsewhere) are followed without our credentials; where a
 * blob's Range GET was redirected is remembered ({@link RedirectCache}), so its later ranges cost one request each.
 * <p>
 * Reads are retried ({@link RetryPolicy}): a 5xx, a 429 (after its Retry-After) or a failed link is asked again
 * until the caller's deadline, or, without one, for the client's timeout from the first attempt (then a host that
 * refuses connections and never answered is a wrong address, failed at once). Every request has a
 * deadline on its body as well as on its headers: a body that stops arriving fails (and is retried) instead of
 * hanging. Uploads are sent once.
 */
public final class RegistryClient {
    public static final String OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
    public static final String OCI_INDEX = "application/vnd.oci.image.index.v1+json";
    public static final String DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
    public static final String DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
    private static final Pattern CHALLENGE_PARAM = Pattern.compile("(\\w+)=\"([^\"]*)\"");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpResponse.BodyHandler<byte[]> BYTES = HttpResponse.BodyHandlers.ofByteArray();
    private static final HttpResponse.BodyHandler<InputStream> STREAM = HttpResponse.BodyHandlers.ofInputStream();

    private final String host;
    /** scheme://HOST[:PORT]/PATH of the API (…/v2 unless hosts.toml's override_path), without a trailing slash. */
    private final String base;
    private final Map<String, List<String>> headers;
    private final CredentialSource source;
    /** The source's answer, kept until the registry refuses it; null: not asked yet (or forgotten). */
    private volatile Optional<Credentials> credentials;
    private final Duration timeout;
    /** The endpoint's HTTP client (its hosts.toml TLS), and the one for other hosts (token realm, CDN). */
    private final HttpClient http, elsewhere;
    private final RetryPolicy retry = RetryPolicy.STANDARD;
    /** How long calls without a deadline of the caller's are retried: the timeout, shorter for a mirror. */
    private final Duration retryWindow;
    /** Whether the registry ever answered this client (see {@link #retried}). */
    private volatile boolean answered;
    /** Bearer tokens by scope ("repository:NAME:pull" or ":pull,push"). */
    private final Map<String, String> tokens = new ConcurrentHashMap<>();
    /** Where blobs' GETs were redirected (a CDN), reused by their later Range requests. */
    private final RedirectCache redirects = new RedirectCache();

    /** A client with fixed credentials (none: Optional.empty()). */
    public RegistryClient(String host, boolean plainHttp, Optional<Credentials> credentials, Duration timeout) {
        this(host, plainHttp, h -> credentials, timeout);
    }

    /** A client that asks source for its host's credentials when a registry first wants them, and again after a refusal. */
    public RegistryClient(String host, boolean plainHttp, CredentialSource source, Duration timeout) {
        this(new RegistryEndpoint(URI.create((plainHttp ? "http://" : "https://") + host + "/v2"), RegistryEndpoint.ALL, RegistryEndpoint.Tls.NONE, Map.of(), false),
                source, timeout, timeout, plainPair(timeout));
    }

    /**
     * A client of one endpoint (hosts.toml's server or a mirror): its base URL and headers, over the endpoint's
     * shared HTTP clients ({@link Transports}: its TLS for the endpoint, trust alone for other hosts); credentials
     * asked of source for the endpoint's own host only. Calls without a deadline of the caller's are retried for
     * retryWindow.
     */
    public RegistryClient(RegistryEndpoint endpoint, CredentialSource source, Duration timeout, Duration retryWindow, Transports.Pair transport) {
        this.host = endpoint.host();
        this.base = endpoint.base().toString();
        this.headers = endpoint.headers();
        this.source = source;
        this.timeout = timeout;
        this.retryWindow = retryWindow;
        this.http = transport.own();
        this.elsewhere = transport.elsewhere();
    }

    /** HTTP clients of its own (the JVM's TLS), for a client made without {@link Transports}. */
    private static Transports.Pair plainPair(Duration timeout) {
        HttpClient plain = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(timeout).followRedirects(HttpClient.Redirect.NEVER).build();
        return new Transports.Pair(plain, plain);
    }

    /** HOST[:PORT] of the endpoint this client talks to. */
    public String host() { return host; }

    /** A client for ref's registry with the credentials the docker config gives it (auths or a credential helper). */
    public static RegistryClient forRef(ImageRef ref, boolean plainHttp) throws IOException {
        return forRef(ref, plainHttp, Duration.ofSeconds(30));
    }

    /** The same with a request timeout of one's own (uploads of large pieces over slow links need more). */
    public static RegistryClient forRef(ImageRef ref, boolean plainHttp, Duration timeout) throws IOException {
        return new RegistryClient(ref.host(), plainHttp, DockerConfig.fromEnvironment(), timeout);
    }

    public record Fetched(byte[] body, String mediaType, String digest) {}

    /** A manifest or index by tag or digest. */
    public Fetched manifest(String repo, String reference) throws IOException {
        HttpResponse<byte[]> r = retried(n -> {
            HttpResponse<byte[]> a = send(repo, false, () -> request(path(repo, "manifests/" + reference))
                    .header("Accept", String.join(", ", OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)).GET(), BYTES, defaultDeadline());
            expect(a, 200, "manifest " + repo + ":" + reference);
            return a;
        });
        String digest = sha256(r.body());
        if (reference.startsWith("sha256:") && !reference.equals(digest))
            throw new IOException("manifest " + repo + "@" + reference + ": the registry sent content with digest " + digest);
        return new Fetched(r.body(), r.headers().firstValue("Content-Type").orElse(""), digest);
    }

    /** A whole blob, verified against its digest. */
    public byte[] blob(String repo, String digest) throws IOException {
        HttpResponse<byte[]> r = retried(n -> {
            long deadline = defaultDeadline();
            HttpResponse<byte[]> a = followRedirects(send(repo, false, () -> request(path(repo, "blobs/" + digest)).GET(), BYTES, deadline), BYTES, deadline);
            expect(a, 200, "blob " + digest);
            return a;
        });
        String got = sha256(r.body());
        if (!got.equals(digest)) throw new IOException("blob " + repo + "@" + digest + ": the registry sent content with digest " + got);
        return r.body();
    }

    /** A whole blob streamed into file (created or replaced), verified against its digest; returns its size. */
    public long blobToFile(String repo, String digest, Path file) throws IOException {
        return blobToFile(repo, digest, file, n -> {});
    }

    /** The same, telling onBytes of the bytes written as they arrive (a retry from the start takes back what it had told). */
    public long blobToFile(String repo, String digest, Path file, LongConsumer onBytes) throws IOException {
        MessageDigest md = sha256Digest();
        long[] told = {0};
        long size = retried(attempt -> { // each attempt writes the file from its start
            md.reset();
            onBytes.accept(-told[0]);
            told[0] = 0;
            long n = 0;
            try (InputStream in = openBlob(repo, digest, Long.MAX_VALUE); OutputStream out = Files.newOutputStream(file)) {
                byte[] buf = new byte[1 << 16];
                for (int k; (k = in.read(buf)) > 0; n += k) {
                    md.update(buf, 0, k);
                    out.write(buf, 0, k);
                    onBytes.accept(k);
                    told[0] += k;
                }
            }
            return n;
        });
        String got = "sha256:" + HexFormat.of().formatHex(md.digest());
        if (!got.equals(digest)) {
            Files.deleteIfExists(file);
            throw new IOException("blob " + repo + "@" + digest + ": the registry sent content with digest " + got);
        }
        return size;
    }

    /**
     * A blob's body, watched for stalls (retried until it answers 200; the body itself is not retried here). Its
     * deadline is the client's timeout of stall, then deadline (System.nanoTime; Long.MAX_VALUE: none) at the latest.
     */
    private InputStream openBlob(String repo, String digest, long bodyDeadline) throws IOException {
        long deadline = defaultDeadline();
        HttpResponse<InputStream> r = followRedirects(send(repo, false, () -> request(path(repo, "blobs/" + digest)).GET(), STREAM, deadline), STREAM, deadline);
        expect(r, 200, "blob " + digest);
        return watched(r, "blob " + digest, bodyDeadline);
    }

    /**
     * A whole blob as a stream, for copying elsewhere without a file in between; it is verified as it ends: the read
     * that reaches the end of content with another digest (or of fewer bytes than size) throws instead of answering -1.
     */
    public InputStream blobStream(String repo, String digest, long size) throws IOException {
        InputStream body = retried(n -> openBlob(repo, digest, Long.MAX_VALUE));
        return new VerifyingStream(body, repo + "@" + digest, digest, size);
    }

    /** Passes bytes through, hashing them; at the end, wrong content is an IOException rather than an end of stream. */
    private static final class VerifyingStream extends FilterInputStream {
        private final MessageDigest md = sha256Digest();
        private final String what, digest;
        private final long size;
        private long read;
        private boolean verified;

        VerifyingStream(InputStream in, String what, String digest, long size) {
            super(in);
            this.what = what;
            this.digest = digest;
            this.size = size;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            int n = in.read(b, off, len);
            if (n > 0) {
                md.update(b, off, n);
                read += n;
                if (read > size) throw new IOException("blob " + what + ": the registry sent more than its " + size + " bytes");
            } else if (n < 0 && !verified) {
                String got = "sha256:" + HexFormat.of().formatHex(md.digest());
                if (read != size || !got.equals(digest))
                    throw new IOException("blob " + what + ": the registry sent " + read + " bytes with digest " + got + ", not " + size + " bytes with that digest");
                verified = true; // the end may be read again
            }
            return n;
        }

        @Override
        public long skip(long n) throws IOException {
            throw new IOException("a verified blob stream is read, not skipped");
        }
    }

    /**
     * length bytes of a blob from offset (an HTTP Range request). A registry that ignores Range costs the download of
     * the bytes before the range, never more than length bytes of memory.
     */
    public byte[] blobRange(String repo, String digest, long offset, int length) throws IOException {
        if (length == 0) return new byte[0];
        return retry.call(retryDeadline(), attempt -> { // attempts for the retry window, each with the whole timeout
            long deadline = defaultDeadline();
            try (InputStream in = blobRangeStream(repo, digest, offset, length, deadline)) {
                byte[] out = new byte[length];
                in.readNBytes(out, 0, length); // a short answer throws (RangeStream)
                return out;
            }
        });
    }

    /** The same, retried until deadline (System.nanoTime) at the latest, the body included. */
    public byte[] blobRange(String repo, String digest, long offset, int length, long deadline) throws IOException {
        if (length == 0) return new byte[0];
        return retry.call(deadline, attempt -> {
            try (InputStream in = blobRangeStream(repo, digest, offset, length, deadline)) {
                byte[] out = new byte[length];
                in.readNBytes(out, 0, length); // a short answer throws (RangeStream)
                return out;
            }
        });
    }

    /**
     * length bytes of a blob from offset, as a stream: the caller can use the first bytes while the rest is still on
     * its way. Exactly length bytes, or an IOException.
     */
    public InputStream blobRangeStream(String repo, String digest, long offset, long length) throws IOException {
        return retry.call(retryDeadline(), n -> blobRangeStream(repo, digest, offset, length, defaultDeadline()));
    }

    /**
     * One request for the range, its headers and body both due by deadline (System.nanoTime); not retried (the
     * caller retries what it read: {@link RetryPolicy#retryable} tells which failures are worth it).
     */
    public InputStream blobRangeStream(String repo, String digest, long offset, long length, long deadline) throws IOException {
        if (offset < 0 || length <= 0) throw new IOException("range of blob " + digest + " at " + offset + " of " + length + " bytes: out of range");
        String range = "bytes=" + offset + "-" + (offset + length - 1);
        URI blob = path(repo, "blobs/" + digest);
        HttpResponse<InputStream> r = rangeAnswer(repo, blob, range, offset, deadline);
        if (r.statusCode() == 206) {
            // a partial answer that names another range is not ours: bytes from elsewhere in the blob are wrong bytes
            // (the chunk's digest would catch them); a remembered CDN URL that answers so was already passed over
            if (!isRange(r, offset)) {
                discard(r);
                URI from = r.request().uri();
                if (!from.equals(blob)) redirects.forget(blob, from);
                throw new TransportException("range " + range + " of blob " + digest + ": " + shown(from) + " answered Content-Range \""
                        + r.headers().firstValue("Content-Range").orElse("") + "\"");
            }
            return new RangeStream(rangeBody(r, blob, "range " + range + " of blob " + digest, deadline), length, range + " of blob " + digest);
        }
        if (r.statusCode() == 200) { // a registry that ignores Range: skip to the range (costs the bytes before it), stop after it
            InputStream in = rangeBody(r, blob, "range " + range + " of blob " + digest, deadline);
            try {
                in.skipNBytes(offset);
            } catch (IOException e) {
                in.close();
                String why = "range " + range + " of blob " + digest + " (the registry ignored Range): " + e.getMessage();
                throw e instanceof TransportException || e instanceof EOFException ? new TransportException(why, e) : new IOException(why, e);
            }
            return new RangeStream(in, length, range + " of blob " + digest);
        }
        throw error(r, "range " + range + " of blob " + digest);
    }

    /**
     * The answer to a Range GET of blob: from where the registry last redirected it while that URL lives (no
     * credentials go there), else from the registry, following its redirects and remembering where they led. A
     * remembered URL that answers anything but 200/206 or cannot be reached is forgotten and the blob resolved again
     * through the registry, in this same attempt.
     */
    private HttpResponse<InputStream> rangeAnswer(String repo, URI blob, String range, long offset, long deadline) throws IOException {
        URI cached = redirects.lookup(blob);
        if (cached != null) {
            try {
                HttpResponse<InputStream> r = exchange(HttpRequest.newBuilder(cached).timeout(headersTimeout(deadline)).header("Range", range).GET().build(), STREAM, deadline);
                if ((r.statusCode() == 206 && isRange(r, offset)) || r.statusCode() == 200) return r;
                discard(r); // expired (403 is usual), gone, failing or answering another range: ask the registry where the blob is now
            } catch (InterruptedIOException e) {
                throw e;
            } catch (IOException e) {
                // unreachable: the same, through the registry
            }
            redirects.forget(blob, cached);
        }
        HttpResponse<InputStream> r = followRedirects(send(repo, false, () -> request(blob).header("Range", range).GET(), STREAM, deadline), STREAM, deadline);
        URI landed = r.request().uri();
        if ((r.statusCode() == 206 || r.statusCode() == 200) && !landed.equals(blob)) redirects.remember(blob, landed);
        return r;
    }

    /** Whether a 206 is the range from offset: its Content-Range starts there (or, as some servers send, is absent). */
    private static boolean isRange(HttpResponse<?> r, long offset) {
        String got = r.headers().firstValue("Content-Range").orElse(null);
        return got == null || got.startsWith("bytes " + offset + "-");
    }

    /** A range answer's body, watched; one from a redirect target forgets that target when the body fails. */
    private InputStream rangeBody(HttpResponse<InputStream> r, URI blob, String what, long deadline) {
        InputStream body = watched(r, what, deadline);
        URI from = r.request().uri();
        return from.equals(blob) ? body : redirects.forgettingOnFailure(body, blob, from);
    }

    /** A blob's size in bytes, as the registry's HEAD answer gives it. */
    public long blobSize(String repo, String digest) throws IOException {
        HttpResponse<byte[]> r = retried(n -> {
            long deadline = defaultDeadline();
            HttpResponse<byte[]> a = followRedirects(send(repo, false, () -> request(path(repo, "blobs/" + digest))
                    .method("HEAD", HttpRequest.BodyPublishers.noBody()), BYTES, deadline), BYTES, deadline);
            if (a.statusCode() != 200) throw error(a, "HEAD blob " + digest);
            return a;
        });
        return r.headers().firstValueAsLong("Content-Length").orElseThrow(() -> new IOException("HEAD blob " + digest + " answered no Content-Length"));
    }

    /**
     * At most length bytes of an answer, then end of stream; closing it closes the answer (the rest of a body sent
     * whole is never read: the connection is dropped).
     */
    private static final class RangeStream extends FilterInputStream {
        private final String what;
        private long left;

        RangeStream(InputStream in, long length, String what) {
            super(in);
            this.left = length;
            this.what = what;
        }

        @Override
        public int read() throws IOException {
            if (left <= 0) return -1;
            int b = in.read();
            if (b >= 0) left--; else throw endedEarly();
            return b;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (len == 0) return 0;
            if (left <= 0) return -1;
            int n = in.read(b, off, (int) Math.min(len, left));
            if (n > 0) left -= n; else if (n < 0) throw endedEarly();
            return n;
        }

        /** The answer ended before the range did: the link was cut (worth another attempt). */
        private TransportException endedEarly() {
            return new TransportException("range " + what + ": the registry's answer ended " + left + " bytes early");
        }

        @Override
        public long skip(long n) throws IOException {
            long k = in.skip(Math.min(Math.max(n, 0), left));
            left -= k;
            return k;
        }

        @Override
        public int available() throws IOException { return (int) Math.min(in.available(), left); }

        @Override
        public boolean markSupported() { return false; }
    }

    public boolean hasBlob(String repo, String digest) throws IOException {
        return retried(n -> {
            long deadline = defaultDeadline();
            HttpResponse<byte[]> r = followRedirects(send(repo, false, () -> request(path(repo, "blobs/" + digest))
                    .method("HEAD", HttpRequest.BodyPublishers.noBody()), BYTES, deadline), BYTES, deadline);
            if (r.statusCode() == 200) return true;
            if (r.statusCode() == 404) return false;
            throw error(r, "HEAD blob " + digest);
        });
    }

    /** Uploads a blob unless the registry has it: POST, then PATCH in pieces of chunkSize bytes, then PUT with the digest. */
    public void pushBlob(String repo, byte[] data, int chunkSize) throws IOException {
        upload(repo, sha256(data), data.length, chunkSize, n -> {}, (from, len) -> HttpRequest.BodyPublishers.ofByteArray(data, (int) from, len));
    }

    /** Uploads a blob from a file unless the registry has it, one piece of chunkSize bytes in memory at a time. */
    public void pushBlob(String repo, Path file, String digest, int chunkSize) throws IOException {
        pushBlob(repo, file, digest, chunkSize, n -> {});
    }

    /** The same, telling onBytes of each piece the registry took. */
    public void pushBlob(String repo, Path file, String digest, int chunkSize, LongConsumer onBytes) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            upload(repo, digest, ch.size(), chunkSize, onBytes, (from, len) -> {
                ByteBuffer b = ByteBuffer.allocate(len);
                while (b.hasRemaining()) if (ch.read(b, from + b.position()) < 0) throw new IOException(file + " is shorter than " + (from + len) + " bytes");
                return HttpRequest.BodyPublishers.ofByteArray(b.array());
            });
        }
    }

    private interface Pieces {
        HttpRequest.BodyPublisher piece(long from, int len) throws IOException;
    }

    private void upload(String repo, String digest, long size, int chunkSize, LongConsumer onBytes, Pieces pieces) throws IOException {
        if (hasBlob(repo, digest)) return;
        HttpResponse<byte[]> start = send(repo, true, () -> request(path(repo, "blobs/uploads/")).POST(HttpRequest.BodyPublishers.noBody()), BYTES, defaultDeadline());
        expect(start, 202, "upload start of " + digest);
        URI location = location(start);
        for (long off = 0; off < size; off += chunkSize) {
            long end = Math.min(size, off + chunkSize);
            URI at = location;
            long from = off;
            HttpRequest.BodyPublisher body = pieces.piece(from, (int) (end - from));
            HttpResponse<byte[]> r = send(repo, true, () -> HttpRequest.newBuilder(at).timeout(timeout)
                    .header("Content-Type", "application/octet-stream").header("Content-Range", from + "-" + (end - 1))
                    .method("PATCH", body), BYTES, defaultDeadline());
            expect(r, 202, "upload of bytes " + from + "-" + (end - 1) + " of " + digest);
            onBytes.accept(end - from);
            location = location(r);
        }
        URI done = withQuery(location, "digest=" + URLEncoder.encode(digest, StandardCharsets.UTF_8));
        HttpResponse<byte[]> r = send(repo, true, () -> HttpRequest.newBuilder(done).timeout(timeout)
                .header("Content-Type", "application/octet-stream").PUT(HttpRequest.BodyPublishers.noBody()), BYTES, defaultDeadline());
        expect(r, 201, "upload end of " + digest);
    }

    /** Puts a manifest under tag (or its digest); returns its digest. */
    public String pushManifest(String repo, String tag, String mediaType, byte[] body) throws IOException {
        String digest = sha256(body);
        HttpResponse<byte[]> r = send(repo, true, () -> request(path(repo, "manifests/" + (tag == null ? digest : tag)))
                .header("Content-Type", mediaType).PUT(HttpRequest.BodyPublishers.ofByteArray(body)), BYTES, defaultDeadline());
        expect(r, 201, "manifest " + repo + ":" + tag);
        return digest;
    }

    // ---------------------------------------------------------------- plumbing

    private URI path(String repo, String rest) {
        return URI.create(base + "/" + repo + "/" + rest);
    }

    /** A request to this client's endpoint with its hosts.toml headers. */
    private HttpRequest.Builder request(URI uri) {
        HttpRequest.Builder b = HttpRequest.newBuilder(uri).timeout(timeout);
        headers.forEach((name, values) -> values.forEach(v -> b.header(name, v)));
        return b;
    }

    /**
     * attempt retried for the client's timeout from now (calls without a deadline of the caller's: pulls, converts).
     * A host that refuses the connection and never answered this client is taken for a wrong address, not a registry
     * down for a while: that fails at once.
     */
    private <T> T retried(RetryPolicy.Attempt<T> attempt) throws IOException {
        return retry.call(retryDeadline(), n -> {
            try {
                return attempt.run(n);
            } catch (TransportException e) {
                if (!answered && e.getCause() instanceof ConnectException) throw new IOException(e.getMessage(), e);
                throw e;
            }
        });
    }

    /** The deadline of a request made now without one of the caller's: the client's timeout. */
    private long defaultDeadline() { return System.nanoTime() + timeout.toNanos(); }

    /** Until when a call made now without a deadline of the caller's starts new attempts: the retry window (a mirror's is short). */
    private long retryDeadline() { return System.nanoTime() + retryWindow.toNanos(); }

    /** The time left until deadline for one request's headers: the client's timeout at most, 1 ms at least. */
    private Duration headersTimeout(long deadline) {
        long left = deadline - System.nanoTime();
        return Duration.ofNanos(Math.max(1_000_000, Math.min(left, timeout.toNanos())));
    }

    /** A streamed body that fails (retryably) once it stalls for the client's timeout, or at deadline. */
    private InputStream watched(HttpResponse<InputStream> r, String what, long deadline) {
        return new WatchedBody(r.body(), what, Math.min(timeout.toNanos(), stallLimit(deadline)), deadline);
    }

    /**
     * How long a body may send nothing before it is given up: a third of the time left to the deadline (so an attempt
     * on a new connection still fits), the client's timeout at most.
     */
    private long stallLimit(long deadline) {
        if (deadline == Long.MAX_VALUE) return timeout.toNanos();
        return Math.max(100_000_000L, (deadline - System.nanoTime()) / 3);
    }

    /**
     * Sends, answering the registry's authentication challenge. When the registry (or its token realm) still refuses,
     * the credentials may have changed since they were read: forget them and the tokens, read them again, retry once.
     */
    private <T> HttpResponse<T> send(String repo, boolean push, Supplier<HttpRequest.Builder> make, HttpResponse.BodyHandler<T> body, long deadline)
            throws IOException {
        String scope = "repository:" + repo + ":" + (push ? "pull,push" : "pull");
        HttpResponse<T> r = exchange(authorized(make.get().timeout(headersTimeout(deadline)).build(), scope), body, deadline);
        boolean reread = false;
        for (int answers = 0; r.statusCode() == 401; answers++) {
            String challenge = r.headers().firstValue("WWW-Authenticate").orElse("");
            if (!challenge.regionMatches(true, 0, "Bearer", 0, 6) && !challenge.regionMatches(true, 0, "Basic", 0, 5)) throw error(r, "authentication");
            if (answers == 2 || (answers == 1 && reread)) throw error(r, "authentication (with " + describeCredentials() + ")");
            discard(r);
            if (answers == 1) { // refused although answered: the credentials may have changed since they were read
                forgetCredentials(scope);
                reread = true;
            }
            String authorization;
            try {
                authorization = answer(challenge, scope, deadline);
            } catch (RegistryException e) {
                if (reread || (e.status() != 401 && e.status() != 403)) throw e;
                forgetCredentials(scope); // the token realm refused them: the same, read again
                reread = true;
                authorization = answer(challenge, scope, deadline);
            }
            tokens.put(scope, authorization);
            r = exchange(authorized(make.get().timeout(headersTimeout(deadline)).build(), scope), body, deadline);
        }
        return r;
    }

    /** The Authorization a challenge asks for: a Bearer token from its realm, or the credentials for Basic. */
    private String answer(String challenge, String scope, long deadline) throws IOException {
        if (challenge.regionMatches(true, 0, "Bearer", 0, 6)) return token(challenge, scope, deadline);
        Optional<Credentials> c = credentials();
        if (c.isEmpty()) throw new RegistryException(401, host + " wants a user name and password: run `docker login " + host + "`");
        if (c.get().isIdentityToken()) throw new RegistryException(401, host + " wants a user name and password; the docker config has only an identity token for it");
        return c.get().basic();
    }

    private Optional<Credentials> credentials() throws IOException {
        Optional<Credentials> c = credentials;
        if (c == null) credentials = c = source.lookup(host);
        return c;
    }

    /** Tokens and credentials refused by the registry: gone, so the next attempt reads the credentials again. */
    private void forgetCredentials(String scope) {
        tokens.remove(scope);
        credentials = null;
    }

    private String describeCredentials() {
        Optional<Credentials> c = credentials;
        return c == null || c.isEmpty() ? "no credentials" : "the credentials of user " + c.get().user() + ", read again after the first refusal";
    }

    /**
     * req with the Authorization of scope, when it goes to this endpoint's own host: an upload's Location may name
     * any host, and the password (Basic) or token is this host's alone.
     */
    private HttpRequest authorized(HttpRequest req, String scope) {
        String t = tokens.get(scope);
        if (t == null || !ownHost(req.uri())) return req;
        return HttpRequest.newBuilder(req, (name, value) -> true).header("Authorization", t.startsWith("Basic ") ? t : "Bearer " + t).build();
    }

    /** Whether uri is on this endpoint's host (and port). */
    private boolean ownHost(URI uri) {
        URI own = URI.create(base);
        return own.getHost() != null && own.getHost().equalsIgnoreCase(uri.getHost()) && port(own) == port(uri);
    }

    private static int port(URI u) {
        return u.getPort() >= 0 ? u.getPort() : "http".equalsIgnoreCase(u.getScheme()) ? 80 : 443;
    }

    /** uri as messages show it: another host's (a CDN's signed URL) without its query, which may be a credential. */
    private String shown(URI uri) {
        if (ownHost(uri) || uri.getRawQuery() == null) return uri.toString();
        return uri.getScheme() + "://" + uri.getRawAuthority() + uri.getRawPath() + "?…";
    }

    /** A Bearer token from the challenge's realm for scope. */
    private String token(String challenge, String scope, long deadline) throws IOException {
        Map<String, String> p = new LinkedHashMap<>();
        Matcher m = CHALLENGE_PARAM.matcher(challenge);
        while (m.find()) p.put(m.group(1), m.group(2));
        String realm = p.get("realm");
        if (realm == null) throw new RegistryException(401, host + ": Bearer challenge without a realm: " + challenge);
        StringBuilder q = new StringBuilder();
        if (p.containsKey("service")) q.append("service=").append(URLEncoder.encode(p.get("service"), StandardCharsets.UTF_8)).append('&');
        q.append("scope=").append(URLEncoder.encode(p.getOrDefault("scope", scope), StandardCharsets.UTF_8));
        Optional<Credentials> c = credentials();
        HttpRequest.Builder b;
        if (c.isPresent() && c.get().isIdentityToken()) { // OAuth2: trade the refresh token for an access token
            StringBuilder form = new StringBuilder("grant_type=refresh_token&client_id=dedup-snapshotter&refresh_token=")
                    .append(URLEncoder.encode(c.get().secret(), StandardCharsets.UTF_8));
            if (p.containsKey("service")) form.append("&service=").append(URLEncoder.encode(p.get("service"), StandardCharsets.UTF_8));
            form.append("&scope=").append(URLEncoder.encode(p.getOrDefault("scope", scope), StandardCharsets.UTF_8));
            b = HttpRequest.newBuilder(URI.create(realm)).timeout(headersTimeout(deadline)).header("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
                    .POST(HttpRequest.BodyPublishers.ofString(form.toString()));
        } else {
            b = HttpRequest.newBuilder(withQuery(URI.create(realm), q.toString())).timeout(headersTimeout(deadline)).GET();
            if (c.isPresent()) b.header("Authorization", c.get().basic());
        }
        HttpResponse<byte[]> r = exchange(b.build(), BYTES, deadline);
        if (r.statusCode() != 200) throw error(r, "token from " + realm + (c.isPresent() ? " with the credentials of user " + c.get().user() : " (anonymous)"));
        JsonNode n = JSON.readTree(r.body());
        String t = n.hasNonNull("token") ? n.get("token").asText() : n.path("access_token").asText("");
        if (t.isEmpty()) throw new RegistryException(r.statusCode(), "token from " + realm + ": no token in the answer");
        return t;
    }

    /**
     * One request and its answer's headers; a body read whole (byte[]) is due by deadline as well (a stream's body
     * is watched by {@link WatchedBody}). A failed link is a {@link TransportException}; a TLS failure is not (it
     * is a misconfiguration, not worth retrying).
     */
    private <T> HttpResponse<T> exchange(HttpRequest req, HttpResponse.BodyHandler<T> body, long deadline) throws IOException {
        CompletableFuture<HttpResponse<T>> answer = (ownHost(req.uri()) ? http : elsewhere).sendAsync(req, body);
        try {
            long left = Math.max(1_000_000, deadline - System.nanoTime());
            HttpResponse<T> r = answer.get(left, TimeUnit.NANOSECONDS);
            answered = true;
            return r;
        } catch (InterruptedException e) {
            answer.cancel(true);
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted: " + req.method() + " " + shown(req.uri()));
        } catch (TimeoutException e) {
            answer.cancel(true);
            throw new TransportException(req.method() + " " + shown(req.uri()) + ": no whole answer before the deadline", e);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof ConnectException)
                throw new TransportException("cannot reach the registry " + host + ": " + req.method() + " " + shown(req.uri()) + ": connection refused or unreachable", cause);
            if (cause instanceof SSLException)
                throw new IOException("TLS with the registry " + host + " failed (" + tlsHint(cause) + "): " + req.method() + " " + shown(req.uri()) + ": " + cause.getMessage(), cause);
            if (cause instanceof IOException)
                throw new TransportException(req.method() + " " + shown(req.uri()) + ": " + (cause.getMessage() == null ? cause.getClass().getSimpleName() : cause.getMessage()), cause);
            throw new IOException(req.method() + " " + shown(req.uri()) + ": " + cause, cause);
        }
    }

    /** What to do about a failed TLS handshake, as far as its message tells. */
    private String tlsHint(Throwable cause) {
        String m = String.valueOf(cause.getMessage());
        if (m.contains("PKIX") || m.contains("certification path") || m.contains("No subject alternative"))
            return "its certificate is not trusted: name its CA in hosts.toml (ca = \"/path/ca.crt\" in the hosts directory of " + host + "), or set skip_verify = true";
        if (m.contains("bad_certificate") || m.contains("certificate_required"))
            return "it wants a client certificate: name one in hosts.toml (client = [[\"client.cert\", \"client.key\"]])";
        return "is it a plain-HTTP registry?";
    }

    /** Blob storage may live elsewhere: follow up to 5 redirects, without our Authorization header. */
    private <T> HttpResponse<T> followRedirects(HttpResponse<T> r, HttpResponse.BodyHandler<T> body, long deadline) throws IOException {
        for (int i = 0; i < 5 && r.statusCode() / 100 == 3 && r.headers().firstValue("Location").isPresent(); i++) {
            discard(r);
            HttpRequest prev = r.request();
            HttpRequest.Builder b = HttpRequest.newBuilder(prev.uri().resolve(r.headers().firstValue("Location").get())).timeout(headersTimeout(deadline))
                    .method(prev.method(), HttpRequest.BodyPublishers.noBody());
            prev.headers().firstValue("Range").ifPresent(v -> b.header("Range", v));
            r = exchange(b.build(), body, deadline);
        }
        return r;
    }

    private URI location(HttpResponse<?> r) throws IOException {
        String loc = r.headers().firstValue("Location").orElseThrow(() -> new IOException(shown(r.request().uri()) + ": no Location in the registry's answer"));
        return r.request().uri().resolve(loc);
    }

    private static URI withQuery(URI u, String q) {
        String s = u.toString();
        return URI.create(s + (s.contains("?") ? "&" : "?") + q);
    }

    private void expect(HttpResponse<?> r, int status, String what) throws RegistryException {
        if (r.statusCode() != status) throw error(r, what);
    }

    /** A streamed body not wanted (a challenge, a redirect): closed, so its connection is freed. */
    private static void discard(HttpResponse<?> r) {
        if (r.body() instanceof InputStream in) {
            try {
                in.close();
            } catch (IOException ignored) {
                // nothing to free then
            }
        }
    }

    private RegistryException error(HttpResponse<?> r, String what) {
        byte[] raw = new byte[0];
        if (r.body() instanceof byte[] b) raw = b;
        if (r.body() instanceof InputStream in) {
            try (in) {
                raw = in.readNBytes(4096);
            } catch (IOException ignored) {
                // the status says enough
            }
        }
        String body = new String(raw, StandardCharsets.UTF_8).strip();
        if (body.length() > 500) body = body.substring(0, 500) + "…";
        Duration retryAfter = RegistryException.parseRetryAfter(r.headers().firstValue("Retry-After").orElse(null), Instant.now());
        return new RegistryException(r.statusCode(), what + ": " + r.request().method() + " " + shown(r.request().uri()) + " answered " + r.statusCode()
                + (body.isEmpty() ? "" : ": " + body), retryAfter);
    }

    public static String sha256(byte[] data) {
        return "sha256:" + HexFormat.of().formatHex(sha256Digest().digest(data));
    }

    private static MessageDigest sha256Digest() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
