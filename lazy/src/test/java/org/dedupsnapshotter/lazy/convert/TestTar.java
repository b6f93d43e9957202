package org.dedupsnapshotter.lazy.convert;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

/** Writes tars by hand, block by block, so tests control each header: ustar, PAX, GNU long names, odd types. */
final class TestTar {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    /** A plain ustar header (name ≤ 100 bytes, or split into prefix/name by the caller) and its data. */
    TestTar entry(String name, char type, int mode, long uid, long gid, long mtime, byte[] data, String link, int major, int minor) {
        return entry(name, "", type, mode, uid, gid, mtime, data, data.length, link, major, minor, "ustar\0", "00");
    }

    TestTar entry(String name, String prefix, char type, int mode, long uid, long gid, long mtime, byte[] data, long sizeField,
                  String link, int major, int minor, String magic, String version) {
        byte[] h = new byte[512];
        put(h, 0, 100, name);
        octal(h, 100, 8, mode);
        octal(h, 108, 8, uid);
        octal(h, 116, 8, gid);
        octal(h, 124, 12, sizeField);
        octal(h, 136, 12, mtime);
        h[156] = (byte) type;
        put(h, 157, 100, link);
        put(h, 257, 6, magic);
        put(h, 263, 2, version);
        octal(h, 329, 8, major);
        octal(h, 337, 8, minor);
        put(h, 345, 155, prefix);
        checksum(h);
        out.writeBytes(h);
        pad(data);
        return this;
    }

    TestTar file(String name, byte[] data) { return entry(name, '0', 0644, 0, 0, 1_600_000_000L, data, "", 0, 0); }

    TestTar dir(String name) { return entry(name, '5', 0755, 0, 0, 1_600_000_000L, new byte[0], "", 0, 0); }

    /** A PAX 'x' (or 'g') header with these records. */
    TestTar pax(char type, Map<String, byte[]> records) {
        byte[] data = paxRecords(records);
        return entry("PaxHeaders/x", type, 0644, 0, 0, 0, data, "", 0, 0);
    }

    /** A GNU 'L' or 'K' header carrying a long name. */
    TestTar gnuLong(char type, String name) {
        byte[] b = (name + "\0").getBytes(StandardCharsets.UTF_8);
        return entry("././@LongLink", "", type, 0644, 0, 0, 0, b, b.length, "", 0, 0, "ustar ", " \0");
    }

    TestTar raw(byte[] b) {
        out.writeBytes(b);
        return this;
    }

    byte[] finish() {
        out.writeBytes(new byte[1024]);
        return out.toByteArray();
    }

    byte[] unfinished() { return out.toByteArray(); }

    static Map<String, byte[]> records(String... kv) {
        Map<String, byte[]> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put(kv[i], kv[i + 1].getBytes(StandardCharsets.UTF_8));
        return m;
    }

    static byte[] paxRecords(Map<String, byte[]> records) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (var e : records.entrySet()) {
            byte[] key = e.getKey().getBytes(StandardCharsets.UTF_8);
            int body = 1 + key.length + 1 + e.getValue().length + 1;
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

    static void checksum(byte[] h) {
        for (int i = 148; i < 156; i++) h[i] = ' ';
        long sum = 0;
        for (byte x : h) sum += x & 0xff;
        put(h, 148, 7, String.format("%06o\0", sum));
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
