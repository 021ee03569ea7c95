"""The camera daemon: its config, the frame loop, reloads, signals, and where results go (events, MQTT, notify,
metrics); ``web/`` is its status page and review queue."""
