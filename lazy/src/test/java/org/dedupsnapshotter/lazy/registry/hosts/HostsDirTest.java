package org.dedupsnapshotter.lazy.registry.hosts;

import org.dedupsnapshotter.lazy.registry.hosts.RegistryEndpoint.Capability;
import org.dedupsnapshotter.lazy.registry.hosts.RegistryEndpoint.ClientPair;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** hosts.toml and certs.d read as containerd 2.4 reads them (core/remotes/docker/config/hosts.go). */
class HostsDirTest {
    @TempDir
    Path root;

    private Path hostsToml(String dir, String toml) throws IOException {
        Path d = Files.createDirectories(root.resolve(dir));
        Files.writeString(d.resolve("hosts.toml"), toml);
        return d;
    }

    private List<RegistryEndpoint> endpoints(String host) throws IOException {
        return HostsDir.parse(root.toString()).endpoints(host, false);
    }

    @Test
    void withoutADirectoryTheRegistryItselfIsTheOnlyEndpoint() throws IOException {
        List<RegistryEndpoint> e = endpoints("registry.example:5000");
        assertEquals(1, e.size());
        assertEquals(URI.create("https://registry.example:5000/v2"), e.getFirst().base());
        assertEquals(RegistryEndpoint.ALL, e.getFirst().capabilities());
        assertTrue(e.getFirst().tls().isDefault());
        assertEquals(URI.create("http://127.0.0.1:5000/v2"), HostsDir.none().endpoints("127.0.0.1:5000", true).getFirst().base());
        assertEquals(URI.create("https://registry-1.docker.io/v2"), HostsDir.none().endpoints("registry-1.docker.io", false).getFirst().base());
    }

    @Test
    void mirrorsComeInFileOrderThenTheServer() throws IOException {
        Path d = hostsToml("registry.example", """
                server = "https://registry.example"

                [host."https://zeta.mirror"]
                  capabilities = ["pull"]
                  header.X-Mirror = "zeta"

                [host."http://alpha.mirror:5000/prefix"]
                  capabilities = ["pull", "resolve"]
                  ca = "ca.crt"
                  skip_verify = false

                [host."https://raw.mirror/api/v2/registry"]
                  override_path = true
                  client = [["/abs/client.cert", "client.key"], "both.pem"]
                """);
        List<RegistryEndpoint> e = endpoints("registry.example");
        assertEquals(List.of("https://zeta.mirror/v2", "http://alpha.mirror:5000/prefix/v2", "https://raw.mirror/api/v2/registry", "https://registry.example/v2"),
                e.stream().map(x -> x.base().toString()).toList());
        assertEquals(List.of(true, true, true, false), e.stream().map(RegistryEndpoint::mirror).toList());
        assertEquals(Set.of(Capability.PULL), e.get(0).capabilities());
        assertEquals(Map.of("X-Mirror", List.of("zeta")), e.get(0).headers());
        assertEquals(Set.of(Capability.PULL, Capability.RESOLVE), e.get(1).capabilities());
        assertTrue(e.get(1).plainHttp());
        assertEquals(List.of(d.resolve("ca.crt")), e.get(1).tls().cas());
        assertEquals(Boolean.FALSE, e.get(1).tls().skipVerify());
        assertEquals(RegistryEndpoint.ALL, e.get(2).capabilities());
        assertEquals(List.of(new ClientPair(Path.of("/abs/client.cert"), d.resolve("client.key")), new ClientPair(d.resolve("both.pem"), null)),
                e.get(2).tls().clientPairs());
        assertEquals("alpha.mirror:5000", e.get(1).host());
    }

    @Test
    void theServerKeepsTopLevelSettingsAndDefaultsToTheRegistry() throws IOException {
        hostsToml("registry.example_5000_", """
                ca = ["a.crt", "/etc/b.crt"]
                skip_verify = true
                [header]
                  Authorization-Extra = ["one", "two"]
                [host."mirror.example"]
                """);
        List<RegistryEndpoint> e = endpoints("registry.example:5000");
        assertEquals(URI.create("https://mirror.example/v2"), e.get(0).base(), "a URL without a scheme is https");
        RegistryEndpoint server = e.get(1);
        assertEquals(URI.create("https://registry.example:5000/v2"), server.base());
        assertEquals(2, server.tls().cas().size());
        assertEquals(Boolean.TRUE, server.tls().skipVerify());
        assertEquals(List.of("one", "two"), server.headers().get("Authorization-Extra"));
    }

    @Test
    void directoriesAreLookedUpAsContainerdDoes() throws IOException {
        Path second = Files.createDirectories(root.resolve("second"));
        Path first = Files.createDirectories(root.resolve("first"));
        Files.createDirectories(second.resolve("registry.example:5000"));
        Files.writeString(second.resolve("registry.example:5000/hosts.toml"), "server = \"https://second\"\n");
        Files.createDirectories(first.resolve("_default"));
        Files.writeString(first.resolve("_default/hosts.toml"), "server = \"https://first-default\"\n");
        HostsDir dirs = HostsDir.parse(first + ":" + second);
        assertEquals(URI.create("https://first-default/v2"), dirs.endpoints("registry.example:5000", false).getLast().base(),
                "the first root with a directory for the host wins, its _default included");
        HostsDir onlySecond = HostsDir.parse(second.toString());
        assertEquals(URI.create("https://second/v2"), onlySecond.endpoints("registry.example:5000", false).getLast().base());
        Files.createDirectories(second.resolve("registry.example_5000_"));
        Files.writeString(second.resolve("registry.example_5000_/hosts.toml"), "server = \"https://underscored\"\n");
        assertEquals(URI.create("https://underscored/v2"), onlySecond.endpoints("registry.example:5000", false).getLast().base());
        Files.createDirectories(second.resolve("docker.io"));
        Files.writeString(second.resolve("docker.io/hosts.toml"), "[host.\"https://hub.mirror\"]\n");
        List<RegistryEndpoint> hub = onlySecond.endpoints("registry-1.docker.io", false);
        assertEquals(List.of(URI.create("https://hub.mirror/v2"), URI.create("https://registry-1.docker.io/v2")), hub.stream().map(RegistryEndpoint::base).toList());
    }

    @Test
    void withoutHostsTomlDockersCertsLayoutGivesTheTls() throws IOException {
        Path d = Files.createDirectories(root.resolve("registry.example"));
        Files.writeString(d.resolve("ca.crt"), "x");
        Files.writeString(d.resolve("client.cert"), "x");
        Files.writeString(d.resolve("client.key"), "x");
        Files.writeString(d.resolve("lonely.cert"), "x");
        Files.writeString(d.resolve("notes.txt"), "x");
        RegistryEndpoint e = endpoints("registry.example").getFirst();
        assertEquals(URI.create("https://registry.example/v2"), e.base());
        assertEquals(List.of(d.resolve("ca.crt")), e.tls().cas());
        assertEquals(List.of(new ClientPair(d.resolve("client.cert"), d.resolve("client.key")), new ClientPair(d.resolve("lonely.cert"), null)),
                e.tls().clientPairs());
    }

    @Test
    void malformedFilesNameTheFileAndKey() throws IOException {
        Path d = hostsToml("bad.example", "[host.\"https://m\"]\n  capabilities = [\"pull\", \"fly\"]\n");
        IOException e = assertThrows(HostsConfigException.class, () -> endpoints("bad.example"));
        assertTrue(e.getMessage().contains(d.resolve("hosts.toml").toString()), e.getMessage());
        assertTrue(e.getMessage().contains("host.\"https://m\".capabilities") && e.getMessage().contains("fly"), e.getMessage());

        hostsToml("bad.example", "skip_verify = \"yes\"\n");
        e = assertThrows(HostsConfigException.class, () -> endpoints("bad.example"));
        assertTrue(e.getMessage().contains("\"skip_verify\""), e.getMessage());

        hostsToml("bad.example", "server = \"https://ok\"\n[host.\"https://m\"\n");
        e = assertThrows(HostsConfigException.class, () -> endpoints("bad.example"));
        assertTrue(e.getMessage().contains("not valid TOML"), e.getMessage());

        hostsToml("bad.example", "client = [[\"only-one\"]]\n");
        e = assertThrows(HostsConfigException.class, () -> endpoints("bad.example"));
        assertTrue(e.getMessage().contains("\"client\""), e.getMessage());

        hostsToml("bad.example", "[host.\"https://user:pw@m\"]\n");
        e = assertThrows(HostsConfigException.class, () -> endpoints("bad.example"));
        assertTrue(e.getMessage().contains("user or password") && !e.getMessage().contains("pw@"), e.getMessage());

        hostsToml("bad.example", "[host.\"https://m\"]\n  header = { Host = \"other\" }\n");
        e = assertThrows(HostsConfigException.class, () -> endpoints("bad.example"));
        assertTrue(e.getMessage().contains("header.Host"), e.getMessage());

        hostsToml("bad.example", "sevrer = \"https://typo\"\n");
        e = assertThrows(HostsConfigException.class, () -> endpoints("bad.example"));
        assertTrue(e.getMessage().contains("\"sevrer\""), e.getMessage());
        assertFalse(e.getMessage().isEmpty());
    }
}
