package org.dedupsnapshotter.ksm;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * One process's KSM figures, from /proc/PID/ksm_stat (Linux 6.1+; merge_any and mergeable from 6.7).
 *
 * @param mergingPages pages of this process that point at a shared KSM page
 * @param profitBytes  the kernel's estimate of what merging saved for this process, less its bookkeeping
 * @param mergeAny     marked as a whole (PR_SET_MEMORY_MERGE, e.g. by bin/dedup-runc)
 */
public record ProcessKsm(int pid, String comm, long mergingPages, long zeroPages, long profitBytes, boolean mergeAny, boolean mergeable) {
    public long mergingBytes() { return (mergingPages + zeroPages) * KsmCalls.PAGE; }

    public static Optional<ProcessKsm> read(Path proc, int pid) {
        return read(proc, pid, false);
    }

    /** takingPart: empty also for a process that takes no part in KSM, without reading its comm. */
    private static Optional<ProcessKsm> read(Path proc, int pid, boolean takingPart) {
        Path dir = proc.resolve(Integer.toString(pid));
        try {
            long merging = 0, zero = 0, profit = 0;
            boolean any = false, mergeable = false;
            for (String line : Files.readAllLines(dir.resolve("ksm_stat"))) {
                int sep = line.indexOf(line.contains(":") ? ':' : ' ');
                if (sep < 0) continue;
                String k = line.substring(0, sep).trim(), v = line.substring(sep + 1).trim();
                switch (k) {
                    case "ksm_merging_pages" -> merging = Long.parseLong(v);
                    case "ksm_zero_pages" -> zero = Long.parseLong(v);
                    case "ksm_process_profit" -> profit = Long.parseLong(v);
                    case "ksm_merge_any" -> any = v.equals("yes");
                    case "ksm_mergeable" -> mergeable = v.equals("yes");
                    default -> { }
                }
            }
            if (takingPart && !any && !mergeable && merging == 0 && zero == 0) return Optional.empty();
            String comm = Files.readString(dir.resolve("comm")).trim();
            return Optional.of(new ProcessKsm(pid, comm, merging, zero, profit, any, mergeable));
        } catch (IOException | NumberFormatException e) {
            return Optional.empty(); // the process went away, or a kernel without ksm_stat
        }
    }

    /**
     * Every process that takes part in KSM (marked, or with merged pages). One read of ksm_stat per process; comm only
     * for those that take part (`dedupctl stats` runs this on every call, on a node of hundreds of processes).
     */
    public static List<ProcessKsm> all(Path proc) {
        List<ProcessKsm> out = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(proc)) {
            for (Path p : ds) {
                int pid = pid(p.getFileName().toString());
                if (pid > 0) read(proc, pid, true).ifPresent(out::add);
            }
        } catch (IOException e) {
            return out;
        }
        return out;
    }

    /** A /proc entry's pid, or -1 for one that is not a process. */
    private static int pid(String name) {
        if (name.isEmpty() || name.length() > 9) return -1;
        int pid = 0;
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            if (c < '0' || c > '9') return -1;
            pid = pid * 10 + (c - '0');
        }
        return pid;
    }
}
