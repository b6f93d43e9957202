package org.dedupsnapshotter.lazy.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.Map;
import java.util.Optional;

/**
 * The docker config file as docker's and containerd's clients read it: a credential helper named for the host in
 * `credHelpers`, else the default one in `credsStore`, else the host's `auths` entry (`auth` = base64 user:secret,
 * `username`/`password`, or `identitytoken`). Keys may be bare hosts or URLs; Docker Hub's is
 * https://index.docker.io/v1/. The file is read on every lookup, so an edit or a `docker login` takes effect at the
 * next one. Helpers are found on the given PATH (not this process's: tests and the daemon pass their own).
 */
public final class DockerConfig implements CredentialSource {
    static final String HUB_SERVER_URL = "https://index.docker.io/v1/";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path file;
    private final String path;

    public DockerConfig(Path file, String path) {
        this.file = file;
        this.path = path == null ? "" : path;
    }

    /** $DOCKER_CONFIG/config.json, else ~/.docker/config.json; helpers on this process's PATH. */
    public static DockerConfig fromEnvironment() {
        return fromEnvironment(System.getenv());
    }

    static DockerConfig fromEnvironment(Map<String, String> env) {
        String dir = env.get("DOCKER_CONFIG");
        Path f = dir != null && !dir.isEmpty() ? Path.of(dir, "config.json") : Path.of(System.getProperty("user.home"), ".docker", "config.json");
        return new DockerConfig(f, env.get("PATH"));
    }

    public Path file() { return file; }

    @Override
    public Optional<Credentials> lookup(String host) throws IOException { return credentials(host); }

    /** The credentials for host (a registry host such as reg.example:5000, or Docker Hub's registry-1.docker.io). */
    public Optional<Credentials> credentials(String host) throws IOException {
        if (!Files.exists(file)) return Optional.empty();
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(file));
        } catch (IOException e) {
            throw new IOException("docker config " + file + " is not valid JSON: " + e.getMessage(), e);
        }
        String helper = textOf(entryFor(root.path("credHelpers"), host));
        if (helper == null) helper = textOf(root.get("credsStore"));
        if (helper != null && !helper.isEmpty()) return new CredentialHelper(helper, path).get(serverUrl(host));
        return fromAuths(entryFor(root.path("auths"), host));
    }

    /** What a helper is asked for: the bare host, or Docker Hub's index URL under which `docker login` stores it. */
    static String serverUrl(String host) { return host.equals(ImageRef.DOCKER_HUB) ? HUB_SERVER_URL : host; }

    private static Optional<Credentials> fromAuths(JsonNode v) {
        if (v == null) return Optional.empty();
        if (v.hasNonNull("identitytoken") && !v.get("identitytoken").asText().isEmpty())
            return Optional.of(Credentials.identityToken(v.get("identitytoken").asText()));
        if (v.hasNonNull("auth") && !v.get("auth").asText().isEmpty()) {
            String decoded = new String(Base64.getDecoder().decode(v.get("auth").asText().strip()), StandardCharsets.UTF_8);
            int colon = decoded.indexOf(':');
            if (colon > 0) return Optional.of(new Credentials(decoded.substring(0, colon), decoded.substring(colon + 1)));
        }
        if (v.hasNonNull("username") && v.hasNonNull("password"))
            return Optional.of(new Credentials(v.get("username").asText(), v.get("password").asText()));
        return Optional.empty();
    }

    /** The value under the key naming host: an exact host key first, else a URL or Docker Hub alias of it. */
    private static JsonNode entryFor(JsonNode map, String host) {
        if (map.has(host)) return map.get(host);
        for (var it = map.properties().iterator(); it.hasNext(); ) {
            var e = it.next();
            if (sameRegistry(hostOf(e.getKey()), host)) return e.getValue();
        }
        return null;
    }

    private static boolean sameRegistry(String keyHost, String host) {
        if (keyHost.equals(host)) return true;
        return host.equals(ImageRef.DOCKER_HUB) && (keyHost.equals("index.docker.io") || keyHost.equals("docker.io"));
    }

    private static String hostOf(String key) {
        String k = key.replaceFirst("^https?://", "");
        int slash = k.indexOf('/');
        return slash >= 0 ? k.substring(0, slash) : k;
    }

    private static String textOf(JsonNode n) { return n == null || !n.isTextual() ? null : n.asText(); }
}
