package org.dedupsnapshotter.itest;

/** A pull into dedup: the puller's result and how many of the image's layer blobs containerd downloaded for it. */
record Pull(Proc.Result result, int layersDownloaded) {
    Pull orThrow(String what) {
        result.orThrow(what);
        return this;
    }

    int code() { return result.code(); }

    String out() { return result.out() + "\n(" + layersDownloaded + " layer blob(s) downloaded by containerd)"; }
}
