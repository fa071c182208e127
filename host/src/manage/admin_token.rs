//! The admin tokens the admin API accepts: create (the token is returned once
//! and only its SHA-256 stored), list, revoke, and the check of a presented
//! token. Each change writes one audit record that names the token by its id,
//! never the token.

use serde::{Deserialize, Serialize};

use super::{Actor, ManageError, audit, not_found};
use crate::secret;
use crate::store::{AdminTokenRow, Store};

/// What every admin token starts with, so that one found in a log or a
/// repository is recognised for what it is.
pub const ADMIN_TOKEN_PREFIX: &str = "gbadm_";

/// The longest lifetime a new admin token may be given (one year).
pub const MAX_ADMIN_TOKEN_LIFETIME_SECONDS: i64 = 366 * 24 * 3600;

/// An admin token as operators see it: never the token or its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AdminTokenView {
    pub id: String,
    pub name: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A new admin token: `token` is shown once, never stored in the clear.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AdminTokenCreated {
    pub id: String,
    pub name: Option<String>,
    pub token: String,
    pub expires_at: Option<i64>,
}

/// What `admin token create` asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminTokenRequest {
    /// A name for people (who holds the token, what for).
    pub name: Option<String>,
    /// Seconds until the token expires; `None`: it never does.
    pub expires_in: Option<i64>,
}

impl From<&AdminTokenRow> for AdminTokenView {
    fn from(row: &AdminTokenRow) -> Self {
        AdminTokenView {
            id: row.id.clone(),
            name: row.name.clone(),
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// Creates an admin token; the result holds the token, the only time it is seen.
pub async fn admin_token_create(
    store: &Store,
    actor: &Actor,
    request: AdminTokenRequest,
    now: i64,
) -> Result<AdminTokenCreated, ManageError> {
    if let Some(name) = &request.name
        && (name.is_empty() || name.len() > 200 || name.chars().any(char::is_control))
    {
        return Err(ManageError::Invalid {
            field: "name",
            message: format!(
                "{name:?} must be 1 to 200 characters, none of them control characters"
            ),
        });
    }
    let expires_at = match request.expires_in {
        None => None,
        Some(seconds) if (1..=MAX_ADMIN_TOKEN_LIFETIME_SECONDS).contains(&seconds) => {
            Some(now + seconds)
        }
        Some(seconds) => {
            return Err(ManageError::Invalid {
                field: "expires_in",
                message: format!(
                    "{seconds} is outside 1..={MAX_ADMIN_TOKEN_LIFETIME_SECONDS} seconds"
                ),
            });
        }
    };
    let id = hex::encode(secret::random_bytes(8));
    let token = format!("{ADMIN_TOKEN_PREFIX}{}", secret::new_token());
    let row = AdminTokenRow {
        id: id.clone(),
        name: request.name.clone(),
        token_hash: secret::token_hash(&token).to_vec(),
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    store.insert_admin_token(&row).await?;
    let view = AdminTokenView::from(&row);
    audit(
        store,
        actor,
        "admin_token.create",
        &id,
        None,
        Some(serde_json::to_value(&view).unwrap_or_default()),
        now,
    )
    .await?;
    Ok(AdminTokenCreated {
        id,
        name: request.name,
        token,
        expires_at,
    })
}

/// Every admin token, revoked and expired ones too, oldest first.
pub async fn admin_token_list(store: &Store) -> Result<Vec<AdminTokenView>, ManageError> {
    Ok(store
        .list_admin_tokens()
        .await?
        .iter()
        .map(AdminTokenView::from)
        .collect())
}

/// Revokes the admin token `id`: every request with it is refused from now on.
pub async fn admin_token_revoke(
    store: &Store,
    actor: &Actor,
    id: &str,
    now: i64,
) -> Result<AdminTokenView, ManageError> {
    let before = admin_token_list(store)
        .await?
        .into_iter()
        .find(|token| token.id == id)
        .ok_or_else(|| not_found("admin token", id))?;
    if !store.revoke_admin_token(id, now).await? {
        return Err(not_found("admin token", id));
    }
    let after = AdminTokenView {
        revoked_at: Some(before.revoked_at.unwrap_or(now)),
        ..before.clone()
    };
    audit(
        store,
        actor,
        "admin_token.revoke",
        id,
        Some(serde_json::to_value(&before).unwrap_or_default()),
        Some(serde_json::to_value(&after).unwrap_or_default()),
        now,
    )
    .await?;
    Ok(after)
}

/// The id of the admin token `presented` when it is known, unrevoked and
/// unexpired at `now`; `None` otherwise. Looked up by its SHA-256, so the
/// comparison leaks nothing about stored tokens.
pub async fn admin_token_verify(
    store: &Store,
    presented: &str,
    now: i64,
) -> Result<Option<String>, ManageError> {
    if !presented.starts_with(ADMIN_TOKEN_PREFIX) {
        return Ok(None);
    }
    let Some(row) = store
        .find_admin_token(&secret::token_hash(presented))
        .await?
    else {
        return Ok(None);
    };
    let live = row.revoked_at.is_none() && row.expires_at.is_none_or(|at| now < at);
    Ok(live.then_some(row.id))
}

#[cfg(test)]
mod tests;
