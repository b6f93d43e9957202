package org.dedupsnapshotter.mount;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * One line of /proc/self/mountinfo: mount point, filesystem type, source and the filesystem's own (super) options,
 * with octal escapes decoded.
 */
public record MountInfo(String mountPoint, String fsType, String source, String superOptions) {
    public static List<MountInfo> read() throws IOException {
        return parse(Files.readAllLines(Path.of("/proc/self/mountinfo")));
    }

    static List<MountInfo> parse(List<String> lines) {
        List<MountInfo> out = new ArrayList<>();
        for (String line : lines) {
            String[] f = line.split(" ");
            int dash = -1;
            for (int i = 6; i < f.length; i++) {
                if (f[i].equals("-")) {
                    dash = i;
                    break;
                }
            }
            if (f.length < 5 || dash < 0 || dash + 2 >= f.length) continue;
            out.add(new MountInfo(unescape(f[4]), f[dash + 1], unescape(f[dash + 2]), dash + 3 < f.length ? unescape(f[dash + 3]) : ""));
        }
        return out;
    }

    static String unescape(String s) {
        if (s.indexOf('\\') < 0) return s;
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 3 < s.length()) {
                try {
                    sb.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
                    i += 3;
                    continue;
                } catch (NumberFormatException ignored) {
                    // not an escape
                }
            }
            sb.append(c);
        }
        return sb.toString();
    }
}
