package org.dedupsnapshotter.itest;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * A containerd release the tests run against: where its binaries are and which config version it reads.
 * containerd 2.x is built from its Go module by scripts/go-tools.sh into build/tools (versions pinned in
 * scripts/lib/go-versions.sh; the first is the primary one the end-to-end suite runs on); 1.6 is Debian's.
 */
record Containerd(String version, Path binDir) {
    static final Containerd V1_6 = new Containerd("1.6", Path.of("/usr/bin"));

    /** containerd 2.x versions in the order scripts/lib/go-versions.sh gives them. */
    static List<Containerd> v2() {
        return Arrays.stream(GoTools.pinned("CONTAINERD_2X_VERSIONS").split("\\s+"))
                .map(v -> new Containerd(v, TestEnv.TOP.resolve("build/tools/containerd-" + v + "/bin"))).toList();
    }

    /** The one the end-to-end suite runs on: containerd 2.4 (or -Ddedup.containerd=VERSION, e.g. 1.6). */
    static Containerd primary() {
        String wanted = System.getProperty("dedup.containerd", "");
        if (wanted.isEmpty()) return v2().getFirst();
        return named(wanted);
    }

    /** By version prefix: "1.6", "2.2", "2.4.2". */
    static Containerd named(String version) {
        if (V1_6.version.startsWith(version) || version.startsWith("1.6")) return V1_6;
        return v2().stream().filter(c -> c.version.startsWith(version)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("no containerd " + version + " among " + v2()));
    }

    boolean isV2() { return !version.startsWith("1."); }

    /** The minor release, e.g. "2.4". */
    String minor() {
        String[] p = version.split("\\.");
        return p[0] + "." + p[1];
    }

    /** A binary of this release (containerd, ctr, containerd-shim-runc-v2); fails with the fix if it is not built. */
    Path bin(String tool) {
        Path p = binDir.resolve(tool);
        if (!Files.isExecutable(p))
            throw new IllegalStateException(p + " is missing: run scripts/go-tools.sh (make test does) to build containerd " + version);
        return p;
    }

    @Override
    public String toString() { return "containerd " + version; }
}
