package org.dedupsnapshotter.itest;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Registries over TLS named through containerd's hosts.toml, for dedupctl convert/pull, containerd 2.4's own pull
 * (ctr images pull --hosts-dir) and the daemon's lazy reads (lazy.hostsDir): docker-registry with a certificate of
 * a CA the test makes (openssl), once also demanding a client certificate (http.tls.clientcas); the same registry
 * through an HTTP CONNECT proxy named in HTTPS_PROXY (ConnectProxy, a tiny tunnelling proxy of the test's own that
 * counts its tunnels); skip_verify; and the error when the CA is missing.
 */
class RegistryTlsTest {
    static final String NAME = "registry.tls.test";
    static TestEnv env;
    static Path pki, hosts;
    static final List<Proc> registries = new ArrayList<>();
    static int tlsPort, mtlsPort;

    @BeforeAll
    static void start() throws Exception {
        pki = Files.createTempDirectory("dedup-tls-pki");
        hosts = Files.createTempDirectory("dedup-tls-hosts");
        makeCertificates();
        // every chunk is read on demand (through the proxy when the daemon has one): none in the background
        env = TestEnv.fullWithConfig("{\"lazy\": {\"hostsDir\": \"" + hosts + "\", \"prefetchConcurrency\": 0, \"readAhead\": 0}}");
        tlsPort = TestEnv.freePort();
        registries.add(startRegistry("tls", tlsPort, ""));
        mtlsPort = TestEnv.freePort();
        registries.add(startRegistry("mtls", mtlsPort, "    clientcas:\n      - " + pki.resolve("ca.crt") + "\n"));
    }

    @AfterAll
    static void stop() throws Exception {
        try {
            for (Proc r : registries) r.close();
        } finally {
            try {
                if (env != null) env.close();
            } finally {
                delete(pki);
                delete(hosts);
            }
        }
    }

    private static void delete(Path dir) throws IOException {
        if (dir == null) return;
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted((a, b) -> b.getNameCount() - a.getNameCount()).toList()) Files.deleteIfExists(p);
        }
    }

    /** A CA, a server certificate for 127.0.0.1 and NAME, a client certificate; keys PKCS#8 (openssl 3's default). */
    static void makeCertificates() throws Exception {
        String script = """
                set -euo pipefail
                cd '%s'
                openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=dedup-itest-ca 2>/dev/null
                openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=%s 2>/dev/null
                printf 'subjectAltName=DNS:%s,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > server.ext
                openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile server.ext 2>/dev/null
                openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=dedup-itest-client 2>/dev/null
                printf 'extendedKeyUsage=clientAuth\\n' > client.ext
                openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.cert -days 2 -extfile client.ext 2>/dev/null
                """.formatted(pki, NAME, NAME);
        Proc.run(Duration.ofMinutes(1), List.of("/bin/bash", "-c", script)).orThrow("openssl");
    }

    static Proc startRegistry(String name, int port, String clientCas) throws Exception {
        return DockerRegistry.start("docker-registry (" + name + ")", env.dir.resolve(name + "-registry.yml"), env.dir.resolve(name + "-registry.log"), port,
                DockerRegistry.config(env.dir.resolve(name + "-registry"), port, """
                          tls:
                            certificate: %s
                            key: %s
                        %s""".formatted(pki.resolve("server.crt"), pki.resolve("server.key"), clientCas)));
    }

    /** hosts.toml for registry host (HOST:PORT) in the hosts directory root. */
    static void hostsToml(Path root, String host, String toml) throws IOException {
        Files.writeString(Files.createDirectories(root.resolve(host)).resolve("hosts.toml"), toml);
    }

    /** bin/dedupctl with extra environment. */
    static Proc.Result dedupctl(Map<String, String> environment, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("env"));
        environment.forEach((k, v) -> cmd.add(k + "=" + v));
        cmd.add(TestEnv.TOP.resolve("bin/dedupctl").toString());
        cmd.addAll(List.of(args));
        return Proc.run(Duration.ofMinutes(5), cmd);
    }

    long absent() throws Exception { return env.stats().path("lazy").path("absentChunks").asLong(); }

    /** Both files read in a container of ref (lazily, through the daemon) have the image's bytes. */
    void assertContainerReads(String ref, TwoFileImage img, String id) throws Exception {
        String out = env.ctr("run", "--rm", "--snapshotter", "dedup", ref, id, "/bin/sh", "-c", "sha256sum /data/first /data/second");
        assertTrue(out.contains(Images.sha256sum(img.first()) + "  /data/first"), out + "\n" + env.daemon.logTail());
        assertTrue(out.contains(Images.sha256sum(img.second()) + "  /data/second"), out + "\n" + env.daemon.logTail());
    }

    @Test
    void aCaNamedInHostsTomlServesConvertContainerdsPullAndLazyReads() throws Exception {
        String host = "127.0.0.1:" + tlsPort;
        hostsToml(hosts, host, "server = \"https://" + host + "\"\nca = \"" + pki.resolve("ca.crt") + "\"\n");
        TwoFileImage img = TwoFileImage.push(env, "tls-src", 301);
        String ref = host + "/itest/tls:1";
        // --plain-http is for the source on the plain loopback registry; hosts.toml's server makes the target https
        dedupctl(Map.of(), "convert", "--plain-http", "--hosts-dir", hosts.toString(), img.original(), ref).orThrow("dedupctl convert into the TLS registry");
        long before = absent();
        env.ctr("images", "pull", "--hosts-dir", hosts.toString(), "--snapshotter", "dedup", ref);
        assertTrue(absent() > before, "the pull was not lazy: " + env.stats());
        assertContainerReads(ref, img, "tls-run");
    }

    @Test
    void aClientCertificateFromHostsTomlIsPresented() throws Exception {
        String host = "127.0.0.1:" + mtlsPort;
        Path dir = Files.createDirectories(hosts.resolve(host));
        Files.copy(pki.resolve("client.cert"), dir.resolve("client.cert"));
        Files.copy(pki.resolve("client.key"), dir.resolve("client.key"));
        // relative paths are the host directory's, as containerd reads them
        hostsToml(hosts, host, "server = \"https://" + host + "\"\nca = \"" + pki.resolve("ca.crt") + "\"\nclient = [[\"client.cert\", \"client.key\"]]\n");
        TwoFileImage img = TwoFileImage.push(env, "mtls-src", 401);
        String ref = host + "/itest/mtls:1";
        dedupctl(Map.of(), "convert", "--plain-http", "--hosts-dir", hosts.toString(), img.original(), ref).orThrow("dedupctl convert into the mTLS registry");
        long before = absent();
        env.ctr("images", "pull", "--hosts-dir", hosts.toString(), "--snapshotter", "dedup", ref);
        assertTrue(absent() > before, "the pull was not lazy: " + env.stats());
        assertContainerReads(ref, img, "mtls-run");

        // without the client certificate the registry refuses, and the error says what is missing
        Path noClient = Files.createTempDirectory(env.dir, "hosts-no-client");
        hostsToml(noClient, host, "server = \"https://" + host + "\"\nca = \"" + pki.resolve("ca.crt") + "\"\n");
        Proc.Result r = dedupctl(Map.of(), "pull", "--hosts-dir", noClient.toString(), "--containerd", env.containerdSock.toString(), "--namespace", "mtls-none", ref);
        assertNotEquals(0, r.code(), r.out());
        assertTrue(r.out().contains("client certificate") || r.out().contains("certificate_required") || r.out().contains("bad_certificate"), r.out());
    }

    @Test
    void skipVerifyTrustsAnyCertificateAndWithoutItTheErrorSaysWhatToDo() throws Exception {
        String host = "127.0.0.1:" + tlsPort;
        TwoFileImage img = TwoFileImage.push(env, "skip-src", 501);
        String ref = host + "/itest/skip:1";
        Path withCa = Files.createTempDirectory(env.dir, "hosts-ca");
        hostsToml(withCa, host, "server = \"https://" + host + "\"\nca = \"" + pki.resolve("ca.crt") + "\"\n");
        dedupctl(Map.of(), "convert", "--plain-http", "--hosts-dir", withCa.toString(), img.original(), ref).orThrow("dedupctl convert");

        Path none = Files.createTempDirectory(env.dir, "hosts-none");
        Proc.Result r = dedupctl(Map.of(), "pull", "--hosts-dir", none.toString(), "--containerd", env.containerdSock.toString(), "--namespace", "tls-none", ref);
        assertNotEquals(0, r.code(), r.out());
        assertTrue(r.out().contains("not trusted") && r.out().contains("hosts.toml") && r.out().contains("skip_verify"), r.out());

        Path skip = Files.createTempDirectory(env.dir, "hosts-skip");
        hostsToml(skip, host, "server = \"https://" + host + "\"\nskip_verify = true\n");
        dedupctl(Map.of(), "pull", "--hosts-dir", skip.toString(), "--containerd", env.containerdSock.toString(), "--namespace", "tls-skip", ref)
                .orThrow("dedupctl pull with skip_verify");
    }

    @Test
    void httpsProxyCarriesConvertPullAndLazyReads() throws Exception {
        String host = NAME + ":" + tlsPort; // a name only the proxy resolves: the daemon reaches it through the proxy or not at all
        hostsToml(hosts, host, "server = \"https://" + host + "\"\nca = \"" + pki.resolve("ca.crt") + "\"\n");
        TwoFileImage img = TwoFileImage.push(env, "proxy-src", 601);
        String ref = host + "/itest/proxied:1";
        try (ConnectProxy proxy = new ConnectProxy()) {
            Map<String, String> viaProxy = Map.of("HTTPS_PROXY", proxy.url());
            dedupctl(viaProxy, "convert", "--plain-http", "--hosts-dir", hosts.toString(), img.original(), ref).orThrow("dedupctl convert through the proxy");
            assertTrue(proxy.tunnels.size() >= 1, "convert did not use the proxy");
            assertTrue(proxy.tunnels.stream().allMatch(host::equals), proxy.tunnels.toString());
            env.stopDaemon();
            env.startDaemon(viaProxy);
            try {
                waitForContainerd();
                long before = absent();
                dedupctl(viaProxy, "pull", "--hosts-dir", hosts.toString(), "--containerd", env.containerdSock.toString(), "--namespace", TestEnv.NS, ref)
                        .orThrow("dedupctl pull through the proxy");
                assertTrue(absent() > before, "the pull was not lazy: " + env.stats());
                int tunnelsBeforeReads = proxy.tunnels.size();
                assertContainerReads(ref, img, "proxy-run");
                assertTrue(proxy.tunnels.size() > tunnelsBeforeReads, "the daemon's lazy reads did not go through the proxy");
            } finally {
                env.stopDaemon();
                env.startDaemon();
                waitForContainerd();
            }
        }
    }

    static void waitForContainerd() throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (env.ctrResult("snapshots", "--snapshotter", "dedup", "ls").code() != 0) {
            if (System.nanoTime() > deadline) throw new IllegalStateException("containerd did not reconnect to the daemon");
            Thread.sleep(200);
        }
    }
}
