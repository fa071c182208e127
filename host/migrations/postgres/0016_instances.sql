-- The server instances that share this database (`grantbox instances`).
-- Mirrors sqlite/0016_instances.sql.
-- Each `grantbox serve` writes its row at start (`id` is random per
-- process), refreshes `heartbeat_at` and its plugin set fingerprint from its
-- housekeeping task, and deletes the row on a clean shutdown. A row whose
-- heartbeat is older than a few intervals is shown as stale; a stale row is
-- deleted by any instance's housekeeping after a day. Times are Unix seconds.
CREATE TABLE instances (
    id            TEXT   NOT NULL PRIMARY KEY,
    address       TEXT   NOT NULL,
    admin_address TEXT,
    version       TEXT   NOT NULL,
    plugins       TEXT   NOT NULL,
    started_at    BIGINT NOT NULL,
    heartbeat_at  BIGINT NOT NULL
);

-- `grantbox plugins reload --cluster` sends `NOTIFY grantbox_plugins_reload`
-- with a request id; each instance that reloaded its plugins for request
-- `request_id` writes its outcome: `ok`, the fingerprint of the plugin set it
-- serves afterwards (the new one, or the old one kept after an error), and
-- the error. Deleted by housekeeping after a day.
CREATE TABLE reload_outcomes (
    request_id  TEXT    NOT NULL,
    instance_id TEXT    NOT NULL,
    ok          BOOLEAN NOT NULL,
    plugins     TEXT    NOT NULL,
    error       TEXT,
    at          BIGINT  NOT NULL,
    PRIMARY KEY (request_id, instance_id)
);
