package org.dedupsnapshotter.lazy.registry;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Base64;
import java.util.Optional;

/**
 * A user name and secret for one registry. The user {@value #IDENTITY_TOKEN_USER} means the secret is an identity
 * token (an OAuth2 refresh token, traded for access tokens at the Bearer realm), as credential helpers say it.
 */
public record Credentials(String user, String secret) {
    public static final String IDENTITY_TOKEN_USER = "<token>";

    public static Credentials identityToken(String token) { return new Credentials(IDENTITY_TOKEN_USER, token); }

    public boolean isIdentityToken() { return IDENTITY_TOKEN_USER.equals(user); }

    /** $DOCKER_CONFIG/config.json, else ~/.docker/config.json. */
    public static Path defaultConfig() { return DockerConfig.fromEnvironment().file(); }

    /** The credentials the docker config at configFile gives host (its auths, credsStore or credHelpers), with this process's PATH. */
    public static Optional<Credentials> forHost(Path configFile, String host) throws IOException {
        return new DockerConfig(configFile, System.getenv("PATH")).credentials(host);
    }

    String basic() {
        return "Basic " + Base64.getEncoder().encodeToString((user + ":" + secret).getBytes(StandardCharsets.UTF_8));
    }

    @Override
    public String toString() { return "Credentials[" + user + ", ***]"; }
}
