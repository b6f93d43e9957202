package org.dedupsnapshotter.itest;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writes OCI layer tars by hand so tests control every detail a layer can carry: PAX headers for long names,
 * nanosecond mtimes and xattrs (SCHILY.xattr.*), device nodes, fifos, hardlinks, symlinks and the OCI
 * whiteout files (.wh.NAME, .wh..wh..opq).
 */
final class TarWriter {
    static final long T0 = 1_700_000_000_123_456_789L; // a mtime with nanoseconds

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    record Meta(int mode, int uid, int gid, long mtimeNanos, Map<String, byte[]> xattrs) {
        static Meta of(int mode) { return new Meta(mode, 0, 0, T0, Map.of()); }
        Meta owner(int u, int g) { return new Meta(mode, u, g, mtimeNanos, xattrs); }
        Meta mtime(long ns) { return new Meta(mode, uid, gid, ns, xattrs); }
        Meta xattr(String k, byte[] v) {
            Map<String, byte[]> m = new LinkedHashMap<>(xattrs);
            m.put(k, v);
            return new Meta(mode, uid, gid, mtimeNanos, m);
        }
    }

    TarWriter dir(String path, Meta m) { return entry(path.endsWith("/") ? path : path + "/", '5', m, new byte[0], "", 0, 0); }
    TarWriter file(String path, byte[] data, Meta m) { return entry(path, '0', m, data, "", 0, 0); }
    TarWriter file(String path, String text, Meta m) { return file(path, text.getBytes(StandardCharsets.UTF_8), m); }
    TarWriter symlink(String path, String target, Meta m) { return entry(path, '2', m, new byte[0], target, 0, 0); }
    TarWriter hardlink(String path, String target) { return entry(path, '1', Meta.of(0644), new byte[0], target, 0, 0); }
    TarWriter chardev(String path, int major, int minor, Meta m) { return entry(path, '3', m, new byte[0], "", major, minor); }
    TarWriter blockdev(String path, int major, int minor, Meta m) { return entry(path, '4', m, new byte[0], "", major, minor); }
    TarWriter fifo(String path, Meta m) { return entry(path, '6', m, new byte[0], "", 0, 0); }

    /** Deletes name (file or directory) of a lower layer. */
    TarWriter whiteout(String dir, String name) { return file((dir.isEmpty() ? "" : dir + "/") + ".wh." + name, new byte[0], Meta.of(0644)); }

    /** Hides everything lower layers have in dir. */
    TarWriter opaque(String dir) { return file(dir + "/.wh..wh..opq", new byte[0], Meta.of(0644)); }

    byte[] finish() {
        out.writeBytes(new byte[1024]);
        return out.toByteArray();
    }

    private TarWriter entry(String path, char type, Meta m, byte[] data, String link, int major, int minor) {
        Map<String, byte[]> pax = new LinkedHashMap<>();
        pax.put("path", path.getBytes(StandardCharsets.UTF_8));
        if (!link.isEmpty()) pax.put("linkpath", link.getBytes(StandardCharsets.UTF_8));
        long sec = Math.floorDiv(m.mtimeNanos, 1_000_000_000L), nsec = Math.floorMod(m.mtimeNanos, 1_000_000_000L);
        pax.put("mtime", String.format("%d.%09d", sec, nsec).getBytes(StandardCharsets.UTF_8));
        for (var x : m.xattrs.entrySet()) pax.put("SCHILY.xattr." + x.getKey(), x.getValue());
        byte[] paxData = paxRecords(pax);
        header("PaxHeaders/x", 'x', 0644, 0, 0, paxData.length, sec, "", 0, 0);
        pad(paxData);
        header(ascii(path, 100), type, m.mode, m.uid, m.gid, data.length, sec, ascii(link, 100), major, minor);
        pad(data);
        return this;
    }

    private static String ascii(String s, int max) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        return b.length <= max && b.length == s.length() ? s : "pax";
    }

    private static byte[] paxRecords(Map<String, byte[]> records) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (var e : records.entrySet()) {
            byte[] key = e.getKey().getBytes(StandardCharsets.UTF_8);
            int body = 1 + key.length + 1 + e.getValue().length + 1; // " key=value\n"
            int len = body + Integer.toString(body).length();
            if (Integer.toString(len).length() != Integer.toString(body).length()) len++;
            b.writeBytes((len + " ").getBytes(StandardCharsets.US_ASCII));
            b.writeBytes(key);
            b.write('=');
            b.writeBytes(e.getValue());
            b.write('\n');
        }
        return b.toByteArray();
    }

    private void header(String name, char type, int mode, int uid, int gid, long size, long mtime, String link, int major, int minor) {
        byte[] h = new byte[512];
        put(h, 0, 100, name);
        octal(h, 100, 8, mode & 07777);
        octal(h, 108, 8, uid);
        octal(h, 116, 8, gid);
        octal(h, 124, 12, size);
        octal(h, 136, 12, Math.max(0, mtime));
        for (int i = 148; i < 156; i++) h[i] = ' ';
        h[156] = (byte) type;
        put(h, 157, 100, link);
        put(h, 257, 6, "ustar\0");
        put(h, 263, 2, "00");
        octal(h, 329, 8, major);
        octal(h, 337, 8, minor);
        long sum = 0;
        for (byte x : h) sum += x & 0xff;
        String cs = String.format("%06o", sum);
        put(h, 148, 6, cs);
        h[154] = 0;
        h[155] = ' ';
        out.writeBytes(h);
    }

    private static void put(byte[] h, int off, int len, String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        System.arraycopy(b, 0, h, off, Math.min(len, b.length));
    }

    private static void octal(byte[] h, int off, int len, long v) {
        put(h, off, len - 1, String.format("%0" + (len - 1) + "o", v));
    }

    private void pad(byte[] data) {
        out.writeBytes(data);
        int rem = data.length % 512;
        if (rem != 0) out.writeBytes(new byte[512 - rem]);
    }
}
