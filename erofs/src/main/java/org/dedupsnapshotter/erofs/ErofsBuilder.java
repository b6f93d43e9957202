package org.dedupsnapshotter.erofs;

import org.dedupsnapshotter.sys.Errno;
import org.dedupsnapshotter.sys.Libc;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Turns a directory into an EROFS metadata image with mkfs.erofs (erofs-utils >= 1.5): chunk-based regular
 * files whose data lives on a separate device (the chunk pool), so the image itself holds only metadata.
 * Whiteouts (0/0 char devices) and trusted.overlay.* xattrs pass through unchanged, so the image works as an
 * overlay lower layer.
 */
public final class ErofsBuilder {
    private static final Logger log = LoggerFactory.getLogger(ErofsBuilder.class);
    private static final Pattern VERSION = Pattern.compile("mkfs\\.erofs\\s+(\\d+)\\.(\\d+)");

    /** erofs-utils 1.5 fails ("Could not format the device: ENOENT") on 255-byte names; 254 works (measured). */
    public static final int MAX_NAME_BYTES = 254;

    private final String mkfs;
    private final long chunkSize;

    public ErofsBuilder(String mkfs, long chunkSize) {
        this.mkfs = mkfs;
        this.chunkSize = chunkSize;
    }

    public long chunkSize() { return chunkSize; }

    /**
     * Builds only the metadata image: chunk indexes are laid out but the data is not written anywhere
     * ({@code --blobdev=/dev/null}); the chunk indexer then reads file data from dir, stores new chunks in the
     * pool and points the indexes there. The image is fsynced; the caller renames it into place.
     */
    public void buildMetadata(Path dir, Path image) throws IOException {
        Files.deleteIfExists(image);
        run(List.of(mkfs, "--quiet", "--preserve-mtime", "--chunksize=" + chunkSize, "--blobdev=/dev/null", image.toString(), dir.toString()));
        fsync(image);
    }

    private static void run(List<String> cmd) throws IOException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        try {
            // mkfs is the critical path of a Commit, and the chunk hashing that overlaps it runs on the same cores
            Libc.setpriority(p.pid(), -5);
        } catch (Errno e) {
            // not root, or the process already ended: it runs at normal priority
        }
        byte[] out;
        try (var in = p.getInputStream()) {
            out = in.readAllBytes();
        }
        try {
            if (!p.waitFor(30, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                throw new IOException("mkfs.erofs did not finish in 30 minutes: " + String.join(" ", cmd));
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while running mkfs.erofs", e);
        }
        if (p.exitValue() != 0) {
            String text = new String(out, StandardCharsets.UTF_8).strip();
            if (text.contains("No space left")) throw new NoSpaceException("mkfs.erofs: no space left on device: " + text);
            throw new IOException("mkfs.erofs failed (exit " + p.exitValue() + "): " + text + " [" + String.join(" ", cmd) + "]");
        }
    }

    /** fsync of a file or a directory (so a rename in it is durable). */
    public static void fsync(Path p) throws IOException {
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
            ch.force(true);
        }
    }

    /**
     * mkfs.erofs's version as {major, minor}, or null when it cannot run or lacks the options we use.
     * erofs-utils 1.5 prints its version only while building, so this builds an empty image with the
     * options Commit needs: the probe proves them as well.
     */
    public static int[] version(String mkfs) {
        Path tmp = null;
        try {
            tmp = Files.createTempDirectory("dedup-mkfs-probe");
            Path empty = Files.createDirectory(tmp.resolve("empty"));
            Process p = new ProcessBuilder(mkfs, "--chunksize=4096", "--blobdev=" + tmp.resolve("blob"), "--preserve-mtime",
                    tmp.resolve("img").toString(), empty.toString()).redirectErrorStream(true).start();
            String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) {
                log.debug("mkfs.erofs probe failed: {}", text);
                return null;
            }
            Matcher m = VERSION.matcher(text);
            if (m.find()) return new int[] {Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2))};
            return null;
        } catch (IOException | InterruptedException e) {
            return null;
        } finally {
            if (tmp != null) {
                try (var files = Files.walk(tmp)) {
                    files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
                } catch (IOException ignored) {
                    // a temp dir left behind is harmless
                }
            }
        }
    }

    /** The disk filled while building. */
    public static final class NoSpaceException extends IOException {
        public NoSpaceException(String m) { super(m); }
    }
}
