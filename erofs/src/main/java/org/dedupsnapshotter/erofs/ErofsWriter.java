package org.dedupsnapshotter.erofs;

import org.dedupsnapshotter.erofs.ErofsTree.Node;
import org.dedupsnapshotter.erofs.ErofsTree.Type;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import static java.nio.file.StandardOpenOption.CREATE;
import static java.nio.file.StandardOpenOption.TRUNCATE_EXISTING;
import static java.nio.file.StandardOpenOption.WRITE;

/**
 * Writes an {@link ErofsTree} as an EROFS metadata image whose file data lives in the chunk pool (device 1),
 * without touching the data: what mkfs.erofs 1.5 writes with {@code --chunksize --blobdev}, in the same on-disk
 * format and order (a tree that fits one block gives mkfs.erofs's bytes), but from a tree of pool block addresses.
 * <p>
 * Layout: block 0 holds the superblock at 1024, the one-slot device table at 1152 and inodes from 1280 (root
 * first: root_nid is 16 bits); meta_blkaddr is 0. Every inode is extended (64 bytes: 32-bit owners,
 * nanosecond mtime, 64-bit size) with its xattrs inline. Directory blocks and symlink targets keep their tail
 * inline after the inode when it fits the inode's block; their whole blocks follow the metadata blocks.
 * <p>
 * A tree with {@link InodeFingerprint}s (see {@link ErofsTree.Node#regular(ErofsTree.Attributes, long, long[], byte[])})
 * also gets what mkfs.erofs 1.9 {@code --xattr-inode-digest} writes for them (decision 36): a long xattr name
 * prefix table in block 0 before the inodes, located by the superblock as a plain table (COMPAT_PLAIN_XATTR_PFX)
 * and named as the page-cache-share key (COMPAT_ISHARE_XATTRS, ishare_xattr_prefix_id 0), which needs
 * INCOMPAT_XATTR_PREFIXES (Linux >= 6.4). Kernels before 7.0 ignore the compat bits and the xattr.
 * <p>
 * Regular files made with {@link ErofsTree.Node#compressed} are written as compressed inodes (LZ4, or ZSTD: decision
 * 60; one algorithm per file) with full lcluster indexes whose pclusters lie in the pool at
 * {@link CompressedChunk#UNIADDR} + pool block (decision 50); an image with any of them also gets a config record per
 * algorithm used from 1152 and its device slot at 1280. A tree without them gives the same bytes as before.
 */
public final class ErofsWriter {
    private static final int BLOCK = MetaAllocator.BLOCK, INODE = 64, DIRENT = 12;
    private static final int SUPERBLOCK = ErofsImage.SUPERBLOCK_OFFSET, DEVICE_SLOT = SUPERBLOCK + 128, DEVICE_SLOT_SIZE = 128;
    private static final int FEATURE_COMPAT_SB_CHKSUM = 1, FEATURE_COMPAT_MTIME = 2, FEATURE_COMPAT_PLAIN_XATTR_PFX = 0x10, FEATURE_COMPAT_ISHARE_XATTRS = 0x20;
    private static final int FEATURE_INCOMPAT_CHUNKED_FILE = 4, FEATURE_INCOMPAT_DEVICE_TABLE = 8, FEATURE_INCOMPAT_XATTR_PREFIXES = 0x40;
    private static final int LAYOUT_FLAT_PLAIN = 0, LAYOUT_FLAT_INLINE = 2, LAYOUT_CHUNK_BASED = 4;
    private static final int POOL_DEVICE = 1;
    // Compressed files (decision 50): LZ4 0-padding, COMPR_CFGS (which is also the big pcluster bit), full lcluster indexes.
    private static final int FEATURE_INCOMPAT_ZERO_PADDING = 1, FEATURE_INCOMPAT_COMPR_CFGS = 2, LAYOUT_COMPRESSED_FULL = 1;
    /** With compressed files the LZ4 config record follows the superblock, so the device slot moves one slot on. */
    private static final int COMPR_CFGS = SUPERBLOCK + 128, Z_DEVICE_SLOT = DEVICE_SLOT + DEVICE_SLOT_SIZE;
    private static final int Z_ADVISE_BIG_PCLUSTER_1 = 2, LCLUSTER_PLAIN = 0, LCLUSTER_HEAD1 = 1, LCLUSTER_NONHEAD = 2, D0_CBLKCNT = 1 << 11;
    private static final int LZ4_MAX_DISTANCE = 65535;
    private static final int ZSTD_WINDOWLOG_MIN = 10;

    private ErofsWriter() {}

    /**
     * Writes the image of tree to image and fsyncs it; poolBlocks is the pool's size, recorded in the device table.
     * Each image gets a random uuid, as from mkfs.erofs: overlayfs turns xino off for lower layers whose uuid is
     * null or shared.
     */
    public static void write(ErofsTree tree, Path image, long poolBlocks) throws IOException {
        write(tree, image, poolBlocks, true);
    }

    /** As {@link #write(ErofsTree, Path, long)}; without fingerprints the nodes' fingerprints are left out. */
    public static void write(ErofsTree tree, Path image, long poolBlocks, boolean fingerprints) throws IOException {
        ByteBuffer bytes = ByteBuffer.wrap(image(tree, poolBlocks, UUID.randomUUID(), fingerprints));
        try (FileChannel ch = FileChannel.open(image, CREATE, WRITE, TRUNCATE_EXISTING)) {
            while (bytes.hasRemaining()) ch.write(bytes);
            ch.force(true);
        }
    }

    /** The image's bytes. A tree EROFS cannot hold is an IllegalArgumentException naming the path. */
    static byte[] image(ErofsTree tree, long poolBlocks, UUID uuid) {
        return image(tree, poolBlocks, uuid, true);
    }

    static byte[] image(ErofsTree tree, long poolBlocks, UUID uuid, boolean fingerprints) {
        List<Inode> inodes = inodesRootFirst(tree.root());
        // the largest pcluster of any compressed file, in blocks; 0: none, and the image is byte for byte as before
        int maxPclusterBlocks = inodes.stream().filter(i -> i.node.compressedChunks != null)
                .flatMap(i -> Arrays.stream(i.node.compressedChunks)).mapToInt(c -> c.pclusterSize() / BLOCK).max().orElse(0);
        // the kernel maps an address past the slot's range to the primary image, not the pool (the probe of issue 23): refuse it
        long poolEnd = inodes.stream().filter(i -> i.node.compressedChunks != null).flatMap(i -> Arrays.stream(i.node.compressedChunks))
                .mapToLong(c -> c.poolBlock() + c.blocks()).max().orElse(0);
        if (poolEnd > poolBlocks) throw new IllegalArgumentException("a compressed chunk ends at pool block " + poolEnd + ", beyond the pool's " + poolBlocks + " blocks");
        // available_compr_algs: one bit per EROFS algorithm number a compressed chunk uses
        int algorithms = inodes.stream().filter(i -> i.node.compressedChunks != null).flatMap(i -> Arrays.stream(i.node.compressedChunks))
                .mapToInt(c -> 1 << c.algorithm().erofsId()).reduce(0, (x, y) -> x | y);
        MetaAllocator meta = new MetaAllocator((maxPclusterBlocks > 0 ? Z_DEVICE_SLOT : DEVICE_SLOT) + DEVICE_SLOT_SIZE);
        byte[] prefixTable = fingerprints && inodes.stream().anyMatch(i -> i.node.fingerprint != null) ? InlineXattrs.fingerprintPrefixTable() : null;
        long prefixTableAt = prefixTable == null ? -1 : meta.allocate(prefixTable.length);
        for (Inode i : inodes) {
            i.prepare(tree.chunkSize(), prefixTable != null);
            i.offset = meta.allocate(i.recordSize);
        }
        long blocks = meta.blocks();
        for (Inode i : inodes) {
            if (i.dataBlocks == 0) continue;
            i.rawBlock = blocks;
            blocks += i.dataBlocks;
        }
        if (blocks * BLOCK > Integer.MAX_VALUE - BLOCK) throw new IllegalArgumentException("image of " + blocks + " blocks is too large");
        ByteBuffer b = ByteBuffer.wrap(new byte[(int) (blocks * BLOCK)]).order(ByteOrder.LITTLE_ENDIAN);
        for (Inode i : inodes) i.write(b, tree.chunkSize());
        if (prefixTable != null) b.put(Math.toIntExact(prefixTableAt), prefixTable);
        Inode root = inodes.getFirst();
        superblock(b, root, inodes.size(), blocks, poolBlocks, uuid, prefixTableAt, maxPclusterBlocks, algorithms);
        return b.array();
    }

    /**
     * Depth first, each directory before its entries in name order, as mkfs.erofs orders them (so small trees give
     * the same bytes as mkfs.erofs, which the tests check); the root gets the first nid. A hardlinked file is
     * placed at its first name in that order.
     */
    private static List<Inode> inodesRootFirst(Node rootNode) {
        Inode root = new Inode(rootNode, null, null);
        Map<Node, Inode> seen = new IdentityHashMap<>(Map.of(rootNode, root));
        List<Inode> order = new ArrayList<>();
        ArrayDeque<Inode> stack = new ArrayDeque<>(List.of(root));
        while (!stack.isEmpty()) {
            Inode next = stack.pop();
            if (next.ino >= 0) continue; // a hardlink's second name
            next.ino = order.size();
            order.add(next);
            if (next.node.type == Type.DIRECTORY) {
                linkChildren(next, seen);
                for (Entry e : next.entries.reversed()) {
                    if (!Arrays.equals(e.name, ErofsTree.DOT) && !Arrays.equals(e.name, ErofsTree.DOTDOT)) stack.push(e.target);
                }
            }
        }
        return order;
    }

    /** The dirents of dir, "." and ".." among them, sorted; counts links. */
    private static void linkChildren(Inode dir, Map<Node, Inode> seen) {
        dir.entries.add(new Entry(ErofsTree.DOT, dir));
        dir.entries.add(new Entry(ErofsTree.DOTDOT, dir.parent == null ? dir : dir.parent));
        int subdirs = 0;
        for (var e : dir.node.children().entrySet()) {
            Inode child = seen.get(e.getValue());
            if (child == null) {
                child = new Inode(e.getValue(), dir, e.getKey());
                seen.put(e.getValue(), child);
            } else if (child.node.type == Type.DIRECTORY) {
                throw new IllegalArgumentException(dir.path() + "/" + ErofsTree.printable(e.getKey()) + ": a directory under a second name (" + child.path() + ")");
            }
            child.nlink++;
            if (child.node.type == Type.DIRECTORY) subdirs++;
            dir.entries.add(new Entry(e.getKey(), child));
        }
        dir.entries.sort((x, y) -> Arrays.compareUnsigned(x.name, y.name)); // places "." and ".." among the sorted children
        dir.nlink = 2 + subdirs;
    }

    private record Entry(byte[] name, Inode target) {}

    /** One inode and where its parts go. */
    private static final class Inode {
        final Node node;
        final Inode parent;
        final byte[] name;
        /** Position in the image's inode order; -1 until placed. */
        int ino = -1;
        final List<Entry> entries = new ArrayList<>();
        int nlink;
        byte[] xattrs;
        int layout;
        long size;
        /** Directories: entries per dirent block. */
        int[] entriesPerBlock;
        int recordSize;
        int dataBlocks;
        long offset, rawBlock;
        /** Compressed files: pool blocks of all their chunks (i_u), logical clusters (one index each). */
        long compressedBlocks;
        int lclusters;

        Inode(Node node, Inode parent, byte[] name) {
            this.node = node;
            this.parent = parent;
            this.name = name;
        }

        String path() {
            return parent == null ? "/" : (parent.parent == null ? "" : parent.path()) + "/" + ErofsTree.printable(name);
        }

        int nid() { return Math.toIntExact(offset / MetaAllocator.SLOT); }

        int head() { return INODE + xattrs.length; }

        /** Decides layout and sizes, before any offset is known. */
        void prepare(long chunkSize, boolean fingerprints) {
            try {
                xattrs = InlineXattrs.encode(node.attributes.xattrs(), fingerprints ? node.fingerprint : null);
                switch (node.type) {
                    case DIRECTORY -> flat(direntBytes());
                    case SYMLINK -> flat(node.target.length);
                    case REGULAR -> {
                        if (node.compressedChunks != null) compressedFull(chunkSize);
                        else chunked(chunkSize);
                    }
                    default -> {
                        layout = LAYOUT_FLAT_PLAIN;
                        recordSize = head();
                    }
                }
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(path() + ": " + e.getMessage(), e);
            }
        }

        /** Fills dirent blocks greedily in name order; the size ends at the last block's last name. */
        private long direntBytes() {
            int[] perBlock = new int[entries.size()];
            int blocks = 0, used = 0, count = 0;
            for (Entry e : entries) {
                if (used + DIRENT + e.name.length > BLOCK) {
                    perBlock[blocks++] = count;
                    used = count = 0;
                }
                used += DIRENT + e.name.length;
                count++;
            }
            perBlock[blocks++] = count;
            entriesPerBlock = Arrays.copyOf(perBlock, blocks);
            return (long) (blocks - 1) * BLOCK + used;
        }

        /** Whole blocks in the data area; the tail inline when it fits after the inode in its block. */
        private void flat(long bytes) {
            size = bytes;
            int tail = (int) (size % BLOCK);
            if (tail > 0 && head() + tail <= BLOCK) {
                layout = LAYOUT_FLAT_INLINE;
                dataBlocks = Math.toIntExact(size / BLOCK);
                recordSize = head() + tail;
            } else {
                layout = LAYOUT_FLAT_PLAIN;
                dataBlocks = Math.toIntExact((size + BLOCK - 1) / BLOCK);
                recordSize = head();
            }
        }

        private void chunked(long chunkSize) {
            size = node.size;
            long chunks = (size + chunkSize - 1) / chunkSize;
            if (node.chunkBlocks.length != chunks)
                throw new IllegalArgumentException(node.chunkBlocks.length + " chunk blocks for " + size + " bytes in chunks of " + chunkSize + " (" + chunks + " needed)");
            layout = size == 0 ? LAYOUT_FLAT_PLAIN : LAYOUT_CHUNK_BASED; // an empty file has no indexes (as mkfs.erofs)
            recordSize = size == 0 ? head() : indexesStart() + Math.toIntExact(chunks * 8);
        }

        /** The map header, 8 reserved bytes and one 8-byte index per 4 KiB of the file follow inode and xattrs, 8-byte aligned. */
        private void compressedFull(long chunkSize) {
            size = node.size;
            long chunks = (size + chunkSize - 1) / chunkSize;
            if (node.compressedChunks.length != chunks)
                throw new IllegalArgumentException(node.compressedChunks.length + " compressed chunks for " + size + " bytes in chunks of " + chunkSize + " (" + chunks + " needed)");
            for (int k = 0; k < chunks; k++) {
                CompressedChunk c = node.compressedChunks[k];
                // one algorithm per inode: HEAD2 lclusters could name a second one, but nothing here needs that
                if (c.algorithm() != node.compressedChunks[0].algorithm())
                    throw new IllegalArgumentException("chunk " + k + " compressed with " + c.algorithm() + ", chunk 0 with " + node.compressedChunks[0].algorithm());
                if (chunkSize % c.pclusterSize() != 0) throw new IllegalArgumentException("pcluster size " + c.pclusterSize() + " does not divide the chunk size " + chunkSize);
                c.check((int) Math.min(chunkSize, size - k * chunkSize));
                compressedBlocks += c.blocks();
            }
            if (compressedBlocks > 0xffffffffL) throw new IllegalArgumentException(compressedBlocks + " compressed blocks beyond 32 bits");
            if (size == 0) {
                layout = LAYOUT_FLAT_PLAIN; // as an uncompressed empty file: nothing to index
                recordSize = head();
                return;
            }
            layout = LAYOUT_COMPRESSED_FULL;
            lclusters = Math.toIntExact((size + BLOCK - 1) / BLOCK);
            recordSize = Math.toIntExact(indexesStart() + 16 + 8L * lclusters);
        }

        /** Chunk indexes follow inode and xattrs, 8-byte aligned. */
        private int indexesStart() { return (head() + 7) & ~7; }

        void write(ByteBuffer b, long chunkSize) {
            int at = Math.toIntExact(offset);
            b.putShort(at, (short) (1 | layout << 1)); // bit 0: extended inode
            b.putShort(at + 2, (short) InlineXattrs.icount(xattrs));
            b.putShort(at + 4, (short) (node.type.modeBits | node.attributes.permissions()));
            b.putLong(at + 8, size);
            b.putInt(at + 16, union(chunkSize));
            b.putInt(at + 20, ino);
            b.putInt(at + 24, (int) node.attributes.uid());
            b.putInt(at + 28, (int) node.attributes.gid());
            b.putLong(at + 32, node.attributes.mtimeSeconds());
            b.putInt(at + 40, node.attributes.mtimeNanos());
            b.putInt(at + 44, nlink);
            b.put(at + INODE, xattrs);
            switch (node.type) {
                case DIRECTORY -> data(b, dirents());
                case SYMLINK -> data(b, node.target);
                case REGULAR -> {
                    if (layout == LAYOUT_COMPRESSED_FULL) lclusterIndexes(b, at + indexesStart(), chunkSize);
                    else if (layout == LAYOUT_CHUNK_BASED) indexes(b, at + indexesStart());
                }
                default -> { }
            }
        }

        /** i_u: data block, chunk format or device number, by type. */
        private int union(long chunkSize) {
            return switch (node.type) {
                case DIRECTORY, SYMLINK -> dataBlocks > 0 ? (int) rawBlock : (int) ErofsImage.NULL_ADDR;
                case REGULAR -> size == 0 ? 0 : layout == LAYOUT_COMPRESSED_FULL ? (int) compressedBlocks
                        : (Long.numberOfTrailingZeros(chunkSize) - 12) | ErofsImage.CHUNK_FORMAT_INDEXES;
                case CHAR_DEVICE, BLOCK_DEVICE -> (node.minor & 0xff) | node.major << 8 | (node.minor & ~0xff) << 12; // new_encode_dev
                case FIFO, SOCKET -> 0;
            };
        }

        private void data(ByteBuffer b, byte[] content) {
            int whole = layout == LAYOUT_FLAT_INLINE ? dataBlocks * BLOCK : content.length;
            if (whole > 0) b.put(Math.toIntExact(rawBlock * BLOCK), content, 0, whole);
            if (whole < content.length) b.put(Math.toIntExact(offset) + head(), content, whole, content.length - whole);
        }

        /** Each block: the dirents {u64 nid, u16 name offset, u8 file type, u8 0}, then the names, unterminated. */
        private byte[] dirents() {
            ByteBuffer d = ByteBuffer.wrap(new byte[Math.toIntExact(size)]).order(ByteOrder.LITTLE_ENDIAN);
            int next = 0;
            for (int blk = 0; blk < entriesPerBlock.length; blk++) {
                int base = blk * BLOCK, count = entriesPerBlock[blk];
                int nameAt = base + count * DIRENT;
                for (int k = 0; k < count; k++) {
                    Entry e = entries.get(next++);
                    d.putLong(base + k * DIRENT, e.target.nid());
                    d.putShort(base + k * DIRENT + 8, (short) (nameAt - base));
                    d.put(base + k * DIRENT + 10, (byte) e.target.node.type.direntType);
                    d.put(nameAt, e.name);
                    nameAt += e.name.length;
                }
            }
            return d.array();
        }

        /** {u16 advise, u16 device, u32 block} per chunk: data on the pool, holes as the null address on device 0. */
        private void indexes(ByteBuffer b, int at) {
            for (long block : node.chunkBlocks) {
                boolean hole = block == ErofsTree.HOLE;
                b.putShort(at + 2, (short) (hole ? 0 : POOL_DEVICE));
                b.putInt(at + 4, (int) (hole ? ErofsImage.NULL_ADDR : block));
                at += 8;
            }
        }

        /**
         * z_erofs_map_header {u32 0, u16 advise: big pcluster for HEAD1, u8 algorithm: 0 LZ4, 1 LZMA, 3 ZSTD (HEAD1's), u8 lcluster bits - 12: 0},
         * 8 bytes the kernel skips, then per 4 KiB lcluster {u16 advise: type, u16 cluster offset: always 0 (every piece
         * starts on an lcluster), u32 block address, or for NONHEAD u16 delta to the head, u16 delta to the next head}.
         * A compressed piece: HEAD1 at its pcluster, then NONHEADs, the first carrying the pcluster's block count
         * (D0_CBLKCNT); it always has one, as a piece of one lcluster never saves a block. A raw piece: one PLAIN
         * lcluster per block, so no kernel needs big pclusters for raw data.
         */
        private void lclusterIndexes(ByteBuffer b, int at, long chunkSize) {
            b.putShort(at + 4, (short) Z_ADVISE_BIG_PCLUSTER_1);
            if (node.compressedChunks.length > 0) b.put(at + 6, (byte) node.compressedChunks[0].algorithm().erofsId());
            int idx = at + 16;
            for (int k = 0; k < node.compressedChunks.length; k++) {
                CompressedChunk c = node.compressedChunks[k];
                int chunkLen = (int) Math.min(chunkSize, size - k * chunkSize), pc = c.pclusterSize();
                long block = CompressedChunk.UNIADDR + c.poolBlock();
                for (int i = 0; i < c.pieces().length; i++) {
                    int len = Math.min(pc, chunkLen - i * pc), n = (len + BLOCK - 1) / BLOCK, cblocks = c.pieces()[i] & 0xff;
                    if (cblocks != 0) {
                        b.putShort(idx, (short) LCLUSTER_HEAD1);
                        b.putInt(idx + 4, (int) block);
                        for (int j = 1; j < n; j++) {
                            int d = idx + 8 * j;
                            b.putShort(d, (short) LCLUSTER_NONHEAD);
                            b.putShort(d + 4, (short) (j == 1 ? D0_CBLKCNT | cblocks : j));
                            b.putShort(d + 6, (short) (n - j));
                        }
                        block += cblocks;
                    } else {
                        for (int j = 0; j < n; j++) {
                            b.putShort(idx + 8 * j, (short) LCLUSTER_PLAIN);
                            b.putInt(idx + 8 * j + 4, (int) (block + j));
                        }
                        block += n;
                    }
                    idx += 8 * n;
                }
            }
            if (idx != at + 16 + 8 * lclusters) throw new IllegalStateException(path() + ": wrote " + (idx - at - 16) / 8 + " lcluster indexes of " + lclusters);
        }
    }

    /** prefixTableAt: the fingerprint prefix table's byte offset, or -1 for none. */
    private static void superblock(ByteBuffer b, Inode root, int inodes, long blocks, long poolBlocks, UUID uuid, long prefixTableAt, int maxPclusterBlocks,
                                   int algorithms) {
        boolean compressed = maxPclusterBlocks > 0;
        if (root.nid() > 0xffff) throw new IllegalStateException("root nid " + root.nid() + " beyond 16 bits");
        boolean fingerprints = prefixTableAt >= 0;
        b.putInt(SUPERBLOCK, ErofsImage.MAGIC);
        b.putInt(SUPERBLOCK + 8, FEATURE_COMPAT_SB_CHKSUM | FEATURE_COMPAT_MTIME
                | (fingerprints ? FEATURE_COMPAT_PLAIN_XATTR_PFX | FEATURE_COMPAT_ISHARE_XATTRS : 0));
        b.put(SUPERBLOCK + 12, (byte) 12); // blkszbits
        b.putShort(SUPERBLOCK + 14, (short) root.nid());
        b.putLong(SUPERBLOCK + 16, inodes);
        b.putLong(SUPERBLOCK + 24, root.node.attributes.mtimeSeconds()); // build time: only compact inodes use it
        b.putInt(SUPERBLOCK + 32, root.node.attributes.mtimeNanos());
        b.putInt(SUPERBLOCK + 36, (int) blocks);
        // meta_blkaddr (40) and xattr_blkaddr (44) are 0; the volume name stays empty
        b.order(ByteOrder.BIG_ENDIAN).putLong(SUPERBLOCK + 48, uuid.getMostSignificantBits())
                .putLong(SUPERBLOCK + 56, uuid.getLeastSignificantBits()).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(SUPERBLOCK + 80, FEATURE_INCOMPAT_CHUNKED_FILE | FEATURE_INCOMPAT_DEVICE_TABLE | (fingerprints ? FEATURE_INCOMPAT_XATTR_PREFIXES : 0)
                | (compressed ? FEATURE_INCOMPAT_ZERO_PADDING | FEATURE_INCOMPAT_COMPR_CFGS : 0));
        b.putShort(SUPERBLOCK + 86, (short) 1); // extra devices: the pool
        int slot = compressed ? Z_DEVICE_SLOT : DEVICE_SLOT;
        b.putShort(SUPERBLOCK + 88, (short) (slot / DEVICE_SLOT_SIZE));
        if (compressed) {
            // available_compr_algs; one config record per algorithm, in bit order, from the superblock's end, each
            // 4-byte aligned and led by its u16 length (the kernel's z_erofs_parse_cfgs / erofs_read_metadata)
            b.putShort(SUPERBLOCK + 84, (short) algorithms);
            int at = COMPR_CFGS;
            if ((algorithms & 1 << Algorithm.LZ4HC.erofsId()) != 0) {
                b.putShort(at, (short) 14); // z_erofs_lz4_cfgs {u16 max_distance, u16 max_pclusterblks, 10 reserved}
                b.putShort(at + 2, (short) LZ4_MAX_DISTANCE);
                b.putShort(at + 4, (short) maxPclusterBlocks);
                at += 16;
            }
            if ((algorithms & 1 << Algorithm.LZMA.erofsId()) != 0) {
                // z_erofs_lzma_cfgs {u32 dict_size, u16 format 0, 8 reserved}: the largest pcluster's dictionary
                b.putShort(at, (short) 14);
                b.putInt(at + 2, maxPclusterBlocks * BLOCK);
                at += 16;
            }
            if ((algorithms & 1 << Algorithm.ZSTD.erofsId()) != 0) {
                // z_erofs_zstd_cfgs {u8 format 0, u8 windowlog - 10, 4 reserved}: a frame's window is its content, at most
                // the largest pcluster; the kernel sizes its decoders' workspace by it
                b.putShort(at, (short) 6);
                b.put(at + 3, (byte) (Integer.numberOfTrailingZeros(maxPclusterBlocks * BLOCK) - ZSTD_WINDOWLOG_MIN));
                at += 8;
            }
            if (at > Z_DEVICE_SLOT || algorithms >>> 4 != 0) throw new IllegalStateException("algorithms " + Integer.toBinaryString(algorithms));
            // compressed extents address pool block p as UNIADDR + p: the kernel finds the pool by this range
            b.putInt(slot + 68, (int) CompressedChunk.UNIADDR);
        }
        if (fingerprints) {
            b.put(SUPERBLOCK + 0x5b, (byte) 1); // xattr_prefix_count
            b.putInt(SUPERBLOCK + 0x5c, (int) (prefixTableAt / 4)); // xattr_prefix_start, in 4-byte units
            b.put(SUPERBLOCK + 0x69, (byte) InlineXattrs.FINGERPRINT_PREFIX_ID); // ishare_xattr_prefix_id
        }
        long maxBlocks = compressed ? 0xffffffffL - CompressedChunk.UNIADDR : 0xffffffffL;
        b.putInt(slot + 64, (int) Math.min(poolBlocks, maxBlocks)); // the slot's tag stays empty: mounts name the pool with device=
        b.putInt(SUPERBLOCK + 4, ErofsImage.checksum(b));
    }
}
