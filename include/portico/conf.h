/*
 * conf.h - the one INI configuration file of every Portico daemon.
 *
 * The file is read by lib/ini.c (the syntax and its limits are in
 * portico/ini.h) against one table of keys (section, key, type, default,
 * bounds) kept in lib/conf.c.  Sections: [tls], [broker],
 * [gateway], [sessiond] and one [pool NAME] per pool.  Unknown sections and
 * keys, bad values, out-of-range numbers, duplicate keys and duplicate pools
 * are errors that name the file and line.  A loaded configuration is
 * immutable; every key is documented in etc/portico.conf.
 */
#ifndef PORTICO_CONF_H
#define PORTICO_CONF_H

#include <stddef.h>
#include <stdint.h>

#define PT_CONF_DEFAULT_PATH "/etc/portico/portico.conf"

/* The shortest shared secret ([broker] *_secret) taken. */
#define PT_CONF_SECRET_MIN 16

/* A comma-separated list value ("alice, bob"), blanks trimmed, empty items
 * dropped.  v[n] is NULL. */
struct pt_strlist {
	char **v;
	size_t n;
};

struct pt_tls_conf {
	char *cert;	    /* PEM certificate chain */
	char *key;	    /* PEM private key */
	char *ca;	    /* PEM CA bundle that verifies peers; NULL: none */
	char *ciphers;	    /* TLS 1.2 cipher list (OpenSSL syntax) */
	char *ciphersuites; /* TLS 1.3 suites (OpenSSL syntax) */
};

struct pt_broker_conf {
	char *listen; /* host:port of the HTTPS API */
	char *store;  /* sqlite:PATH or postgresql://... */
	char *pam_service;
	char *user; /* the network side runs as this user */
	char *admin_group;
	char *gateway_secret;	    /* gateways -> broker; NULL: certificates only */
	char *host_secret;	    /* session hosts -> broker; NULL: certificates only */
	char *broker_secret;	    /* broker -> session hosts; NULL: certificates only */
	struct pt_strlist gateways; /* client-certificate CNs that are gateways */
	char *cert, *key;	    /* override [tls] cert and key; NULL: [tls]'s */
	int64_t token_ttl_ms;
	int64_t ticket_ttl_ms;
	int64_t fail_delay_ms;
	int64_t login_attempts; /* failures per source or user within login_window */
	int64_t login_window_ms;
	int64_t max_logins;		    /* PAM conversations at once (its processes) */
	int64_t max_login_queue;	    /* ... logins waiting beyond those */
	int64_t max_starts_per_host;	    /* calls to one session host at once (starts, stops) */
	int64_t max_start_queue;	    /* ... waiting beyond those, per host */
	int64_t start_timeout_ms;	    /* a start on a session host, answer included */
	int64_t max_connections;	    /* HTTPS connections in all */
	int64_t max_connections_per_source; /* ... not authenticated, per address or /64 */
	char *metrics_listen; /* host:port of Prometheus /metrics (plain HTTP); NULL: off */
	char *audit_log;      /* the audit trail (JSON lines); NULL: none */
};

struct pt_gateway_conf {
	char *broker;		      /* the broker's URL, or a list (portico/urls.h) */
	char *rdp_listen;	      /* host:port, or NULL/"" for no RDP listener */
	char *vnc_listen;	      /* host:port, or NULL/"" for no VNC listener */
	char *https_listen;	      /* host:port, or NULL/"" for no HTTPS front */
	char *web_root;		      /* the portal's files */
	char *novnc_root;	      /* noVNC's files, served at /novnc/ */
	int rdg;		      /* .rdp files go through the RD Gateway */
	int64_t rdg_keepalive_ms;     /* RD Gateway keepalives to idle clients; 0: none */
	char *public_host;	      /* what clients and .rdp files dial */
	char *user;		      /* unprivileged user the gateway runs as */
	int64_t idle_timeout_ms;      /* relay idle timeout; 0 = none */
	int64_t handshake_timeout_ms; /* time a client has to log in */
	int64_t max_connections;      /* open client connections in total */
	int vnc_anon_tls;	      /* offer VeNCrypt TLSPlain (anonymous TLS) */
	int64_t input_report_ms;      /* how often the last input time goes to the broker */
	int64_t max_pending;	      /* connections not logged in yet, in total */
	int64_t max_pending_per_addr; /* ... from one client address */
	int64_t rdp_max_logins;	      /* RDP login steps (processes) at once */
	char *cert, *key;	      /* override [tls] cert and key; NULL: [tls]'s */
	char *metrics_listen;	      /* host:port of Prometheus /metrics (plain HTTP); NULL: off */
	char *audit_log;	      /* the audit trail (JSON lines); NULL: none */
};

struct pt_sessiond_conf {
	char *broker;	    /* the broker's URL, or a list (portico/urls.h) */
	char *listen;	    /* host:port this agent's API listens on */
	char *name;	    /* this host's name in pools' "hosts" */
	char *address;	    /* https://host:port the broker dials; NULL: from listen */
	char *user;	    /* the network side runs as this user */
	char *run_dir;	    /* sockets and session state (tmpfs) */
	char *state_dir;    /* VM overlays that outlive a session */
	char *pam_service;  /* PAM service of user sessions */
	char *xsession;	    /* what a desktop session runs */
	char *vnc_listen;   /* "unix" (gateway on this host) or an IP address */
	char *gateway_user; /* owns the unix sockets the gateway connects to */
	int64_t heartbeat_ms;
	char *xvnc;			    /* the Xvnc binary */
	char *qemu;			    /* the QEMU binary */
	int64_t vm_memory_mb;		    /* memory of each VM */
	char *vm_user;			    /* QEMU runs as this user */
	char *vm_accel;			    /* QEMU -accel: "kvm:tcg" takes KVM when it can */
	char *broker_name;		    /* the broker's certificate CN; NULL: host of broker */
	char *image_dir;		    /* VM images only from below here */
	struct pt_strlist allow_users;	    /* below UID_MIN, yet may have sessions */
	char *cert, *key;		    /* override [tls] cert and key; NULL: [tls]'s */
	int64_t max_connections;	    /* HTTPS connections in all */
	int64_t max_connections_per_source; /* ... not authenticated, per address or /64 */
	char *metrics_listen; /* host:port of Prometheus /metrics (plain HTTP); NULL: off */
};

enum pt_pool_kind { PT_POOL_DESKTOP, PT_POOL_APP };
/* What users' clients reach: VNC or RDP.  CONSOLE (qemu pools only) is
 * QEMU's own emulated screen over VNC; VNC and RDP on a qemu pool are the
 * guest's own server (guest_port). */
enum pt_pool_protocol { PT_PROTO_VNC, PT_PROTO_RDP, PT_PROTO_CONSOLE };
enum pt_pool_driver { PT_DRIVER_XVNC, PT_DRIVER_QEMU, PT_DRIVER_STATIC };
enum pt_pool_policy { PT_POLICY_LEAST_LOADED, PT_POLICY_ROUND_ROBIN, PT_POLICY_PERSISTENT };

struct pt_pool_conf {
	char *name;
	int line;		 /* line of the [pool NAME] header */
	int kind;		 /* enum pt_pool_kind */
	int protocol;		 /* enum pt_pool_protocol */
	int driver;		 /* enum pt_pool_driver */
	struct pt_strlist hosts; /* sessiond names, or host:port for static */
	struct pt_strlist users;
	struct pt_strlist groups;
	int policy;	/* enum pt_pool_policy */
	char *command;	/* app pools: the program */
	char *image;	/* qemu pools: the golden qcow2 image */
	char *geometry; /* WIDTHxHEIGHT of new sessions */
	int64_t max_sessions_per_host;
	int64_t max_sessions_per_user;
	int64_t min_spare;	       /* qemu: VMs kept booted ahead of demand */
	int64_t max_vms;	       /* qemu: cap per host */
	int64_t idle_timeout_ms;       /* 0 = never */
	int64_t disconnect_timeout_ms; /* 0 = never */
	int64_t max_duration_ms;       /* 0 = unlimited */
	int sso;		       /* pass the user's credentials to the backend */
	int64_t guest_port;	       /* qemu rdp/vnc: the guest's port; 0: 3389 or 5900 */
	int64_t boot_timeout_ms;       /* qemu rdp/vnc: boot to ready at most this long */
	int protocol_set;	       /* protocol was given (else the driver's default: see
					* pt_conf_pool_resolve) */
};

struct pt_conf {
	char *path; /* the file it was loaded from, or NULL */
	struct pt_tls_conf tls;
	struct pt_broker_conf broker;
	struct pt_gateway_conf gateway;
	struct pt_sessiond_conf sessiond;
	struct pt_pool_conf *pools;
	size_t npools;
};

/* Load `path`.  On failure return NULL and write one line into err, of the
 * form "FILE:LINE: what is wrong" (or "FILE: what is wrong" when no line is
 * concerned, such as a missing file). */
struct pt_conf *pt_conf_load(const char *path, char *err, size_t errlen);

/* pt_conf_load on len bytes of text rather than a file (the fuzzer and
 * tests); `name` stands for the file in messages, conf->path stays NULL. */
struct pt_conf *pt_conf_load_buf(const char *name, const void *text, size_t len, char *err,
				 size_t errlen);

/* A configuration holding only the defaults (no file). */
struct pt_conf *pt_conf_defaults(void);

/* NULL-safe. */
void pt_conf_free(struct pt_conf *conf);

/* Whose certificate: each daemon's section may name its own. */
enum pt_conf_node { PT_NODE_BROKER, PT_NODE_GATEWAY, PT_NODE_SESSIOND };
/* [tls] with cert and key replaced by the node's own ([broker], [gateway]
 * or [sessiond] cert and key) where set.  The strings stay conf's. */
void pt_conf_tls_of(const struct pt_conf *conf, int node, struct pt_tls_conf *out);

/* Wipe and forget every [broker] secret but those in `keep` (PT_SECRET_*
 * bits), so a process holds only what it uses even where one file serves
 * several daemons: a gateway keeps gateway_secret, a session host's network
 * side host_secret (and broker_secret's hash), the root sides none, the
 * broker's network side all three. */
enum { PT_SECRET_GATEWAY = 1, PT_SECRET_HOST = 2, PT_SECRET_BROKER = 4 };
void pt_conf_keep_secrets(struct pt_conf *conf, int keep);

/* The pool named `name`, or NULL. */
const struct pt_pool_conf *pt_conf_pool(const struct pt_conf *conf, const char *name);

/* --- pools outside a file (the admin API) ---------------------------- */

/* 1 to 64 of [A-Za-z0-9_.-], and not "." or "..". */
int pt_conf_pool_name_valid(const char *name);
/* A pool named `name` with every key at its default.  0 or -ENOMEM. */
int pt_conf_pool_init(struct pt_pool_conf *pc, const char *name);
/* Free what pc owns (NULL-safe fields); pc is zeroed. */
void pt_conf_pool_clear(struct pt_pool_conf *pc);
/* Set one [pool] key from text exactly as the file would; on failure the
 * message (without file and line) is in err.  -ENOENT for an unknown key. */
int pt_conf_pool_set(struct pt_pool_conf *pc, const char *key, const char *value, char *err,
		     size_t errlen);
/* The defaults that depend on other keys, once every key is set: a qemu
 * pool that names no protocol is QEMU's console (what a qemu pool was
 * before pools had guest protocols). */
void pt_conf_pool_resolve(struct pt_pool_conf *pc);
/* The guest's port of a qemu pool: guest_port, else 3389 for rdp and
 * 5900 for vnc. */
int pt_conf_pool_guest_port(const struct pt_pool_conf *pc);
/* Checks across keys (an app pool needs a command, ...).  0 or -EINVAL. */
int pt_conf_pool_check(const struct pt_pool_conf *pc, char *err, size_t errlen);

enum {
	PT_CONF_VALUE_TEXT = 1, /* buf holds it as the file would */
	PT_CONF_VALUE_NUMBER,	/* buf holds a decimal integer */
	PT_CONF_VALUE_BOOL,	/* buf holds yes or no */
	PT_CONF_VALUE_LIST,	/* the list is the field of pc itself */
	PT_CONF_VALUE_UNSET,
};
/* The i-th [pool] key: its name in *key, its value in buf; returns one of
 * PT_CONF_VALUE_*, or -ENOENT past the last key. */
int pt_conf_pool_value(const struct pt_pool_conf *pc, size_t i, const char **key, char *buf,
		       size_t len);
/* The list field of key in pc (for PT_CONF_VALUE_LIST). */
const struct pt_strlist *pt_conf_pool_list(const struct pt_pool_conf *pc, const char *key);

/* Value parsers, shared with the API and command-line options.
 * Each returns 0 or -EINVAL (-ERANGE when out of bounds). */
/* "250ms", "60s", "5m", "8h", "2d", or a bare number of seconds. */
int pt_conf_parse_duration(const char *s, int64_t *ms);
/* yes/no, true/false, on/off, 1/0 (any case). */
int pt_conf_parse_bool(const char *s, int *out);
/* A decimal integer within [min, max]. */
int pt_conf_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

#endif
