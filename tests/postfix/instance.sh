#!/usr/bin/env bash
# A Postfix instance of the tests' own, on 127.0.0.1 only, that accepts mail over
# STARTTLS with a certificate from a CA the test made, and delivers nothing: mail
# to the test domain herald.test is discarded (and logged), every other transport
# is `error`, so no test mail can leave.
#
#   instance.sh start <dir> <port> <smtps-port> <cert.pem> <key.pem> [<bounce-domain> <inbound-port> <reject-port>]
#   instance.sh stop <dir>
#
# With a bounce domain, Postfix takes mail to reject.herald.test and relays it to
# a second smtpd of its own (on <reject-port>) that refuses it "550 5.1.1 user
# unknown", as a remote server would; Postfix then writes the bounce and hands it
# (and any mail for the bounce domain) to Herald's inbound port on 127.0.0.1.
#
# <dir> must be listed in alternate_config_directories of /etc/postfix/main.cf
# (.ci/run sets it). Needs root, as Postfix does.
set -euo pipefail
cmd=$1 dir=$2
case "$cmd" in
start)
  port=$3 smtps=$4 cert=$5 key=$6 bounce_domain=${7:-} inbound=${8:-} reject=${9:-}
  transports="herald.test=discard:test-domain"
  if [ -n "$bounce_domain" ]; then
    transports="$transports, reject.herald.test=smtp:[127.0.0.1]:$reject, $bounce_domain=smtp:[127.0.0.1]:$inbound"
  fi
  mkdir -p "$dir/queue" "$dir/data"
  chown postfix:postfix "$dir/data"
  chmod 0755 "$dir" "$dir/queue"
  cat > "$dir/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
maillog_file = $dir/maillog
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = postfix.herald.test
mydestination =
relay_domains = herald.test
transport_maps = inline:{ $transports }
smtp_dns_support_level = disabled
smtp_tls_security_level = none
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
default_transport = error:a test instance delivers nothing
relay_transport = error:a test instance delivers nothing
local_transport = error:a test instance delivers nothing
smtpd_tls_cert_file = $cert
smtpd_tls_key_file = $key
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
minimal_backoff_time = 1s
maximal_backoff_time = 2s
queue_run_delay = 1s
herald_unknown_users = inline:{ { reject.herald.test = 550 5.1.1 user unknown } }
CF
  # Debian's services without chroot (the queue is elsewhere), and smtpd on the
  # test's port instead of 25.
  awk -v port="$port" '
    /^#/ || /^[ \t]/ || NF < 8 { print; next }
    $1 == "smtp" && $2 == "inet" { $1 = "127.0.0.1:" port }
    $1 == "submission" || $1 == "smtps" { next }
    { $5 = "n"; print }
  ' /etc/postfix/master.cf > "$dir/master.cf"
  # And TLS from the first byte (smtps) on the second port.
  printf '127.0.0.1:%s inet n - n - - smtpd\n  -o smtpd_tls_wrappermode=yes\n' "$smtps" >> "$dir/master.cf"
  if [ -n "$bounce_domain" ]; then
    printf '127.0.0.1:%s inet n - n - - smtpd\n  -o myhostname=mx.reject.herald.test\n  -o smtpd_recipient_restrictions=check_recipient_access,$herald_unknown_users\n' "$reject" >> "$dir/master.cf"
  fi
  postfix -c "$dir" check
  postfix -c "$dir" start
  ;;
stop)
  postfix -c "$dir" stop || true
  ;;
esac
