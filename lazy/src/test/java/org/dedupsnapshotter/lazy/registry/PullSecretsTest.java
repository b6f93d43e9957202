package org.dedupsnapshotter.lazy.registry;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Pull secrets kept by HOST/REPOSITORY, ahead of the docker config, in a 0600 file that outlives the process. */
class PullSecretsTest {
    @TempDir Path dir;

    static final Credentials ALICE = new Credentials("alice", "s3cret-a");
    static final Credentials BOB = new Credentials("bob", "s3cret-b");
    static final Credentials CONFIG = new Credentials("from-config", "s3cret-c");

    @Test
    void twoImagesOfOneHostKeepTheirOwnSecrets() throws Exception {
        PullSecrets s = PullSecrets.open(dir.resolve("ps.json"));
        s.put("reg.example:5000/team-a/app:1", ALICE);
        s.put("reg.example:5000/team-b/app@sha256:" + "0".repeat(64), BOB);
        assertEquals(Optional.of(ALICE), s.lookup("reg.example:5000", "team-a/app"));
        assertEquals(Optional.of(BOB), s.lookup("reg.example:5000", "team-b/app"));
        assertEquals(Optional.empty(), s.lookup("reg.example:5000", "team-c/app"));
        assertEquals(Optional.empty(), s.lookup("reg.example:5000"), "a repository's secret is not the host's");
        assertEquals(Optional.empty(), s.lookup("other.example:5000", "team-a/app"));
        // Docker Hub's names as the registry knows them
        s.put("busybox", ALICE);
        assertEquals(Optional.of(ALICE), s.lookup(ImageRef.DOCKER_HUB, "library/busybox"));
    }

    @Test
    void pullSecretsComeFirstThenTheFallback() throws Exception {
        PullSecrets s = PullSecrets.open(dir.resolve("ps.json"));
        s.put("reg.example/a:1", ALICE);
        CredentialSource both = s.before(host -> host.equals("reg.example") ? Optional.of(CONFIG) : Optional.empty());
        assertEquals(Optional.of(ALICE), both.lookup("reg.example", "a"));
        assertEquals(Optional.of(CONFIG), both.lookup("reg.example", "b"));
        assertEquals(Optional.of(ALICE), both.forRepository("a").lookup("reg.example"));
        assertEquals(Optional.of(CONFIG), both.forRepository("b").lookup("reg.example"));
        assertEquals(Optional.empty(), both.lookup("elsewhere", "a"));
    }

    @Test
    void keptInAnOwnerOnlyFileThatOutlivesTheStore() throws Exception {
        Path f = dir.resolve("ps.json");
        PullSecrets s = PullSecrets.open(f);
        assertFalse(Files.exists(f), "nothing written before there is something to keep");
        s.put("reg.example/a:1", ALICE);
        s.put("reg.example/b:1", Credentials.identityToken("refresh-token-xyz"));
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(f)));
        try (var files = Files.list(dir)) {
            assertEquals(1, files.count(), "no temporary file left beside it");
        }

        PullSecrets again = PullSecrets.open(f);
        assertEquals(Optional.of(ALICE), again.lookup("reg.example", "a"));
        Credentials token = again.lookup("reg.example", "b").orElseThrow();
        assertTrue(token.isIdentityToken());
        assertEquals("refresh-token-xyz", token.secret());
        assertEquals(2, again.size());
    }

    @Test
    void aLooserFileIsMadeOwnerOnlyWhenOpened() throws Exception {
        Path f = dir.resolve("ps.json");
        PullSecrets.open(f).put("reg.example/a:1", ALICE);
        Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-r--r--"));
        PullSecrets.open(f);
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(f)));
    }

    @Test
    void aFailedPullPutsBackWhatWasKeptBefore() throws Exception {
        Path f = dir.resolve("ps.json");
        PullSecrets s = PullSecrets.open(f);
        s.put("reg.example/a:1", ALICE);
        Optional<Credentials> before = s.put("reg.example/a:2", BOB);
        assertEquals(Optional.of(ALICE), before);
        s.restore("reg.example/a:2", BOB, before);
        assertEquals(Optional.of(ALICE), PullSecrets.open(f).lookup("reg.example", "a"));

        Optional<Credentials> none = s.put("reg.example/new:1", BOB);
        s.restore("reg.example/new:1", BOB, none);
        assertEquals(Optional.empty(), PullSecrets.open(f).lookup("reg.example", "new"));
    }

    @Test
    void aFailedPullLeavesAlonePullSecretsAnotherPullPutSince() throws Exception {
        Path f = dir.resolve("ps.json");
        PullSecrets s = PullSecrets.open(f);
        Optional<Credentials> beforeA = s.put("reg.example/a:1", ALICE); // pull 1 starts
        s.put("reg.example/a:2", BOB); // pull 2 of the same repository starts
        s.restore("reg.example/a:1", ALICE, beforeA); // pull 1 fails
        assertEquals(Optional.of(BOB), PullSecrets.open(f).lookup("reg.example", "a"), "pull 2's credentials were undone by pull 1's failure");
    }

    @Test
    void noSecretInWhatIsPrinted() throws Exception {
        PullSecrets s = PullSecrets.open(dir.resolve("ps.json"));
        s.put("reg.example/a:1", ALICE);
        assertFalse(s.toString().contains("s3cret"), s.toString());
        assertTrue(s.toString().contains("reg.example/a"), s.toString());
        assertFalse(ALICE.toString().contains("s3cret"), ALICE.toString());
    }
}
