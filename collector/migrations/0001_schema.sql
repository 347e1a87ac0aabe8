-- qoelab schema: portable SQL run unchanged on PostgreSQL and SQLite.
-- Integers are BIGINT, times are Unix milliseconds (BIGINT), JSON documents are TEXT,
-- booleans are BIGINT 0/1. Ids come from the `counters` table, not from serial columns,
-- because the two databases spell those differently.

CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('campaign', 0), ('session', 0), ('model', 0);

CREATE TABLE campaigns (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);

CREATE TABLE sessions (
    id BIGINT PRIMARY KEY,
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    seq BIGINT NOT NULL,
    rate_bps BIGINT,
    delay_ms DOUBLE PRECISION,
    loss DOUBLE PRECISION,
    workload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    started_ms BIGINT,
    finished_ms BIGINT,
    failure TEXT,
    capture_id TEXT,
    UNIQUE (campaign_id, seq)
);
CREATE INDEX sessions_by_campaign ON sessions (campaign_id, status, seq);
CREATE INDEX sessions_by_rate ON sessions (rate_bps);

CREATE TABLE flows (
    session_id BIGINT NOT NULL REFERENCES sessions (id),
    idx BIGINT NOT NULL,
    protocol TEXT NOT NULL,
    client_addr TEXT NOT NULL,
    client_port BIGINT NOT NULL,
    server_addr TEXT NOT NULL,
    server_port BIGINT NOT NULL,
    c2s_bytes BIGINT NOT NULL,
    s2c_bytes BIGINT NOT NULL,
    stats TEXT NOT NULL,
    PRIMARY KEY (session_id, idx)
);

-- flow_idx -1 holds the bins of the whole capture.
CREATE TABLE series_bins (
    session_id BIGINT NOT NULL REFERENCES sessions (id),
    flow_idx BIGINT NOT NULL,
    bin BIGINT NOT NULL,
    start_ms BIGINT NOT NULL,
    c2s_bytes BIGINT NOT NULL,
    s2c_bytes BIGINT NOT NULL,
    c2s_pkts BIGINT NOT NULL,
    s2c_pkts BIGINT NOT NULL,
    c2s_retx BIGINT NOT NULL,
    s2c_retx BIGINT NOT NULL,
    PRIMARY KEY (session_id, flow_idx, bin)
);

CREATE TABLE session_qoe (
    session_id BIGINT PRIMARY KEY REFERENCES sessions (id),
    record TEXT NOT NULL
);

-- The columns a campaign's feature rows use, kept up to date as sessions are stored, so an
-- export knows its header without a pass over the data.
CREATE TABLE campaign_columns (
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    name TEXT NOT NULL,
    is_text BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, name)
);

CREATE TABLE session_features (
    session_id BIGINT PRIMARY KEY REFERENCES sessions (id),
    features TEXT NOT NULL
);

-- A batch's idempotency key is stored with the batch in one transaction: a retried batch
-- finds its key and is not stored twice.
CREATE TABLE ingest_batches (
    idempotency_key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    items BIGINT NOT NULL,
    received_ms BIGINT NOT NULL
);

CREATE TABLE qos_reports (
    gateway TEXT NOT NULL,
    analytic TEXT NOT NULL,
    kind TEXT NOT NULL,
    ts_ms BIGINT NOT NULL,
    knob DOUBLE PRECISION NOT NULL,
    expected_qos DOUBLE PRECISION NOT NULL,
    achieved_qos DOUBLE PRECISION NOT NULL,
    throughput_bps DOUBLE PRECISION,
    latency_ms DOUBLE PRECISION,
    extra TEXT
);
CREATE INDEX qos_reports_by_time ON qos_reports (gateway, analytic, ts_ms);

CREATE TABLE placement_decisions (
    gateway TEXT NOT NULL,
    analytic TEXT NOT NULL,
    location TEXT NOT NULL,
    image TEXT NOT NULL,
    layers_fetched TEXT NOT NULL,
    bytes_fetched BIGINT NOT NULL,
    ts_ms BIGINT NOT NULL
);
CREATE INDEX placement_by_time ON placement_decisions (gateway, analytic, ts_ms);

CREATE TABLE allocation_decisions (
    gateway TEXT NOT NULL,
    analytic TEXT NOT NULL,
    knob DOUBLE PRECISION NOT NULL,
    rate_bps BIGINT NOT NULL,
    algorithm TEXT NOT NULL,
    ts_ms BIGINT NOT NULL
);
CREATE INDEX allocation_by_time ON allocation_decisions (gateway, analytic, ts_ms);

CREATE TABLE models (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    label TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    metrics TEXT NOT NULL,
    body TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
