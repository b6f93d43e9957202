package org.dedupsnapshotter.lazy.convert;

import org.dedupsnapshotter.lazy.toc.Toc;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Reads a layer tar into TOC entries exactly as Go's archive/tar (what containerd's applier uses) reads it: ustar
 * prefixes, PAX 'x' records (path, linkpath, size, uid, gid, mtime with nanoseconds, SCHILY.xattr.*; empty values
 * keep the header's), GNU 'L'/'K' long names (which win over PAX), '\0' entries ending in "/" as directories, and
 * no data for links, devices, fifos and directories whatever their size field says. A PAX global header 'g' is
 * parsed but not applied to later entries: Go returns it as an entry of its own and containerd ignores it.
 * <p>
 * Every byte that is not regular-file data (headers, extension records, padding, the end-of-archive blocks and
 * whatever follows them) goes to the {@link RawSink} as it is read; file data is read with {@link #readData}. So
 * sink bytes and data, in call order, are the input byte for byte.
 */
final class TarReader {
    /** Receives the tar's non-data bytes in order. */
    interface RawSink {
        void write(byte[] b, int off, int len) throws IOException;
    }

    private static final int BLOCK = 512;
    /** Go's limit for PAX and GNU long-name data (maxSpecialFileSize). */
    private static final int MAX_SPECIAL = 1 << 20;
    private static final String XATTR = "SCHILY.xattr.";

    private final InputStream in;
    private final RawSink sink;
    private long offset;
    private long dataRemaining;
    private int padding;
    private String current;
    private int missingEndBlocks;

    TarReader(InputStream in, RawSink sink) {
        this.in = in;
        this.sink = sink;
    }

    /** The next entry, or null at the end of the archive (the rest of the input has then gone to the sink). */
    Toc.Entry next() throws IOException {
        if (dataRemaining > 0) throw new IllegalStateException("the data of " + current + " was not read");
        passThrough(padding);
        padding = 0;
        Map<String, byte[]> pax = Map.of();
        byte[] longName = null, longLink = null;
        byte[] h = new byte[BLOCK];
        while (true) {
            long at = offset;
            int n = readRaw(h, BLOCK);
            if (n == 0) { // no end-of-archive blocks: Go takes a clean EOF as the end
                missingEndBlocks = 2;
                return null;
            }
            if (n < BLOCK) throw new IOException("tar: the input ends inside a header block at offset " + at);
            if (isZero(h)) return endOfArchive(h);
            Header hd = Header.parse(h, at);
            long dataSize = isHeaderOnly(hd.type) ? 0 : hd.size;
            switch (hd.type) {
                case 'x', 'g' -> {
                    Map<String, byte[]> records = parsePax(readSpecial(dataSize, at), at);
                    if (hd.type == 'x') {
                        pax = records;
                    } else { // Go returns a global header as an entry: what was pending before it is dropped
                        pax = Map.of();
                        longName = longLink = null;
                    }
                    continue;
                }
                case 'L' -> {
                    longName = cString(readSpecial(dataSize, at), 0, Integer.MAX_VALUE);
                    continue;
                }
                case 'K' -> {
                    longLink = cString(readSpecial(dataSize, at), 0, Integer.MAX_VALUE);
                    continue;
                }
                default -> {
                    return entry(hd, pax, longName, longLink, at);
                }
            }
        }
    }

    /** Reads len bytes of the current entry's data. */
    void readData(byte[] b, int off, int len) throws IOException {
        if (len > dataRemaining) throw new IllegalStateException("reading past the data of " + current);
        int n = in.readNBytes(b, off, len);
        offset += n;
        dataRemaining -= n;
        if (n < len) throw new IOException("tar: the input ends inside the data of " + current + " at offset " + offset);
    }

    /**
     * How many zero blocks the archive lacks at its end (0 for a proper end): anything appended after it must
     * follow them, or a tar reader would take it for a header.
     */
    int missingEndBlocks() { return missingEndBlocks; }

    private Toc.Entry entry(Header hd, Map<String, byte[]> pax, byte[] longName, byte[] longLink, long at) throws IOException {
        byte[] name = hd.name, link = hd.link;
        long size = hd.size, uid = hd.uid, gid = hd.gid, mtime = hd.mtime;
        int nsec = 0;
        Map<String, String> xattrs = new LinkedHashMap<>();
        for (var r : pax.entrySet()) {
            String k = r.getKey();
            byte[] v = r.getValue();
            if (k.startsWith("GNU.sparse."))
                throw new IOException("tar entry " + text(longName != null ? longName : pax.getOrDefault("path", name), at)
                        + " is a PAX sparse file (" + k + "): sparse files are not supported");
            if (k.startsWith(XATTR)) {
                xattrs.put(k.substring(XATTR.length()), Base64.getEncoder().encodeToString(v));
                continue;
            }
            if (v.length == 0) continue; // Go keeps the header's value
            String s = new String(v, StandardCharsets.UTF_8);
            switch (k) {
                case "path" -> name = v;
                case "linkpath" -> link = v;
                case "size" -> size = decimal(s, k, at);
                case "uid" -> uid = decimal(s, k, at);
                case "gid" -> gid = decimal(s, k, at);
                case "mtime" -> {
                    long[] t = paxTime(s, at);
                    mtime = t[0];
                    nsec = (int) t[1];
                }
                default -> { }
            }
        }
        if (longName != null && longName.length > 0) name = longName; // Go ignores an empty long name
        if (longLink != null && longLink.length > 0) link = longLink;
        String rawName = text(name, at);
        current = rawName;
        char type = hd.type;
        if (type == '\0') type = rawName.endsWith("/") ? '5' : '0';
        if (type == 'S') throw new IOException("tar entry " + rawName + " is an old GNU sparse file: sparse files are not supported");
        if (size < 0) throw new IOException("tar entry " + rawName + ": negative size " + size);

        Toc.Entry e = new Toc.Entry();
        e.name = TarPath.normalise(rawName);
        e.type = switch (type) {
            case '0', '7' -> Toc.Entry.REG;
            case '1' -> Toc.Entry.HARDLINK;
            case '2' -> Toc.Entry.SYMLINK;
            case '3' -> Toc.Entry.CHAR;
            case '4' -> Toc.Entry.BLOCK;
            case '5' -> Toc.Entry.DIR;
            case '6' -> Toc.Entry.FIFO;
            default -> throw new IOException("tar entry " + rawName + " has type '" + printable(type)
                    + "', which containerd does not apply (at offset " + at + ")");
        };
        e.mode = (int) (hd.mode & 07777);
        e.uid = uid;
        e.gid = gid;
        e.mtime = mtime;
        e.mtimeNsec = nsec;
        e.xattrs = xattrs;
        if (type == '1') e.linkName = TarPath.normalise(text(link, at));
        if (type == '2') e.linkName = text(link, at);
        if (type == '3' || type == '4') {
            e.devMajor = hd.devMajor;
            e.devMinor = hd.devMinor;
        }
        dataRemaining = isHeaderOnly(type) ? 0 : size;
        if (e.type.equals(Toc.Entry.REG)) e.size = size;
        padding = (int) ((BLOCK - dataRemaining % BLOCK) % BLOCK);
        return e;
    }

    /** One zero block was read: a second one ends the archive; the rest of the input goes to the sink. */
    private Toc.Entry endOfArchive(byte[] h) throws IOException {
        long at = offset;
        int n = readRaw(h, BLOCK);
        if (n == 0) {
            missingEndBlocks = 1;
            return null;
        }
        if (n < BLOCK || !isZero(h)) throw new IOException("tar: a zero block followed by a non-zero block at offset " + at + ": not a tar archive Go reads");
        byte[] buf = new byte[1 << 16];
        while (readRaw(buf, buf.length) > 0) { }
        return null;
    }

    private static boolean isHeaderOnly(char type) {
        return type >= '1' && type <= '6';
    }

    /** The data of a PAX or GNU long-name header, padding included, all passed to the sink. */
    private byte[] readSpecial(long size, long at) throws IOException {
        // a base-256 size field can be negative
        if (size < 0 || size > MAX_SPECIAL)
            throw new IOException("tar: an extension header of " + size + " bytes at offset " + at + " (Go reads 0 to " + MAX_SPECIAL + ")");
        byte[] data = new byte[(int) size];
        if (readRaw(data, data.length) < data.length) throw new IOException("tar: the input ends inside the extension header at offset " + at);
        passThrough((int) ((BLOCK - size % BLOCK) % BLOCK));
        return data;
    }

    /** PAX records "LEN key=value\n", byte exact (xattr values are binary); a later record wins over an earlier one. */
    private static Map<String, byte[]> parsePax(byte[] d, long at) throws IOException {
        Map<String, byte[]> out = new LinkedHashMap<>();
        int pos = 0;
        while (pos < d.length) {
            int sp = pos;
            while (sp < d.length && d[sp] != ' ') sp++;
            long len;
            try {
                len = Long.parseLong(new String(d, pos, sp - pos, StandardCharsets.US_ASCII));
            } catch (NumberFormatException e) {
                throw badPax(at, "record length is not a number");
            }
            if (sp >= d.length || len < 5 || len > d.length - pos || len <= sp - pos + 1) throw badPax(at, "bad record length " + len);
            int end = (int) (pos + len);
            if (d[end - 1] != '\n') throw badPax(at, "record does not end with a newline");
            int eq = sp + 1;
            while (eq < end - 1 && d[eq] != '=') eq++;
            if (eq >= end - 1 || eq == sp + 1) throw badPax(at, "record without a key=value");
            String key = new String(d, sp + 1, eq - sp - 1, StandardCharsets.UTF_8);
            byte[] value = Arrays.copyOfRange(d, eq + 1, end - 1);
            boolean nameLike = key.equals("path") || key.equals("linkpath") || key.equals("uname") || key.equals("gname");
            if (nameLike && indexOf(value, (byte) 0) >= 0 || !nameLike && key.indexOf('\0') >= 0) throw badPax(at, "NUL in record " + key);
            out.put(key, value);
            pos = end;
        }
        return out;
    }

    private static IOException badPax(long at, String why) {
        return new IOException("tar: bad PAX header at offset " + at + ": " + why);
    }

    /** Go's parsePAXTime: seconds and up to 9 fraction digits; a negative time counts the fraction backwards. */
    private static long[] paxTime(String s, long at) throws IOException {
        int dot = s.indexOf('.');
        String secs = dot < 0 ? s : s.substring(0, dot), frac = dot < 0 ? "" : s.substring(dot + 1);
        long sec = decimal(secs, "mtime", at);
        if (!frac.chars().allMatch(c -> c >= '0' && c <= '9')) throw new IOException("tar: bad PAX mtime " + s + " at offset " + at);
        frac = (frac + "000000000").substring(0, 9);
        long ns = Long.parseLong(frac);
        if (secs.startsWith("-")) ns = -ns;
        return new long[] {sec + Math.floorDiv(ns, 1_000_000_000L), Math.floorMod(ns, 1_000_000_000L)};
    }

    private static long decimal(String s, String key, long at) throws IOException {
        try {
            return Long.parseLong(s);
        } catch (NumberFormatException e) {
            throw new IOException("tar: bad PAX " + key + " \"" + s + "\" at offset " + at);
        }
    }

    /** Reads up to len bytes (fewer only at the end of the input), passing them to the sink. */
    private int readRaw(byte[] b, int len) throws IOException {
        int n = in.readNBytes(b, 0, len);
        if (n > 0) sink.write(b, 0, n);
        offset += n;
        return n;
    }

    private void passThrough(int n) throws IOException {
        if (n == 0) return;
        byte[] b = new byte[n];
        if (readRaw(b, n) < n) throw new IOException("tar: the input ends inside the padding after " + current + " at offset " + offset);
    }

    private static boolean isZero(byte[] b) {
        for (byte x : b) if (x != 0) return false;
        return true;
    }

    private static int indexOf(byte[] b, byte v) {
        for (int i = 0; i < b.length; i++) if (b[i] == v) return i;
        return -1;
    }

    /** Names are bytes in a tar and strings in the TOC: anything but UTF-8 cannot be carried, so it is refused. */
    private static String text(byte[] b, long at) throws IOException {
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(b)).toString();
        } catch (CharacterCodingException e) {
            throw new IOException("tar entry at offset " + at + ": the name " + new String(b, StandardCharsets.ISO_8859_1)
                    + " is not UTF-8, which the TOC cannot carry");
        }
    }

    private static String printable(char c) {
        return c >= 0x20 && c < 0x7f ? String.valueOf(c) : String.format("\\x%02x", (int) c);
    }

    /** The field up to its first NUL. */
    private static byte[] cString(byte[] b, int off, int max) {
        int end = off, limit = (int) Math.min(b.length, (long) off + max);
        while (end < limit && b[end] != 0) end++;
        return Arrays.copyOfRange(b, off, end);
    }

    /** One 512-byte header block as Go's readHeader reads it. */
    private record Header(char type, byte[] name, byte[] link, long size, long mode, long uid, long gid, long mtime, long devMajor, long devMinor) {
        static Header parse(byte[] h, long at) throws IOException {
            long stored = octal(h, 148, 8, at);
            long unsigned = 0, signed = 0;
            for (int i = 0; i < BLOCK; i++) {
                int v = i >= 148 && i < 156 ? ' ' : h[i];
                unsigned += v & 0xff;
                signed += v;
            }
            if (stored != unsigned && stored != signed) throw new IOException("tar: bad header checksum at offset " + at + " (not a tar archive, or a corrupt one)");
            String magic = new String(h, 257, 6, StandardCharsets.ISO_8859_1), version = new String(h, 263, 2, StandardCharsets.ISO_8859_1);
            boolean ustar = magic.equals("ustar\0"), star = ustar && new String(h, 508, 4, StandardCharsets.ISO_8859_1).equals("tar\0");
            boolean gnu = magic.equals("ustar ") && version.equals(" \0");
            byte[] name = cString(h, 0, 100);
            long devMajor = 0, devMinor = 0;
            if (ustar || gnu) {
                devMajor = numeric(h, 329, 8, at);
                devMinor = numeric(h, 337, 8, at);
                byte[] prefix = gnu ? new byte[0] : cString(h, 345, star ? 131 : 155);
                if (prefix.length > 0) {
                    byte[] full = Arrays.copyOf(prefix, prefix.length + 1 + name.length);
                    full[prefix.length] = '/';
                    System.arraycopy(name, 0, full, prefix.length + 1, name.length);
                    name = full;
                }
            }
            return new Header((char) (h[156] & 0xff), name, cString(h, 157, 100), numeric(h, 124, 12, at), numeric(h, 100, 8, at),
                    numeric(h, 108, 8, at), numeric(h, 116, 8, at), numeric(h, 136, 12, at), devMajor, devMinor);
        }

        /** Octal, or base-256 (two's complement) when the first byte's top bit is set. */
        private static long numeric(byte[] h, int off, int len, long at) throws IOException {
            if ((h[off] & 0x80) == 0) return octal(h, off, len, at);
            int inv = (h[off] & 0x40) != 0 ? 0xff : 0;
            long x = 0;
            for (int i = 0; i < len; i++) {
                int c = (h[off + i] & 0xff) ^ inv;
                if (i == 0) c &= 0x7f;
                if ((x >>> 56) != 0) throw new IOException("tar: numeric field overflows at offset " + at);
                x = x << 8 | c;
            }
            if (x < 0) throw new IOException("tar: numeric field overflows at offset " + at);
            return inv != 0 ? ~x : x;
        }

        private static long octal(byte[] h, int off, int len, long at) throws IOException {
            int s = off, e = off + len;
            while (s < e && (h[s] == ' ' || h[s] == 0)) s++;
            while (e > s && (h[e - 1] == ' ' || h[e - 1] == 0)) e--;
            int nul = s;
            while (nul < e && h[nul] != 0) nul++;
            if (nul == s) return 0;
            try {
                return Long.parseUnsignedLong(new String(h, s, nul - s, StandardCharsets.US_ASCII), 8);
            } catch (NumberFormatException ex) {
                throw new IOException("tar: bad octal field \"" + new String(h, s, nul - s, StandardCharsets.ISO_8859_1) + "\" at offset " + at);
            }
        }
    }
}
