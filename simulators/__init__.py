"""Simulated residents and devices: pure seeded models plus thin MQTT device I/O."""
