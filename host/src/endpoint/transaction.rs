//! Transactions kept in the session while the user signs in and decides
//! (OAuth2orize's transaction store): several per session, each with an id,
//! a CSRF token, an expiry, removed once decided. Two kinds share the store:
//! an authorization request, and a plugin's user step after a right code. What an
//! unauthenticated request may store is bounded: `state` and the whole
//! transaction have a size cap, and a session without a signed-in user lives
//! only as long as a transaction.

use serde::{Deserialize, Serialize};
use tower_sessions::{Expiry, Session};

use crate::oauth::OAuthError;
use crate::openid::request::SignInRequest;
use crate::openid::{ACR_PASSWORD, Authentication};
use crate::plugin::ResponseMode;

const TRANSACTIONS: &str = "grantbox.transactions";
const USER: &str = "grantbox.user";
const CSRF: &str = "grantbox.csrf";
const THROTTLE_KEY: &str = "grantbox.throttle";
/// At most this many open transactions per session; the oldest goes first.
const MAX_TRANSACTIONS: usize = 16;
/// The longest `state` kept and sent back, in bytes.
pub const MAX_STATE_BYTES: usize = 2048;
/// The largest transaction kept, in bytes of its stored (JSON) form: with
/// [`MAX_TRANSACTIONS`], what one session may hold is bounded too.
pub const MAX_TRANSACTION_BYTES: usize = 4096;
/// How long a session with a signed-in user lives without being used.
pub const SIGNED_IN_SESSION_LIFETIME: time::Duration = time::Duration::hours(8);

/// An authorization request waiting for the user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transaction {
    pub id: String,
    pub csrf_token: String,
    pub expires_at: i64,
    pub client_id: String,
    /// Where the response goes: the validated `redirect_uri`.
    pub redirect_uri: String,
    /// The `redirect_uri` the client sent, if it sent one (bound to the code).
    pub sent_redirect_uri: Option<String>,
    pub response_type: Vec<String>,
    #[serde(with = "mode")]
    pub response_mode: ResponseMode,
    pub scope: Vec<String>,
    /// RFC 8707: the resources the request was authorized for, bound to the
    /// code the grant issues.
    #[serde(default)]
    pub resources: Vec<String>,
    pub state: Option<String>,
    /// What the grant plugin kept (e.g. the PKCE challenge).
    pub data: Vec<(String, String)>,
    /// The fingerprint of the plugin version that began the transaction
    /// (`plugin::registry::fingerprint`), so the same version decides it.
    #[serde(default)]
    pub plugin: Option<String>,
    /// When the request arrived (Unix seconds): `prompt=login` and
    /// `max_age` ask for a sign-in measured from it.
    #[serde(default)]
    pub requested_at: i64,
    /// OIDC Core §3.1.2.1: what the request asks of the sign-in and consent
    /// (`prompt`, `max_age`, `login_hint`, `acr_values`).
    #[serde(default)]
    pub sign_in: SignInRequest,
    /// Set when the user signed in on the sign-in page this transaction
    /// sent them to (`prompt=login`, `max_age`): that sign-in answers the
    /// request whatever second the clock shows.
    #[serde(default)]
    pub signed_in_for_it: bool,
    /// RFC 9449 §10 `dpop_jkt`: the key the code's token request must
    /// prove, bound to the code the grant issues.
    #[serde(default)]
    pub dpop_jkt: Option<String>,
}

impl Transaction {
    /// Whether `user`'s sign-in is recent enough for this request: with
    /// `max_age`, at most that long before the request; with `prompt=login`
    /// (or `max_age=0`), one made after the request, which only a sign-in
    /// on the page this transaction led to proves (times are in seconds: a
    /// sign-in earlier in the same second as the request is not after it).
    pub fn sign_in_is_fresh(&self, user: &SessionUser) -> bool {
        self.signed_in_for_it
            || self
                .sign_in
                .signed_in_since(self.requested_at)
                .is_none_or(|since| since < self.requested_at && user.auth_time >= since)
    }

    /// How `user` signed in, as the ID token states it: `auth_time` from
    /// the session, `amr` `pwd`, and `acr` only when the request asked
    /// (`acr_values`; a password sign-in is the one context class offered).
    pub fn authentication(&self, user: &SessionUser) -> Authentication {
        Authentication {
            acr: (self.sign_in.acr_requested).then(|| ACR_PASSWORD.to_owned()),
            ..Authentication::password(user.auth_time)
        }
    }
}

/// A plugin's user step waiting for the user's decision: the user entered a
/// code the plugin knew, and is asked to sign in and consent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserStepTransaction {
    pub id: String,
    pub csrf_token: String,
    pub expires_at: i64,
    /// The user step's path, as the plugin's manifest declares it.
    pub step: String,
    /// The manifest name of the plugin that knew the code, for messages.
    pub plugin_name: String,
    /// The fingerprint of that plugin version (`plugin::registry::fingerprint`),
    /// so the same version hears the outcome, even across a reload.
    pub plugin: String,
    pub client_id: String,
    pub scope: Vec<String>,
    /// What the plugin returned with the code, handed back with the outcome.
    pub data: Vec<(String, String)>,
}

/// One stored transaction of either kind. Untagged, so that sessions saved
/// before user steps existed (a list of bare authorization transactions)
/// still read: an authorization needs fields a user step has not.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stored {
    Authorization(Transaction),
    UserStep(UserStepTransaction),
}

impl Stored {
    fn id(&self) -> &str {
        match self {
            Stored::Authorization(t) => &t.id,
            Stored::UserStep(t) => &t.id,
        }
    }

    fn expires_at(&self) -> i64 {
        match self {
            Stored::Authorization(t) => t.expires_at,
            Stored::UserStep(t) => t.expires_at,
        }
    }
}

impl From<Transaction> for Stored {
    fn from(transaction: Transaction) -> Self {
        Stored::Authorization(transaction)
    }
}

impl From<UserStepTransaction> for Stored {
    fn from(transaction: UserStepTransaction) -> Self {
        Stored::UserStep(transaction)
    }
}

/// The signed-in resource owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionUser {
    pub subject: String,
    pub username: String,
    pub auth_time: i64,
}

/// A session could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("session store: {0}")]
pub struct SessionError(String);

fn failed(error: tower_sessions::session::Error) -> SessionError {
    SessionError(error.to_string())
}

type Transactions = Vec<Stored>;

/// Refuses a transaction too large to keep for a user who has not signed in:
/// a `state` over [`MAX_STATE_BYTES`] or a whole over [`MAX_TRANSACTION_BYTES`].
pub fn check_size(transaction: &Transaction) -> Result<(), OAuthError> {
    if let Some(state) = &transaction.state
        && state.len() > MAX_STATE_BYTES
    {
        return Err(OAuthError::invalid_request(format!(
            "state is longer than {MAX_STATE_BYTES} bytes"
        )));
    }
    let size = serde_json::to_vec(transaction).map_or(usize::MAX, |json| json.len());
    if size > MAX_TRANSACTION_BYTES {
        return Err(OAuthError::invalid_request(format!(
            "the authorization request is larger than {MAX_TRANSACTION_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Refuses a user-step transaction over [`MAX_TRANSACTION_BYTES`]: it is
/// kept before the user signs in, and its size is the plugin's data.
pub fn check_user_step_size(transaction: &UserStepTransaction) -> Result<(), OAuthError> {
    let size = serde_json::to_vec(transaction).map_or(usize::MAX, |json| json.len());
    if size > MAX_TRANSACTION_BYTES {
        return Err(OAuthError::invalid_request(format!(
            "the data of a pending user step is larger than {MAX_TRANSACTION_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Sets how long a session about to be saved lives: [`SIGNED_IN_SESSION_LIFETIME`]
/// with a signed-in user, else `anonymous` (the transaction lifetime), so
/// that abandoned authorization requests are purged soon. Leaves a session
/// the request did not change alone, so reading one never writes it.
pub async fn set_session_lifetime(
    session: &Session,
    anonymous: time::Duration,
) -> Result<(), SessionError> {
    if !session.is_modified() || session.is_empty().await {
        return Ok(());
    }
    let lifetime = match user(session).await? {
        Some(_) => SIGNED_IN_SESSION_LIFETIME,
        None => anonymous,
    };
    session.set_expiry(Some(Expiry::OnInactivity(lifetime)));
    Ok(())
}

pub async fn save(
    session: &Session,
    transaction: impl Into<Stored>,
    now: i64,
) -> Result<(), SessionError> {
    let mut transactions = stored(session).await?;
    transactions.retain(|t| t.expires_at() > now);
    if transactions.len() >= MAX_TRANSACTIONS {
        transactions.remove(0);
    }
    transactions.push(transaction.into());
    session
        .insert(TRANSACTIONS, transactions)
        .await
        .map_err(failed)
}

async fn stored(session: &Session) -> Result<Transactions, SessionError> {
    Ok(session
        .get(TRANSACTIONS)
        .await
        .map_err(failed)?
        .unwrap_or_default())
}

/// The open transaction of either kind with this id, if it has not expired.
pub async fn find_any(
    session: &Session,
    id: &str,
    now: i64,
) -> Result<Option<Stored>, SessionError> {
    Ok(stored(session)
        .await?
        .into_iter()
        .find(|t| t.id() == id && t.expires_at() > now))
}

/// The open authorization transaction with this id, if it has not expired.
pub async fn find(
    session: &Session,
    id: &str,
    now: i64,
) -> Result<Option<Transaction>, SessionError> {
    Ok(match find_any(session, id, now).await? {
        Some(Stored::Authorization(transaction)) => Some(transaction),
        _ => None,
    })
}

/// The open user-step transaction with this id, if it has not expired.
pub async fn find_user_step(
    session: &Session,
    id: &str,
    now: i64,
) -> Result<Option<UserStepTransaction>, SessionError> {
    Ok(match find_any(session, id, now).await? {
        Some(Stored::UserStep(transaction)) => Some(transaction),
        _ => None,
    })
}

pub async fn remove(session: &Session, id: &str) -> Result<(), SessionError> {
    let mut transactions = stored(session).await?;
    transactions.retain(|t| t.id() != id);
    session
        .insert(TRANSACTIONS, transactions)
        .await
        .map_err(failed)
}

pub async fn user(session: &Session) -> Result<Option<SessionUser>, SessionError> {
    session.get(USER).await.map_err(failed)
}

/// Signs a user in: a new session id first (no session fixation), open
/// transactions carried over.
pub async fn sign_in(session: &Session, user: SessionUser) -> Result<(), SessionError> {
    session.cycle_id().await.map_err(failed)?;
    session
        .insert(CSRF, crate::secret::new_token())
        .await
        .map_err(failed)?;
    session.insert(USER, user).await.map_err(failed)
}

/// Records that the user signed in on the sign-in page the authorization
/// transaction `id` led to (see [`Transaction::sign_in_is_fresh`]).
pub async fn signed_in_for(session: &Session, id: &str) -> Result<(), SessionError> {
    let mut transactions = stored(session).await?;
    let mut found = false;
    for stored in &mut transactions {
        if let Stored::Authorization(transaction) = stored
            && transaction.id == id
        {
            transaction.signed_in_for_it = true;
            found = true;
        }
    }
    if !found {
        return Ok(());
    }
    session
        .insert(TRANSACTIONS, transactions)
        .await
        .map_err(failed)
}

pub async fn sign_out(session: &Session) -> Result<(), SessionError> {
    session.flush().await.map_err(failed)
}

/// The session's CSRF token for the login and logout forms, made on first use.
pub async fn csrf_token(session: &Session) -> Result<String, SessionError> {
    if let Some(token) = session.get::<String>(CSRF).await.map_err(failed)? {
        return Ok(token);
    }
    let token = crate::secret::new_token();
    session.insert(CSRF, token.clone()).await.map_err(failed)?;
    Ok(token)
}

/// The session's key for throttling wrong user codes, made on first use.
/// Unlike the session id and the CSRF token it survives signing in, so a
/// session's count of wrong codes goes on after the user signs in.
pub async fn throttle_key(session: &Session) -> Result<String, SessionError> {
    if let Some(key) = session.get::<String>(THROTTLE_KEY).await.map_err(failed)? {
        return Ok(key);
    }
    let key = crate::secret::new_token();
    session
        .insert(THROTTLE_KEY, key.clone())
        .await
        .map_err(failed)?;
    Ok(key)
}

/// Constant-time comparison of a presented CSRF token.
pub fn tokens_match(expected: &str, presented: Option<&str>) -> bool {
    use subtle::ConstantTimeEq;
    presented.is_some_and(|p| {
        p.len() == expected.len() && bool::from(p.as_bytes().ct_eq(expected.as_bytes()))
    })
}

#[cfg(test)]
mod tests;

mod mode {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::oauth::redirect::{mode_name, parse_mode};
    use crate::plugin::ResponseMode;

    pub fn serialize<S: Serializer>(mode: &ResponseMode, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(mode_name(*mode))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<ResponseMode, D::Error> {
        let name = String::deserialize(deserializer)?;
        parse_mode(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown response mode {name}")))
    }
}
