package org.dedupsnapshotter.cli.trace;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * CMD run once in a container of the image, through containerd's own CLI: `ctr run --rm --snapshotter dedup IMAGE
 * ID sh -c CMD`, its output passed on line by line with a prefix, stopped after the time limit (a server never
 * exits by itself). ctr rather than our gRPC client: creating a task needs an OCI spec and IO set up as ctr does.
 */
final class ContainerRun {
    /** exitCode: CMD's (or ctr's); stopped: still running at the limit, and killed. */
    record Outcome(String id, int exitCode, boolean stopped, double seconds) {}

    private static final Duration AFTER_KILL = Duration.ofSeconds(20);

    private final Path containerdSocket;
    private final String namespace;

    ContainerRun(Path containerdSocket, String namespace) {
        this.containerdSocket = containerdSocket;
        this.namespace = namespace;
    }

    /** ctr must be on PATH: checked before any work is done. */
    static void checkCtr() throws IOException {
        for (String dir : System.getenv().getOrDefault("PATH", "/usr/local/bin:/usr/bin:/bin").split(":"))
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, "ctr"))) return;
        throw new IOException("ctr (containerd's CLI) is not on PATH: it runs CMD in a container");
    }

    Outcome run(String image, String command, Duration limit, PrintStream output) throws IOException {
        byte[] r = new byte[4];
        new SecureRandom().nextBytes(r);
        String id = "dedup-trace-" + ProcessHandle.current().pid() + "-" + HexFormat.of().formatHex(r);
        long t0 = System.nanoTime();
        Process p = new ProcessBuilder(ctr("run", "--rm", "--snapshotter", "dedup", image, id, "sh", "-c", command))
                .redirectErrorStream(true).start();
        p.getOutputStream().close(); // CMD reads EOF, not our stdin
        Thread pump = Thread.ofPlatform().daemon().name("trace-run-output").start(() -> passOn(p, output));
        boolean stopped = false;
        try {
            if (!p.waitFor(limit.toMillis(), TimeUnit.MILLISECONDS)) {
                stopped = true;
                // the task, not ctr: sh as the container's pid 1 ignores the SIGTERM ctr would forward
                runQuietly("tasks", "kill", "-s", "SIGKILL", id);
                if (!p.waitFor(AFTER_KILL.toMillis(), TimeUnit.MILLISECONDS)) p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
            pump.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            p.destroyForcibly();
            throw new IOException("interrupted while CMD ran", e);
        } finally {
            // --rm removes both when ctr exits normally; after a forced stop, they may be left
            if (!p.isAlive() && (stopped || p.exitValue() != 0)) {
                runQuietly("tasks", "rm", "-f", id);
                runQuietly("containers", "rm", id);
            }
        }
        return new Outcome(id, p.isAlive() ? -1 : p.exitValue(), stopped, (System.nanoTime() - t0) / 1e9);
    }

    private List<String> ctr(String... args) {
        List<String> cmd = new ArrayList<>(List.of("ctr", "--address", containerdSocket.toString(), "-n", namespace));
        cmd.addAll(List.of(args));
        return cmd;
    }

    /** A ctr call whose failure only means there was nothing to do (already gone). */
    private void runQuietly(String... args) throws IOException {
        Process p = new ProcessBuilder(ctr(args)).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        try {
            if (!p.waitFor(1, TimeUnit.MINUTES)) p.destroyForcibly();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            p.destroyForcibly();
        }
    }

    private static void passOn(Process p, PrintStream output) {
        try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line; (line = in.readLine()) != null; ) output.println("  | " + line);
        } catch (IOException e) {
            output.println("  | (output lost: " + e.getMessage() + ")");
        }
    }
}
