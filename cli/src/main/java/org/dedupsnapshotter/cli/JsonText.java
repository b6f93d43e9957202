package org.dedupsnapshotter.cli;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;

import java.io.IOException;
import java.io.StringWriter;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The daemon's JSON answers read and printed with jackson-core's streaming parser and generator alone, as plain maps
 * (in order), lists, strings, numbers, booleans and null: jackson-databind's ObjectMapper takes a fresh JVM 20-40 ms
 * to build (its set-up runs interpreted), a tenth of `dedupctl stats` (docs/decisions.md 78). Printed the way
 * databind prints a tree: compact as JsonNode.toString(), pretty with the default pretty printer.
 */
final class JsonText {
    private static final JsonFactory FACTORY = new JsonFactory();

    private JsonText() {}

    /** The value json holds. */
    static Object parse(String json) throws IOException {
        try (JsonParser p = FACTORY.createParser(json)) {
            if (p.nextToken() == null) throw new IOException("no JSON in the daemon's answer");
            Object v = value(p);
            if (p.nextToken() != null) throw new IOException("more than one JSON value in the daemon's answer");
            return v;
        }
    }

    private static Object value(JsonParser p) throws IOException {
        return switch (p.currentToken()) {
            case START_OBJECT -> {
                Map<String, Object> m = new LinkedHashMap<>();
                while (p.nextToken() == JsonToken.FIELD_NAME) {
                    String name = p.currentName();
                    p.nextToken();
                    m.put(name, value(p));
                }
                yield m;
            }
            case START_ARRAY -> {
                List<Object> l = new ArrayList<>();
                while (p.nextToken() != JsonToken.END_ARRAY) l.add(value(p));
                yield l;
            }
            case VALUE_STRING -> p.getText();
            case VALUE_NUMBER_INT, VALUE_NUMBER_FLOAT -> p.getNumberValue();
            case VALUE_TRUE -> Boolean.TRUE;
            case VALUE_FALSE -> Boolean.FALSE;
            case VALUE_NULL -> null;
            default -> throw new IOException("unexpected " + p.currentToken() + " in the daemon's answer");
        };
    }

    /** v as compact JSON (as JsonNode.toString() prints it). */
    static String compact(Object v) throws IOException {
        return write(v, false);
    }

    /** v as JSON with the default pretty printer (as ObjectMapper.writerWithDefaultPrettyPrinter() prints it). */
    static String pretty(Object v) throws IOException {
        return write(v, true);
    }

    private static String write(Object v, boolean pretty) throws IOException {
        StringWriter w = new StringWriter();
        try (JsonGenerator g = FACTORY.createGenerator(w)) {
            if (pretty) g.useDefaultPrettyPrinter();
            write(g, v);
        }
        return w.toString();
    }

    private static void write(JsonGenerator g, Object v) throws IOException {
        switch (v) {
            case null -> g.writeNull();
            case Map<?, ?> m -> {
                g.writeStartObject();
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    g.writeFieldName((String) e.getKey());
                    write(g, e.getValue());
                }
                g.writeEndObject();
            }
            case List<?> l -> {
                g.writeStartArray();
                for (Object x : l) write(g, x);
                g.writeEndArray();
            }
            case String s -> g.writeString(s);
            case Boolean b -> g.writeBoolean(b);
            case Integer i -> g.writeNumber(i);
            case Long l -> g.writeNumber(l);
            case BigInteger b -> g.writeNumber(b);
            case Double d -> g.writeNumber(d);
            case BigDecimal d -> g.writeNumber(d);
            default -> throw new IllegalArgumentException("not a JSON value: " + v.getClass());
        }
    }

    /** v as an object (what {@link #parse} made of one), or an empty one when it is not one. */
    @SuppressWarnings("unchecked")
    static Map<String, Object> asObject(Object v) {
        return v instanceof Map<?, ?> o ? (Map<String, Object>) o : Map.of();
    }

    /** m's field name as an object, or an empty one. */
    static Map<String, Object> object(Map<String, Object> m, String name) {
        return asObject(m.get(name));
    }

    /** m's field name as a list, or an empty one. */
    static List<?> list(Map<String, Object> m, String name) {
        return m.get(name) instanceof List<?> l ? l : List.of();
    }

    /** m's field name as a long (JsonNode.asLong: 0 when absent or not a number). */
    static long asLong(Map<String, Object> m, String name) {
        return m.get(name) instanceof Number n ? n.longValue() : 0;
    }

    /** m's field name as text (JsonNode.asText: "" when absent, the value's text otherwise). */
    static String asText(Map<String, Object> m, String name) {
        Object v = m.get(name);
        return v == null ? "" : v.toString();
    }

    static boolean asBoolean(Map<String, Object> m, String name) {
        return m.get(name) instanceof Boolean b && b;
    }
}
