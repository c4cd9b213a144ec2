-- A session's row is identified by (session_id, started_at): the start and the end of a
-- session are written as upserts on it (flows/kurento/sessions.yaml), so a stop that reaches
-- the database before its start still leaves one closed row.
CREATE UNIQUE INDEX IF NOT EXISTS sessions_identity ON sessions (session_id, started_at);
