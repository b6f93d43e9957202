package org.dedupsnapshotter.itest;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The containerd snippet `scripts/install.sh snippet` gives for a containerd, its paths pointed at a daemon of the
 * test's own, makes that real containerd load the dedup proxy plugin, and `dedupctl check-config` passes on it and
 * names what a broken copy lacks. Every containerd 2.x the Go-built tools hold, and Debian's 1.6.
 */
class ContainerdConfigTest {
    private static final Pattern DEDUP_OK = Pattern.compile("(?m)^io\\.containerd\\.snapshotter\\.v1\\s+dedup\\s+\\S+\\s+ok\\s*$");

    private static TestEnv env;

    @BeforeAll
    static void daemonAndRegistry() throws Exception {
        env = TestEnv.daemonOnly();
        env.startRegistry();
    }

    @AfterAll
    static void tearDown() throws Exception {
        if (env != null) env.close();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.dedupsnapshotter.itest.Containerd#v2")
    void containerd2x(Containerd release) throws Exception {
        containerd2(release.bin("containerd"), release.bin("ctr"), "c" + release.minor().replace(".", ""));
    }

    /** 2.x: the v3 snippet; without its exports or its unpack_config entry check-config fails naming them, and the latter really matters. */
    private static void containerd2(Path containerd, Path ctr, String name) throws Exception {
        String snippet = snippetFor(containerd);
        assertTrue(snippet.contains("enable_remote_snapshot_annotations = \"true\""), "install.sh gives 2.x the v3 snippet:\n" + snippet);
        Path cfg = config(name, 3, snippet);
        try (Proc c = startContainerd(containerd, ctr, cfg)) {
            assertPluginOk(ctr, cfg);
            assertChecks(containerd, cfg, 0, "all required items are present");
            // the transfer service (ctr 2.x's pull) unpacks into dedup
            String ref = OciImage.push(env.registry(), "itest/config-" + name, "1", List.of(Images.base().finish()), List.of("/bin/sh"));
            ctr(ctr, cfg, "images", "pull", "--plain-http", "--snapshotter", "dedup", ref).orThrow("ctr images pull");
            assertFalse(dedupSnapshots(ctr, cfg).isEmpty(), "ctr pull unpacked nothing into dedup");
        }

        Path noExports = config(name + "-noexports", 3, snippet.replaceAll("(?m)^\\s*exports = .*$", ""));
        assertChecks(containerd, noExports, 1, "missing [proxy_plugins.dedup] exports: absent: add exports = {");

        String noUnpackSnippet = snippet.replaceAll("(?m)^\\[\\[plugins.\"io.containerd.transfer.v1.local\".unpack_config]]\\n(  .*\\n)*", "");
        assertFalse(noUnpackSnippet.contains("unpack_config"), noUnpackSnippet);
        Path noUnpack = config(name + "-nounpack", 3, noUnpackSnippet);
        assertChecks(containerd, noUnpack, 1, "missing [[plugins.\"io.containerd.transfer.v1.local\".unpack_config]]: absent");
        try (Proc c = startContainerd(containerd, ctr, noUnpack)) {
            assertPluginOk(ctr, noUnpack);
            // what the finding warns of: the transfer service refuses to unpack into a snapshotter it does not list
            String ref = OciImage.push(env.registry(), "itest/config-" + name + "-nounpack", "1", List.of(Images.base().finish()), List.of("/bin/sh"));
            Proc.Result pull = ctr(ctr, noUnpack, "images", "pull", "--plain-http", "--snapshotter", "dedup", ref);
            assertNotEquals(0, pull.code(), pull.out());
            assertTrue(pull.out().contains("no unpack platforms defined"), pull.out());
            assertTrue(Files.readString(c.log).contains("Unpack configuration not supported"), c.logTail());
            assertEquals(List.of(), dedupSnapshots(ctr, noUnpack));
        }
    }

    /** 1.6: the v2 snippet; without the proxy plugin's address check-config fails naming it. */
    @Test
    void containerd16() throws Exception {
        Path containerd = Path.of("/usr/bin/containerd"), ctr = Path.of("/usr/bin/ctr");
        String snippet = snippetFor(containerd);
        assertFalse(snippet.contains("exports"), "install.sh gives 1.6 the v2 snippet:\n" + snippet);
        Path cfg = config("c16", 2, snippet);
        try (Proc c = startContainerd(containerd, ctr, cfg)) {
            assertPluginOk(ctr, cfg);
            assertChecks(containerd, cfg, 0, "all required items are present");
        }
        Path noAddress = config("c16-noaddress", 2, snippet.replaceAll("(?m)^\\s*address = .*$", ""));
        assertChecks(containerd, noAddress, 1, "missing [proxy_plugins.dedup] address: absent");
    }

    /** install.sh's snippet for this containerd, pointed at the test's daemon. */
    private static String snippetFor(Path containerd) throws Exception {
        String s = Proc.run(Duration.ofMinutes(1), List.of("bash", TestEnv.TOP.resolve("scripts/install.sh").toString(), "snippet", containerd.toString()))
                .orThrow("install.sh snippet").out();
        return s.replace("/run/containerd/dedup-snapshotter.sock", env.dedupSock.toString()).replace("/var/lib/dedup-snapshotter", env.dedupRoot.toString());
    }

    /** A containerd config of its own root, state and sockets under the env's dir, with CRI off, then the snippet. */
    private static Path config(String name, int version, String snippet) throws Exception {
        Path d = Files.createDirectories(env.dir.resolve(name));
        List<String> disabled = new ArrayList<>(List.of("io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"));
        if (version >= 3) disabled.addAll(List.of("io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime"));
        String header = """
                version = %2$d
                root = "%1$s/root"
                state = "%1$s/state"
                disabled_plugins = [%3$s]
                [grpc]
                  address = "%1$s/c.sock"
                [ttrpc]
                  address = "%1$s/c.sock.ttrpc"
                [debug]
                  address = "%1$s/debug.sock"
                """.formatted(d, version, String.join(", ", disabled.stream().map(p -> "\"" + p + "\"").toList()));
        return Files.writeString(d.resolve("config.toml"), header + snippet);
    }

    private static Path sock(Path cfg) { return cfg.resolveSibling("c.sock"); }

    private static Proc startContainerd(Path containerd, Path ctr, Path cfg) throws Exception {
        Proc p = Proc.start("containerd", cfg.resolveSibling("containerd.log"), List.of(containerd.toString(), "--config", cfg.toString()),
                Map.of("DEDUP_SNAPSHOTTER_CONFIG", env.nodeConfig().toString()));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (ctr(ctr, cfg, "version").code() != 0) {
            if (!p.alive() || System.nanoTime() > deadline) {
                p.close();
                throw new IllegalStateException("containerd did not start:\n" + p.logTail());
            }
            Thread.sleep(100);
        }
        return p;
    }

    private static Proc.Result ctr(Path ctr, Path cfg, String... args) throws Exception {
        // a namespace per containerd: they share one daemon, and a fresh containerd numbers its snapshot keys from 1 again
        String namespace = TestEnv.NS + "-" + cfg.getParent().getFileName();
        List<String> cmd = new ArrayList<>(List.of(ctr.toString(), "--address", sock(cfg).toString(), "-n", namespace));
        cmd.addAll(List.of(args));
        return Proc.run(Duration.ofMinutes(2), cmd);
    }

    /** The snapshots containerd has in dedup (their keys; ctr's header and warnings left out). */
    private static List<String> dedupSnapshots(Path ctr, Path cfg) throws Exception {
        return ctr(ctr, cfg, "snapshots", "--snapshotter", "dedup", "ls").orThrow("ctr snapshots ls").out().lines().filter(l -> l.startsWith("sha256:")).toList();
    }

    private static void assertPluginOk(Path ctr, Path cfg) throws Exception {
        String plugins = ctr(ctr, cfg, "plugins", "ls").orThrow("ctr plugins ls").out();
        assertTrue(DEDUP_OK.matcher(plugins).find(), "containerd has no dedup snapshotter ok:\n" + plugins);
    }

    private static void assertChecks(Path containerd, Path cfg, int code, String line) throws Exception {
        Proc.Result r = TestEnv.cli("check-config", "--config", cfg.toString(), "--containerd-bin", containerd.toString());
        assertEquals(code, r.code(), r.out());
        assertTrue(r.out().contains(line), "check-config says \"" + line + "\":\n" + r.out());
        if (code == 0) assertTrue(r.out().contains("(a daemon answers there)"), r.out());
    }
}
