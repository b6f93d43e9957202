package org.dedupsnapshotter.lazy.fetch;

import org.dedupsnapshotter.lazy.registry.CredentialSource;
import org.dedupsnapshotter.lazy.registry.DockerConfig;
import org.dedupsnapshotter.lazy.registry.ImageRef;
import org.dedupsnapshotter.lazy.registry.MirroredRegistry;
import org.dedupsnapshotter.lazy.registry.Transports;
import org.dedupsnapshotter.lazy.registry.hosts.HostsDir;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.ProxySelector;
import java.net.http.HttpClient;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The daemon's registries, one {@link MirroredRegistry} per HOST/REPOSITORY (credentials may be per repository:
 * pull secrets), kept for its connections, tokens and
 * knowledge of mirrors that are down. Each is built from the hosts directories (containerd's hosts.toml: mirrors,
 * TLS, headers) when the registry is first used. The registry's own address is plain HTTP for loopback hosts (as
 * docker treats them) and for the hosts listed in config, HTTPS otherwise, unless hosts.toml names its server.
 * Credentials come from the source given (pull secrets, then the docker config: $DOCKER_CONFIG or ~/.docker,
 * credential helpers on PATH), per endpoint host and repository, read when a registry first asks and again
 * whenever it refuses them.
 */
public final class Registries {
    private final List<String> plainHttp;
    private final HostsDir hosts;
    private final Duration timeout;
    private final CredentialSource credentials;
    /** HTTP clients per endpoint, shared by its repositories (each repository's client keeps only its tokens and redirects). */
    private final Transports transports;
    private final Map<String, MirroredRegistry> registries = new ConcurrentHashMap<>();

    /** Without hosts directories or proxies (tests). */
    public Registries(List<String> plainHttp, Duration timeout) {
        this(plainHttp, HostsDir.none(), timeout, DockerConfig.fromEnvironment(), HttpClient.Builder.NO_PROXY);
    }

    public Registries(List<String> plainHttp, Duration timeout, CredentialSource credentials) {
        this(plainHttp, HostsDir.none(), timeout, credentials, HttpClient.Builder.NO_PROXY);
    }

    public Registries(List<String> plainHttp, HostsDir hosts, Duration timeout, CredentialSource credentials, ProxySelector proxy) {
        this.plainHttp = plainHttp;
        this.hosts = hosts;
        this.timeout = timeout;
        this.credentials = credentials;
        this.transports = new Transports(proxy);
    }

    /**
     * The registry host (HOST[:PORT]) with its mirrors, for repository (with that repository's credentials); a
     * malformed hosts.toml is an IOException naming it (and asked again next time).
     */
    public MirroredRegistry client(String host, String repository) throws IOException {
        try {
            return registries.computeIfAbsent(host + "/" + repository, k -> {
                try {
                    return MirroredRegistry.of(host, isPlainHttp(host), hosts, credentials.forRepository(repository), timeout, transports);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }

    public boolean isPlainHttp(String host) {
        if (plainHttp.contains(host)) return true;
        String name = host.startsWith("[") ? host.substring(0, host.indexOf(']') + 1) : host.replaceFirst(":\\d+$", "");
        return name.equals("localhost") || name.startsWith("127.") || name.equals("[::1]");
    }

    /** HOST/REPOSITORY of an image reference such as CRI's cri.image-ref label, or of a source annotation. */
    public static String repositoryOf(String ref) {
        ImageRef r = ImageRef.parse(ref);
        return r.host() + "/" + r.repository();
    }

    /** Splits HOST/REPOSITORY. */
    public static String[] split(String source) {
        int slash = source.indexOf('/');
        if (slash <= 0) throw new IllegalArgumentException("not HOST/REPOSITORY: " + source);
        return new String[] {source.substring(0, slash), source.substring(slash + 1)};
    }

    /** length bytes at offset of a blob of the repository source, as a stream. */
    public InputStream rangeStream(String source, String blobDigest, long offset, long length) throws IOException {
        String[] hr = split(source);
        return client(hr[0], hr[1]).blobRangeStream(hr[1], blobDigest, offset, length);
    }

    /**
     * The same with one request per endpoint tried, its headers and body due by deadline (System.nanoTime; a
     * mirror's sooner): the caller retries (see {@link org.dedupsnapshotter.lazy.registry.RetryPolicy}).
     */
    public InputStream rangeStream(String source, String blobDigest, long offset, long length, long deadline) throws IOException {
        String[] hr = split(source);
        return client(hr[0], hr[1]).blobRangeStream(hr[1], blobDigest, offset, length, deadline);
    }

    /** The size of a blob of the repository source (HOST/REPOSITORY). */
    public long blobSize(String source, String blobDigest) throws IOException {
        String[] hr = split(source);
        return client(hr[0], hr[1]).blobSize(hr[1], blobDigest);
    }

    /** length bytes at offset of a blob of the repository source (HOST/REPOSITORY). */
    public byte[] range(String source, String blobDigest, long offset, int length) throws IOException {
        String[] hr = split(source);
        return client(hr[0], hr[1]).blobRange(hr[1], blobDigest, offset, length);
    }

    /** The same, retried until deadline (System.nanoTime) at the latest. */
    public byte[] range(String source, String blobDigest, long offset, int length, long deadline) throws IOException {
        String[] hr = split(source);
        return client(hr[0], hr[1]).blobRange(hr[1], blobDigest, offset, length, deadline);
    }
}
