package org.dedupsnapshotter.daemon.lazypull;

import org.dedupsnapshotter.lazy.toc.TracePieces;
import org.dedupsnapshotter.storage.ChunkPool;
import org.dedupsnapshotter.storage.Digest;
import org.dedupsnapshotter.storage.MetaStore;
import org.dedupsnapshotter.storage.Trace;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Start-up traces: for the first {@code window} of every container on a lazily pulled image, the chunks it reads,
 * in the order it first reads them. Every read of a lazy layer that misses the page cache passes the pool watch
 * (present chunks as well as absent ones), which reports it here with the reader's pid; the pid's root filesystem
 * (an overlay whose upper dir is one of our snapshots) tells which container read it. When the window closes, or
 * the container goes, the run is merged into the image's trace (by the image's chain id) in SQLite.
 */
public final class TraceRecorder {
    private static final Logger log = LoggerFactory.getLogger(TraceRecorder.class);
    /** containerd names the layers it unpacks NAMESPACE/SEQ/CHAINID; lazily pulled ones are named by their chain id. */
    private static final Pattern NAMESPACED = Pattern.compile("[^/]+/\\d+/(sha256:[0-9a-f]{64})");

    private final MetaStore store;
    private final Path snapshots;
    private final Duration window;
    private final Map<Long, Session> sessions = new ConcurrentHashMap<>();
    private final Map<Integer, Long> containerOfPid = Collections.synchronizedMap(new LinkedHashMap<>(64, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Integer, Long> e) { return size() > 4096; }
    });
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().name("trace-timer").daemon(true).factory());

    private static final class Session {
        final long container;
        final String image;
        final List<String> layers;
        /** The snapshot ids of its layers: a read by a process outside any container counts only if it is theirs. */
        final Set<Long> layerIds;
        /** Chunks in the order first read, each with the pieces of it read (TracePieces). */
        final LinkedHashMap<Digest, Long> chunks = new LinkedHashMap<>();
        Digest last; // the last chunk seen: most reads fall in the chunk of the one before
        long lastStart = -1, lastEnd = -1, lastLength;

        Session(long container, String image, List<String> layers, Set<Long> layerIds) {
            this.container = container;
            this.image = image;
            this.layers = layers;
            this.layerIds = layerIds;
        }
    }

    public TraceRecorder(MetaStore store, Path snapshots, Duration window) {
        this.store = store;
        this.snapshots = snapshots;
        this.window = window;
    }

    /** The chain id a layer snapshot stands for (its name for lazy layers, the last part of containerd's key otherwise). */
    public static String chainIdOf(String layerName) {
        Matcher m = NAMESPACED.matcher(layerName);
        return m.matches() ? m.group(1) : layerName;
    }

    /**
     * A container's root filesystem was prepared on layers (bottom-up names, and their snapshot ids): record what it
     * reads first.
     */
    public void containerPrepared(long container, List<String> layerNamesBottomUp, Collection<Long> layerIds) {
        if (window.isZero() || layerNamesBottomUp.isEmpty()) return;
        List<String> layers = layerNamesBottomUp.stream().map(TraceRecorder::chainIdOf).toList();
        sessions.put(container, new Session(container, layers.getLast(), layers, Set.copyOf(layerIds)));
        timer.schedule(() -> finish(container), window.toMillis(), TimeUnit.MILLISECONDS);
    }

    /** The container's snapshot is gone: its run ends now. */
    public void containerRemoved(long container) { finish(container); }

    /** A read of the pool (from the pool watch): the chunks it touches, for the session of the reader's container. */
    public void observed(int pid, long offset, long count) {
        if (sessions.isEmpty() || count <= 0) return;
        Session found = sessionOf(pid);
        boolean outside = found == null; // a process in no container: containerd reading the rootfs's /etc/group to make the spec
        if (outside) found = soleSessionFor(pid);
        if (found == null) return;
        Session s = found;
        long block = offset / ChunkPool.BLOCK, end = (offset + count + ChunkPool.BLOCK - 1) / ChunkPool.BLOCK;
        synchronized (s) {
            while (block < end) {
                if (!(block >= s.lastStart && block < s.lastEnd)) { // (the last chunk is the session's: no second check)
                    long here = block;
                    var c = store.read(tx -> tx.chunks().at(here));
                    if (c.isEmpty()) {
                        block++;
                        continue;
                    }
                    if (outside && !store.read(tx -> tx.chunks().inLayers(c.get().id(), s.layerIds))) {
                        block = c.get().extent().end();
                        continue;
                    }
                    s.last = c.get().digest();
                    s.lastStart = c.get().block();
                    s.lastEnd = c.get().extent().end();
                    s.lastLength = c.get().length();
                }
                long at = s.lastStart * ChunkPool.BLOCK; // the chunk's first byte in the pool
                long pieces = TracePieces.of(offset - at, offset + count - at, s.lastLength);
                if (pieces != 0) s.chunks.merge(s.last, pieces, (a, b) -> TracePieces.union(a, b, s.lastLength));
                block = s.lastEnd;
            }
        }
    }

    private Session sessionOf(int pid) {
        if (sessions.size() == 1 && pid < 0) return sessions.values().iterator().next();
        if (pid < 0) return null;
        Long container = containerOfPid.get(pid);
        if (container == null) {
            container = rootSnapshot(pid);
            containerOfPid.put(pid, container);
        }
        return sessions.get(container);
    }

    /**
     * The session a read by pid counts for when pid is in no container (its root is not one of our snapshots): the
     * only session open, if exactly one is — containerd reads a new container's /etc/passwd and /etc/group through a
     * mount of its own before the container runs, and a trace without them leaves a demand fetch on every cold start.
     * With several open it cannot tell whose the read is, and none gets it; observed checks the chunk is the session's.
     */
    private Session soleSessionFor(int pid) {
        if (pid < 0 || sessions.size() != 1) return null;
        Long container = containerOfPid.get(pid);
        if (container == null || container != -1) return null;
        var it = sessions.values().iterator();
        return it.hasNext() ? it.next() : null;
    }

    /** The snapshot id whose upper dir is pid's root filesystem, or -1 (from /proc/PID/mountinfo). */
    long rootSnapshot(int pid) {
        String upper = "upperdir=" + snapshots + "/";
        try {
            String root = null;
            for (String line : Files.readAllLines(Path.of("/proc", Integer.toString(pid), "mountinfo"))) {
                String[] f = line.split(" ");
                if (f.length > 4 && f[4].equals("/")) root = line; // the last mount on / is the one in effect
            }
            if (root == null) return -1;
            int at = root.indexOf(upper);
            if (at < 0) return -1;
            String rest = root.substring(at + upper.length());
            int slash = rest.indexOf('/');
            return slash > 0 ? Long.parseLong(rest.substring(0, slash)) : -1;
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
    }

    private void finish(long container) {
        Session s = sessions.remove(container);
        if (s == null) return;
        List<Digest> chunks;
        List<Long> pieces;
        synchronized (s) {
            chunks = new ArrayList<>(s.chunks.keySet());
            pieces = new ArrayList<>(s.chunks.values());
        }
        containerOfPid.values().removeIf(v -> v == container);
        if (chunks.isEmpty()) return;
        try {
            Trace t = store.write("save trace", tx -> tx.traces().save(new Trace(s.image, 1, s.layers, chunks, pieces), false));
            log.info("trace of image {}: {} chunks read first by container id={} (trace now {} chunks, {} runs)", s.image, chunks.size(), container,
                    t.chunks().size(), t.runs());
        } catch (RuntimeException e) {
            log.warn("trace of image {} not saved: {}", s.image, e.getMessage());
        }
    }

    public void close() { timer.shutdownNow(); }
}
