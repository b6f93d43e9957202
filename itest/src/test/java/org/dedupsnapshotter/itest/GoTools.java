package org.dedupsnapshotter.itest;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The Go-built tools' pinned versions (scripts/lib/go-versions.sh) and where scripts/go-tools.sh puts them. */
final class GoTools {
    private GoTools() {}

    /** A variable of scripts/lib/go-versions.sh, e.g. CRICTL_VERSION or CONTAINERD_2X_VERSIONS. */
    static String pinned(String variable) {
        Path versions = TestEnv.TOP.resolve("scripts/lib/go-versions.sh");
        try {
            Matcher m = Pattern.compile("(?m)^" + variable + "=\"?([^\"\\n]+)\"?").matcher(Files.readString(versions));
            if (!m.find()) throw new IllegalStateException("no " + variable + " in " + versions);
            return m.group(1).trim();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** build/tools/NAME-VERSION/bin/BINARY; fails with the fix if it is not built. */
    static Path bin(String name, String version, String binary) {
        Path p = TestEnv.TOP.resolve("build/tools/" + name + "-" + version + "/bin/" + binary);
        if (!Files.isExecutable(p))
            throw new IllegalStateException(p + " is missing: run scripts/go-tools.sh (make test does) to build " + name + " " + version);
        return p;
    }
}
