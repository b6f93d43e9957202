package org.dedupsnapshotter.cli.checkconfig;

import java.util.Locale;

/** One line of check-config's answer: an item of the containerd config and what is right or to be done about it. */
public record Finding(Level level, String item, String text) {
    public enum Level {
        /** present and right */
        OK,
        /** required and missing or wrong: check-config exits 1 */
        MISSING,
        /** works, but probably not what a dedup node wants */
        WARN,
        /** optional */
        INFO
    }

    static Finding ok(String item, String text) { return new Finding(Level.OK, item, text); }
    static Finding missing(String item, String text) { return new Finding(Level.MISSING, item, text); }
    static Finding warn(String item, String text) { return new Finding(Level.WARN, item, text); }
    static Finding info(String item, String text) { return new Finding(Level.INFO, item, text); }

    @Override
    public String toString() { return String.format("%-7s %s: %s", level.name().toLowerCase(Locale.ROOT), item, text); }
}
