package org.dedupsnapshotter.cli.containerd;

import com.google.protobuf.ByteString;
import com.google.protobuf.FieldMask;
import io.grpc.StatusException;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.BlockingClientCall;
import org.dedupsnapshotter.proto.content.v1.Info;
import org.dedupsnapshotter.proto.content.v1.InfoRequest;
import org.dedupsnapshotter.proto.content.v1.UpdateRequest;
import org.dedupsnapshotter.proto.content.v1.WriteAction;
import org.dedupsnapshotter.proto.content.v1.WriteContentRequest;
import org.dedupsnapshotter.proto.content.v1.WriteContentResponse;

import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * containerd's content store over its Content service: blobs written through the Write stream (containerd checks
 * size and digest when it commits), and labels, which is how containerd's garbage collector learns what refers to
 * what ({@code containerd.io/gc.ref.content.*}).
 */
public final class ContentStore {
    /** Bytes per WRITE message: well under containerd's 16 MiB message limit. */
    private static final int PIECE = 1 << 20;

    private final ContainerdClient containerd;

    public ContentStore(ContainerdClient containerd) {
        this.containerd = containerd;
    }

    /** Where a blob's bytes come from; opened only when containerd does not have the blob yet. */
    public interface Source {
        InputStream open() throws IOException;
    }

    /** The blob's labels, or null when containerd does not have it. */
    public Map<String, String> labels(String digest) throws ContainerdException {
        try {
            return containerd.content().withDeadlineAfter(1, TimeUnit.MINUTES).info(InfoRequest.newBuilder().setDigest(digest).build()).getInfo().getLabelsMap();
        } catch (StatusRuntimeException e) {
            ContainerdException ce = ContainerdException.of("content info " + digest, e);
            if (ce.notFound()) return null;
            throw ce;
        }
    }

    public boolean has(String digest) throws ContainerdException {
        return labels(digest) != null;
    }

    /**
     * Writes the blob of size bytes from source under the ingest ref (containerd's own names, "layer-sha256:…", so
     * that two pulls of one blob meet on the same ref rather than write it twice). Returns false, without opening
     * source, when containerd has the blob already.
     */
    public boolean write(String ref, String digest, long size, Source source) throws IOException {
        BlockingClientCall<WriteContentRequest, WriteContentResponse> call = containerd.contentStreams().write();
        boolean done = false;
        try {
            // STAT with the expected digest: containerd answers AlreadyExists when it has the blob
            if (exchange(call, WriteContentRequest.newBuilder().setAction(WriteAction.STAT).setRef(ref).setTotal(size).setExpected(digest).build(), ref) == null) {
                done = true;
                return false;
            }
            long offset = 0;
            byte[] buf = new byte[PIECE];
            try (InputStream in = source.open()) {
                for (int n; (n = in.readNBytes(buf, 0, PIECE)) > 0; ) {
                    // offset 0 on the first WRITE also restarts an ingest an interrupted pull left behind
                    WriteContentResponse r = exchange(call, WriteContentRequest.newBuilder().setAction(WriteAction.WRITE).setOffset(offset)
                            .setData(ByteString.copyFrom(buf, 0, n)).build(), ref);
                    if (r == null) {
                        done = true;
                        return false; // someone else committed it meanwhile
                    }
                    offset += n;
                    if (r.getOffset() != offset) throw new IOException("content write " + ref + ": containerd is at offset " + r.getOffset() + ", expected " + offset);
                }
            }
            WriteContentResponse r = exchange(call, WriteContentRequest.newBuilder().setAction(WriteAction.COMMIT).setOffset(offset)
                    .setTotal(size).setExpected(digest).build(), ref);
            done = true;
            if (r == null) return false;
            if (!r.getDigest().equals(digest)) throw new IOException("content write " + ref + ": containerd committed " + r.getDigest() + ", expected " + digest);
            return true;
        } finally {
            if (done) finish(call);
            else call.cancel("dedupctl: write of " + ref + " abandoned", null);
        }
    }

    /** Ends our side and reads what is left: containerd sends its last answer twice after a COMMIT. */
    private static void finish(BlockingClientCall<WriteContentRequest, WriteContentResponse> call) {
        call.halfClose();
        try {
            for (int i = 0; i < 4 && call.hasNext(); i++) call.read();
        } catch (StatusException e) {
            // the stream ended with the error already handled (AlreadyExists)
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** One request, its answer; null when containerd says the blob already exists. */
    private static WriteContentResponse exchange(BlockingClientCall<WriteContentRequest, WriteContentResponse> call, WriteContentRequest req, String ref)
            throws IOException {
        try {
            if (!call.write(req, 10, TimeUnit.MINUTES)) {
                call.read(10, TimeUnit.MINUTES); // the call ended: its status says why
                throw new IOException("content write " + ref + ": containerd closed the stream");
            }
            WriteContentResponse r = call.read(10, TimeUnit.MINUTES);
            if (r == null) throw new IOException("content write " + ref + ": containerd closed the stream without an answer");
            return r;
        } catch (StatusException e) {
            ContainerdException ce = ContainerdException.of("content write " + ref, e);
            if (ce.alreadyExists()) return null;
            throw ce;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("content write " + ref + " interrupted");
        } catch (TimeoutException e) {
            throw new IOException("content write " + ref + ": containerd did not answer within 10 minutes", e);
        }
    }

    /** Sets these labels on the blob, leaving its other labels as they are. */
    public void setLabels(String digest, Map<String, String> labels) throws ContainerdException {
        if (labels.isEmpty()) return;
        FieldMask.Builder mask = FieldMask.newBuilder();
        labels.keySet().forEach(k -> mask.addPaths("labels." + k));
        try {
            containerd.content().withDeadlineAfter(1, TimeUnit.MINUTES).update(UpdateRequest.newBuilder()
                    .setInfo(Info.newBuilder().setDigest(digest).putAllLabels(labels)).setUpdateMask(mask).build());
        } catch (StatusRuntimeException e) {
            throw ContainerdException.of("content labels of " + digest, e);
        }
    }
}
