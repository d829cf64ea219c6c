/**
 * The embedded job database: one SQLite file (better-sqlite3) holding the batches, their
 * items and the queue, so an item's result, its status and its message change in
 * transactions of one database. WAL lets the API read while a worker writes, and lets
 * several processes share the file; a transaction that returned is on disk, so a process
 * killed at any point loses nothing that was acknowledged.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export type JobsDatabase = Database.Database;

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS batches (
  id TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL,
  source TEXT NOT NULL,
  options TEXT NOT NULL,
  cancelled_at INTEGER,
  webhook_url TEXT,
  webhook_secret TEXT,
  webhook_events TEXT,
  webhook_disabled_at INTEGER,
  webhook_disabled_reason TEXT
);
CREATE TABLE IF NOT EXISTS items (
  batch_id TEXT NOT NULL REFERENCES batches(id),
  idx INTEGER NOT NULL,
  image TEXT NOT NULL,
  instruction TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
  attempts INTEGER NOT NULL DEFAULT 0,
  error_code TEXT,
  error_message TEXT,
  result_key TEXT,
  result_uri TEXT,
  finished_at INTEGER,
  PRIMARY KEY (batch_id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency_keys (
  key TEXT PRIMARY KEY,
  request_hash TEXT NOT NULL,
  batch_id TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS inbound_webhooks (
  source TEXT NOT NULL,
  webhook_id TEXT NOT NULL,
  batch_id TEXT,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (source, webhook_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS queue_messages (
  id TEXT PRIMARY KEY,
  queue TEXT NOT NULL,
  dedupe_id TEXT,
  body TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('ready', 'leased', 'done', 'dead')),
  visible_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  receipt TEXT,
  created_at INTEGER NOT NULL,
  finished_at INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS queue_messages_dedupe ON queue_messages (queue, dedupe_id) WHERE dedupe_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS queue_messages_receipt ON queue_messages (receipt) WHERE receipt IS NOT NULL;
CREATE INDEX IF NOT EXISTS queue_messages_visible ON queue_messages (queue, state, visible_at);
`;

/**
 * Opens (creating if needed) the database at `path`, in WAL mode with the schema in place.
 *
 * @example
 * const db = openJobsDatabase('.cache/jobs.db');
 * const queue = new SqliteQueue(db, { visibilityTimeoutMs: 60_000, maxAttempts: 5 });
 */
export function openJobsDatabase(path: string): JobsDatabase {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('busy_timeout = 5000');
  db.pragma('journal_mode = WAL');
  // With WAL, NORMAL syncs at checkpoints: a committed transaction survives a killed process.
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) throw new Error(`${path} has job schema version ${version}; this build knows ${SCHEMA_VERSION}`);
  db.exec(SCHEMA);
  db.pragma(`user_version = ${SCHEMA_VERSION}`);
  return db;
}
