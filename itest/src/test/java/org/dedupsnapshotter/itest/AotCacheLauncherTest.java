package org.dedupsnapshotter.itest;

import org.dedupsnapshotter.sys.Libc;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystem;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Collections;
import java.util.Comparator;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The launchers and the JDK AOT cache (docs/decisions.md 37): a cache beside the jars is used; an absent, stale
 * (a jar changed since training) or damaged one still gives a normal start with clean output. On a copy of the
 * launchers and of the built jars, with a small dedupctl cache trained here, so the build's caches stay as
 * they are. The daemon's cache maps at the address it was trained for (decision 80); a training that fails keeps the
 * caches there were.
 */
class AotCacheLauncherTest {
    private Path dir, lib, bin, config;

    @BeforeEach
    void layout() throws IOException {
        dir = Files.createTempDirectory("dedup-itest-aot-");
        bin = Files.createDirectories(dir.resolve("bin"));
        lib = Files.createDirectories(dir.resolve("build/lib"));
        for (String f : List.of("dedupctl", "dedup-snapshotter", "dedup-java.sh"))
            Files.copy(TestEnv.TOP.resolve("bin").resolve(f), bin.resolve(f), StandardCopyOption.COPY_ATTRIBUTES);
        try (Stream<Path> jars = Files.list(TestEnv.TOP.resolve("build/lib"))) {
            // copies, not links: the JVM checks a cache against the jars it resolves links to (the build's, unchanged)
            for (Path j : jars.filter(p -> p.toString().endsWith(".jar")).toList()) Files.copy(j, lib.resolve(j.getFileName()));
        }
        config = TestEnv.TOP.resolve("config/config.json");
    }

    @AfterEach
    void cleanUp() throws IOException {
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path p : all.sorted(Comparator.reverseOrder()).toList()) Files.delete(p);
        }
    }

    @Test
    void cacheUsedWhenValidAndIgnoredWhenAbsentStaleOrDamaged() throws Exception {
        Path cache = lib.resolve("dedupctl.aot");
        Run train = dedupctl(Map.of("DEDUP_AOT_TRAIN", cache.toString()));
        assertEquals(0, train.code, train.all());
        assertTrue(Files.size(cache) > 0, "the training run wrote no cache:\n" + train.all());

        Path classLog = dir.resolve("classes.log");
        Run used = dedupctl(Map.of("JAVA_TOOL_OPTIONS", "-Xlog:class+load=info:file=" + classLog));
        assertClean(used);
        assertTrue(Files.readString(classLog).contains("org.dedupsnapshotter.cli.DedupCtl source: shared objects file"),
                "the launcher did not use the valid cache " + cache);

        Path kept = Files.move(cache, dir.resolve("kept.aot"));
        assertClean(dedupctl(Map.of()));

        // stale: a jar rebuilt in place since training (newer than the cache; JDK 25 itself does not notice)
        Files.copy(kept, cache);
        Path cli = lib.resolve("dedup-cli.jar");
        try (FileSystem zip = FileSystems.newFileSystem(cli, Map.of())) {
            Files.writeString(zip.getPath("changed-since-training.txt"), "a rebuilt jar\n");
        }
        Files.deleteIfExists(classLog);
        Run stale = dedupctl(Map.of("JAVA_TOOL_OPTIONS", "-Xlog:class+load=info:file=" + classLog));
        assertClean(stale);
        assertFalse(Files.readString(classLog).contains("org.dedupsnapshotter.cli.DedupCtl source: shared objects file"),
                "classes of a stale cache were used instead of the jar's");

        // damaged: not a cache at all; the JVM's note goes to stderr, never into a command's output
        byte[] junk = new byte[64 << 10];
        new Random(20).nextBytes(junk);
        Files.write(cache, junk);
        Run damaged = dedupctl(Map.of());
        assertEquals(0, damaged.code, damaged.all());
        assertEquals(config + ": ok", damaged.out.strip(), "the output of a start with a damaged cache");

        // the daemon's launcher too: a damaged dedup-daemon.aot still starts the JVM
        Files.write(lib.resolve("dedup-daemon.aot"), junk);
        Run daemon = run(List.of(bin.resolve("dedup-snapshotter").toString(), "--help"), Map.of());
        assertEquals(0, daemon.code, daemon.all());
        assertTrue(daemon.out.startsWith("usage: dedup-snapshotter"), daemon.all());
    }

    /**
     * The daemon's cache, trained on the node, is written for an address of its own, drawn at training and readable
     * by root only, and the launcher maps it there unrelocated (decision 80); DEDUP_AOT_RELOCATION=1 relocates it as
     * the JDK does. Trained here by scripts/aot-train.sh on an installed-style copy (bin/, lib/): make test rebuilds
     * the jars after make build's training, so by the itests the build's caches are older than its jars and unused.
     */
    @Test
    void theDaemonsCacheMapsAtTheAddressItWasTrainedFor() throws Exception {
        assertEquals(0, Libc.geteuid(), "the caches are trained as root, as the itests run");
        Path node = Files.createDirectories(dir.resolve("node")), nodeBin = Files.createDirectories(node.resolve("bin")),
                nodeLib = Files.createDirectories(node.resolve("lib/native")).getParent();
        for (String f : List.of("dedupctl", "dedup-snapshotter", "dedup-java.sh", "dedup-fdholder"))
            Files.copy(TestEnv.TOP.resolve("bin").resolve(f), nodeBin.resolve(f), StandardCopyOption.COPY_ATTRIBUTES);
        try (Stream<Path> jars = Files.list(lib); Stream<Path> natives = Files.list(TestEnv.TOP.resolve("build/lib/native"))) {
            for (Path j : jars.filter(p -> p.toString().endsWith(".jar")).toList()) Files.copy(j, nodeLib.resolve(j.getFileName()));
            for (Path n : natives.toList()) Files.copy(n, nodeLib.resolve("native").resolve(n.getFileName()));
        }
        Run train = run(List.of("bash", TestEnv.TOP.resolve("scripts/aot-train.sh").toString(), node.toString()), Map.of());
        Path cache = nodeLib.resolve("dedup-daemon.aot"), baseFile = nodeLib.resolve("dedup-daemon.aot.base");
        assertTrue(train.code == 0 && Files.exists(cache) && Files.exists(baseFile), "aot-train.sh trained no daemon cache with its address:\n" + train.all());
        for (Path f : List.of(cache, baseFile))
            assertTrue(Collections.disjoint(Files.getPosixFilePermissions(f), EnumSet.of(PosixFilePermission.GROUP_READ, PosixFilePermission.OTHERS_READ)),
                    f + " is readable by others: " + PosixFilePermissions.toString(Files.getPosixFilePermissions(f)));
        long base = Long.decode(Files.readString(baseFile).strip());
        assertEquals(0, base % (16L << 20), "the JVM aligns a cache's address to 16 MiB");
        assertTrue(base >= 16L << 40 && base < 112L << 40, "drawn between 16 and 112 TiB: " + Long.toHexString(base));
        long end = base + Files.size(cache);

        // Training again and failing (here the JVM cannot start) keeps the caches and the address there were.
        Path ctlCache = nodeLib.resolve("dedupctl.aot");
        byte[] daemonBefore = Files.readAllBytes(cache), ctlBefore = Files.readAllBytes(ctlCache);
        Run failed = run(List.of("bash", TestEnv.TOP.resolve("scripts/aot-train.sh").toString(), node.toString()),
                Map.of("JAVA_TOOL_OPTIONS", "-XX:+DedupNoSuchOption"));
        assertTrue(failed.code == 0 && failed.err.contains("no new AOT cache"), "a failed training is a warning:\n" + failed.all());
        assertArrayEquals(daemonBefore, Files.readAllBytes(cache), "a failed training changed the daemon's cache");
        assertArrayEquals(ctlBefore, Files.readAllBytes(ctlCache), "a failed training changed dedupctl's cache");
        assertEquals(base, Long.decode(Files.readString(baseFile).strip()), "a failed training changed the cache's address");
        try (Stream<Path> left = Files.list(nodeLib)) {
            assertEquals(List.of(), left.filter(p -> p.getFileName().toString().startsWith(".")).toList(), "files a failed training left");
        }

        try (TestEnv env = TestEnv.daemonOnly()) {
            assertEquals(143, env.stopDaemon(), "the daemon's stop by SIGTERM");
            env.daemonBin = nodeBin.resolve("dedup-snapshotter");
            env.startDaemon();
            List<long[]> mapped = cacheMappings(env.daemon.pid());
            assertTrue(mapped.stream().anyMatch(m -> m[0] >= base && m[1] <= end),
                    "the daemon did not map its cache at " + Long.toHexString(base) + ": " + describe(mapped));
            assertEquals(143, env.stopDaemon(), "the daemon's stop by SIGTERM");
            env.startDaemon(Map.of("DEDUP_AOT_RELOCATION", "1"));
            List<long[]> relocated = cacheMappings(env.daemon.pid());
            assertFalse(relocated.isEmpty(), "DEDUP_AOT_RELOCATION=1: the cache is still used");
            assertTrue(relocated.stream().noneMatch(m -> m[1] > base && m[0] < end),
                    "DEDUP_AOT_RELOCATION=1: the cache is still at its trained address: " + describe(relocated));
        }
    }

    /** The [start, end) of each mapping of dedup-daemon.aot in the process's address space. */
    static List<long[]> cacheMappings(long pid) throws IOException {
        return Files.readAllLines(Path.of("/proc/" + pid + "/maps")).stream().filter(l -> l.endsWith("/dedup-daemon.aot")).map(l -> {
            String[] range = l.substring(0, l.indexOf(' ')).split("-");
            return new long[] {Long.parseUnsignedLong(range[0], 16), Long.parseUnsignedLong(range[1], 16)};
        }).toList();
    }

    private static String describe(List<long[]> mappings) {
        return mappings.stream().map(m -> Long.toHexString(m[0]) + "-" + Long.toHexString(m[1])).toList().toString();
    }

    /** exit 0, the command's one line of output, nothing on stderr but the JVM's note of JAVA_TOOL_OPTIONS. */
    private void assertClean(Run r) {
        assertEquals(0, r.code, r.all());
        assertEquals(config + ": ok", r.out.strip(), r.all());
        assertEquals("", r.err.lines().filter(l -> !l.startsWith("Picked up JAVA_TOOL_OPTIONS")).reduce("", String::concat), r.all());
    }

    private Run dedupctl(Map<String, String> env) throws IOException, InterruptedException {
        return run(List.of(bin.resolve("dedupctl").toString(), "config", "check", config.toString()), env);
    }

    private record Run(int code, String out, String err) {
        String all() { return "exit " + code + "\nstdout:\n" + out + "\nstderr:\n" + err; }
    }

    private Run run(List<String> cmd, Map<String, String> env) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectOutput(dir.resolve("out").toFile()).redirectError(dir.resolve("err").toFile());
        pb.environment().putAll(env);
        Process p = pb.start();
        if (!p.waitFor(2, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            fail(cmd + " did not finish in 2 minutes");
        }
        return new Run(p.exitValue(), Files.readString(dir.resolve("out"), StandardCharsets.UTF_8), Files.readString(dir.resolve("err"), StandardCharsets.UTF_8));
    }
}
