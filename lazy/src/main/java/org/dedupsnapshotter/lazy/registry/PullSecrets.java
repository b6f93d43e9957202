package org.dedupsnapshotter.lazy.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;

/**
 * Credentials given with image pulls (Kubernetes pull secrets, passed by the kubelet in CRI's PullImage), kept by
 * HOST/REPOSITORY so the lazy reads of that image's layers use them. Kept in a file of mode 0600 (rewritten whole
 * and renamed into place at each change) so reads after a daemon restart still have them. As a source they answer
 * for their repository only; {@link #before} puts them ahead of another source (the docker config).
 */
public final class PullSecrets implements CredentialSource {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Set<PosixFilePermission> OWNER_ONLY = PosixFilePermissions.fromString("rw-------");

    private final Path file;
    private final Map<String, Credentials> byRepository;

    private PullSecrets(Path file, Map<String, Credentials> byRepository) {
        this.file = file;
        this.byRepository = byRepository;
    }

    /** The secrets kept in file (none if it does not exist yet). */
    public static PullSecrets open(Path file) throws IOException {
        Map<String, Credentials> m = new TreeMap<>();
        if (Files.exists(file)) {
            Files.setPosixFilePermissions(file, OWNER_ONLY); // whatever made it looser
            JsonNode root = JSON.readTree(file.toFile());
            root.path("credentials").properties().forEach(e ->
                    m.put(e.getKey(), new Credentials(e.getValue().path("user").asText(), e.getValue().path("secret").asText())));
        }
        return new PullSecrets(file, m);
    }

    /** HOST/REPOSITORY of an image reference (Docker Hub's names as the registry knows them). */
    public static String keyOf(String imageRef) {
        ImageRef r = ImageRef.parse(imageRef);
        return r.host() + "/" + r.repository();
    }

    /** Keeps c for the image's repository (replacing what was kept for it); returns what was kept before. */
    public synchronized Optional<Credentials> put(String imageRef, Credentials c) throws IOException {
        Credentials before = byRepository.put(keyOf(imageRef), c);
        save(); // when this fails, c is still kept in memory (lazy reads work until a restart)
        return Optional.ofNullable(before);
    }

    /**
     * Puts back what {@link #put} of given replaced: previous, or nothing — unless another pull of the repository has
     * put its own since (then those stay: that pull may have succeeded with them).
     */
    public synchronized void restore(String imageRef, Credentials given, Optional<Credentials> previous) throws IOException {
        String k = keyOf(imageRef);
        if (byRepository.get(k) != given) return;
        if (previous.isPresent()) byRepository.put(k, previous.get());
        else byRepository.remove(k);
        save();
    }

    /** What is kept for imageRef's repository now. */
    public synchronized Optional<Credentials> current(String imageRef) {
        return Optional.ofNullable(byRepository.get(keyOf(imageRef)));
    }

    @Override
    public Optional<Credentials> lookup(String host) { return Optional.empty(); }

    @Override
    public synchronized Optional<Credentials> lookup(String host, String repository) {
        return Optional.ofNullable(byRepository.get(host + "/" + repository));
    }

    /** These secrets first, then fallback's credentials for the host. */
    public CredentialSource before(CredentialSource fallback) {
        return new CredentialSource() {
            @Override
            public Optional<Credentials> lookup(String host) throws IOException { return fallback.lookup(host); }

            @Override
            public Optional<Credentials> lookup(String host, String repository) throws IOException {
                Optional<Credentials> c = PullSecrets.this.lookup(host, repository);
                return c.isPresent() ? c : fallback.lookup(host, repository);
            }
        };
    }

    public synchronized int size() { return byRepository.size(); }

    /** Written to a 0600 temporary file beside the file, synced, renamed over it: never partly written, never readable by others. */
    private void save() throws IOException {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode creds = root.putObject("credentials");
        byRepository.forEach((k, c) -> creds.putObject(k).put("user", c.user()).put("secret", c.secret()));
        Path tmp = Files.createTempFile(file.getParent(), "." + file.getFileName(), ".tmp", PosixFilePermissions.asFileAttribute(OWNER_ONLY));
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                ByteBuffer b = ByteBuffer.wrap(JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(root));
                while (b.hasRemaining()) ch.write(b);
                ch.force(true);
            }
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    @Override
    public synchronized String toString() { return "PullSecrets[" + file + ", repositories " + byRepository.keySet() + "]"; }
}
