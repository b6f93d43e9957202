package org.dedupsnapshotter.lazy.convert;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.cfg.JsonNodeFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.dedupsnapshotter.lazy.registry.ImageRef;
import org.dedupsnapshotter.lazy.registry.MirroredRegistry;
import org.dedupsnapshotter.lazy.registry.Platform;
import org.dedupsnapshotter.lazy.registry.PlatformChoice;
import org.dedupsnapshotter.lazy.registry.RegistryClient;
import org.dedupsnapshotter.lazy.registry.hosts.HostsDir;
import org.dedupsnapshotter.lazy.toc.LazyLayerFormat;
import org.dedupsnapshotter.lazy.toc.Toc;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.stream.Stream;
import java.util.zip.GZIPInputStream;

/**
 * `dedupctl convert`: reads an image (a registry reference or an OCI layout), rewrites each layer into the lazily
 * loadable format ({@link LazyLayerWriter}), and pushes layers, a config whose rootfs.diff_ids are the new layers'
 * and an OCI manifest with the layers' TOC annotations to DST. Runtimes without our snapshotter unpack the result
 * to the same root filesystem as the original. Each layer goes through temp files: one source blob and one
 * converted blob on disk at a time, and a bounded number of chunks in memory. With a start-up trace, each layer
 * also gets a prefetch region of the traced chunks it is the lowest layer to hold ({@link PrefetchPlan}). Of an index,
 * this host's image is converted and pushed as a plain manifest, or, when platforms are named ({@link PlatformChoice}),
 * each chosen platform's image is pushed by digest and an OCI index of them under the tag. Bytes moved go to
 * {@link Options#meter()} for a live progress line.
 */
public final class ImageConverter {
    private static final String OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
    private static final Set<String> GZIP_OR_TAR_LAYERS = Set.of(OCI_LAYER_GZIP, "application/vnd.oci.image.layer.v1.tar",
            "application/vnd.docker.image.rootfs.diff.tar.gzip", "application/vnd.docker.image.rootfs.diff.tar");
    private static final Set<String> ZSTD_LAYERS = Set.of("application/vnd.oci.image.layer.v1.tar+zstd", "application/vnd.docker.image.rootfs.diff.tar.zstd");
    private static final Set<String> CONFIGS = Set.of("application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json");
    private static final int UPLOAD_PIECE = 16 << 20;
    /** Config JSON is rewritten in place: fields keep their order, numbers their digits. */
    private static final JsonMapper JSON = JsonMapper.builder().enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
            .configure(JsonNodeFeature.STRIP_TRAILING_BIGDECIMAL_ZEROES, false).build();

    /**
     * trace: the start-up trace to lay out in prefetch regions, or null; hosts: containerd's hosts directories (mirrors,
     * TLS); platforms: which images of an index to convert ({@link PlatformChoice#HOST}: this host's, pushed as a plain
     * manifest); meter: bytes moved, for a live line.
     */
    public record Options(int chunkSize, boolean plainHttp, int threads, PrintStream progress, StartupTrace trace, HostsDir hosts,
                          PlatformChoice platforms, ByteProgress meter) {
        public Options(int chunkSize, boolean plainHttp, int threads, PrintStream progress) {
            this(chunkSize, plainHttp, threads, progress, null);
        }

        public Options(int chunkSize, boolean plainHttp, int threads, PrintStream progress, StartupTrace trace) {
            this(chunkSize, plainHttp, threads, progress, trace, HostsDir.parse(HostsDir.DEFAULT), PlatformChoice.HOST, ByteProgress.NONE);
        }

        public Options withTrace(StartupTrace t) { return new Options(chunkSize, plainHttp, threads, progress, t, hosts, platforms, meter); }

        public Options withHosts(HostsDir h) { return new Options(chunkSize, plainHttp, threads, progress, trace, h, platforms, meter); }

        public Options withPlatforms(PlatformChoice p) { return new Options(chunkSize, plainHttp, threads, progress, trace, hosts, p, meter); }

        public Options withMeter(ByteProgress m) { return new Options(chunkSize, plainHttp, threads, progress, trace, hosts, platforms, m); }
    }

    /**
     * One layer's outcome; sizes in bytes, tarSize the uncompressed original; prefetchChunks and prefetchBytes the
     * traced chunks in its prefetch region (uncompressed bytes), prefetchBlobBytes what the region adds to the blob.
     */
    public record LayerReport(String sourceDigest, long sourceSize, String digest, long size, long tarSize, int entries, int chunks,
                              double seconds, boolean alreadyConverted, int prefetchChunks, long prefetchBytes, long prefetchBlobBytes,
                              long nonDataBlobBytes) {}

    /**
     * diffIds: the converted image's rootfs.diff_ids (its chain id names it on a node); tracedChunks: distinct digests
     * in the trace (0 without one), of which tracedNotInImage no layer converted here holds.
     */
    public record Report(String reference, String manifestDigest, List<LayerReport> layers, List<String> diffIds, double seconds,
                         int tracedChunks, int tracedNotInImage) {}

    /** One converted image of an index and the platform it is for. */
    public record PlatformReport(Platform platform, Report image) {}

    /**
     * The outcome of a conversion: the image (a plain manifest pushed under the tag: {@code index} null), or the
     * images of the platforms chosen and the index listing them, pushed under the tag ({@code indexDigest}).
     */
    public record Result(String reference, String indexDigest, List<PlatformReport> images, List<Platform> skipped, double seconds) {
        /** The only image (no index pushed). */
        public Report single() { return images.getFirst().image(); }
    }

    private final Options options;
    private final ImageRef target;
    private final MirroredRegistry registry;

    private ImageConverter(Options options, ImageRef target, MirroredRegistry registry) {
        this.options = options;
        this.target = target;
        this.registry = registry;
    }

    /** SRC's image for this host (an index's host entry), pushed to DST as a plain manifest; options.platforms() ignored. */
    public static Report convert(String src, String dst, Options options) throws IOException {
        return convertPlatforms(src, dst, options.withPlatforms(PlatformChoice.HOST)).single();
    }

    /** SRC converted for options.platforms(): an index's chosen images and an index of them, or a plain manifest. */
    public static Result convertPlatforms(String src, String dst, Options options) throws IOException {
        ImageRef to;
        try {
            to = ImageRef.parse(dst);
        } catch (IllegalArgumentException e) {
            throw new IOException("DST: " + e.getMessage());
        }
        if (to.digest() != null) throw new IOException("DST " + dst + " names a digest; it must name a tag to push to");
        Duration timeout = Duration.ofMinutes(5);
        ImageSource source = ImageSource.open(src, options.plainHttp(), options.hosts(), timeout);
        return new ImageConverter(options, to, MirroredRegistry.forRef(to, options.plainHttp(), options.hosts(), timeout)).run(source);
    }

    private Result run(ImageSource source) throws IOException {
        long t0 = System.nanoTime();
        RegistryClient.Fetched top = source.top();
        JsonNode doc = JSON.readTree(top.body());
        String type = doc.path("mediaType").asText(top.mediaType().split(";")[0].trim());
        boolean index = type.equals(RegistryClient.OCI_INDEX) || type.equals(RegistryClient.DOCKER_LIST) || type.isEmpty() && doc.has("manifests");
        if (!index) {
            if (!type.equals(RegistryClient.OCI_MANIFEST) && !type.equals(RegistryClient.DOCKER_MANIFEST) && !(type.isEmpty() && doc.has("layers")))
                throw new IOException(source + ": unknown manifest media type \"" + type + "\"");
            Converted c = convertImage(source, doc, target.tag(), "", options.platforms().explicit() ? options.platforms() : null);
            return new Result(target.toString(), null, List.of(new PlatformReport(c.platform(), c.report())), List.of(), (System.nanoTime() - t0) / 1e9);
        }
        PlatformChoice.Selection chosen = options.platforms().select(doc.path("manifests"), source.toString());
        if (!options.platforms().explicit()) { // the host's image alone, as a plain manifest under the tag
            JsonNode entry = chosen.entries().getFirst();
            Converted c = convertImage(source, manifestOf(source, entry), target.tag(), "", null);
            return new Result(target.toString(), null, List.of(new PlatformReport(c.platform(), c.report())), List.of(), (System.nanoTime() - t0) / 1e9);
        }
        ArrayNode manifests = JSON.createArrayNode();
        List<PlatformReport> images = new ArrayList<>();
        for (JsonNode entry : chosen.entries()) {
            Platform p = Platform.of(entry.path("platform"));
            options.progress().println("platform " + p + " (" + entry.path("digest").asText() + "):");
            Converted c = convertImage(source, manifestOf(source, entry), null, p + " ", null);
            ObjectNode d = manifests.addObject();
            d.put("mediaType", RegistryClient.OCI_MANIFEST);
            d.put("digest", c.report().manifestDigest());
            d.put("size", c.manifestSize());
            d.set("platform", entry.path("platform").deepCopy());
            if (entry.has("annotations")) d.set("annotations", entry.get("annotations").deepCopy());
            images.add(new PlatformReport(p, c.report()));
        }
        ObjectNode idx = JSON.createObjectNode();
        idx.put("schemaVersion", 2);
        idx.put("mediaType", RegistryClient.OCI_INDEX);
        idx.set("manifests", manifests);
        if (doc.has("annotations")) idx.set("annotations", doc.get("annotations"));
        String digest = registry.pushManifest(target.repository(), target.tag(), RegistryClient.OCI_INDEX, JSON.writeValueAsBytes(idx));
        return new Result(target.toString(), digest, images, chosen.skipped(), (System.nanoTime() - t0) / 1e9);
    }

    /** An index entry's manifest, which must be an image manifest (an index of indexes is not followed). */
    private static JsonNode manifestOf(ImageSource source, JsonNode entry) throws IOException {
        RegistryClient.Fetched f = source.manifest(entry.path("digest").asText());
        JsonNode doc = JSON.readTree(f.body());
        String type = doc.path("mediaType").asText(f.mediaType().split(";")[0].trim());
        if (type.equals(RegistryClient.OCI_MANIFEST) || type.equals(RegistryClient.DOCKER_MANIFEST) || type.isEmpty() && doc.has("layers")) return doc;
        throw new IOException(source + "@" + entry.path("digest").asText() + ": an index entry of media type \"" + type + "\", not an image manifest");
    }

    /** A converted image: its report, platform (from its config) and manifest size. */
    private record Converted(Report report, Platform platform, int manifestSize) {}

    /**
     * One image manifest converted and pushed under tag (null: by digest only). wanted (non-null when the source is a
     * plain manifest and platforms were named): the config's platform must be one of them.
     */
    private Converted convertImage(ImageSource source, JsonNode manifest, String tag, String label, PlatformChoice wanted) throws IOException {
        long t0 = System.nanoTime();
        JsonNode configDesc = manifest.path("config");
        String configType = configDesc.path("mediaType").asText();
        if (!CONFIGS.contains(configType)) throw new IOException(source + ": unknown config media type \"" + configType + "\"");
        JsonNode parsedConfig = JSON.readTree(source.blob(configDesc.path("digest").asText()));
        ArrayNode diffIds = parsedConfig.path("rootfs").path("diff_ids") instanceof ArrayNode a ? a : null;
        Platform platform = Platform.of(parsedConfig);
        if (wanted != null && !wanted.accepts(platform))
            throw new IOException(source + " is a single image for " + platform + ", not for " + wanted + " (it is not an index of platforms)");
        JsonNode layers = manifest.path("layers");
        if (!(parsedConfig instanceof ObjectNode config) || diffIds == null || diffIds.size() != layers.size())
            throw new IOException(source + ": the config's rootfs.diff_ids do not match the manifest's " + layers.size() + " layers");

        ArrayNode newLayers = JSON.createArrayNode(), newDiffIds = JSON.createArrayNode();
        List<LayerReport> reports = new ArrayList<>();
        Path tmp = Files.createTempDirectory("dedupctl-convert-");
        ExecutorService compressors = Executors.newFixedThreadPool(options.threads(), Thread.ofPlatform().daemon().name("compress-", 0).factory());
        PrefetchPlan plan = options.trace() == null ? PrefetchPlan.none() : PrefetchPlan.of(options.trace());
        try {
            LazyLayerWriter writer = new LazyLayerWriter(options.chunkSize(), compressors, 2 * options.threads() + 1);
            for (int i = 0; i < layers.size(); i++) {
                String what = label + "layer " + (i + 1) + "/" + layers.size() + " (" + layers.get(i).path("digest").asText() + ")";
                ObjectNode desc = (ObjectNode) layers.get(i).deepCopy();
                LayerReport r = desc.path("annotations").has(LazyLayerFormat.TOC_DIGEST)
                        ? copyConverted(source, desc, tmp, what)
                        : convertLayer(source, desc, diffIds.get(i).asText(), writer, plan, tmp, what);
                newLayers.add(desc);
                newDiffIds.add(r.alreadyConverted() ? diffIds.get(i).asText() : desc.path("annotations").path(LazyLayerFormat.DIFF_ID).asText());
                reports.add(r);
                options.progress().println(line(what, r));
            }
        } finally {
            compressors.shutdownNow();
            deleteTree(tmp);
        }

        ((ObjectNode) config.get("rootfs")).set("diff_ids", newDiffIds);
        byte[] configBytes = JSON.writeValueAsBytes(config);
        String configDigest = RegistryClient.sha256(configBytes);
        registry.pushBlob(target.repository(), configBytes, UPLOAD_PIECE);

        ObjectNode m = JSON.createObjectNode();
        m.put("schemaVersion", 2);
        m.put("mediaType", RegistryClient.OCI_MANIFEST);
        ObjectNode c = m.putObject("config");
        c.put("mediaType", configType);
        c.put("digest", configDigest);
        c.put("size", configBytes.length);
        m.set("layers", newLayers);
        if (manifest.has("annotations")) m.set("annotations", manifest.get("annotations"));
        byte[] manifestBytes = JSON.writeValueAsBytes(m);
        String digest = registry.pushManifest(target.repository(), tag, RegistryClient.OCI_MANIFEST, manifestBytes);
        List<String> newDiffIdList = new ArrayList<>();
        newDiffIds.forEach(d -> newDiffIdList.add(d.asText()));
        return new Converted(new Report(target.toString(), digest, reports, newDiffIdList, (System.nanoTime() - t0) / 1e9, plan.traced(), plan.unplaced()),
                platform, manifestBytes.length);
    }

    private LayerReport convertLayer(ImageSource source, ObjectNode desc, String diffId, LazyLayerWriter writer, PrefetchPlan plan, Path tmp,
                                     String what) throws IOException {
        String type = desc.path("mediaType").asText();
        if (ZSTD_LAYERS.contains(type)) throw new IOException(what + ": zstd-compressed layers (" + type + ") are not supported; only gzip and plain tar");
        if (!GZIP_OR_TAR_LAYERS.contains(type)) throw new IOException(what + ": unknown layer media type \"" + type + "\"");
        long t0 = System.nanoTime();
        String sourceDigest = desc.path("digest").asText();
        ByteProgress meter = options.meter();
        meter.phase(what + ": download");
        meter.expect(desc.path("size").asLong());
        ImageSource.LayerFile in = source.layer(sourceDigest, tmp, meter::add);
        Path out = tmp.resolve("converted.blob");
        LazyLayerWriter.Result r;
        long sourceSize = Files.size(in.path());
        meter.phase(what + ": convert");
        meter.expect(sourceSize);
        try (BufferedInputStream raw = new BufferedInputStream(new CountingInputStream(Files.newInputStream(in.path()), meter::add), 1 << 16);
             InputStream tar = uncompressed(raw, what);
             OutputStream blob = new BufferedOutputStream(Files.newOutputStream(out), 1 << 20)) {
            r = writer.write(tar, blob, plan, tmp);
        } catch (IOException e) {
            throw new IOException(what + ": " + e.getMessage(), e);
        } finally {
            if (in.temporary()) Files.deleteIfExists(in.path());
        }
        if (!r.tarDigest().equals(diffId))
            throw new IOException(what + ": the uncompressed layer has digest " + r.tarDigest() + ", but the config's diff_id is " + diffId);
        ConvertedLayerCheck.verify(out, r);
        meter.phase(what + ": push");
        meter.expect(r.blobSize());
        registry.pushBlob(target.repository(), out, r.blobDigest(), UPLOAD_PIECE, meter::add);
        Files.delete(out);

        ObjectNode annotations = desc.has("annotations") ? (ObjectNode) desc.get("annotations") : desc.putObject("annotations");
        annotations.put(LazyLayerFormat.TOC_DIGEST, RegistryClient.sha256(r.tocJson()));
        annotations.put(LazyLayerFormat.TOC_OFFSET, Long.toString(r.tocOffset()));
        annotations.put(LazyLayerFormat.TOC_LENGTH, Long.toString(r.tocLength()));
        annotations.put(LazyLayerFormat.TOC_VERSION, Integer.toString(Toc.VERSION));
        annotations.put(LazyLayerFormat.LAYER_DIGEST, r.blobDigest());
        annotations.put(LazyLayerFormat.DIFF_ID, r.diffId());
        annotations.put(LazyLayerFormat.CHUNK_SIZE, Integer.toString(options.chunkSize()));
        annotations.put(LazyLayerFormat.SOURCE, target.host() + "/" + target.repository());
        desc.put("mediaType", OCI_LAYER_GZIP);
        desc.put("digest", r.blobDigest());
        desc.put("size", r.blobSize());
        desc.remove("urls");
        return new LayerReport(sourceDigest, sourceSize, r.blobDigest(), r.blobSize(), r.tarSize(), r.toc().entries.size(), r.chunks(),
                (System.nanoTime() - t0) / 1e9, false, (int) r.toc().prefetch.stream().map(Toc.Prefetch::digest).distinct().count(), r.prefetchBytes(), r.prefetchBlobBytes(),
                r.toc().nonData == null ? 0 : r.toc().nonData.blobLength());
    }

    /**
     * A layer converted before keeps its blob and TOC annotations; only the source annotation moves to DST, where
     * the blob is now. The blob is copied unless DST has it. A trace adds nothing to it (its TOC is not read: a
     * traced chunk it holds goes to the next converted layer holding it, if any).
     */
    private LayerReport copyConverted(ImageSource source, ObjectNode desc, Path tmp, String what) throws IOException {
        long t0 = System.nanoTime();
        String digest = desc.path("digest").asText();
        if (!registry.hasBlob(target.repository(), digest)) {
            options.meter().phase(what + ": copy");
            options.meter().expect(2 * desc.path("size").asLong());
            ImageSource.LayerFile in = source.layer(digest, tmp, options.meter()::add);
            try {
                registry.pushBlob(target.repository(), in.path(), digest, UPLOAD_PIECE, options.meter()::add);
            } finally {
                if (in.temporary()) Files.deleteIfExists(in.path());
            }
        }
        ((ObjectNode) desc.get("annotations")).put(LazyLayerFormat.SOURCE, target.host() + "/" + target.repository());
        long size = desc.path("size").asLong();
        return new LayerReport(digest, size, digest, size, 0, 0, 0, (System.nanoTime() - t0) / 1e9, true, 0, 0, 0, 0);
    }

    /** The layer's tar, by its magic bytes as containerd decides: gzip is inflated, a tar is read as it is, zstd is refused. */
    private static InputStream uncompressed(BufferedInputStream in, String what) throws IOException {
        in.mark(4);
        byte[] magic = in.readNBytes(4);
        in.reset();
        if (magic.length >= 2 && (magic[0] & 0xff) == 0x1f && (magic[1] & 0xff) == 0x8b) return new BufferedInputStream(new GZIPInputStream(in, 1 << 16), 1 << 16);
        if (magic.length == 4 && (magic[0] & 0xff) == 0x28 && (magic[1] & 0xff) == 0xb5 && (magic[2] & 0xff) == 0x2f && (magic[3] & 0xff) == 0xfd)
            throw new IOException(what + " is zstd-compressed, which is not supported (only gzip and plain tar)");
        return in;
    }

    private static String line(String what, LayerReport r) {
        if (r.alreadyConverted()) return what + ": already converted, copied (" + size(r.size()) + ")";
        String prefetch = r.prefetchChunks() == 0 ? "" : String.format(", prefetch region: %d traced %s, %s (%s in the blob)",
                r.prefetchChunks(), r.prefetchChunks() == 1 ? "chunk" : "chunks", size(r.prefetchBytes()), size(r.prefetchBlobBytes()));
        return String.format("%s: %s tar, %s source → %s converted (%d entries, %d chunks%s, headers copied for proofs: %s) in %.1f s, %.1f MB/s",
                what, size(r.tarSize()), size(r.sourceSize()), size(r.size()), r.entries(), r.chunks(), prefetch, size(r.nonDataBlobBytes()), r.seconds(),
                r.tarSize() / 1e6 / Math.max(r.seconds(), 1e-3));
    }

    private static String size(long bytes) {
        return bytes < 1 << 20 ? String.format("%.1f KiB", bytes / 1024.0) : String.format("%.1f MiB", bytes / 1048576.0);
    }

    private static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }
}
