package org.dedupsnapshotter.daemon.metrics;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;

/** The daemon process's resident memory and open file descriptors, from /proc (NaN where it cannot be read). */
final class ProcessFigures {
    private ProcessFigures() {}

    /** Resident set size in bytes: VmRSS of /proc/self/status (in kB whatever the page size). */
    static double residentBytes() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/self/status")))
                if (l.startsWith("VmRSS:")) return Long.parseLong(l.substring(6).trim().split("\\s+")[0]) * 1024.0;
        } catch (IOException | RuntimeException e) {
            return Double.NaN;
        }
        return Double.NaN;
    }

    /** Entries of /proc/self/fd (the directory stream's own descriptor among them, as every such count has it). */
    static double openFds() {
        long n = 0;
        try (DirectoryStream<Path> d = Files.newDirectoryStream(Path.of("/proc/self/fd"))) {
            for (Path ignored : d) n++;
        } catch (IOException e) {
            return Double.NaN;
        }
        return n;
    }
}
