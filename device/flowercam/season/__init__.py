"""The season's record: what bloomed in the garden and when (sightings in SQLite, beside the daemon's state)."""
