package org.dedupsnapshotter.daemon.memory;

import org.dedupsnapshotter.config.Config;
import org.dedupsnapshotter.daemon.layers.Layout;
import org.dedupsnapshotter.ksm.KsmNode;
import org.dedupsnapshotter.ksm.ProcessKsm;
import org.dedupsnapshotter.storage.MetaStore;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * The daemon's side of memory dedup: checks that the kernel can do it, applies the configured KSM settings once at
 * start, and reports node and per-container figures. Containers are marked by bin/dedup-runc, not here; the
 * daemon finds them by their root filesystem, an overlay whose upper dir is one of our active snapshots, whose
 * key containerd makes the container's id.
 */
public final class MemoryDedup {
    private static final Logger log = LoggerFactory.getLogger(MemoryDedup.class);

    private final KsmNode node;
    private final Path proc;
    private final Layout layout;
    private final MetaStore store;
    private final String unsupported;

    /**
     * Where a process runs: a container, by its id as containerd and the kubelet name it (the key of its root
     * filesystem's snapshot) and its containerd namespace (null when containerd gave the key without one); or, outside
     * our snapshots, no container (id null), shown as "pid N (comm)".
     */
    public record Owner(String namespace, String id, String shown) {
        static Owner container(String namespace, String id) { return new Owner(namespace, id, namespace == null ? id : namespace + "/" + id); }
        static Owner process(ProcessKsm p) { return new Owner(null, null, "pid " + p.pid() + " (" + p.comm() + ")"); }
        public boolean isContainer() { return id != null; }
    }

    /** Per owner (a container, or a process outside containers): its processes in KSM and their sums. */
    public record Container(Owner owner, List<ProcessKsm> processes) {
        /** NAMESPACE/ID for a container, as ctr -n NAMESPACE shows it; "pid N (comm)" for a process outside containers. */
        public String container() { return owner.shown(); }
        public long mergingPages() { return processes.stream().mapToLong(ProcessKsm::mergingPages).sum(); }
        public long mergingBytes() { return processes.stream().mapToLong(ProcessKsm::mergingBytes).sum(); }
        public long profitBytes() { return processes.stream().mapToLong(ProcessKsm::profitBytes).sum(); }
    }

    public record Figures(boolean supported, String unsupported, KsmNode.Figures node, List<Container> containers) {}

    public MemoryDedup(KsmNode node, Path proc, Layout layout, MetaStore store) {
        this.node = node;
        this.proc = proc;
        this.layout = layout;
        this.store = store;
        this.unsupported = node.unsupported().orElse(null);
    }

    public boolean supported() { return unsupported == null; }

    /** Logs what the kernel lacks, or applies the configured settings (a setting the kernel refuses is a warning). */
    public void start(Config.Ksm cfg) {
        if (unsupported != null) {
            log.warn("memory dedup (KSM) is off: {}; everything else works", unsupported);
            return;
        }
        Config.KsmKernel k = cfg.kernel();
        KsmNode.Settings s = new KsmNode.Settings(k.run(), k.pagesToScan(), k.sleepMillisecs(), k.advisorMode(), k.useZeroPages(), k.maxPageSharing());
        try {
            if (!s.empty()) log.info("KSM settings applied: {}", String.join(" ", node.apply(s)));
            KsmNode.Figures f = node.figures();
            log.info("KSM: {} (pages_to_scan={} sleep_millisecs={}); containers through bin/dedup-runc: {}", f.running() ? "running" : "not running (ksm.kernel.run)",
                    f.pagesToScan(), f.sleepMillisecs(), cfg.containers());
        } catch (IOException e) {
            log.warn("KSM settings not applied: {}", e.getMessage());
        }
    }

    public Figures figures() {
        if (unsupported != null) return new Figures(false, unsupported, null, List.of());
        KsmNode.Figures f;
        try {
            f = node.figures();
        } catch (IOException e) {
            return new Figures(false, e.getMessage(), null, List.of());
        }
        Map<Owner, List<ProcessKsm>> byContainer = new LinkedHashMap<>();
        for (ProcessKsm p : ProcessKsm.all(proc))
            byContainer.computeIfAbsent(container(p.pid()).orElseGet(() -> Owner.process(p)), x -> new ArrayList<>()).add(p);
        List<Container> cs = new ArrayList<>();
        byContainer.forEach((c, ps) -> cs.add(new Container(c, ps)));
        cs.sort((a, b) -> Long.compare(b.mergingPages(), a.mergingPages()));
        return new Figures(true, null, f, cs);
    }

    private static final Pattern NAMESPACED = Pattern.compile("([^/]+)/\\d+/(.+)");

    /**
     * containerd hands proxy snapshotters keys as NAMESPACE/SEQ/KEY, and KEY of a container's root filesystem is the
     * container's id.
     */
    static Owner containerOf(String key) {
        var m = NAMESPACED.matcher(key);
        return m.matches() ? Owner.container(m.group(1), m.group(2)) : Owner.container(null, key);
    }

    /** The key of the active snapshot that is the process's root filesystem, if it is one of ours. */
    Optional<Owner> container(int pid) {
        String upper = "upperdir=" + layout.snapshots() + "/";
        try {
            String rootLine = null;
            for (String line : Files.readAllLines(proc.resolve(pid + "/mountinfo"))) {
                String[] f = line.split(" ");
                if (f.length > 4 && f[4].equals("/")) rootLine = line; // the last mount on / is the one in effect
            }
            if (rootLine == null) return Optional.empty();
            int at = rootLine.indexOf(upper);
            if (at < 0) return Optional.empty();
            String rest = rootLine.substring(at + upper.length());
            int slash = rest.indexOf('/');
            if (slash <= 0) return Optional.empty();
            long id = Long.parseLong(rest.substring(0, slash));
            return store.read(tx -> tx.snapshots().byId(id)).map(s -> containerOf(s.name()));
        } catch (IOException | NumberFormatException e) {
            return Optional.empty();
        }
    }
}
