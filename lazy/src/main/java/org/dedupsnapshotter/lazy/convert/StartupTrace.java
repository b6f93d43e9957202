package org.dedupsnapshotter.lazy.convert;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.dedupsnapshotter.lazy.toc.TracePieces;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * An image's start-up trace as the daemon's admin GetTrace answers it:
 * {"image": CHAINID, "runs": N, "layers": [...], "chunks": ["sha256:…", …]}, chunks in the order the image's
 * containers first read them. Only the chunk list matters to the converter: digests are the pool's keys (SHA-256 of
 * the uncompressed chunk), the same whatever image or conversion they were recorded on.
 */
public record StartupTrace(String image, int runs, List<String> chunks, List<Long> pieces) {
    private static final Pattern DIGEST = Pattern.compile("sha256:[0-9a-f]{64}");
    private static final ObjectMapper JSON = new ObjectMapper();

    public StartupTrace {
        chunks = List.copyOf(chunks);
        pieces = List.copyOf(pieces);
        if (pieces.size() != chunks.size()) throw new IllegalArgumentException(pieces.size() + " piece masks for " + chunks.size() + " chunks");
    }

    /** A trace of whole chunks. */
    public StartupTrace(String image, int runs, List<String> chunks) {
        this(image, runs, chunks, Collections.nCopies(chunks.size(), TracePieces.ALL));
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
        List<Long> pieces = new ArrayList<>(chunks.size());
        if (n.has("pieces")) { // which parts of each chunk were read; a trace from before pieces has none: whole chunks
            if (!n.path("pieces").isArray() || n.path("pieces").size() != chunks.size())
                throw new IOException("the trace's \"pieces\" is not a list of one mask per chunk (" + chunks.size() + ")");
            for (JsonNode m : n.path("pieces")) {
                try {
                    pieces.add(TracePieces.parse(m.asText()));
                } catch (IllegalArgumentException e) {
                    throw new IOException("trace \"pieces\" entry " + pieces.size() + ": " + e.getMessage());
                }
            }
        } else pieces.addAll(Collections.nCopies(chunks.size(), TracePieces.ALL));
        return new StartupTrace(n.path("image").asText(""), n.path("runs").asInt(0), chunks, pieces);
    }

    /** digest → the pieces of it read (a repeated digest: every place's pieces). */
    public Map<String, Long> pieceMasks() {
        Map<String, Long> masks = new LinkedHashMap<>();
        for (int i = 0; i < chunks.size(); i++) masks.merge(chunks.get(i), pieces.get(i), (a, b) -> a | b);
        return Collections.unmodifiableMap(masks);
    }

    /** digest → rank, the index of the digest's first place in the trace (a repeated digest keeps its first). */
    public Map<String, Integer> ranks() {
        Map<String, Integer> ranks = new LinkedHashMap<>();
        for (int i = 0; i < chunks.size(); i++) ranks.putIfAbsent(chunks.get(i), i);
        return Collections.unmodifiableMap(ranks);
    }
}
