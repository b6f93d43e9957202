package org.dedupsnapshotter.itest;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What docker-registry's log (level info: one line per request) says was served: the blobs one client downloaded,
 * told apart by its user agent (containerd's is containerd/VERSION; the daemon's lazy reads are not containerd's).
 */
final class RegistryLog {
    private static final Pattern SERVED = Pattern.compile(
            "http\\.request\\.method=GET .*http\\.request\\.uri=\"/v2/[^\"]+/blobs/(sha256:[0-9a-f]{64})\" .*http\\.request\\.useragent=\"?(\\S+?)\"? .*http\\.response\\.status=20[06]");

    private static final Pattern BLOB_GET = Pattern.compile(
            "http\\.request\\.method=GET .*http\\.request\\.uri=\"/v2/[^\"]+/blobs/sha256:[0-9a-f]{64}(?:\\?[^\"]*)?\" .*http\\.request\\.useragent=\"?(\\S+?)\"? .*http\\.response\\.status=(2\\d\\d) http\\.response\\.written=(\\d+)");

    /** Blob GETs answered (a mirror's requests carry ?ns=UPSTREAM when containerd sends them): how many, the bytes written, and how many were answered whole (200) or as a range (206). */
    record BlobTraffic(int requests, long bytes, int whole, int ranges) {
        @Override
        public String toString() { return requests + " blob GETs (" + whole + " whole, " + ranges + " ranges), " + bytes + " B"; }
    }

    private final Path log;

    RegistryLog(Path log) { this.log = log; }

    /** The log's current length: count only what is served after it. */
    long mark() throws IOException { return Files.exists(log) ? Files.size(log) : 0; }

    /** The blob GETs answered since mark to clients whose user agent starts with agentPrefix ("": all). */
    BlobTraffic blobTrafficSince(long mark, String agentPrefix) throws IOException {
        int requests = 0, whole = 0, ranges = 0;
        long bytes = 0;
        for (String line : linesSince(mark)) {
            Matcher m = BLOB_GET.matcher(line);
            if (!m.find() || !m.group(1).startsWith(agentPrefix)) continue;
            requests++;
            bytes += Long.parseLong(m.group(3));
            if (m.group(2).equals("200")) whole++;
            if (m.group(2).equals("206")) ranges++;
        }
        return new BlobTraffic(requests, bytes, whole, ranges);
    }

    private String[] linesSince(long mark) throws IOException {
        byte[] all = Files.readAllBytes(log);
        return new String(all, (int) Math.min(mark, all.length), (int) Math.max(0, all.length - mark), StandardCharsets.UTF_8).split("\n");
    }

    /** The digests of blobs served by GET since mark to clients whose user agent starts with agentPrefix. */
    Set<String> blobsServedSince(long mark, String agentPrefix) throws IOException {
        Set<String> out = new TreeSet<>();
        for (String line : linesSince(mark)) {
            Matcher m = SERVED.matcher(line);
            if (m.find() && m.group(2).startsWith(agentPrefix)) out.add(m.group(1));
        }
        return out;
    }
}
