//! The host side of every capability interface in the WIT. Each call first
//! checks that the plugin was granted the capability; a refusal is a
//! `host-error::denied` the plugin sees, logged and counted, never a trap.

use super::Capability;
use super::TokenTarget;
use super::bindings::grantbox::plugin::{
    clock, codes, config, key_value, log, openid, random, refresh_tokens, signing, token_exchange,
    tokens, types, users,
};
use super::runtime::CallCtx;
use crate::clock::Clock;
use crate::keys::Alg;
use crate::oauth::{ErrorCode, OAuthError, access_token, dpop, resource};
use crate::openid::Authentication;
use crate::openid::claims::released;
use crate::openid::id_token::{self, IdToken};
use crate::ratelimit::{Refusal, SignInOrigin};
use crate::secret;
use crate::store::{
    AccessTokenFormat, GrantOrigin, NewCode, NewToken, RedeemOutcome, RotateOutcome, SignIn,
    StoreError, TokenKind, TokenRecord,
};

use types::HostError;

/// Bounds on what a plugin may hand the host in one call.
const MAX_RANDOM_BYTES: u32 = 1024;
const MAX_LOG_BYTES: usize = 4096;
const MAX_KEY_BYTES: usize = 512;
const MAX_VALUE_BYTES: usize = 64 * 1024;
const MAX_TOKEN_BYTES: usize = 4096;
const MAX_SCOPE_TOKENS: usize = 64;
const MAX_DATA_BYTES: usize = 8 * 1024;
const MAX_ISSUED_PER_CALL: usize = 16;
const MAX_AUDIENCE_VALUES: usize = 16;
const MAX_AUDIENCE_BYTES: usize = 2048;

use crate::openid::OPENID_SCOPE;

impl CallCtx {
    /// Fails unless the plugin holds `capability` and the call's host budget
    /// (count and time) has room for one more host call.
    fn check(&mut self, capability: Capability) -> Result<(), HostError> {
        self.spend_host_call()
            .map_err(|spent| HostError::Unavailable(spent.to_string()))?;
        if self.granted(capability) {
            return Ok(());
        }
        metrics::counter!("grantbox_plugin_denied_calls_total", "plugin" => self.plugin_name().to_owned(), "capability" => capability.name()).increment(1);
        tracing::warn!(plugin = %self.plugin_name(), capability = capability.name(), "plugin called a capability it was not granted");
        Err(HostError::Denied(format!(
            "capability {} is not granted to plugin {}",
            capability.name(),
            self.plugin_name()
        )))
    }

    /// The calling client's id; capabilities that issue need one.
    fn client_id(&self) -> Result<String, HostError> {
        self.client
            .as_ref()
            .map(|c| c.client_id.clone())
            .ok_or_else(|| HostError::InvalidArgument("this call has no client".into()))
    }

    /// Fails unless `count` more tokens or codes fit in this call's cap;
    /// checked before anything is stored.
    fn reserve_issued(&self, count: usize) -> Result<(), HostError> {
        if self.issued.len() + count > MAX_ISSUED_PER_CALL {
            return Err(HostError::InvalidArgument(format!(
                "at most {MAX_ISSUED_PER_CALL} tokens or codes a call"
            )));
        }
        Ok(())
    }

    /// Remembers a token or code the host stored in this call (after
    /// [`Self::reserve_issued`] made room for it).
    fn remember_issued(&mut self, value: &str) {
        self.issued.push(value.to_owned());
    }

    /// Fails unless writing `key` with `value_len` bytes of value keeps this
    /// call within its key-value write budget and the plugin's namespace
    /// within its quota of keys and bytes; then counts the write.
    ///
    /// The namespace is measured before the write, not in the same statement:
    /// calls running at once may each pass and together overshoot the quota
    /// by at most their per-call write budgets. A recent measurement stands in
    /// for a new one while its upper bound fits (`KeyValueEstimate`).
    async fn reserve_key_value_write(
        &mut self,
        services: &super::HostServices,
        key: &str,
        value_len: usize,
        now: i64,
    ) -> Result<(), HostError> {
        let quota = self.key_value_quota();
        let size = (key.len() + value_len) as u64;
        if self.key_value_written + size > quota.write_bytes_per_call {
            return Err(HostError::InvalidArgument(format!(
                "key-value writes of one call exceed {} bytes (plugin {} limits.key_value_write_kib)",
                quota.write_bytes_per_call,
                self.plugin_name()
            )));
        }
        if self.key_value_estimate().admit(quota, size) {
            self.key_value_written += size;
            return Ok(());
        }
        let started = Clock::instant();
        let usage = services.store.kv_usage(self.plugin_name(), key, now).await;
        self.add_host_time(started, usage.is_err());
        let usage = usage.map_err(unavailable)?;
        let keys = usage.keys + u64::from(usage.key_bytes.is_none());
        let bytes = usage.bytes - usage.key_bytes.unwrap_or(0) + size;
        if keys > quota.keys {
            return Err(HostError::InvalidArgument(format!(
                "the key-value namespace of plugin {} is full: at most {} keys (limits.key_value_keys)",
                self.plugin_name(),
                quota.keys
            )));
        }
        if bytes > quota.bytes {
            return Err(HostError::InvalidArgument(format!(
                "the key-value namespace of plugin {} is full: at most {} bytes (limits.key_value_kib)",
                self.plugin_name(),
                quota.bytes
            )));
        }
        self.key_value_estimate().record(keys, bytes);
        self.key_value_written += size;
        Ok(())
    }

    /// Fails unless every scope token is registered for the calling client.
    fn check_registered_scope(&self, scope: &[String]) -> Result<(), HostError> {
        let unregistered = self
            .client
            .as_ref()
            .and_then(|client| scope.iter().find(|s| !client.scopes.contains(s)));
        match unregistered {
            Some(unknown) => Err(HostError::InvalidArgument(format!(
                "scope {unknown} is not registered for the client"
            ))),
            None => Ok(()),
        }
    }

    /// Stores minted tokens (host time, not guest time) and remembers them as
    /// issued in this call, so the plugin may return them.
    async fn store_issued(
        &mut self,
        services: &super::HostServices,
        rows: &[NewToken],
        origin: GrantOrigin,
        issued: &tokens::IssuedTokens,
    ) -> Result<(), HostError> {
        self.reserve_issued(rows.len())?;
        let started = Clock::instant();
        let stored = services.store.insert_tokens(rows, origin).await;
        self.add_host_time(started, stored.is_err());
        stored.map_err(unavailable)?;
        self.remember_minted(rows, issued);
        Ok(())
    }

    /// Remembers the tokens [`mint`] made as issued in this call, and the
    /// access token as DPoP-bound when it is.
    fn remember_minted(&mut self, rows: &[NewToken], issued: &tokens::IssuedTokens) {
        self.remember_issued(&issued.access_token);
        if let Some(refresh) = &issued.refresh_token {
            self.remember_issued(refresh);
        }
        if rows.first().is_some_and(|access| access.dpop_jkt.is_some()) {
            self.dpop_bound.push(issued.access_token.clone());
        }
    }

    /// RFC 9449 §5, §10: a code or refresh token bound to a DPoP key is
    /// used only with a proof of that key at the token endpoint. A refusal
    /// is kept, so the endpoint answers it whatever the plugin makes of it.
    fn check_dpop_binding(&mut self, bound_to: Option<&str>, refusal: OAuthError) -> bool {
        match bound_to {
            Some(jkt) if self.target.dpop_jkt.as_deref() != Some(jkt) => {
                self.host_refusal = Some(refusal);
                false
            }
            _ => true,
        }
    }

    /// The audience of an access token (RFC 8707): the requested resources,
    /// each among those the grant was `authorized` for (a redeemed code's or
    /// refresh token's, §2.2) or else registered for the client; all of
    /// those when none was requested. A refusal is kept, so the endpoint
    /// answers `invalid_target` whatever the plugin makes of it.
    fn audience(&mut self, authorized: Option<&[String]>) -> Result<Vec<String>, HostError> {
        let requested: Vec<&str> = self.target.requested.iter().map(String::as_str).collect();
        let allowed = match authorized {
            Some(resources) => resource::Allowed::Authorized(resources),
            None => resource::Allowed::Registered(&self.target.registered),
        };
        let audience = resource::audience(&requested, allowed);
        audience.map_err(|error| {
            let message = error.description.clone().unwrap_or_default();
            self.host_refusal = Some(error);
            HostError::InvalidArgument(message)
        })
    }

    fn services_or_unavailable(&self) -> Result<super::HostServices, HostError> {
        self.services()
            .cloned()
            .ok_or_else(|| HostError::Unavailable("no store is attached to this runtime".into()))
    }
}

fn unavailable(error: StoreError) -> HostError {
    tracing::error!(error = %error, "store error during a plugin call");
    HostError::Unavailable("the store is unavailable".into())
}

fn check_len(what: &str, value: &str, max: usize) -> Result<(), HostError> {
    if value.len() > max {
        return Err(HostError::InvalidArgument(format!(
            "{what} is longer than {max} bytes"
        )));
    }
    Ok(())
}

fn check_scope(scope: &[String]) -> Result<(), HostError> {
    if scope.len() > MAX_SCOPE_TOKENS
        || scope
            .iter()
            .any(|s| s.is_empty() || !s.bytes().all(crate::oauth::scope::is_scope_char))
    {
        return Err(HostError::InvalidArgument(
            "scope is malformed or too long".into(),
        ));
    }
    Ok(())
}

fn token_info(record: TokenRecord) -> tokens::TokenInfo {
    tokens::TokenInfo {
        client_id: record.client_id,
        subject: record.subject,
        scope: record.scope,
        token_type_hint: match record.kind {
            TokenKind::Access => "access_token".into(),
            TokenKind::Refresh => "refresh_token".into(),
        },
        issued_at: record.issued_at.max(0) as u64,
        expires_at: record.expires_at.max(0) as u64,
        grant_id: record.grant_id,
    }
}

/// What the access token says beyond its family.
struct AccessPlan<'a> {
    subject: Option<String>,
    scope: &'a [String],
    /// RFC 8693 `aud`; empty for no restriction.
    audience: &'a [String],
    /// RFC 8693 `act` subject.
    actor: Option<String>,
    /// The latest the access token may expire, below the usual lifetime.
    not_after: Option<i64>,
}

/// What a refresh token minted with an access token looks like.
struct RefreshPlan<'a> {
    scope: &'a [String],
    /// The resources the grant is authorized for (RFC 8707 §2.2), kept in
    /// the refresh token's `audience` for its rotations.
    resources: &'a [String],
    /// The family's absolute end; `None` starts a new family now.
    grant_expires_at: Option<i64>,
    /// The DPoP key the refresh token is bound to (RFC 9449 §5: a public
    /// client's); `None` for an unbound one.
    dpop_jkt: Option<String>,
}

/// Mints an access token, and a refresh token when `refresh` is given, for one
/// grant. The access token is opaque, or for a client registered for JWT
/// access tokens an RFC 9068 JWT signed by the host's current key; either
/// way the store keeps its hash, so `/introspect` and `/revoke` find it.
/// A token request with a DPoP proof binds the access token to the proof's
/// key (`target.dpop_jkt`; in a JWT as `cnf.jkt`, RFC 9449 §6.1).
fn mint(
    services: &super::HostServices,
    target: &TokenTarget,
    client_id: &str,
    access: AccessPlan<'_>,
    refresh: Option<RefreshPlan<'_>>,
    grant_id: &str,
    now: i64,
) -> Result<(Vec<NewToken>, tokens::IssuedTokens), HostError> {
    let lifetimes = services.lifetimes;
    let AccessPlan {
        subject,
        scope,
        audience,
        actor,
        not_after,
    } = access;
    let expires_at = (now + lifetimes.access_token).min(not_after.unwrap_or(i64::MAX));
    let access_token = match target.format {
        AccessTokenFormat::Opaque => secret::new_token(),
        AccessTokenFormat::Jwt => {
            // RFC 9068 §3: a JWT access token always has an audience; one
            // without a resource (a token exchange that named none) is for
            // every resource the client registered.
            let audience = match audience {
                [] => target.registered.as_slice(),
                audience => audience,
            };
            let jti = secret::new_token();
            let claims = access_token::claims(&access_token::AccessToken {
                issuer: &services.issuer,
                client_id,
                subject: subject.as_deref(),
                audience,
                scope,
                issued_at: now,
                expires_at,
                jti: &jti,
                actor: actor.as_deref(),
                confirmation: target.dpop_jkt.as_deref(),
            });
            services
                .keys
                .sign(access_token::JWT_TYPE, &claims, now)
                .map_err(|error| {
                    tracing::error!(%error, "cannot sign an access token");
                    HostError::Unavailable("cannot sign the access token".into())
                })?
        }
    };
    let mut rows = vec![NewToken {
        token_hash: secret::token_hash(&access_token),
        kind: TokenKind::Access,
        client_id: client_id.to_owned(),
        subject: subject.clone(),
        scope: scope.to_vec(),
        grant_id: grant_id.to_owned(),
        issued_at: now,
        expires_at,
        grant_expires_at: None,
        audience: audience.to_vec(),
        actor,
        dpop_jkt: target.dpop_jkt.clone(),
    }];
    let refresh_token = refresh.as_ref().map(|_| secret::new_token());
    if let (Some(refresh_token), Some(plan)) = (&refresh_token, &refresh) {
        // Idle lifetime renews with each rotation; the absolute one never moves.
        let grant_expires_at = plan
            .grant_expires_at
            .unwrap_or(now + lifetimes.refresh_token_absolute);
        rows.push(NewToken {
            token_hash: secret::token_hash(refresh_token),
            kind: TokenKind::Refresh,
            client_id: client_id.to_owned(),
            subject,
            scope: plan.scope.to_vec(),
            grant_id: grant_id.to_owned(),
            issued_at: now,
            expires_at: (now + lifetimes.refresh_token_idle).min(grant_expires_at),
            grant_expires_at: Some(grant_expires_at),
            audience: plan.resources.to_vec(),
            actor: None,
            dpop_jkt: plan.dpop_jkt.clone(),
        });
    }
    let issued = tokens::IssuedTokens {
        access_token,
        token_type: "Bearer".into(),
        expires_in: (expires_at - now).max(0) as u64,
        refresh_token,
        scope: scope.to_vec(),
        grant_id: grant_id.to_owned(),
    };
    Ok((rows, issued))
}

impl types::Host for CallCtx {}

impl tokens::Host for CallCtx {
    async fn issue(
        &mut self,
        grant: tokens::TokenGrant,
    ) -> Result<tokens::IssuedTokens, HostError> {
        self.check(Capability::Tokens)?;
        check_scope(&grant.scope)?;
        if let Some(subject) = &grant.subject {
            check_len("subject", subject, 255)?;
        }
        let client_id = self.client_id()?;
        let may_refresh = self
            .client
            .as_ref()
            .is_some_and(|c| c.grant_types.iter().any(|g| g == "refresh_token"));
        let services = self.services_or_unavailable()?;
        let now = services.clock.now();
        self.check_registered_scope(&grant.scope)?;
        // A plugin may continue only a family it learned in this call (from a
        // redeemed code), so it cannot attach tokens to another grant.
        let (grant_id, origin) = match grant.grant_id {
            Some(id) if self.known_grants.contains(&id) => (id, GrantOrigin::Existing),
            Some(_) => {
                return Err(HostError::InvalidArgument(
                    "grant-id is not one this call redeemed".into(),
                ));
            }
            None => (secret::new_grant_id(now), GrantOrigin::New),
        };
        // A redeemed code's grant reaches only what its authorization did;
        // a new grant what the client registered.
        let authorized = (self.authorized_resources.iter())
            .find(|(id, _)| *id == grant_id)
            .map(|(_, resources)| resources.clone());
        let audience = self.audience(authorized.as_deref())?;
        let grant_resources = authorized.unwrap_or_else(|| audience.clone());
        let refresh = grant.refresh_token && may_refresh;
        // RFC 9449 §5: a public client's refresh token is bound to the key
        // of the proof it was issued with; a confidential client's is not
        // (it authenticates), only its access tokens are.
        let public = self.client.as_ref().is_some_and(|c| c.public);
        let refresh_dpop_jkt = self.target.dpop_jkt.clone().filter(|_| public);
        let (rows, issued) = mint(
            &services,
            &self.target,
            &client_id,
            AccessPlan {
                subject: grant.subject,
                scope: &grant.scope,
                audience: &audience,
                actor: None,
                not_after: None,
            },
            refresh.then_some(RefreshPlan {
                scope: &grant.scope,
                resources: &grant_resources,
                grant_expires_at: None,
                dpop_jkt: refresh_dpop_jkt,
            }),
            &grant_id,
            now,
        )?;
        self.store_issued(&services, &rows, origin, &issued).await?;
        Ok(issued)
    }

    async fn introspect(&mut self, token: String) -> Result<Option<tokens::TokenInfo>, HostError> {
        self.check(Capability::Tokens)?;
        check_len("token", &token, MAX_TOKEN_BYTES)?;
        let services = self.services_or_unavailable()?;
        let started = Clock::instant();
        let found = services
            .store
            .find_token(&secret::token_hash(&token), services.clock.now())
            .await;
        self.add_host_time(started, found.is_err());
        Ok(found.map_err(unavailable)?.map(token_info))
    }

    async fn revoke_grant(&mut self, grant_id: String) -> Result<(), HostError> {
        self.check(Capability::Tokens)?;
        check_len("grant-id", &grant_id, 128)?;
        let services = self.services_or_unavailable()?;
        let started = Clock::instant();
        let revoked = services
            .store
            .revoke_grant(&grant_id, services.clock.now())
            .await;
        self.add_host_time(started, revoked.is_err());
        revoked.map(|_| ()).map_err(unavailable)
    }
}

impl token_exchange::Host for CallCtx {
    async fn issue(
        &mut self,
        grant: token_exchange::ExchangeGrant,
    ) -> Result<tokens::IssuedTokens, HostError> {
        self.check(Capability::TokenExchange)?;
        check_scope(&grant.scope)?;
        if let Some(subject) = &grant.subject {
            check_len("subject", subject, 255)?;
        }
        if let Some(actor) = &grant.actor {
            check_len("actor", actor, 255)?;
        }
        check_audience(&grant.audience)?;
        let client_id = self.client_id()?;
        self.check_registered_scope(&grant.scope)?;
        let services = self.services_or_unavailable()?;
        let now = services.clock.now();
        // Only a family this call looked up: revoking the subject token's
        // grant then revokes what was exchanged for it.
        let (grant_id, origin) = match grant.grant_id {
            Some(id) if self.looked_up.iter().any(|l| l.grant_id == id) => {
                (id, GrantOrigin::Existing)
            }
            Some(_) => {
                return Err(HostError::InvalidArgument(
                    "grant-id is not one this call looked up".into(),
                ));
            }
            None => (secret::new_grant_id(now), GrantOrigin::New),
        };
        // A token obtained by exchange never outlives a token the exchange
        // presented (the subject token and the actor token).
        let not_after = self.looked_up.iter().map(|l| l.expires_at).min();
        let (rows, issued) = mint(
            &services,
            &self.target,
            &client_id,
            AccessPlan {
                subject: grant.subject,
                scope: &grant.scope,
                audience: &grant.audience,
                actor: grant.actor,
                not_after,
            },
            None,
            &grant_id,
            now,
        )?;
        self.store_issued(&services, &rows, origin, &issued).await?;
        Ok(issued)
    }

    async fn lookup(
        &mut self,
        token: String,
    ) -> Result<Option<token_exchange::ExchangedTokenInfo>, HostError> {
        self.check(Capability::TokenExchange)?;
        if token.len() > MAX_TOKEN_BYTES {
            return Ok(None);
        }
        let services = self.services_or_unavailable()?;
        let started = Clock::instant();
        let found = services
            .store
            .find_token(&secret::token_hash(&token), services.clock.now())
            .await;
        self.add_host_time(started, found.is_err());
        let Some(record) = found.map_err(unavailable)? else {
            return Ok(None);
        };
        self.looked_up.push(super::runtime::LookedUp {
            grant_id: record.grant_id.clone(),
            expires_at: record.expires_at,
        });
        let audience = record.audience.clone();
        let actor = record.actor.clone();
        Ok(Some(token_exchange::ExchangedTokenInfo {
            token: token_info(record),
            audience,
            actor,
        }))
    }
}

fn check_audience(audience: &[String]) -> Result<(), HostError> {
    let bytes: usize = audience.iter().map(String::len).sum();
    if audience.len() > MAX_AUDIENCE_VALUES
        || bytes > MAX_AUDIENCE_BYTES
        || audience.iter().any(|a| a.is_empty())
    {
        return Err(HostError::InvalidArgument(format!(
            "audience must be at most {MAX_AUDIENCE_VALUES} non-empty values of {MAX_AUDIENCE_BYTES} bytes in all"
        )));
    }
    Ok(())
}

impl signing::Host for CallCtx {
    async fn sign(&mut self, typ: String, claims: String) -> Result<String, HostError> {
        self.check(Capability::Signing)?;
        let services = self.services_or_unavailable()?;
        let now = services.clock.now();
        let claims = grantbox_protocol::plugin::signing::claims_to_sign(
            &typ,
            &claims,
            &services.issuer,
            now,
            services.lifetimes.access_token,
        )
        .map_err(|refusal| HostError::InvalidArgument(refusal.to_string()))?;
        self.reserve_issued(1)?;
        let started = Clock::instant();
        let signed = services.keys.sign(&typ, &claims, now);
        self.add_host_time(started, signed.is_err());
        let jwt = signed.map_err(|error| {
            tracing::error!(error = %error, plugin = %self.plugin_name(), "signing for a plugin failed");
            HostError::Unavailable("the host could not sign".into())
        })?;
        // The plugin may answer with what the host signed for it in this call.
        self.remember_issued(&jwt);
        Ok(jwt)
    }
}

impl openid::Host for CallCtx {
    async fn id_token(&mut self, request: openid::IdTokenRequest) -> Result<String, HostError> {
        self.check(Capability::Openid)?;
        let client = (self.client.clone())
            .ok_or_else(|| HostError::InvalidArgument("this call has no client".into()))?;
        // Only a family this call itself redeemed a code of or rotated a
        // refresh token into: a plugin cannot mint ID tokens for grants it
        // merely knows the id of.
        let Some((_, scope)) = (self.id_token_grants.iter())
            .find(|(grant_id, _)| *grant_id == request.grant_id)
            .cloned()
        else {
            return Err(HostError::InvalidArgument(
                "not a grant this call redeemed a code of or rotated a refresh token into".into(),
            ));
        };
        if !scope.iter().any(|s| s == OPENID_SCOPE) {
            return Err(HostError::InvalidArgument(
                "`openid` is not in the grant's scope".into(),
            ));
        }
        if let Some(nonce) = &request.nonce
            && !id_token::is_valid_nonce(nonce)
        {
            return Err(HostError::InvalidArgument(format!(
                "nonce must be 1 to {} bytes without control characters",
                id_token::MAX_NONCE_LEN
            )));
        }
        if let Some(token) = &request.access_token
            && !self.issued.contains(token)
        {
            return Err(HostError::InvalidArgument(
                "access-token is not one issued in this call".into(),
            ));
        }
        let alg = match client.id_token_signed_response_alg.as_deref() {
            None => Alg::RS256,
            Some(name) => Alg::parse(name).ok_or_else(|| {
                tracing::error!(client_id = %client.client_id, alg = name, "unknown id_token_signed_response_alg");
                HostError::Unavailable("the client's ID token algorithm is unknown".into())
            })?,
        };
        self.reserve_issued(1)?;
        let services = self.services_or_unavailable()?;
        let now = services.clock.now();
        let started = Clock::instant();
        let found = services.store.find_sign_in(&request.grant_id, now).await;
        self.add_host_time(started, found.is_err());
        let found = found.map_err(unavailable)?;
        let Some((sign_in, Some(user_claims))) = found.map(|f| (f.sign_in, f.claims)) else {
            return Err(HostError::InvalidArgument(
                "the grant has no sign-in record (or its user was removed or disabled)".into(),
            ));
        };
        if sign_in.client_id != client.client_id {
            return Err(HostError::InvalidArgument(
                "the grant's sign-in is another client's".into(),
            ));
        }
        let authentication = Authentication {
            auth_time: sign_in.auth_time,
            amr: sign_in.amr,
            acr: sign_in.acr,
        };
        let at_hash = (request.access_token.as_deref()).map(|token| alg.left_half_hash(token));
        let scopes: Vec<&str> = scope.iter().map(String::as_str).collect();
        let claims = id_token::claims(IdToken {
            issuer: &services.issuer,
            subject: &sign_in.subject,
            client_id: &client.client_id,
            issued_at: now,
            expires_at: now + services.lifetimes.access_token,
            authentication: &authentication,
            nonce: request.nonce.as_deref(),
            at_hash: at_hash.as_deref(),
            released: released(&user_claims, &scopes),
        });
        let started = Clock::instant();
        let signed = services
            .keys
            .sign_with(alg, id_token::JWT_TYPE, &claims, now);
        self.add_host_time(started, signed.is_err());
        let jwt = signed.map_err(|error| {
            tracing::error!(error = %error, plugin = %self.plugin_name(), "signing an ID token failed");
            HostError::Unavailable("the host could not sign".into())
        })?;
        self.remember_issued(&jwt);
        Ok(jwt)
    }
}

impl codes::Host for CallCtx {
    async fn issue(
        &mut self,
        grant: codes::CodeGrant,
        lifetime_seconds: u32,
    ) -> Result<String, HostError> {
        self.check(Capability::Codes)?;
        check_scope(&grant.scope)?;
        check_len("subject", &grant.subject, 255)?;
        check_len("redirect-uri", &grant.redirect_uri, 2048)?;
        let data_size: usize = grant.data.iter().map(|(k, v)| k.len() + v.len()).sum();
        if data_size > MAX_DATA_BYTES {
            return Err(HostError::InvalidArgument(format!(
                "code data exceeds {MAX_DATA_BYTES} bytes"
            )));
        }
        let client_id = self.client_id()?;
        self.reserve_issued(1)?;
        let services = self.services_or_unavailable()?;
        // The server's bound, and the client profile's when it is shorter.
        let max_lifetime = match self.target.profile {
            Some(profile) => {
                (profile.code_max_lifetime()).min(services.lifetimes.authorization_code_max)
            }
            None => services.lifetimes.authorization_code_max,
        };
        let lifetime = i64::from(lifetime_seconds).clamp(1, max_lifetime);
        let now = services.clock.now();
        let code = secret::new_token();
        let grant_id = secret::new_grant_id(now);
        // OpenID Connect: the family's ID tokens state how the user who
        // approved signed in, however often it is refreshed (Core §12.2), so
        // the host keeps that beside the code until no token of the family
        // can be alive. Stored before the code: a code is never issued
        // without the record its ID tokens need.
        if let Some(authentication) = &self.authentication
            && grant.scope.iter().any(|s| s == OPENID_SCOPE)
        {
            let sign_in = SignIn {
                grant_id: grant_id.clone(),
                subject: grant.subject.clone(),
                client_id: client_id.clone(),
                auth_time: authentication.auth_time,
                amr: authentication.amr.clone(),
                acr: authentication.acr.clone(),
                expires_at: now + lifetime + services.lifetimes.refresh_token_absolute,
            };
            let started = Clock::instant();
            let stored = services.store.insert_sign_in(&sign_in).await;
            self.add_host_time(started, stored.is_err());
            stored.map_err(unavailable)?;
        }
        let row = NewCode {
            code_hash: secret::token_hash(&code),
            client_id,
            subject: grant.subject,
            redirect_uri: grant.redirect_uri,
            scope: grant.scope,
            data: grant.data,
            grant_id,
            issued_at: now,
            expires_at: now + lifetime,
            // Validated by the authorization request this call answers.
            resources: self.target.requested.clone(),
            dpop_jkt: self.target.code_dpop_jkt.clone(),
        };
        let started = Clock::instant();
        let stored = services.store.insert_code(&row).await;
        self.add_host_time(started, stored.is_err());
        stored.map_err(unavailable)?;
        self.remember_issued(&code);
        Ok(code)
    }

    async fn redeem(
        &mut self,
        code: String,
    ) -> Result<codes::AuthorizationCode, codes::RedeemError> {
        self.check(Capability::Codes)
            .map_err(codes::RedeemError::Host)?;
        if code.len() > MAX_TOKEN_BYTES {
            return Err(codes::RedeemError::Unknown);
        }
        let client_id = self.client_id().map_err(codes::RedeemError::Host)?;
        let services = self
            .services_or_unavailable()
            .map_err(codes::RedeemError::Host)?;
        let started = Clock::instant();
        let outcome = services
            .store
            .redeem_code(&secret::token_hash(&code), &client_id, services.clock.now())
            .await;
        self.add_host_time(started, outcome.is_err());
        match outcome.map_err(|e| codes::RedeemError::Host(unavailable(e)))? {
            RedeemOutcome::Redeemed(record) => {
                // RFC 9449 §10: redeemed (so never again), but no token for
                // a proof by another key than the authorization request named.
                let refusal = dpop::invalid_dpop_proof(
                    "the authorization code is bound to another DPoP key (dpop_jkt)",
                );
                if !self.check_dpop_binding(record.dpop_jkt.as_deref(), refusal) {
                    return Err(codes::RedeemError::Unknown);
                }
                self.known_grants.push(record.grant_id.clone());
                (self.id_token_grants).push((record.grant_id.clone(), record.scope.clone()));
                (self.authorized_resources).push((record.grant_id.clone(), record.resources));
                Ok(codes::AuthorizationCode {
                    client_id: record.client_id,
                    subject: record.subject,
                    redirect_uri: record.redirect_uri,
                    scope: record.scope,
                    data: record.data,
                    grant_id: record.grant_id,
                })
            }
            RedeemOutcome::Unknown => Err(codes::RedeemError::Unknown),
            RedeemOutcome::Expired => Err(codes::RedeemError::Expired),
            // The store logs the replay and revokes the code's tokens.
            RedeemOutcome::Replayed => Err(codes::RedeemError::Replayed),
        }
    }
}

impl refresh_tokens::Host for CallCtx {
    async fn find(
        &mut self,
        refresh_token: String,
    ) -> Result<Option<tokens::TokenInfo>, HostError> {
        self.check(Capability::RefreshTokens)?;
        if refresh_token.len() > MAX_TOKEN_BYTES {
            return Ok(None);
        }
        let client_id = self.client_id()?;
        let services = self.services_or_unavailable()?;
        let hash = secret::token_hash(&refresh_token);
        let started = Clock::instant();
        let found = services
            .store
            .find_refresh(&hash, &client_id, services.clock.now())
            .await;
        self.add_host_time(started, found.is_err());
        let Some(record) = found.map_err(unavailable)? else {
            return Ok(None);
        };
        let info = token_info(record.clone());
        self.found_refresh = Some((hash, record));
        Ok(Some(info))
    }

    async fn rotate(
        &mut self,
        refresh_token: String,
        scope: Vec<String>,
    ) -> Result<tokens::IssuedTokens, refresh_tokens::RefreshError> {
        use refresh_tokens::RefreshError;
        self.check(Capability::RefreshTokens)
            .map_err(RefreshError::Host)?;
        check_scope(&scope).map_err(RefreshError::Host)?;
        if refresh_token.len() > MAX_TOKEN_BYTES {
            return Err(RefreshError::Unknown);
        }
        let client_id = self.client_id().map_err(RefreshError::Host)?;
        let services = self.services_or_unavailable().map_err(RefreshError::Host)?;
        let now = services.clock.now();
        let hash = secret::token_hash(&refresh_token);
        let current = match self.found_refresh.take() {
            Some((found, record)) if found == hash => Some(record),
            _ => {
                let started = Clock::instant();
                let current = services.store.find_refresh(&hash, &client_id, now).await;
                self.add_host_time(started, current.is_err());
                current.map_err(|e| RefreshError::Host(unavailable(e)))?
            }
        };
        // Unknown, expired, revoked, or reused (the store then revoked the family).
        let Some(record) = current else {
            return Err(RefreshError::Unknown);
        };
        if scope.iter().any(|s| !record.scope.contains(s)) {
            return Err(RefreshError::Host(HostError::InvalidArgument(
                "scope wider than the refresh token's".into(),
            )));
        }
        // Checked before the rotation, so the refresh token stays usable by
        // the holder of its key (RFC 9449 §5).
        let refusal = OAuthError::new(
            ErrorCode::InvalidGrant,
            "the refresh token is bound to another DPoP key",
        );
        if !self.check_dpop_binding(record.dpop_jkt.as_deref(), refusal) {
            return Err(RefreshError::Unknown);
        }
        // Checked before the rotation, so a refused resource leaves the
        // refresh token usable (RFC 8707 §2.2).
        let audience = self
            .audience(Some(&record.audience))
            .map_err(RefreshError::Host)?;
        // The family and subject come from the stored token, never the plugin;
        // the new refresh token keeps the old one's scope (RFC 6749 §6) and
        // resources.
        let (rows, issued) = mint(
            &services,
            &self.target,
            &client_id,
            AccessPlan {
                subject: record.subject.clone(),
                scope: &scope,
                audience: &audience,
                actor: None,
                not_after: None,
            },
            Some(RefreshPlan {
                scope: &record.scope,
                resources: &record.audience,
                grant_expires_at: Some(record.grant_expires_at.unwrap_or(record.expires_at)),
                // The family keeps the key it was bound to.
                dpop_jkt: record.dpop_jkt.clone(),
            }),
            &record.grant_id,
            now,
        )
        .map_err(RefreshError::Host)?;
        self.reserve_issued(rows.len())
            .map_err(RefreshError::Host)?;
        let started = Clock::instant();
        let outcome = services
            .store
            .rotate_refresh(&hash, &client_id, now, &rows)
            .await;
        self.add_host_time(started, outcome.is_err());
        match outcome.map_err(|e| RefreshError::Host(unavailable(e)))? {
            RotateOutcome::Rotated(_) => {
                (self.id_token_grants).push((record.grant_id.clone(), scope.clone()));
                self.remember_minted(&rows, &issued);
                Ok(issued)
            }
            RotateOutcome::Unknown => Err(RefreshError::Unknown),
            RotateOutcome::Expired => Err(RefreshError::Expired),
            // The store logs the reuse and revokes the family.
            RotateOutcome::Reused => Err(RefreshError::Reused),
        }
    }
}

impl users::Host for CallCtx {
    async fn verify_password(
        &mut self,
        username: String,
        password: String,
    ) -> Result<Option<String>, HostError> {
        self.check(Capability::Users)?;
        check_len("username", &username, 255)?;
        check_len("password", &password, 1024)?;
        let services = self.services_or_unavailable()?;
        let now = services.clock.now();
        let origin = self.sign_in_origin.clone();
        let address = origin.as_deref().map(SignInOrigin::address);
        let started = Clock::instant();
        let allowed = services.login_limiter.check(&username, address, now).await;
        self.add_host_time(started, matches!(allowed, Err(Refusal::Store(_))));
        allowed.map_err(|refusal| match refusal {
            Refusal::Throttled(throttled) => {
                // The token endpoint answers 429, whatever the plugin makes of this.
                if let Some(origin) = &origin {
                    origin.note(throttled);
                }
                HostError::Unavailable(refusal.to_string())
            }
            Refusal::Store(error) => unavailable(error),
        })?;
        let started = Clock::instant();
        let user = services.store.find_user(&username).await;
        self.add_host_time(started, user.is_err());
        let user = user.map_err(unavailable)?;
        // argon2 runs on the blocking pool with bounded concurrency.
        let started = Clock::instant();
        let verified = services
            .passwords
            .verify(user, password)
            .await
            .map(|user| user.subject);
        let counted = services
            .login_limiter
            .record(&username, address, verified.is_some(), now)
            .await;
        self.add_host_time(started, counted.is_err());
        counted.map_err(unavailable)?;
        Ok(verified)
    }
}

impl key_value::Host for CallCtx {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, HostError> {
        self.check(Capability::KeyValue)?;
        check_len("key", &key, MAX_KEY_BYTES)?;
        let services = self.services_or_unavailable()?;
        let started = Clock::instant();
        let value = services
            .store
            .kv_get(self.plugin_name(), &key, services.clock.now())
            .await;
        self.add_host_time(started, value.is_err());
        value.map_err(unavailable)
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_seconds: Option<u32>,
    ) -> Result<(), HostError> {
        self.check(Capability::KeyValue)?;
        check_len("key", &key, MAX_KEY_BYTES)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(HostError::InvalidArgument(format!(
                "value is larger than {MAX_VALUE_BYTES} bytes"
            )));
        }
        let services = self.services_or_unavailable()?;
        let now = services.clock.now();
        self.reserve_key_value_write(&services, &key, value.len(), now)
            .await?;
        let expires_at = ttl_seconds.map(|ttl| now + i64::from(ttl));
        let started = Clock::instant();
        let stored = services
            .store
            .kv_set(self.plugin_name(), &key, &value, expires_at)
            .await;
        self.add_host_time(started, stored.is_err());
        stored.map_err(unavailable)
    }

    async fn insert_new(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_seconds: Option<u32>,
    ) -> Result<bool, HostError> {
        self.check(Capability::KeyValue)?;
        check_len("key", &key, MAX_KEY_BYTES)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(HostError::InvalidArgument(format!(
                "value is larger than {MAX_VALUE_BYTES} bytes"
            )));
        }
        let services = self.services_or_unavailable()?;
        let now = services.clock.now();
        self.reserve_key_value_write(&services, &key, value.len(), now)
            .await?;
        let expires_at = ttl_seconds.map(|ttl| now + i64::from(ttl));
        let started = Clock::instant();
        let inserted = services
            .store
            .kv_insert_new(self.plugin_name(), &key, &value, expires_at, now)
            .await;
        self.add_host_time(started, inserted.is_err());
        inserted.map_err(unavailable)
    }

    async fn delete(&mut self, key: String) -> Result<bool, HostError> {
        self.check(Capability::KeyValue)?;
        check_len("key", &key, MAX_KEY_BYTES)?;
        let services = self.services_or_unavailable()?;
        let started = Clock::instant();
        let deleted = services.store.kv_delete(self.plugin_name(), &key).await;
        self.add_host_time(started, deleted.is_err());
        deleted.map_err(unavailable)
    }
}

impl random::Host for CallCtx {
    async fn bytes(&mut self, len: u32) -> Result<Vec<u8>, HostError> {
        self.check(Capability::Random)?;
        if len > MAX_RANDOM_BYTES {
            return Err(HostError::InvalidArgument(format!(
                "at most {MAX_RANDOM_BYTES} random bytes a call (asked for {len})"
            )));
        }
        let mut bytes = vec![0; len as usize];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        Ok(bytes)
    }
}

impl clock::Host for CallCtx {
    async fn now(&mut self) -> Result<u64, HostError> {
        self.check(Capability::Clock)?;
        let services = self.services_or_unavailable()?;
        Ok(services.clock.now().max(0) as u64)
    }
}

impl log::Host for CallCtx {
    async fn log(&mut self, level: log::Level, message: String) -> Result<(), HostError> {
        self.check(Capability::Log)?;
        let mut end = message.len().min(MAX_LOG_BYTES);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let message = &message[..end];
        let (plugin, version) = (self.plugin_name(), self.plugin_version());
        match level {
            log::Level::Error => tracing::error!(plugin, version, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, version, "{message}"),
            log::Level::Info => tracing::info!(plugin, version, "{message}"),
            log::Level::Debug => tracing::debug!(plugin, version, "{message}"),
        }
        Ok(())
    }
}

impl config::Host for CallCtx {
    async fn get(&mut self, key: String) -> Result<Option<String>, HostError> {
        self.check(Capability::Config)?;
        Ok(self.config().get(&key).map(|value| match value {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        }))
    }

    async fn json(&mut self) -> Result<String, HostError> {
        self.check(Capability::Config)?;
        Ok(self.config_json().to_owned())
    }
}
