package org.dedupsnapshotter.ksm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The node's KSM: /sys/kernel/mm/ksm. Reads the figures and applies settings; a setting left null keeps the
 * kernel's value (the default: the daemon does not turn KSM on behind the administrator's back).
 */
public final class KsmNode {
    public static final Path SYSFS = Path.of("/sys/kernel/mm/ksm");

    private final Path dir;

    public KsmNode(Path dir) { this.dir = dir; }

    public static KsmNode system() { return new KsmNode(SYSFS); }

    /**
     * @param run         ksmd scanning (run = 1) or stopped (run = 0; merged pages stay merged)
     * @param advisorMode "none" or "scan-time" (kernels from 6.7 tune pages_to_scan themselves)
     */
    public record Settings(Boolean run, Integer pagesToScan, Integer sleepMillisecs, String advisorMode, Boolean useZeroPages, Integer maxPageSharing) {
        public boolean empty() {
            return run == null && pagesToScan == null && sleepMillisecs == null && advisorMode == null && useZeroPages == null && maxPageSharing == null;
        }
    }

    /** Node figures. Saved bytes are pages_sharing pages: the copies that now point at a shared page. */
    public record Figures(boolean running, long pagesShared, long pagesSharing, long pagesUnshared, long pagesVolatile, long fullScans,
                          long generalProfitBytes, long zeroPages, long pagesToScan, long sleepMillisecs) {
        public long savedBytes() { return (pagesSharing + zeroPages) * KsmCalls.PAGE; }
    }

    /** Why KSM cannot be used here, or empty when it can: the sysfs directory and whole-process merging (6.4+). */
    public Optional<String> unsupported() {
        if (!Files.isDirectory(dir))
            return Optional.of("the kernel has no KSM (" + dir + " is missing; build it with CONFIG_KSM=y)");
        try {
            KsmCalls.processMergeable();
        } catch (IOException e) {
            return Optional.of("the kernel cannot mark whole processes mergeable (prctl PR_GET_MEMORY_MERGE: " + e.getMessage()
                    + "; it needs Linux 6.4 or later)");
        }
        return Optional.empty();
    }

    public Figures figures() throws IOException {
        return new Figures(read("run") == 1, read("pages_shared"), read("pages_sharing"), read("pages_unshared"), read("pages_volatile"),
                read("full_scans"), optional("general_profit"), optional("ksm_zero_pages"), read("pages_to_scan"), read("sleep_millisecs"));
    }

    /** Applies the non-null settings; returns "name=value" for each one written, in the order written. */
    public List<String> apply(Settings s) throws IOException {
        List<String> done = new ArrayList<>();
        Map<String, String> values = new LinkedHashMap<>();
        // advisor_mode first: with the advisor on, the kernel rewrites pages_to_scan itself
        if (s.advisorMode() != null) values.put("advisor_mode", s.advisorMode());
        if (s.pagesToScan() != null) values.put("pages_to_scan", s.pagesToScan().toString());
        if (s.sleepMillisecs() != null) values.put("sleep_millisecs", s.sleepMillisecs().toString());
        if (s.maxPageSharing() != null) values.put("max_page_sharing", s.maxPageSharing().toString());
        if (s.useZeroPages() != null) values.put("use_zero_pages", s.useZeroPages() ? "1" : "0");
        // run last, so scanning starts with the settings above
        if (s.run() != null) values.put("run", s.run() ? "1" : "0");
        for (var e : values.entrySet()) {
            Path f = dir.resolve(e.getKey());
            if (!Files.exists(f)) throw new IOException("this kernel has no " + f + " (config key ksm.kernel." + camel(e.getKey()) + ")");
            try {
                Files.writeString(f, e.getValue());
            } catch (IOException x) {
                // max_page_sharing and use_zero_pages refuse changes while pages are merged (EBUSY)
                throw new IOException("cannot write " + e.getValue() + " to " + f + " (config key ksm.kernel." + camel(e.getKey()) + "): " + x.getMessage(), x);
            }
            done.add(e.getKey() + "=" + e.getValue());
        }
        return done;
    }

    /** The current value of a setting file, as the kernel shows it ("[none] scan-time" becomes "none"). */
    public String setting(String name) throws IOException {
        String v = Files.readString(dir.resolve(name)).trim();
        int open = v.indexOf('['), close = v.indexOf(']');
        return open >= 0 && close > open ? v.substring(open + 1, close) : v;
    }

    private long read(String name) throws IOException {
        return Long.parseLong(Files.readString(dir.resolve(name)).trim());
    }

    /** Figures newer kernels added; 0 where absent. */
    private long optional(String name) throws IOException {
        try {
            return read(name);
        } catch (NoSuchFileException e) {
            return 0;
        }
    }

    private static String camel(String snake) {
        StringBuilder sb = new StringBuilder();
        boolean up = false;
        for (char c : snake.toCharArray()) {
            if (c == '_') up = true;
            else { sb.append(up ? Character.toUpperCase(c) : c); up = false; }
        }
        return sb.toString();
    }
}
