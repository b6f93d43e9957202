package org.dedupsnapshotter.cli.containerd;

import io.grpc.StatusRuntimeException;
import org.dedupsnapshotter.proto.containerd.types.Descriptor;
import org.dedupsnapshotter.proto.images.v1.CreateImageRequest;
import org.dedupsnapshotter.proto.images.v1.DeleteImageRequest;
import org.dedupsnapshotter.proto.images.v1.Image;
import org.dedupsnapshotter.proto.images.v1.UpdateImageRequest;

import java.util.Map;
import java.util.concurrent.TimeUnit;

/** containerd's image records (name → target descriptor): what `ctr images ls` lists and what roots garbage collection. */
public final class ImageStore {
    private final ContainerdClient containerd;

    public ImageStore(ContainerdClient containerd) {
        this.containerd = containerd;
    }

    /** Creates the record, or points an existing one at target, as containerd's client does after a pull. */
    public void put(String name, Descriptor target, Map<String, String> labels) throws ContainerdException {
        Image image = Image.newBuilder().setName(name).setTarget(target).putAllLabels(labels).build();
        for (int attempt = 0; ; attempt++) {
            try {
                containerd.images().withDeadlineAfter(1, TimeUnit.MINUTES).create(CreateImageRequest.newBuilder().setImage(image).build());
                return;
            } catch (StatusRuntimeException e) {
                ContainerdException ce = ContainerdException.of("create image " + name, e);
                if (!ce.alreadyExists()) throw ce;
            }
            try {
                // no update mask: name, target and labels all replaced
                containerd.images().withDeadlineAfter(1, TimeUnit.MINUTES).update(UpdateImageRequest.newBuilder().setImage(image).build());
                return;
            } catch (StatusRuntimeException e) {
                ContainerdException ce = ContainerdException.of("update image " + name, e);
                if (!ce.notFound() || attempt >= 3) throw ce; // removed meanwhile: create it again
            }
        }
    }

    /**
     * Removes the record; with sync, containerd's garbage collector has run when this returns (content and snapshots
     * nothing else references are gone). A record already gone is not an error.
     */
    public void delete(String name, boolean sync) throws ContainerdException {
        try {
            containerd.images().withDeadlineAfter(5, TimeUnit.MINUTES).delete(DeleteImageRequest.newBuilder().setName(name).setSync(sync).build());
        } catch (StatusRuntimeException e) {
            ContainerdException ce = ContainerdException.of("delete image " + name, e);
            if (!ce.notFound()) throw ce;
        }
    }
}
