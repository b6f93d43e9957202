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

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A registry with token auth as Docker Hub has it: docker-registry 2.8 with `auth.token`, its realm a token service
 * the test runs ({@link TokenService}: JDK HttpServer on loopback, JWTs signed by a key whose openssl-made
 * certificate is the registry's rootcertbundle). Converted images are pushed by dedupctl, pulled lazily by
 * containerd 2.4 (ctr --refresh for an identity token, nothing for a public repository) and read in a mounted
 * snapshot through the daemon, whose credentials come from its own docker config (DOCKER_CONFIG): (a) an
 * `identitytoken` (an OAuth2 refresh token, traded at the realm by POST), (b) none, for a public repository (an
 * anonymous token), (c) an identity token revoked while the daemon runs, a new one written to its config: the read
 * after the registry's 401 works without a restart. No secret reaches the daemon's log.
 */
class RegistryTokenTest {
    static TestEnv env;
    static TokenService tokens;
    static Proc tokenRegistry;
    static int port;

    @BeforeAll
    static void start() throws Exception {
        // every chunk a test reads is fetched on demand, when it is read: none in the background, none read ahead
        env = TestEnv.fullWithConfig("{\"lazy\": {\"readDeadline\": \"20s\", \"prefetchConcurrency\": 0, \"readAhead\": 0}}");
        tokens = new TokenService(env.dir);
        port = TestEnv.freePort();
        tokenRegistry = DockerRegistry.start("docker-registry (token auth)", env.dir.resolve("token-registry.yml"), env.dir.resolve("token-registry.log"), port,
                DockerRegistry.config(env.dir.resolve("token-registry"), port, """
                        auth:
                          token:
                            realm: %s
                            service: %s
                            issuer: %s
                            rootcertbundle: %s
                        """.formatted(tokens.realm(), TokenService.SERVICE, TokenService.ISSUER, tokens.certFile)));
    }

    @AfterAll
    static void stop() throws Exception {
        try {
            if (tokenRegistry != null) tokenRegistry.close();
        } finally {
            try {
                if (tokens != null) tokens.close();
            } finally {
                if (env != null) env.close();
            }
        }
    }

    static String host() { return "127.0.0.1:" + port; }

    static String identityToken(String token) {
        return "{\"auths\": {\"" + host() + "\": {\"identitytoken\": \"" + token + "\"}}}";
    }

    /** `dedupctl convert` from the open registry into the token registry, with the given docker config. */
    static String convert(TwoFileImage img, String repo, Path configDir) throws Exception {
        String converted = host() + "/" + repo + ":1";
        Proc.run(Duration.ofMinutes(5), List.of("env", "DOCKER_CONFIG=" + configDir, TestEnv.TOP.resolve("bin/dedupctl").toString(),
                "convert", "--plain-http", img.original(), converted)).orThrow("dedupctl convert into the token registry");
        return converted;
    }

    /** The daemon started again with this docker config; waits until containerd's proxy reaches it again. */
    static void restartDaemonWith(Path configDir) throws Exception {
        env.stopDaemon();
        env.startDaemon(Map.of("DOCKER_CONFIG", configDir.toString(), "PATH", System.getenv("PATH")));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (env.ctrResult("snapshots", "--snapshotter", "dedup", "ls").code() != 0) {
            if (System.nanoTime() > deadline) throw new IllegalStateException("containerd did not reconnect to the daemon");
            Thread.sleep(200);
        }
    }

    /** ctr images pull into dedup, lazily; ctrAuth: ctr's own credentials (--refresh TOKEN, or none). */
    static void lazyPull(String ref, String... ctrAuth) throws Exception {
        long absent = env.stats().path("lazy").path("absentChunks").asLong();
        List<String> args = new ArrayList<>(List.of("images", "pull", "--plain-http"));
        args.addAll(List.of(ctrAuth));
        args.addAll(List.of("--snapshotter", "dedup", ref));
        env.ctr(args.toArray(String[]::new));
        assertTrue(env.stats().path("lazy").path("absentChunks").asLong() > absent, "the pull was not lazy: " + env.stats() + "\n" + env.daemon.logTail());
    }

    static void assertSecretsNotLogged(String... secrets) throws IOException {
        try (var logs = Files.list(env.dir)) {
            for (Path log : logs.filter(p -> p.getFileName().toString().startsWith("daemon-")).toList()) {
                String text = Files.readString(log);
                for (String s : secrets) assertFalse(text.contains(s), log + " contains a secret");
            }
        }
    }

    static String sha(Path file) throws Exception {
        return Images.sha256sum(Files.readAllBytes(file));
    }

    @Test
    void anIdentityTokenInTheDockerConfigServesPullAndLazyReads() throws Exception {
        tokens.grantRefreshToken("rt-a-1f5e");
        Path cfg = env.dockerConfig("identity", identityToken("rt-a-1f5e"));
        TwoFileImage img = TwoFileImage.push(env, "token-a-src", 301);
        String converted = convert(img, "itest/token-a", cfg);
        restartDaemonWith(cfg);
        long daemonTrades = tokens.count("POST refresh_token by dedup-snapshotter granted", "itest/token-a"), ctrTrades = tokens.count("by containerd-client granted");
        long anonymous = tokens.count("GET anonymous", "itest/token-a"); // the other tests share the service
        lazyPull(converted, "--refresh", "rt-a-1f5e");
        assertTrue(tokens.count("by containerd-client granted") > ctrTrades, "containerd did not trade the identity token: " + tokens.requests);

        Path target = Files.createDirectories(env.dir.resolve("view-token-a"));
        try (AutoCloseable mounted = env.mountImage("dedup", converted, target)) {
            assertEquals(Images.sha256sum(img.first()), sha(target.resolve("data/first")), env.daemon.logTail());
            assertEquals(Images.sha256sum(img.second()), sha(target.resolve("data/second")), env.daemon.logTail());
        }
        // the daemon (TOCs at the pull, chunks at the reads) traded the identity token from its docker config
        assertTrue(tokens.count("POST refresh_token by dedup-snapshotter granted", "itest/token-a") > daemonTrades,
                "the daemon did not trade its identity token: " + tokens.requests);
        assertEquals(anonymous, tokens.count("GET anonymous", "itest/token-a"), "nobody should have gone anonymous: " + tokens.requests);
        assertSecretsNotLogged("rt-a-1f5e");
    }

    @Test
    void aPublicRepositoryIsPulledAndReadAnonymouslyThroughAToken() throws Exception {
        tokens.grantRefreshToken("rt-b-pusher");
        tokens.publicRepository("itest/token-public");
        TwoFileImage img = TwoFileImage.push(env, "token-b-src", 401);
        String converted = convert(img, "itest/token-public", env.dockerConfig("pusher", identityToken("rt-b-pusher")));
        restartDaemonWith(env.dockerConfig("empty", "{}"));
        long anonymous = tokens.count("GET anonymous granted");
        lazyPull(converted);

        Path target = Files.createDirectories(env.dir.resolve("view-token-b"));
        try (AutoCloseable mounted = env.mountImage("dedup", converted, target)) {
            long afterPull = tokens.count("GET anonymous granted");
            assertEquals(Images.sha256sum(img.first()), sha(target.resolve("data/first")), env.daemon.logTail());
            assertEquals(Images.sha256sum(img.second()), sha(target.resolve("data/second")), env.daemon.logTail());
            assertTrue(afterPull > anonymous, "containerd pulled without an anonymous token: " + tokens.requests);
            assertTrue(tokens.requests.stream().anyMatch(r -> r.startsWith("GET anonymous granted") && r.contains("itest/token-public") && r.contains("pull")),
                    tokens.requests.toString());
        }
        // a private repository stays closed to the same anonymous client
        Proc.Result denied = env.ctrResult("images", "pull", "--plain-http", "--snapshotter", "dedup", host() + "/itest/token-a:1");
        assertTrue(denied.code() != 0, "an anonymous pull of a private repository worked:\n" + denied.out());
    }

    @Test
    void aRevokedIdentityTokenReplacedInTheConfigWorksAfterThe401WithoutARestart() throws Exception {
        tokens.grantRefreshToken("rt-c-old-77");
        Path cfg = env.dockerConfig("revoked", identityToken("rt-c-old-77"));
        TwoFileImage img = TwoFileImage.push(env, "token-c-src", 501);
        String converted = convert(img, "itest/token-c", cfg);
        Duration life = Duration.ofSeconds(8);
        tokens.tokenLifetime(life); // the daemon's access tokens die soon: it must come back with its identity token
        try {
            restartDaemonWith(cfg);
            lazyPull(converted, "--refresh", "rt-c-old-77");
            long daemonPid = env.daemon.pid();
            Path target = Files.createDirectories(env.dir.resolve("view-token-c"));
            try (AutoCloseable mounted = env.mountImage("dedup", converted, target)) {
                assertEquals(Images.sha256sum(img.first()), sha(target.resolve("data/first")), env.daemon.logTail());

                tokens.revokeRefreshToken("rt-c-old-77"); // revoked at the service, a new one written to the config
                tokens.grantRefreshToken("rt-c-new-88");
                Files.writeString(cfg.resolve("config.json"), identityToken("rt-c-new-88"));
                long refused = tokens.count("POST refresh_token by dedup-snapshotter refused");
                Thread.sleep(life.toMillis() + 1500); // the daemon's access token has expired: the registry answers 401
                assertEquals(Images.sha256sum(img.second()), sha(target.resolve("data/second")), "the read after the revocation\n" + env.daemon.logTail());
                assertTrue(tokens.count("POST refresh_token by dedup-snapshotter refused") > refused, "the daemon did not try its revoked token first: " + tokens.requests);
                assertTrue(tokens.requests.getLast().startsWith("POST refresh_token by dedup-snapshotter granted"), tokens.requests.toString());
            }
            assertEquals(daemonPid, env.daemon.pid(), "the daemon was not restarted");
            assertSecretsNotLogged("rt-c-old-77", "rt-c-new-88");
        } finally {
            tokens.tokenLifetime(Duration.ofMinutes(5));
        }
    }
}
