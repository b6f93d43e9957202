package org.dedupsnapshotter.daemon.lazypull;

import org.dedupsnapshotter.erofs.ErofsTree;
import org.dedupsnapshotter.erofs.ErofsWriter;
import org.dedupsnapshotter.lazy.fetch.Members;
import org.dedupsnapshotter.lazy.toc.Toc;
import org.dedupsnapshotter.storage.Digest;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPOutputStream;

/**
 * The lazy pull's CPU path in the build's AOT training run (scripts/aot-train.sh, docs/decisions.md 37): its classes
 * and method profiles go into the daemon's AOT cache, so a node's first pull (an autoscaled node's first pod) does
 * not run that path cold. It runs only in the training run (it used to run at every start, decision 24).
 * <p>
 * Two made-up layers with what a real rootfs has — nested and implicit directories, multi-chunk files and holes,
 * symlinks, hardlinks, devices, a fifo, xattrs, and in the upper one whiteouts, an opaque directory and directories
 * of the lower layer — go the way a pulled layer's metadata goes: TOC member inflated, checked and parsed, tree,
 * chunk digests, EROFS image; and traced members are read from a stream, inflated and checked. Several rounds, so
 * the profiles hold every shape: code compiled for a path seen in one shape only is thrown away at the next (measured: a
 * made-up layer of regular files only left ~380 compilations and ~110 deoptimisations inside the first real traced
 * pull on a node, whose C2 threads then took 180–260 ms of CPU in a 0.45 s pull on 2 cores).
 */
public final class LazyWarmUp {
    private static final Logger log = LoggerFactory.getLogger(LazyWarmUp.class);
    static final int ROUNDS = 4;
    private static final int CHUNK = 4 << 20;

    private LazyWarmUp() {}

    /** Runs the warm-up with its scratch files in scratch (removed after); never throws. */
    public static void run(Path scratch) {
        long t0 = System.nanoTime();
        try {
            rounds(scratch, ROUNDS);
            log.debug("lazy pull warm-up: {} rounds in {} ms", ROUNDS, (System.nanoTime() - t0) / 1_000_000);
        } catch (IOException | RuntimeException e) {
            log.warn("lazy pull warm-up failed ({}): the AOT cache will hold no profiles of the pull path", e.getMessage());
        }
    }

    /** The warm-up's rounds; throws if the pull path refuses the made-up layers (then it would warm nothing). */
    static void rounds(Path scratch, int rounds) throws IOException {
        Toc lower = lowerLayer(), upper = upperLayer();
        byte[][] members = members();
        for (int r = 0; r < rounds; r++) {
            layer(lower, p -> null, scratch);
            layer(upper, LazyWarmUp::lowerDir, scratch);
            traced(members);
        }
    }

    /** One layer the way RemoteLayers takes it: TOC member → TOC → tree → digests → EROFS image (then deleted). */
    private static void layer(Toc made, TocTree.Lower lower, Path scratch) throws IOException {
        byte[] json = made.toJson();
        Toc toc = RegistryTocs.tocFromMember(gzip(json), Members.sha256(json), "warm-up");
        TocTree tree = TocTree.apply(toc, 0, 0, lower);
        Map<Digest, Long> blocks = new HashMap<>();
        for (TocTree.Node f : tree.files())
            for (Toc.Chunk c : f.chunks)
                if (!c.isHole()) blocks.putIfAbsent(Digest.parse(c.digest()), (long) blocks.size() * (CHUNK / 4096));
        tree.usage();
        ErofsTree image = tree.toErofs(toc.chunkSize, c -> c.isHole() ? ErofsTree.HOLE : blocks.get(Digest.parse(c.digest())));
        RemoteLayers.directoriesOfMembers(toc);
        Path file = Files.createTempFile(scratch, "warm-up", ".erofs");
        try {
            ErofsWriter.write(image, file, blocks.size() * (long) (CHUNK / 4096) + 1);
        } finally {
            Files.deleteIfExists(file);
        }
    }

    /** Traced members the way EarlyFetch and the loader take them: read from one stream, inflated, checked. */
    private static void traced(byte[][] members) throws IOException {
        ByteArrayOutputStream blob = new ByteArrayOutputStream();
        List<long[]> at = new ArrayList<>();
        for (byte[] m : members) {
            at.add(new long[] {blob.size(), m.length});
            blob.write(m);
        }
        try (ByteArrayInputStream in = new ByteArrayInputStream(blob.toByteArray())) {
            long pos = 0;
            for (int i = 0; i < members.length; i++) {
                byte[] member = Members.read(in, pos, at.get(i)[0], at.get(i)[1]);
                pos = at.get(i)[0] + at.get(i)[1];
                byte[] data = data(i);
                Members.chunk(member, data.length, Members.sha256(data), "warm-up member " + i);
            }
        }
    }

    private static byte[][] members() throws IOException {
        byte[][] out = new byte[48][];
        for (int i = 0; i < out.length; i++) out[i] = gzip(data(i));
        return out;
    }

    /** Made-up chunk data, compressible like program files: 4 KiB to 180 KiB. */
    private static byte[] data(int i) {
        byte[] b = new byte[4096 + i * 3739];
        for (int k = 0; k < b.length; k++) b[k] = (byte) ((k * 31 + i) % 97 < 60 ? 'a' + (k + i) % 26 : (k * k + i) & 0xff);
        return b;
    }

    private static Toc lowerLayer() {
        Toc t = new Toc();
        t.chunkSize = CHUNK;
        int n = 0;
        t.entries.add(entry("dev", Toc.Entry.DIR, 0755));
        Toc.Entry tty = entry("dev/tty", Toc.Entry.CHAR, 0666);
        tty.devMajor = 5;
        t.entries.add(tty);
        Toc.Entry loop = entry("dev/loop0", Toc.Entry.BLOCK, 0660);
        loop.devMajor = 7;
        t.entries.add(loop);
        t.entries.add(entry("run/initctl", Toc.Entry.FIFO, 0600)); // its parent only implied
        for (int d = 0; d < 40; d++) {
            String dir = (d % 2 == 0 ? "usr/lib/python3/d" : "usr/share/doc/d") + d; // parents implied
            Toc.Entry de = entry(dir, Toc.Entry.DIR, 0755);
            if (d % 5 == 0) de.xattrs.put("user.warm", Base64.getEncoder().encodeToString(new byte[] {'y'}));
            t.entries.add(de);
            int files = d % 8 == 3 ? 600 : 150; // some directories of several blocks of entries, most of one
            for (int f = 0; f < files; f++, n++) {
                String name = dir + "/f" + f + (f % 3 == 0 ? ".cpython-311-x86_64-linux-gnu.so" : ".py");
                if (f % 25 == 7) {
                    Toc.Entry l = entry(name, Toc.Entry.SYMLINK, 0777);
                    l.linkName = f % 50 == 7 ? "f" + (f - 1) + ".py" : "../../../../" + "lib/x86_64-linux-gnu/".repeat(1 + f % 192) + "libwarm.so";
                    t.entries.add(l);
                } else if (f % 25 == 8) {
                    Toc.Entry h = entry(name, Toc.Entry.HARDLINK, 0644);
                    h.linkName = dir + "/f1.py";
                    t.entries.add(h);
                } else {
                    Toc.Entry e = entry(name, Toc.Entry.REG, f % 10 == 3 ? 0755 : 0644);
                    e.uid = f % 17 == 0 ? 1000 : 0;
                    if (f % 30 == 4) e.xattrs.put("security.capability", Base64.getEncoder().encodeToString(new byte[20]));
                    if (f % 50 == 5) { // large: two chunks and a hole
                        e.size = 2L * CHUNK + 4096;
                        e.chunks.add(new Toc.Chunk(0, CHUNK, digest(n, 0), n * 7000L, 3000));
                        e.chunks.add(new Toc.Chunk(CHUNK, CHUNK, null, 0, 0));
                        e.chunks.add(new Toc.Chunk(2L * CHUNK, 4096, digest(n, 1), n * 7000L + 3000, 2000));
                    } else if (f % 40 != 9) { // else empty
                        e.size = 200 + (f * 37L + d) % 9000;
                        e.chunks.add(new Toc.Chunk(0, (int) e.size, digest(n, 0), n * 7000L, e.size / 2 + 20));
                    }
                    t.entries.add(e);
                    if (n % 11 == 0 && !e.chunks.isEmpty()) { // traced: whole chunks and pieces
                        Toc.Chunk c = e.chunks.getFirst();
                        t.prefetch.add(n % 2 == 0 ? new Toc.Prefetch(t.prefetch.size(), c.digest(), c.size(), 1_000_000_000L + n * 5000L, 2500)
                                : new Toc.Prefetch(t.prefetch.size(), c.digest(), c.size(), 1_000_000_000L + n * 5000L, 900, 0, Math.min(c.size(), 4096), digest(n, 9)));
                    }
                }
            }
        }
        return t;
    }

    /** On top of the lower one: files in its directories (not listed here), whiteouts, an opaque directory, merges. */
    private static Toc upperLayer() {
        Toc t = new Toc();
        t.chunkSize = CHUNK;
        int n = 100_000;
        for (int d = 0; d < 40; d++) {
            String dir = (d % 2 == 0 ? "usr/lib/python3/d" : "usr/share/doc/d") + d;
            if (d % 4 == 0) t.entries.add(entry(dir, Toc.Entry.DIR, 0755)); // merges with the lower one
            if (d % 8 == 1) t.entries.add(entry(dir + "/.wh..wh..opq", Toc.Entry.REG, 0644));
            for (int f = 0; f < 40; f++, n++) {
                if (f % 10 == 2) {
                    t.entries.add(entry(dir + "/.wh.f" + (f + 100) + ".py", Toc.Entry.REG, 0644));
                    continue;
                }
                Toc.Entry e = entry(dir + "/g" + f + ".pyc", Toc.Entry.REG, 0644);
                e.size = 500 + f * 61L;
                e.chunks.add(new Toc.Chunk(0, (int) e.size, digest(n, 0), n * 3000L, 400));
                t.entries.add(e);
            }
        }
        return t;
    }

    private static Toc.Entry entry(String name, String type, int mode) {
        Toc.Entry e = new Toc.Entry();
        e.name = name;
        e.type = type;
        e.mode = mode;
        e.mtime = 1_700_000_000L + name.length();
        e.mtimeNsec = name.hashCode() & 0xffff;
        return e;
    }

    /** What a lower layer has: the made-up lower layer's directories, one with an xattr. */
    private static TocTree.LowerDir lowerDir(String path) {
        return path.startsWith("usr") ? new TocTree.LowerDir(0755, 0, 0, path.endsWith("0") ? Map.of("user.warm", new byte[] {'y'}) : Map.of()) : null;
    }

    private static String digest(int n, int k) {
        return Members.sha256((n + "/" + k).getBytes(StandardCharsets.UTF_8));
    }

    private static byte[] gzip(byte[] data) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream(data.length / 3 + 64);
        try (GZIPOutputStream z = new GZIPOutputStream(out)) {
            z.write(data);
        }
        return out.toByteArray();
    }
}
