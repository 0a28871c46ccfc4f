# Sourced by the bin/ scripts: picks JDK 25 (Temurin's at /usr/lib/jvm/temurin-25-jdk-amd64) unless JAVA_HOME already names a JDK 25.
if [ -z "${JAVA_HOME:-}" ] || ! "$JAVA_HOME/bin/java" -version 2>&1 | grep -q 'version "25'; then
  export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64
fi
if [ ! -x "$JAVA_HOME/bin/java" ]; then
  echo "moe4j needs JDK 25: set JAVA_HOME to a JDK 25 (looked in $JAVA_HOME)" >&2
  exit 1
fi
export PATH="$JAVA_HOME/bin:$PATH"
# Maven itself prints noise about sun.misc.Unsafe on JDK 25; it is harmless.
export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow"
