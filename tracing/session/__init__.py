"""Sessions on disk: the journal written while tracing (SQLite), stored sessions read back
(journal or Parquet), their checks, time windows, Parquet export, the catalogue of saved
sessions, retention (caps and deleting) and snapshot recordings for replay.

- schema.py          the journal's format: tables and their versions, names, histogram blobs
- journal.py         Journal: the writer thread, its caps, the fallback to memory; start_journal
- journal_writer.py  the rows a flush writes, the metadata, the bounded copy into memory
- journal_files.py   a new journal's name and files, made safely before SQLite opens them
- stored.py          open_session: a journal or a Parquet directory, read back
- stored_session.py  StoredSession (the tables in memory) and what each column must hold
- journal_reader.py, parquet_reader.py   the two readers; checks.py   the checks they use
- stored_threads.py  the processes' threads (names, running or ended) read back and checked
- export.py, export_decoded.py   Parquet export; the decoded event columns and files.parquet
- export_events.py   events.parquet a row group at a time; export_names.py  syscall/ABI names
- decode_columns.py  many events' decoded text at once (Arrow columns), as render gives it
- trace_writer.py    `record --trace`: kept events as strace lines, from a thread of its own

Never imports the engine: a session opens without root and without bcc.
"""
