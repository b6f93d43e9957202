package org.dedupsnapshotter.cli.checkconfig;

import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A containerd release as `containerd --version` names it; 2.x reads config version 3 (2.4: 4), 1.x version 2. */
public record ContainerdVersion(int major, int minor, String text) {
    // "containerd github.com/containerd/containerd/v2 2.4.2+unknown", "... containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3",
    // "... v1.7.27 05044ec0": the first dotted number (the module path's "/v2" has no dot after it)
    private static final Pattern RELEASE = Pattern.compile("(?<![\\w.])v?(\\d+)\\.(\\d+)(?:\\.\\d+)?[^\\s]*");

    public static Optional<ContainerdVersion> parse(String versionOutput) {
        Matcher m = RELEASE.matcher(versionOutput);
        if (!m.find()) return Optional.empty();
        return Optional.of(new ContainerdVersion(Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)), m.group().replaceFirst("^v", "")));
    }

    /** containerd 2.x: config version 3, CRI's sections under io.containerd.cri.v1.*, pulls through the transfer service. */
    public boolean is2x() { return major >= 2; }

    @Override
    public String toString() { return "containerd " + text; }
}
