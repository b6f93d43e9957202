package org.dedupsnapshotter.lazy.registry;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Base64;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The docker config read as docker's client reads it, credential helpers included: each helper here is a real
 * program (a shell script written into a directory given as the PATH), spoken to through its protocol.
 */
class DockerConfigTest {
    @TempDir Path dir;
    Path bin, cfg;

    @BeforeEach
    void setUp() throws IOException {
        bin = Files.createDirectories(dir.resolve("bin"));
        cfg = dir.resolve("config.json");
        // answers for reg.example:5000 and Docker Hub's URL, an identity token for tok.example, "not found" otherwise;
        // it logs what it was asked so the test sees the server URL it got
        helper("test", """
                [ "$1" = get ] || { echo "unknown action $1" >&2; exit 1; }
                read -r url
                echo "$url" >> "%s"
                case "$url" in
                  reg.example:5000) echo '{"ServerURL":"reg.example:5000","Username":"helper-user","Secret":"helper-secret"}' ;;
                  https://index.docker.io/v1/) echo '{"ServerURL":"https://index.docker.io/v1/","Username":"hub-user","Secret":"hub-secret"}' ;;
                  tok.example) echo '{"ServerURL":"tok.example","Username":"<token>","Secret":"refresh-me"}' ;;
                  *) echo "credentials not found in native keychain"; exit 1 ;;
                esac
                """.formatted(dir.resolve("asked")));
        helper("broken", "echo 'cannot reach the keychain daemon' >&2; exit 3\n");
    }

    private void helper(String name, String body) throws IOException {
        Path p = bin.resolve("docker-credential-" + name);
        Files.writeString(p, "#!/bin/sh\n" + body);
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    private DockerConfig config(String json) throws IOException {
        Files.writeString(cfg, json);
        return new DockerConfig(cfg, bin + ":/usr/bin:/bin");
    }

    private static String b64(String s) { return Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8)); }

    @Test
    void authsGiveAuthUsernamePasswordOrAnIdentityToken() throws Exception {
        DockerConfig c = config("""
                {"auths": {"https://index.docker.io/v1/": {"auth": "%s"},
                           "reg.example:5000": {"username": "u", "password": "p"},
                           "http://url.example/v2/": {"auth": "%s"},
                           "tok.example": {"auth": "", "identitytoken": "refresh-1"}}}""".formatted(b64("hub:secret"), b64("a:b:c")));
        assertEquals(Optional.of(new Credentials("hub", "secret")), c.credentials(ImageRef.DOCKER_HUB));
        assertEquals(Optional.of(new Credentials("u", "p")), c.credentials("reg.example:5000"));
        assertEquals(Optional.of(new Credentials("a", "b:c")), c.credentials("url.example"), "a URL key names its host; the secret may hold colons");
        Credentials token = c.credentials("tok.example").orElseThrow();
        assertTrue(token.isIdentityToken());
        assertEquals("refresh-1", token.secret());
        assertEquals(Optional.empty(), c.credentials("other.example"));
        assertEquals(Optional.empty(), new DockerConfig(dir.resolve("none.json"), "").credentials("reg.example:5000"));
    }

    @Test
    void credHelpersNameAHelperPerHostAndCredsStoreTheDefault() throws Exception {
        DockerConfig c = config("""
                {"auths": {"reg.example:5000": {"auth": "%s"}, "plain.example": {"auth": "%s"}},
                 "credsStore": "test",
                 "credHelpers": {"plain.example": "", "bad.example": "broken"}}""".formatted(b64("file:store"), b64("plain:pw")));
        assertEquals(Optional.of(new Credentials("helper-user", "helper-secret")), c.credentials("reg.example:5000"), "the store wins over auths");
        assertEquals(Optional.of(new Credentials("hub-user", "hub-secret")), c.credentials(ImageRef.DOCKER_HUB));
        assertTrue(c.credentials("tok.example").orElseThrow().isIdentityToken(), "Username <token>: the secret is an identity token");
        assertEquals(Optional.empty(), c.credentials("unknown.example"), "\"credentials not found\" is no credentials, not an error");
        assertEquals(Optional.of(new Credentials("plain", "pw")), c.credentials("plain.example"), "an empty credHelpers entry means the file's auths, as in docker");
        IOException e = assertThrows(IOException.class, () -> c.credentials("bad.example"));
        assertTrue(e.getMessage().contains("docker-credential-broken") && e.getMessage().contains("cannot reach the keychain daemon"), e.getMessage());
        assertEquals("reg.example:5000\nhttps://index.docker.io/v1/\ntok.example\nunknown.example\n", Files.readString(dir.resolve("asked")),
                "helpers are asked with the bare host, Docker Hub with its index URL");
    }

    @Test
    void aHelperMissingFromPathIsAnErrorThatNamesIt() throws Exception {
        DockerConfig c = config("{\"credHelpers\": {\"reg.example:5000\": \"ecr-login\"}}");
        IOException e = assertThrows(IOException.class, () -> c.credentials("reg.example:5000"));
        assertTrue(e.getMessage().contains("docker-credential-ecr-login is not on PATH"), e.getMessage());
        assertEquals(Optional.empty(), c.credentials("other.example"), "other hosts have no helper and no auths entry");
    }

    @Test
    void everyLookupReadsTheFileAgain() throws Exception {
        DockerConfig c = config("{\"auths\": {\"reg.example:5000\": {\"auth\": \"" + b64("u:old") + "\"}}}");
        assertEquals("old", c.credentials("reg.example:5000").orElseThrow().secret());
        config("{\"auths\": {\"reg.example:5000\": {\"auth\": \"" + b64("u:new") + "\"}}}");
        assertEquals("new", c.credentials("reg.example:5000").orElseThrow().secret());
    }

    @Test
    void theLocationIsDockerConfigElseTheHomeDirectory() {
        assertEquals(Path.of("/etc/x/config.json"), DockerConfig.fromEnvironment(Map.of("DOCKER_CONFIG", "/etc/x")).file());
        assertEquals(Path.of(System.getProperty("user.home"), ".docker", "config.json"), DockerConfig.fromEnvironment(Map.of()).file());
    }

    @Test
    void secretsStayOutOfToString() {
        assertFalse(new Credentials("u", "sekrit").toString().contains("sekrit"));
        assertFalse(Credentials.identityToken("refresh-sekrit").toString().contains("sekrit"));
    }
}
