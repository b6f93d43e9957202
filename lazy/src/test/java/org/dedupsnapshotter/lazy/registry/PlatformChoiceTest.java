package org.dedupsnapshotter.lazy.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class PlatformChoiceTest {
    static final JsonNode INDEX;

    static {
        try {
            INDEX = new ObjectMapper().readTree("""
                    [{"digest":"sha256:a","platform":{"os":"linux","architecture":"amd64"}},
                     {"digest":"sha256:b","platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
                     {"digest":"sha256:c","platform":{"os":"linux","architecture":"arm","variant":"v7"}},
                     {"digest":"sha256:d","platform":{"os":"unknown","architecture":"unknown"},
                      "annotations":{"vnd.docker.reference.type":"attestation-manifest"}}]""");
        } catch (IOException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    static List<String> digests(PlatformChoice.Selection s) {
        return s.entries().stream().map(e -> e.path("digest").asText()).toList();
    }

    @Test
    void parsesAndNormalizes() {
        assertEquals("linux/arm64", Platform.parse("linux/arm64/v8").toString());
        assertEquals("linux/amd64", new Platform("Linux", "x86_64", "").toString());
        assertEquals("linux/arm64", new Platform("Linux", "aarch64", "").toString());
        assertEquals(List.of(Platform.parse("linux/amd64"), Platform.parse("linux/arm/v7")), Platform.parseList("linux/amd64,linux/arm/v7"));
        for (String bad : List.of("linux", "linux/", "/amd64", "linux/arm/v7/x", ""))
            assertThrows(IllegalArgumentException.class, () -> Platform.parse(bad), bad);
    }

    @Test
    void matchesLikeContainerd() {
        assertTrue(Platform.parse("linux/arm").matches(Platform.parse("linux/arm/v7")), "no variant asked: any");
        assertFalse(Platform.parse("linux/arm/v6").matches(Platform.parse("linux/arm/v7")));
        assertTrue(Platform.parse("linux/arm64").matches(Platform.parse("linux/arm64/v8")));
        assertFalse(Platform.parse("linux/amd64").matches(Platform.parse("windows/amd64")));
    }

    @Test
    void theHostsImageByDefault() throws IOException {
        Platform host = Platform.host();
        assertEquals("linux", host.os());
        PlatformChoice.Selection s = PlatformChoice.HOST.select(INDEX, "img");
        assertEquals(1, s.entries().size());
        assertTrue(host.matches(Platform.of(s.entries().getFirst().path("platform"))));
        assertFalse(PlatformChoice.HOST.explicit());
    }

    @Test
    void namedPlatformsInIndexOrderAndAllButAttestations() throws IOException {
        PlatformChoice two = PlatformChoice.of(Platform.parseList("linux/arm64,linux/amd64"));
        assertEquals(List.of("sha256:a", "sha256:b"), digests(two.select(INDEX, "img")));
        assertEquals(List.of(Platform.parse("linux/arm/v7")), two.select(INDEX, "img").skipped());
        PlatformChoice all = PlatformChoice.everything();
        assertEquals(List.of("sha256:a", "sha256:b", "sha256:c"), digests(all.select(INDEX, "img")));
        assertTrue(all.select(INDEX, "img").skipped().isEmpty());
    }

    @Test
    void aPlatformNotInTheIndexNamesWhatIsThere() {
        IOException e = assertThrows(IOException.class, () -> PlatformChoice.of(List.of(Platform.parse("linux/s390x"))).select(INDEX, "reg/img:1"));
        assertEquals("reg/img:1 is an index without a linux/s390x image; it has linux/amd64, linux/arm64, linux/arm/v7", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new PlatformChoice(List.of(Platform.host()), true));
    }
}
