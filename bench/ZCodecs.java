// bench/ZCodecs.java — decision 60's codec table: the unique 4 MiB chunks (SHA-256) of the given trees, each cut into
// fixed-input pclusters as Pclusters does, compressed per codec; stored = 4 KiB blocks (raw when no block is saved).
// java --enable-native-access=ALL-UNNAMED -Xmx1g -cp LZ4_JAR:ZSTD_JNI_JAR:XZ_JAR bench/ZCodecs.java DIR[,DIR..] ALG:LEVEL:PCLUSTER[,..] [EVERY_NTH_CHUNK]
// ALG: lz4hc, deflate (raw, java.util.zip), zstd (zstd-jni), lzma (xz-java raw LZMA1 as MicroLZMA: first byte ~props). One thread.
import java.io.*;
import java.nio.file.*;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.util.*;
import java.util.zip.Deflater;
import java.lang.management.*;

public class ZCodecs {
    static final int BLOCK = 4096, CHUNK = 4 << 20;
    record Chunk(Path file, long off, int len) {}

    interface Codec { int compress(byte[] in, int off, int len, byte[] out); }

    public static void main(String[] a) throws Exception {
        List<Path> roots = new ArrayList<>();
        for (String r : a[0].split(",")) roots.add(Path.of(r));
        String[] configs = a[1].split(",");
        long sampleEvery = a.length > 2 ? Long.parseLong(a[2]) : 1;
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        Set<String> seen = new HashSet<>();
        List<Chunk> chunks = new ArrayList<>();
        long[] logical = {0}; long unique = 0;
        byte[] buf = new byte[CHUNK];
        List<Chunk> all = new ArrayList<>();
        for (Path root : roots) {
            Set<Object> inodes = new HashSet<>();
            Files.walkFileTree(root, new SimpleFileVisitor<>() {
                public FileVisitResult visitFile(Path f, BasicFileAttributes at) {
                    if (!at.isRegularFile() || at.size() == 0 || !inodes.add(at.fileKey())) return FileVisitResult.CONTINUE;
                    logical[0] += at.size();
                    for (long o = 0; o < at.size(); o += CHUNK) all.add(new Chunk(f, o, (int) Math.min(CHUNK, at.size() - o)));
                    return FileVisitResult.CONTINUE;
                }
            });
        }
        for (Chunk c : all) {
            read(c, buf);
            sha.update(buf, 0, c.len());
            if (seen.add(HexFormat.of().formatHex(sha.digest()))) { chunks.add(c); unique += c.len(); }
        }
        if (sampleEvery > 1) { List<Chunk> s = new ArrayList<>(); for (int i = 0; i < chunks.size(); i += sampleEvery) s.add(chunks.get(i)); chunks = s; }
        long sampled = chunks.stream().mapToLong(Chunk::len).sum();
        System.out.printf("logical %.1f MiB, unique chunks %d (%.1f MiB), measured %d chunks %.1f MiB%n", logical[0] / 1048576.0, seen.size(), unique / 1048576.0, chunks.size(), sampled / 1048576.0);
        long rawBlocks = 0; for (Chunk c : chunks) rawBlocks += (c.len() + BLOCK - 1) / BLOCK;
        System.out.printf("raw 4K-rounded %.1f MiB%n", rawBlocks * 4096 / 1048576.0);
        ThreadMXBean tm = ManagementFactory.getThreadMXBean();
        byte[] out = new byte[4 << 20];
        for (String cfg : configs) {
            String[] p = cfg.split(":");
            String alg = p[0]; int level = Integer.parseInt(p[1]); int pcl = Integer.parseInt(p[2]);
            Codec codec = codec(alg, level, pcl);
            long blocks = 0, cpu = 0, zeroFirst = 0, rawPieces = 0, pieces = 0;
            for (Chunk c : chunks) {
                read(c, buf);
                for (int pos = 0; pos < c.len(); pos += pcl) {
                    int plen = Math.min(pcl, c.len() - pos), rb = (plen + BLOCK - 1) / BLOCK;
                    pieces++;
                    if (rb <= 1) { blocks += rb; rawPieces++; continue; }
                    long t0 = tm.getCurrentThreadCpuTime();
                    int clen = codec.compress(buf, pos, plen, out);
                    cpu += tm.getCurrentThreadCpuTime() - t0;
                    if (clen > 0 && out[0] == 0) { zeroFirst++; clen = -1; }
                    int cb = clen < 0 ? rb : (clen + BLOCK - 1) / BLOCK;
                    if (cb < rb) blocks += cb; else { blocks += rb; rawPieces++; }
                }
            }
            double mib = blocks * 4096 / 1048576.0;
            System.out.printf("%-8s L%-2d %4dK  stored %8.1f MiB  ratio %.3f  cpu %6.2f s  (%.1f s/GB, %.0f MB/s)  raw pieces %d/%d zeroFirst %d%n",
                alg, level, pcl / 1024, mib, (double) blocks / rawBlocks, cpu / 1e9, cpu / 1e9 / (sampled / 1e9), sampled / 1e6 / (cpu / 1e9), rawPieces, pieces, zeroFirst);
        }
    }

    static void read(Chunk c, byte[] buf) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(c.file().toFile(), "r")) { f.seek(c.off()); f.readFully(buf, 0, c.len()); }
    }

    static Codec codec(String alg, int level, int pcl) throws Exception {
        switch (alg) {
            case "lz4hc": {
                var comp = net.jpountz.lz4.LZ4Factory.nativeInstance().highCompressor(level);
                return (in, off, len, out) -> comp.compress(in, off, len, out, 0, out.length);
            }
            case "deflate": {
                Deflater d = new Deflater(level, true);
                return (in, off, len, out) -> {
                    d.reset(); d.setInput(in, off, len); d.finish();
                    int n = 0; while (!d.finished()) { n += d.deflate(out, n, out.length - n); if (n >= out.length) return -1; }
                    return n;
                };
            }
            case "zstd": {
                return (in, off, len, out) -> {
                    long r = com.github.luben.zstd.Zstd.compressByteArray(out, 0, out.length, in, off, len, level);
                    if (com.github.luben.zstd.Zstd.isError(r)) throw new RuntimeException(com.github.luben.zstd.Zstd.getErrorName(r));
                    return (int) r;
                };
            }
            case "lzma": {
                org.tukaani.xz.LZMA2Options o = new org.tukaani.xz.LZMA2Options(level);
                o.setDictSize(Math.max(pcl, 4096));
                return (in, off, len, out) -> {
                    try {
                        ByteArrayOutputStream bo = new ByteArrayOutputStream(len);
                        org.tukaani.xz.LZMAOutputStream z = new org.tukaani.xz.LZMAOutputStream(bo, o, false);
                        z.write(in, off, len); z.finish();
                        byte[] r = bo.toByteArray();
                        if (r[0] != 0) throw new IllegalStateException("raw LZMA1 first byte " + r[0]);
                        r[0] = (byte) ~z.getProps(); // MicroLZMA: the range coder's always-zero first byte carries ~props
                        System.arraycopy(r, 0, out, 0, r.length);
                        return r.length;
                    } catch (IOException e) { throw new UncheckedIOException(e); }
                };
            }
        }
        throw new IllegalArgumentException(alg);
    }
}
