"""What hotline keeps on disk: key files, and (later) the SQLite stores of the relay and the stations."""
