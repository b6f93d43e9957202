package org.dedupsnapshotter.lazy.toc;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonStreamContext;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.util.JsonParserDelegate;

import java.io.IOException;

/**
 * Meters a TOC's parse: every object, string and xattr the parse will build is counted at about its heap size as
 * its token is read, and the parse stops once the TOC would take more than its budget. A TOC's JSON bytes alone do
 * not bound its heap: "{}" is three bytes and an entry object with its empty map and list ~250.
 */
final class HeapMeter extends JsonParserDelegate {
    /** An entry (its map and list), a chunk or a prefetch record, with its slot in a list: an upper estimate. */
    static final int OBJECT = 232;
    /** A String's header and array; its characters come on top (one byte each, as TOCs are mostly Latin-1). */
    static final int STRING = 48;
    /** An xattr's map entry and its key String. */
    static final int MAP_ENTRY = 64 + STRING;

    private final long budget;
    private long used;

    HeapMeter(JsonParser p, long budget) {
        super(p);
        this.budget = budget;
    }

    @Override
    public JsonToken nextToken() throws IOException { return count(super.nextToken()); }

    @Override
    public JsonToken nextValue() throws IOException { return count(super.nextValue()); }

    private JsonToken count(JsonToken t) throws IOException {
        if (t == null) return null;
        switch (t) {
            case START_OBJECT -> used += OBJECT;
            case VALUE_STRING -> used += STRING + getTextLength();
            case FIELD_NAME -> {
                JsonStreamContext parent = getParsingContext().getParent();
                if (parent != null && "xattrs".equals(parent.getCurrentName())) used += MAP_ENTRY + getTextLength(); // fields of a POJO allocate nothing
            }
            default -> { }
        }
        if (used > budget) throw new IOException("the TOC would take more than " + (budget >> 20) + " MiB of heap (a quarter of it) once parsed");
        return t;
    }
}
