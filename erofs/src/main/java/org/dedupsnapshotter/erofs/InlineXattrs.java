package org.dedupsnapshotter.erofs;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/**
 * An inode's xattrs in EROFS's inline form: a 12-byte header (no shared xattrs) then, per xattr, {u8 name length,
 * u8 name index, u16 value size, name suffix, value} padded to 4 bytes. The name index stands for the prefix;
 * EROFS has indexes only for the prefixes below (lustre. aside), so any other name cannot be stored. An
 * {@link InodeFingerprint} goes last, named by long-prefix table entry {@link #FINGERPRINT_PREFIX_ID} (name index
 * 0x80 | id, empty suffix), as mkfs.erofs --xattr-inode-digest writes its own.
 */
final class InlineXattrs {
    static final int HEADER = 12;
    /** Bit 7 of a name index: the low 7 bits pick an entry of the image's long xattr name prefix table. */
    static final int LONG_PREFIX = 0x80;
    /** The fingerprint's entry in the prefix table, the only one we write. */
    static final int FINGERPRINT_PREFIX_ID = 0;

    private record Prefix(String text, int index, boolean wholeName) {}

    private static final List<Prefix> PREFIXES = List.of(
            new Prefix("user.", 1, false),
            new Prefix("system.posix_acl_access", 2, true),
            new Prefix("system.posix_acl_default", 3, true),
            new Prefix("trusted.", 4, false),
            new Prefix("security.", 6, false));

    private InlineXattrs() {}

    /** The encoded xattrs, empty when there are none; one EROFS cannot hold is an IllegalArgumentException naming it. */
    static byte[] encode(Map<String, byte[]> xattrs) {
        return encode(xattrs, null);
    }

    /** As {@link #encode(Map)}, with the fingerprint xattr last unless fingerprint is null. */
    static byte[] encode(Map<String, byte[]> xattrs, byte[] fingerprint) {
        if (xattrs.isEmpty() && fingerprint == null) return new byte[0];
        byte[][] suffixes = new byte[xattrs.size()][];
        int[] indexes = new int[xattrs.size()];
        int size = HEADER + (fingerprint == null ? 0 : align4(4 + fingerprint.length)), i = 0;
        for (var e : xattrs.entrySet()) {
            Prefix p = prefix(e.getKey());
            suffixes[i] = e.getKey().substring(p.text.length()).getBytes(StandardCharsets.UTF_8);
            indexes[i] = p.index;
            if (suffixes[i].length > 255) throw new IllegalArgumentException("xattr name " + e.getKey() + " is longer than 255 bytes");
            if (e.getValue().length > 0xffff) throw new IllegalArgumentException("xattr " + e.getKey() + " value of " + e.getValue().length + " bytes (EROFS holds 65535)");
            size += align4(4 + suffixes[i].length + e.getValue().length);
            i++;
        }
        if ((size - HEADER) / 4 + 1 > 0xffff) throw new IllegalArgumentException(size + " bytes of xattrs do not fit an inode");
        ByteBuffer b = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
        b.position(HEADER); // name filter 0 (unused: the superblock does not enable it), no shared xattrs
        i = 0;
        for (byte[] value : xattrs.values()) {
            b.put((byte) suffixes[i].length).put((byte) indexes[i]).putShort((short) value.length).put(suffixes[i]).put(value);
            b.position(align4(b.position()));
            i++;
        }
        if (fingerprint != null) b.put((byte) 0).put((byte) (LONG_PREFIX | FINGERPRINT_PREFIX_ID)).putShort((short) fingerprint.length).put(fingerprint);
        return b.array();
    }

    /** i_xattr_icount: the xattr area in 4-byte units past the first (the header's 12 bytes count as one). */
    static int icount(byte[] encoded) {
        return encoded.length == 0 ? 0 : (encoded.length - HEADER) / 4 + 1;
    }

    /**
     * The long xattr name prefix table holding only the fingerprint's name: {u16 size, u8 base index, infix} padded
     * to 4 bytes, base index 0 (no namespace: the kernel lists no such xattr) and the infix the whole name.
     */
    static byte[] fingerprintPrefixTable() {
        byte[] infix = InodeFingerprint.NAME.getBytes(StandardCharsets.US_ASCII);
        ByteBuffer b = ByteBuffer.allocate(align4(2 + 1 + infix.length)).order(ByteOrder.LITTLE_ENDIAN);
        b.putShort((short) (1 + infix.length)).put((byte) 0).put(infix);
        return b.array();
    }

    private static Prefix prefix(String name) {
        for (Prefix p : PREFIXES) {
            if (p.wholeName ? name.equals(p.text) : name.startsWith(p.text) && name.length() > p.text.length()) return p;
        }
        throw new IllegalArgumentException("xattr " + name + " has no EROFS name index (user., trusted., security., system.posix_acl_*)");
    }

    private static int align4(int n) { return (n + 3) & ~3; }
}
