package org.dedupsnapshotter.lazy.registry;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;

/**
 * Which images of an index a command takes: this host's ({@link #HOST}, nothing named), the named platforms (each
 * must be in the index), or all of them. Entries that are no image for a platform (buildx's attestation manifests,
 * platform unknown/unknown) are never taken.
 */
public record PlatformChoice(List<Platform> named, boolean all) {
    public static final PlatformChoice HOST = new PlatformChoice(List.of(), false);
    private static final String REFERENCE_TYPE = "vnd.docker.reference.type";

    public PlatformChoice {
        named = List.copyOf(named);
        if (all && !named.isEmpty()) throw new IllegalArgumentException("--platform and --all-platforms exclude each other");
    }

    public static PlatformChoice of(List<Platform> named) { return new PlatformChoice(named, false); }

    public static PlatformChoice everything() { return new PlatformChoice(List.of(), true); }

    /** Whether platforms were asked for (else: the host's, as a plain image). */
    public boolean explicit() { return all || !named.isEmpty(); }

    /** Whether an image of platform p is wanted. */
    public boolean accepts(Platform p) {
        if (all) return true;
        List<Platform> wanted = named.isEmpty() ? List.of(Platform.host()) : named;
        return wanted.stream().anyMatch(w -> w.matches(p));
    }

    /** The entries taken, in the index's order, and the platforms of the image entries left out. */
    public record Selection(List<JsonNode> entries, List<Platform> skipped) {}

    /** The entries of an index's "manifests" this choice takes; an IOException names what the index has when one is missing. */
    public Selection select(JsonNode manifests, String what) throws IOException {
        List<JsonNode> images = new ArrayList<>();
        for (JsonNode m : manifests) if (isImage(m)) images.add(m);
        List<JsonNode> taken = new ArrayList<>();
        List<Platform> skipped = new ArrayList<>();
        if (all) taken.addAll(images);
        else {
            List<Platform> wanted = named.isEmpty() ? List.of(Platform.host()) : named;
            for (Platform w : wanted) {
                JsonNode hit = images.stream().filter(m -> w.matches(Platform.of(m.path("platform")))).findFirst().orElse(null);
                if (hit == null)
                    throw new IOException(what + " is an index without a " + w + " image" + (named.isEmpty() ? " (this host's platform; choose one with --platform)" : "")
                            + "; it has " + describe(images));
                if (!taken.contains(hit)) taken.add(hit);
            }
            taken.sort((a, b) -> images.indexOf(a) - images.indexOf(b));
        }
        for (JsonNode m : images) if (!taken.contains(m)) skipped.add(Platform.of(m.path("platform")));
        if (taken.isEmpty()) throw new IOException(what + " is an index without an image for any platform");
        return new Selection(List.copyOf(taken), List.copyOf(skipped));
    }

    /** An entry that is an image for a platform: a platform named, not an attestation or other reference. */
    private static boolean isImage(JsonNode m) {
        JsonNode p = m.path("platform");
        if (p.path("os").asText("").isEmpty() || p.path("os").asText().equals("unknown")) return false;
        return !m.path("annotations").has(REFERENCE_TYPE);
    }

    private static String describe(List<JsonNode> images) {
        if (images.isEmpty()) return "no image for any platform";
        return images.stream().map(m -> Platform.of(m.path("platform")).toString()).collect(Collectors.joining(", "));
    }

    @Override
    public String toString() {
        if (all) return "all platforms";
        return named.isEmpty() ? Platform.host().toString() : named.stream().map(Platform::toString).collect(Collectors.joining(", "));
    }
}
