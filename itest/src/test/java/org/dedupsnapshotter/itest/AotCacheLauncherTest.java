package org.dedupsnapshotter.itest;

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
import java.util.Comparator;
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
 * they are.
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
