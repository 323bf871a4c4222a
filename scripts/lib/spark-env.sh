# Sourced by scripts/spark-sft and scripts/bench-spark: builds spark-driver with Maven when its jar
# is missing or older than the sources, and sets $classpath (the job, trainer-core, Spark and the
# rest) and $jvm_flags (the flags Spark uses in its own tests, NOTES-stack.md). Needs $root.
driver="$root/spark-driver"
jar="$driver/target/spark-driver-0.1.0-SNAPSHOT.jar"
classpath_file="$driver/target/classpath.txt"
if [[ ! -f "$jar" || ! -f "$classpath_file" ]] \
    || [[ -n "$(find "$driver/src/main" "$root/trainer-core/src/main" "$driver/pom.xml" "$root/trainer-core/pom.xml" \
                     "$root/pom.xml" -newer "$jar" -print -quit)" ]] \
    || [[ -n "$(find "$driver/pom.xml" "$root/trainer-core/pom.xml" "$root/pom.xml" -newer "$classpath_file" -print -quit)" ]]; then
  echo "spark-sft: building spark-driver (mvn package) ..." >&2
  (cd "$root" && mvn -q -B -ntp -pl spark-driver -am -DskipTests package dependency:build-classpath \
      -Dmdep.outputFile=target/classpath.txt) >&2
  # Maven leaves an unchanged jar or classpath file with its old time: mark both as up to date
  touch "$jar" "$classpath_file"
fi
classpath="$jar:$root/trainer-core/target/trainer-core-0.1.0-SNAPSHOT.jar:$(cat "$classpath_file")"
jvm_flags=(-XX:+IgnoreUnrecognizedVMOptions --add-modules=jdk.incubator.vector
  --add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.lang.invoke=ALL-UNNAMED
  --add-opens=java.base/java.lang.reflect=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/java.net=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/sun.nio.cs=ALL-UNNAMED
  --add-opens=java.base/sun.security.action=ALL-UNNAMED --add-opens=java.base/sun.util.calendar=ALL-UNNAMED
  -Djdk.reflect.useDirectMethodHandle=false -Dio.netty.tryReflectionSetAccessible=true
  "-Dlog4j2.configurationFile=${SPARK_SFT_LOG4J:-$root/conf/log4j2.properties}")
# libtorch's OpenMP threads must not spin-wait on small machines (see NOTES-stack.md).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
# glibc raises its mmap threshold after large frees, then keeps freed tensors in the heap: pin it
# so tensors over 128 KiB are always mapped and returned (about 1.2 bytes/param of peak RSS)
export MALLOC_MMAP_THRESHOLD_="${MALLOC_MMAP_THRESHOLD_:-131072}"
