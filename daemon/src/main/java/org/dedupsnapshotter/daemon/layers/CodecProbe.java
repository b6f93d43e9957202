package org.dedupsnapshotter.daemon.layers;

import org.dedupsnapshotter.erofs.Algorithm;
import org.dedupsnapshotter.erofs.CompressedChunkStore;
import org.dedupsnapshotter.erofs.ErofsTree;
import org.dedupsnapshotter.erofs.ErofsWriter;
import org.dedupsnapshotter.erofs.Pclusters;
import org.dedupsnapshotter.sys.Errno;
import org.dedupsnapshotter.sys.Libc;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.Stream;

import static java.nio.file.StandardOpenOption.CREATE;
import static java.nio.file.StandardOpenOption.READ;
import static java.nio.file.StandardOpenOption.WRITE;

/**
 * Finds once at start whether this kernel's EROFS reads the layers compaction would write: mounts a one-file image
 * compressed with the configured codec exactly as compacted layers are (metadata-only image, pclusters in a pool
 * file given as device=) and reads the file back. The kernel's config (Preflight) is not always there to read
 * (containers, some VMs), and a kernel can carry EROFS without a codec; a compacted layer it could not decode
 * would be unreadable until the kernel could.
 */
public final class CodecProbe {
    private static final Logger log = LoggerFactory.getLogger(CodecProbe.class);
    private static final int CHUNK = 1 << 20, PCLUSTER = 64 << 10;

    private CodecProbe() {}

    /** Null when the kernel reads the codec's layers; otherwise why not. Probes in dir (created, and removed again). */
    public static String cannotDecode(Path dir, Algorithm algorithm) {
        try {
            clean(dir);
            return probe(dir, algorithm);
        } catch (IOException | RuntimeException e) {
            return "the probe of " + algorithm.configName() + " layers failed (" + e.getMessage() + ")";
        } finally {
            try {
                clean(dir);
            } catch (IOException e) {
                log.warn("could not remove the codec probe dir {}: {}", dir, e.getMessage());
            }
        }
    }

    private static String probe(Path dir, Algorithm algorithm) throws IOException {
        Path src = Files.createDirectories(dir.resolve("src")), mnt = Files.createDirectories(dir.resolve("mnt"));
        Path poolFile = dir.resolve("pool"), image = dir.resolve("image");
        byte[] text = text();
        Files.write(src.resolve("f"), text);
        long blocks;
        try (FileChannel pool = FileChannel.open(poolFile, CREATE, READ, WRITE)) {
            long[] end = {0};
            CompressedChunkStore store = new CompressedChunkStore(new Pclusters(algorithm, algorithm.minLevel(), PCLUSTER), data -> {
                long at = end[0];
                long pos = at * 4096;
                while (data.hasRemaining()) pos += pool.write(data, pos);
                end[0] = pos / 4096;
                return at;
            });
            ErofsTree tree = ErofsTree.fromDirectoryCompressed(src, CHUNK, store);
            blocks = end[0];
            if (store.storedBlocks() * 4096 >= text.length) throw new IOException("the probe's text did not compress");
            ErofsWriter.write(tree, image, blocks);
        }
        try {
            Libc.mount(image.toString(), mnt.toString(), "erofs", Libc.MS_RDONLY, "device=" + poolFile);
        } catch (Errno e) {
            return "the kernel cannot mount an EROFS image compressed with " + algorithm.configName() + " (" + e.getMessage() + ")";
        }
        try {
            byte[] read = Files.readAllBytes(mnt.resolve("f"));
            if (!Arrays.equals(read, text)) return "the kernel's EROFS read a " + algorithm.configName() + "-compressed file back wrong";
            return null;
        } catch (IOException e) {
            return "the kernel cannot read an EROFS file compressed with " + algorithm.configName() + " (" + e.getMessage() + ")";
        } finally {
            Libc.umount2(mnt.toString(), 0);
        }
    }

    /** 256 KiB of text that compresses, over several pclusters. */
    private static byte[] text() {
        StringBuilder b = new StringBuilder();
        for (int i = 0; b.length() < 256 << 10; i++) b.append("line ").append(i).append(": the probe of a compressed EROFS layer\n");
        return b.substring(0, 256 << 10).getBytes(StandardCharsets.US_ASCII);
    }

    private static void clean(Path dir) throws IOException {
        if (!Files.exists(dir)) return;
        Path mnt = dir.resolve("mnt");
        try {
            Libc.umount2(mnt.toString(), Libc.MNT_DETACH | Libc.UMOUNT_NOFOLLOW); // a crashed probe's mount
        } catch (Errno ignored) {
            // not mounted
        }
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path p : all.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }
}
