"""The shared kernel: database connections, the MQTT endpoint, sites, residents and
accounts. Below every feature package; imports none of them."""
