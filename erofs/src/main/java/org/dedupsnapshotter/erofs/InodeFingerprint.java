package org.dedupsnapshotter.erofs;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.List;

/**
 * A regular file's content fingerprint for EROFS page-cache sharing (Linux 7.0, mount option inode_share): the
 * kernel gives inodes whose fingerprint xattr values (plus the mount's domain_id) are byte-equal, and whose sizes
 * match, one page cache. It compares the value as opaque bytes, so ours need not be erofs-utils' "sha256:" + the
 * SHA-256 of the whole file (which neither a commit, hashing chunk by chunk, nor a lazy layer, which has only its
 * chunks' digests, can give without reading the data again). Ours is 32 bytes, the SHA-256 of {@link #DOMAIN} and a
 * NUL, the file size and chunk size (u64 little-endian each), and each chunk's SHA-256 in file order (32 zero bytes
 * for an all-zero chunk, a hole): equal fingerprints mean equal bytes as long as SHA-256 does not collide. Every
 * byte counts (it is in every regular file's inode, read into the page cache with it), hence no text prefix; its
 * length alone keeps fsck.erofs --xattr-inode-digest (39-byte "sha256:" values) from taking it for a whole-file one.
 */
public final class InodeFingerprint {
    /** The xattr's full name: one long-prefix table entry on the hidden base index 0, as mkfs.erofs makes its own. */
    public static final String NAME = "dedup.fingerprint.v1";
    /** What the hashed bytes start with: a new formula gets a new one, so it cannot give an old value to other bytes. */
    public static final String DOMAIN = "dedup-chunks-sha256-v1";
    private static final byte[] HOLE = new byte[32];

    private InodeFingerprint() {}

    /**
     * The xattr value for a file of size bytes cut into chunks of chunkSize whose SHA-256 digests are chunkDigests
     * (null for a hole), or null for an empty file: it has no page cache to share (mkfs.erofs gives it none either).
     */
    public static byte[] ofChunks(long size, long chunkSize, List<byte[]> chunkDigests) {
        if (size == 0) return null;
        long chunks = (size + chunkSize - 1) / chunkSize;
        if (chunkDigests.size() != chunks)
            throw new IllegalArgumentException(chunkDigests.size() + " chunk digests for " + size + " bytes in chunks of " + chunkSize);
        MessageDigest sha = sha256();
        sha.update(DOMAIN.getBytes(StandardCharsets.US_ASCII));
        sha.update((byte) 0);
        sha.update(ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(size).putLong(chunkSize).array());
        for (byte[] d : chunkDigests) {
            if (d != null && d.length != 32) throw new IllegalArgumentException("a SHA-256 digest has 32 bytes, not " + d.length);
            sha.update(d == null ? HOLE : d);
        }
        return sha.digest();
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java has SHA-256", e);
        }
    }
}
