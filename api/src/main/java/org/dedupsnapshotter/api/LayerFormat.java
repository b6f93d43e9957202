package org.dedupsnapshotter.api;

/**
 * How a committed layer is stored. EROFS is the rule; DIRECTORY is the fallback for trees mkfs.erofs cannot
 * encode (erofs-utils 1.5 fails on 255-byte file names): the upper dir itself becomes the read-only layer.
 */
public enum LayerFormat { EROFS, DIRECTORY }
