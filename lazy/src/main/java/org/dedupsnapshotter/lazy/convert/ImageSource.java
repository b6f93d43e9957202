package org.dedupsnapshotter.lazy.convert;

import org.dedupsnapshotter.lazy.registry.ImageRef;
import org.dedupsnapshotter.lazy.registry.MirroredRegistry;
import org.dedupsnapshotter.lazy.registry.RegistryClient;
import org.dedupsnapshotter.lazy.registry.hosts.HostsDir;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.function.LongConsumer;

/** Where an image to convert is read from: a registry, or an OCI image layout directory ("oci:DIR[:TAG]"). */
interface ImageSource {
    /** The manifest or index the source names (its mediaType as the source reports it). */
    RegistryClient.Fetched top() throws IOException;

    /** A manifest by digest (a member of an index), verified. */
    RegistryClient.Fetched manifest(String digest) throws IOException;

    /** A small blob (a config) in memory, verified. */
    byte[] blob(String digest) throws IOException;

    /** A layer blob as a verified file, and whether it is a temporary copy in dir that the caller deletes. */
    default LayerFile layer(String digest, Path dir) throws IOException {
        return layer(digest, dir, n -> {});
    }

    /** The same, telling onBytes of the bytes as they are read. */
    LayerFile layer(String digest, Path dir, LongConsumer onBytes) throws IOException;

    record LayerFile(Path path, boolean temporary) {}

    static ImageSource open(String spec, boolean plainHttp, HostsDir hosts, Duration timeout) throws IOException {
        if (spec.startsWith("oci:")) return OciLayoutSource.open(spec.substring(4));
        ImageRef ref;
        try {
            ref = ImageRef.parse(spec);
        } catch (IllegalArgumentException e) {
            throw new IOException(e.getMessage());
        }
        return new RegistrySource(ref, MirroredRegistry.forRef(ref, plainHttp, hosts, timeout));
    }

    /** A source in a registry. */
    record RegistrySource(ImageRef ref, MirroredRegistry client) implements ImageSource {
        @Override
        public RegistryClient.Fetched top() throws IOException {
            return client.manifest(ref.repository(), ref.reference());
        }

        @Override
        public RegistryClient.Fetched manifest(String digest) throws IOException {
            return client.manifest(ref.repository(), digest);
        }

        @Override
        public byte[] blob(String digest) throws IOException {
            return client.blob(ref.repository(), digest);
        }

        @Override
        public LayerFile layer(String digest, Path dir, LongConsumer onBytes) throws IOException {
            Path f = dir.resolve("source-" + digest.substring(digest.indexOf(':') + 1));
            client.blobToFile(ref.repository(), digest, f, onBytes);
            return new LayerFile(f, true);
        }

        @Override
        public String toString() { return ref.toString(); }
    }
}
