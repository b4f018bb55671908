"""Sessions on disk: the journal written while tracing (SQLite), stored sessions read back
(journal or Parquet), their checks, time windows, Parquet export, the catalogue of saved
sessions, retention (caps and deleting) and snapshot recordings for replay.

Never imports the engine: a session opens without root and without bcc.
"""
