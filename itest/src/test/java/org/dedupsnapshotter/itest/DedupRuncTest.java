package org.dedupsnapshotter.itest;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * bin/dedup-runc's command-line and file handling, with a stand-in for runc: a script that prints its arguments
 * and whether the kernel sees it as mergeable (it inherits the wrapper's prctl). KsmTest covers the real runc
 * under containerd; this covers the odd inputs containerd never sends but a person might.
 */
class DedupRuncTest {
    @TempDir
    Path dir;

    Path fakeRunc() throws Exception {
        Path f = dir.resolve("runc");
        Files.writeString(f, "#!/bin/sh\necho \"args: $*\"\ngrep ksm_merge_any /proc/self/ksm_stat\n");
        Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rwxr-xr-x"));
        return f;
    }

    Proc.Result wrapper(Map<String, String> env, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("env", "-i", "PATH=/usr/bin:/bin"));
        env.forEach((k, v) -> cmd.add(k + "=" + v));
        cmd.add(TestEnv.TOP.resolve("bin/dedup-runc").toString());
        cmd.addAll(List.of(args));
        return Proc.run(Duration.ofSeconds(30), cmd);
    }

    Path bundle(String annotations) throws Exception {
        Path b = Files.createDirectories(dir.resolve("bundle"));
        Files.writeString(b.resolve("config.json"), "{\"ociVersion\": \"1.0.2\", \"process\": {\"args\": [\"sh\", \"org.dedup-snapshotter.ksm\"]},"
                + " \"annotations\": " + annotations + "}");
        return b;
    }

    @Test
    void passesEveryArgumentThroughUnchanged() throws Exception {
        Proc.Result r = wrapper(Map.of("DEDUP_RUNC", fakeRunc().toString(), "DEDUP_SNAPSHOTTER_CONFIG", dir.resolve("none.json").toString()),
                "--root", "/run/x", "--log-format", "json", "delete", "--force", "a b");
        assertEquals(0, r.code(), r.out());
        assertTrue(r.out().contains("args: --root /run/x --log-format json delete --force a b"), r.out());
        assertTrue(r.out().contains("ksm_merge_any: no"), r.out());
    }

    @Test
    void readsTheAnnotationWhateverTheBundleFlagsLookLike() throws Exception {
        Map<String, String> env = Map.of("DEDUP_RUNC", fakeRunc().toString(), "DEDUP_SNAPSHOTTER_CONFIG", dir.resolve("none.json").toString());
        Path b = bundle("{\"x\": \"y\", \"org.dedup-snapshotter.ksm\": \"true\"}");
        assertTrue(wrapper(env, "--systemd-cgroup", "create", "--bundle", b.toString(), "id").out().contains("merge_any: yes"));
        assertTrue(wrapper(env, "create", "--bundle=" + b, "id").out().contains("merge_any: yes"));
        assertTrue(wrapper(env, "run", "-b", b.toString(), "id").out().contains("merge_any: yes"));
        // the key only as a process argument, not an annotation: not merged
        bundle("{\"x\": \"org.dedup-snapshotter.ksm\"}");
        assertTrue(wrapper(env, "create", "--bundle", b.toString(), "id").out().contains("merge_any: no"));
        // values other than true/false count as absent (opt-in: not merged)
        bundle("{\"org.dedup-snapshotter.ksm\": \"yes\"}");
        assertTrue(wrapper(env, "create", "--bundle", b.toString(), "id").out().contains("merge_any: no"));
    }

    @Test
    void brokenFilesNeverStopRunc() throws Exception {
        Path cfg = Files.writeString(dir.resolve("config.json"), "{\"ksm\": {\"containers\": ");
        Map<String, String> env = Map.of("DEDUP_RUNC", fakeRunc().toString(), "DEDUP_SNAPSHOTTER_CONFIG", cfg.toString());
        Path b = Files.createDirectories(dir.resolve("bundle"));
        Files.writeString(b.resolve("config.json"), "{\"annotations\": {\"org.dedup-snapshotter.ksm\": \"tr");
        Proc.Result r = wrapper(env, "create", "--bundle", b.toString(), "id");
        assertEquals(0, r.code(), r.out());
        assertTrue(r.out().contains("merge_any: no"), r.out());
        assertTrue(wrapper(env, "create", "--bundle", dir.resolve("missing").toString(), "id").out().contains("args: create"));
    }

    @Test
    void withoutRuncItSaysWhereItLooked() throws Exception {
        Path cfg = Files.writeString(dir.resolve("config.json"), "{\"ksm\": {\"runc\": \"/nonexistent/runc\"}}");
        Proc.Result r = wrapper(Map.of("DEDUP_RUNC", "/nonexistent/runc", "DEDUP_SNAPSHOTTER_CONFIG", cfg.toString()), "--version");
        if (Files.isExecutable(Path.of("/usr/sbin/runc")) || Files.isExecutable(Path.of("/usr/bin/runc"))) {
            assertEquals(0, r.code(), "falls back to the system's runc: " + r.out());
            assertTrue(r.out().contains("runc version"), r.out());
        } else {
            assertEquals(127, r.code(), r.out());
            assertTrue(r.out().contains("no runc found"), r.out());
        }
        Path real = fakeRunc();
        Files.writeString(cfg, "{\"ksm\": {\"runc\": \"" + real + "\"}}");
        assertTrue(wrapper(Map.of("DEDUP_SNAPSHOTTER_CONFIG", cfg.toString()), "state", "x").out().contains("args: state x"), "ksm.runc is used");
    }
}
