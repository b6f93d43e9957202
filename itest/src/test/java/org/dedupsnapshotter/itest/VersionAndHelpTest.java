package org.dedupsnapshotter.itest;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.time.Duration;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
        assertTrue(help.out().startsWith("usage: dedupctl"), help.out());
        assertTrue(!help.out().toLowerCase().contains("not running"), help.out());
        Proc.Result pullHelp = run("dedupctl", "pull", "--help");
        assertEquals(0, pullHelp.code(), pullHelp.out());
        assertTrue(pullHelp.out().contains("usage: dedupctl pull"), pullHelp.out());
    }
}
