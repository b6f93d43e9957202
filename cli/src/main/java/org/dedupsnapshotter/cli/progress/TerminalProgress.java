package org.dedupsnapshotter.cli.progress;

import org.dedupsnapshotter.lazy.convert.ByteProgress;

import java.io.Console;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Pattern;

/**
 * A live progress line on a terminal: "label: 12.3 of 45.6 MiB, 10.2 MB/s", rewritten in place with \r a few
 * times a second. The command's own lines go through {@link #lines()}, which wipes the live line before each, so they
 * stay as they are when output is piped (then there is no live line at all: {@link #forStdout()} gives
 * {@link ByteProgress#NONE} and plain System.out).
 */
public final class TerminalProgress implements ByteProgress, AutoCloseable {
    private static final String WIPE = "\r\033[K";
    private static final Pattern SHORT_DIGEST = Pattern.compile("(sha256:[0-9a-f]{12})[0-9a-f]{52}");

    private final PrintStream out;
    private final PrintStream lines;
    private final ScheduledExecutorService ticker;
    private final AtomicLong done = new AtomicLong(), total = new AtomicLong();
    private volatile String label;
    private volatile long phaseStart = System.nanoTime();
    /** Whether a live line is on the screen now (guarded by this). */
    private boolean shown;

    private TerminalProgress(PrintStream out) {
        this.out = out;
        this.lines = new PrintStream(new WipingStream(), true, StandardCharsets.UTF_8);
        this.ticker = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().daemon().name("progress").factory());
        ticker.scheduleAtFixedRate(this::draw, 250, 250, TimeUnit.MILLISECONDS);
    }

    /** What a command prints with and how it reports bytes: a live line when stdout is a terminal, else nothing extra. */
    public record Output(PrintStream lines, ByteProgress meter, AutoCloseable done) {}

    /**
     * What --quiet (only the result), --json (the result alone on stdout, the lines on stderr) and --no-progress (no
     * live line even on a terminal) leave of the output; neither: {@link #forStdout()}.
     */
    public static Output forOptions(boolean quiet, boolean json, boolean noProgress) {
        if (quiet) return new Output(new PrintStream(OutputStream.nullOutputStream(), true, StandardCharsets.UTF_8), ByteProgress.NONE, () -> {});
        if (json) return new Output(System.err, ByteProgress.NONE, () -> {});
        if (noProgress) return new Output(System.out, ByteProgress.NONE, () -> {});
        return forStdout();
    }

    public static Output forStdout() {
        if (!isTerminal()) return new Output(System.out, ByteProgress.NONE, () -> {});
        TerminalProgress p = new TerminalProgress(System.out);
        return new Output(p.lines(), p, p);
    }

    /** stdout (and stdin) a terminal: Java 22+ always has a Console, isTerminal() says whether it is one. */
    static boolean isTerminal() {
        Console c = System.console();
        return c != null && c.isTerminal();
    }

    public PrintStream lines() { return lines; }

    @Override
    public void phase(String label) {
        this.label = label;
        done.set(0);
        total.set(0);
        phaseStart = System.nanoTime();
    }

    @Override
    public void expect(long bytes) { total.addAndGet(bytes); }

    @Override
    public void add(long bytes) { done.addAndGet(bytes); }

    private synchronized void draw() {
        String l = label;
        if (l == null) return;
        out.print(WIPE + render(l, done.get(), total.get(), (System.nanoTime() - phaseStart) / 1e9));
        out.flush();
        shown = true;
    }

    /** The live line's text: digests shortened, so that it fits a line (a wrapped line is not rewritten by \r). */
    static String render(String label, long done, long total, double seconds) {
        label = SHORT_DIGEST.matcher(label).replaceAll("$1");
        String rate = String.format(Locale.ROOT, "%.1f MB/s", done / 1e6 / Math.max(seconds, 1e-3));
        if (total <= 0) return String.format(Locale.ROOT, "%s: %s, %s", label, mib(done), rate);
        return String.format(Locale.ROOT, "%s: %s of %s (%d %%), %s", label, mib(done), mib(total), Math.min(100, done * 100 / total), rate);
    }

    private static String mib(long bytes) { return String.format(Locale.ROOT, "%.1f MiB", bytes / 1048576.0); }

    private synchronized void wipe() {
        if (shown) out.print(WIPE);
        shown = false;
    }

    @Override
    public void close() {
        ticker.shutdownNow();
        wipe();
        out.flush();
    }

    /** The command's lines: the live line wiped first, then written through. */
    private final class WipingStream extends OutputStream {
        @Override
        public void write(int b) throws IOException {
            write(new byte[]{(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) {
            synchronized (TerminalProgress.this) {
                wipe();
                out.write(b, off, len);
            }
        }

        @Override
        public void flush() { out.flush(); }
    }
}
