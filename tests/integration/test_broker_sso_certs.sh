#!/bin/bash
# portico-broker: single sign-on credentials through tickets, gateways
# authenticated by client certificate, a schema migrated at start, and a
# malformed message to the PAM process ending the pair.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh

be_setup
# Nothing here waits for a ticket to expire, and one ticket is tried with a
# dozen credentials before it is redeemed: more than broker_env's 5 s on a
# loaded machine.
sed -i 's/^ticket_ttl = 5s$/ticket_ttl = 60s/' "$T/portico.conf"
# A private CA for Portico's own components, a gateway certificate from it,
# and one from a CA nobody configured.
pki() { openssl "$@" 2>/dev/null || fail "openssl $1 failed"; }
for ca in ca rogue; do
	pki req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=$ca" -keyout "$T/tls/$ca.key" -out "$T/tls/$ca.pem"
	pki req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=gw-$ca" \
		-keyout "$T/tls/gw-$ca.key" -out "$T/tls/gw-$ca.csr"
	pki x509 -req -in "$T/tls/gw-$ca.csr" -CA "$T/tls/$ca.pem" -CAkey "$T/tls/$ca.key" \
		-CAcreateserial -days 2 -out "$T/tls/gw-$ca.pem"
done
# More from the configured CA: a session host's (OU host), one that names no
# role (no OU, CN not a gateway's) and one with no CN.
for c in "host9:/OU=host/CN=host9" "person:/CN=person" "nocn:/OU=host"; do
	pki req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "${c#*:}" \
		-keyout "$T/tls/${c%%:*}.key" -out "$T/tls/${c%%:*}.csr"
	pki x509 -req -in "$T/tls/${c%%:*}.csr" -CA "$T/tls/ca.pem" -CAkey "$T/tls/ca.key" \
		-CAcreateserial -days 2 -out "$T/tls/${c%%:*}.pem"
done
sed -i "s|^key  = .*|&\nca   = $T/tls/ca.pem|; s|^gateways = gw1|gateways = gw1, gw-ca|" "$T/portico.conf"
be_conf_append "
[pool secure]
driver = static
hosts = $BACKEND_A
users = alice
sso = yes"
be_start

# --- single sign-on -------------------------------------------------------------
ALICE=$(login alice alice-pw)
[ ${#ALICE} = 43 ] || fail "alice could not log in"
T1=$(api POST /resources/secure/launch "" "$ALICE" | jq -r .ticket)
api POST /gateway/redeem "{\"ticket\":\"$T1\",\"client_addr\":\"127.0.0.1\"}" "$GW_SECRET" >/dev/null
expect 200
[ "$(jq -r .credentials.username "$T/out")" = alice ] || fail "sso redeem: $(cat "$T/out")"
[ "$(jq -r .credentials.password "$T/out")" = alice-pw ] || fail "sso password not carried"
T2=$(api POST /resources/office/launch "" "$ALICE" | jq -r .ticket)
api POST /gateway/redeem "{\"ticket\":\"$T2\",\"client_addr\":\"127.0.0.1\"}" "$GW_SECRET" >/dev/null
expect 200
[ "$(jq -r 'has("credentials")' "$T/out")" = false ] || fail "a pool without sso got credentials"
api POST /gateway/authorize '{"username":"alice#secure","password":"alice-pw","client_addr":"127.0.0.1"}' "$GW_SECRET" >/dev/null
expect 200
[ "$(jq -r .credentials.password "$T/out")" = alice-pw ] || fail "authorize: $(cat "$T/out")"
T3=$(jq -r .ticket "$T/out")
api POST /gateway/redeem "{\"ticket\":\"$T3\",\"client_addr\":\"127.0.0.1\"}" "$GW_SECRET" >/dev/null
[ "$(jq -r .credentials.password "$T/out")" = alice-pw ] || fail "the redirection ticket lost the credentials"
# The database (and its write-ahead log) never holds the password in clear.
if grep -rqa alice-pw "$T/db"; then fail "the password is in the database in clear"; fi
echo "ok: sso"

# --- gateways by client certificate --------------------------------------------------
redeem_cert() { # CERT-NAME TICKET
	curl -s -o "$T/out" -w '%{http_code}' --cacert "$T/tls/server.pem" \
		--cert "$T/tls/$1.pem" --key "$T/tls/$1.key" \
		-d "{\"ticket\":\"$2\",\"client_addr\":\"127.0.0.1\"}" "$B/gateway/redeem"
}
T4=$(api POST /resources/office/launch "" "$ALICE" | jq -r .ticket)
STATUS=$(redeem_cert gw-ca "$T4")
expect 200
[ "$(jq -r .user "$T/out")" = alice ] || fail "redeem by certificate: $(cat "$T/out")"
T5=$(api POST /resources/office/launch "" "$ALICE" | jq -r .ticket)
STATUS=$(redeem_cert gw-rogue "$T5")
[ "$STATUS" = 000 ] || fail "a certificate from another CA got HTTP $STATUS"
api POST /gateway/redeem "{\"ticket\":\"$T5\",\"client_addr\":\"127.0.0.1\"}" >/dev/null
expect 401 unauthenticated
# A user's token is a credential of another role: forbidden, and logged.
api POST /gateway/redeem "{\"ticket\":\"$T5\",\"client_addr\":\"127.0.0.1\"}" "$ALICE" >/dev/null
expect 403 forbidden
grep -q "user alice refused on /api/v1/gateway/redeem: not a gateway" "$T/broker.log" ||
	fail "the user's refusal is not logged"
# A certificate of the same CA whose CN [broker] gateways does not list is a
# session host's: no gateway route for it, and the ticket stays unspent.
STATUS=$(redeem_cert host9 "$T5")
expect 403 forbidden
grep -q "session host host9 refused on /api/v1/gateway/redeem" "$T/broker.log" ||
	fail "the refusal is not logged"
# A certificate of the CA that names no role (no OU, no gateway's CN), and
# one without a CN: no node at all, on any node route.
for c in person nocn; do
	STATUS=$(redeem_cert $c "$T5")
	expect 403 forbidden
	STATUS=$(curl -s -o "$T/out" -w '%{http_code}' --cacert "$T/tls/server.pem" \
		--cert "$T/tls/$c.pem" --key "$T/tls/$c.key" \
		-d '{"name":"person","address":"https://192.0.2.1:8444"}' "$B/hosts/register")
	expect 403 forbidden
done
grep -q "certificate of no role person refused on /api/v1/hosts/register" "$T/broker.log" ||
	fail "the refusal of a certificate of no role is not logged"
# A session host registers an https:// address only (the broker sends it
# users' names and sessions' secrets).
register9() {
	curl -s -o "$T/out" -w '%{http_code}' --cacert "$T/tls/server.pem" \
		--cert "$T/tls/host9.pem" --key "$T/tls/host9.key" \
		-d "{\"name\":\"host9\",\"address\":\"$1\"}" "$B/hosts/register"
}
STATUS=$(register9 http://192.0.2.9:8444)
expect 400 bad_request
# One URL, as the broker's client reads it: a list, a user name, a query,
# a blank or a bad port would be another address than the one registered.
for bad in "https://192.0.2.9:8444, https://192.0.2.10:8444" "https://u@192.0.2.9:8444" \
	"https://192.0.2.9:8444?x=1" "https://192.0.2.9 :8444" "https://192.0.2.9:99999" "https://" ""; do
	STATUS=$(register9 "$bad")
	expect 400 bad_request
done
STATUS=$(register9 https://192.0.2.9:8444)
expect 200
# Nor do the other roles' secrets open it.
api POST /gateway/redeem "{\"ticket\":\"$T5\",\"client_addr\":\"127.0.0.1\"}" "$HOST_SECRET" >/dev/null
expect 403 forbidden
api POST /gateway/redeem "{\"ticket\":\"$T5\",\"client_addr\":\"127.0.0.1\"}" "$BROKER_SECRET" >/dev/null
expect 403 forbidden
STATUS=$(redeem_cert gw-ca "$T5")
expect 200
echo "ok: client certificates"

# --- schema v1 migrated at start, rows kept ------------------------------------------
be_stop
sqlite3_() { python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); r=c.execute(sys.argv[2]).fetchall(); c.commit(); print("\n".join("|".join(map(str,x)) for x in r))' "$@"; }
# Put the file back to version 1 as an older broker left it.
sqlite3_ "$T/db/portico.db" "ALTER TABLE tokens DROP COLUMN sealed" >/dev/null
sqlite3_ "$T/db/portico.db" "ALTER TABLE tickets DROP COLUMN sealed" >/dev/null
sqlite3_ "$T/db/portico.db" "ALTER TABLE sessions DROP COLUMN gateway" >/dev/null
sqlite3_ "$T/db/portico.db" "DROP INDEX sessions_live_user" >/dev/null
sqlite3_ "$T/db/portico.db" "DROP TABLE throttle" >/dev/null
sqlite3_ "$T/db/portico.db" "DROP TABLE brokers" >/dev/null
sqlite3_ "$T/db/portico.db" "ALTER TABLE sessions DROP COLUMN starter" >/dev/null
sqlite3_ "$T/db/portico.db" "DROP TABLE control" >/dev/null
# A VM pool an older broker stored: its "vnc" was QEMU's console (version 7);
# an xvnc pool's vnc stays vnc.
sqlite3_ "$T/db/portico.db" "INSERT INTO pools (name, conf) VALUES ('oldvm', 'kind = desktop
protocol = vnc
driver = qemu
image = /var/lib/portico/images/old.qcow2
'), ('oldx', 'kind = desktop
protocol = vnc
driver = xvnc
')" >/dev/null
sqlite3_ "$T/db/portico.db" "UPDATE meta SET value = '1' WHERE key = 'schema_version'" >/dev/null
be_start
[ "$(sqlite3_ "$T/db/portico.db" "SELECT value FROM meta WHERE key = 'schema_version'")" = 7 ] ||
	fail "schema not migrated"
sqlite3_ "$T/db/portico.db" "SELECT name, conf FROM pools WHERE name LIKE 'old%' ORDER BY name" >"$T/pools"
grep -A1 "^oldvm|" "$T/pools" | grep -q "^protocol = console" ||
	fail "the old VM pool's console: $(cat "$T/pools")"
grep -A1 "^oldx|" "$T/pools" | grep -q "^protocol = vnc" || fail "the xvnc pool changed: $(cat "$T/pools")"
api GET /sessions "" "$ALICE" >/dev/null
expect 200
[ "$(jq '.sessions | length' "$T/out")" -ge 2 ] || fail "sessions lost in the migration"
echo "ok: migration"

# --- a malformed message to the PAM process ends both processes ------------------------
if [ "$(id -u)" = 0 ]; then
	for kind in short type unterminated valid; do
		[ -n "${BE_PID:-}" ] || be_start
		net=$(pgrep -P "$BE_PID")
		[ -n "$net" ] || fail "no network side under $BE_PID"
		n0=$(wc -l <"$T/broker.log")
		"$BUILD/tests/tools/ipc-inject" "$net" "$kind" || fail "ipc-inject $kind"
		for _ in $(seq 1 50); do kill -0 "$BE_PID" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$BE_PID" 2>/dev/null && fail "the broker survived a '$kind' message"
		wait "$BE_PID"
		rc=$?
		BE_PID=
		[ "$rc" != 0 ] || fail "the broker exited 0 after a '$kind' message"
		kill -0 "$net" 2>/dev/null && fail "the network side outlived its PAM process"
		log=$(tail -n +"$((n0 + 1))" "$T/broker.log")
		if [ "$kind" = valid ]; then
			# Delivered to the PAM process and answered; the network side
			# refuses an answer to a question it never asked.
			grep -q 'answered request 1, which was never asked' <<<"$log" ||
				fail "valid message: $log"
		else
			grep -q 'authd: malformed message from the net side' <<<"$log" ||
				fail "no log line for a '$kind' message: $log"
		fi
	done
	echo "ok: malformed IPC ends the pair"
else
	fail "the malformed-IPC test needs root (pidfd_getfd into the broker); CI runs as root"
fi
echo "ok: broker sso and certificates"
