"""Eclipse Sparkplug B 3.0 for Plantwire: payload codec, topic namespace and session rules.

Self-contained and free of I/O: `edge.EdgeNode` and `host.HostApplication` take received
messages and return what to publish; the gateway and the platform own the MQTT clients.
See docs/sparkplug.md.
"""
