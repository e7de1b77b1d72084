#!/bin/bash
# Every route of portico-broker and of portico-sessiond, tried with every
# role's credential and with none: each answers as docs/security.md,
# "Routes and roles", says.  The routes are one list below (one line per
# route); the script checks that the list holds every row of the broker's
# route table (broker/api.c) and that the document says the same roles.
# Then: admin rights follow admin_group at once, not the token.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh

# server METHOD PATH ROLES STATUS [BODY]
#   ROLES: who may call (anyone, user, admin, gateway, host, broker), as
#   docs/security.md writes them; STATUS: what an admitted caller gets with
#   BODY (':name', ':id' and ':host' are filled in: nosuch, 999999, host1).
ROUTES=$(
	cat <<'LIST'
broker POST /login anyone 400 {}
broker POST /logout user,admin 200
broker GET /resources user,admin 200
broker POST /resources/:name/launch user,admin 404
broker GET /resources/:name/launch.rdp user,admin 404
broker GET /sessions user,admin 200
broker POST /sessions/:id/logoff user,admin 404
broker POST /gateway/redeem gateway 403 {}
broker POST /gateway/authorize gateway 400 {}
broker POST /gateway/events gateway 400 {}
broker GET /gateway/control gateway 200
broker POST /hosts/register host 400 {}
broker POST /hosts/heartbeat host 400 {}
broker POST /hosts/events host 400 {}
broker GET /admin/pools admin 200
broker POST /admin/pools admin 400 {}
broker GET /admin/pools/:name admin 404
broker PUT /admin/pools/:name admin 404 {}
broker PATCH /admin/pools/:name admin 404 {}
broker DELETE /admin/pools/:name admin 404
broker POST /admin/pools/:name/drain admin 404
broker POST /admin/pools/:name/undrain admin 404
broker GET /admin/hosts admin 200
broker POST /admin/hosts/:host/drain admin 200
broker POST /admin/hosts/:host/undrain admin 200
broker GET /admin/sessions admin 200
broker POST /admin/sessions/:id/disconnect admin 404
broker POST /admin/sessions/:id/logoff admin 404
broker POST /admin/sessions/:id/message admin 404 {"text":"x"}
broker GET /admin/audit admin 404
sessiond GET /sessions broker 200
sessiond POST /sessions broker 400 {}
sessiond DELETE /sessions/:id broker 404
LIST
)
# Every credential a caller may hold, and the role it carries.
CREDS="none:none stale:none user:user admin:admin gw-secret:gateway gw-cert:gateway
host-secret:host host-cert:host broker-secret:broker broker-cert:broker"

be_setup
sd_setup # a session host (root, real users), and [tls] ca for both daemons
"$BUILD/bin/portico-admin" pki issue "$T/pki" --role gateway gw9 >/dev/null || fail "pki issue gw9"
be_start
ADMIN=$(login carol carol-pw)
[ ${#ADMIN} = 43 ] || fail "carol could not log in"
sd_start

# --- the list, the broker's table and the document agree ---------------------------
grep -o '{ HTTP_[A-Z]*, "[^"]*"' broker/api.c | sed 's/{ HTTP_\([A-Z]*\), "\(.*\)"/\1 \2/' |
	sort >"$T/table"
[ "$(wc -l <"$T/table")" -ge 20 ] || fail "cannot read the route table of broker/api.c"
awk '$1 == "broker" { print $2, $3 }' <<<"$ROUTES" | sort >"$T/listed"
diff -u "$T/table" "$T/listed" >"$T/diff" || fail "the list and broker/api.c differ: $(cat "$T/diff")"
while read -r server method path roles _; do
	doc="| \`$method $path\` | ${roles//,/, } |"
	grep -qF "$doc" docs/security.md || fail "docs/security.md has no row '$doc' ($server)"
done <<<"$ROUTES"
echo "ok: $(wc -l <"$T/table") broker routes, listed and documented"

# --- every route, every credential ----------------------------------------------------
call() { # SERVER METHOD PATH BODY CRED: sets STATUS, the body in $T/out
	local base=$B args=(-s -o "$T/out" -w '%{http_code}' --cacert "$T/pki/ca.pem" -X "$2")
	[ "$1" = sessiond ] && base=$SD
	[ -n "$4" ] && args+=(-H 'Content-Type: application/json' --data-binary "$4")
	case $5 in
	stale) args+=(-H "Authorization: Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") ;;
	user) args+=(-H "Authorization: Bearer $USER_TOK") ;;
	admin) args+=(-H "Authorization: Bearer $ADMIN_TOK") ;;
	gw-secret) args+=(-H "Authorization: Bearer $GW_SECRET") ;;
	host-secret) args+=(-H "Authorization: Bearer $HOST_SECRET") ;;
	broker-secret) args+=(-H "Authorization: Bearer $BROKER_SECRET") ;;
	gw-cert) args+=(--cert "$T/pki/gw1.pem" --key "$T/pki/gw1.key") ;;
	host-cert) args+=(--cert "$T/pki/host1.pem" --key "$T/pki/host1.key") ;;
	broker-cert) args+=(--cert "$T/pki/127.0.0.1.pem" --key "$T/pki/127.0.0.1.key") ;;
	esac
	STATUS=$(curl "${args[@]}" "$base$3")
}
# expected SERVER ROLES OK CRED ROLE: "STATUS" or "STATUS CODE"
expected() {
	local server=$1 roles=",$2," ok=$3 cred=$4 role=$5
	if [[ $roles == *,anyone,* || $roles == *,$role,* ]]; then
		echo "$ok"
	elif [ "$role" = none ]; then
		echo "401 unauthenticated"
	elif [ "$server" = broker ] || [[ $cred == *-cert ]]; then
		echo "403 forbidden"
	else
		# portico-sessiond knows one bearer, broker_secret: any other
		# is no credential to it.
		echo "401 unauthenticated"
	fi
}

n=0
while read -r server method path roles ok body; do
	body=${body:-}
	p=${path//:name/nosuch}
	p=${p//:id/999999}
	p=${p//:host/host1}
	# Fresh tokens: the logout row ends the ones it is given.
	USER_TOK=$(login alice alice-pw)
	ADMIN_TOK=$(login carol carol-pw)
	[ ${#USER_TOK} = 43 ] && [ ${#ADMIN_TOK} = 43 ] || fail "cannot log in for $method $path"
	for c in $CREDS; do
		cred=${c%%:*} role=${c#*:}
		want=$(expected "$server" "$roles" "$ok" "$cred" "$role")
		call "$server" "$method" "$p" "$body" "$cred"
		code=$(jq -r '.error // empty' "$T/out" 2>/dev/null)
		got="$STATUS${code:+ $code}"
		case $want in
		*" "*) [ "$got" = "$want" ] ;;
		*) [ "$STATUS" = "$want" ] && [ "$code" != unauthenticated ] && [ "$code" != forbidden ] ;;
		esac || fail "$server $method $p as $cred: got $got, want $want: $(head -c 300 "$T/out")"
		n=$((n + 1))
	done
done <<<"$ROUTES"
echo "ok: $n calls answered as docs/security.md says"

# Nothing reached a handler it should not have: a refused host credential
# registered nothing, a refused caller drained nothing.
api GET /admin/hosts "" "$ADMIN" >/dev/null
[ "$(jq -r '[.hosts[] | select(.name == "host1")][0].drained' "$T/out")" = false ] ||
	fail "host1 drained: $(cat "$T/out")"
[ "$(jq -r '[.hosts[].name] | sort | join(",")' "$T/out")" = host1 ] ||
	fail "hosts appeared: $(cat "$T/out")"
# Refusals of node credentials are logged with the node's name.
grep -q "gateway gw1 refused on /api/v1/hosts/register: not a session host" "$T/broker.log" ||
	fail "no log line for a gateway on a host route"
grep -q "broker 127.0.0.1 refused on /api/v1/resources: not a user" "$T/broker.log" ||
	fail "no log line for the broker's certificate on a user route"

# --- unknown paths, other methods, a certificate of no role ----------------------------
USER_TOK=$(login alice alice-pw)
for cred in none user gw-cert; do
	call broker GET /nosuch "" "$cred"
	[ "$STATUS" = 404 ] || fail "an unknown path as $cred got $STATUS"
	call broker GET /gateway/redeem "" "$cred"
	[ "$STATUS" = 405 ] || fail "GET /gateway/redeem as $cred got $STATUS"
done
allow=$(curl -s -D - -o /dev/null --cacert "$T/pki/ca.pem" -X DELETE "$B/admin/pools" | tr -d '\r' |
	sed -n 's/^[Aa]llow: //p')
[ "$allow" = "GET, POST" ] || fail "Allow for /admin/pools: '$allow'"
# A gateway's certificate whose CN [broker] gateways does not list.
STATUS=$(curl -s -o "$T/out" -w '%{http_code}' --cacert "$T/pki/ca.pem" --cert "$T/pki/gw9.pem" \
	--key "$T/pki/gw9.key" -d '{}' "$B/gateway/redeem")
expect 403 forbidden
grep -q "certificate of no role gw9 refused on /api/v1/gateway/redeem" "$T/broker.log" ||
	fail "no log line for a certificate of no role"
echo "ok: 404, 405 with Allow, a certificate of no role"

# --- admin rights follow admin_group, not the token -----------------------------------
api GET /admin/pools "" "$ADMIN" >/dev/null
expect 200
sleep 1 # nss_wrapper notices a changed group file by its mtime
sed -i '/^portico-admin carol$/d' "$T/members"
be_groups
api GET /admin/pools "" "$ADMIN" >/dev/null
expect 403 forbidden
grep -q "needs an administrator" "$T/out" || fail "message: $(cat "$T/out")"
api GET /resources "" "$ADMIN" >/dev/null
expect 200
[ "$(api POST /login '{"username":"carol","password":"carol-pw"}' | jq -r .admin)" = false ] ||
	fail "login still says admin: $(cat "$T/out")"
sleep 1
echo "portico-admin carol" >>"$T/members"
be_groups
api GET /admin/pools "" "$ADMIN" >/dev/null
expect 200
echo "ok: admin rights checked on each request"

sd_stop
be_stop
[ "$BE_RC" = 0 ] || fail "the broker exited $BE_RC"
echo "ok: routes and roles"
