package org.dedupsnapshotter.itest;

import org.dedupsnapshotter.lazy.registry.Credentials;
import org.dedupsnapshotter.lazy.registry.RegistryClient;
import org.dedupsnapshotter.lazy.registry.RegistryException;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A private registry: docker-registry with htpasswd (basic auth, plain HTTP on loopback, which it allows). Converted
 * images are pushed to it by dedupctl, pulled lazily by containerd (ctr --user) and read through the daemon, whose
 * credentials come from its own docker config (DOCKER_CONFIG; never root's): from an `auth` entry, and from a
 * credential helper (a script on the daemon's PATH). The password is rotated while the daemon runs: the next lazy
 * read gets a 401, the daemon reads its credentials again and goes on, without a restart.
 * Runs on containerd 2.4 (TestEnv's default).
 */
class RegistryAuthTest {
    static final String USER = "alice";
    static TestEnv env;
    static Proc authRegistry;
    static int authPort;
    static Path htpasswd;

    @BeforeAll
    static void start() throws Exception {
        // every chunk a test reads is fetched on demand, when it is read: none in the background, none read ahead
        env = TestEnv.fullWithConfig("{\"lazy\": {\"readDeadline\": \"20s\", \"prefetchConcurrency\": 0, \"readAhead\": 0}}");
        htpasswd = env.dir.resolve("htpasswd");
        setPassword("unused-yet");
        authPort = TestEnv.freePort();
        authRegistry = DockerRegistry.start("docker-registry (htpasswd)", env.dir.resolve("auth-registry.yml"), env.dir.resolve("auth-registry.log"), authPort,
                DockerRegistry.config(env.dir.resolve("auth-registry"), authPort, """
                        auth:
                          htpasswd:
                            realm: itest
                            path: %s
                        """.formatted(htpasswd)));
    }

    @AfterAll
    static void stop() throws Exception {
        try {
            if (authRegistry != null) authRegistry.close();
        } finally {
            if (env != null) env.close();
        }
    }

    static String authHost() { return "127.0.0.1:" + authPort; }

    /** docker-registry 2.8 reads its htpasswd file again when it changes: a rotation needs no registry restart. */
    static void setPassword(String password) throws IOException {
        Files.writeString(htpasswd, Htpasswd.line(USER, password));
    }

    static String authEntry(String password) {
        return "{\"auths\": {\"" + authHost() + "\": {\"auth\": \"" + Base64.getEncoder().encodeToString((USER + ":" + password).getBytes(StandardCharsets.UTF_8)) + "\"}}}";
    }

    /** `dedupctl convert` from the open registry into the private one, with the given docker config. */
    static String convert(TwoFileImage img, String name, Path configDir, String path) throws Exception {
        String converted = authHost() + "/itest/" + name + ":1";
        Proc.run(Duration.ofMinutes(5), List.of("env", "DOCKER_CONFIG=" + configDir, "PATH=" + path,
                TestEnv.TOP.resolve("bin/dedupctl").toString(), "convert", "--plain-http", img.original(), converted)).orThrow("dedupctl convert into the private registry");
        return converted;
    }

    /** The daemon started again with this docker config and PATH; waits until containerd's proxy reaches it again. */
    static void restartDaemonWith(Path configDir, String path) throws Exception {
        env.stopDaemon();
        env.startDaemon(Map.of("DOCKER_CONFIG", configDir.toString(), "PATH", path));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (env.ctrResult("snapshots", "--snapshotter", "dedup", "ls").code() != 0) {
            if (System.nanoTime() > deadline) throw new IllegalStateException("containerd did not reconnect to the daemon");
            Thread.sleep(200);
        }
    }

    /** ctr images pull into dedup, lazily: containerd gets the manifest with --user, the daemon reads with its own credentials. */
    static void lazyPull(String ref, String password) throws Exception {
        long absent = env.stats().path("lazy").path("absentChunks").asLong();
        env.ctr("images", "pull", "--plain-http", "--user", USER + ":" + password, "--snapshotter", "dedup", ref);
        assertTrue(env.stats().path("lazy").path("absentChunks").asLong() > absent, "the pull was not lazy: " + env.stats() + "\n" + env.daemon.logTail());
    }

    /** The registry refuses the old password (it rereads its htpasswd file: waits a little for that). */
    static void assertRefusedWith(String password) throws Exception {
        RegistryClient stale = new RegistryClient(authHost(), true, Optional.of(new Credentials(USER, password)), Duration.ofSeconds(10));
        for (int i = 0; ; i++) {
            try {
                stale.manifest("itest/none", "1");
            } catch (RegistryException e) {
                if (e.status() == 401) return;
            }
            if (i == 50) throw new AssertionError("the registry still takes the old password after 5 s");
            Thread.sleep(100);
        }
    }

    static void assertSecretsNotLogged(String... secrets) throws IOException {
        try (var logs = Files.list(env.dir)) {
            for (Path log : logs.filter(p -> p.getFileName().toString().startsWith("daemon-")).toList()) {
                String text = Files.readString(log);
                for (String s : secrets) assertFalse(text.contains(s), log + " contains a secret");
            }
        }
    }

    @Test
    void configAuthServesPullAndReadsAndARotatedPasswordWorksWithoutARestart() throws Exception {
        String path = System.getenv("PATH");
        setPassword("first-pw-a");
        Path cfg = env.dockerConfig("auth", authEntry("first-pw-a"));
        TwoFileImage img = TwoFileImage.push(env, "auth-src", 101);
        String converted = convert(img, "auth-lazy", cfg, path);
        restartDaemonWith(cfg, path);
        lazyPull(converted, "first-pw-a");
        long daemonPid = env.daemon.pid();

        Path target = Files.createDirectories(env.dir.resolve("view-auth"));
        try (AutoCloseable mounted = env.mountImage("dedup", converted, target)) {
            assertEquals(Images.sha256sum(img.first()), Images.sha256sum(Files.readAllBytes(target.resolve("data/first"))));

            setPassword("second-pw-a"); // rotated at the registry, then in the config
            Files.writeString(cfg.resolve("config.json"), authEntry("second-pw-a"));
            assertRefusedWith("first-pw-a");
            assertEquals(Images.sha256sum(img.second()), Images.sha256sum(Files.readAllBytes(target.resolve("data/second"))),
                    "the read after the rotation\n" + env.daemon.logTail());
        }
        assertEquals(daemonPid, env.daemon.pid(), "the daemon was not restarted");
        assertSecretsNotLogged("first-pw-a", "second-pw-a");
    }

    @Test
    void aCredentialHelperServesPullAndReadsAndItsRotatedSecretWorksWithoutARestart() throws Exception {
        Path bin = Files.createDirectories(env.dir.resolve("helper-bin"));
        Path secret = Files.writeString(env.dir.resolve("helper-secret"), "first-pw-b");
        Path asked = env.dir.resolve("helper-asked");
        Path helper = bin.resolve("docker-credential-itest");
        Files.writeString(helper, """
                #!/bin/sh
                [ "$1" = get ] || { echo "unsupported: $1" >&2; exit 1; }
                read -r url
                echo "$url" >> '%s'
                if [ "$url" = '%s' ]; then
                  printf '{"ServerURL":"%%s","Username":"%s","Secret":"%%s"}\\n' "$url" "$(cat '%s')"
                else
                  echo "credentials not found in native keychain"; exit 1
                fi
                """.formatted(asked, authHost(), USER, secret));
        Files.setPosixFilePermissions(helper, PosixFilePermissions.fromString("rwxr-xr-x"));
        String path = bin + ":" + System.getenv("PATH");
        setPassword("first-pw-b");
        // the config holds no secret at all: a stale `auths` entry is there to show the helper wins over it
        Path cfg = env.dockerConfig("helper", "{\"credHelpers\": {\"" + authHost() + "\": \"itest\"}, "
                + "\"auths\": {\"" + authHost() + "\": {\"auth\": \"" + Base64.getEncoder().encodeToString((USER + ":stale").getBytes()) + "\"}}}");
        TwoFileImage img = TwoFileImage.push(env, "helper-src", 202);
        String converted = convert(img, "helper-lazy", cfg, path);
        assertTrue(Files.readString(asked).contains(authHost()), "dedupctl convert did not ask the helper");
        long askedBefore = Files.readAllLines(asked).size();
        restartDaemonWith(cfg, path);
        lazyPull(converted, "first-pw-b");
        long daemonPid = env.daemon.pid();

        Path target = Files.createDirectories(env.dir.resolve("view-helper"));
        try (AutoCloseable mounted = env.mountImage("dedup", converted, target)) {
            assertEquals(Images.sha256sum(img.first()), Images.sha256sum(Files.readAllBytes(target.resolve("data/first"))), env.daemon.logTail());
            long askedByDaemon = Files.readAllLines(asked).size() - askedBefore;
            assertTrue(askedByDaemon >= 1, "the daemon did not ask the helper");

            setPassword("second-pw-b");
            Files.writeString(secret, "second-pw-b");
            assertRefusedWith("first-pw-b");
            assertEquals(Images.sha256sum(img.second()), Images.sha256sum(Files.readAllBytes(target.resolve("data/second"))),
                    "the read after the rotation\n" + env.daemon.logTail());
            assertTrue(Files.readAllLines(asked).size() - askedBefore > askedByDaemon, "the helper was not asked again after the 401");
        }
        assertEquals(daemonPid, env.daemon.pid(), "the daemon was not restarted");
        assertSecretsNotLogged("first-pw-b", "second-pw-b");
    }
}
