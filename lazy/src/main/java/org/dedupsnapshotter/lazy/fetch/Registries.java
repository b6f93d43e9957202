package org.dedupsnapshotter.lazy.fetch;

import org.dedupsnapshotter.lazy.registry.CredentialSource;
import org.dedupsnapshotter.lazy.registry.DockerConfig;
import org.dedupsnapshotter.lazy.registry.ImageRef;
import org.dedupsnapshotter.lazy.registry.RegistryClient;

import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * One registry client per registry host, kept for its connections and tokens. Plain HTTP for loopback hosts
 * (as docker treats them) and for the hosts listed in config; HTTPS otherwise. Credentials come from the docker
 * config ($DOCKER_CONFIG or ~/.docker, credential helpers on PATH) or the source given, read when a registry first
 * asks and again whenever it refuses them. Clients are kept per HOST/REPOSITORY, as credentials may be (pull
 * secrets), so each asks its source for its own repository's.
 */
public final class Registries {
    private final List<String> plainHttp;
    private final Duration timeout;
    private final CredentialSource credentials;
    private final Map<String, RegistryClient> clients = new ConcurrentHashMap<>();

    public Registries(List<String> plainHttp, Duration timeout) {
        this(plainHttp, timeout, DockerConfig.fromEnvironment());
    }

    public Registries(List<String> plainHttp, Duration timeout, CredentialSource credentials) {
        this.plainHttp = plainHttp;
        this.timeout = timeout;
        this.credentials = credentials;
    }

    /** A client for repository on host, with that repository's credentials. */
    public RegistryClient client(String host, String repository) {
        return clients.computeIfAbsent(host + "/" + repository,
                k -> new RegistryClient(host, isPlainHttp(host), credentials.forRepository(repository), timeout));
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
     * The same with one request, its headers and body due by deadline (System.nanoTime): the caller retries (see
     * {@link org.dedupsnapshotter.lazy.registry.RetryPolicy}).
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
