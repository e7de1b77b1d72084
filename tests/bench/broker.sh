#!/bin/bash
# broker.sh - the broker's benchmark (run by make bench after relay.sh):
# store-level launch latency with 10,000 sessions and 1,000 hosts and the
# assignment decision alone (bench-broker), then logins per second through
# the real broker, PAM through pam_wrapper + pam_matrix, over one kept-alive
# HTTPS connection (so TLS handshakes do not count).  Figures, not verdicts.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}

echo
echo "broker benchmark"
"$BUILD/bench/bench-broker" || exit 1

. tests/integration/broker_env.sh
be_setup
be_start
N=500
urls=()
for _ in $(seq 1 $N); do urls+=("$B/login"); done
start=$(date +%s.%N)
curl -s -o /dev/null --cacert "$T/tls/server.pem" -H 'Content-Type: application/json' \
	-d '{"username":"alice","password":"alice-pw"}' "${urls[@]}" >/dev/null
end=$(date +%s.%N)
ok=$(grep -c 'login user=alice' "$T/broker.log")
[ "$ok" = "$N" ] || fail "$ok of $N logins succeeded"
echo "logins_per_s (pam_matrix, one connection): $(echo "$N / ($end - $start)" | bc -l | xargs printf %.0f)"
