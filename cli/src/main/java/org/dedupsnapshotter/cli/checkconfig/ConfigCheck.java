package org.dedupsnapshotter.cli.checkconfig;

import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.FileSystems;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

/**
 * What a dedup node needs in its containerd config, item by item, for containerd 1.x (config version 2) or 2.x
 * (version 3): each finding says what is there, or what to add and where for that containerd.
 *
 * @param address        the daemon's socket, suggested when the proxy plugin is missing
 * @param root           the daemon's root, suggested for exports.root
 * @param daemonAnswers  whether something listens on a unix socket
 */
public record ConfigCheck(Path address, Path root, Predicate<Path> daemonAnswers) {
    static final String NAME = "dedup";
    static final String PROXY = "[proxy_plugins.dedup]";
    static final String TRANSFER = "io.containerd.transfer.v1.local";
    static final String UNPACK = "[[plugins.\"" + TRANSFER + "\".unpack_config]]";
    static final String CRI_1X = "io.containerd.grpc.v1.cri";
    static final String CRI_IMAGES = "io.containerd.cri.v1.images";
    static final String CRI_RUNTIME = "io.containerd.cri.v1.runtime";
    static final String KSM_ANNOTATION = "org.dedup-snapshotter.ksm";

    public List<Finding> check(ContainerdConfig c, boolean containerd2) {
        List<Finding> out = new ArrayList<>();
        proxyPlugin(c, out);
        if (containerd2) {
            exports(c, out);
            unpackConfig(c, out);
        }
        if (criDisabled(c, containerd2)) {
            out.add(Finding.info("CRI", "disabled (disabled_plugins): nothing to check for Kubernetes"));
        } else {
            criSnapshotter(c, containerd2, out);
            runcBinary(c, containerd2, out);
        }
        return out;
    }

    public static boolean passes(List<Finding> findings) {
        return findings.stream().noneMatch(f -> f.level() == Finding.Level.MISSING);
    }

    private void proxyPlugin(ContainerdConfig c, List<Finding> out) {
        JsonNode p = c.proxyPlugin(NAME);
        if (p.isMissingNode()) {
            out.add(Finding.missing(PROXY, "absent: add " + PROXY + " with type = \"snapshot\" and address = \"" + address + "\" (the daemon's socket)"));
            return;
        }
        String type = p.path("type").asText("");
        String addr = p.path("address").asText("");
        if (!type.equals("snapshot") && !type.equals("io.containerd.snapshotter.v1"))
            out.add(Finding.missing(PROXY + " type", (type.isEmpty() ? "absent" : "is \"" + type + "\"") + ": set type = \"snapshot\" in " + PROXY));
        if (addr.isEmpty()) {
            out.add(Finding.missing(PROXY + " address", "absent: set address = \"" + address + "\" (the daemon's socket) in " + PROXY));
        } else if (daemonAnswers.test(Path.of(addr))) {
            out.add(Finding.ok(PROXY, "type " + type + ", address " + addr + " (a daemon answers there)"));
        } else {
            out.add(Finding.ok(PROXY, "type " + type + ", address " + addr));
            out.add(Finding.warn("daemon", "nothing answers at " + addr + ": start dedup-snapshotter there (systemctl enable --now dedup-snapshotter, or --address " + addr + ")"));
        }
        if (c.disabledPlugins().contains("io.containerd.snapshotter.v1." + NAME))
            out.add(Finding.missing("disabled_plugins", "lists io.containerd.snapshotter.v1." + NAME + ": remove it"));
    }

    /** 2.x: CRI reads the image filesystem's path from exports.root; the transfer service passes annotations only when asked. */
    private void exports(ContainerdConfig c, List<Finding> out) {
        JsonNode e = c.proxyPlugin(NAME).path("exports");
        String suggestion = "exports = { root = \"" + root + "\", enable_remote_snapshot_annotations = \"true\" }";
        JsonNode r = e.path("root");
        JsonNode a = e.path("enable_remote_snapshot_annotations");
        if (r.isMissingNode() && a.isMissingNode()) {
            out.add(Finding.missing(PROXY + " exports", "absent: add " + suggestion + " to " + PROXY
                    + " (root: CRI's image filesystem for kubelet's imagefs accounting and image GC; enable_remote_snapshot_annotations: the transfer service's pulls, ctr's and CRI's, pass the layers' annotations lazy pull needs)"));
            return;
        }
        if (r.asText("").isEmpty())
            out.add(Finding.missing(PROXY + " exports.root", "absent: add root = \"" + root + "\" to " + PROXY + "'s exports (CRI reports the image filesystem there: kubelet's imagefs accounting and image GC)"));
        else
            out.add(Finding.ok(PROXY + " exports.root", r.asText()));
        if (a.isTextual() && a.asText().equals("true"))
            out.add(Finding.ok(PROXY + " exports.enable_remote_snapshot_annotations", "\"true\""));
        else
            out.add(Finding.missing(PROXY + " exports.enable_remote_snapshot_annotations",
                    (a.isMissingNode() ? "absent" : "is " + a + " (it must be the string \"true\")") + ": set enable_remote_snapshot_annotations = \"true\" in "
                            + PROXY + "'s exports (the transfer service passes the layers' annotations, which lazy pull needs, only then)"));
    }

    /** 2.x: the transfer service (ctr's pull, CRI's default pull) unpacks only into the snapshotters listed here. */
    private void unpackConfig(ContainerdConfig c, List<Finding> out) {
        String entry = "platform = \"linux/amd64\", snapshotter = \"dedup\", differ = \"walking\"";
        if (c.disabledPlugins().contains(TRANSFER)) {
            out.add(Finding.warn(UNPACK, "the transfer service is disabled (disabled_plugins): ctr and CRI pull client-side"));
            return;
        }
        JsonNode list = c.plugin(TRANSFER).path("unpack_config");
        JsonNode dedup = null;
        boolean overlayfs = false;
        for (JsonNode u : list) {
            String s = u.path("snapshotter").asText("");
            if (s.equals(NAME)) dedup = u;
            if (s.equals("overlayfs")) overlayfs = true;
        }
        if (dedup == null) {
            out.add(Finding.missing(UNPACK, (list.isEmpty() ? "absent (containerd's default lists overlayfs only)" : "no entry for dedup")
                    + ": the transfer service's pulls into dedup (ctr image pull --snapshotter dedup, CRI's) fail with \"no unpack platforms defined\"; add " + UNPACK + " with " + entry
                    + (list.isEmpty() ? ", and one with snapshotter = \"overlayfs\" (a list replaces containerd's default)" : "")));
            return;
        }
        String platform = dedup.path("platform").asText("");
        if (!platform.equals("linux") && !platform.startsWith("linux/") && !platform.startsWith("linux("))
            out.add(Finding.missing(UNPACK + " dedup platform", (platform.isEmpty() ? "absent" : "is \"" + platform + "\"") + ": set platform = \"linux/amd64\" (its OS must be linux)"));
        else
            out.add(Finding.ok(UNPACK, "dedup, platform " + platform + (dedup.path("differ").asText("").isEmpty() ? "" : ", differ " + dedup.path("differ").asText())));
        if (!overlayfs)
            out.add(Finding.warn(UNPACK, "no entry for overlayfs: pulls into overlayfs (ctr's default snapshotter) will not unpack; add one with snapshotter = \"overlayfs\" (a list replaces containerd's default)"));
    }

    private static boolean criDisabled(ContainerdConfig c, boolean containerd2) {
        List<String> d = c.disabledPlugins();
        return d.contains(CRI_1X) || d.contains("cri") || (containerd2 && (d.contains(CRI_IMAGES) || d.contains(CRI_RUNTIME)));
    }

    private static void criSnapshotter(ContainerdConfig c, boolean containerd2, List<Finding> out) {
        JsonNode section = containerd2 ? c.plugin(CRI_IMAGES) : c.plugin(CRI_1X).path("containerd");
        String where = containerd2 ? "[plugins.\"" + CRI_IMAGES + "\"]" : "[plugins.\"" + CRI_1X + "\".containerd]";
        String snapshotter = section.path("snapshotter").asText("");
        if (!snapshotter.equals(NAME)) {
            out.add(Finding.warn("CRI snapshotter", "is " + (snapshotter.isEmpty() ? "overlayfs (the default)" : snapshotter)
                    + ": for Kubernetes pods on dedup set snapshotter = \"dedup\" under " + where));
            return;
        }
        out.add(Finding.ok("CRI snapshotter", "dedup (" + where + ")"));
        JsonNode disable = section.path("disable_snapshot_annotations");
        boolean annotations = disable.isBoolean() && !disable.asBoolean();
        if (containerd2 && annotations)
            out.add(Finding.info("CRI pull", "disable_snapshot_annotations = false: CRI pulls client-side (its local pull, which passes the annotations itself), not through the transfer service"));
        if (!containerd2 && !annotations)
            out.add(Finding.warn("CRI pull", "CRI passes no annotations to snapshotters, so its pulls are never lazy: set disable_snapshot_annotations = false under " + where));
    }

    /** Memory dedup (docs/ksm.md): containers run through dedup-runc, which sees the pod annotation that opts in. */
    private static void runcBinary(ContainerdConfig c, boolean containerd2, List<Finding> out) {
        String cri = containerd2 ? CRI_RUNTIME : CRI_1X;
        String where = "[plugins.\"" + cri + "\".containerd.runtimes.runc.options]";
        JsonNode runc = c.plugin(cri).path("containerd").path("runtimes").path("runc");
        String binary = runc.path("options").path("BinaryName").asText("");
        if (!binary.endsWith("dedup-runc")) {
            out.add(Finding.info("runc BinaryName", "is " + (binary.isEmpty() ? "runc (the default)" : binary)
                    + ": for memory dedup (docs/ksm.md) set BinaryName = \"/usr/local/bin/dedup-runc\" under " + where));
            return;
        }
        boolean annotationPasses = false;
        // CRI matches pod_annotations as globs (Go's filepath.Match)
        for (JsonNode a : runc.path("pod_annotations"))
            annotationPasses |= FileSystems.getDefault().getPathMatcher("glob:" + a.asText()).matches(Path.of(KSM_ANNOTATION));
        out.add(Finding.info("runc BinaryName", binary + ": containers run through dedup-runc (memory dedup)"));
        if (!annotationPasses)
            out.add(Finding.warn("runc pod_annotations", "do not pass " + KSM_ANNOTATION + " to dedup-runc: add pod_annotations = [\"" + KSM_ANNOTATION
                    + "\"] under [plugins.\"" + cri + "\".containerd.runtimes.runc]"));
    }
}
