package org.dedupsnapshotter.itest;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * htpasswd lines for docker-registry, which accepts bcrypt only. Hashed by the system's libcrypt (libxcrypt's
 * bcrypt, "$2b$", which the registry's Go bcrypt reads): Debian has no htpasswd or python3-bcrypt here, and a
 * hash of our own would test our own bcrypt.
 */
final class Htpasswd {
    private Htpasswd() {}

    /** "user:$2b$05$..." (cost 5: cheap for tests, above bcrypt's minimum of 4). */
    static String line(String user, String password) {
        Linker linker = Linker.nativeLinker();
        try (Arena arena = Arena.ofConfined()) {
            SymbolLookup libcrypt = SymbolLookup.libraryLookup("libcrypt.so.1", arena);
            MethodHandle gensalt = linker.downcallHandle(libcrypt.find("crypt_gensalt").orElseThrow(),
                    FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, ADDRESS, JAVA_INT));
            MethodHandle crypt = linker.downcallHandle(libcrypt.find("crypt").orElseThrow(), FunctionDescriptor.of(ADDRESS, ADDRESS, ADDRESS));
            // both answer in static buffers: copied out before the next call
            MemorySegment setting = (MemorySegment) gensalt.invokeExact(arena.allocateFrom("$2b$"), 5L, MemorySegment.NULL, 0);
            if (setting.equals(MemorySegment.NULL)) throw new IllegalStateException("crypt_gensalt($2b$) failed: libcrypt without bcrypt?");
            String salt = setting.reinterpret(256).getString(0);
            MemorySegment hashed = (MemorySegment) crypt.invokeExact(arena.allocateFrom(password), arena.allocateFrom(salt));
            String hash = hashed.equals(MemorySegment.NULL) ? "" : hashed.reinterpret(256).getString(0);
            if (!hash.startsWith("$2b$05$")) throw new IllegalStateException("crypt with a bcrypt setting gave " + hash);
            return user + ":" + hash + "\n";
        } catch (Throwable t) {
            if (t instanceof RuntimeException r) throw r;
            throw new IllegalStateException("bcrypt through libcrypt.so.1: " + t, t);
        }
    }
}
