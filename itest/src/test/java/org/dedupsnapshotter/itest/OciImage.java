package org.dedupsnapshotter.itest;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.zip.GZIPOutputStream;

/** Builds an OCI image from layer tars and pushes it to a registry over the distribution API (plain HTTP). */
final class OciImage {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP = HttpClient.newHttpClient();

    private OciImage() {}

    /** Pushes the image and returns its reference (registry/repo:tag). */
    static String push(String registry, String repo, String tag, List<byte[]> layerTars, List<String> cmd) throws Exception {
        ObjectNode config = JSON.createObjectNode();
        config.put("architecture", "amd64");
        config.put("os", "linux");
        ObjectNode c = config.putObject("config");
        c.putArray("Env").add("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        ArrayNode cmdNode = c.putArray("Cmd");
        cmd.forEach(cmdNode::add);
        ObjectNode rootfs = config.putObject("rootfs");
        rootfs.put("type", "layers");
        ArrayNode diffIds = rootfs.putArray("diff_ids");

        ObjectNode manifest = JSON.createObjectNode();
        manifest.put("schemaVersion", 2);
        manifest.put("mediaType", "application/vnd.oci.image.manifest.v1+json");
        ArrayNode layers = JSON.createArrayNode();
        for (byte[] tar : layerTars) {
            diffIds.add(digest(tar));
            byte[] gz = gzip(tar);
            uploadBlob(registry, repo, gz);
            ObjectNode l = layers.addObject();
            l.put("mediaType", "application/vnd.oci.image.layer.v1.tar+gzip");
            l.put("digest", digest(gz));
            l.put("size", gz.length);
        }
        byte[] cfg = JSON.writeValueAsBytes(config);
        uploadBlob(registry, repo, cfg);
        ObjectNode cd = manifest.putObject("config");
        cd.put("mediaType", "application/vnd.oci.image.config.v1+json");
        cd.put("digest", digest(cfg));
        cd.put("size", cfg.length);
        manifest.set("layers", layers);
        HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create("http://" + registry + "/v2/" + repo + "/manifests/" + tag))
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .PUT(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(manifest))).build(), HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() / 100 != 2) throw new IOException("manifest push: HTTP " + r.statusCode() + " " + r.body());
        return registry + "/" + repo + ":" + tag;
    }

    static void uploadBlob(String registry, String repo, byte[] blob) throws Exception {
        HttpResponse<String> start = HTTP.send(HttpRequest.newBuilder(URI.create("http://" + registry + "/v2/" + repo + "/blobs/uploads/"))
                .POST(HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
        if (start.statusCode() != 202) throw new IOException("blob upload start: HTTP " + start.statusCode() + " " + start.body());
        String loc = start.headers().firstValue("Location").orElseThrow();
        URI uri = URI.create("http://" + registry).resolve(loc);
        String sep = uri.getQuery() == null ? "?" : "&";
        HttpResponse<String> put = HTTP.send(HttpRequest.newBuilder(URI.create(uri + sep + "digest=" + digest(blob)))
                .header("Content-Type", "application/octet-stream")
                .PUT(HttpRequest.BodyPublishers.ofByteArray(blob)).build(), HttpResponse.BodyHandlers.ofString());
        if (put.statusCode() != 201) throw new IOException("blob upload: HTTP " + put.statusCode() + " " + put.body());
    }

    static String digest(byte[] b) throws Exception {
        return "sha256:" + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    }

    private static byte[] gzip(byte[] b) throws IOException {
        ByteArrayOutputStream bo = new ByteArrayOutputStream();
        try (GZIPOutputStream gz = new GZIPOutputStream(bo)) {
            gz.write(b);
        }
        return bo.toByteArray();
    }
}
