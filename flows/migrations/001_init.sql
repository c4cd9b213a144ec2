-- The Kurento application's tables (flows/README.md, "Data").
-- Applied once by flows/kurento/database.yaml, in a transaction with its schema_migrations row.
-- IF NOT EXISTS everywhere: a database that already has the tables is left as it is.

-- One row per session (a WebRTC connection between a browser and the media server).
CREATE TABLE IF NOT EXISTS sessions (
    id          bigserial PRIMARY KEY,
    session_id  text NOT NULL,          -- the protocol's sessionId (may repeat over time)
    kind        text NOT NULL CHECK (kind IN ('webcam', 'screen', 'player', 'viewer')),
    name        text NOT NULL DEFAULT '',
    owner       text NOT NULL,          -- the socket (connectionId) that created it
    url         text,                   -- player sessions: the source URL
    source      text,                   -- viewer sessions: the watched sessionId
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz,
    end_reason  text
);
CREATE INDEX IF NOT EXISTS sessions_open ON sessions (session_id) WHERE ended_at IS NULL;
CREATE INDEX IF NOT EXISTS sessions_started ON sessions (started_at);

-- One row per stats round (every 5 s, when at least one peer answered): the round's means and
-- the means over the last minute at that time.
CREATE TABLE IF NOT EXISTS metric_rounds (
    id                bigserial PRIMARY KEY,
    round             integer NOT NULL,
    at                timestamptz NOT NULL,
    peers             integer NOT NULL,
    frame_rate        double precision,
    width             double precision,
    height            double precision,
    bitrate           double precision,
    packets_lost      double precision,
    avg_frame_rate    double precision,
    avg_width         double precision,
    avg_height        double precision,
    avg_bitrate       double precision,
    avg_packets_lost  double precision
);
CREATE INDEX IF NOT EXISTS metric_rounds_at ON metric_rounds (at);

-- One row per finished recording.
CREATE TABLE IF NOT EXISTS recordings (
    id          bigserial PRIMARY KEY,
    file        text NOT NULL UNIQUE,
    session_id  text NOT NULL,
    profile     text NOT NULL,
    size        bigint,                 -- bytes; NULL when the file is on another host
    url         text,                   -- where the web app downloads it, if it can
    started_at  timestamptz NOT NULL,
    stopped_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS recordings_stopped ON recordings (stopped_at);
