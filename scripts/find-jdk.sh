# Sourced: sets JAVA_HOME to a JDK >= 25 (Temurin 25 preferred), installing Debian's/Temurin's if none is found.
find_jdk() {
  local c
  for c in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/temurin-2[5-9]-jdk-amd64 /usr/lib/jvm/java-2[5-9]-openjdk-amd64; do
    [ -n "$c" ] && [ -x "$c/bin/javac" ] || continue
    local v; v=$("$c/bin/java" -XshowSettings:properties -version 2>&1 | awk -F' = ' '/java.specification.version/{print $2}')
    [ "${v%%.*}" -ge 25 ] 2>/dev/null && { echo "$c"; return 0; }
  done
  return 1
}
if ! JAVA_HOME=$(find_jdk); then
  echo "find-jdk: no JDK 25 found; trying Debian's openjdk-25-jdk-headless" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-25-jdk-headless >/dev/null 2>&1 || true
  JAVA_HOME=$(find_jdk) || { echo "find-jdk: JDK 25 is required (Temurin 25 at /usr/lib/jvm/temurin-25-jdk-amd64)" >&2; exit 1; }
fi
export JAVA_HOME
