# haproxy as the benchmarks run it (relay.sh, scale.sh): one thread, mode
# tcp, tune.bufsize left at its default (16384) as most sites run it, TLS
# 1.3's three suites and TLS 1.2 at the least.  no-tls-tickets and a zero
# session cache are all haproxy 2.6 offers against tickets: it still sends
# TLS 1.3 tickets.  The suites in server-preference order (relay.sh tells
# every relay to use them).
HAPROXY_SUITES=TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256

# haproxy_head MAXCONN: its global and defaults sections, on stdout.
haproxy_head() {
	cat <<EOF2
global
    nbthread 1
    maxconn $1
    tune.bufsize 16384
    tune.ssl.cachesize 0
    ssl-default-bind-ciphersuites $HAPROXY_SUITES
    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets

defaults
    mode tcp
    timeout connect 5s
    timeout client 10m
    timeout server 10m

EOF2
}
