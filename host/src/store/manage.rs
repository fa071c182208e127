//! The SQL of the operator's operations (`manage.rs` above the store): client
//! and user changes, consents, the kill switches that revoke whole token
//! families, and the audit trail. A macro expanded inside
//! [`shared_operations!`](super::sql::shared_operations), so it uses that
//! module's helpers (transactions, family locks, row decoders) and runs the
//! same statements on both backends.

/// The operator's store operations, for the sqlx database `$db`, as methods
/// of `$store`; expanded in the `operations` module of each backend.
macro_rules! manage_operations {
    ($store:ident, $db:ident) => {
        impl $store {
            pub(in $crate::store) async fn update_client(
                &self,
                client: &Client,
            ) -> Result<bool, StoreError> {
                let client_id = &client.client_id;
                let done = sqlx::query(
                    "UPDATE clients SET name = $2, redirect_uris = $3, grant_types = $4, \
                     scopes = $5, public = $6, trusted = $7, client_uri = $8, introspection = $9, \
                     token_endpoint_auth_method = $10, jwks = $11, resources = $12, \
                     access_token_format = $13, secret_hash = $14, \
                     post_logout_redirect_uris = $15, \
                     require_pushed_authorization_requests = $16, require_dpop = $17 \
                     WHERE client_id = $1",
                )
                .bind(client_id)
                .bind(client.name.as_deref())
                .bind(to_json(&client.redirect_uris, "redirect uris")?)
                .bind(to_json(&client.grant_types, "grant types")?)
                .bind(to_json(&client.scopes, "scopes")?)
                .bind(client.public)
                .bind(client.trusted)
                .bind(client.client_uri.as_deref())
                .bind(client.introspection)
                .bind(client.auth.method.map(|m| m.as_str()))
                .bind(client.auth.jwks.as_deref())
                .bind(audience_to_column(&client.resources)?)
                .bind(client.access_token_format.as_str())
                .bind(client.secret_hash.as_deref())
                .bind(to_json(&client.post_logout_redirect_uris, "post-logout redirect uris")?)
                .bind(client.require_pushed_authorization_requests)
                .bind(client.dpop_bound_access_tokens)
                .execute(&self.writer)
                .await
                .map_err(|e| error(format!("cannot update client `{client_id}`"), e))?;
                bump_clients(&self.writer).await?;
                Ok(done.rows_affected() == 1)
            }

            pub(in $crate::store) async fn set_client_secret(
                &self,
                client_id: &str,
                secret_hash: &[u8],
                previous: Option<&$crate::store::PreviousSecret>,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE clients SET secret_hash = $2, previous_secret_hash = $3, \
                     previous_secret_expires_at = $4 WHERE client_id = $1",
                )
                .bind(client_id)
                .bind(secret_hash)
                .bind(previous.map(|p| p.secret_hash.as_slice()))
                .bind(previous.map(|p| p.expires_at))
                .execute(&self.writer)
                .await
                .map_err(|e| error(format!("cannot set the secret of client `{client_id}`"), e))?;
                bump_clients(&self.writer).await?;
                Ok(done.rows_affected() == 1)
            }

            pub(in $crate::store) async fn delete_client(
                &self,
                client_id: &str,
                now: i64,
            ) -> Result<Option<u64>, StoreError> {
                let what = "remove client";
                let mut tx = begin_write(&self.writer, what).await?;
                let revoked = revoke_families(
                    &mut tx,
                    "SELECT grant_id FROM tokens WHERE client_id = $1 \
                     UNION SELECT grant_id FROM codes WHERE client_id = $1",
                    client_id,
                    now,
                )
                .await?;
                // Consents, codes and tokens go with the client (ON DELETE CASCADE).
                let deleted = sqlx::query("DELETE FROM clients WHERE client_id = $1")
                    .bind(client_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| error(format!("cannot remove client `{client_id}`"), e))?;
                if deleted.rows_affected() == 0 {
                    rollback(tx, what).await?;
                    return Ok(None);
                }
                bump_clients(&mut *tx).await?;
                commit(tx, what).await?;
                Ok(Some(revoked))
            }

            pub(in $crate::store) async fn revoke_client_tokens(
                &self,
                client_id: &str,
                now: i64,
            ) -> Result<u64, StoreError> {
                let what = "revoke the tokens of a client";
                let mut tx = begin_write(&self.writer, what).await?;
                let revoked = revoke_families(
                    &mut tx,
                    "SELECT grant_id FROM tokens WHERE client_id = $1 \
                     UNION SELECT grant_id FROM codes WHERE client_id = $1",
                    client_id,
                    now,
                )
                .await?;
                commit(tx, what).await?;
                Ok(revoked)
            }

            pub(in $crate::store) async fn revoke_subject_tokens(
                &self,
                subject: &str,
                now: i64,
            ) -> Result<u64, StoreError> {
                let what = "revoke the tokens of a user";
                let mut tx = begin_write(&self.writer, what).await?;
                let revoked = revoke_families(
                    &mut tx,
                    "SELECT grant_id FROM tokens WHERE subject = $1 \
                     UNION SELECT grant_id FROM codes WHERE subject = $1",
                    subject,
                    now,
                )
                .await?;
                commit(tx, what).await?;
                Ok(revoked)
            }

            pub(in $crate::store) async fn clients_generation(&self) -> Result<i64, StoreError> {
                sqlx::query_scalar("SELECT value FROM change_counters WHERE name = 'clients'")
                    .fetch_one(&self.readers)
                    .await
                    .map_err(|e| error("cannot read the clients' change counter", e))
            }

            pub(in $crate::store) async fn list_users(&self) -> Result<Vec<User>, StoreError> {
                let rows = sqlx::query(
                    "SELECT username, password_hash, subject, created_at, claims, disabled_at \
                     FROM users",
                )
                .fetch_all(&self.readers)
                .await
                .map_err(|e| error("cannot list users", e))?;
                let mut users = rows
                    .iter()
                    .map(user_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                // In byte order on both backends, as clients are.
                users.sort_unstable_by(|a, b| a.username.cmp(&b.username));
                Ok(users)
            }

            pub(in $crate::store) async fn set_user_password(
                &self,
                username: &str,
                password_hash: &str,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query("UPDATE users SET password_hash = $2 WHERE username = $1")
                    .bind(username)
                    .bind(password_hash)
                    .execute(&self.writer)
                    .await
                    .map_err(|e| {
                        error(format!("cannot set the password of user `{username}`"), e)
                    })?;
                Ok(done.rows_affected() == 1)
            }

            pub(in $crate::store) async fn set_user_disabled(
                &self,
                username: &str,
                disabled_at: Option<i64>,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query("UPDATE users SET disabled_at = $2 WHERE username = $1")
                    .bind(username)
                    .bind(disabled_at)
                    .execute(&self.writer)
                    .await
                    .map_err(|e| error(format!("cannot update user `{username}`"), e))?;
                Ok(done.rows_affected() == 1)
            }

            pub(in $crate::store) async fn delete_user(
                &self,
                username: &str,
                now: i64,
            ) -> Result<Option<u64>, StoreError> {
                let what = "remove user";
                let mut tx = begin_write(&self.writer, what).await?;
                let subject: Option<String> =
                    sqlx::query_scalar("SELECT subject FROM users WHERE username = $1")
                        .bind(username)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(|e| error(format!("cannot read user `{username}`"), e))?;
                let Some(subject) = subject else {
                    rollback(tx, what).await?;
                    return Ok(None);
                };
                let revoked = revoke_families(
                    &mut tx,
                    "SELECT grant_id FROM tokens WHERE subject = $1 \
                     UNION SELECT grant_id FROM codes WHERE subject = $1",
                    &subject,
                    now,
                )
                .await?;
                sqlx::query("DELETE FROM consents WHERE subject = $1")
                    .bind(&subject)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        error(format!("cannot remove the consents of user `{username}`"), e)
                    })?;
                sqlx::query("DELETE FROM users WHERE username = $1")
                    .bind(username)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| error(format!("cannot remove user `{username}`"), e))?;
                commit(tx, what).await?;
                Ok(Some(revoked))
            }

            pub(in $crate::store) async fn list_consents(
                &self,
                subject: &str,
            ) -> Result<Vec<$crate::store::Consent>, StoreError> {
                let rows = sqlx::query(
                    "SELECT subject, client_id, scope, granted_at FROM consents WHERE subject = $1",
                )
                .bind(subject)
                .fetch_all(&self.readers)
                .await
                .map_err(|e| error("cannot list consents", e))?;
                let mut consents = rows
                    .iter()
                    .map(|row| {
                        Ok($crate::store::Consent {
                            subject: get(row, "subject")?,
                            client_id: get(row, "client_id")?,
                            scope: split_scope(&get::<String>(row, "scope")?),
                            granted_at: get(row, "granted_at")?,
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                consents.sort_unstable_by(|a, b| a.client_id.cmp(&b.client_id));
                Ok(consents)
            }

            pub(in $crate::store) async fn delete_consent(
                &self,
                subject: &str,
                client_id: &str,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM consents WHERE subject = $1 AND client_id = $2")
                    .bind(subject)
                    .bind(client_id)
                    .execute(&self.writer)
                    .await
                    .map_err(|e| {
                        error(format!("cannot remove the consent of client `{client_id}`"), e)
                    })?;
                Ok(done.rows_affected() > 0)
            }

            pub(in $crate::store) async fn insert_audit(
                &self,
                record: &$crate::store::NewAuditRecord,
            ) -> Result<i64, StoreError> {
                sqlx::query_scalar(
                    "INSERT INTO audit_records (at, actor, action, target, before, after) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(record.at)
                .bind(&record.actor)
                .bind(&record.action)
                .bind(&record.target)
                .bind(record.before.as_deref())
                .bind(record.after.as_deref())
                .fetch_one(&self.writer)
                .await
                .map_err(|e| error(format!("cannot record `{}` in the audit trail", record.action), e))
            }

            pub(in $crate::store) async fn list_audit(
                &self,
                filter: &$crate::store::AuditFilter,
            ) -> Result<Vec<$crate::store::AuditRecord>, StoreError> {
                // Newest first, so that a limit keeps the latest; turned
                // around below.
                let rows = sqlx::query(
                    "SELECT id, at, actor, action, target, before, after FROM audit_records \
                     WHERE ($1 IS NULL OR at >= $1) AND ($2 IS NULL OR at < $2) \
                     AND ($3 IS NULL OR actor = $3) ORDER BY id DESC LIMIT $4",
                )
                .bind(filter.since)
                .bind(filter.until)
                .bind(filter.actor.as_deref())
                .bind(filter.limit.unwrap_or(i64::MAX))
                .fetch_all(&self.readers)
                .await
                .map_err(|e| error("cannot list the audit trail", e))?;
                let mut records = rows
                    .iter()
                    .map(|row| {
                        Ok($crate::store::AuditRecord {
                            id: get(row, "id")?,
                            at: get(row, "at")?,
                            actor: get(row, "actor")?,
                            action: get(row, "action")?,
                            target: get(row, "target")?,
                            before: get(row, "before")?,
                            after: get(row, "after")?,
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                records.reverse();
                Ok(records)
            }
        }

        /// Counts one more change to the registered clients (after the change,
        /// so that a cache that sees the new count reads the new rows).
        async fn bump_clients<'c, E>(executor: E) -> Result<(), StoreError>
        where
            E: sqlx::Executor<'c, Database = $db>,
        {
            sqlx::query("UPDATE change_counters SET value = value + 1 WHERE name = 'clients'")
                .execute(executor)
                .await
                .map_err(|e| error("cannot count a change to the clients", e))?;
            Ok(())
        }

        /// Revokes every token of the families `select` names (bound to
        /// `key`), each family locked first in sorted order, and marks
        /// their codes redeemed and replayed so that a code not yet
        /// redeemed revokes its grant when presented and tokens inserted
        /// for the family later are born revoked. Returns how many tokens
        /// were still unrevoked.
        async fn revoke_families(
            tx: &mut sqlx::Transaction<'static, $db>,
            select: &'static str,
            key: &str,
            now: i64,
        ) -> Result<u64, StoreError> {
            let mut grant_ids: Vec<String> = sqlx::query_scalar(select)
                .bind(key)
                .fetch_all(&mut **tx)
                .await
                .map_err(|e| error("cannot list the token families to revoke", e))?;
            grant_ids.sort_unstable();
            grant_ids.dedup();
            let mut revoked = 0;
            for grant_id in &grant_ids {
                lock_family(&mut *tx, grant_id).await?;
                revoked += revoke_family(&mut *tx, grant_id, now).await?;
                sqlx::query(
                    "UPDATE codes SET redeemed_at = COALESCE(redeemed_at, $1), \
                     replayed_at = COALESCE(replayed_at, $1) WHERE grant_id = $2",
                )
                .bind(now)
                .bind(grant_id)
                .execute(&mut **tx)
                .await
                .map_err(|e| error(format!("cannot revoke the codes of grant `{grant_id}`"), e))?;
            }
            Ok(revoked)
        }
    };
}

pub(super) use manage_operations;
