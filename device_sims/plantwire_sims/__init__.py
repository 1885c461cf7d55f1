"""Simulated plant machines, each a real OPC UA server."""
