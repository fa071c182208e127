//! The SQL of the instance registry (`grantbox instances`): each `grantbox
//! serve` registers its row at start, refreshes its heartbeat and plugin set
//! fingerprint, and deletes it on a clean shutdown; stale rows are purged. A
//! macro expanded inside [`shared_operations!`](super::sql::shared_operations),
//! so it runs the same statements on both backends.

/// The instance registry's store operations, for the sqlx database `$db`,
/// as methods of `$store`; expanded in the `operations` module of each backend.
macro_rules! instance_operations {
    ($store:ident, $db:ident) => {
        impl $store {
            pub(in $crate::store) async fn register_instance(
                &self,
                instance: &$crate::store::Instance,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO instances \
                     (id, address, admin_address, version, plugins, started_at, heartbeat_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (id) DO UPDATE SET address = $2, admin_address = $3, \
                     version = $4, plugins = $5, started_at = $6, heartbeat_at = $7",
                )
                .bind(&instance.id)
                .bind(&instance.address)
                .bind(instance.admin_address.as_deref())
                .bind(&instance.version)
                .bind(&instance.plugins)
                .bind(instance.started_at)
                .bind(instance.heartbeat_at)
                .execute(&self.writer)
                .await
                .map_err(|e| error(format!("cannot register instance `{}`", instance.id), e))?;
                Ok(())
            }

            pub(in $crate::store) async fn heartbeat_instance(
                &self,
                id: &str,
                plugins: &str,
                now: i64,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE instances SET heartbeat_at = $2, plugins = $3 WHERE id = $1",
                )
                .bind(id)
                .bind(now)
                .bind(plugins)
                .execute(&self.writer)
                .await
                .map_err(|e| error(format!("cannot record the heartbeat of instance `{id}`"), e))?;
                Ok(done.rows_affected() == 1)
            }

            pub(in $crate::store) async fn deregister_instance(
                &self,
                id: &str,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM instances WHERE id = $1")
                    .bind(id)
                    .execute(&self.writer)
                    .await
                    .map_err(|e| error(format!("cannot deregister instance `{id}`"), e))?;
                Ok(done.rows_affected() == 1)
            }

            pub(in $crate::store) async fn purge_instances(
                &self,
                heartbeat_before: i64,
            ) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM instances WHERE heartbeat_at < $1")
                    .bind(heartbeat_before)
                    .execute(&self.writer)
                    .await
                    .map_err(|e| error("cannot purge stale instances", e))?;
                sqlx::query("DELETE FROM reload_outcomes WHERE at < $1")
                    .bind(heartbeat_before)
                    .execute(&self.writer)
                    .await
                    .map_err(|e| error("cannot purge old reload outcomes", e))?;
                Ok(done.rows_affected())
            }

            pub(in $crate::store) async fn record_reload_outcome(
                &self,
                outcome: &$crate::store::ReloadOutcome,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO reload_outcomes \
                     (request_id, instance_id, ok, plugins, error, at) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (request_id, instance_id) DO UPDATE SET \
                     ok = $3, plugins = $4, error = $5, at = $6",
                )
                .bind(&outcome.request_id)
                .bind(&outcome.instance_id)
                .bind(outcome.ok)
                .bind(&outcome.plugins)
                .bind(outcome.error.as_deref())
                .bind(outcome.at)
                .execute(&self.writer)
                .await
                .map_err(|e| {
                    error(
                        format!("cannot record the reload outcome of instance `{}`", outcome.instance_id),
                        e,
                    )
                })?;
                Ok(())
            }

            pub(in $crate::store) async fn reload_outcomes(
                &self,
                request_id: &str,
            ) -> Result<Vec<$crate::store::ReloadOutcome>, StoreError> {
                let rows = sqlx::query(
                    "SELECT request_id, instance_id, ok, plugins, error, at FROM reload_outcomes \
                     WHERE request_id = $1 ORDER BY instance_id",
                )
                .bind(request_id)
                .fetch_all(&self.readers)
                .await
                .map_err(|e| error(format!("cannot read the outcomes of reload `{request_id}`"), e))?;
                rows.iter()
                    .map(|row| {
                        Ok($crate::store::ReloadOutcome {
                            request_id: get(row, "request_id")?,
                            instance_id: get(row, "instance_id")?,
                            ok: get(row, "ok")?,
                            plugins: get(row, "plugins")?,
                            error: get(row, "error")?,
                            at: get(row, "at")?,
                        })
                    })
                    .collect()
            }

            pub(in $crate::store) async fn list_instances(
                &self,
            ) -> Result<Vec<$crate::store::Instance>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, address, admin_address, version, plugins, started_at, \
                     heartbeat_at FROM instances ORDER BY started_at, id",
                )
                .fetch_all(&self.readers)
                .await
                .map_err(|e| error("cannot list the instances", e))?;
                rows.iter()
                    .map(|row| {
                        Ok($crate::store::Instance {
                            id: get(row, "id")?,
                            address: get(row, "address")?,
                            admin_address: get(row, "admin_address")?,
                            version: get(row, "version")?,
                            plugins: get(row, "plugins")?,
                            started_at: get(row, "started_at")?,
                            heartbeat_at: get(row, "heartbeat_at")?,
                        })
                    })
                    .collect()
            }
        }
    };
}

pub(super) use instance_operations;
