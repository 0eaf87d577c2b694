import GRDB

/// The append-only, string-named migrations of the SQLite store. Never edit a shipped
/// migration: add a new one. Each uses plain SQL only.
enum SQLiteMigrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()

        migrator.registerMigration("2026-11-21-accounts") { db in
            try db.execute(
                sql: """
                    CREATE TABLE users (
                      id TEXT PRIMARY KEY NOT NULL,
                      email TEXT NOT NULL,
                      email_normalized TEXT NOT NULL UNIQUE,
                      password_hash TEXT NOT NULL,
                      tokens_valid_after INTEGER NOT NULL DEFAULT 0,
                      disabled INTEGER NOT NULL DEFAULT 0,
                      created_at INTEGER NOT NULL,
                      updated_at INTEGER NOT NULL
                    ) STRICT;

                    CREATE TABLE profiles (
                      id TEXT PRIMARY KEY NOT NULL,
                      user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                      name TEXT NOT NULL,
                      seq INTEGER NOT NULL DEFAULT 0,
                      purge_seq INTEGER NOT NULL DEFAULT 0,
                      settings TEXT NOT NULL DEFAULT '{}',
                      created_at INTEGER NOT NULL,
                      updated_at INTEGER NOT NULL,
                      deleted_at INTEGER,
                      UNIQUE (user_id, name)
                    ) STRICT;

                    CREATE TABLE refresh_tokens (
                      id TEXT PRIMARY KEY NOT NULL,
                      user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                      family_id TEXT NOT NULL,
                      token_hash BLOB NOT NULL UNIQUE,
                      created_at INTEGER NOT NULL,
                      expires_at INTEGER NOT NULL,
                      rotated_at INTEGER,
                      successor_id TEXT,
                      revoked_at INTEGER
                    ) STRICT;
                    CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);

                    CREATE TABLE api_keys (
                      id TEXT PRIMARY KEY NOT NULL,
                      user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                      profile_id TEXT REFERENCES profiles(id) ON DELETE CASCADE,
                      name TEXT NOT NULL,
                      prefix TEXT NOT NULL,
                      secret_hash BLOB NOT NULL UNIQUE,
                      created_at INTEGER NOT NULL,
                      last_used_at INTEGER,
                      revoked_at INTEGER
                    ) STRICT;
                    CREATE INDEX api_keys_user ON api_keys(user_id);

                    CREATE TABLE audit_log (
                      id INTEGER PRIMARY KEY AUTOINCREMENT,
                      user_id TEXT,
                      event TEXT NOT NULL,
                      detail TEXT,
                      ip TEXT,
                      at INTEGER NOT NULL
                    ) STRICT;
                    CREATE INDEX audit_log_user ON audit_log(user_id, id);
                    """
            )
        }

        // The tables of the sync engine (DESIGN §2–3). Records are keyed by (profile, collection,
        // id) so that client-chosen ids never collide across users; `version` is the profile
        // sequence of the record's last change.
        migrator.registerMigration("2026-11-21-sync-tables") { db in
            try db.execute(
                sql: """
                    CREATE TABLE records (
                      profile_id TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
                      collection TEXT NOT NULL,
                      id TEXT NOT NULL,
                      version INTEGER NOT NULL,
                      data TEXT NOT NULL,
                      field_stamps TEXT NOT NULL DEFAULT '{}',
                      hlc TEXT NOT NULL,
                      parent_id TEXT,
                      position TEXT,
                      created_at INTEGER NOT NULL,
                      updated_at INTEGER NOT NULL,
                      deleted INTEGER NOT NULL DEFAULT 0,
                      deleted_at INTEGER,
                      PRIMARY KEY (profile_id, collection, id)
                    ) STRICT, WITHOUT ROWID;
                    CREATE INDEX records_by_version ON records(profile_id, version);
                    CREATE INDEX records_by_collection_version ON records(profile_id, collection, version);
                    CREATE INDEX records_by_parent ON records(profile_id, collection, parent_id, position);

                    CREATE TABLE changes (
                      profile_id TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
                      seq INTEGER NOT NULL,
                      collection TEXT NOT NULL,
                      record_id TEXT NOT NULL,
                      type TEXT NOT NULL,
                      data TEXT,
                      client_id TEXT,
                      op_id TEXT,
                      hlc TEXT,
                      at INTEGER NOT NULL,
                      PRIMARY KEY (profile_id, seq)
                    ) STRICT, WITHOUT ROWID;

                    CREATE TABLE applied_ops (
                      profile_id TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
                      op_id TEXT NOT NULL,
                      payload_hash BLOB NOT NULL,
                      result TEXT NOT NULL,
                      seq INTEGER,
                      created_at INTEGER NOT NULL,
                      PRIMARY KEY (profile_id, op_id)
                    ) STRICT, WITHOUT ROWID;

                    CREATE TABLE conflicts (
                      id INTEGER PRIMARY KEY AUTOINCREMENT,
                      profile_id TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
                      collection TEXT NOT NULL,
                      record_id TEXT NOT NULL,
                      op_id TEXT,
                      client_data TEXT NOT NULL,
                      server_data TEXT,
                      server_version INTEGER,
                      created_at INTEGER NOT NULL,
                      resolved_at INTEGER
                    ) STRICT;
                    CREATE INDEX conflicts_open ON conflicts(profile_id, resolved_at, id);

                    CREATE TABLE devices (
                      profile_id TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
                      client_id TEXT NOT NULL,
                      cursor INTEGER NOT NULL DEFAULT 0,
                      last_seen_at INTEGER NOT NULL,
                      PRIMARY KEY (profile_id, client_id)
                    ) STRICT, WITHOUT ROWID;
                    """
            )
        }
        // Bookmark search (FTS5) and the creating sequence of each record.
        migrator.registerMigration("2026-11-21-bookmark-search") { db in
            try db.execute(
                sql: """
                    ALTER TABLE records ADD COLUMN created_seq INTEGER NOT NULL DEFAULT 0;

                    CREATE TABLE bookmark_search_map (
                      rowid INTEGER PRIMARY KEY,
                      profile_id TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
                      record_id TEXT NOT NULL,
                      UNIQUE (profile_id, record_id)
                    ) STRICT;

                    CREATE VIRTUAL TABLE bookmark_search USING fts5(
                      title, url, tags, notes,
                      tokenize = 'unicode61 remove_diacritics 2'
                    );
                    """
            )
        }
        // Seed 001's server-side operation queue, device bookkeeping, and timestamp pulls.
        migrator.registerMigration("2026-11-21-queue-and-timestamps") { db in
            try db.execute(
                sql: """
                    CREATE TABLE queued_ops (
                      profile_id TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
                      id TEXT NOT NULL,
                      type TEXT NOT NULL,
                      entity TEXT NOT NULL,
                      entity_id TEXT NOT NULL,
                      data TEXT,
                      created_at INTEGER NOT NULL,
                      synced INTEGER NOT NULL DEFAULT 0,
                      synced_at INTEGER,
                      result TEXT,
                      PRIMARY KEY (profile_id, id)
                    ) STRICT, WITHOUT ROWID;
                    CREATE INDEX queued_ops_pending ON queued_ops(synced, created_at);

                    CREATE INDEX records_by_updated ON records(profile_id, collection, updated_at);
                    """
            )
        }
        // Sibling order read from the index alone: `deleted` is in it, and the primary key (with
        // `id`) comes with every entry of a WITHOUT ROWID table, so `sortOrder` counts and sibling
        // walks never touch the table.
        migrator.registerMigration("2026-11-22-sibling-index") { db in
            try db.execute(
                sql: """
                    CREATE INDEX records_by_sibling ON records(profile_id, collection, parent_id, deleted, position);
                    DROP INDEX records_by_parent;
                    """
            )
        }
        // The search index is brought up to date when it is read, not by every write:
        // `search_seq` is the profile sequence it reflects. Until now every write indexed itself,
        // so an existing database's index is current.
        migrator.registerMigration("2026-11-23-search-catch-up") { db in
            try db.execute(
                sql: """
                    ALTER TABLE profiles ADD COLUMN search_seq INTEGER NOT NULL DEFAULT 0;
                    UPDATE profiles SET search_seq = seq;
                    """
            )
        }
        // The change log folds into the records: of each entry only the pushing device of a
        // record's last change was ever read back (by the feed and seed 000's bookmark sync), and
        // the entry was a second row, in a second B-tree, for every change. The record keeps that
        // device now; the time of a change is the record's `updated_at`.
        migrator.registerMigration("2026-11-24-change-log-in-records") { db in
            try db.execute(
                sql: """
                    ALTER TABLE records ADD COLUMN client_id TEXT;
                    UPDATE records SET client_id = c.client_id FROM changes c
                    WHERE c.profile_id = records.profile_id AND c.seq = records.version AND c.client_id IS NOT NULL;
                    DROP TABLE changes;
                    """
            )
        }
        return migrator
    }
}
