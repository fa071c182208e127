//! The SQL of pushed authorization requests (RFC 9126, migration 0019): a
//! client's pushed parameters stored under SHA-256 of the random part of
//! their `request_uri`, and taken back once, by that client, before they
//! expire. A macro expanded inside
//! [`shared_operations!`](super::sql::shared_operations) like the admin
//! tokens' operations, and the [`Store`] methods that dispatch to it; expired
//! rows go with `purge_expired`.

use super::{Store, StoreError};

/// A pushed authorization request as stored: never the `request_uri`, only
/// the hash of its reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedRequest {
    /// SHA-256 of the random part of the `request_uri`
    /// ([`crate::secret::token_hash`]).
    pub request_uri_hash: [u8; 32],
    /// The client that pushed it, the only one that may use it.
    pub client_id: String,
    /// The authorization request's parameters in request order, client
    /// credentials left out.
    pub parameters: Vec<(String, String)>,
    /// The first second at which it can no longer be used.
    pub expires_at: i64,
}

impl Store {
    /// Stores a pushed authorization request.
    pub async fn insert_pushed_request(&self, request: &PushedRequest) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.insert_pushed_request(request).await,
            Store::Postgres(s) => s.insert_pushed_request(request).await,
        }
    }

    /// Takes the parameters of the pushed request `request_uri_hash` of
    /// `client_id` that has not expired at `now`, deleting it in the same
    /// statement, so of two instances presented the same `request_uri` at
    /// once one gets them (RFC 9126 §4: one-time use). `None` when there is
    /// no such request: unknown, used, expired, or another client's (which
    /// leaves it to its own client).
    pub async fn take_pushed_request(
        &self,
        request_uri_hash: &[u8; 32],
        client_id: &str,
        now: i64,
    ) -> Result<Option<Vec<(String, String)>>, StoreError> {
        match self {
            Store::Sqlite(s) => {
                s.take_pushed_request(request_uri_hash, client_id, now)
                    .await
            }
            Store::Postgres(s) => {
                s.take_pushed_request(request_uri_hash, client_id, now)
                    .await
            }
        }
    }
}

/// The pushed authorization request operations, for the sqlx database
/// `$db`, as methods of `$store`; expanded in the `operations` module of
/// each backend.
macro_rules! pushed_request_operations {
    ($store:ident, $db:ident) => {
        impl $store {
            pub(in $crate::store) async fn insert_pushed_request(
                &self,
                request: &$crate::store::PushedRequest,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO pushed_authorization_requests \
                     (request_uri_hash, client_id, parameters, expires_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(&request.request_uri_hash[..])
                .bind(&request.client_id)
                .bind(to_json(&request.parameters, "pushed authorization request")?)
                .bind(request.expires_at)
                .execute(&self.writer)
                .await
                .map_err(|e| {
                    insert_error(
                        format!("pushed authorization request of client `{}`", request.client_id),
                        e,
                    )
                })?;
                Ok(())
            }

            pub(in $crate::store) async fn take_pushed_request(
                &self,
                request_uri_hash: &[u8; 32],
                client_id: &str,
                now: i64,
            ) -> Result<Option<Vec<(String, String)>>, StoreError> {
                // One statement: the row a DELETE removed is no other's.
                let parameters: Option<String> = sqlx::query_scalar(
                    "DELETE FROM pushed_authorization_requests \
                     WHERE request_uri_hash = $1 AND client_id = $2 AND expires_at > $3 \
                     RETURNING parameters",
                )
                .bind(&request_uri_hash[..])
                .bind(client_id)
                .bind(now)
                .fetch_optional(&self.writer)
                .await
                .map_err(|e| {
                    error(
                        format!("cannot take a pushed authorization request of client `{client_id}`"),
                        e,
                    )
                })?;
                parameters
                    .map(|text| {
                        from_json(
                            &text,
                            &format!("pushed authorization request of client `{client_id}`"),
                        )
                    })
                    .transpose()
            }
        }
    };
}

pub(super) use pushed_request_operations;
