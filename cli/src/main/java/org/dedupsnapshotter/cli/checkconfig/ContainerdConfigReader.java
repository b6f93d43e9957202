package org.dedupsnapshotter.cli.checkconfig;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * Reads a node's containerd config the way its containerd sees it: with the containerd binary at hand, its own
 * `containerd --config FILE config dump` (which migrates a version 2 file to 2.x's layout, fills defaults and
 * merges imports, so what is checked is what containerd will run with); without one, the file itself.
 */
public final class ContainerdConfigReader {
    /** What was read and from where; version is empty when no containerd binary said it. */
    public record Reading(ContainerdConfig config, Optional<ContainerdVersion> version, String source, List<String> notes) {}

    private ContainerdConfigReader() {}

    public static Reading read(Path file, Optional<Path> containerd) throws IOException {
        if (!Files.isRegularFile(file))
            throw new IOException(file + " does not exist: containerd runs with its defaults, which have no [proxy_plugins.dedup]; create it with the snippet `make install` prints");
        List<String> notes = new ArrayList<>();
        if (containerd.isPresent()) {
            Path bin = containerd.get();
            ContainerdVersion v = ContainerdVersion.parse(run(bin, List.of("--version")).out)
                    .orElseThrow(() -> new IOException(bin + " --version names no release"));
            Result dump = run(bin, List.of("--config", file.toString(), "config", "dump"));
            if (dump.code != 0)
                throw new IOException(v + " cannot load " + file + " (" + bin + " --config " + file + " config dump): " + lastLines(dump.err));
            return new Reading(ContainerdConfig.parse(dump.out), Optional.of(v), v + "'s effective config (" + bin + " config dump of " + file + ")", notes);
        }
        ContainerdConfig c = ContainerdConfig.parse(Files.readString(file));
        notes.add("no containerd binary found (give --containerd PATH): checked the file as written, without containerd's defaults"
                + (c.imports().isEmpty() ? "" : " and without its imports " + c.imports()));
        return new Reading(c, Optional.empty(), "the file " + file, notes);
    }

    /** containerd on PATH, if any. */
    public static Optional<Path> onPath() {
        String path = System.getenv("PATH");
        if (path == null) return Optional.empty();
        for (String dir : path.split(":")) {
            if (dir.isEmpty()) continue;
            Path p = Path.of(dir, "containerd");
            if (Files.isExecutable(p) && Files.isRegularFile(p)) return Optional.of(p);
        }
        return Optional.empty();
    }

    private record Result(int code, String out, String err) {}

    private static Result run(Path bin, List<String> args) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(bin.toString()));
        cmd.addAll(args);
        Path err = Files.createTempFile("dedupctl-containerd-", ".err");
        try {
            Process p = new ProcessBuilder(cmd).redirectError(err.toFile()).start();
            p.getOutputStream().close();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException(String.join(" ", cmd) + " did not finish in 30 s");
            }
            return new Result(p.exitValue(), out, Files.readString(err));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted running " + String.join(" ", cmd), e);
        } finally {
            Files.deleteIfExists(err);
        }
    }

    private static String lastLines(String s) {
        List<String> lines = s.strip().lines().toList();
        return String.join(" | ", lines.subList(Math.max(0, lines.size() - 3), lines.size()));
    }
}
