package org.dedupsnapshotter.daemon.cri;

import org.dedupsnapshotter.lazy.registry.Credentials;
import org.dedupsnapshotter.lazy.registry.ImageRef;
import org.dedupsnapshotter.proto.cri.v1.AuthConfig;

import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Optional;
import java.util.Set;

/**
 * The credentials a PullImage's AuthConfig gives its image's registry, read as containerd's CRI reads them
 * (ParseAuth): none when server_address names another host; else username + password, else identity_token,
 * else auth (base64 "user:password"). registry_token alone gives none: containerd does not use it either.
 */
final class PullAuth {
    private static final Set<String> DOCKER_HUB = Set.of("docker.io", "index.docker.io", "registry-1.docker.io");

    private PullAuth() {}

    static Optional<Credentials> of(AuthConfig auth, String imageRef) {
        if (!auth.getServerAddress().isEmpty() && !sameHost(hostOf(auth.getServerAddress()), ImageRef.parse(imageRef).host()))
            return Optional.empty();
        if (!auth.getUsername().isEmpty()) return Optional.of(new Credentials(auth.getUsername(), auth.getPassword()));
        if (!auth.getIdentityToken().isEmpty()) return Optional.of(Credentials.identityToken(auth.getIdentityToken()));
        if (!auth.getAuth().isEmpty()) {
            String decoded;
            try {
                decoded = new String(Base64.getDecoder().decode(auth.getAuth().strip()), StandardCharsets.UTF_8);
            } catch (IllegalArgumentException e) {
                return Optional.empty(); // containerd refuses the pull itself, and says why
            }
            int colon = decoded.indexOf(':');
            if (colon < 0) return Optional.empty();
            return Optional.of(new Credentials(decoded.substring(0, colon), decoded.substring(colon + 1).replace("\0", "")));
        }
        return Optional.empty();
    }

    /** HOST[:PORT] of "https://host/v1/", "host:port" or "host". */
    static String hostOf(String serverAddress) {
        if (serverAddress.contains("://")) {
            URI u = URI.create(serverAddress);
            return u.getPort() < 0 ? u.getHost() : u.getHost() + ":" + u.getPort();
        }
        int slash = serverAddress.indexOf('/');
        return slash < 0 ? serverAddress : serverAddress.substring(0, slash);
    }

    private static boolean sameHost(String a, String b) {
        return a.equals(b) || DOCKER_HUB.contains(a) && DOCKER_HUB.contains(b);
    }
}
