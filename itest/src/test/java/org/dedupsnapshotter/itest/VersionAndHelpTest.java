package org.dedupsnapshotter.itest;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What an operator types first, with no daemon running: help and the version of both programs, as built. */
class VersionAndHelpTest {
    static Proc.Result run(String program, String... args) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(List.of(TestEnv.TOP.resolve("bin/" + program).toString()));
        cmd.addAll(List.of(args));
        // an address where nothing listens: nothing here may need a daemon
        cmd.addAll(1, program.equals("dedupctl") ? List.of("--address", "/nonexistent/dedup.sock") : List.of());
        return Proc.run(Duration.ofMinutes(1), cmd);
    }

    static String projectVersion() throws Exception {
        Matcher m = Pattern.compile("<artifactId>dedup-snapshotter</artifactId>\\s*<version>([^<]+)</version>")
                .matcher(Files.readString(TestEnv.TOP.resolve("pom.xml")));
        assertTrue(m.find(), "the project's version in pom.xml");
        return m.group(1);
    }

    @Test
    void helpAndVersionNeedNoDaemon() throws Exception {
        String version = projectVersion();
        Proc.Result ctlVersion = run("dedupctl", "--version");
        assertEquals(0, ctlVersion.code(), ctlVersion.out());
        assertTrue(ctlVersion.out().strip().startsWith("dedupctl " + version + " (Java "), ctlVersion.out());
        Proc.Result daemonVersion = run("dedup-snapshotter", "--version");
        assertEquals(0, daemonVersion.code(), daemonVersion.out());
        assertTrue(daemonVersion.out().strip().startsWith("dedup-snapshotter " + version + " (Java "), daemonVersion.out());

        Proc.Result help = run("dedupctl", "--help");
        assertEquals(0, help.code(), help.out());
        assertTrue(help.out().startsWith("Usage: dedupctl"), help.out());
        assertFalse(help.out().contains("the daemon is not running ("), help.out()); // the exit codes' footer says "not running" too
        assertTrue(help.out().contains("Exit codes:") && help.out().contains("3   cannot connect"), "exit codes in the help:\n" + help.out());
        for (String c : List.of("stats", "ls", "inspect", "gc", "fsck", "trace", "probe-mounts", "config", "check-config", "bound", "convert", "pull", "completion"))
            assertTrue(help.out().contains("\n  " + c + " "), c + " in the help:\n" + help.out());
        assertFalse(help.out().contains("aot-training"), help.out());
        // every command's help, with nothing to talk to
        for (String c : List.of("stats", "ls", "inspect", "gc", "fsck", "trace", "probe-mounts", "config", "check-config", "bound", "convert", "pull", "completion")) {
            Proc.Result h = run("dedupctl", c, "--help");
            assertEquals(0, h.code(), c + ": " + h.out());
            assertTrue(h.out().startsWith("Usage: dedupctl " + c), h.out());
        }
        Proc.Result pullHelp = run("dedupctl", "pull", "--help");
        assertTrue(pullHelp.out().contains("--containerd=SOCK") && !pullHelp.out().contains("--address"), pullHelp.out());
        Proc.Result convertHelp = run("dedupctl", "convert", "--help");
        assertTrue(convertHelp.out().contains("--trace=CMD") && convertHelp.out().contains("run sh -c CMD once in a container"), convertHelp.out());
        assertEquals(0, run("dedupctl", "trace", "show", "--help").code());
        assertEquals(0, run("dedupctl", "config", "check", "--help").code());
        assertEquals(0, run("dedupctl", "help", "pull").code());
    }

    @Test
    void usageErrorsExit2AndNoDaemonExits3() throws Exception {
        Proc.Result none = run("dedupctl");
        assertEquals(2, none.code(), none.out());
        assertTrue(none.out().contains("Usage: dedupctl"), none.out());
        Proc.Result unknown = run("dedupctl", "nosuch");
        assertEquals(2, unknown.code(), unknown.out());
        Proc.Result oldPullFlag = run("dedupctl", "pull", "--address", "/run/containerd/containerd.sock", "docker.io/library/debian:bookworm");
        assertEquals(2, oldPullFlag.code(), oldPullFlag.out());
        assertTrue(oldPullFlag.out().contains("--containerd SOCK"), oldPullFlag.out());
        Proc.Result oldCheckFlag = run("dedupctl", "check-config", "--containerd", "/usr/bin/containerd");
        assertEquals(2, oldCheckFlag.code(), oldCheckFlag.out());
        assertTrue(oldCheckFlag.out().contains("--containerd-bin"), oldCheckFlag.out());
        Proc.Result stats = run("dedupctl", "stats", "--json");
        assertEquals(3, stats.code(), stats.out());
        assertTrue(stats.out().contains("the daemon is not running (no socket at /nonexistent/dedup.sock)"), stats.out());
    }

    @Test
    void bashCompletionNeedsNoDaemonAndKnowsTheCommands() throws Exception {
        Proc.Result r = run("dedupctl", "completion", "bash");
        assertEquals(0, r.code(), r.out());
        assertTrue(r.out().contains("complete -F _complete_dedupctl") || r.out().contains("_complete_dedupctl"), r.out());
        assertTrue(r.out().contains("convert") && r.out().contains("--containerd") && r.out().contains("check-config"), r.out());
        assertFalse(r.out().contains("aot-training"), "hidden commands are not completed");
        // bash itself accepts it
        Path script = Files.createTempFile("dedupctl-completion", ".bash");
        try {
            Files.writeString(script, r.out());
            Proc.Result sourced = Proc.run(Duration.ofMinutes(1), List.of("bash", "-c", "source \"$0\" && complete -p dedupctl", script.toString()));
            assertEquals(0, sourced.code(), sourced.out());
            assertEquals(2, run("dedupctl", "completion", "zsh").code());
        } finally {
            Files.deleteIfExists(script);
        }
    }
}
