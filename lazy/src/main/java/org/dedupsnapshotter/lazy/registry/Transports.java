package org.dedupsnapshotter.lazy.registry;

import org.dedupsnapshotter.lazy.registry.hosts.RegistryEndpoint;
import org.dedupsnapshotter.lazy.registry.hosts.RegistryEndpoint.Tls;
import org.dedupsnapshotter.lazy.registry.hosts.TlsContexts;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ProxySelector;
import java.net.http.HttpClient;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import javax.net.ssl.SSLContext;

/**
 * The HTTP clients of registry endpoints, one pair per endpoint (its host and TLS settings), shared by the clients of
 * every repository on it: an HTTP client holds threads and a connection pool, and the repositories a node reads are
 * named by images. Of a pair, {@code own} talks to the endpoint itself with everything hosts.toml gives it (CAs,
 * client certificates, skip_verify); {@code elsewhere} talks to the other hosts the endpoint sends us to (its token
 * realm, a CDN its blobs redirect to) trusting the same CAs, but without skip_verify and without offering the client
 * certificates, which are the endpoint's alone.
 */
public final class Transports {
    public record Pair(HttpClient own, HttpClient elsewhere) {}

    private record Key(String authority, Tls tls, Duration connectTimeout) {}

    private final ProxySelector proxy;
    private final Map<Key, Pair> pairs = new ConcurrentHashMap<>();

    public Transports(ProxySelector proxy) {
        this.proxy = proxy;
    }

    /** The pair of endpoint, made on first use; connections are given up after connectTimeout. */
    public Pair of(RegistryEndpoint endpoint, Duration connectTimeout) throws IOException {
        try {
            return pairs.computeIfAbsent(new Key(endpoint.host(), endpoint.tls(), connectTimeout), k -> {
                try {
                    Tls tls = endpoint.tls();
                    Tls trustOnly = new Tls(tls.cas(), List.of(), null);
                    HttpClient own = client(connectTimeout, tls.isDefault() ? null : TlsContexts.of(tls, endpoint.toString()));
                    HttpClient elsewhere = tls.equals(trustOnly) ? own : client(connectTimeout, trustOnly.isDefault() ? null : TlsContexts.of(trustOnly, endpoint.toString()));
                    return new Pair(own, elsewhere);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }

    private HttpClient client(Duration connectTimeout, SSLContext tls) {
        HttpClient.Builder b = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(connectTimeout)
                .followRedirects(HttpClient.Redirect.NEVER).proxy(proxy);
        if (tls != null) b.sslContext(tls);
        return b.build();
    }
}
