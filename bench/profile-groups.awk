# Groups callgrind_annotate's self-cost lines by component; used by profile.sh.
# (Group sums of self cost; "other" is std, futures, axum glue.)
# Input: `callgrind_annotate --auto=no` output; N: requests profiled.
/^ *[0-9,]+ \(/ && !/PROGRAM TOTALS/ {
  c = $1; gsub(",", "", c); line = $0; group = "other";
  if (line ~ /mimalloc|malloc|free|realloc|memcpy|memmove|memset|memcmp|alloc::|_mi_|mi_/) group = "allocation, memcpy";
  else if (line ~ /sqlite3\.c/) group = "SQLite (C)";
  else if (line ~ /sqlx/) group = "sqlx";
  else if (line ~ /wasmtime|cranelift|\?\?\?:0x/) group = "wasmtime and guest code";
  else if (line ~ /tokio/) group = "tokio";
  else if (line ~ /hyper|httparse|http/) group = "hyper, http";
  else if (line ~ /tracing/) group = "tracing";
  else if (line ~ /sha2|argon|base64|rand/) group = "hashing, base64, random";
  else if (line ~ /serde|json/) group = "serde";
  else if (line ~ /pthread|futex|syscall|libc|nptl|clock_gettime/) group = "libc (locks, time, syscalls)";
  else if (line ~ /metrics/) group = "metrics";
  else if (line ~ /host\/src|grantbox::/) group = "grantbox";
  sum[group] += c
}
END { for (g in sum) printf "%8d  %s\n", sum[g] / N, g }
