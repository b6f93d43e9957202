package org.dedupsnapshotter.itest;

import org.dedupsnapshotter.lazy.convert.GzipMember;
import org.dedupsnapshotter.lazy.toc.LazyLayerFormat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPInputStream;

/**
 * Converted images rewritten after conversion, as a hostile or broken image would ship them: a converted image is
 * read back from the test registry, some of its layers' TOCs (and gzip members) edited, its config edited, and it is
 * pushed under a new name — with everything that ties the parts together made consistent again (the TOC member and
 * footer, the TOC digest/offset/length and layer digest/diff_id annotations, the layer descriptor's digest and size,
 * the config's diff_ids, the config descriptor), so that the only false thing is the claim a test makes.
 * <pre>
 * String hostile = HostileImages.from(env.registry(), "itest/app-lazy", "1")
 *         .layer(1, l -> {                                   // the image's second layer (0: the lowest)
 *             long[] at = l.appendMember(myBytes);           // a new gzip member, before the TOC: {blobOffset, blobLength}
 *             ObjectNode p = (ObjectNode) l.toc().withArray("prefetch").get(0);
 *             p.put("blobOffset", at[0]).put("blobLength", at[1]).put("pieceDigest", HostileImages.sha256(myBytes));
 *         })
 *         .config(c -> ((ArrayNode) c.at("/rootfs/diff_ids")).set(1, victimDiffId)) // after diff_ids are recomputed
 *         .push("itest/app-hostile", "1");
 * </pre>
 * A layer's diff_id is recomputed from its new blob (the whole uncompressed stream) unless the config editor
 * overrides it; {@link Layer#keepTocAnnotations()} leaves the manifest's TOC annotations as they were (a TOC that
 * does not match its digest). Only single-platform OCI manifests (what {@code dedupctl convert} pushes) are read.
 */
final class HostileImages {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP = HttpClient.newHttpClient();
    private static final String MANIFEST = "application/vnd.oci.image.manifest.v1+json";

    /** Edits one converted layer. */
    interface LayerEditor { void edit(Layer layer) throws Exception; }

    /** Edits the image's config JSON (diff_ids already recomputed for rewritten layers). */
    interface ConfigEditor { void edit(ObjectNode config) throws Exception; }

    /** One converted layer being rewritten: its TOC to edit in place, and gzip members to add to its blob. */
    static final class Layer {
        private final ObjectNode descriptor;
        private final byte[] blob;
        private final long tocOffset;
        private final ObjectNode toc;
        private final ByteArrayOutputStream appended = new ByteArrayOutputStream();
        private boolean keepTocAnnotations;

        private Layer(ObjectNode descriptor, byte[] blob) throws IOException {
            this.descriptor = descriptor;
            this.blob = blob;
            long[] at = LazyLayerFormat.parseFooter(Arrays.copyOfRange(blob, blob.length - LazyLayerFormat.FOOTER_SIZE, blob.length));
            this.tocOffset = at[0];
            this.toc = (ObjectNode) JSON.readTree(gunzip(Arrays.copyOfRange(blob, (int) at[0], (int) (at[0] + at[1]))));
        }

        /** The TOC JSON ({@code entries}, {@code prefetch}, …): edit it in place. */
        ObjectNode toc() { return toc; }

        /** The layer's manifest descriptor (its annotations may be edited too; digest and size are set on push). */
        ObjectNode descriptor() { return descriptor; }

        /** The converted blob as it was. */
        byte[] originalBlob() { return blob; }

        /** Where the blob's TOC member began: the end of its tar part and prefetch region. */
        long tocOffset() { return tocOffset; }

        /**
         * Adds a gzip member holding data after the blob's existing members (before the new TOC member); returns
         * {blobOffset, blobLength} of the member, for a TOC chunk or prefetch entry to point at.
         */
        long[] appendMember(byte[] data) {
            byte[] member = gzipMember(data);
            long at = tocOffset + appended.size();
            appended.writeBytes(member);
            return new long[] {at, member.length};
        }

        /** Leaves the manifest's TOC digest, offset and length annotations as converted (stale after an edit). */
        Layer keepTocAnnotations() {
            keepTocAnnotations = true;
            return this;
        }

        /** The new blob: the old one up to its TOC, the appended members, the edited TOC, a footer for it. */
        private byte[] rebuild(byte[] tocJson) {
            ByteArrayOutputStream out = new ByteArrayOutputStream(blob.length + appended.size() + tocJson.length);
            out.write(blob, 0, (int) tocOffset);
            out.writeBytes(appended.toByteArray());
            long newToc = out.size();
            byte[] tocMember = gzipMember(tocJson);
            out.writeBytes(tocMember);
            out.writeBytes(LazyLayerFormat.footer(newToc, tocMember.length));
            if (!keepTocAnnotations) {
                ObjectNode a = annotations(descriptor);
                a.put(LazyLayerFormat.TOC_OFFSET, Long.toString(newToc));
                a.put(LazyLayerFormat.TOC_LENGTH, Long.toString(tocMember.length));
                a.put(LazyLayerFormat.TOC_DIGEST, sha256(tocJson));
            }
            return out.toByteArray();
        }
    }

    private final String registry, repo;
    private final ObjectNode manifest, config;
    private final Map<Integer, LayerEditor> layerEditors = new LinkedHashMap<>();
    private final List<ConfigEditor> configEditors = new ArrayList<>();

    private HostileImages(String registry, String repo, ObjectNode manifest, ObjectNode config) {
        this.registry = registry;
        this.repo = repo;
        this.manifest = manifest;
        this.config = config;
    }

    /** A converted image in the registry (host:port, plain HTTP) to rewrite. */
    static HostileImages from(String registry, String repo, String tag) throws Exception {
        ObjectNode manifest = (ObjectNode) JSON.readTree(get(registry, repo, "manifests/" + tag, MANIFEST));
        if (!manifest.has("layers")) throw new IOException(repo + ":" + tag + " is not a single-platform OCI manifest: " + manifest);
        ObjectNode config = (ObjectNode) JSON.readTree(get(registry, repo, "blobs/" + manifest.at("/config/digest").asText(), null));
        return new HostileImages(registry, repo, manifest, config);
    }

    /** Rewrites the layer at index (0: the lowest); it must be a converted one. */
    HostileImages layer(int index, LayerEditor editor) {
        layerEditors.put(index, editor);
        return this;
    }

    /** Edits the config last, once the rewritten layers' diff_ids are in it. */
    HostileImages config(ConfigEditor editor) {
        configEditors.add(editor);
        return this;
    }

    /** The layer descriptors as converted (digest, size, annotations). */
    ArrayNode layers() { return (ArrayNode) manifest.get("layers"); }

    /** Applies the edits, pushes the blobs, config and manifest to registry/repo:tag; returns that reference. */
    String push(String newRepo, String tag) throws Exception {
        ArrayNode diffIds = (ArrayNode) config.at("/rootfs/diff_ids");
        for (int i = 0; i < layers().size(); i++) {
            ObjectNode d = (ObjectNode) layers().get(i);
            byte[] blob = get(registry, repo, "blobs/" + d.get("digest").asText(), null);
            LayerEditor editor = layerEditors.get(i);
            if (editor != null) {
                Layer l = new Layer(d, blob);
                editor.edit(l);
                blob = l.rebuild(JSON.writeValueAsBytes(l.toc()));
                String diffId = sha256(gunzip(blob));
                diffIds.set(i, diffId);
                annotations(d).put(LazyLayerFormat.DIFF_ID, diffId);
                d.put("digest", sha256(blob));
                d.put("size", blob.length);
                annotations(d).put(LazyLayerFormat.LAYER_DIGEST, sha256(blob));
            }
            OciImage.uploadBlob(registry, newRepo, blob); // every blob, so the new repository holds the whole image
        }
        for (ConfigEditor e : configEditors) e.edit(config);
        byte[] cfg = JSON.writeValueAsBytes(config);
        OciImage.uploadBlob(registry, newRepo, cfg);
        ObjectNode cd = (ObjectNode) manifest.get("config");
        cd.put("digest", sha256(cfg));
        cd.put("size", cfg.length);
        HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create("http://" + registry + "/v2/" + newRepo + "/manifests/" + tag))
                .header("Content-Type", MANIFEST).PUT(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(manifest))).build(),
                HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() / 100 != 2) throw new IOException("manifest push of " + newRepo + ":" + tag + ": HTTP " + r.statusCode() + " " + r.body());
        return registry + "/" + newRepo + ":" + tag;
    }

    /** A descriptor's annotations object (made if it has none). */
    static ObjectNode annotations(ObjectNode descriptor) {
        return descriptor.get("annotations") instanceof ObjectNode a ? a : descriptor.putObject("annotations");
    }

    /** "sha256:" and the hex SHA-256 of b. */
    static String sha256(byte[] b) {
        try {
            return "sha256:" + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** One gzip member (no name, no mtime), as the converter writes them. */
    static byte[] gzipMember(byte[] data) { return GzipMember.of(data, 0, data.length); }

    /** The whole uncompressed stream of concatenated gzip members. */
    static byte[] gunzip(byte[] gz) throws IOException {
        try (InputStream in = new GZIPInputStream(new ByteArrayInputStream(gz))) {
            return in.readAllBytes();
        }
    }

    private static byte[] get(String registry, String repo, String path, String accept) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://" + registry + "/v2/" + repo + "/" + path));
        if (accept != null) b.header("Accept", accept);
        HttpResponse<byte[]> r = HTTP.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
        if (r.statusCode() != 200) throw new IOException("GET " + repo + "/" + path + ": HTTP " + r.statusCode());
        return r.body();
    }
}
