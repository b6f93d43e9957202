package org.dedupsnapshotter.erofs;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.zip.CRC32C;

/**
 * Reads an EROFS metadata image as mkfs.erofs 1.5 writes it with {@code --chunksize} and a blob device (or as
 * {@link ErofsWriter} does), finds every chunk index of every regular file (with the file's path, so its bytes
 * can be read from the source tree), and rewrites indexes to point into the chunk pool. Layout facts (superblock at 1024; nid → meta_blkaddr
 * * blksz + nid * 32; compact 32-byte / extended 64-byte inodes; 8-byte chunk indexes after inode + xattrs,
 * 8-byte aligned) are the on-disk format's, see docs/decisions.md.
 */
public final class ErofsImage {
    public static final int SUPERBLOCK_OFFSET = 1024;
    public static final int MAGIC = 0xE0F5E1E2;
    public static final long NULL_ADDR = 0xFFFFFFFFL;
    static final int LAYOUT_FLAT_PLAIN = 0, LAYOUT_COMPRESSED_FULL = 1, LAYOUT_FLAT_INLINE = 2, LAYOUT_CHUNK_BASED = 4;
    private static final int Z_PLAIN = 0, Z_HEAD1 = 1, Z_NONHEAD = 2, Z_ADVISE_BIG_PCLUSTER_1 = 2, Z_D0_CBLKCNT = 1 << 11;
    static final int CHUNK_FORMAT_INDEXES = 0x20, FEATURE_COMPAT_SB_CHKSUM = 1;
    static final int FT_REG_FILE = 1, FT_DIR = 2;

    /** One chunk of one regular file: where its index lives in the image and which bytes of the file it covers. */
    public record FileChunk(String path, long fileOffset, int length, int indexOffset, long blkaddr) {}

    private final ByteBuffer buf;
    private final int blkszbits;
    private final long metaBase;
    private final int rootNid;
    private final int extraDevices;
    private final int devtSlotoff;

    private ErofsImage(ByteBuffer buf) throws IOException {
        this.buf = buf.order(ByteOrder.LITTLE_ENDIAN);
        if (buf.capacity() < SUPERBLOCK_OFFSET + 128 || buf.getInt(SUPERBLOCK_OFFSET) != MAGIC) throw new IOException("not an EROFS image (bad magic)");
        blkszbits = buf.get(SUPERBLOCK_OFFSET + 12) & 0xff;
        if (blkszbits != 12) throw new IOException("unsupported EROFS block size 2^" + blkszbits + " (only 4096)");
        rootNid = buf.getShort(SUPERBLOCK_OFFSET + 14) & 0xffff;
        metaBase = (buf.getInt(SUPERBLOCK_OFFSET + 40) & 0xffffffffL) << blkszbits;
        extraDevices = buf.getShort(SUPERBLOCK_OFFSET + 86) & 0xffff;
        devtSlotoff = buf.getShort(SUPERBLOCK_OFFSET + 88) & 0xffff;
    }

    public static ErofsImage read(Path image) throws IOException {
        byte[] bytes = Files.readAllBytes(image);
        return new ErofsImage(ByteBuffer.wrap(bytes));
    }

    public int blockSize() { return 1 << blkszbits; }

    /**
     * One pcluster of a compressed file (data layout 1 with full indexes, as {@link ErofsWriter} writes them, decision
     * 50): the file bytes it holds and the pool blocks it takes; compressed false: the bytes lie raw at poolBlock.
     */
    public record Pcluster(String path, long fileOffset, int length, long poolBlock, int blocks, boolean compressed, Algorithm algorithm) {}

    /**
     * Every chunk of every chunk-based regular file, hardlinked files once, in directory order. Compressed files
     * (issue 23) are skipped: their pool extents are {@link #pclusters()}. Any other data layout is an IOException.
     */
    public List<FileChunk> chunks() throws IOException {
        List<FileChunk> out = new ArrayList<>();
        walk(rootNid, "", new HashSet<>(), 0, (f, path) -> {
            if (f.layout != LAYOUT_COMPRESSED_FULL) fileChunks(f, path, out);
        });
        return out;
    }

    /**
     * Every pcluster of every compressed regular file, hardlinked files once, in directory order; files of other
     * layouts are skipped. Addresses below {@link CompressedChunk#UNIADDR} (not in the pool) are an IOException.
     */
    public List<Pcluster> pclusters() throws IOException {
        List<Pcluster> out = new ArrayList<>();
        walk(rootNid, "", new HashSet<>(), 0, (f, path) -> {
            if (f.layout == LAYOUT_COMPRESSED_FULL && f.size > 0) filePclusters(f, path, out);
        });
        return out;
    }

    @FunctionalInterface
    private interface FileVisitor {
        void visit(Inode file, String path) throws IOException;
    }

    private void walk(long dirNid, String dirPath, Set<Long> seen, int depth, FileVisitor visitor) throws IOException {
        if (depth > 4096) throw new IOException("EROFS directory tree too deep (a loop?)");
        Inode dir = inode(dirNid);
        byte[] data = dir.data();
        int bs = blockSize();
        for (int blockStart = 0; blockStart < data.length; blockStart += bs) {
            int blockLen = Math.min(bs, data.length - blockStart);
            ByteBuffer b = ByteBuffer.wrap(data, blockStart, blockLen).slice().order(ByteOrder.LITTLE_ENDIAN);
            int first = b.getShort(8) & 0xffff;
            int count = first / 12;
            for (int i = 0; i < count; i++) {
                long nid = b.getLong(i * 12);
                int nameoff = b.getShort(i * 12 + 8) & 0xffff;
                int type = b.get(i * 12 + 10) & 0xff;
                int end = i + 1 < count ? b.getShort((i + 1) * 12 + 8) & 0xffff : blockLen;
                int nameEnd = nameoff;
                while (nameEnd < end && b.get(nameEnd) != 0) nameEnd++;
                byte[] nameBytes = new byte[nameEnd - nameoff];
                b.get(nameoff, nameBytes);
                String name = new String(nameBytes, StandardCharsets.UTF_8);
                if (name.equals(".") || name.equals("..")) continue;
                String path = dirPath.isEmpty() ? name : dirPath + "/" + name;
                if (type == FT_DIR) {
                    walk(nid, path, seen, depth + 1, visitor);
                } else if (type == FT_REG_FILE && seen.add(nid)) {
                    visitor.visit(inode(nid), path);
                }
            }
        }
    }

    private void fileChunks(Inode f, String path, List<FileChunk> out) throws IOException {
        if (f.size == 0) return;
        if (f.layout != LAYOUT_CHUNK_BASED) throw new IOException(path + ": data layout " + f.layout + " is not chunk-based");
        int format = f.iu & 0xffff;
        if ((format & CHUNK_FORMAT_INDEXES) == 0) throw new IOException(path + ": chunk format without device indexes");
        int chunkBits = blkszbits + (format & 0x1f);
        long chunkSize = 1L << chunkBits;
        long n = (f.size + chunkSize - 1) >>> chunkBits;
        long base = (f.offset + f.inodeSize + f.xattrSize + 7) & ~7L;
        for (long k = 0; k < n; k++) {
            int idx = Math.toIntExact(base + k * 8);
            long off = k * chunkSize;
            out.add(new FileChunk(path, off, (int) Math.min(chunkSize, f.size - off), idx, buf.getInt(idx + 4) & 0xffffffffL));
        }
    }

    /** Decodes the full lcluster indexes: a pcluster runs from its HEAD/PLAIN lcluster to the next one (or the file's end). */
    private void filePclusters(Inode f, String path, List<Pcluster> out) throws IOException {
        int base = Math.toIntExact((f.offset + f.inodeSize + f.xattrSize + 7) & ~7L);
        int advise = buf.getShort(base + 4) & 0xffff, algorithm = buf.get(base + 6) & 0x0f, clusterBits = buf.get(base + 7) & 0xff;
        Algorithm alg = Algorithm.ofErofsId(algorithm);
        if (clusterBits != 0 || alg == null) throw new IOException(path + ": lcluster bits " + clusterBits + ", algorithm " + algorithm + " (only 4 KiB, LZ4 or ZSTD)");
        long lclusters = (f.size + 4095) >>> 12;
        int first = base + 16;
        if (first + lclusters * 8 > buf.capacity()) throw new IOException(path + ": lcluster indexes outside the image");
        for (long lcn = 0; lcn < lclusters; ) {
            int at = Math.toIntExact(first + lcn * 8);
            int type = buf.getShort(at) & 3, clusterofs = buf.getShort(at + 2) & 0xffff;
            if (type == Z_NONHEAD || clusterofs != 0) throw new IOException(path + ": lcluster " + lcn + " of type " + type + " at offset " + clusterofs + " where a pcluster should start");
            long blkaddr = buf.getInt(at + 4) & 0xffffffffL;
            if (blkaddr < CompressedChunk.UNIADDR) throw new IOException(path + ": pcluster at block " + blkaddr + " is not in the pool");
            long next = lcn + 1;
            while (next < lclusters && (buf.getShort(Math.toIntExact(first + next * 8)) & 3) == Z_NONHEAD) next++;
            int blocks = 1;
            if (type == Z_HEAD1 && next > lcn + 1 && (advise & Z_ADVISE_BIG_PCLUSTER_1) != 0) {
                int d0 = buf.getShort(at + 8 + 4) & 0xffff;
                if ((d0 & Z_D0_CBLKCNT) == 0) throw new IOException(path + ": lcluster " + (lcn + 1) + " lacks the pcluster's block count");
                blocks = d0 & ~Z_D0_CBLKCNT;
            } else if (type != Z_PLAIN && type != Z_HEAD1) {
                throw new IOException(path + ": lcluster type " + type);
            }
            long offset = lcn << 12;
            out.add(new Pcluster(path, offset, (int) Math.min((next - lcn) << 12, f.size - offset), blkaddr - CompressedChunk.UNIADDR, blocks, type == Z_HEAD1, alg));
            lcn = next;
        }
    }

    /** Points one chunk index at a block of device 1 (the pool), or makes it a hole with NULL_ADDR. */
    public void setIndex(int indexOffset, long blkaddr) {
        buf.putShort(indexOffset, (short) 0);
        buf.putShort(indexOffset + 2, (short) (blkaddr == NULL_ADDR ? 0 : 1));
        buf.putInt(indexOffset + 4, (int) blkaddr);
    }

    /** Records the size of device 1 (only statfs uses it). */
    public void setDeviceBlocks(long blocks) throws IOException {
        if (extraDevices != 1) throw new IOException("image has " + extraDevices + " extra devices, expected 1");
        buf.putInt(devtSlotoff * 128 + 64, (int) Math.min(blocks, 0xffffffffL));
    }

    /**
     * Recomputes the superblock checksum: CRC-32C over the rest of the superblock's block with the field zeroed,
     * stored as the raw register (the kernel's crc32c(~0, ...), which is the bitwise NOT of the standard CRC-32C
     * value java.util.zip.CRC32C returns).
     */
    public void fixChecksum() {
        int flags = buf.getInt(SUPERBLOCK_OFFSET + 8);
        if ((flags & FEATURE_COMPAT_SB_CHKSUM) == 0) return;
        buf.putInt(SUPERBLOCK_OFFSET + 4, checksum());
    }

    public boolean checksumValid() {
        int flags = buf.getInt(SUPERBLOCK_OFFSET + 8);
        return (flags & FEATURE_COMPAT_SB_CHKSUM) == 0 || buf.getInt(SUPERBLOCK_OFFSET + 4) == checksum();
    }

    private int checksum() { return checksum(buf); }

    /** The superblock checksum of an image of 4096-byte blocks (see {@link #fixChecksum}); ErofsWriter uses it too. */
    static int checksum(ByteBuffer image) {
        byte[] sb = new byte[4096 - SUPERBLOCK_OFFSET];
        image.get(SUPERBLOCK_OFFSET, sb);
        sb[4] = sb[5] = sb[6] = sb[7] = 0;
        CRC32C crc = new CRC32C();
        crc.update(sb);
        return ~(int) crc.getValue();
    }

    /** Writes the (rewritten) image to path and fsyncs it. */
    public void write(Path path) throws IOException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer b = buf.duplicate().clear();
            while (b.hasRemaining()) ch.write(b);
            ch.force(true);
        }
    }

    // ------------------------------------------------------------------ inodes

    private final class Inode {
        long offset;
        int layout, inodeSize, xattrSize, iu;
        long size;

        byte[] data() throws IOException {
            int bs = blockSize();
            if (size > Integer.MAX_VALUE) throw new IOException("directory too large");
            byte[] out = new byte[(int) size];
            long raw = iu & 0xffffffffL;
            if (layout == LAYOUT_FLAT_PLAIN) {
                copy(raw << blkszbits, out, 0, out.length);
            } else if (layout == LAYOUT_FLAT_INLINE) {
                int full = (int) (size / bs) * bs;
                if (full > 0) copy(raw << blkszbits, out, 0, full);
                copy(offset + inodeSize + xattrSize, out, full, out.length - full);
            } else {
                throw new IOException("directory with data layout " + layout);
            }
            return out;
        }
    }

    private void copy(long from, byte[] to, int at, int len) throws IOException {
        if (from < 0 || from + len > buf.capacity()) throw new IOException("EROFS data at " + from + "+" + len + " lies outside the image");
        buf.get(Math.toIntExact(from), to, at, len);
    }

    private Inode inode(long nid) throws IOException {
        long off = metaBase + nid * 32;
        if (off < 0 || off + 32 > buf.capacity()) throw new IOException("inode " + nid + " lies outside the image");
        Inode i = new Inode();
        i.offset = off;
        int at = Math.toIntExact(off);
        int format = buf.getShort(at) & 0xffff;
        boolean extended = (format & 1) != 0;
        i.layout = (format >> 1) & 7;
        int xattrCount = buf.getShort(at + 2) & 0xffff;
        i.xattrSize = xattrCount == 0 ? 0 : 12 + (xattrCount - 1) * 4;
        i.inodeSize = extended ? 64 : 32;
        i.size = extended ? buf.getLong(at + 8) : buf.getInt(at + 8) & 0xffffffffL;
        i.iu = buf.getInt(at + 16);
        return i;
    }
}
