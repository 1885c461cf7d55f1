"""Plantwire edge gateway: OPC UA devices in, batched sequenced MQTT messages out."""
