package org.dedupsnapshotter.lazy.convert;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * An image's start-up trace as the daemon's admin GetTrace answers it (issue 7):
 * {"image": CHAINID, "runs": N, "layers": [...], "chunks": ["sha256:…", …]}, chunks in the order the image's
 * containers first read them. Only the chunk list matters to the converter: digests are the pool's keys (SHA-256 of
 * the uncompressed chunk), the same whatever image or conversion they were recorded on.
 */
public record StartupTrace(String image, int runs, List<String> chunks) {
    private static final Pattern DIGEST = Pattern.compile("sha256:[0-9a-f]{64}");
    private static final ObjectMapper JSON = new ObjectMapper();

    public StartupTrace {
        chunks = List.copyOf(chunks);
    }

    /** Parses a trace; anything that is not one is an error saying what is wrong. */
    public static StartupTrace parse(byte[] json) throws IOException {
        JsonNode n;
        try {
            n = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw new IOException("the trace is not JSON: " + e.getOriginalMessage());
        }
        if (n == null || !n.isObject() || !n.path("chunks").isArray())
            throw new IOException("not a start-up trace: no \"chunks\" list (expected {\"image\": …, \"chunks\": [\"sha256:…\", …]})");
        List<String> chunks = new ArrayList<>(n.path("chunks").size());
        for (JsonNode c : n.path("chunks")) {
            if (!c.isTextual() || !DIGEST.matcher(c.asText()).matches())
                throw new IOException("trace chunk " + chunks.size() + " is not a digest \"sha256:<64 hex>\": " + c);
            chunks.add(c.asText());
        }
        return new StartupTrace(n.path("image").asText(""), n.path("runs").asInt(0), chunks);
    }

    /** digest → rank, the index of the digest's first place in the trace (a repeated digest keeps its first). */
    public Map<String, Integer> ranks() {
        Map<String, Integer> ranks = new LinkedHashMap<>();
        for (int i = 0; i < chunks.size(); i++) ranks.putIfAbsent(chunks.get(i), i);
        return Collections.unmodifiableMap(ranks);
    }
}
