package org.dedupsnapshotter.storage;

/** Where a lazy layer's bytes come from: a registry repository (HOST/REPOSITORY), its blob, its TOC's digest. */
public record LazyLayer(long snapshotId, String source, String blobDigest, String tocDigest) {}
