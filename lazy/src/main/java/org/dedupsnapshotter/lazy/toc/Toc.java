package org.dedupsnapshotter.lazy.toc;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A converted layer's table of contents (docs/lazy-pull.md): every tar entry with the metadata containerd's
 * applier would give it, and per chunk of file data the SHA-256 of the uncompressed chunk (the pool's key) with
 * the byte range of its gzip member in the blob. Entries are in tar order, names as containerd resolves them
 * (relative, no leading "./" or "/", no trailing "/"; "." is the layer's root); whiteouts stay tar entries
 * (".wh.NAME", ".wh..wh..opq") for the node to turn into overlay whiteouts as containerd does.
 */
@JsonInclude(JsonInclude.Include.NON_DEFAULT)
@JsonIgnoreProperties(ignoreUnknown = true)
public final class Toc {
    /** The TOC versions this code reads; a node meeting another one falls back to the normal unpack path. */
    public static final int VERSION = 1;

    public int version = VERSION;
    public long chunkSize;
    public List<Entry> entries = new ArrayList<>();
    /**
     * The layer's part of the image's start-up trace (convert --trace): chunks the image's containers read first,
     * each with its rank in the image's trace, copied once more into the blob after the tar (in rank order, so a few
     * Range requests fetch them all). Absent in untraced layers; nodes that do not know it ignore it.
     */
    public List<Prefetch> prefetch = new ArrayList<>();
    /**
     * A copy of every gzip member of the tar part that holds no file data (headers, padding, the end of the archive),
     * byte for byte and in blob order, between the prefetch region and the TOC: a node that already holds a layer's
     * chunks (another image's) proves the layer's diff_id with one Range request for these instead of many for the
     * stretches between the chunks (docs/decisions.md 43). Absent in layers converted before it; a node that does not
     * know it reads it as one more stretch without file data.
     */
    public Region nonData;

    @JsonInclude(JsonInclude.Include.NON_DEFAULT)
    @JsonIgnoreProperties(ignoreUnknown = true)
    public static final class Entry {
        public static final String DIR = "dir", REG = "reg", SYMLINK = "symlink", HARDLINK = "hardlink", CHAR = "char", BLOCK = "block", FIFO = "fifo";

        public String name;
        public String type;
        /** Permission bits with setuid, setgid and sticky (07777). */
        public int mode;
        public long uid, gid;
        public long mtime;
        public int mtimeNsec;
        /** Regular files: size in bytes. */
        public long size;
        /** Symlinks: the target as written; hardlinks: the normalised name of the entry linked to. */
        public String linkName;
        public long devMajor, devMinor;
        /** xattr name → value, base64. */
        public Map<String, String> xattrs = new LinkedHashMap<>();
        /** Regular files: the data, chunk by chunk (chunkSize each, the last one short). */
        public List<Chunk> chunks = new ArrayList<>();
    }

    /** One chunk of a file: its place in the file, its digest (null for an all-zero chunk: a hole), its gzip member. */
    @JsonInclude(JsonInclude.Include.NON_DEFAULT)
    @JsonIgnoreProperties(ignoreUnknown = true)
    public record Chunk(long offset, int size, String digest, long blobOffset, long blobLength) {
        public boolean isHole() { return digest == null; }
    }

    /**
     * One traced chunk, or the part of it the trace read: its rank in the image's trace, the chunk's digest and size,
     * its extra gzip member in the blob, and, for a part (pieceLength > 0), the part's place in the chunk and the
     * SHA-256 of its bytes — the member inflates to bytes [pieceOffset, pieceOffset + pieceLength) of the chunk.
     */
    @JsonInclude(JsonInclude.Include.NON_DEFAULT)
    @JsonIgnoreProperties(ignoreUnknown = true)
    public record Prefetch(int rank, String digest, int size, long blobOffset, long blobLength, int pieceOffset, int pieceLength, String pieceDigest) {
        /** A whole chunk. */
        public Prefetch(int rank, String digest, int size, long blobOffset, long blobLength) {
            this(rank, digest, size, blobOffset, blobLength, 0, 0, null);
        }

        public boolean whole() { return pieceLength == 0; }

        /** Bytes the member inflates to. */
        public int dataLength() { return whole() ? size : pieceLength; }

        /** The digest of what the member inflates to. */
        public String dataDigest() { return whole() ? digest : pieceDigest; }
    }

    /** A stretch of the blob: [blobOffset, blobOffset + blobLength). */
    public record Region(long blobOffset, long blobLength) {}

    private static final ObjectMapper JSON = new ObjectMapper().configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false)
            .configure(DeserializationFeature.FAIL_ON_TRAILING_TOKENS, true); // one TOC: bytes after it are not part of what its digest vouches for

    public byte[] toJson() throws IOException { return JSON.writeValueAsBytes(this); }

    /**
     * Parses a TOC and checks its fields ({@link TocCheck#fields}); an unknown version, or anything malformed, is an
     * IOException the caller answers with the normal unpack path.
     */
    public static Toc parse(byte[] json) throws IOException { return parse(json, TocCheck.maxTocHeap()); }

    /** Parses a TOC whose objects may take at most heapBudget bytes of heap (see {@link HeapMeter}). */
    public static Toc parse(byte[] json, long heapBudget) throws IOException {
        Toc t;
        try (JsonParser p = new HeapMeter(JSON.getFactory().createParser(json), heapBudget)) {
            t = JSON.readValue(p, Toc.class);
        } catch (JacksonException e) {
            throw new IOException("malformed TOC: " + e.getOriginalMessage(), e);
        }
        if (t == null) throw new IOException("malformed TOC: null");
        if (t.version != VERSION) throw new UnsupportedTocException("TOC version " + t.version + " is not one this node reads (" + VERSION + ")");
        TocCheck.fields(t);
        return t;
    }

    public static final class UnsupportedTocException extends IOException {
        public UnsupportedTocException(String m) { super(m); }
    }
}
