package org.dedupsnapshotter.lazy.registry.hosts;

import java.net.URI;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One place a registry's content can be read from, as containerd's hosts.toml names it: a mirror ({@code [host."URL"]})
 * or the registry itself ({@code server}, or the registry's own address). base is scheme://host[:port]/path, the
 * path ending in /v2 unless override_path says the URL is the whole prefix; requests go to base + "/REPO/...".
 *
 * @param base         scheme://HOST[:PORT]/PATH of the API, without a trailing slash
 * @param capabilities what the endpoint may be asked: pull (blobs, manifests by digest), resolve (tags), push
 * @param tls          CAs, client certificate pairs and skip_verify of this endpoint (none: the JVM's defaults)
 * @param headers      extra request headers, sent to this endpoint only
 * @param mirror       whether this is a mirror ([host] table) rather than the registry itself
 */
public record RegistryEndpoint(URI base, Set<Capability> capabilities, Tls tls, Map<String, List<String>> headers, boolean mirror) {
    public enum Capability { PULL, RESOLVE, PUSH, REFERRERS }

    public static final Set<Capability> ALL = Set.of(Capability.PULL, Capability.RESOLVE, Capability.PUSH, Capability.REFERRERS);

    /**
     * TLS settings of an endpoint.
     *
     * @param cas         CA certificates (PEM) trusted besides the system's
     * @param clientPairs client certificate and key (PEM); a null key: the key is in the certificate's file
     * @param skipVerify  true: the server's certificate is not checked; null: not set
     */
    public record Tls(List<Path> cas, List<ClientPair> clientPairs, Boolean skipVerify) {
        public static final Tls NONE = new Tls(List.of(), List.of(), null);

        public boolean isDefault() { return cas.isEmpty() && clientPairs.isEmpty() && skipVerify == null; }
    }

    public record ClientPair(Path cert, Path key) {}

    /** HOST[:PORT] of base: whose credentials this endpoint is sent. */
    public String host() {
        return base.getPort() < 0 ? base.getHost() : base.getHost() + ":" + base.getPort();
    }

    public boolean can(Capability c) { return capabilities.contains(c); }

    public boolean plainHttp() { return base.getScheme().equals("http"); }

    @Override
    public String toString() { return base + (mirror ? " (mirror)" : ""); }
}
