//! berth-store: Content-addressed blob store, SQLite metadata, safe layer applier, overlay snapshots, GC.
