-- Failed sign-in counters for login throttling (`ratelimit.rs`), shared by
-- the login page and the password grant and, on PostgreSQL, by every
-- instance. `counter` names what is counted: a username and address
-- together, a username over all addresses, or an address over all
-- usernames. A counter starts again from one when its last failure is
-- older than the reset time; housekeeping deletes such rows.
CREATE TABLE login_failures (
    counter         TEXT    NOT NULL PRIMARY KEY,
    failures        INTEGER NOT NULL,
    last_failure_at INTEGER NOT NULL
);

CREATE INDEX login_failures_last_failure_at ON login_failures (last_failure_at);
