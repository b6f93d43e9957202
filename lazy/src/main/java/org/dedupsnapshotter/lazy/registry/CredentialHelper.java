package org.dedupsnapshotter.lazy.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * A docker credential helper, the program docker-credential-NAME found on a PATH, spoken to as docker does: `get`
 * with the server URL on stdin answers JSON {ServerURL, Username, Secret}; a non-zero exit saying "credentials not
 * found" means there are none. Its answer is never logged; its error output is quoted only when it failed.
 */
final class CredentialHelper {
    static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String name;
    private final String path;

    CredentialHelper(String name, String path) {
        this.name = name;
        this.path = path;
    }

    String program() { return "docker-credential-" + name; }

    Optional<Credentials> get(String serverUrl) throws IOException {
        Path exe = find().orElseThrow(() -> new IOException("the docker config names the credential helper " + name + " but " + program()
                + " is not on PATH (" + path + "): install it or fix credsStore/credHelpers"));
        ProcessBuilder pb = new ProcessBuilder(List.of(exe.toString(), "get"));
        pb.environment().put("PATH", path);
        pb.redirectErrorStream(true);
        Process p = pb.start();
        try {
            CompletableFuture<byte[]> out = CompletableFuture.supplyAsync(() -> readAll(p.getInputStream()));
            try (OutputStream in = p.getOutputStream()) {
                in.write((serverUrl + "\n").getBytes(StandardCharsets.UTF_8));
            } catch (IOException ignored) {
                // a helper that exits without reading its input says why in its output
            }
            if (!p.waitFor(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS))
                throw new IOException(program() + " get " + serverUrl + ": no answer within " + TIMEOUT.toSeconds() + " s");
            String text = new String(out.get(), StandardCharsets.UTF_8).strip();
            if (p.exitValue() != 0) {
                if (text.toLowerCase().contains("credentials not found")) return Optional.empty();
                throw new IOException(program() + " get " + serverUrl + " failed (exit " + p.exitValue() + "): " + abbreviate(text));
            }
            JsonNode n;
            try {
                n = JSON.readTree(text);
            } catch (IOException e) {
                throw new IOException(program() + " get " + serverUrl + " answered something that is not JSON", e);
            }
            String user = n.path("Username").asText(""), secret = n.path("Secret").asText("");
            if (secret.isEmpty()) return Optional.empty();
            return Optional.of(new Credentials(user, secret));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while " + program() + " ran", e);
        } catch (ExecutionException e) {
            throw new IOException(program() + ": reading its answer failed", e.getCause());
        } finally {
            p.destroyForcibly();
        }
    }

    private Optional<Path> find() {
        for (String dir : path.split(File.pathSeparator)) {
            if (dir.isEmpty()) continue;
            Path exe = Path.of(dir, program());
            if (Files.isRegularFile(exe) && Files.isExecutable(exe)) return Optional.of(exe);
        }
        return Optional.empty();
    }

    private static byte[] readAll(InputStream in) {
        try (in) {
            return in.readNBytes(1 << 20);
        } catch (IOException e) {
            return new byte[0];
        }
    }

    private static String abbreviate(String s) { return s.length() > 300 ? s.substring(0, 300) + "…" : s; }
}
