package org.dedupsnapshotter.storage;

import org.dedupsnapshotter.api.Names;
import org.dedupsnapshotter.api.SnapshotException;
import org.dedupsnapshotter.api.SnapshotInfo;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * containerd's filter syntax for List: each filter is a comma-separated conjunction of selectors; several
 * filters are OR-ed. A selector is a field path (name, parent, kind, labels.KEY, with quoted parts allowed)
 * alone (present), or followed by ==, != or ~= (regexp) and a value (bare, or double-quoted).
 */
public final class Filter implements Predicate<SnapshotInfo> {
    private enum Op { PRESENT, EQ, NE, MATCHES }

    private record Selector(List<String> path, Op op, String value, Pattern regex) {}

    private final List<List<Selector>> anyOf;

    private Filter(List<List<Selector>> anyOf) { this.anyOf = anyOf; }

    public static Filter parseAll(List<String> filters) {
        List<List<Selector>> out = new ArrayList<>();
        for (String f : filters) {
            if (f.isBlank()) continue;
            out.add(new Parser(f).conjunction());
        }
        return new Filter(out);
    }

    @Override
    public boolean test(SnapshotInfo info) {
        if (anyOf.isEmpty()) return true;
        for (List<Selector> all : anyOf) {
            if (all.stream().allMatch(s -> matches(s, info))) return true;
        }
        return false;
    }

    private static boolean matches(Selector s, SnapshotInfo info) {
        String value = switch (s.path.getFirst()) {
            case "name" -> s.path.size() == 1 ? info.name() : null;
            case "parent" -> s.path.size() == 1 ? info.parent() : null;
            case "kind" -> s.path.size() == 1 ? info.kind().filterName() : null;
            case "labels" -> s.path.size() > 1 ? info.labels().get(String.join(".", s.path.subList(1, s.path.size()))) : null;
            default -> null;
        };
        // as containerd's snapshot adaptor: name, parent and kind are always present (an empty parent matches parent==""),
        // a label when the snapshot has it
        boolean present = value != null;
        return switch (s.op) {
            case PRESENT -> present;
            case EQ -> present && value.equals(s.value);
            case NE -> !(value == null ? "" : value).equals(s.value);
            case MATCHES -> present && s.regex.matcher(value).find();
        };
    }

    private static final class Parser {
        private final String in;
        private int pos;

        Parser(String in) { this.in = in; }

        List<Selector> conjunction() {
            List<Selector> out = new ArrayList<>();
            do {
                skipSpace();
                out.add(selector());
                skipSpace();
            } while (accept(','));
            if (pos != in.length()) throw error("unexpected " + in.charAt(pos));
            return out;
        }

        private Selector selector() {
            List<String> path = new ArrayList<>();
            path.add(field());
            while (accept('.')) path.add(field());
            skipSpace();
            if (pos >= in.length() || in.charAt(pos) == ',') return new Selector(path, Op.PRESENT, null, null);
            Op op;
            if (in.startsWith("==", pos)) op = Op.EQ;
            else if (in.startsWith("!=", pos)) op = Op.NE;
            else if (in.startsWith("~=", pos)) op = Op.MATCHES;
            else throw error("expected ==, != or ~=");
            pos += 2;
            skipSpace();
            String value = value();
            Pattern re = null;
            if (op == Op.MATCHES) {
                try {
                    re = Pattern.compile(value);
                } catch (PatternSyntaxException e) {
                    throw error("bad regular expression " + value + ": " + e.getDescription());
                }
            }
            return new Selector(path, op, value, re);
        }

        private String field() {
            skipSpace();
            if (pos < in.length() && in.charAt(pos) == '"') return quoted();
            int start = pos;
            while (pos < in.length() && (Character.isLetterOrDigit(in.charAt(pos)) || in.charAt(pos) == '_' || in.charAt(pos) == '-')) pos++;
            if (start == pos) throw error("expected a field name");
            return in.substring(start, pos);
        }

        private String value() {
            if (pos < in.length() && (in.charAt(pos) == '"' || in.charAt(pos) == '/')) return quoted();
            int start = pos;
            while (pos < in.length() && in.charAt(pos) != ',') pos++;
            return in.substring(start, pos).trim();
        }

        private String quoted() {
            char q = in.charAt(pos++);
            StringBuilder sb = new StringBuilder();
            while (pos < in.length() && in.charAt(pos) != q) {
                char c = in.charAt(pos++);
                if (c == '\\' && pos < in.length()) {
                    char e = in.charAt(pos++);
                    sb.append(switch (e) { case 'n' -> '\n'; case 't' -> '\t'; default -> e; });
                } else {
                    sb.append(c);
                }
            }
            if (pos >= in.length()) throw error("unterminated quote");
            pos++;
            return sb.toString();
        }

        private boolean accept(char c) {
            if (pos < in.length() && in.charAt(pos) == c) {
                pos++;
                return true;
            }
            return false;
        }

        private void skipSpace() {
            while (pos < in.length() && Character.isWhitespace(in.charAt(pos))) pos++;
        }

        private SnapshotException error(String what) {
            return SnapshotException.invalidArgument("filter %s: %s at position %d", Names.shorten(in), what, pos);
        }
    }
}
