package org.dedupsnapshotter.cli;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.zip.GZIPInputStream;

/**
 * The ideal disk bound for chunk-level dedup of a set of layers: cut every regular file of every distinct layer
 * into chunks of the given size (the last one short), keep each distinct chunk once, round each to 4 KiB.
 * Identical layer blobs count once (containerd unpacks them once). All-zero chunks count like any other.
 * Reads OCI layer tars, plain or gzip-compressed.
 */
final class DedupBound {
    record Result(long layers, long files, long logicalBytes, long chunks, long uniqueChunks, long boundBytes) {}

    private DedupBound() {}

    static Result of(List<Path> layers, long chunkSize) throws IOException {
        Set<String> seenLayers = new HashSet<>();
        Map<String, Integer> unique = new HashMap<>();
        long files = 0, logical = 0, chunks = 0, distinctLayers = 0;
        byte[] buf = new byte[Math.toIntExact(chunkSize)];
        for (Path layer : layers) {
            if (!seenLayers.add(sha256File(layer))) continue;
            distinctLayers++;
            try (InputStream in = open(layer)) {
                TarReader tar = new TarReader(in);
                for (TarReader.Entry e; (e = tar.next()) != null; ) {
                    if (e.type() != '0' && e.type() != '\0' && e.type() != '7') continue;
                    if (e.size() == 0) continue;
                    files++;
                    logical += e.size();
                    for (long off = 0; off < e.size(); off += chunkSize) {
                        int n = (int) Math.min(chunkSize, e.size() - off);
                        tar.readFully(buf, n);
                        chunks++;
                        unique.putIfAbsent(sha256(buf, n), n);
                    }
                }
            }
        }
        long bound = unique.values().stream().mapToLong(n -> (n + 4095L) / 4096 * 4096).sum();
        return new Result(distinctLayers, files, logical, chunks, unique.size(), bound);
    }

    private static InputStream open(Path p) throws IOException {
        InputStream in = new BufferedInputStream(Files.newInputStream(p), 1 << 16);
        in.mark(2);
        int b1 = in.read(), b2 = in.read();
        in.reset();
        return b1 == 0x1f && b2 == 0x8b ? new BufferedInputStream(new GZIPInputStream(in, 1 << 16), 1 << 16) : in;
    }

    private static String sha256(byte[] b, int n) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(b, 0, n);
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String sha256File(Path p) throws IOException {
        try (InputStream in = Files.newInputStream(p)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] b = new byte[1 << 16];
            for (int n; (n = in.read(b)) > 0; ) md.update(b, 0, n);
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Just enough of tar (ustar, GNU long names, PAX) to find regular files and their sizes. */
    static final class TarReader {
        record Entry(String name, char type, long size) {}

        private final InputStream in;
        private long remaining, padding;

        TarReader(InputStream in) { this.in = in; }

        Entry next() throws IOException {
            skip(remaining + padding);
            remaining = padding = 0;
            byte[] h = new byte[512];
            String longName = null;
            Long paxSize = null;
            while (true) {
                if (!fill(h)) return null;
                if (isZero(h)) return null;
                char type = (char) h[156];
                long size = parseNumber(h, 124, 12);
                long pad = (512 - size % 512) % 512;
                if (type == 'x' || type == 'g' || type == 'L') {
                    byte[] data = new byte[Math.toIntExact(size)];
                    readExact(data);
                    skip(pad);
                    if (type == 'L') longName = new String(data, StandardCharsets.UTF_8).replace("\0", "");
                    if (type == 'x') for (String rec : new String(data, StandardCharsets.UTF_8).split("\n")) {
                        int sp = rec.indexOf(' '), eq = rec.indexOf('=');
                        if (sp > 0 && eq > sp) {
                            String k = rec.substring(sp + 1, eq), v = rec.substring(eq + 1);
                            if (k.equals("size")) paxSize = Long.parseLong(v);
                            if (k.equals("path")) longName = v;
                        }
                    }
                    continue;
                }
                if (paxSize != null) size = paxSize;
                remaining = size;
                padding = (512 - size % 512) % 512;
                String name = longName != null ? longName : new String(h, 0, 100, StandardCharsets.UTF_8).replace("\0", "");
                return new Entry(name, type, size);
            }
        }

        void readFully(byte[] b, int n) throws IOException {
            int off = 0;
            while (off < n) {
                int r = in.read(b, off, n - off);
                if (r < 0) throw new IOException("tar ends inside a file");
                off += r;
            }
            remaining -= n;
        }

        private boolean fill(byte[] h) throws IOException {
            int off = 0;
            while (off < h.length) {
                int r = in.read(h, off, h.length - off);
                if (r < 0) return false;
                off += r;
            }
            return true;
        }

        private void readExact(byte[] b) throws IOException {
            if (!fill(b)) throw new IOException("tar ends inside a header");
        }

        private void skip(long n) throws IOException {
            while (n > 0) {
                long s = in.skip(n);
                if (s <= 0) {
                    if (in.read() < 0) return;
                    s = 1;
                }
                n -= s;
            }
        }

        private static boolean isZero(byte[] h) {
            for (byte b : h) if (b != 0) return false;
            return true;
        }

        private static long parseNumber(byte[] h, int off, int len) {
            if ((h[off] & 0x80) != 0) { // base-256
                long v = 0;
                for (int i = off + 1; i < off + len; i++) v = (v << 8) | (h[i] & 0xff);
                return v;
            }
            String s = new String(h, off, len, StandardCharsets.US_ASCII).replace("\0", "").trim();
            return s.isEmpty() ? 0 : Long.parseLong(s, 8);
        }
    }
}
