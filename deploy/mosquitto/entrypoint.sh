#!/bin/sh
# Write Mosquitto's password file from the environment, then start the broker.
# Passwords never land in an image or in the repository, only in the broker's data volume.
set -eu
: "${MQTT_PLATFORM_USERNAME:?set MQTT_PLATFORM_USERNAME}"
: "${MQTT_PLATFORM_PASSWORD:?set MQTT_PLATFORM_PASSWORD}"
: "${MQTT_GATEWAY_USERNAME:?set MQTT_GATEWAY_USERNAME}"
: "${MQTT_GATEWAY_PASSWORD:?set MQTT_GATEWAY_PASSWORD}"
passwd=/mosquitto/data/passwd
rm -f "$passwd"
touch "$passwd"
chmod 0700 "$passwd"
mosquitto_passwd -b "$passwd" "$MQTT_PLATFORM_USERNAME" "$MQTT_PLATFORM_PASSWORD"
mosquitto_passwd -b "$passwd" "$MQTT_GATEWAY_USERNAME" "$MQTT_GATEWAY_PASSWORD"
chown mosquitto:mosquitto "$passwd" /mosquitto/data
exec mosquitto -c /mosquitto/config/mosquitto.conf
