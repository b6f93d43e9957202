package org.dedupsnapshotter.lazy.registry.hosts;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.dataformat.toml.TomlMapper;
import org.dedupsnapshotter.lazy.registry.hosts.RegistryEndpoint.Capability;
import org.dedupsnapshotter.lazy.registry.hosts.RegistryEndpoint.ClientPair;
import org.dedupsnapshotter.lazy.registry.hosts.RegistryEndpoint.Tls;

import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Stream;

/**
 * containerd's registry host directories (config_path, {@code ctr --hosts-dir}), read as containerd 2.4 reads them
 * (core/remotes/docker/config/hosts.go): for a registry HOST[:PORT] the first of ROOT/HOST_PORT_, ROOT/HOST:PORT,
 * ROOT/_default that exists, in the first ROOT (of a colon-separated list) that has one. In it, hosts.toml: the
 * {@code [host."URL"]} tables in file order (mirrors), then the server (the {@code server} key, or the registry
 * itself). Without a hosts.toml, docker's certs.d layout: *.crt are CAs, *.cert with its *.key a client pair.
 * Unlike containerd, which logs a malformed hosts.toml and carries on without it, a malformed file is an error
 * naming the file and key: a mirror or CA silently ignored is worse than a pull that says why it fails.
 */
public final class HostsDir {
    /** Docker Hub's API host, as image references name it once parsed (ImageRef, which this package does not import). */
    private static final String DOCKER_HUB = "registry-1.docker.io";

    /** containerd 2.x's default config_path, and docker's certificate directory. */
    public static final String DEFAULT = "/etc/containerd/certs.d:/etc/docker/certs.d";
    private static final TomlMapper TOML = new TomlMapper();
    private static final Set<String> KEYS = Set.of("server", "host", "capabilities", "ca", "client", "skip_verify", "header", "override_path", "dial_timeout");

    private final List<Path> roots;

    public HostsDir(List<Path> roots) { this.roots = List.copyOf(roots); }

    /** A colon-separated list of directories; "" reads none. */
    public static HostsDir parse(String dirs) {
        return new HostsDir(Arrays.stream(dirs.split(":")).filter(s -> !s.isBlank()).map(Path::of).toList());
    }

    public static HostsDir none() { return new HostsDir(List.of()); }

    public List<Path> roots() { return roots; }

    /**
     * The endpoints of registry host (as in an image reference: HOST[:PORT], registry-1.docker.io for Docker Hub):
     * mirrors first, then the registry. plainHttp: the registry's own address is http:// (loopback, --plain-http)
     * unless hosts.toml names its server.
     */
    public List<RegistryEndpoint> endpoints(String host, boolean plainHttp) throws IOException {
        String name = host.equals(DOCKER_HUB) ? "docker.io" : host;
        Optional<Path> dir = directory(name);
        List<RegistryEndpoint> hosts = new ArrayList<>();
        Tls serverTls = Tls.NONE;
        Map<String, List<String>> serverHeaders = Map.of();
        Set<Capability> serverCaps = RegistryEndpoint.ALL;
        URI server = null;
        if (dir.isPresent()) {
            Path file = dir.get().resolve("hosts.toml");
            byte[] b = readIfPresent(file);
            if (b == null || b.length == 0) {
                serverTls = certFiles(dir.get());
            } else {
                JsonNode root;
                try {
                    root = TOML.readTree(b);
                } catch (JacksonException e) {
                    throw new HostsConfigException(file, "is not valid TOML: " + e.getOriginalMessage(), e);
                }
                for (Iterator<String> it = root.fieldNames(); it.hasNext(); ) {
                    String k = it.next();
                    if (!KEYS.contains(k)) throw new HostsConfigException(file, k, "is not a hosts.toml key (server, capabilities, ca, client, skip_verify, header, override_path, [host.\"URL\"])");
                }
                JsonNode hostTables = root.path("host");
                if (!hostTables.isMissingNode() && !hostTables.isObject())
                    throw new HostsConfigException(file, "host", "must be tables [host.\"https://mirror.example\"]; got " + hostTables);
                for (Iterator<Map.Entry<String, JsonNode>> it = hostTables.fields(); it.hasNext(); ) {
                    Map.Entry<String, JsonNode> e = it.next();
                    String prefix = "host.\"" + e.getKey() + "\".";
                    if (!e.getValue().isObject()) throw new HostsConfigException(file, "host.\"" + e.getKey() + "\"", "must be a table");
                    hosts.add(new RegistryEndpoint(url(file, "host.\"" + e.getKey() + "\"", e.getKey(), e.getValue()), capabilities(file, prefix, e.getValue()),
                            tls(file, prefix, e.getValue(), dir.get()), headers(file, prefix, e.getValue()), true));
                }
                JsonNode s = root.path("server");
                if (!s.isMissingNode()) {
                    if (!s.isTextual() || s.asText().isEmpty()) throw new HostsConfigException(file, "server", "must be the registry's URL such as \"https://registry.example:5000\"; got " + s);
                    server = url(file, "server", s.asText(), root);
                    serverCaps = capabilities(file, "", root);
                }
                serverTls = tls(file, "", root, dir.get());
                serverHeaders = headers(file, "", root);
            }
        }
        if (server == null) server = URI.create((plainHttp ? "http://" : "https://") + (name.equals("docker.io") ? DOCKER_HUB : name) + "/v2");
        hosts.add(new RegistryEndpoint(server, serverCaps, serverTls, serverHeaders, false));
        return List.copyOf(hosts);
    }

    /** The directory of host: the first of HOST_PORT_, HOST:PORT, _default in the first root that has one. */
    Optional<Path> directory(String host) {
        int colon = host.lastIndexOf(':');
        List<String> names = new ArrayList<>();
        if (colon > 0) names.add(host.substring(0, colon) + "_" + host.substring(colon + 1) + "_");
        names.add(host);
        names.add("_default");
        for (Path root : roots)
            for (String n : names)
                if (Files.exists(root.resolve(n))) return Optional.of(root.resolve(n));
        return Optional.empty();
    }

    private static byte[] readIfPresent(Path file) throws IOException {
        try {
            return Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            return null;
        }
    }

    /** docker's certs.d: *.crt CAs, *.cert client certificates with their *.key when there is one. */
    static Tls certFiles(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) return Tls.NONE;
        List<Path> cas = new ArrayList<>();
        List<ClientPair> pairs = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.sorted().toList()) {
                if (Files.isDirectory(f)) continue;
                String n = f.getFileName().toString();
                if (n.endsWith(".crt")) cas.add(f);
                if (n.endsWith(".cert")) {
                    Path key = dir.resolve(n.substring(0, n.length() - 5) + ".key");
                    pairs.add(new ClientPair(f, Files.exists(key) ? key : null));
                }
            }
        }
        return cas.isEmpty() && pairs.isEmpty() ? Tls.NONE : new Tls(List.copyOf(cas), List.copyOf(pairs), null);
    }

    /** An endpoint's URL: https:// unless given, path cleaned and ending in /v2 unless override_path. */
    private static URI url(Path file, String key, String server, JsonNode table) throws HostsConfigException {
        String s = server.startsWith("http") ? server : "https://" + server;
        URI u;
        try {
            u = new URI(s);
        } catch (URISyntaxException e) {
            throw new HostsConfigException(file, key, "is not a URL: " + e.getMessage());
        }
        if (!(u.getScheme().equals("http") || u.getScheme().equals("https")) || u.getHost() == null)
            throw new HostsConfigException(file, key, "must be an http:// or https:// URL with a host; got " + server);
        if (u.getRawUserInfo() != null) // it would be logged with the URL; credentials belong in the docker config
            throw new HostsConfigException(file, key.replace(u.getRawUserInfo() + "@", "USER@"),
                    "must not hold a user or password (credentials come from the docker config or a pull secret)");
        boolean override = bool(file, key.isEmpty() || key.equals("server") ? "override_path" : key + ".override_path", table.path("override_path"), false);
        String path = u.getRawPath() == null ? "" : u.getRawPath();
        if (!path.isEmpty()) {
            path = Path.of(path).normalize().toString();
            if (path.equals("/")) path = "";
            if (!path.endsWith("/v2") && !override) path = path + "/v2";
        } else if (!override) {
            path = "/v2";
        }
        if (path.endsWith("/")) path = path.substring(0, path.length() - 1);
        return URI.create(u.getScheme() + "://" + u.getRawAuthority() + path);
    }

    private static boolean bool(Path file, String key, JsonNode v, boolean otherwise) throws HostsConfigException {
        if (v.isMissingNode()) return otherwise;
        if (!v.isBoolean()) throw new HostsConfigException(file, key, "must be true or false; got " + v);
        return v.asBoolean();
    }

    private static Set<Capability> capabilities(Path file, String prefix, JsonNode table) throws HostsConfigException {
        JsonNode v = table.path("capabilities");
        if (v.isMissingNode()) return RegistryEndpoint.ALL;
        if (!v.isArray()) throw new HostsConfigException(file, prefix + "capabilities", "must be a list such as [\"pull\", \"resolve\"]; got " + v);
        if (v.isEmpty()) return RegistryEndpoint.ALL; // as containerd: none listed means all
        EnumSet<Capability> caps = EnumSet.noneOf(Capability.class);
        for (JsonNode c : v) {
            switch (c.asText().toLowerCase()) {
                case "pull" -> caps.add(Capability.PULL);
                case "resolve" -> caps.add(Capability.RESOLVE);
                case "push" -> caps.add(Capability.PUSH);
                case "referrers" -> caps.add(Capability.REFERRERS);
                default -> throw new HostsConfigException(file, prefix + "capabilities", "has unknown capability " + c + " (pull, resolve, push, referrers)");
            }
        }
        return Set.copyOf(caps);
    }

    private static Tls tls(Path file, String prefix, JsonNode table, Path dir) throws HostsConfigException {
        List<Path> cas = new ArrayList<>();
        JsonNode ca = table.path("ca");
        if (ca.isTextual()) cas.add(abs(dir, ca.asText()));
        else if (ca.isArray()) {
            for (JsonNode c : ca) {
                if (!c.isTextual()) throw new HostsConfigException(file, prefix + "ca", "must be a path or a list of paths; got " + ca);
                cas.add(abs(dir, c.asText()));
            }
        } else if (!ca.isMissingNode()) throw new HostsConfigException(file, prefix + "ca", "must be a path or a list of paths; got " + ca);
        List<ClientPair> pairs = new ArrayList<>();
        JsonNode client = table.path("client");
        if (client.isTextual()) pairs.add(new ClientPair(abs(dir, client.asText()), null));
        else if (client.isArray()) {
            for (JsonNode p : client) {
                if (p.isTextual()) pairs.add(new ClientPair(abs(dir, p.asText()), null));
                else if (p.isArray() && p.size() == 2 && p.get(0).isTextual() && p.get(1).isTextual())
                    pairs.add(new ClientPair(abs(dir, p.get(0).asText()), abs(dir, p.get(1).asText())));
                else throw new HostsConfigException(file, prefix + "client", "must be a certificate path, or a list of paths and [cert, key] pairs; got " + p);
            }
        } else if (!client.isMissingNode()) throw new HostsConfigException(file, prefix + "client", "must be a certificate path, or a list of paths and [cert, key] pairs; got " + client);
        JsonNode sv = table.path("skip_verify");
        Boolean skip = sv.isMissingNode() ? null : bool(file, prefix + "skip_verify", sv, false);
        return new Tls(List.copyOf(cas), List.copyOf(pairs), skip);
    }

    /** Headers java.net.http refuses to be given (it sets them itself). */
    private static final Set<String> RESTRICTED_HEADERS = Set.of("connection", "content-length", "expect", "host", "upgrade");

    private static Map<String, List<String>> headers(Path file, String prefix, JsonNode table) throws HostsConfigException {
        JsonNode h = table.path("header");
        if (h.isMissingNode()) return Map.of();
        if (!h.isObject()) throw new HostsConfigException(file, prefix + "header", "must be a table of NAME = \"value\" or [\"values\"]; got " + h);
        Map<String, List<String>> out = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = h.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            List<String> values = new ArrayList<>();
            if (e.getValue().isTextual()) values.add(e.getValue().asText());
            else if (e.getValue().isArray()) {
                for (JsonNode v : e.getValue()) {
                    if (!v.isTextual()) throw new HostsConfigException(file, prefix + "header." + e.getKey(), "must be a string or a list of strings; got " + e.getValue());
                    values.add(v.asText());
                }
            } else throw new HostsConfigException(file, prefix + "header." + e.getKey(), "must be a string or a list of strings; got " + e.getValue());
            if (RESTRICTED_HEADERS.contains(e.getKey().toLowerCase(Locale.ROOT)))
                throw new HostsConfigException(file, prefix + "header." + e.getKey(), "is a header the HTTP client sets itself; it cannot be given");
            out.put(e.getKey(), List.copyOf(values));
        }
        return out;
    }

    private static Path abs(Path dir, String p) {
        Path path = Path.of(p);
        return path.isAbsolute() ? path : dir.resolve(path);
    }
}
