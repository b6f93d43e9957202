package org.dedupsnapshotter.lazy.registry;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.*;

class ImageRefTest {
    static final String D = "sha256:" + "ab".repeat(32);

    @Test
    void readsReferencesTheWayDockerAndContainerdDo() {
        assertEquals(new ImageRef(ImageRef.DOCKER_HUB, "library/debian", "bookworm", null), ImageRef.parse("debian:bookworm"));
        assertEquals(new ImageRef(ImageRef.DOCKER_HUB, "library/debian", "latest", null), ImageRef.parse("docker.io/library/debian"));
        assertEquals(new ImageRef(ImageRef.DOCKER_HUB, "user/app", "1.0", null), ImageRef.parse("user/app:1.0"));
        assertEquals(new ImageRef("127.0.0.1:5000", "deb-a", "latest", null), ImageRef.parse("127.0.0.1:5000/deb-a"));
        assertEquals(new ImageRef("localhost", "a/b", null, D), ImageRef.parse("localhost/a/b@" + D));
        assertEquals(new ImageRef("ghcr.io", "o/r", "v1", D), ImageRef.parse("ghcr.io/o/r:v1@" + D));
        assertEquals(D, ImageRef.parse("ghcr.io/o/r:v1@" + D).reference());
    }

    @Test
    void badReferencesSayWhatIsWrong() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> ImageRef.parse("Upper/Case")).getMessage().contains("bad repository name"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> ImageRef.parse("a@sha256:12")).getMessage().contains("bad digest"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> ImageRef.parse("repo:-bad")).getMessage().contains("bad tag"));
    }

    @Test
    void credentialsComeFromTheDockerConfig(@TempDir Path dir) throws Exception {
        Path cfg = Files.writeString(dir.resolve("config.json"), """
                {"auths": {"https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="},
                           "reg.example:5000": {"username": "u", "password": "p"}}}""");
        assertEquals(Optional.of(new Credentials("hub", "secret")), Credentials.forHost(cfg, ImageRef.DOCKER_HUB));
        assertEquals(Optional.of(new Credentials("u", "p")), Credentials.forHost(cfg, "reg.example:5000"));
        assertEquals(Optional.empty(), Credentials.forHost(cfg, "other.example"));
        assertEquals(Optional.empty(), Credentials.forHost(dir.resolve("none.json"), "other.example"));
        assertFalse(new Credentials("u", "sekrit").toString().contains("sekrit"), "secrets stay out of logs");
    }
}
