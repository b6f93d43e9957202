package org.dedupsnapshotter.daemon.cri;

import org.dedupsnapshotter.lazy.registry.Credentials;
import org.dedupsnapshotter.proto.cri.v1.AuthConfig;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A PullImage's AuthConfig read as containerd's CRI reads it, and never given to another host. */
class PullAuthTest {
    static final String IMAGE = "reg.example:5000/team/app:1";

    @Test
    void userAndPasswordThenIdentityTokenThenAuth() {
        assertEquals(Optional.of(new Credentials("u", "p")),
                PullAuth.of(AuthConfig.newBuilder().setUsername("u").setPassword("p").setIdentityToken("t").build(), IMAGE));
        Credentials token = PullAuth.of(AuthConfig.newBuilder().setIdentityToken("t").setAuth(b64("a:b")).build(), IMAGE).orElseThrow();
        assertTrue(token.isIdentityToken());
        assertEquals("t", token.secret());
        assertEquals(Optional.of(new Credentials("a", "b:c")), PullAuth.of(AuthConfig.newBuilder().setAuth(b64("a:b:c")).build(), IMAGE));
    }

    @Test
    void nothingUsableGivesNothing() {
        assertEquals(Optional.empty(), PullAuth.of(AuthConfig.getDefaultInstance(), IMAGE));
        assertEquals(Optional.empty(), PullAuth.of(AuthConfig.newBuilder().setRegistryToken("bearer").build(), IMAGE));
        assertEquals(Optional.empty(), PullAuth.of(AuthConfig.newBuilder().setAuth(b64("no-colon")).build(), IMAGE));
        assertEquals(Optional.empty(), PullAuth.of(AuthConfig.newBuilder().setAuth("%%%").build(), IMAGE));
    }

    @Test
    void credentialsForAnotherServerAreNotKeptForThisImage() {
        AuthConfig.Builder a = AuthConfig.newBuilder().setUsername("u").setPassword("p");
        assertEquals(Optional.empty(), PullAuth.of(a.setServerAddress("https://other.example:5000").build(), IMAGE));
        assertEquals(Optional.empty(), PullAuth.of(a.setServerAddress("reg.example").build(), IMAGE), "another port is another host");
        assertTrue(PullAuth.of(a.setServerAddress("https://reg.example:5000/v2/").build(), IMAGE).isPresent());
        assertTrue(PullAuth.of(a.setServerAddress("reg.example:5000").build(), IMAGE).isPresent());
        assertTrue(PullAuth.of(a.setServerAddress("https://index.docker.io/v1/").build(), "docker.io/library/busybox:1").isPresent());
    }

    static String b64(String s) { return Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8)); }
}
