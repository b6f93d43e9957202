package org.dedupsnapshotter.itest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A Kubernetes pull secret reaching lazy reads: the kubelet's image service endpoint is the daemon's CRI proxy
 * (cri.listen), which forwards to containerd 2.4's CRI and keeps each PullImage's credentials for the image's
 * repository. The registry is docker-registry with htpasswd; the daemon has NO docker config (DOCKER_CONFIG names
 * an empty directory), so every lazy read of the private image authenticates with the pull's credentials alone.
 * crictl pulls through the proxy with --creds (what the kubelet sends from a pull secret) and runs the pod through
 * containerd's runtime service; the container's reads fetch chunks on demand, also after a daemon restart.
 */
class CriPullSecretTest {
    static final String USER = "alice";
    static final String PASSWORD = "pull-secret-pw-7731";
    static final String WRONG = "wrong-pw-4409";
    static final int FILE = 6 << 20;
    static final ObjectMapper JSON = new ObjectMapper();

    static CriNode node;
    static TestEnv env;
    static Proc authRegistry;
    static int authPort;
    static Path criSock, noDockerConfig, proxyCrictl;

    @BeforeAll
    static void start() throws Exception {
        node = CriNode.start(Containerd.primary(), false);
        env = node.env;
        OciImage.push(env.registry(), "itest/pause", "1", List.of(Images.base().finish()), List.of("/bin/sh", "-c", CriPodTest.WAIT_FOR_TERM));
        startAuthRegistry();
        node.trustRegistry(authHost());

        // the daemon again, now with its CRI proxy, no docker config, and every chunk fetched when read (none ahead)
        criSock = env.dir.resolve("cri.sock");
        noDockerConfig = Files.createDirectories(env.dir.resolve("empty-docker-config"));
        env.stopDaemon();
        Path cfg = Files.writeString(env.dir.resolve("daemon-config.json"), """
                {"lazy": {"readDeadline": "20s", "prefetchConcurrency": 0, "readAhead": 0},
                 "cri": {"listen": "%s", "containerd": "%s"}}
                """.formatted(criSock, env.containerdSock));
        env.daemonArgs.addAll(List.of("--config", cfg.toString()));
        startDaemon();
        proxyCrictl = Files.writeString(node.dir.resolve("crictl-proxy.yaml"), """
                runtime-endpoint: unix://%s
                image-endpoint: unix://%s
                timeout: 300
                """.formatted(env.containerdSock, criSock));
    }

    @AfterAll
    static void stop() throws Exception {
        try {
            if (authRegistry != null) authRegistry.close();
        } finally {
            if (node != null) node.close();
        }
    }

    static String authHost() { return "127.0.0.1:" + authPort; }

    static void startAuthRegistry() throws Exception {
        Path htpasswd = Files.writeString(env.dir.resolve("htpasswd"), Htpasswd.line(USER, PASSWORD));
        authPort = TestEnv.freePort();
        authRegistry = DockerRegistry.start("docker-registry (htpasswd)", env.dir.resolve("auth-registry.yml"), env.dir.resolve("auth-registry.log"), authPort,
                DockerRegistry.config(env.dir.resolve("auth-registry"), authPort, """
                        auth:
                          htpasswd:
                            realm: itest
                            path: %s
                        """.formatted(htpasswd)));
    }

    static void startDaemon() throws Exception {
        env.startDaemon(Map.of("DOCKER_CONFIG", noDockerConfig.toString()));
    }

    /** crictl with the daemon's proxy as its image endpoint (containerd stays its runtime endpoint). */
    static Proc.Result viaProxy(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(CriNode.crictlBin().toString(), "--config", proxyCrictl.toString()));
        cmd.addAll(List.of(args));
        return Proc.run(Duration.ofMinutes(5), cmd);
    }

    /** busybox and four 6 MiB files (seed..seed+3), converted into the private registry by dedupctl with a docker config of the test's own. */
    static String privateLazyImage(String name, long seed) throws Exception {
        TarWriter t = new TarWriter().dir("./", TarWriter.Meta.of(0755)).dir("data", TarWriter.Meta.of(0755));
        for (int i = 0; i < 4; i++) t.file("data/f" + i, Images.random(seed + i, FILE), TarWriter.Meta.of(0644));
        String original = OciImage.push(env.registry(), "itest/" + name, "1", List.of(Images.base().finish(), t.finish()), List.of("/bin/sh"));
        Path testConfig = Files.createDirectories(env.dir.resolve("test-docker-config"));
        Files.writeString(testConfig.resolve("config.json"), "{\"auths\": {\"" + authHost() + "\": {\"auth\": \""
                + Base64.getEncoder().encodeToString((USER + ":" + PASSWORD).getBytes(StandardCharsets.UTF_8)) + "\"}}}");
        String converted = authHost() + "/itest/" + name + "-lazy:1";
        Proc.run(Duration.ofMinutes(5), List.of("env", "DOCKER_CONFIG=" + testConfig, TestEnv.TOP.resolve("bin/dedupctl").toString(),
                "convert", "--plain-http", original, converted)).orThrow("dedupctl convert into the private registry");
        return converted;
    }

    static String sha(long seed) throws Exception { return Images.sha256sum(Images.random(seed, FILE)); }

    /** Bytes the daemon fetched from registries for lazy layers (on demand, in the background, TOCs). */
    static long lazyFetched() throws Exception {
        JsonNode l = env.stats().path("lazy");
        return l.path("fetchedDemandBytes").asLong() + l.path("fetchedPrefetchBytes").asLong() + l.path("fetchedTocBytes").asLong();
    }

    /** The sum of the image's layer blobs' sizes (what a plain pull would download). */
    static long layerBytes(String ref) throws Exception {
        long sum = 0;
        for (JsonNode l : ImageRootfs.manifest(env, CriNode.K8S, ref).path("layers")) sum += l.path("size").asLong();
        return sum;
    }

    static long demandFetched() throws Exception { return env.stats().path("lazy").path("fetchedDemandBytes").asLong(); }

    static void assertSecretsNotLogged() throws IOException {
        try (var files = Files.list(env.dir)) {
            for (Path log : files.filter(p -> p.getFileName().toString().matches("daemon-.*\\.log|containerd\\.log")).toList()) {
                String text = Files.readString(log);
                for (String s : List.of(PASSWORD, WRONG, Base64.getEncoder().encodeToString((USER + ":" + PASSWORD).getBytes(StandardCharsets.UTF_8))))
                    assertFalse(text.contains(s), log + " contains a secret");
            }
        }
    }

    @Test
    void aPullSecretGivenThroughTheProxyServesLazyReadsAlsoAfterARestart() throws Exception {
        String ref = privateLazyImage("secret-app", 500);
        assertNotEquals(0, viaProxy("pull", ref).code(), "the private registry let an anonymous pull through");

        long fetched0 = lazyFetched();
        viaProxy("pull", "--creds", USER + ":" + PASSWORD, ref).orThrow("crictl pull --creds through the proxy");
        // lazy: containerd downloaded no layer blob, the daemon only TOCs
        List<String> content = List.of(ImageRootfs.ctr(env, CriNode.K8S, "content", "ls", "-q").split("\n"));
        for (String layer : ImageRootfs.layerDigests(env, CriNode.K8S, ref))
            assertFalse(content.contains(layer), "CRI downloaded layer blob " + layer);
        long image = layerBytes(ref);
        long atPull = lazyFetched() - fetched0;
        System.out.printf("CriPullSecretTest: the pull through the proxy fetched %d bytes of a %d-byte image%n", atPull, image);
        assertTrue(atPull < image / 10, "the pull fetched " + atPull + " bytes of a " + image + "-byte image");
        Path kept = env.dedupRoot.resolve("pull-secrets.json");
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(kept)));

        // the container's reads fetch chunks on demand with the pull secret (the daemon has no docker config)
        String pod = node.runPod("secret");
        String c = node.runContainer(pod, "secret-app", ref, "/bin/sh", "-c", "echo started; " + CriPodTest.WAIT_FOR_TERM);
        node.awaitLogs(c, "started", Duration.ofSeconds(60));
        long demand0 = demandFetched();
        String sum = node.crictl("exec", c, "sha256sum", "/data/f0");
        assertTrue(sum.contains(sha(500)), sum + "\n" + env.daemon.logTail());
        long f0 = demandFetched() - demand0;
        System.out.printf("CriPullSecretTest: reading f0 (%d bytes) fetched %d bytes on demand%n", FILE, f0);
        assertTrue(f0 >= FILE / 2, "f0 was not fetched on demand: " + env.stats().path("lazy"));

        // a pull with a wrong password is refused by the registry, and leaves the right secret in place
        Proc.Result wrong = viaProxy("pull", "--creds", USER + ":" + WRONG, ref);
        assertNotEquals(0, wrong.code(), wrong.out());
        String why = wrong.out().toLowerCase(Locale.ROOT);
        assertTrue(why.contains("401") || why.contains("unauthorized"), "not the registry's refusal: " + wrong.out());

        // after a restart the kept secret still serves demand reads
        env.stopDaemon();
        startDaemon();
        long demand1 = demandFetched();
        String sums = node.crictl("exec", c, "sha256sum", "/data/f2", "/data/f3");
        assertTrue(sums.contains(sha(502)) && sums.contains(sha(503)), sums + "\n" + env.daemon.logTail());
        long f23 = demandFetched() - demand1;
        System.out.printf("CriPullSecretTest: after the restart, reading f2 and f3 fetched %d bytes on demand%n", f23);
        assertTrue(f23 >= FILE, "f2 and f3 were not fetched on demand after the restart: " + env.stats().path("lazy"));

        // images, inspecti and rmi through the proxy
        assertTrue(viaProxy("images").orThrow("crictl images").out().contains(authHost() + "/itest/secret-app-lazy"));
        String inspected = viaProxy("inspecti", "-o", "json", ref).orThrow("crictl inspecti").out();
        JsonNode status = JSON.readTree(inspected.substring(inspected.indexOf('{'))).path("status");
        assertTrue(status.path("repoTags").toString().contains(ref), inspected);
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (node.crictlResult("rmp", "-f", pod).code() != 0 && System.nanoTime() < deadline) Thread.sleep(200); // containerd redials the restarted daemon
        viaProxy("rmi", ref).orThrow("crictl rmi through the proxy");
        assertFalse(viaProxy("images").orThrow("crictl images").out().contains(authHost() + "/itest/secret-app-lazy"), "the image is still listed after rmi");

        assertSecretsNotLogged();
    }
}
