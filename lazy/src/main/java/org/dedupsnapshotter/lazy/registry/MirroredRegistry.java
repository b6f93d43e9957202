package org.dedupsnapshotter.lazy.registry;

import org.dedupsnapshotter.lazy.registry.hosts.EnvProxySelector;
import org.dedupsnapshotter.lazy.registry.hosts.HostsDir;
import org.dedupsnapshotter.lazy.registry.hosts.RegistryEndpoint;
import org.dedupsnapshotter.lazy.registry.hosts.RegistryEndpoint.Capability;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.net.ProxySelector;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongConsumer;
import java.util.function.LongSupplier;

/**
 * A registry as containerd's hosts.toml describes it: its mirrors in order, then the registry itself, each with its
 * own client (URL, TLS, headers, credentials of its own host). Each read asks the endpoints that may serve it
 * (blobs and manifests by digest: pull; manifests by tag: resolve) in order and falls to the next when one fails.
 * A mirror is given a bounded part of the time: calls with a deadline of the caller's give it a third of what is
 * left (so the registry still fits), calls without one retry it only briefly. A mirror whose link or server failed
 * is skipped for a while, so each chunk read does not pay for it again; one that only lacks content (404) is not.
 * Pushes go to the first endpoint that may push.
 */
public final class MirroredRegistry {
    private static final Logger log = LoggerFactory.getLogger(MirroredRegistry.class);
    /** How long calls without a deadline retry a failing mirror before the next endpoint. */
    static final Duration MIRROR_RETRY = Duration.ofSeconds(2);
    /** How long a connection to a mirror may take before the next endpoint is asked (an unreachable mirror). */
    static final Duration MIRROR_CONNECT = Duration.ofSeconds(5);
    /** How long a mirror whose link or server failed is skipped. */
    static final Duration MIRROR_DOWN = Duration.ofSeconds(30);

    /** One endpoint and its client; downUntil: System.nanoTime before which it is skipped (0: up). */
    private record Endpoint(RegistryEndpoint where, RegistryClient client, AtomicLong downUntil) {}

    private interface Call<T> {
        T run(RegistryClient c, long deadline) throws IOException;
    }

    private final String host;
    private final List<Endpoint> endpoints;
    private final LongSupplier clock;

    MirroredRegistry(String host, List<RegistryEndpoint> where, List<RegistryClient> clients, LongSupplier clock) {
        this.host = host;
        List<Endpoint> e = new ArrayList<>();
        for (int i = 0; i < where.size(); i++) e.add(new Endpoint(where.get(i), clients.get(i), new AtomicLong()));
        this.endpoints = List.copyOf(e);
        this.clock = clock;
    }

    /** The endpoints of host from the hosts directories, each with its client. */
    public static MirroredRegistry of(String host, boolean plainHttp, HostsDir hosts, CredentialSource credentials, Duration timeout, ProxySelector proxy)
            throws IOException {
        return of(host, plainHttp, hosts, credentials, timeout, new Transports(proxy));
    }

    /** The same over shared HTTP clients (one pair per endpoint, whatever the repository). */
    public static MirroredRegistry of(String host, boolean plainHttp, HostsDir hosts, CredentialSource credentials, Duration timeout, Transports transports)
            throws IOException {
        List<RegistryEndpoint> where = hosts.endpoints(host, plainHttp);
        List<RegistryClient> clients = new ArrayList<>();
        for (RegistryEndpoint e : where) {
            Duration retry = e.mirror() ? min(timeout, MIRROR_RETRY) : timeout;
            Duration connect = e.mirror() ? min(timeout, MIRROR_CONNECT) : timeout;
            clients.add(new RegistryClient(e, credentials, timeout, retry, transports.of(e, connect)));
        }
        return new MirroredRegistry(host, where, clients, System::nanoTime);
    }

    /** ref's registry for the CLI (convert, pull): hosts directories, the docker config's credentials, the environment's proxies. */
    public static MirroredRegistry forRef(ImageRef ref, boolean plainHttp, HostsDir hosts, Duration timeout) throws IOException {
        return of(ref.host(), plainHttp, hosts, DockerConfig.fromEnvironment(), timeout, EnvProxySelector.fromEnvironment());
    }

    /** HOST[:PORT] of the registry (as in image references). */
    public String host() { return host; }

    public List<RegistryEndpoint> endpoints() { return endpoints.stream().map(Endpoint::where).toList(); }

    /** A manifest or index: by tag from endpoints that may resolve, by digest from those that may pull. */
    public RegistryClient.Fetched manifest(String repo, String reference) throws IOException {
        Capability need = reference.startsWith("sha256:") ? Capability.PULL : Capability.RESOLVE;
        return read(need, "manifest " + repo + ":" + reference, Long.MAX_VALUE, (c, d) -> c.manifest(repo, reference));
    }

    public byte[] blob(String repo, String digest) throws IOException {
        return read(Capability.PULL, "blob " + digest, Long.MAX_VALUE, (c, d) -> c.blob(repo, digest));
    }

    public long blobToFile(String repo, String digest, Path file) throws IOException {
        return blobToFile(repo, digest, file, n -> {});
    }

    /** The same, telling onBytes of the bytes as they arrive (an endpoint given up takes back what it had told). */
    public long blobToFile(String repo, String digest, Path file, LongConsumer onBytes) throws IOException {
        long[] told = {0};
        return read(Capability.PULL, "blob " + digest, Long.MAX_VALUE, (c, d) -> {
            onBytes.accept(-told[0]);
            told[0] = 0;
            return c.blobToFile(repo, digest, file, n -> {
                told[0] += n;
                onBytes.accept(n);
            });
        });
    }

    public InputStream blobStream(String repo, String digest, long size) throws IOException {
        return read(Capability.PULL, "blob " + digest, Long.MAX_VALUE, (c, d) -> c.blobStream(repo, digest, size));
    }

    public long blobSize(String repo, String digest) throws IOException {
        return read(Capability.PULL, "blob " + digest, Long.MAX_VALUE, (c, d) -> c.blobSize(repo, digest));
    }

    public byte[] blobRange(String repo, String digest, long offset, int length) throws IOException {
        return read(Capability.PULL, "blob " + digest, Long.MAX_VALUE, (c, d) -> c.blobRange(repo, digest, offset, length));
    }

    /** Retried until deadline (System.nanoTime); a mirror gets a third of the time left. */
    public byte[] blobRange(String repo, String digest, long offset, int length, long deadline) throws IOException {
        return read(Capability.PULL, "blob " + digest, deadline, (c, d) -> c.blobRange(repo, digest, offset, length, d));
    }

    public InputStream blobRangeStream(String repo, String digest, long offset, long length) throws IOException {
        return read(Capability.PULL, "blob " + digest, Long.MAX_VALUE, (c, d) -> c.blobRangeStream(repo, digest, offset, length));
    }

    /** One request per endpoint tried, due by deadline (a mirror's by a third of the time left); the caller retries. */
    public InputStream blobRangeStream(String repo, String digest, long offset, long length, long deadline) throws IOException {
        return read(Capability.PULL, "blob " + digest, deadline, (c, d) -> c.blobRangeStream(repo, digest, offset, length, d));
    }

    public boolean hasBlob(String repo, String digest) throws IOException { return pusher().hasBlob(repo, digest); }

    public void pushBlob(String repo, byte[] data, int chunkSize) throws IOException { pusher().pushBlob(repo, data, chunkSize); }

    public void pushBlob(String repo, Path file, String digest, int chunkSize) throws IOException { pusher().pushBlob(repo, file, digest, chunkSize); }

    /** The same, telling onBytes of each piece the registry took. */
    public void pushBlob(String repo, Path file, String digest, int chunkSize, LongConsumer onBytes) throws IOException {
        pusher().pushBlob(repo, file, digest, chunkSize, onBytes);
    }

    public String pushManifest(String repo, String tag, String mediaType, byte[] body) throws IOException {
        return pusher().pushManifest(repo, tag, mediaType, body);
    }

    private RegistryClient pusher() throws IOException {
        for (Endpoint e : endpoints) if (e.where().can(Capability.PUSH)) return e.client();
        throw new IOException("no endpoint of registry " + host + " may push (hosts.toml capabilities)");
    }

    /**
     * call on the endpoints that may do need, in order, mirrors marked down skipped (unless nothing else is left):
     * the first answer, or the last endpoint's failure (earlier ones suppressed in it, so its kind, retryable or
     * not, is what the caller sees).
     */
    private <T> T read(Capability need, String what, long deadline, Call<T> call) throws IOException {
        List<Endpoint> capable = endpoints.stream().filter(e -> e.where().can(need)).toList();
        if (capable.isEmpty()) throw new IOException(what + ": no endpoint of registry " + host + " may " + need.name().toLowerCase() + " (hosts.toml capabilities)");
        long now = clock.getAsLong();
        List<Endpoint> tried = capable.stream().filter(e -> !e.where().mirror() || e.downUntil().get() - now <= 0).toList();
        if (tried.isEmpty()) tried = capable;
        List<IOException> failures = new ArrayList<>();
        for (int i = 0; i < tried.size(); i++) {
            Endpoint e = tried.get(i);
            boolean last = i == tried.size() - 1;
            long d = last || deadline == Long.MAX_VALUE ? deadline : clock.getAsLong() + Math.max(0, deadline - clock.getAsLong()) / 3;
            try {
                T t = call.run(e.client(), d);
                e.downUntil().set(0);
                return t;
            } catch (InterruptedIOException x) {
                throw x;
            } catch (IOException x) {
                if (last) {
                    failures.forEach(x::addSuppressed);
                    throw x;
                }
                failures.add(x);
                // down: its link or server failed, or it refuses us (401/403: a mirror that wants credentials we do
                // not have for it would cost every read a refusal); a 404 is content it lacks, asked again next time
                boolean down = !(x instanceof RegistryException r) || r.status() >= 500 || r.status() == 429 || r.status() == 401 || r.status() == 403;
                if (down) e.downUntil().set(clock.getAsLong() + MIRROR_DOWN.toNanos());
                if (down) log.warn("{} from {}: {}; trying {} (this endpoint skipped for {}s)", what, e.where(), x.getMessage(), tried.get(i + 1).where(), MIRROR_DOWN.toSeconds());
                else log.debug("{} from {}: {}; trying {}", what, e.where(), x.getMessage(), tried.get(i + 1).where());
            }
        }
        throw new IllegalStateException("unreachable");
    }

    private static Duration min(Duration a, Duration b) { return a.compareTo(b) < 0 ? a : b; }
}
