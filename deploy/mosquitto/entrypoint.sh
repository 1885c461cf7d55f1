#!/bin/sh
# Copy the generated password file and ACL (mqtt-auth service, `plantwire mqtt-auth`) and the TLS files
# (`plantwire pki init deploy/pki --hostname mosquitto`) where only the broker's user can read them,
# then start the broker. No password is in an image or in the repository.
set -eu
secrets=/mosquitto/data/secrets
for f in /plantwire/auth/passwd /plantwire/auth/acl /plantwire/pki/ca.crt /plantwire/pki/server.crt /plantwire/pki/server.key; do
    [ -s "$f" ] || { echo "entrypoint: $f is missing; see docs/deploy.md (MQTT security)" >&2; exit 1; }
done
rm -rf "$secrets"
mkdir -p "$secrets"
cp /plantwire/auth/passwd /plantwire/auth/acl /plantwire/pki/ca.crt /plantwire/pki/server.crt /plantwire/pki/server.key "$secrets/"
chmod 0700 "$secrets"
chmod 0600 "$secrets"/*
chown -R mosquitto:mosquitto "$secrets" /mosquitto/data
exec mosquitto -c /mosquitto/config/mosquitto.conf
