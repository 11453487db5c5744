"""The MQTT broker's access control, written from the registry: who may publish and read what."""
