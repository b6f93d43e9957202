package org.dedupsnapshotter.itest;

import org.dedupsnapshotter.sys.Libc;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The release tarball (make dist) as an operator uses it: installed into a fresh root (DESTDIR) by the install.sh it
 * carries, the daemon and dedupctl run from there with nothing of a build on PATH (no JDK, Maven or Go; a `java`
 * that must not be called first on PATH), only on the runtime the tarball ships and from the AOT caches trained with
 * it, and a containerd 2.x configured with the snippet the tarball ships pulls an image through the daemon.
 */
class DistInstallTest {
    /** What a node's PATH holds, with none of the build's tools (the build's JDK, Maven and Go are elsewhere). */
    static final String NODE_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

    /** The tarball make dist wrote (make test makes it before the itests); made here when run alone. */
    static Path tarball() throws Exception {
        String name = "dedup-snapshotter-" + VersionAndHelpTest.projectVersion() + "-linux-" + (System.getProperty("os.arch").equals("aarch64") ? "arm64" : "amd64") + ".tar.gz";
        Path t = TestEnv.TOP.resolve("build/dist").resolve(name);
        if (!Files.exists(t)) {
            Proc.Result r = Proc.run(Duration.ofMinutes(10), List.of("bash", TestEnv.TOP.resolve("scripts/dist.sh").toString()));
            assertEquals(0, r.code(), "make dist:\n" + r.out());
        }
        assertTrue(Files.exists(t), t + " not made");
        return t;
    }

    /** cmd under a bare environment: PATH = pathHead + the node's PATH, plus env (no JAVA_HOME unless given). */
    static List<String> bare(String pathHead, Map<String, String> env, String... cmd) {
        List<String> c = new ArrayList<>(List.of("/usr/bin/env", "-i", "PATH=" + pathHead + NODE_PATH));
        env.forEach((k, v) -> c.add(k + "=" + v));
        c.addAll(List.of(cmd));
        return c;
    }

    @Test
    void tarballInstallsAndRunsWithItsOwnRuntimeOnly() throws Exception {
        Path tarball = tarball();
        Path dir = Files.createTempDirectory("dedup-itest-dist-");
        Path dest = dir.resolve("root"), dedupRoot = dir.resolve("dedup"), sock = dir.resolve("dedup.sock"), ctrSock = dir.resolve("containerd.sock");
        Proc daemon = null, containerd = null;
        try (TestEnv registry = TestEnv.registryOnly()) {
            // a JDK's, Maven's and Go's commands first on PATH (java also as JAVA_HOME) that leave a mark if anything
            // calls them: the node's /usr/bin has Debian's java 17, mvn and go, which the release must not need
            Path marker = dir.resolve("fake-tool-called");
            Path fakeHome = Files.createDirectories(dir.resolve("fake-jdk/bin")).getParent();
            for (String tool : List.of("java", "javac", "jlink", "mvn", "go")) {
                Files.writeString(fakeHome.resolve("bin/" + tool), "#!/bin/sh\necho " + tool + " >> " + marker + "\nexit 99\n");
                Files.setPosixFilePermissions(fakeHome.resolve("bin/" + tool), PosixFilePermissions.fromString("rwxr-xr-x"));
            }
            String fakePath = fakeHome.resolve("bin") + ":";

            Proc.Result install = Proc.run(Duration.ofMinutes(5),
                    bare(fakePath, Map.of("DESTDIR", dest.toString(), "DEDUP_INSTALL_TRAIN", "1"), "bash", TestEnv.TOP.resolve("scripts/install.sh").toString(), "--from", tarball.toString()));
            assertEquals(0, install.code(), install.out());
            Path home = dest.resolve("usr/local/lib/dedup-snapshotter");
            // every JNI library the launchers point java.library.path at (extract-natives.sh): zstd-jni's serves "compression": "zstd"
            for (String p : List.of("runtime/bin/java", "lib/dedup-daemon.jar", "lib/native/libsqlitejdbc.so", "lib/native/liblz4-java.so", "lib/native/libzstd-jni.so",
                    "bin/dedup-fdholder", "libexec/dedup-java.sh"))
                assertTrue(Files.exists(home.resolve(p)), p + " not installed");
            for (String p : List.of("usr/local/bin/dedup-runc", "lib/systemd/system/dedup-snapshotter.service", "etc/dedup-snapshotter/config.json",
                    "usr/local/share/doc/dedup-snapshotter/containerd-snippet-v3.toml"))
                assertTrue(Files.exists(dest.resolve(p)), p + " not installed");
            // the AOT caches are in the tarball when it was built as root (aot-train.sh): then they must be used
            boolean aot = Files.exists(home.resolve("lib/dedup-daemon.aot")) && Files.exists(home.resolve("lib/dedupctl.aot"));
            assertEquals(aot, Libc.geteuid() == 0, "AOT caches in the release iff it was built as root");
            // a release's cache goes to every node that installs it, so it has no address of its own; install.sh trains the
            // caches again on the node it installs on (here even staged: DEDUP_INSTALL_TRAIN=1), the daemon's for an
            // address of the node's own, readable by root only (decision 80)
            Proc.Result listing = Proc.run(Duration.ofMinutes(1), List.of("tar", "-tzf", tarball.toString()));
            assertTrue(listing.out().contains("/lib/dedup-daemon.jar") && !listing.out().contains("dedup-daemon.aot.base"), listing.out());
            Path base = home.resolve("lib/dedup-daemon.aot.base");
            assertEquals(aot, Files.exists(base), "install.sh trained the daemon's cache for this node iff root");
            if (aot) assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(home.resolve("lib/dedup-daemon.aot"))));
            // -XX:AOTMode=on: the JVM refuses to start unless it can use the cache (a cache from another JVM, moved
            // jars, a damaged file): the caches trained in build/dist work from the installed runtime and jars
            Map<String, String> aotOn = aot ? Map.of("DEDUP_NETTY_OPTS", "-Dio.netty.jfr.enabled=false -XX:AOTMode=on") : Map.of();

            String version = VersionAndHelpTest.projectVersion();
            Proc.Result v = Proc.run(Duration.ofMinutes(1), bare(fakePath, aotOn, home.resolve("bin/dedupctl").toString(), "--version"));
            assertEquals(0, v.code(), v.out());
            assertTrue(v.out().strip().startsWith("dedupctl " + version + " (Java 25"), v.out());
            Map<String, String> withJavaHome = new java.util.HashMap<>(aotOn);
            withJavaHome.put("JAVA_HOME", fakeHome.toString());
            withJavaHome.put("DEDUP_JAVA_HOME", fakeHome.toString());
            v = Proc.run(Duration.ofMinutes(1), bare(fakePath, withJavaHome, home.resolve("bin/dedup-snapshotter").toString(), "--version"));
            assertEquals(0, v.code(), v.out());
            assertTrue(v.out().strip().startsWith("dedup-snapshotter " + version + " (Java 25"), v.out());

            // the installed daemon, on the installed config (its own root, socket and a free metrics port)
            Path cfg = dir.resolve("config.json");
            Files.writeString(cfg, Files.readString(dest.resolve("etc/dedup-snapshotter/config.json")).replace("127.0.0.1:9466", "127.0.0.1:0"));
            daemon = Proc.start("dedup-snapshotter", dir.resolve("daemon.log"), bare(fakePath, aotOn, home.resolve("bin/dedup-snapshotter").toString(),
                    "--config", cfg.toString(), "--root", dedupRoot.toString(), "--address", sock.toString()));
            awaitSocket(daemon, sock);
            // the launcher execs the bundled runtime's java (env and the launcher exec too: the pid is the JVM's)
            assertEquals(home.resolve("runtime/bin/java").toRealPath(), Files.readSymbolicLink(Path.of("/proc/" + daemon.pid() + "/exe")));
            if (aot) {
                long at = Long.decode(Files.readString(base).strip()), end = at + Files.size(home.resolve("lib/dedup-daemon.aot"));
                assertTrue(AotCacheLauncherTest.cacheMappings(daemon.pid()).stream().anyMatch(m -> m[0] >= at && m[1] <= end),
                        "the installed daemon maps its cache where install.sh trained it for, " + Long.toHexString(at));
            }
            Proc.Result stats = Proc.run(Duration.ofMinutes(1), bare(fakePath, aotOn, home.resolve("bin/dedupctl").toString(), "--address", sock.toString(), "stats"));
            assertEquals(0, stats.code(), stats.out());

            // containerd 2.x with the snippet the release ships, its paths made this test's
            Containerd release = Containerd.primary();
            String snippet = Files.readString(dest.resolve("usr/local/share/doc/dedup-snapshotter/containerd-snippet-v3.toml"))
                    .replace("/run/containerd/dedup-snapshotter.sock", sock.toString()).replace("/var/lib/dedup-snapshotter", dedupRoot.toString());
            assertTrue(snippet.contains("address = \"" + sock + "\"") && snippet.contains("snapshotter = \"dedup\""), snippet);
            Path ctrCfg = Files.writeString(dir.resolve("containerd.toml"), """
                    version = 3
                    root = "%1$s/containerd/root"
                    state = "%1$s/containerd/state"
                    disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime"]
                    [grpc]
                      address = "%2$s"
                    [ttrpc]
                      address = "%2$s.ttrpc"
                    [debug]
                      address = "%1$s/containerd-debug.sock"
                      level = "info"
                    """.formatted(dir, ctrSock) + snippet);
            containerd = Proc.start("containerd", dir.resolve("containerd.log"), List.of(release.bin("containerd").toString(), "--config", ctrCfg.toString()),
                    Map.of("PATH", release.binDir() + ":" + System.getenv("PATH")));
            awaitSocket(containerd, ctrSock);
            List<String> ctr = List.of(release.bin("ctr").toString(), "--address", ctrSock.toString(), "-n", "itest");
            Proc.Result plugins = null;
            for (int i = 0; i < 100; i++) {
                plugins = Proc.run(Duration.ofMinutes(1), Stream.concat(ctr.stream(), Stream.of("plugins", "ls")).toList());
                if (plugins.code() == 0) break;
                Thread.sleep(200);
            }
            assertTrue(plugins.out().lines().anyMatch(l -> l.matches("io\\.containerd\\.snapshotter\\.v1\\s+dedup\\s+.*\\bok\\s*")),
                    "containerd lists the dedup snapshotter as ok:\n" + plugins.out() + "\n" + containerd.logTail());
            String ref = OciImage.push(registry.registry(), "itest/dist", "1", List.of(Images.base().finish()), List.of("/bin/sh"));
            Proc.Result pull = Proc.run(Duration.ofMinutes(5), Stream.concat(ctr.stream(), Stream.of("images", "pull", "--plain-http", "--snapshotter", "dedup", ref)).toList());
            assertEquals(0, pull.code(), pull.out() + "\n" + daemon.logTail());
            Proc.Result snaps = Proc.run(Duration.ofMinutes(1), Stream.concat(ctr.stream(), Stream.of("snapshots", "--snapshotter", "dedup", "ls")).toList());
            assertTrue(snaps.out().contains("Committed"), "the pull made a snapshot in dedup:\n" + snaps.out());

            assertFalse(Files.exists(marker), () -> "a tool outside the release was called: " + readQuietly(marker));
        } finally {
            List<Throwable> errors = new ArrayList<>();
            for (Proc p : new Proc[] {containerd, daemon}) {
                try {
                    if (p != null) p.close();
                } catch (Exception e) {
                    errors.add(e);
                }
            }
            killFdHolders(dedupRoot);
            for (String m : TestEnv.mountsUnder(dir)) Libc.umount2(m, Libc.MNT_DETACH);
            Proc.run(Duration.ofMinutes(2), List.of("rm", "-rf", "--one-file-system", dir.toString()));
            if (!errors.isEmpty()) throw new AssertionError("teardown", errors.getFirst());
        }
    }

    private static void awaitSocket(Proc p, Path sock) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (!Files.exists(sock)) {
            if (!p.alive()) throw new IllegalStateException(p.name + " exited before listening:\n" + p.logTail());
            if (System.nanoTime() > deadline) throw new IllegalStateException(p.name + " did not listen:\n" + p.logTail());
            Thread.sleep(50);
        }
    }

    /** A dedup-fdholder of this test's daemon (its pid file, its first argument, lies in our root), by pid. */
    private static void killFdHolders(Path root) throws IOException {
        try (var procs = Files.list(Path.of("/proc"))) {
            for (Path p : procs.filter(x -> x.getFileName().toString().chars().allMatch(Character::isDigit)).toList()) {
                try {
                    if (!Files.readSymbolicLink(p.resolve("exe")).toString().endsWith("dedup-fdholder")) continue;
                    String[] argv = new String(Files.readAllBytes(p.resolve("cmdline")), StandardCharsets.UTF_8).split("\0");
                    if (argv.length > 1 && Path.of(argv[1]).startsWith(root)) Libc.kill(Integer.parseInt(p.getFileName().toString()), 9);
                } catch (IOException gone) {
                    // exited meanwhile, or not ours to read
                }
            }
        }
    }

    private static String readQuietly(Path p) {
        try {
            return Files.readString(p).strip();
        } catch (java.io.IOException e) {
            return e.toString();
        }
    }
}
