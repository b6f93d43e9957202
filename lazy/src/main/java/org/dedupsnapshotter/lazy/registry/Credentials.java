package org.dedupsnapshotter.lazy.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.Optional;

/** A user name and secret for one registry, as `docker login` stores them in the docker config file. */
public record Credentials(String user, String secret) {
    /** $DOCKER_CONFIG/config.json, else ~/.docker/config.json. */
    public static Path defaultConfig() {
        String dir = System.getenv("DOCKER_CONFIG");
        return dir != null && !dir.isEmpty() ? Path.of(dir, "config.json") : Path.of(System.getProperty("user.home"), ".docker", "config.json");
    }

    /**
     * The "auths" entry for host: keys may be bare hosts or URLs (Docker Hub's is https://index.docker.io/v1/); the
     * value is base64(user:secret) in "auth", or "username"/"password". Credential helpers are not run.
     */
    public static Optional<Credentials> forHost(Path configFile, String host) throws IOException {
        if (!Files.exists(configFile)) return Optional.empty();
        JsonNode auths = new ObjectMapper().readTree(Files.readString(configFile)).path("auths");
        for (var it = auths.fields(); it.hasNext(); ) {
            var e = it.next();
            if (!hostOf(e.getKey()).equals(host) && !(host.equals(ImageRef.DOCKER_HUB) && hostOf(e.getKey()).equals("index.docker.io"))) continue;
            JsonNode v = e.getValue();
            if (v.hasNonNull("auth")) {
                String decoded = new String(Base64.getDecoder().decode(v.get("auth").asText()), StandardCharsets.UTF_8);
                int colon = decoded.indexOf(':');
                if (colon > 0) return Optional.of(new Credentials(decoded.substring(0, colon), decoded.substring(colon + 1)));
            }
            if (v.hasNonNull("username") && v.hasNonNull("password"))
                return Optional.of(new Credentials(v.get("username").asText(), v.get("password").asText()));
        }
        return Optional.empty();
    }

    private static String hostOf(String key) {
        String k = key.replaceFirst("^https?://", "");
        int slash = k.indexOf('/');
        return slash >= 0 ? k.substring(0, slash) : k;
    }

    String basic() {
        return "Basic " + Base64.getEncoder().encodeToString((user + ":" + secret).getBytes(StandardCharsets.UTF_8));
    }

    @Override
    public String toString() { return "Credentials[" + user + ", ***]"; }
}
