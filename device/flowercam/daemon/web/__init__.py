"""The daemon's web side: the HTTP server (status page, snapshots, metrics) and the review queue behind it."""
