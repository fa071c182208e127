//! The SQL both backends run: every statement whose text is the same on SQLite
//! and PostgreSQL (sqlx binds `$N` placeholders on both), the operations that
//! run them, one decoder per row type, and the portable error kinds.
//!
//! The operations are the body of [`shared_operations!`], which `store/sqlite.rs`
//! and `store/postgres.rs` each expand once with their own sqlx database type. A
//! macro rather than functions generic over `sqlx::Database`: Rust does not imply
//! a trait's where clauses, so every generic function would restate a dozen
//! bounds (`for<'q> i64: Encode<'q, DB> + Type<DB>`, one per bound type, the
//! executor and argument bounds, the column index) before saying anything; in the
//! macro the code reads as plain sqlx against one database. What differs stays in
//! the backend files and is named in the macro's documentation.

use super::{StoreError, StoreErrorKind};

/// Rows deleted per statement by the purges, so that each delete holds the
/// write lock (SQLite) or its row locks (PostgreSQL) only briefly and token
/// requests slip in between.
pub(super) const PURGE_BATCH: i64 = 500;

// Column lists as macros so that `concat!` can build `&'static str` statements.
macro_rules! token_columns {
    () => {
        "token_hash, kind, client_id, subject, scope, grant_id, issued_at, expires_at, grant_expires_at, audience, actor, revoked_at, rotated_at, dpop_jkt"
    };
}

macro_rules! code_columns {
    () => {
        "code_hash, client_id, subject, redirect_uri, scope, data, grant_id, issued_at, expires_at, redeemed_at, resources, dpop_jkt"
    };
}

macro_rules! client_columns {
    () => {
        "client_id, secret_hash, name, redirect_uris, grant_types, scopes, public, trusted, created_at, client_uri, introspection, token_endpoint_auth_method, jwks, resources, access_token_format, secret_sealed, previous_secret_hash, previous_secret_expires_at, post_logout_redirect_uris, id_token_signed_response_alg, profile, require_pushed_authorization_requests, require_dpop"
    };
}

macro_rules! signing_key_columns {
    () => {
        "kid, alg, public_jwk, private_sealed, kek_check, created_at, activates_at, retired_at, published_until"
    };
}

pub(super) use {client_columns, code_columns, signing_key_columns, token_columns};

/// The store operations whose SQL is the same on both backends, for the sqlx
/// database `$db`: a module `operations` in the expanding backend file, with
/// the methods of `$store` that `Store` dispatches to, the `TokenWriter` of its
/// `Writer`, and one decoder per row type.
///
/// The expanding backend file provides what differs:
/// - on `$store`: fields `readers` and `writer`, the pools for reads and for
///   writes (one pool twice on PostgreSQL), and `tokens`, the
///   [`GroupCommit`](super::group_commit::GroupCommit) of its token writes;
/// - `Writer`, the writer of that group commit, with a field `pool` and a
///   method `after_write()`;
/// - `BEGIN`, the statement that begins a write transaction;
/// - `LOCK_FAMILY`, the statement that locks a token family until the
///   transaction ends (`$1` the grant id), or `None` where write transactions
///   never run concurrently;
/// - `revoke_replayed(tx, grant_ids)`, the replay check of a batch, whose
///   statement binds the ids as one array or one by one.
macro_rules! shared_operations {
    ($store:ident, $db:ident) => {
        mod operations {
            use sqlx::{$db, QueryBuilder};

            use super::{$store, BEGIN, LOCK_FAMILY, Writer, revoke_replayed};
            use $crate::oauth::client_auth::AuthMethod;
            use $crate::oauth::profile::Profile;
            use $crate::store::group_commit::{Presented, TokenWriter};
            use $crate::store::sql::{
                PURGE_BATCH, client_columns, code_columns, error, insert_error,
                signing_key_columns, token_columns,
            };
            use $crate::store::{
                AccessTokenFormat, Client, ClientAuth, CodeRecord, GrantOrigin, KvUsage, LoginFailures,
                NewCode, NewToken, ROTATION_RACE_WINDOW, RedeemOutcome, RotateOutcome, SigningKeyRow,
                StoreError, StoreErrorKind, TokenKind,
                TokenRecord, User, audience_from_column, audience_to_column, from_json,
                join_scope, same_family, split_scope, to_hash, to_json, to_kind,
            };

            impl $store {
                pub(in $crate::store) async fn ping(&self) -> Result<(), StoreError> {
                    sqlx::query("SELECT 1")
                        .execute(&self.readers)
                        .await
                        .map_err(|e| error("database does not answer", e))?;
                    Ok(())
                }

                pub(in $crate::store) async fn insert_client(
                    &self,
                    client: &Client,
                ) -> Result<(), StoreError> {
                    insert_client_row(&self.writer, client).await
                }

                pub(in $crate::store) async fn find_client(
                    &self,
                    client_id: &str,
                ) -> Result<Option<Client>, StoreError> {
                    let row = sqlx::query(concat!(
                        "SELECT ",
                        client_columns!(),
                        " FROM clients WHERE client_id = $1"
                    ))
                    .bind(client_id)
                    .fetch_optional(&self.readers)
                    .await
                    .map_err(|e| error(format!("cannot read client `{client_id}`"), e))?;
                    row.as_ref().map(client_from_row).transpose()
                }

                pub(in $crate::store) async fn list_clients(
                    &self,
                ) -> Result<Vec<Client>, StoreError> {
                    let rows = sqlx::query(concat!("SELECT ", client_columns!(), " FROM clients"))
                        .fetch_all(&self.readers)
                        .await
                        .map_err(|e| error("cannot list clients", e))?;
                    let mut clients = rows
                        .iter()
                        .map(client_from_row)
                        .collect::<Result<Vec<_>, _>>()?;
                    // Sorted here, in byte order on both backends: PostgreSQL
                    // would sort by the database's collation.
                    clients.sort_unstable_by(|a, b| a.client_id.cmp(&b.client_id));
                    Ok(clients)
                }

                pub(in $crate::store) async fn insert_user(
                    &self,
                    user: &User,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO users (username, password_hash, subject, created_at, claims) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&user.username)
                    .bind(&user.password_hash)
                    .bind(&user.subject)
                    .bind(user.created_at)
                    .bind(to_json(&user.claims, "user claims")?)
                    .execute(&self.writer)
                    .await
                    .map_err(|e| insert_error(format!("user `{}`", user.username), e))?;
                    Ok(())
                }

                pub(in $crate::store) async fn find_user(
                    &self,
                    username: &str,
                ) -> Result<Option<User>, StoreError> {
                    let row = sqlx::query(
                        "SELECT username, password_hash, subject, created_at, claims, disabled_at FROM users \
                         WHERE username = $1",
                    )
                    .bind(username)
                    .fetch_optional(&self.readers)
                    .await
                    .map_err(|e| error(format!("cannot read user `{username}`"), e))?;
                    row.as_ref().map(user_from_row).transpose()
                }

                pub(in $crate::store) async fn find_user_by_subject(
                    &self,
                    subject: &str,
                ) -> Result<Option<User>, StoreError> {
                    let row = sqlx::query(
                        "SELECT username, password_hash, subject, created_at, claims, disabled_at FROM users \
                         WHERE subject = $1",
                    )
                    .bind(subject)
                    .fetch_optional(&self.readers)
                    .await
                    .map_err(|e| error("cannot read a user by subject", e))?;
                    row.as_ref().map(user_from_row).transpose()
                }

                pub(in $crate::store) async fn update_user_claims(
                    &self,
                    username: &str,
                    claims: &serde_json::Map<String, serde_json::Value>,
                ) -> Result<bool, StoreError> {
                    let done = sqlx::query("UPDATE users SET claims = $1 WHERE username = $2")
                        .bind(to_json(claims, "user claims")?)
                        .bind(username)
                        .execute(&self.writer)
                        .await
                        .map_err(|e| error(format!("cannot update user `{username}`"), e))?;
                    Ok(done.rows_affected() == 1)
                }

                pub(in $crate::store) async fn insert_tokens(
                    &self,
                    tokens: &[NewToken],
                    origin: GrantOrigin,
                ) -> Result<(), StoreError> {
                    if tokens.is_empty() {
                        return Ok(());
                    }
                    self.tokens.insert(tokens, origin).await
                }

                pub(in $crate::store) async fn find_token(
                    &self,
                    token_hash: &[u8; 32],
                    now: i64,
                ) -> Result<Option<TokenRecord>, StoreError> {
                    let row = sqlx::query(concat!(
                        "SELECT ",
                        token_columns!(),
                        " FROM tokens WHERE token_hash = $1 \
                          AND revoked_at IS NULL AND rotated_at IS NULL AND expires_at > $2"
                    ))
                    .bind(&token_hash[..])
                    .bind(now)
                    .fetch_optional(&self.readers)
                    .await
                    .map_err(|e| error("cannot read token", e))?;
                    row.as_ref().map(token_from_row).transpose()
                }

                pub(in $crate::store) async fn revoke_grant(
                    &self,
                    grant_id: &str,
                    now: i64,
                ) -> Result<u64, StoreError> {
                    let mut tx = begin_write(&self.writer, "revoke grant").await?;
                    lock_family(&mut tx, grant_id).await?;
                    let revoked = revoke_family(&mut tx, grant_id, now).await?;
                    commit(tx, "revoke grant").await?;
                    Ok(revoked)
                }

                pub(in $crate::store) async fn revoke_token(
                    &self,
                    token_hash: &[u8; 32],
                    client_id: &str,
                    now: i64,
                ) -> Result<bool, StoreError> {
                    let mut tx = begin_write(&self.writer, "revoke token").await?;
                    let row = sqlx::query(
                        "SELECT kind, grant_id FROM tokens \
                         WHERE token_hash = $1 AND client_id = $2",
                    )
                    .bind(&token_hash[..])
                    .bind(client_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| error(format!("cannot read token of client `{client_id}`"), e))?;
                    let Some(row) = row else {
                        rollback(tx, "revoke token").await?;
                        return Ok(false);
                    };
                    let kind = to_kind(&get::<String>(&row, "kind")?)?;
                    match kind {
                        TokenKind::Refresh => {
                            let grant_id: String = get(&row, "grant_id")?;
                            lock_family(&mut tx, &grant_id).await?;
                            revoke_family(&mut tx, &grant_id, now).await?;
                        }
                        TokenKind::Access => {
                            sqlx::query(
                                "UPDATE tokens SET revoked_at = $1 \
                                 WHERE token_hash = $2 AND revoked_at IS NULL",
                            )
                            .bind(now)
                            .bind(&token_hash[..])
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| {
                                error(format!("cannot revoke token of client `{client_id}`"), e)
                            })?;
                        }
                    }
                    commit(tx, "revoke token").await?;
                    Ok(true)
                }

                pub(in $crate::store) async fn insert_code(
                    &self,
                    code: &NewCode,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO codes (code_hash, client_id, subject, redirect_uri, scope, \
                         data, grant_id, issued_at, expires_at, resources, dpop_jkt) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    )
                    .bind(&code.code_hash[..])
                    .bind(&code.client_id)
                    .bind(&code.subject)
                    .bind(&code.redirect_uri)
                    .bind(join_scope(&code.scope)?)
                    .bind(to_json(&code.data, "code data")?)
                    .bind(&code.grant_id)
                    .bind(code.issued_at)
                    .bind(code.expires_at)
                    .bind(audience_to_column(&code.resources)?)
                    .bind(code.dpop_jkt.as_deref())
                    .execute(&self.writer)
                    .await
                    .map_err(|e| insert_error(format!("code of client `{}`", code.client_id), e))?;
                    Ok(())
                }

                pub(in $crate::store) async fn insert_sign_in(
                    &self,
                    sign_in: &$crate::store::SignIn,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO sign_ins (grant_id, subject, client_id, auth_time, amr, acr, \
                         expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(&sign_in.grant_id)
                    .bind(&sign_in.subject)
                    .bind(&sign_in.client_id)
                    .bind(sign_in.auth_time)
                    .bind(to_json(&sign_in.amr, "sign-in amr")?)
                    .bind(sign_in.acr.as_deref())
                    .bind(sign_in.expires_at)
                    .execute(&self.writer)
                    .await
                    .map_err(|e| {
                        insert_error(format!("sign-in record of grant `{}`", sign_in.grant_id), e)
                    })?;
                    Ok(())
                }

                pub(in $crate::store) async fn find_sign_in(
                    &self,
                    grant_id: &str,
                    now: i64,
                ) -> Result<Option<$crate::store::FoundSignIn>, StoreError> {
                    // The claims of a user removed or disabled since read as NULL.
                    let row = sqlx::query(
                        "SELECT s.grant_id, s.subject, s.client_id, s.auth_time, s.amr, s.acr, \
                         s.expires_at, u.claims FROM sign_ins s \
                         LEFT JOIN users u ON u.subject = s.subject AND u.disabled_at IS NULL \
                         WHERE s.grant_id = $1 AND s.expires_at > $2",
                    )
                    .bind(grant_id)
                    .bind(now)
                    .fetch_optional(&self.readers)
                    .await
                    .map_err(|e| error(format!("cannot read the sign-in record of grant `{grant_id}`"), e))?;
                    let Some(row) = row else {
                        return Ok(None);
                    };
                    let what = format!("sign-in record of grant `{grant_id}`");
                    let claims = match get::<Option<String>>(&row, "claims")? {
                        Some(text) => Some(from_json(&text, &format!("claims of the user of the {what}"))?),
                        None => None,
                    };
                    Ok(Some($crate::store::FoundSignIn {
                        sign_in: $crate::store::SignIn {
                            grant_id: get(&row, "grant_id")?,
                            subject: get(&row, "subject")?,
                            client_id: get(&row, "client_id")?,
                            auth_time: get(&row, "auth_time")?,
                            amr: from_json(&get::<String>(&row, "amr")?, &format!("amr of the {what}"))?,
                            acr: get(&row, "acr")?,
                            expires_at: get(&row, "expires_at")?,
                        },
                        claims,
                    }))
                }

                pub(in $crate::store) async fn redeem_code(
                    &self,
                    code_hash: &[u8; 32],
                    client_id: &str,
                    now: i64,
                ) -> Result<RedeemOutcome, StoreError> {
                    let code = Presented {
                        hash: *code_hash,
                        client_id: client_id.to_owned(),
                        now,
                    };
                    if let Some(code) = self.tokens.redeem(code).await? {
                        return Ok(RedeemOutcome::Redeemed(*code));
                    }

                    // Why not? Unknown, expired, or redeemed already (perhaps by a
                    // request that won the race since): a replay, which revokes the grant.
                    let mut tx = begin_write(&self.writer, "redeem code").await?;
                    let Some(grant_id) = lock_code_family(&mut tx, code_hash, client_id).await?
                    else {
                        rollback(tx, "redeem code").await?;
                        return Ok(RedeemOutcome::Unknown);
                    };
                    let redeemed_at: Option<Option<i64>> = sqlx::query_scalar(
                        "SELECT redeemed_at FROM codes WHERE code_hash = $1 AND client_id = $2",
                    )
                    .bind(&code_hash[..])
                    .bind(client_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| error(format!("cannot read code of client `{client_id}`"), e))?;
                    match redeemed_at {
                        None => {
                            // Purged since the first read.
                            rollback(tx, "redeem code").await?;
                            return Ok(RedeemOutcome::Unknown);
                        }
                        Some(None) => {
                            // Present, this client's, not redeemed, yet the UPDATE missed: expired.
                            rollback(tx, "redeem code").await?;
                            return Ok(RedeemOutcome::Expired);
                        }
                        Some(Some(_)) => {}
                    }
                    sqlx::query(
                        "UPDATE codes SET replayed_at = COALESCE(replayed_at, $1) \
                         WHERE code_hash = $2",
                    )
                    .bind(now)
                    .bind(&code_hash[..])
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        error(
                            format!("cannot mark code of client `{client_id}` replayed"),
                            e,
                        )
                    })?;
                    let revoked = revoke_family(&mut tx, &grant_id, now).await?;
                    commit(tx, "redeem code").await?;
                    tracing::warn!(
                        client_id,
                        grant_id,
                        revoked,
                        "authorization code replayed; its grant is revoked"
                    );
                    Ok(RedeemOutcome::Replayed)
                }

                pub(in $crate::store) async fn find_refresh(
                    &self,
                    token_hash: &[u8; 32],
                    client_id: &str,
                    now: i64,
                ) -> Result<Option<TokenRecord>, StoreError> {
                    let row = sqlx::query(concat!(
                        "SELECT ",
                        token_columns!(),
                        " FROM tokens WHERE token_hash = $1 AND client_id = $2 AND kind = 'refresh'"
                    ))
                    .bind(&token_hash[..])
                    .bind(client_id)
                    .fetch_optional(&self.readers)
                    .await
                    .map_err(|e| {
                        error(
                            format!("cannot read refresh token of client `{client_id}`"),
                            e,
                        )
                    })?;
                    let Some(row) = row else {
                        return Ok(None);
                    };
                    let record = token_from_row(&row)?;
                    if record.rotated_at.is_some() {
                        let revoked = self.revoke_grant(&record.grant_id, now).await?;
                        if revoked > 0 {
                            tracing::warn!(
                                client_id,
                                grant_id = record.grant_id,
                                revoked,
                                "rotated refresh token reused; its grant is revoked"
                            );
                        }
                        return Ok(None);
                    }
                    Ok(record.is_active(now).then_some(record))
                }

                pub(in $crate::store) async fn rotate_refresh(
                    &self,
                    token_hash: &[u8; 32],
                    client_id: &str,
                    now: i64,
                    new: &[NewToken],
                ) -> Result<RotateOutcome, StoreError> {
                    let refresh_token = Presented {
                        hash: *token_hash,
                        client_id: client_id.to_owned(),
                        now,
                    };
                    if let Some(old) = self.tokens.rotate(refresh_token, new).await? {
                        return Ok(RotateOutcome::Rotated(old));
                    }

                    // Why not? Unknown, revoked, expired, or rotated already (perhaps by
                    // a request that won the race since).
                    let mut tx = begin_write(&self.writer, "rotate refresh token").await?;
                    let Some(grant_id) = lock_refresh_family(&mut tx, token_hash, client_id).await?
                    else {
                        rollback(tx, "rotate refresh token").await?;
                        return Ok(RotateOutcome::Unknown);
                    };
                    // The batch's rotation matched only a token of the new
                    // tokens' family.
                    if let Err(foreign) = same_family(&grant_id, new) {
                        rollback(tx, "rotate refresh token").await?;
                        return Err(foreign);
                    }
                    let row = sqlx::query(
                        "SELECT expires_at, revoked_at, rotated_at FROM tokens \
                         WHERE token_hash = $1 AND client_id = $2 AND kind = 'refresh'",
                    )
                    .bind(&token_hash[..])
                    .bind(client_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| {
                        error(
                            format!("cannot read refresh token of client `{client_id}`"),
                            e,
                        )
                    })?;
                    let Some(row) = row else {
                        rollback(tx, "rotate refresh token").await?;
                        return Ok(RotateOutcome::Unknown);
                    };
                    let rotated_at: Option<i64> = get(&row, "rotated_at")?;
                    let revoked_at: Option<i64> = get(&row, "revoked_at")?;
                    let expires_at: i64 = get(&row, "expires_at")?;
                    match rotated_at {
                        Some(rotated_at) if now - rotated_at <= ROTATION_RACE_WINDOW => {
                            rollback(tx, "rotate refresh token").await?;
                            Ok(RotateOutcome::Unknown)
                        }
                        Some(_) => {
                            let revoked = revoke_family(&mut tx, &grant_id, now).await?;
                            commit(tx, "rotate refresh token").await?;
                            tracing::warn!(
                                client_id,
                                grant_id,
                                revoked,
                                "rotated refresh token reused; its grant is revoked"
                            );
                            Ok(RotateOutcome::Reused)
                        }
                        None => {
                            rollback(tx, "rotate refresh token").await?;
                            if revoked_at.is_none() && expires_at <= now {
                                Ok(RotateOutcome::Expired)
                            } else {
                                Ok(RotateOutcome::Unknown)
                            }
                        }
                    }
                }

                pub(in $crate::store) async fn kv_get(
                    &self,
                    namespace: &str,
                    key: &str,
                    now: i64,
                ) -> Result<Option<Vec<u8>>, StoreError> {
                    let row = sqlx::query(
                        "SELECT value FROM kv WHERE namespace = $1 AND key = $2 \
                         AND (expires_at IS NULL OR expires_at > $3)",
                    )
                    .bind(namespace)
                    .bind(key)
                    .bind(now)
                    .fetch_optional(&self.readers)
                    .await
                    .map_err(|e| {
                        error(
                            format!("cannot read key {key:?} of namespace `{namespace}`"),
                            e,
                        )
                    })?;
                    row.map(|row| get(&row, "value")).transpose()
                }

                pub(in $crate::store) async fn kv_set(
                    &self,
                    namespace: &str,
                    key: &str,
                    value: &[u8],
                    expires_at: Option<i64>,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO kv (namespace, key, value, expires_at) \
                         VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (namespace, key) \
                         DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                    )
                    .bind(namespace)
                    .bind(key)
                    .bind(value)
                    .bind(expires_at)
                    .execute(&self.writer)
                    .await
                    .map_err(|e| {
                        error(
                            format!("cannot set key {key:?} of namespace `{namespace}`"),
                            e,
                        )
                    })?;
                    Ok(())
                }

                pub(in $crate::store) async fn kv_insert_new(
                    &self,
                    namespace: &str,
                    key: &str,
                    value: &[u8],
                    expires_at: Option<i64>,
                    now: i64,
                ) -> Result<bool, StoreError> {
                    // One statement: a live row makes the DO UPDATE a no-op (0 rows
                    // changed); an expired row is overwritten as if absent. ON CONFLICT
                    // waits for a concurrent insert of the same key, so one caller wins.
                    let result = sqlx::query(
                        "INSERT INTO kv (namespace, key, value, expires_at) \
                         VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (namespace, key) \
                         DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at \
                         WHERE kv.expires_at IS NOT NULL AND kv.expires_at <= $5",
                    )
                    .bind(namespace)
                    .bind(key)
                    .bind(value)
                    .bind(expires_at)
                    .bind(now)
                    .execute(&self.writer)
                    .await
                    .map_err(|e| {
                        error(
                            format!("cannot insert key {key:?} of namespace `{namespace}`"),
                            e,
                        )
                    })?;
                    Ok(result.rows_affected() == 1)
                }

                pub(in $crate::store) async fn find_consent(
                    &self,
                    subject: &str,
                    client_id: &str,
                ) -> Result<Option<Vec<String>>, StoreError> {
                    let scope: Option<String> = sqlx::query_scalar(
                        "SELECT scope FROM consents WHERE subject = $1 AND client_id = $2",
                    )
                    .bind(subject)
                    .bind(client_id)
                    .fetch_optional(&self.readers)
                    .await
                    .map_err(|e| {
                        error(
                            format!("cannot read the consent of client `{client_id}`"),
                            e,
                        )
                    })?;
                    Ok(scope.map(|s| {
                        s.split(' ')
                            .filter(|w| !w.is_empty())
                            .map(str::to_owned)
                            .collect()
                    }))
                }

                pub(in $crate::store) async fn save_consent(
                    &self,
                    subject: &str,
                    client_id: &str,
                    scope: &[String],
                    now: i64,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO consents (subject, client_id, scope, granted_at) \
                         VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (subject, client_id) \
                         DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
                    )
                    .bind(subject)
                    .bind(client_id)
                    .bind(scope.join(" "))
                    .bind(now)
                    .execute(&self.writer)
                    .await
                    .map_err(|e| {
                        error(
                            format!("cannot save the consent of client `{client_id}`"),
                            e,
                        )
                    })?;
                    Ok(())
                }

                pub(in $crate::store) async fn kv_usage(
                    &self,
                    namespace: &str,
                    key: &str,
                    now: i64,
                ) -> Result<KvUsage, StoreError> {
                    // Bytes as stored: OCTET_LENGTH counts a text's encoded bytes.
                    let row = sqlx::query(
                        "SELECT COUNT(*) AS keys, CAST(COALESCE(\
                         SUM(OCTET_LENGTH(key) + OCTET_LENGTH(value)), 0) AS BIGINT) AS bytes, \
                         CAST(SUM(CASE WHEN key = $2 THEN OCTET_LENGTH(key) + OCTET_LENGTH(value) END) \
                         AS BIGINT) AS key_bytes \
                         FROM kv WHERE namespace = $1 AND (expires_at IS NULL OR expires_at > $3)",
                    )
                        .bind(namespace)
                        .bind(key)
                        .bind(now)
                        .fetch_one(&self.readers)
                        .await
                        .map_err(|e| error(format!("cannot measure namespace `{namespace}`"), e))?;
                    let keys: i64 = get(&row, "keys")?;
                    let bytes: i64 = get(&row, "bytes")?;
                    let key_bytes: Option<i64> = get(&row, "key_bytes")?;
                    Ok(KvUsage {
                        keys: keys.max(0) as u64,
                        bytes: bytes.max(0) as u64,
                        key_bytes: key_bytes.map(|b| b.max(0) as u64),
                    })
                }

                pub(in $crate::store) async fn kv_delete(
                    &self,
                    namespace: &str,
                    key: &str,
                ) -> Result<bool, StoreError> {
                    let result = sqlx::query("DELETE FROM kv WHERE namespace = $1 AND key = $2")
                        .bind(namespace)
                        .bind(key)
                        .execute(&self.writer)
                        .await
                        .map_err(|e| {
                            error(
                                format!("cannot delete key {key:?} of namespace `{namespace}`"),
                                e,
                            )
                        })?;
                    Ok(result.rows_affected() > 0)
                }

                pub(in $crate::store) async fn claim_decision(
                    &self,
                    transaction_hash: &[u8; 32],
                    expires_at: i64,
                ) -> Result<bool, StoreError> {
                    let inserted = sqlx::query(
                        "INSERT INTO decided_transactions (transaction_hash, expires_at) \
                         VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    )
                    .bind(transaction_hash.as_slice())
                    .bind(expires_at)
                    .execute(&self.writer)
                    .await
                    .map_err(|e| error("cannot record an authorization decision".to_owned(), e))?
                    .rows_affected();
                    Ok(inserted == 1)
                }

                pub(in $crate::store) async fn use_client_assertion(
                    &self,
                    client_id: &str,
                    jti: &str,
                    expires_at: i64,
                    now: i64,
                ) -> Result<bool, StoreError> {
                    // As kv_insert_new: a live row makes the update a no-op; an
                    // expired one not purged yet is reused (RFC 7523 §3 lets a
                    // jti come back once its assertion expired).
                    let result = sqlx::query(
                        "INSERT INTO client_assertion_jtis (client_id, jti, expires_at) \
                         VALUES ($1, $2, $3) \
                         ON CONFLICT (client_id, jti) \
                         DO UPDATE SET expires_at = excluded.expires_at \
                         WHERE client_assertion_jtis.expires_at <= $4",
                    )
                    .bind(client_id)
                    .bind(jti)
                    .bind(expires_at)
                    .bind(now)
                    .execute(&self.writer)
                    .await
                    .map_err(|e| {
                        error(
                            format!("cannot record the assertion jti of client `{client_id}`"),
                            e,
                        )
                    })?;
                    Ok(result.rows_affected() == 1)
                }

                pub(in $crate::store) async fn use_dpop_proof(
                    &self,
                    jkt: &str,
                    jti: &str,
                    expires_at: i64,
                    now: i64,
                ) -> Result<bool, StoreError> {
                    // As use_client_assertion: a live row makes the update a
                    // no-op; an expired one not purged yet is reused.
                    let result = sqlx::query(
                        "INSERT INTO dpop_proof_jtis (jkt, jti, expires_at) \
                         VALUES ($1, $2, $3) \
                         ON CONFLICT (jkt, jti) \
                         DO UPDATE SET expires_at = excluded.expires_at \
                         WHERE dpop_proof_jtis.expires_at <= $4",
                    )
                    .bind(jkt)
                    .bind(jti)
                    .bind(expires_at)
                    .bind(now)
                    .execute(&self.writer)
                    .await
                    .map_err(|e| error("cannot record the jti of a DPoP proof", e))?;
                    Ok(result.rows_affected() == 1)
                }

                pub(in $crate::store) async fn purge_expired(
                    &self,
                    now: i64,
                ) -> Result<u64, StoreError> {
                    // Redeemed codes stay until they expire so that a replay is still
                    // recognised (and revokes the grant) during the code's lifetime.
                    const STATEMENTS: [(&str, &str); 8] = [
                        (
                            "codes",
                            "DELETE FROM codes WHERE code_hash IN \
                             (SELECT code_hash FROM codes WHERE expires_at <= $1 LIMIT $2)",
                        ),
                        (
                            "tokens",
                            "DELETE FROM tokens WHERE token_hash IN \
                             (SELECT token_hash FROM tokens WHERE expires_at <= $1 LIMIT $2)",
                        ),
                        (
                            "kv entries",
                            "DELETE FROM kv WHERE (namespace, key) IN \
                             (SELECT namespace, key FROM kv WHERE expires_at <= $1 LIMIT $2)",
                        ),
                        (
                            "decided transactions",
                            "DELETE FROM decided_transactions WHERE transaction_hash IN \
                             (SELECT transaction_hash FROM decided_transactions \
                              WHERE expires_at <= $1 LIMIT $2)",
                        ),
                        (
                            "sign-in records",
                            "DELETE FROM sign_ins WHERE grant_id IN \
                             (SELECT grant_id FROM sign_ins WHERE expires_at <= $1 LIMIT $2)",
                        ),
                        (
                            "client assertion jtis",
                            "DELETE FROM client_assertion_jtis WHERE (client_id, jti) IN \
                             (SELECT client_id, jti FROM client_assertion_jtis \
                              WHERE expires_at <= $1 LIMIT $2)",
                        ),
                        (
                            "pushed authorization requests",
                            "DELETE FROM pushed_authorization_requests WHERE request_uri_hash IN \
                             (SELECT request_uri_hash FROM pushed_authorization_requests \
                              WHERE expires_at <= $1 LIMIT $2)",
                        ),
                        (
                            "dpop proof jtis",
                            "DELETE FROM dpop_proof_jtis WHERE (jkt, jti) IN \
                             (SELECT jkt, jti FROM dpop_proof_jtis \
                              WHERE expires_at <= $1 LIMIT $2)",
                        ),
                    ];
                    let mut total = 0;
                    for (what, statement) in STATEMENTS {
                        total += purge_in_batches(&self.writer, statement, now)
                            .await
                            .map_err(|e| error(format!("cannot purge expired {what}"), e))?;
                    }
                    Ok(total)
                }

                pub(in $crate::store) async fn find_login_failures(
                    &self,
                    counters: &[String],
                    reset_before: i64,
                ) -> Result<Vec<LoginFailures>, StoreError> {
                    let mut query = QueryBuilder::<$db>::new(
                        "SELECT counter, failures, last_failure_at FROM login_failures \
                         WHERE last_failure_at > ",
                    );
                    query.push_bind(reset_before).push(" AND counter IN (");
                    let mut list = query.separated(", ");
                    for counter in counters {
                        list.push_bind(counter);
                    }
                    list.push_unseparated(")");
                    let rows = query
                        .build()
                        .fetch_all(&self.readers)
                        .await
                        .map_err(|e| error("cannot read the failed sign-in counters", e))?;
                    rows.iter().map(login_failures_from_row).collect()
                }

                pub(in $crate::store) async fn add_login_failure(
                    &self,
                    counters: &[&str],
                    now: i64,
                    reset_before: i64,
                ) -> Result<Vec<LoginFailures>, StoreError> {
                    let mut query = QueryBuilder::<$db>::new(
                        "INSERT INTO login_failures (counter, failures, last_failure_at) ",
                    );
                    query.push_values(counters, |mut row, counter| {
                        row.push_bind(*counter).push_bind(1_i64).push_bind(now);
                    });
                    query
                        .push(
                            " ON CONFLICT (counter) DO UPDATE SET failures = CASE \
                             WHEN login_failures.last_failure_at <= ",
                        )
                        .push_bind(reset_before)
                        .push(
                            " THEN 1 ELSE login_failures.failures + 1 END, \
                             last_failure_at = CASE \
                             WHEN excluded.last_failure_at > login_failures.last_failure_at \
                             THEN excluded.last_failure_at ELSE login_failures.last_failure_at END \
                             RETURNING counter, failures, last_failure_at",
                        );
                    let rows = query
                        .build()
                        .fetch_all(&self.writer)
                        .await
                        .map_err(|e| error("cannot count a failed sign-in", e))?;
                    rows.iter().map(login_failures_from_row).collect()
                }

                pub(in $crate::store) async fn clear_login_failures(
                    &self,
                    counter: &str,
                ) -> Result<(), StoreError> {
                    sqlx::query("DELETE FROM login_failures WHERE counter = $1")
                        .bind(counter)
                        .execute(&self.writer)
                        .await
                        .map_err(|e| {
                            error(
                                format!("cannot clear the failed sign-in counter {counter:?}"),
                                e,
                            )
                        })?;
                    Ok(())
                }

                pub(in $crate::store) async fn purge_login_failures(
                    &self,
                    reset_before: i64,
                ) -> Result<u64, StoreError> {
                    purge_in_batches(
                        &self.writer,
                        "DELETE FROM login_failures WHERE counter IN \
                         (SELECT counter FROM login_failures WHERE last_failure_at <= $1 LIMIT $2)",
                        reset_before,
                    )
                    .await
                    .map_err(|e| error("cannot purge old failed sign-in counters", e))
                }
            }

            impl $store {
                pub(in $crate::store) async fn insert_signing_key(
                    &self,
                    key: &SigningKeyRow,
                ) -> Result<(), StoreError> {
                    insert_signing_key_row(&self.writer, key).await
                }

                pub(in $crate::store) async fn insert_first_signing_key(
                    &self,
                    key: &SigningKeyRow,
                ) -> Result<bool, StoreError> {
                    let what = format!("create the first {} signing key", key.alg);
                    let mut tx = begin_write(&self.writer, &what).await?;
                    // Where write transactions run concurrently (PostgreSQL),
                    // instances starting at once serialise here per algorithm,
                    // so the second sees the first's key; SQLite's `BEGIN
                    // IMMEDIATE` already serialises every writer.
                    if let Some(lock) = LOCK_FAMILY {
                        sqlx::query(lock)
                            .bind(format!("grantbox first signing key {}", key.alg))
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| error(format!("cannot lock to {what}"), e))?;
                    }
                    let usable = sqlx::query(
                        "SELECT kid FROM signing_keys WHERE alg = $1 AND retired_at IS NULL LIMIT 1",
                    )
                    .bind(&key.alg)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| error(format!("cannot {what}"), e))?;
                    if usable.is_some() {
                        return Ok(false);
                    }
                    insert_signing_key_row(&mut *tx, key).await?;
                    commit(tx, &what).await?;
                    Ok(true)
                }

                pub(in $crate::store) async fn list_signing_keys(
                    &self,
                ) -> Result<Vec<SigningKeyRow>, StoreError> {
                    // Read from the writer: a reload right after a rotation
                    // on this instance sees it.
                    let rows = sqlx::query(concat!(
                        "SELECT ",
                        signing_key_columns!(),
                        " FROM signing_keys ORDER BY created_at, kid"
                    ))
                    .fetch_all(&self.writer)
                    .await
                    .map_err(|e| error("cannot list signing keys", e))?;
                    rows.iter().map(signing_key_from_row).collect()
                }

                pub(in $crate::store) async fn retire_signing_key(
                    &self,
                    kid: &str,
                    retired_at: i64,
                    published_until: i64,
                ) -> Result<bool, StoreError> {
                    let done = sqlx::query(
                        "UPDATE signing_keys SET retired_at = $2, published_until = $3 \
                         WHERE kid = $1 AND (retired_at IS NULL OR retired_at > $2)",
                    )
                    .bind(kid)
                    .bind(retired_at)
                    .bind(published_until)
                    .execute(&self.writer)
                    .await
                    .map_err(|e| error(format!("cannot retire signing key `{kid}`"), e))?;
                    Ok(done.rows_affected() == 1)
                }
            }

            /// Runs a `DELETE` of at most `$2` rows (the `PURGE_BATCH`) at or before
            /// `$1` until it deletes fewer; how many it deleted in all.
            async fn purge_in_batches(
                writer: &sqlx::Pool<$db>,
                statement: &'static str,
                before: i64,
            ) -> Result<u64, sqlx::Error> {
                let mut total = 0;
                loop {
                    let deleted = sqlx::query(statement)
                        .bind(before)
                        .bind(PURGE_BATCH)
                        .execute(writer)
                        .await?
                        .rows_affected();
                    total += deleted;
                    if deleted < PURGE_BATCH as u64 {
                        return Ok(total);
                    }
                    tokio::task::yield_now().await;
                }
            }

            /// Serialises, until the transaction ends, every transaction that
            /// touches the token family `grant_id`, where the backend needs it
            /// (`LOCK_FAMILY`).
            async fn lock_family(
                tx: &mut <$db as sqlx::Database>::Connection,
                grant_id: &str,
            ) -> Result<(), StoreError> {
                let Some(lock) = LOCK_FAMILY else {
                    return Ok(());
                };
                sqlx::query(lock)
                    .bind(grant_id)
                    .execute(tx)
                    .await
                    .map_err(|e| error(format!("cannot lock grant `{grant_id}`"), e))?;
                Ok(())
            }

            /// Locks the family of this client's refresh token (a token's family
            /// never changes: read it, then lock it before touching any row of
            /// it); `None` when there is no such token.
            async fn lock_refresh_family(
                tx: &mut <$db as sqlx::Database>::Connection,
                token_hash: &[u8; 32],
                client_id: &str,
            ) -> Result<Option<String>, StoreError> {
                let grant_id: Option<String> = sqlx::query_scalar(
                    "SELECT grant_id FROM tokens \
                     WHERE token_hash = $1 AND client_id = $2 AND kind = 'refresh'",
                )
                .bind(&token_hash[..])
                .bind(client_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| {
                    error(
                        format!("cannot read refresh token of client `{client_id}`"),
                        e,
                    )
                })?;
                if let Some(grant_id) = &grant_id {
                    lock_family(tx, grant_id).await?;
                }
                Ok(grant_id)
            }

            /// Locks the family of this client's code, as [`lock_refresh_family`].
            async fn lock_code_family(
                tx: &mut <$db as sqlx::Database>::Connection,
                code_hash: &[u8; 32],
                client_id: &str,
            ) -> Result<Option<String>, StoreError> {
                let grant_id: Option<String> = sqlx::query_scalar(
                    "SELECT grant_id FROM codes WHERE code_hash = $1 AND client_id = $2",
                )
                .bind(&code_hash[..])
                .bind(client_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| error(format!("cannot read code of client `{client_id}`"), e))?;
                if let Some(grant_id) = &grant_id {
                    lock_family(tx, grant_id).await?;
                }
                Ok(grant_id)
            }

            /// Revokes the family; the caller holds [`lock_family`] for it.
            async fn revoke_family(
                tx: &mut <$db as sqlx::Database>::Connection,
                grant_id: &str,
                now: i64,
            ) -> Result<u64, StoreError> {
                let result = sqlx::query(
                    "UPDATE tokens SET revoked_at = $1 WHERE grant_id = $2 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(grant_id)
                .execute(tx)
                .await
                .map_err(|e| error(format!("cannot revoke grant `{grant_id}`"), e))?;
                Ok(result.rows_affected())
            }

            /// Inserts one signing key row, alone or inside the first key's
            /// transaction.
            async fn insert_signing_key_row<'c, E>(
                executor: E,
                key: &SigningKeyRow,
            ) -> Result<(), StoreError>
            where
                E: sqlx::Executor<'c, Database = $db>,
            {
                sqlx::query(concat!(
                    "INSERT INTO signing_keys (",
                    signing_key_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ))
                .bind(&key.kid)
                .bind(&key.alg)
                .bind(&key.public_jwk)
                .bind(&key.private_sealed)
                .bind(&key.kek_check)
                .bind(key.created_at)
                .bind(key.activates_at)
                .bind(key.retired_at)
                .bind(key.published_until)
                .execute(executor)
                .await
                .map_err(|e| insert_error(format!("signing key `{}`", key.kid), e))?;
                Ok(())
            }

            /// Inserts one client row: `client add`, or a dynamic
            /// registration inside its transaction.
            pub(super) async fn insert_client_row<'c, E>(
                executor: E,
                client: &Client,
            ) -> Result<(), StoreError>
            where
                E: sqlx::Executor<'c, Database = $db>,
            {
                sqlx::query(concat!(
                    "INSERT INTO clients (",
                    client_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)"
                ))
                .bind(&client.client_id)
                .bind(client.secret_hash.as_deref())
                .bind(client.name.as_deref())
                .bind(to_json(&client.redirect_uris, "redirect uris")?)
                .bind(to_json(&client.grant_types, "grant types")?)
                .bind(to_json(&client.scopes, "scopes")?)
                .bind(client.public)
                .bind(client.trusted)
                .bind(client.created_at)
                .bind(client.client_uri.as_deref())
                .bind(client.introspection)
                .bind(client.auth.method.map(|m| m.as_str()))
                .bind(client.auth.jwks.as_deref())
                .bind(audience_to_column(&client.resources)?)
                .bind(client.access_token_format.as_str())
                .bind(client.auth.secret_sealed.as_deref())
                .bind(client.auth.previous_secret.as_ref().map(|p| p.secret_hash.as_slice()))
                .bind(client.auth.previous_secret.as_ref().map(|p| p.expires_at))
                .bind(to_json(&client.post_logout_redirect_uris, "post-logout redirect uris")?)
                .bind(client.id_token_signed_response_alg.as_deref())
                .bind(client.profile.map(|p| p.as_str()))
                .bind(client.require_pushed_authorization_requests)
                .bind(client.dpop_bound_access_tokens)
                .execute(executor)
                .await
                .map_err(|e| insert_error(format!("client id `{}`", client.client_id), e))?;
                Ok(())
            }

            /// Inserts the rows with one multi-row `INSERT`.
            async fn insert_rows<'c, E>(executor: E, tokens: &[&NewToken]) -> Result<(), StoreError>
            where
                E: sqlx::Executor<'c, Database = $db>,
            {
                let columns = tokens
                    .iter()
                    .map(|token| {
                        Ok((
                            join_scope(&token.scope)?,
                            audience_to_column(&token.audience)?,
                        ))
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                let mut insert = QueryBuilder::<$db>::new(
                    "INSERT INTO tokens (token_hash, kind, client_id, subject, scope, grant_id, \
                     issued_at, expires_at, grant_expires_at, audience, actor, dpop_jkt) ",
                );
                insert.push_values(
                    tokens.iter().zip(columns),
                    |mut row, (token, (scope, audience))| {
                        row.push_bind(&token.token_hash[..])
                            .push_bind(token.kind.as_str())
                            .push_bind(&token.client_id)
                            .push_bind(token.subject.as_deref())
                            .push_bind(scope)
                            .push_bind(&token.grant_id)
                            .push_bind(token.issued_at)
                            .push_bind(token.expires_at)
                            .push_bind(token.grant_expires_at)
                            .push_bind(audience)
                            .push_bind(token.actor.as_deref())
                            .push_bind(token.dpop_jkt.as_deref());
                    },
                );
                insert
                    .build()
                    .execute(executor)
                    .await
                    .map_err(|e| {
                        insert_error(format!("tokens of client `{}`", tokens[0].client_id), e)
                    })?;
                Ok(())
            }

            impl TokenWriter for Writer {
                type Tx = sqlx::Transaction<'static, $db>;

                async fn insert_alone(&self, rows: &[&NewToken]) -> Result<(), StoreError> {
                    insert_rows(&self.pool, rows).await?;
                    self.after_write().await;
                    Ok(())
                }

                /// Locks the continued families, sorted, so two writers cannot
                /// deadlock on them; a claim locks its family when it gets to it
                /// (a deadlock between two servers' batches fails both, and each
                /// job is then retried alone).
                async fn begin(&self, continued: &[&str]) -> Result<Self::Tx, StoreError> {
                    let mut tx = begin_write(&self.pool, "write tokens").await?;
                    for grant_id in continued {
                        lock_family(&mut tx, grant_id).await?;
                    }
                    Ok(tx)
                }

                /// The single-use guarantee of rotation: only one UPDATE can see
                /// `rotated_at IS NULL`. The token as it was, if this rotation won.
                /// The family is the new tokens' when there are any: locked
                /// without reading the token first, since the UPDATE matches
                /// only a token of it; else the token's own, read and locked.
                async fn rotate(
                    &self,
                    tx: &mut Self::Tx,
                    refresh_token: &Presented,
                    family: Option<&str>,
                ) -> Result<Option<TokenRecord>, StoreError> {
                    let Presented {
                        hash,
                        client_id,
                        now,
                    } = refresh_token;
                    let read;
                    let family = match family {
                        Some(family) => {
                            lock_family(tx, family).await?;
                            family
                        }
                        None => match lock_refresh_family(tx, hash, client_id).await? {
                            Some(grant_id) => {
                                read = grant_id;
                                read.as_str()
                            }
                            None => return Ok(None),
                        },
                    };
                    let row = sqlx::query(concat!(
                        "UPDATE tokens SET rotated_at = $1 \
                         WHERE token_hash = $2 AND client_id = $3 AND kind = 'refresh' \
                         AND grant_id = $4 \
                         AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > $1 \
                         RETURNING ",
                        token_columns!()
                    ))
                    .bind(now)
                    .bind(&hash[..])
                    .bind(client_id)
                    .bind(family)
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(|e| {
                        error(format!("cannot rotate refresh token of client `{client_id}`"), e)
                    })?;
                    row.as_ref().map(token_from_row).transpose()
                }

                /// The single-use guarantee of codes: only one UPDATE can see
                /// `redeemed_at IS NULL`. The code as it was, if this redemption won.
                async fn redeem(
                    &self,
                    tx: &mut Self::Tx,
                    code: &Presented,
                ) -> Result<Option<CodeRecord>, StoreError> {
                    let Presented {
                        hash,
                        client_id,
                        now,
                    } = code;
                    if LOCK_FAMILY.is_some()
                        && lock_code_family(tx, hash, client_id).await?.is_none()
                    {
                        return Ok(None);
                    }
                    let row = sqlx::query(concat!(
                        "UPDATE codes SET redeemed_at = $1 \
                         WHERE code_hash = $2 AND client_id = $3 AND redeemed_at IS NULL \
                         AND expires_at > $1 RETURNING ",
                        code_columns!()
                    ))
                    .bind(now)
                    .bind(&hash[..])
                    .bind(client_id)
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(|e| error(format!("cannot redeem code of client `{client_id}`"), e))?;
                    row.as_ref().map(code_from_row).transpose()
                }

                async fn insert(
                    &self,
                    tx: &mut Self::Tx,
                    rows: &[&NewToken],
                ) -> Result<(), StoreError> {
                    insert_rows(&mut **tx, rows).await
                }

                async fn revoke_if_replayed(
                    &self,
                    tx: &mut Self::Tx,
                    grant_ids: &[&str],
                ) -> Result<(), StoreError> {
                    revoke_replayed(tx, grant_ids)
                        .await
                        .map_err(|e| error("cannot check replayed codes of the grants", e))
                }

                async fn commit(&self, tx: Self::Tx) -> Result<(), StoreError> {
                    commit(tx, "write tokens").await?;
                    self.after_write().await;
                    Ok(())
                }
            }

            /// Begins a write transaction (`BEGIN`) on `pool`.
            async fn begin_write(
                pool: &sqlx::Pool<$db>,
                what: &str,
            ) -> Result<sqlx::Transaction<'static, $db>, StoreError> {
                pool.begin_with(BEGIN)
                    .await
                    .map_err(|e| error(format!("cannot begin transaction to {what}"), e))
            }

            async fn commit(
                tx: sqlx::Transaction<'static, $db>,
                what: &str,
            ) -> Result<(), StoreError> {
                tx.commit()
                    .await
                    .map_err(|e| error(format!("cannot commit transaction to {what}"), e))
            }

            async fn rollback(
                tx: sqlx::Transaction<'static, $db>,
                what: &str,
            ) -> Result<(), StoreError> {
                tx.rollback()
                    .await
                    .map_err(|e| error(format!("cannot roll back transaction to {what}"), e))
            }

            type Row = <$db as sqlx::Database>::Row;

            $crate::store::manage::manage_operations!($store, $db);
            $crate::store::instances::instance_operations!($store, $db);
            $crate::store::admin_token::admin_token_operations!($store, $db);
            $crate::store::pushed_request::pushed_request_operations!($store, $db);

            fn client_from_row(row: &Row) -> Result<Client, StoreError> {
                let client_id: String = get(row, "client_id")?;
                let list = |column: &'static str| -> Result<Vec<String>, StoreError> {
                    from_json(
                        &get::<String>(row, column)?,
                        &format!("{column} of client `{client_id}`"),
                    )
                };
                Ok(Client {
                    secret_hash: get(row, "secret_hash")?,
                    name: get(row, "name")?,
                    client_uri: get(row, "client_uri")?,
                    redirect_uris: list("redirect_uris")?,
                    post_logout_redirect_uris: list("post_logout_redirect_uris")?,
                    grant_types: list("grant_types")?,
                    scopes: list("scopes")?,
                    public: get(row, "public")?,
                    trusted: get(row, "trusted")?,
                    introspection: get(row, "introspection")?,
                    created_at: get(row, "created_at")?,
                    auth: ClientAuth {
                        method: match get::<Option<String>>(row, "token_endpoint_auth_method")? {
                            None => None,
                            Some(name) => Some(AuthMethod::parse(&name).ok_or_else(|| {
                                StoreError::new(
                                    StoreErrorKind::Corrupt,
                                    format!(
                                        "stored token_endpoint_auth_method {name:?} of client `{client_id}` is unknown"
                                    ),
                                )
                            })?),
                        },
                        jwks: get(row, "jwks")?,
                        secret_sealed: get(row, "secret_sealed")?,
                        previous_secret: match (
                            get::<Option<Vec<u8>>>(row, "previous_secret_hash")?,
                            get::<Option<i64>>(row, "previous_secret_expires_at")?,
                        ) {
                            (Some(secret_hash), Some(expires_at)) => {
                                Some($crate::store::PreviousSecret { secret_hash, expires_at })
                            }
                            _ => None,
                        },
                    },
                    resources: audience_from_column(get(row, "resources")?)?,
                    id_token_signed_response_alg: get(row, "id_token_signed_response_alg")?,
                    profile: match get::<Option<String>>(row, "profile")? {
                        None => None,
                        Some(name) => Some(Profile::parse(&name).ok_or_else(|| {
                            StoreError::new(
                                StoreErrorKind::Corrupt,
                                format!("stored profile {name:?} of client `{client_id}` is unknown"),
                            )
                        })?),
                    },
                    require_pushed_authorization_requests: get(
                        row,
                        "require_pushed_authorization_requests",
                    )?,
                    access_token_format: {
                        let format: String = get(row, "access_token_format")?;
                        AccessTokenFormat::parse(&format).ok_or_else(|| {
                            StoreError::new(
                                $crate::store::StoreErrorKind::Other,
                                format!("access_token_format of client `{client_id}` is {format:?}"),
                            )
                        })?
                    },
                    dpop_bound_access_tokens: get(row, "require_dpop")?,
                    client_id,
                })
            }

            fn user_from_row(row: &Row) -> Result<User, StoreError> {
                Ok(User {
                    username: get(row, "username")?,
                    password_hash: get(row, "password_hash")?,
                    subject: get(row, "subject")?,
                    created_at: get(row, "created_at")?,
                    claims: from_json(&get::<String>(row, "claims")?, "user claims")?,
                    disabled_at: get(row, "disabled_at")?,
                })
            }

            fn token_from_row(row: &Row) -> Result<TokenRecord, StoreError> {
                Ok(TokenRecord {
                    token_hash: to_hash(get(row, "token_hash")?, "token hash")?,
                    kind: to_kind(&get::<String>(row, "kind")?)?,
                    client_id: get(row, "client_id")?,
                    subject: get(row, "subject")?,
                    scope: split_scope(&get::<String>(row, "scope")?),
                    grant_id: get(row, "grant_id")?,
                    issued_at: get(row, "issued_at")?,
                    expires_at: get(row, "expires_at")?,
                    grant_expires_at: get(row, "grant_expires_at")?,
                    audience: audience_from_column(get(row, "audience")?)?,
                    actor: get(row, "actor")?,
                    revoked_at: get(row, "revoked_at")?,
                    rotated_at: get(row, "rotated_at")?,
                    dpop_jkt: get(row, "dpop_jkt")?,
                })
            }

            fn code_from_row(row: &Row) -> Result<CodeRecord, StoreError> {
                let client_id: String = get(row, "client_id")?;
                Ok(CodeRecord {
                    code_hash: to_hash(get(row, "code_hash")?, "code hash")?,
                    subject: get(row, "subject")?,
                    redirect_uri: get(row, "redirect_uri")?,
                    scope: split_scope(&get::<String>(row, "scope")?),
                    data: from_json(
                        &get::<String>(row, "data")?,
                        &format!("data of a code of client `{client_id}`"),
                    )?,
                    grant_id: get(row, "grant_id")?,
                    issued_at: get(row, "issued_at")?,
                    expires_at: get(row, "expires_at")?,
                    redeemed_at: get(row, "redeemed_at")?,
                    resources: audience_from_column(get(row, "resources")?)?,
                    dpop_jkt: get(row, "dpop_jkt")?,
                    client_id,
                })
            }

            fn signing_key_from_row(row: &Row) -> Result<SigningKeyRow, StoreError> {
                Ok(SigningKeyRow {
                    kid: get(row, "kid")?,
                    alg: get(row, "alg")?,
                    public_jwk: get(row, "public_jwk")?,
                    private_sealed: get(row, "private_sealed")?,
                    kek_check: get(row, "kek_check")?,
                    created_at: get(row, "created_at")?,
                    activates_at: get(row, "activates_at")?,
                    retired_at: get(row, "retired_at")?,
                    published_until: get(row, "published_until")?,
                })
            }

            fn login_failures_from_row(row: &Row) -> Result<LoginFailures, StoreError> {
                let column = |e| error("cannot read a failed sign-in counter", e);
                Ok(LoginFailures {
                    counter: sqlx::Row::try_get(row, "counter").map_err(column)?,
                    failures: sqlx::Row::try_get(row, "failures").map_err(column)?,
                    last_failure_at: sqlx::Row::try_get(row, "last_failure_at").map_err(column)?,
                })
            }

            fn get<'r, T>(row: &'r Row, column: &'static str) -> Result<T, StoreError>
            where
                T: sqlx::Decode<'r, $db> + sqlx::Type<$db>,
            {
                sqlx::Row::try_get(row, column)
                    .map_err(|e| error(format!("cannot read column `{column}`"), e))
            }
        }
    };
}

pub(super) use shared_operations;

/// A store error for a failed statement, with the portable kind of `err`.
pub(super) fn error(message: impl Into<String>, err: sqlx::Error) -> StoreError {
    StoreError::with_cause(kind_of(&err), message, err)
}

/// A store error for a failed migration of the database at `url` (its
/// password redacted).
pub(super) fn migrate_error(url: &str, err: sqlx::migrate::MigrateError) -> StoreError {
    let kind = match &err {
        sqlx::migrate::MigrateError::Execute(e)
        | sqlx::migrate::MigrateError::ExecuteMigration(e, _) => kind_of(e),
        _ => StoreErrorKind::Other,
    };
    StoreError::with_cause(kind, format!("cannot migrate database `{url}`"), err)
}

/// A store error for a failed insert of `what`: "`what` already exists" for
/// a unique violation, so the message names the taken key.
pub(super) fn insert_error(what: String, err: sqlx::Error) -> StoreError {
    let kind = kind_of(&err);
    let message = match err.as_database_error() {
        _ if kind == StoreErrorKind::Conflict => format!("{what} already exists"),
        Some(db) if db.is_foreign_key_violation() => {
            format!("cannot insert {what}: no such client")
        }
        _ => format!("cannot insert {what}"),
    };
    StoreError::with_cause(kind, message, err)
}

/// The portable kind of a sqlx error; what a database's own error code means
/// is the backend's to say.
fn kind_of(err: &sqlx::Error) -> StoreErrorKind {
    match err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreErrorKind::Conflict,
        sqlx::Error::Database(db) => {
            if let Some(sqlite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                super::sqlite::error_kind(sqlite)
            } else if let Some(postgres) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            {
                super::postgres::error_kind(postgres)
            } else {
                StoreErrorKind::Other
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreErrorKind::Unavailable,
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. } => StoreErrorKind::Corrupt,
        _ => StoreErrorKind::Other,
    }
}
