//! Persistent state (clients, users, tokens, authorization codes, plugin key-value data)
//! behind one closed enum of backends. This file knows no SQL: each operation matches
//! on the backend and delegates to `store/sqlite.rs` or `store/postgres.rs`, which
//! hold what differs between the two and expand the statements they share from
//! `store/sql.rs` (and, for dynamic client registration, `store/registration.rs`);
//! `store/sessions.rs` puts the login sessions in the same database.

mod admin_token;
mod group_commit;
mod instances;
mod manage;
mod postgres;
mod pushed_request;
mod sessions;
mod sql;
mod sqlite;

#[cfg(test)]
mod tests;

use std::fmt;

pub use admin_token::AdminTokenRow;
pub use postgres::{PostgresStore, ReloadRequests};
pub use pushed_request::PushedRequest;

pub use sessions::SessionBackend;
pub use sqlite::SqliteStore;
use sqlx::SqlitePool;

/// How long after a refresh token was rotated a second rotation of it counts
/// as the loser of a concurrent race rather than as reuse, in seconds.
///
/// Only [`Store::rotate_refresh`] applies it, to callers that saw the token
/// active in [`Store::find_refresh`] and then lost the race: they get
/// [`RotateOutcome::Unknown`] and the winner's family stays valid. Reuse
/// noticed by [`Store::find_refresh`] revokes the family whatever the time.
pub const ROTATION_RACE_WINDOW: i64 = 10;

/// `$call` on the backend of `$store`, named `$s`: the dispatch of every
/// operation both backends have.
macro_rules! on_backend {
    ($store:expr, $s:ident => $call:expr) => {
        match $store {
            Store::Sqlite($s) => $call,
            Store::Postgres($s) => $call,
        }
    };
}

mod registration;

pub use registration::{InitialAccessToken, RegisterOutcome};

/// The storage backend. Cloning is cheap: backends hold a connection pool.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

/// A registered client, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    /// SHA-256 of the client secret ([`crate::secret::token_hash`]); `None` for public clients.
    pub secret_hash: Option<Vec<u8>>,
    pub name: Option<String>,
    /// RFC 7591 `client_uri`: a page about the client, shown on the consent page.
    pub client_uri: Option<String>,
    /// Matched later as exact strings, so stored exactly as registered.
    pub redirect_uris: Vec<String>,
    /// RFC 7591 `grant_types` words or extension grant URIs.
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub public: bool,
    /// A trusted client skips the consent screen (but for public native
    /// clients, RFC 8252 §8.6).
    pub trusted: bool,
    /// A resource server: may introspect other clients' access tokens (RFC 7662 §4).
    pub introspection: bool,
    pub created_at: i64,
    /// How the client authenticates, and what it verifies with.
    pub auth: ClientAuth,
    /// RFC 8707: the resources (absolute URIs) the client may ask tokens for;
    /// they are also the audience of its tokens when it asks for none.
    pub resources: Vec<String>,
    /// How the client's access tokens look (RFC 9068 for [`AccessTokenFormat::Jwt`]).
    pub access_token_format: AccessTokenFormat,
    /// OpenID Connect RP-Initiated Logout 1.0: where `/end_session` may send
    /// the browser afterwards; matched as exact strings, so stored as registered.
    pub post_logout_redirect_uris: Vec<String>,
    /// OpenID Connect Registration §2 `id_token_signed_response_alg`: the JWS
    /// algorithm of the client's ID tokens; `None` means RS256.
    pub id_token_signed_response_alg: Option<String>,
    /// The profile whose rules the client is held to (`client add --profile`).
    pub profile: Option<crate::oauth::profile::Profile>,
    /// RFC 9126 §6: the client's authorization requests must be pushed
    /// (`POST /par`); a request sent to `/authorize` directly is refused.
    pub require_pushed_authorization_requests: bool,
    /// RFC 9449 §5.2 `dpop_bound_access_tokens` (`client add --require-dpop`,
    /// column `require_dpop`): the token endpoint refuses the client's
    /// requests without a DPoP proof, so it never gets a bearer token.
    pub dpop_bound_access_tokens: bool,
}

/// A client's authentication method and what the server verifies it with,
/// beyond the secret's hash ([`Client::secret_hash`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientAuth {
    /// RFC 7591 `token_endpoint_auth_method`; `None` for a client registered
    /// without one: a confidential client presents its secret by Basic or in
    /// the body, a public one `none`.
    pub method: Option<crate::oauth::client_auth::AuthMethod>,
    /// `private_key_jwt`: the registered JWK Set of public keys (JSON text,
    /// validated at registration by [`crate::client_assertion::parse_jwks`]).
    pub jwks: Option<String>,
    /// `client_secret_jwt`: the client secret, the HMAC key of its
    /// assertions, sealed under the key-encryption key
    /// ([`crate::keys::KeyEncryptionKey::seal_client_secret`]).
    pub secret_sealed: Option<Vec<u8>>,
    /// The secret a rotation replaced, still accepted until its grace ends.
    pub previous_secret: Option<PreviousSecret>,
}

/// A rotated-out client secret during its grace period (`client
/// rotate-secret --grace`): only its SHA-256, like the current one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreviousSecret {
    pub secret_hash: Vec<u8>,
    /// The first second at which it is no longer accepted.
    pub expires_at: i64,
}

/// The form of a client's access tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AccessTokenFormat {
    /// A random string only the server can look up (`/introspect`).
    #[default]
    Opaque,
    /// An RFC 9068 JWT a resource server checks against the JWKS.
    Jwt,
}

impl AccessTokenFormat {
    /// The word `client add --access-token-format` takes and the store keeps.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opaque => "opaque",
            Self::Jwt => "jwt",
        }
    }

    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "opaque" => Some(Self::Opaque),
            "jwt" => Some(Self::Jwt),
            _ => None,
        }
    }
}

/// A user of the built-in login form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub username: String,
    /// The stable `sub`: random at registration and never reused, so renaming
    /// or deleting a user never hands their subject to someone else.
    pub subject: String,
    /// argon2id PHC string ([`crate::secret::hash_password`]).
    pub password_hash: String,
    pub created_at: i64,
    /// OpenID Connect claims (`name`, `email`, …), typed as
    /// `grantbox_protocol::openid::claims` parses them.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// When an operator disabled the user; a disabled user cannot sign in.
    pub disabled_at: Option<i64>,
}

/// A remembered consent: the scope `subject` approved for `client_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consent {
    pub subject: String,
    pub client_id: String,
    pub scope: Vec<String>,
    pub granted_at: i64,
}

/// An operator change to record (`manage.rs` writes one per change).
/// `before` and `after` are JSON documents that never hold a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuditRecord {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A stored audit record, numbered in the order written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A running `grantbox serve` sharing the database, as it registered
/// itself (`serve.rs`); `grantbox instances` lists them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Instance {
    /// Random per process, chosen at start.
    pub id: String,
    /// The public listener's bound address.
    pub address: String,
    /// The admin listener's bound address, when it listens.
    pub admin_address: Option<String>,
    /// The `grantbox` version it runs.
    pub version: String,
    /// The fingerprint of the plugin set it serves (`cluster.rs`).
    pub plugins: String,
    pub started_at: i64,
    /// Its last heartbeat; older than a few intervals means stale.
    pub heartbeat_at: i64,
}

/// What one instance answered to a cluster reload request.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReloadOutcome {
    pub request_id: String,
    pub instance_id: String,
    /// Whether the new plugin set loaded and now serves.
    pub ok: bool,
    /// The fingerprint of the set it serves afterwards (the old one on error).
    pub plugins: String,
    /// Why the reload was refused.
    pub error: Option<String>,
    pub at: i64,
}

/// Which audit records [`Store::list_audit`] returns: all bounds optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Records at or after this time.
    pub since: Option<i64>,
    /// Records before this time.
    pub until: Option<i64>,
    /// Records by this actor (as stored, e.g. `cli`, `admin-token:ID`).
    pub actor: Option<String>,
    /// At most this many, the newest.
    pub limit: Option<i64>,
}

/// Whether a token is an access token or a refresh token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    Access,
    Refresh,
}

/// A token to store. Its plaintext is never stored, only `token_hash`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewToken {
    pub token_hash: [u8; 32],
    pub kind: TokenKind,
    pub client_id: String,
    /// `None` for tokens not issued to a user (client credentials).
    pub subject: Option<String>,
    /// Scope tokens; none may be empty or contain whitespace.
    pub scope: Vec<String>,
    /// The family: one per authorization, kept across refresh rotations, so
    /// that revoking it revokes everything the authorization produced.
    pub grant_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// Refresh tokens: the absolute end of the family, which rotation keeps.
    pub grant_expires_at: Option<i64>,
    /// Where the token may be used (RFC 8693 §2.1 `audience`/`resource`,
    /// introspected as `aud`); empty for no restriction.
    pub audience: Vec<String>,
    /// The acting party of a delegation (RFC 8693 §4.1 `act`).
    pub actor: Option<String>,
    /// The JWK Thumbprint of the DPoP key the token is bound to (RFC 9449
    /// §6, `cnf.jkt`); `None` for a bearer token.
    pub dpop_jkt: Option<String>,
}

/// The token families of `tokens`, sorted, each once (the order in which
/// PostgreSQL locks them, so that two writers cannot deadlock).
fn distinct_grant_ids<'a>(tokens: impl IntoIterator<Item = &'a NewToken>) -> Vec<&'a str> {
    let mut grant_ids: Vec<&str> = tokens.into_iter().map(|t| t.grant_id.as_str()).collect();
    grant_ids.sort_unstable();
    grant_ids.dedup();
    grant_ids
}

/// The new tokens of a rotation must continue the rotated token's family.
fn same_family(old_grant_id: &str, new: &[NewToken]) -> Result<(), StoreError> {
    match new.iter().find(|t| t.grant_id != old_grant_id) {
        Some(stray) => Err(StoreError::new(
            StoreErrorKind::Other,
            format!(
                "new token of grant `{}` cannot replace a refresh token of grant `{}`",
                stray.grant_id, old_grant_id
            ),
        )),
        None => Ok(()),
    }
}

/// Where the tokens of [`Store::insert_tokens`] come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantOrigin {
    /// A grant minted for this request (client credentials, password, ...):
    /// no code carries its id, so no replay can race the insert, and one
    /// multi-row `INSERT` outside any explicit transaction is all it takes.
    New,
    /// A grant that already exists: continued from a redeemed authorization
    /// code, or joined by a token exchange. Its code may be replayed between
    /// redemption and this insert, so the insert checks for that in the same
    /// transaction (RFC 6749 §4.1.2).
    Existing,
}

/// A stored token with its revocation state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    pub token_hash: [u8; 32],
    pub kind: TokenKind,
    pub client_id: String,
    pub subject: Option<String>,
    pub scope: Vec<String>,
    pub grant_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub grant_expires_at: Option<i64>,
    pub audience: Vec<String>,
    pub actor: Option<String>,
    pub revoked_at: Option<i64>,
    /// Refresh tokens only: when it was exchanged for a new pair.
    pub rotated_at: Option<i64>,
    /// See [`NewToken::dpop_jkt`].
    pub dpop_jkt: Option<String>,
}

/// An authorization code to store. Its plaintext is never stored, only `code_hash`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCode {
    pub code_hash: [u8; 32],
    pub client_id: String,
    pub subject: String,
    /// The redirect URI the code was sent to, which the token request must repeat
    /// (RFC 6749 §4.1.3).
    pub redirect_uri: String,
    pub scope: Vec<String>,
    /// Name/value pairs the grant plugin keeps with the code (PKCE challenge, nonce, ...).
    pub data: Vec<(String, String)>,
    /// The family the tokens issued for this code will belong to.
    pub grant_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// RFC 8707 §2.2: the resources the authorization allows the token
    /// request to ask for (bound by the host, never by the plugin).
    pub resources: Vec<String>,
    /// RFC 9449 §10: the `dpop_jkt` of the authorization request; the token
    /// request redeeming the code must carry a proof by that key.
    pub dpop_jkt: Option<String>,
}

/// The sign-in record of a token family (OpenID Connect Core §2): who
/// approved the authorization its code was issued for, and when and how they
/// signed in. Every ID token of the family states it, also after refreshes
/// (§12.2: the original `auth_time`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignIn {
    /// The token family (the code's `grant_id`).
    pub grant_id: String,
    /// `users.subject` of the user who signed in.
    pub subject: String,
    pub client_id: String,
    pub auth_time: i64,
    /// RFC 8176 method references, e.g. `pwd`.
    pub amr: Vec<String>,
    pub acr: Option<String>,
    /// When no token of the family can be alive any more (the code lifetime
    /// plus the refresh token absolute lifetime from the code's issue).
    pub expires_at: i64,
}

/// A sign-in record with the signed-in user's claims as stored now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundSignIn {
    pub sign_in: SignIn,
    /// The user's OpenID Connect claims; `None` when the user was removed or
    /// disabled since, so no ID token speaks for them any more.
    pub claims: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A stored authorization code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeRecord {
    pub code_hash: [u8; 32],
    pub client_id: String,
    pub subject: String,
    pub redirect_uri: String,
    pub scope: Vec<String>,
    pub data: Vec<(String, String)>,
    pub grant_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub redeemed_at: Option<i64>,
    /// See [`NewCode::resources`].
    pub resources: Vec<String>,
    /// See [`NewCode::dpop_jkt`].
    pub dpop_jkt: Option<String>,
}

/// What [`Store::redeem_code`] found.
// Returned once per token request and matched at once, never stored: boxing
// the record would cost an allocation for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedeemOutcome {
    /// This call redeemed the code; no other call ever will.
    Redeemed(CodeRecord),
    /// No such code, or it was issued to another client.
    Unknown,
    /// The code was never redeemed and has expired.
    Expired,
    /// The code was redeemed before. Every token of its grant has been revoked
    /// and tokens inserted for that grant later are born revoked (RFC 6749 §4.1.2).
    Replayed,
}

/// What [`Store::rotate_refresh`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The old refresh token (returned, now marked rotated) was exchanged and
    /// the new tokens were inserted, in one transaction.
    Rotated(Box<TokenRecord>),
    /// No such refresh token of this client, it is revoked, or another call
    /// rotated it less than [`ROTATION_RACE_WINDOW`] seconds ago (the loser of
    /// a concurrent race: nothing is inserted and nothing revoked).
    Unknown,
    /// The token was neither rotated nor revoked but has expired.
    Expired,
    /// The token had been rotated earlier: its whole family is now revoked
    /// (RFC 9700 §4.14.2).
    Reused,
}

/// What a key-value namespace holds (see [`Store::kv_usage`]); sizes count
/// the bytes of each key and its value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KvUsage {
    /// Live keys of the namespace.
    pub keys: u64,
    /// Bytes of the live keys and values of the namespace.
    pub bytes: u64,
    /// Bytes of the asked-for key and its value, when that key is live.
    pub key_bytes: Option<u64>,
}

/// A storage failure, with a portable [`StoreErrorKind`] so callers never
/// parse database codes.
///
/// Displays as the failed operation naming its subject, then the driver's
/// error (`cannot read client `x`: ...`), so that logging it with `%` says
/// everything; for that reason the driver's error is not also its `source()`.
#[derive(Debug)]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
    cause: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// The kind of a [`StoreError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreErrorKind {
    /// A unique key is taken (duplicate client id, username, token hash).
    Conflict,
    /// The database cannot be reached or used right now (IO, lock or pool
    /// timeout, disk full); retrying later may succeed.
    Unavailable,
    /// Stored data cannot be decoded, or the database file is damaged.
    Corrupt,
    /// Anything else, including invalid arguments and failed migrations.
    Other,
}

impl Store {
    /// Opens (creating if missing) and migrates the database at `url`.
    ///
    /// `postgres://` and `postgresql://` URLs select PostgreSQL (the database
    /// must exist; `pool_size=N` and `statement_timeout=MS` query parameters
    /// set the pool and the per-statement limit). Otherwise SQLite:
    /// `sqlite://path`, `sqlite:path`, `sqlite::memory:` or a plain file path.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Store::Postgres(PostgresStore::open(url).await?));
        }
        Ok(Store::Sqlite(SqliteStore::open(url).await?))
    }

    /// The backend's name, for logs and health reports.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgresql",
        }
    }

    /// Checks that the database answers a trivial query (for health checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_backend!(self, s => s.ping().await)
    }

    /// The SQLite pool, for components that share it (the session store).
    pub fn sqlite_pool(&self) -> Option<&SqlitePool> {
        match self {
            Store::Sqlite(s) => Some(s.pool()),
            Store::Postgres(_) => None,
        }
    }

    /// The PostgreSQL pool, for components that share it (the session store).
    pub fn postgres_pool(&self) -> Option<&sqlx::PgPool> {
        match self {
            Store::Sqlite(_) => None,
            Store::Postgres(s) => Some(s.pool()),
        }
    }

    /// Waits for connections in use to return and closes them all. Clones of
    /// this store fail with [`StoreErrorKind::Unavailable`] afterwards.
    pub async fn close(&self) {
        on_backend!(self, s => s.close().await)
    }

    /// Inserts a client; an existing `client_id` is a [`StoreErrorKind::Conflict`].
    pub async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        on_backend!(self, s => s.insert_client(client).await)
    }

    pub async fn find_client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        on_backend!(self, s => s.find_client(client_id).await)
    }

    /// All clients, ordered by `client_id`.
    pub async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        on_backend!(self, s => s.list_clients().await)
    }

    /// The scope a user approved for a client, if any (remembered consent).
    pub async fn find_consent(
        &self,
        subject: &str,
        client_id: &str,
    ) -> Result<Option<Vec<String>>, StoreError> {
        on_backend!(self, s => s.find_consent(subject, client_id).await)
    }

    /// Records that a user approved `scope` for a client, replacing an earlier consent.
    pub async fn save_consent(
        &self,
        subject: &str,
        client_id: &str,
        scope: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        on_backend!(self, s => s.save_consent(subject, client_id, scope, now).await)
    }

    /// Inserts a user; an existing username is a [`StoreErrorKind::Conflict`].
    pub async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        on_backend!(self, s => s.insert_user(user).await)
    }

    pub async fn find_user(&self, username: &str) -> Result<Option<User>, StoreError> {
        on_backend!(self, s => s.find_user(username).await)
    }

    /// Replaces a user's claims; false when there is no such user.
    /// The user whose stable `sub` this is (`users.subject`), disabled or not.
    pub async fn find_user_by_subject(&self, subject: &str) -> Result<Option<User>, StoreError> {
        on_backend!(self, s => s.find_user_by_subject(subject).await)
    }

    pub async fn update_user_claims(
        &self,
        username: &str,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<bool, StoreError> {
        on_backend!(self, s => s.update_user_claims(username, claims).await)
    }

    /// Inserts tokens atomically, so an access and refresh pair lands
    /// together or not at all. Tokens whose grant had its code replayed are
    /// stored already revoked.
    pub async fn insert_tokens(
        &self,
        tokens: &[NewToken],
        origin: GrantOrigin,
    ) -> Result<(), StoreError> {
        on_backend!(self, s => s.insert_tokens(tokens, origin).await)
    }

    /// The token with this hash if it is active at `now`: not expired, not
    /// revoked and, for a refresh token, not rotated.
    pub async fn find_token(
        &self,
        token_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<TokenRecord>, StoreError> {
        on_backend!(self, s => s.find_token(token_hash, now).await)
    }

    /// Revokes every token of the family `grant_id`; returns how many were
    /// still unrevoked.
    pub async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<u64, StoreError> {
        on_backend!(self, s => s.revoke_grant(grant_id, now).await)
    }

    /// Revokes a token of `client_id` (RFC 7009): an access token alone, a
    /// refresh token with its whole family. `false` when this client has no
    /// token with that hash; the endpoint answers 200 either way.
    pub async fn revoke_token(
        &self,
        token_hash: &[u8; 32],
        client_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        on_backend!(self, s => s.revoke_token(token_hash, client_id, now).await)
    }

    /// Inserts an authorization code; a duplicate hash is a [`StoreErrorKind::Conflict`].
    pub async fn insert_code(&self, code: &NewCode) -> Result<(), StoreError> {
        on_backend!(self, s => s.insert_code(code).await)
    }

    /// Stores the sign-in record of a token family; a second record for the
    /// same family is a [`StoreErrorKind::Conflict`].
    pub async fn insert_sign_in(&self, sign_in: &SignIn) -> Result<(), StoreError> {
        on_backend!(self, s => s.insert_sign_in(sign_in).await)
    }

    /// The unexpired sign-in record of the family `grant_id`, with the
    /// user's current claims.
    pub async fn find_sign_in(
        &self,
        grant_id: &str,
        now: i64,
    ) -> Result<Option<FoundSignIn>, StoreError> {
        on_backend!(self, s => s.find_sign_in(grant_id, now).await)
    }

    /// Redeems a code for `client_id`, atomically: of any number of concurrent
    /// calls exactly one gets [`RedeemOutcome::Redeemed`]. Presenting a
    /// redeemed code again revokes its grant's tokens ([`RedeemOutcome::Replayed`]).
    pub async fn redeem_code(
        &self,
        code_hash: &[u8; 32],
        client_id: &str,
        now: i64,
    ) -> Result<RedeemOutcome, StoreError> {
        on_backend!(self, s => s.redeem_code(code_hash, client_id, now).await)
    }

    /// The active refresh token of `client_id` with this hash, so the caller
    /// can read its family and scope before building the new pair for
    /// [`Store::rotate_refresh`].
    ///
    /// A refresh token that was already rotated is reuse (RFC 9700 §4.14.2):
    /// this call revokes its whole family and returns `None`, so the obvious
    /// "`None` means `invalid_grant`" caller is safe.
    pub async fn find_refresh(
        &self,
        token_hash: &[u8; 32],
        client_id: &str,
        now: i64,
    ) -> Result<Option<TokenRecord>, StoreError> {
        on_backend!(self, s => s.find_refresh(token_hash, client_id, now).await)
    }

    /// Atomically marks the refresh token rotated and inserts `new`, which must
    /// all carry the old token's `grant_id` (else a [`StoreErrorKind::Other`]
    /// error and nothing changes). Of concurrent rotations exactly one wins.
    pub async fn rotate_refresh(
        &self,
        token_hash: &[u8; 32],
        client_id: &str,
        now: i64,
        new: &[NewToken],
    ) -> Result<RotateOutcome, StoreError> {
        on_backend!(self, s => s.rotate_refresh(token_hash, client_id, now, new).await)
    }

    /// The value under `namespace`/`key`, unless absent or expired at `now`.
    pub async fn kv_get(
        &self,
        namespace: &str,
        key: &str,
        now: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        on_backend!(self, s => s.kv_get(namespace, key, now).await)
    }

    /// Sets the value, replacing any previous one; `expires_at: None` never expires.
    pub async fn kv_set(
        &self,
        namespace: &str,
        key: &str,
        value: &[u8],
        expires_at: Option<i64>,
    ) -> Result<(), StoreError> {
        on_backend!(self, s => s.kv_set(namespace, key, value, expires_at).await)
    }

    /// Sets the value only if the key is absent or expired at `now`; `true`
    /// when it was set. Atomic, so usable as a lock or a replay guard.
    pub async fn kv_insert_new(
        &self,
        namespace: &str,
        key: &str,
        value: &[u8],
        expires_at: Option<i64>,
        now: i64,
    ) -> Result<bool, StoreError> {
        on_backend!(self, s => s.kv_insert_new(namespace, key, value, expires_at, now).await)
    }

    /// Deletes the key; `true` when a row (even an expired one) was deleted.
    pub async fn kv_delete(&self, namespace: &str, key: &str) -> Result<bool, StoreError> {
        on_backend!(self, s => s.kv_delete(namespace, key).await)
    }

    /// What a key-value namespace holds at `now` (expired entries not
    /// counted), and the size of `key`'s live entry, for the plugin quotas.
    pub async fn kv_usage(
        &self,
        namespace: &str,
        key: &str,
        now: i64,
    ) -> Result<KvUsage, StoreError> {
        on_backend!(self, s => s.kv_usage(namespace, key, now).await)
    }

    /// Deletes codes, tokens and kv entries whose expiry is at or before
    /// `now`, in small batches so the write lock is never held long; returns
    /// how many rows were deleted.
    /// Uses the `jti` of `client_id`'s assertion once (RFC 7523 §3 item 7):
    /// `false` when an assertion with that `jti` was accepted before and has
    /// not expired. Kept until `expires_at`, then purged; shared by every
    /// instance on the database.
    pub async fn use_client_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        on_backend!(self, s => s.use_client_assertion(client_id, jti, expires_at, now).await)
    }

    /// Uses the `jti` of a DPoP proof by the key `jkt` once (RFC 9449 §11.1):
    /// `false` when a proof of that key with that `jti` was accepted before
    /// and its `iat` is still in the window. Kept until `expires_at`, then
    /// purged; shared by every instance on the database.
    pub async fn use_dpop_proof(
        &self,
        jkt: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        on_backend!(self, s => s.use_dpop_proof(jkt, jti, expires_at, now).await)
    }

    /// Records that the authorization transaction with this id hash was
    /// decided; `false` when it already was. Kept until `expires_at` (the
    /// transaction's own expiry), then purged.
    pub async fn claim_decision(
        &self,
        transaction_hash: &[u8; 32],
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        on_backend!(self, s => s.claim_decision(transaction_hash, expires_at).await)
    }

    pub async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        on_backend!(self, s => s.purge_expired(now).await)
    }
}

/// The operator's operations (`manage.rs` is their one caller): changes to
/// clients and users, consents, kill switches and the audit trail.
impl Store {
    /// Replaces a client's registration (everything but its id, secret and
    /// creation time); `false` when there is no such client.
    pub async fn update_client(&self, client: &Client) -> Result<bool, StoreError> {
        on_backend!(self, s => s.update_client(client).await)
    }

    /// Sets a client's secret hash, keeping `previous` (the old one, until
    /// its grace ends) or forgetting any; `false` when there is no such client.
    pub async fn set_client_secret(
        &self,
        client_id: &str,
        secret_hash: &[u8],
        previous: Option<&PreviousSecret>,
    ) -> Result<bool, StoreError> {
        on_backend!(self, s => s.set_client_secret(client_id, secret_hash, previous).await)
    }

    /// Revokes every token and every unredeemed code of the families `client_id`
    /// holds, then deletes the client with its consents; `None` when there is
    /// no such client, else how many tokens were still unrevoked.
    pub async fn delete_client(
        &self,
        client_id: &str,
        now: i64,
    ) -> Result<Option<u64>, StoreError> {
        on_backend!(self, s => s.delete_client(client_id, now).await)
    }

    /// Revokes every token of every family `client_id` holds, and its codes
    /// (a code redeemed later is a replay); returns how many tokens were
    /// still unrevoked.
    pub async fn revoke_client_tokens(&self, client_id: &str, now: i64) -> Result<u64, StoreError> {
        on_backend!(self, s => s.revoke_client_tokens(client_id, now).await)
    }

    /// [`Store::revoke_client_tokens`] for the tokens issued to the user `subject`.
    pub async fn revoke_subject_tokens(&self, subject: &str, now: i64) -> Result<u64, StoreError> {
        on_backend!(self, s => s.revoke_subject_tokens(subject, now).await)
    }

    /// How many times a registered client was changed or removed (not
    /// added): the client cache reads it to know when to forget its entries.
    pub async fn clients_generation(&self) -> Result<i64, StoreError> {
        on_backend!(self, s => s.clients_generation().await)
    }

    /// All users, ordered by username.
    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        on_backend!(self, s => s.list_users().await)
    }

    /// Replaces a user's password hash; `false` when there is no such user.
    pub async fn set_user_password(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        on_backend!(self, s => s.set_user_password(username, password_hash).await)
    }

    /// Disables (`Some(time)`) or enables (`None`) a user; `false` when there
    /// is no such user.
    pub async fn set_user_disabled(
        &self,
        username: &str,
        disabled_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        on_backend!(self, s => s.set_user_disabled(username, disabled_at).await)
    }

    /// Revokes the user's tokens and codes, deletes their consents and then
    /// the user; `None` when there is no such user, else how many tokens
    /// were still unrevoked.
    pub async fn delete_user(&self, username: &str, now: i64) -> Result<Option<u64>, StoreError> {
        on_backend!(self, s => s.delete_user(username, now).await)
    }

    /// The consents of the user `subject`, ordered by client id.
    pub async fn list_consents(&self, subject: &str) -> Result<Vec<Consent>, StoreError> {
        on_backend!(self, s => s.list_consents(subject).await)
    }

    /// Forgets the consent of `subject` for `client_id`; `false` when there was none.
    pub async fn delete_consent(&self, subject: &str, client_id: &str) -> Result<bool, StoreError> {
        on_backend!(self, s => s.delete_consent(subject, client_id).await)
    }

    /// Appends an audit record; returns its id.
    pub async fn insert_audit(&self, record: &NewAuditRecord) -> Result<i64, StoreError> {
        on_backend!(self, s => s.insert_audit(record).await)
    }

    /// The audit records the filter selects, oldest first.
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        on_backend!(self, s => s.list_audit(filter).await)
    }

    /// Writes (or rewrites) an instance's row at its start.
    pub async fn register_instance(&self, instance: &Instance) -> Result<(), StoreError> {
        on_backend!(self, s => s.register_instance(instance).await)
    }

    /// Records a heartbeat of instance `id` and the plugin set it serves;
    /// `false` when its row is gone (purged while it was away).
    pub async fn heartbeat_instance(
        &self,
        id: &str,
        plugins: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        on_backend!(self, s => s.heartbeat_instance(id, plugins, now).await)
    }

    /// Deletes instance `id`'s row (a clean shutdown); `false` when absent.
    pub async fn deregister_instance(&self, id: &str) -> Result<bool, StoreError> {
        on_backend!(self, s => s.deregister_instance(id).await)
    }

    /// Deletes the instances whose last heartbeat is before `heartbeat_before`.
    pub async fn purge_instances(&self, heartbeat_before: i64) -> Result<u64, StoreError> {
        on_backend!(self, s => s.purge_instances(heartbeat_before).await)
    }

    /// Records what this instance answered to reload request `request_id`.
    pub async fn record_reload_outcome(&self, outcome: &ReloadOutcome) -> Result<(), StoreError> {
        on_backend!(self, s => s.record_reload_outcome(outcome).await)
    }

    /// The outcomes recorded so far for reload request `request_id`.
    pub async fn reload_outcomes(
        &self,
        request_id: &str,
    ) -> Result<Vec<ReloadOutcome>, StoreError> {
        on_backend!(self, s => s.reload_outcomes(request_id).await)
    }

    /// Listens for cluster reload requests (PostgreSQL `LISTEN`); `None` on
    /// SQLite, where one instance uses the database and `--cluster`
    /// reloads it through its admin listener.
    pub async fn reload_requests(&self) -> Result<Option<ReloadRequests>, StoreError> {
        match self {
            Store::Sqlite(_) => Ok(None),
            Store::Postgres(s) => s.reload_requests().await.map(Some),
        }
    }

    /// Sends reload request `request_id` to every listening instance
    /// (PostgreSQL `NOTIFY`); `false` on SQLite, which has no such channel.
    pub async fn request_reload(&self, request_id: &str) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(_) => Ok(false),
            Store::Postgres(s) => s.request_reload(request_id).await.map(|()| true),
        }
    }

    /// Every registered instance, the oldest first.
    pub async fn list_instances(&self) -> Result<Vec<Instance>, StoreError> {
        on_backend!(self, s => s.list_instances().await)
    }
}

/// A failed sign-in counter (see `ratelimit.rs` for what the counters name):
/// how many failures since it last started again, and when the last was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginFailures {
    pub counter: String,
    pub failures: i64,
    pub last_failure_at: i64,
}

/// Failed sign-in counters, in the database so that every instance on one
/// PostgreSQL database shares them and SQLite keeps them across a restart.
/// A counter whose last failure is at or before `reset_before` counts as zero.
impl Store {
    /// The named counters that are not reset at `reset_before`; absent ones
    /// have no failures.
    pub async fn find_login_failures(
        &self,
        counters: &[String],
        reset_before: i64,
    ) -> Result<Vec<LoginFailures>, StoreError> {
        if counters.is_empty() {
            return Ok(Vec::new());
        }
        on_backend!(self, s => s.find_login_failures(counters, reset_before).await)
    }

    /// Adds one failure at `now` to each named counter (atomically, so
    /// concurrent instances never lose one), starting again from one where the
    /// last failure is at or before `reset_before`; returns the counters after.
    pub async fn add_login_failure(
        &self,
        counters: &[String],
        now: i64,
        reset_before: i64,
    ) -> Result<Vec<LoginFailures>, StoreError> {
        let mut distinct: Vec<&str> = Vec::with_capacity(counters.len());
        for counter in counters {
            if !distinct.contains(&counter.as_str()) {
                distinct.push(counter);
            }
        }
        if distinct.is_empty() {
            return Ok(Vec::new());
        }
        on_backend!(self, s => s.add_login_failure(&distinct, now, reset_before).await)
    }

    /// Forgets a counter, e.g. a username and address that just signed in.
    pub async fn clear_login_failures(&self, counter: &str) -> Result<(), StoreError> {
        on_backend!(self, s => s.clear_login_failures(counter).await)
    }

    /// Deletes the counters whose last failure is at or before
    /// `reset_before`, in small batches; returns how many were deleted.
    pub async fn purge_login_failures(&self, reset_before: i64) -> Result<u64, StoreError> {
        on_backend!(self, s => s.purge_login_failures(reset_before).await)
    }
}

/// A signing key as stored (`keys.rs` gives it meaning): the public JWK,
/// the private key sealed under the key-encryption key, that key's check
/// value, and the key's times (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    pub public_jwk: String,
    pub private_sealed: Vec<u8>,
    pub kek_check: String,
    pub created_at: i64,
    pub activates_at: i64,
    pub retired_at: Option<i64>,
    pub published_until: Option<i64>,
}

/// The host's signing keys, shared by every instance on one database.
impl Store {
    /// Stores a new key; an existing `kid` is a [`StoreErrorKind::Conflict`].
    pub async fn insert_signing_key(&self, key: &SigningKeyRow) -> Result<(), StoreError> {
        on_backend!(self, s => s.insert_signing_key(key).await)
    }

    /// Stores `key` unless a key of its algorithm that is not retired exists
    /// (the first key of an algorithm, made at start); whether it was
    /// stored. Instances starting at once on one PostgreSQL store one key
    /// per algorithm between them: the check and the insert hold a
    /// transaction lock per algorithm (`pg_advisory_xact_lock`).
    pub async fn insert_first_signing_key(&self, key: &SigningKeyRow) -> Result<bool, StoreError> {
        on_backend!(self, s => s.insert_first_signing_key(key).await)
    }

    /// Every stored key, oldest first.
    pub async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRow>, StoreError> {
        on_backend!(self, s => s.list_signing_keys().await)
    }

    /// Retires `kid` at `retired_at` (it stops signing then) and unpublishes
    /// it at `published_until`; `false` when there is no such key or it was
    /// already retired at or before `retired_at`.
    pub async fn retire_signing_key(
        &self,
        kid: &str,
        retired_at: i64,
        published_until: i64,
    ) -> Result<bool, StoreError> {
        on_backend!(self, s => s.retire_signing_key(kid, retired_at, published_until).await)
    }
}

impl TokenRecord {
    /// Not expired at `now`, not revoked and not rotated.
    pub fn is_active(&self, now: i64) -> bool {
        self.expires_at > now && self.revoked_at.is_none() && self.rotated_at.is_none()
    }
}

impl TokenKind {
    /// The word stored in the database and used in introspection (`access`, `refresh`).
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }

    /// The inverse of [`TokenKind::as_str`].
    pub fn parse(word: &str) -> Option<TokenKind> {
        match word {
            "access" => Some(TokenKind::Access),
            "refresh" => Some(TokenKind::Refresh),
            _ => None,
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// Encodings shared by every backend (they are not SQL): scopes are stored
// space-separated, lists as JSON text arrays, hashes as 32-byte blobs.

/// Joins scope tokens with single spaces, refusing tokens that would not
/// survive the round trip through [`split_scope`].
fn join_scope(scope: &[String]) -> Result<String, StoreError> {
    if let Some(bad) = scope
        .iter()
        .find(|s| s.is_empty() || s.chars().any(char::is_whitespace))
    {
        return Err(StoreError::new(
            StoreErrorKind::Other,
            format!("scope token {bad:?} is empty or contains whitespace"),
        ));
    }
    Ok(scope.join(" "))
}

/// An audience as stored: `NULL` for none, else a JSON array.
fn audience_to_column(audience: &[String]) -> Result<Option<String>, StoreError> {
    if audience.is_empty() {
        return Ok(None);
    }
    to_json(audience, "token audience").map(Some)
}

fn audience_from_column(column: Option<String>) -> Result<Vec<String>, StoreError> {
    match column {
        Some(text) => from_json(&text, "token audience"),
        None => Ok(Vec::new()),
    }
}

fn split_scope(scope: &str) -> Vec<String> {
    scope.split_whitespace().map(str::to_owned).collect()
}

fn to_json<T: serde::Serialize + ?Sized>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| {
        StoreError::with_cause(StoreErrorKind::Other, format!("cannot encode {what}"), e)
    })
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::with_cause(
            StoreErrorKind::Corrupt,
            format!("stored {what} is not valid json"),
            e,
        )
    })
}

fn to_hash(bytes: Vec<u8>, what: &str) -> Result<[u8; 32], StoreError> {
    let len = bytes.len();
    bytes.try_into().map_err(|_| {
        StoreError::new(
            StoreErrorKind::Corrupt,
            format!("stored {what} is {len} bytes, not 32"),
        )
    })
}

fn to_kind(word: &str) -> Result<TokenKind, StoreError> {
    TokenKind::parse(word).ok_or_else(|| {
        StoreError::new(
            StoreErrorKind::Corrupt,
            format!("stored token kind {word:?} is neither access nor refresh"),
        )
    })
}

impl StoreError {
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    pub(crate) fn new(kind: StoreErrorKind, message: impl Into<String>) -> StoreError {
        StoreError {
            kind,
            message: message.into(),
            cause: None,
        }
    }

    pub(crate) fn with_cause(
        kind: StoreErrorKind,
        message: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError {
            kind,
            message: message.into(),
            cause: Some(Box::new(cause)),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Some(cause) => write!(f, "{}: {cause}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for StoreError {}
