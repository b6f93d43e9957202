package org.dedupsnapshotter.daemon.lazypull;

import org.dedupsnapshotter.lazy.fetch.Members;
import org.dedupsnapshotter.lazy.fetch.Registries;
import org.dedupsnapshotter.lazy.toc.LazyLayerFormat;
import org.dedupsnapshotter.lazy.toc.Toc;
import org.dedupsnapshotter.lazy.toc.TocCheck;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.time.Duration;
import java.util.Map;
import java.util.function.LongConsumer;
import java.util.zip.GZIPInputStream;

/**
 * Lazy layers' tables of contents from their registries: one Range request for the TOC's gzip member (where the
 * labels or annotations say it is), inflated, checked against its digest, parsed.
 */
final class RegistryTocs implements EarlyFetch.TocFetcher {
    /** A TOC bigger than this is refused (a hostile or broken image must not exhaust the heap). */
    private static final int MAX_TOC = TocCheck.maxTocBytes();

    private final Registries registries;
    private final LongConsumer tocFetched;
    private final Duration deadline;

    /** tocFetched: told the bytes of each TOC member fetched; deadline: how long a TOC's fetch may be retried. */
    RegistryTocs(Registries registries, LongConsumer tocFetched, Duration deadline) {
        this.registries = registries;
        this.tocFetched = tocFetched;
        this.deadline = deadline;
    }

    /** A label that must be there and not empty. */
    static String required(Map<String, String> labels, String key) throws IOException {
        String v = labels.get(key);
        if (v == null || v.isEmpty()) throw new IOException("label " + key + " is missing");
        return v;
    }


    /** The TOC from the registry (labels: a Prepare's, or the manifest's annotations for the layer). */
    @Override
    public Toc fetch(String source, String blob, Map<String, String> labels) throws IOException {
        String version = labels.getOrDefault(LazyLayerFormat.TOC_VERSION, "1");
        if (!version.equals(Integer.toString(Toc.VERSION))) throw new Toc.UnsupportedTocException("TOC version " + version + " is not one this node reads");
        long offset = Long.parseLong(required(labels, LazyLayerFormat.TOC_OFFSET));
        long length = Long.parseLong(required(labels, LazyLayerFormat.TOC_LENGTH));
        if (length <= 0 || length > MAX_TOC) throw new IOException("TOC length " + length + " out of range");
        byte[] member = registries.range(source, blob, offset, (int) length, System.nanoTime() + deadline.toNanos());
        tocFetched.accept(member.length);
        return tocFromMember(member, required(labels, LazyLayerFormat.TOC_DIGEST), blob);
    }

    /** A TOC's gzip member inflated, checked against its digest and parsed. */
    static Toc tocFromMember(byte[] member, String digest, String blob) throws IOException {
        return Toc.parse(tocJsonFromMember(member, digest, blob));
    }

    /** A TOC's gzip member inflated and checked against its digest: the JSON bytes. */
    static byte[] tocJsonFromMember(byte[] member, String digest, String blob) throws IOException {
        byte[] json;
        try (GZIPInputStream in = new GZIPInputStream(new ByteArrayInputStream(member))) {
            json = in.readNBytes(MAX_TOC + 1);
        }
        if (json.length > MAX_TOC) throw new IOException("TOC inflates to more than " + MAX_TOC + " bytes");
        Members.verify(json, digest, "TOC of " + blob);
        return json;
    }
}
