package org.dedupsnapshotter.erofs;

import net.jpountz.lz4.LZ4Compressor;
import net.jpountz.lz4.LZ4Exception;
import net.jpountz.lz4.LZ4SafeDecompressor;
import net.jpountz.lz4.LZ4Factory;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Cuts a chunk into fixed-input pclusters and compresses each with LZ4 HC (decision 50) or ZSTD (decision 60): a
 * piece of pclusterSize bytes (the chunk's last one shorter) becomes ceil(compressed / 4096) blocks, its output
 * right-aligned in them (the leading zeros are EROFS's 0-padding, which lets the kernel find the exact input
 * length: so an output must not start with a zero byte — neither an LZ4 block nor a ZSTD frame, whose magic starts
 * 0x28, ever does); a piece whose output would not save a whole block is kept raw. Pieces restart at the chunk's
 * start, so a chunk's encoded form depends only on its bytes and (algorithm, level, pclusterSize). Thread-safe.
 */
public final class Pclusters {
    private static final Logger log = LoggerFactory.getLogger(Pclusters.class);
    static final int BLOCK = 4096;
    private static final LZ4Factory FACTORY = factory();

    private final Algorithm algorithm;
    private final int level;
    private final int pclusterSize;
    private final LZ4Compressor compressor; // LZ4HC only

    /** The chunk's blocks as they go to the pool, and the chunk's description without its pool address. */
    public record Encoded(byte[] blocks, CompressedChunk chunk) {}

    /** LZ4 HC at level. */
    public Pclusters(int level, int pclusterSize) {
        this(Algorithm.LZ4HC, level, pclusterSize);
    }

    public Pclusters(Algorithm algorithm, int level, int pclusterSize) {
        this(algorithm, level, pclusterSize, FACTORY);
    }

    /** With a given lz4-java implementation (tests: the pure-Java fallback must give what the kernel reads too). */
    Pclusters(int level, int pclusterSize, LZ4Factory factory) {
        this(Algorithm.LZ4HC, level, pclusterSize, factory);
    }

    private Pclusters(Algorithm algorithm, int level, int pclusterSize, LZ4Factory factory) {
        int max = algorithm == Algorithm.LZ4HC ? 17 : algorithm.maxLevel();
        if (level < algorithm.minLevel() || level > max)
            throw new IllegalArgumentException(algorithm.configName() + " level " + level + " (" + algorithm.minLevel() + ".." + max + ")");
        new CompressedChunk(0, 0, pclusterSize, new byte[0]); // validates the size
        this.algorithm = algorithm;
        this.level = level;
        this.pclusterSize = pclusterSize;
        this.compressor = algorithm == Algorithm.LZ4HC ? factory.highCompressor(level) : null;
        if (algorithm == Algorithm.ZSTD) Zstd.load();
    }

    public Algorithm algorithm() { return algorithm; }

    /**
     * MicroLZMA (the kernel's xz_dec_microlzma): a raw LZMA1 stream without end marker, whose first byte — always 0
     * from the range encoder — carries the bitwise NOT of the properties byte instead (so it is never 0 either);
     * dictionary = the pcluster size (the superblock's record says the largest).
     */
    private int lzma(byte[] in, int off, int len, byte[] out) {
        try {
            org.tukaani.xz.LZMA2Options o = new org.tukaani.xz.LZMA2Options(level);
            o.setDictSize(Math.max(pclusterSize, 4096));
            java.io.ByteArrayOutputStream bo = new java.io.ByteArrayOutputStream(len);
            org.tukaani.xz.LZMAOutputStream z = new org.tukaani.xz.LZMAOutputStream(bo, o, false);
            z.write(in, off, len);
            z.finish();
            byte[] r = bo.toByteArray();
            if (r[0] != 0) throw new IllegalStateException("raw LZMA1 first byte " + r[0]);
            r[0] = (byte) ~z.getProps();
            System.arraycopy(r, 0, out, 0, r.length);
            return r.length;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    public int level() { return level; }

    public int pclusterSize() { return pclusterSize; }

    /** Which lz4-java implementation compresses LZ4 HC: "JNI" or "Java (safe)" (zstd-jni has only JNI). */
    public static String implementation() { return FACTORY == LZ4Factory.safeInstance() ? "Java (safe)" : "JNI"; }

    /** Encodes data[off, off + len), one chunk. */
    public Encoded encode(byte[] data, int off, int len) {
        byte[] out = new byte[(len + BLOCK - 1) / BLOCK * BLOCK]; // never larger than raw, block-rounded per piece
        CompressedChunk c = encodeInto(data, off, len, out);
        int at = c.blocks() * BLOCK;
        return new Encoded(at == out.length ? out : java.util.Arrays.copyOf(out, at), c);
    }

    /**
     * As {@link #encode}, into out (at least len rounded up to whole blocks; a caller reuses it from chunk to chunk):
     * the chunk's blocks are out[0, blocks * 4096).
     */
    public CompressedChunk encodeInto(byte[] data, int off, int len, byte[] out) {
        if (out.length < (len + BLOCK - 1) / BLOCK * BLOCK) throw new IllegalArgumentException("an output of " + out.length + " bytes for a chunk of " + len);
        int n = (len + pclusterSize - 1) / pclusterSize;
        byte[] pieces = new byte[n];
        byte[] scratch = new byte[algorithm == Algorithm.LZMA ? 2 * pclusterSize + 4096 : compressor != null ? compressor.maxCompressedLength(pclusterSize) : Zstd.bound(pclusterSize)];
        int at = 0;
        for (int i = 0; i < n; i++) {
            int pos = off + i * pclusterSize, plen = Math.min(pclusterSize, len - i * pclusterSize);
            int rawBlocks = (plen + BLOCK - 1) / BLOCK;
            int clen = rawBlocks <= 1 ? Integer.MAX_VALUE
                    : algorithm == Algorithm.LZMA ? lzma(data, pos, plen, scratch)
                    : compressor != null ? compressor.compress(data, pos, plen, scratch, 0, scratch.length)
                    : Zstd.compress(data, pos, plen, scratch, level);
            if (clen != Integer.MAX_VALUE && scratch[0] == 0) clen = Integer.MAX_VALUE; // would read as padding: keep it raw (never seen)
            int cblocks = clen == Integer.MAX_VALUE ? rawBlocks : (clen + BLOCK - 1) / BLOCK;
            if (cblocks < rawBlocks) {
                pieces[i] = (byte) cblocks;
                java.util.Arrays.fill(out, at, at + cblocks * BLOCK - clen, (byte) 0); // the 0-padding (out may be reused)
                System.arraycopy(scratch, 0, out, at + cblocks * BLOCK - clen, clen);
                at += cblocks * BLOCK;
            } else {
                System.arraycopy(data, pos, out, at, plen);
                java.util.Arrays.fill(out, at + plen, at + rawBlocks * BLOCK, (byte) 0);
                at += rawBlocks * BLOCK;
            }
        }
        return new CompressedChunk(0, at / BLOCK, pclusterSize, pieces, algorithm);
    }

    /**
     * Decodes a chunk of length bytes from its pool blocks as {@link #encode} wrote them (pclusterSize, pieces as in
     * {@link CompressedChunk}): raw pieces are copied, compressed ones decompressed after their 0-padding, each to
     * exactly its piece's length. For fsck --verify-data, which then checks the chunk's SHA-256: EROFS keeps no
     * data checksums (decision 50). LZ4: lz4-java's safe (pure Java, bounds-checked) decoder, whatever the
     * compressor; ZSTD: zstd-jni's. Malformed input of any kind is an IOException naming the piece.
     */
    public static byte[] decode(byte[] stored, int length, int pclusterSize, byte[] pieces) throws IOException {
        return decode(Algorithm.LZ4HC, stored, length, pclusterSize, pieces);
    }

    /** As {@link #decode(byte[], int, int, byte[])}, for a chunk compressed with algorithm. */
    public static byte[] decode(Algorithm algorithm, byte[] stored, int length, int pclusterSize, byte[] pieces) throws IOException {
        int n = (length + pclusterSize - 1) / pclusterSize;
        if (length <= 0 || pieces.length != n) throw new IOException(pieces.length + " pieces for a chunk of " + length + " bytes in pclusters of " + pclusterSize);
        byte[] out = new byte[length];
        int at = 0;
        for (int i = 0; i < n; i++) {
            int pos = i * pclusterSize, plen = Math.min(pclusterSize, length - pos);
            int entry = pieces[i] & 0xff, blocks = CompressedChunk.pieceBlocks(entry, plen);
            if (at + blocks * BLOCK > stored.length) throw new IOException("piece " + i + " ends past the chunk's " + stored.length / BLOCK + " blocks");
            if (entry == 0) {
                System.arraycopy(stored, at, out, pos, plen);
            } else {
                int end = at + blocks * BLOCK, start = at;
                while (start < end && stored[start] == 0) start++; // 0-padding: a stream never starts with a zero byte
                if (start == end || start - at >= BLOCK) throw new IOException("piece " + i + ": " + (start - at) + " bytes of 0-padding");
                int got;
                try {
                    got = algorithm == Algorithm.LZ4HC ? DECODER.decompress(stored, start, end - start, out, pos, plen)
                            : algorithm == Algorithm.LZMA ? unlzma(stored, start, end - start, out, pos, plen, pclusterSize)
                            : Zstd.decompress(stored, start, end - start, out, pos, plen);
                } catch (LZ4Exception e) {
                    throw new IOException("piece " + i + " does not decompress: " + e.getMessage(), e);
                }
                if (got != plen) throw new IOException("piece " + i + " decompresses to " + got + " bytes, not " + plen);
            }
            at += blocks * BLOCK;
        }
        return out;
    }

    /** MicroLZMA back to bytes with xz-java's raw LZMA1 decoder: the first byte restored to 0, the properties from it. */
    private static int unlzma(byte[] in, int off, int len, byte[] out, int outOff, int outLen, int dictSize) throws IOException {
        byte[] s = java.util.Arrays.copyOfRange(in, off, off + len);
        byte props = (byte) ~s[0];
        s[0] = 0;
        try (org.tukaani.xz.LZMAInputStream z = new org.tukaani.xz.LZMAInputStream(new java.io.ByteArrayInputStream(s), outLen, props, Math.max(dictSize, 4096))) {
            int n = 0;
            while (n < outLen) {
                int r = z.read(out, outOff + n, outLen - n);
                if (r < 0) break;
                n += r;
            }
            return n;
        } catch (RuntimeException e) { // xz-java reports some malformed input unchecked
            throw new IOException("lzma: " + e, e);
        }
    }

    private static final LZ4SafeDecompressor DECODER = LZ4Factory.safeInstance().safeDecompressor();

    /**
     * The JNI build when its library loads (lz4-java extracts it to java.io.tmpdir), else the pure-Java safe one:
     * both write standard LZ4 blocks. Not the Unsafe one: sun.misc.Unsafe's memory access warns on JDK 24+.
     */
    private static LZ4Factory factory() {
        try {
            LZ4Factory f = LZ4Factory.nativeInstance();
            f.highCompressor(9).compress(new byte[16], new byte[64]);
            return f;
        } catch (Throwable t) {
            log.info("lz4-java JNI library unavailable ({}); compressing with the pure-Java LZ4 HC", t.toString());
            return LZ4Factory.safeInstance();
        }
    }

    /**
     * zstd-jni (JNI only), used through byte arrays. Its library is loaded from a libzstd-jni.so on
     * java.library.path when there is one (scripts/extract-natives.sh puts it in lib/native beside lz4-java's, so
     * nothing is unpacked to /tmp at each start), else zstd-jni unpacks its own copy as usual.
     */
    static final class Zstd {
        private Zstd() {}

        private static volatile boolean loaded;

        static synchronized void load() {
            if (loaded) return;
            if (System.getProperty("ZstdNativePath") == null) {
                for (String dir : System.getProperty("java.library.path", "").split(java.io.File.pathSeparator)) {
                    if (dir.isEmpty()) continue;
                    Path p = Path.of(dir, "libzstd-jni.so");
                    if (Files.isRegularFile(p)) {
                        System.setProperty("ZstdNativePath", p.toString());
                        break;
                    }
                }
            }
            com.github.luben.zstd.util.Native.load();
            loaded = true;
        }

        static int bound(int length) { return (int) com.github.luben.zstd.Zstd.compressBound(length); }

        /** One ZSTD frame (content size in its header, no checksum: the pool keys chunks by SHA-256). */
        static int compress(byte[] in, int off, int len, byte[] out, int level) {
            long r = com.github.luben.zstd.Zstd.compressByteArray(out, 0, out.length, in, off, len, level);
            if (com.github.luben.zstd.Zstd.isError(r)) throw new IllegalStateException("zstd: " + com.github.luben.zstd.Zstd.getErrorName(r));
            return Math.toIntExact(r);
        }

        static int decompress(byte[] in, int off, int len, byte[] out, int outOff, int outLen) throws IOException {
            load();
            try {
                long r = com.github.luben.zstd.Zstd.decompressByteArray(out, outOff, outLen, in, off, len);
                if (com.github.luben.zstd.Zstd.isError(r)) throw new IOException("zstd: " + com.github.luben.zstd.Zstd.getErrorName(r));
                return Math.toIntExact(r);
            } catch (com.github.luben.zstd.ZstdException e) { // what zstd-jni throws for a malformed frame
                throw new IOException("zstd: " + e.getMessage(), e);
            }
        }
    }
}
