//! The test host's side of every capability, one module per WIT interface
//! with the same signatures as the generated imports, so `host.rs` can pick
//! either backend by target.

use super::{Capability, State, TokenKind, with_state};
use crate::HostError;

pub mod tokens {
    use super::*;
    use crate::{IssuedTokens, TokenGrant, TokenInfo};

    pub fn issue(grant: &TokenGrant) -> Result<IssuedTokens, HostError> {
        with_state(|state| {
            state.check(Capability::Tokens)?;
            state.check_registered_scope(&grant.scope)?;
            let grant_id = match &grant.grant_id {
                None => state.new_family(),
                Some(grant_id) => {
                    match state.families.get(grant_id) {
                        Some(family) if family.client_id == state.client.client_id => {
                            if family.revoked {
                                return Err(HostError::InvalidArgument(format!(
                                    "grant `{grant_id}` is revoked"
                                )));
                            }
                        }
                        _ => {
                            return Err(HostError::InvalidArgument(format!(
                                "grant `{grant_id}` is unknown to this client"
                            )));
                        }
                    }
                    grant_id.clone()
                }
            };
            let access_token = state.store_token(
                TokenKind::Access,
                grant.subject.clone(),
                grant.scope.clone(),
                &grant_id,
            );
            let wants_refresh = grant.refresh_token
                && state
                    .client
                    .grant_types
                    .iter()
                    .any(|grant_type| grant_type == "refresh_token");
            let refresh_token = wants_refresh.then(|| {
                state.store_token(
                    TokenKind::Refresh,
                    grant.subject.clone(),
                    grant.scope.clone(),
                    &grant_id,
                )
            });
            Ok(IssuedTokens {
                access_token,
                token_type: "Bearer".to_string(),
                expires_in: state.access_token_lifetime,
                refresh_token,
                scope: grant.scope.clone(),
                grant_id,
            })
        })
    }

    pub fn introspect(token: &str) -> Result<Option<TokenInfo>, HostError> {
        with_state(|state| {
            state.check(Capability::Tokens)?;
            Ok(state
                .tokens
                .iter()
                .find(|issued| issued.token == token && state.is_active(issued))
                .map(token_info))
        })
    }

    pub fn revoke_grant(grant_id: &str) -> Result<(), HostError> {
        with_state(|state| {
            state.check(Capability::Tokens)?;
            state.revoke_family(grant_id);
            Ok(())
        })
    }

    pub(crate) fn token_info(issued: &crate::testing::IssuedToken) -> TokenInfo {
        TokenInfo {
            client_id: issued.client_id.clone(),
            subject: issued.subject.clone(),
            scope: issued.scope.clone(),
            token_type_hint: match issued.kind {
                TokenKind::Access => "access_token",
                TokenKind::Refresh => "refresh_token",
            }
            .to_string(),
            issued_at: issued.issued_at,
            expires_at: issued.expires_at,
            grant_id: issued.grant_id.clone(),
        }
    }
}

pub mod token_exchange {
    use super::*;
    use crate::{ExchangeGrant, ExchangedTokenInfo, IssuedTokens};

    pub fn issue(grant: &ExchangeGrant) -> Result<IssuedTokens, HostError> {
        with_state(|state| {
            state.check(Capability::TokenExchange)?;
            state.check_registered_scope(&grant.scope)?;
            if grant.audience.iter().any(String::is_empty) {
                return Err(HostError::InvalidArgument(
                    "an audience value is empty".to_string(),
                ));
            }
            let grant_id = match &grant.grant_id {
                None => state.new_family(),
                Some(grant_id) if state.looked_up.iter().any(|(id, _)| id == grant_id) => {
                    grant_id.clone()
                }
                Some(grant_id) => {
                    return Err(HostError::InvalidArgument(format!(
                        "grant `{grant_id}` is not one this call looked up"
                    )));
                }
            };
            let access_token = state.store_token(
                TokenKind::Access,
                grant.subject.clone(),
                grant.scope.clone(),
                &grant_id,
            );
            // As on the real host: never outlives a token looked up in this call.
            let not_after = state
                .looked_up
                .iter()
                .map(|(_, expires_at)| *expires_at)
                .min();
            let now = state.now;
            let mut expires_in = state.access_token_lifetime;
            if let Some(stored) = state.tokens.last_mut() {
                stored.audience = grant.audience.clone();
                stored.actor = grant.actor.clone();
                stored.expires_at = stored.expires_at.min(not_after.unwrap_or(u64::MAX));
                expires_in = stored.expires_at - now;
            }
            Ok(IssuedTokens {
                access_token,
                token_type: "Bearer".to_string(),
                expires_in,
                refresh_token: None,
                scope: grant.scope.clone(),
                grant_id,
            })
        })
    }

    pub fn lookup(token: &str) -> Result<Option<ExchangedTokenInfo>, HostError> {
        with_state(|state| {
            state.check(Capability::TokenExchange)?;
            let found = state
                .tokens
                .iter()
                .find(|issued| issued.token == token && state.is_active(issued))
                .map(|issued| ExchangedTokenInfo {
                    token: super::tokens::token_info(issued),
                    audience: issued.audience.clone(),
                    actor: issued.actor.clone(),
                });
            if let Some(found) = &found {
                state
                    .looked_up
                    .push((found.token.grant_id.clone(), found.token.expires_at));
            }
            Ok(found)
        })
    }
}

pub mod codes {
    use super::*;
    use crate::testing::Code;
    use crate::{AuthorizationCode, CodeGrant, RedeemError};

    pub fn issue(grant: &CodeGrant, lifetime_seconds: u32) -> Result<String, HostError> {
        with_state(|state| {
            state.check(Capability::Codes)?;
            state.check_registered_scope(&grant.scope)?;
            let grant_id = state.new_family();
            if grant.scope.iter().any(|word| word == "openid") {
                // The user of a test approval signed in just now.
                let sign_in = (grant.subject.clone(), state.now);
                state.sign_ins.insert(grant_id.clone(), sign_in);
            }
            let code = state.random_token();
            let expires_at = state.now + u64::from(lifetime_seconds);
            let client_id = state.client.client_id.clone();
            state.codes.insert(
                code.clone(),
                Code {
                    client_id,
                    grant: grant.clone(),
                    grant_id,
                    expires_at,
                    redeemed: false,
                },
            );
            Ok(code)
        })
    }

    pub fn redeem(code: &str) -> Result<AuthorizationCode, RedeemError> {
        with_state(|state| {
            state.check(Capability::Codes).map_err(RedeemError::Host)?;
            let now = state.now;
            let Some(stored) = state
                .codes
                .get_mut(code)
                .filter(|stored| stored.client_id == state.client.client_id)
            else {
                return Err(RedeemError::Unknown);
            };
            if stored.redeemed {
                let grant_id = stored.grant_id.clone();
                state.revoke_family(&grant_id);
                return Err(RedeemError::Replayed);
            }
            if now >= stored.expires_at {
                return Err(RedeemError::Expired);
            }
            stored.redeemed = true;
            let (grant_id, scope) = (stored.grant_id.clone(), stored.grant.scope.clone());
            let stored = &state.codes[code];
            let redeemed = AuthorizationCode {
                client_id: stored.client_id.clone(),
                subject: stored.grant.subject.clone(),
                redirect_uri: stored.grant.redirect_uri.clone(),
                scope: stored.grant.scope.clone(),
                data: stored.grant.data.clone(),
                grant_id: stored.grant_id.clone(),
            };
            state.id_token_grants.push((grant_id, scope));
            Ok(redeemed)
        })
    }
}

pub mod refresh_tokens {
    use super::*;
    use crate::{IssuedTokens, RefreshError, TokenInfo};

    pub fn find(refresh_token: &str) -> Result<Option<TokenInfo>, HostError> {
        with_state(|state| {
            state.check(Capability::RefreshTokens)?;
            // As the real host's store does: looking up a rotated token is
            // reuse (RFC 9700 §4.14.2) and revokes its family.
            let rotated = state.tokens.iter().find(|issued| {
                issued.token == refresh_token
                    && issued.kind == TokenKind::Refresh
                    && issued.client_id == state.client.client_id
                    && issued.rotated
            });
            if let Some(grant_id) = rotated.map(|issued| issued.grant_id.clone()) {
                state.revoke_family(&grant_id);
                return Ok(None);
            }
            Ok(state
                .tokens
                .iter()
                .find(|issued| {
                    issued.token == refresh_token
                        && issued.kind == TokenKind::Refresh
                        && issued.client_id == state.client.client_id
                        && state.is_active(issued)
                })
                .map(super::tokens::token_info))
        })
    }

    pub fn rotate(refresh_token: &str, scope: &[String]) -> Result<IssuedTokens, RefreshError> {
        with_state(|state| {
            state
                .check(Capability::RefreshTokens)
                .map_err(RefreshError::Host)?;
            let Some(index) = state.tokens.iter().position(|issued| {
                issued.token == refresh_token
                    && issued.kind == TokenKind::Refresh
                    && issued.client_id == state.client.client_id
            }) else {
                return Err(RefreshError::Unknown);
            };
            let old = state.tokens[index].clone();
            if old.rotated {
                state.revoke_family(&old.grant_id);
                return Err(RefreshError::Reused);
            }
            if old.revoked {
                return Err(RefreshError::Unknown);
            }
            if state.now >= old.expires_at {
                return Err(RefreshError::Expired);
            }
            if let Some(word) = scope.iter().find(|word| !old.scope.contains(word)) {
                return Err(RefreshError::Host(HostError::InvalidArgument(format!(
                    "scope `{word}` was not granted to the refresh token"
                ))));
            }
            state.tokens[index].rotated = true;
            let access_token = state.store_token(
                TokenKind::Access,
                old.subject.clone(),
                scope.to_vec(),
                &old.grant_id,
            );
            (state.id_token_grants).push((old.grant_id.clone(), scope.to_vec()));
            // RFC 6749 §6: the new refresh token keeps the old one's scope.
            let refresh_token =
                state.store_token(TokenKind::Refresh, old.subject, old.scope, &old.grant_id);
            Ok(IssuedTokens {
                access_token,
                token_type: "Bearer".to_string(),
                expires_in: state.access_token_lifetime,
                refresh_token: Some(refresh_token),
                scope: scope.to_vec(),
                grant_id: old.grant_id,
            })
        })
    }
}

pub mod users {
    use super::*;

    pub fn verify_password(username: &str, password: &str) -> Result<Option<String>, HostError> {
        with_state(|state| {
            state.check(Capability::Users)?;
            Ok(state
                .users
                .get(username)
                .filter(|user| user.password == password)
                .map(|user| user.subject.clone()))
        })
    }
}

pub mod key_value {
    use super::*;
    use crate::testing::Entry;

    pub fn get(key: &str) -> Result<Option<Vec<u8>>, HostError> {
        with_state(|state| {
            state.check(Capability::KeyValue)?;
            Ok(state.live_entry(key).map(|entry| entry.value.clone()))
        })
    }

    pub fn set(key: &str, value: &[u8], ttl_seconds: Option<u32>) -> Result<(), HostError> {
        with_state(|state| {
            state.check(Capability::KeyValue)?;
            put(state, key, value, ttl_seconds);
            Ok(())
        })
    }

    pub fn insert_new(
        key: &str,
        value: &[u8],
        ttl_seconds: Option<u32>,
    ) -> Result<bool, HostError> {
        with_state(|state| {
            state.check(Capability::KeyValue)?;
            if state.live_entry(key).is_some() {
                return Ok(false);
            }
            put(state, key, value, ttl_seconds);
            Ok(true)
        })
    }

    pub fn delete(key: &str) -> Result<bool, HostError> {
        with_state(|state| {
            state.check(Capability::KeyValue)?;
            let existed = state.live_entry(key).is_some();
            state.key_value.remove(key);
            Ok(existed)
        })
    }

    fn put(state: &mut State, key: &str, value: &[u8], ttl_seconds: Option<u32>) {
        let entry = Entry {
            value: value.to_vec(),
            expires_at: state.expiry(ttl_seconds),
        };
        state.key_value.insert(key.to_string(), entry);
    }
}

pub mod random {
    use super::*;

    pub fn bytes(len: u32) -> Result<Vec<u8>, HostError> {
        with_state(|state| {
            state.check(Capability::Random)?;
            if len > 1024 {
                return Err(HostError::InvalidArgument(format!(
                    "{len} random bytes asked, at most 1024 a call"
                )));
            }
            Ok(state.random_bytes(len as usize))
        })
    }
}

pub mod clock {
    use super::*;

    pub fn now() -> Result<u64, HostError> {
        with_state(|state| {
            state.check(Capability::Clock)?;
            Ok(state.now)
        })
    }
}

pub mod log {
    use super::*;
    use crate::host::log::Level;
    use crate::testing::LogLine;

    pub fn log(level: Level, message: &str) -> Result<(), HostError> {
        with_state(|state| {
            state.check(Capability::Log)?;
            if message.len() > 4096 {
                return Err(HostError::InvalidArgument(format!(
                    "log message of {} bytes, at most 4096",
                    message.len()
                )));
            }
            state.logs.push(LogLine {
                level,
                message: message.to_string(),
            });
            Ok(())
        })
    }
}

pub mod config {
    use super::*;
    use crate::testing::{ConfigValue, json_string};

    pub fn get(key: &str) -> Result<Option<String>, HostError> {
        with_state(|state| {
            state.check(Capability::Config)?;
            Ok(state.config.get(key).map(|value| match value {
                ConfigValue::String(text) | ConfigValue::Json(text) => text.clone(),
            }))
        })
    }

    pub fn json() -> Result<String, HostError> {
        with_state(|state| {
            state.check(Capability::Config)?;
            let members: Vec<String> = state
                .config
                .iter()
                .map(|(key, value)| {
                    let value = match value {
                        ConfigValue::String(text) => json_string(text),
                        ConfigValue::Json(json) => json.clone(),
                    };
                    format!("{}:{value}", json_string(key))
                })
                .collect();
            Ok(format!("{{{}}}", members.join(",")))
        })
    }
}

pub mod signing {
    use super::*;

    pub fn sign(typ: &str, claims: &str) -> Result<String, HostError> {
        with_state(|state| {
            state.check(Capability::Signing)?;
            let jwt = crate::testing::signing::sign(
                typ,
                claims,
                &state.issuer,
                state.now,
                state.access_token_lifetime,
            )?;
            state.signed.push(jwt.clone());
            Ok(jwt)
        })
    }
}

pub mod openid {
    use super::*;
    use crate::IdTokenRequest;

    /// The real host's rules, and an ID token signed with the fixed ES256
    /// test key (`TestHost::signing_public_key_pem`): `iss`, `sub`, `aud`,
    /// `azp`, `exp`, `iat`, `auth_time`, `amr` `["pwd"]`, `nonce` and
    /// `at_hash` (SHA-256) as given. The test host keeps no user claims.
    pub fn id_token(request: &IdTokenRequest) -> Result<String, HostError> {
        with_state(|state| {
            state.check(Capability::Openid)?;
            let invalid = |message: &str| Err(HostError::InvalidArgument(message.to_string()));
            let Some((_, scope)) =
                (state.id_token_grants.iter()).find(|(grant_id, _)| *grant_id == request.grant_id)
            else {
                return invalid(
                    "not a grant this call redeemed a code of or rotated a refresh token into",
                );
            };
            if !scope.iter().any(|word| word == "openid") {
                return invalid("`openid` is not in the grant's scope");
            }
            if let Some(nonce) = &request.nonce
                && (nonce.is_empty() || nonce.len() > 512 || nonce.chars().any(char::is_control))
            {
                return invalid("nonce must be 1 to 512 bytes without control characters");
            }
            let at_hash = match &request.access_token {
                None => None,
                Some(token) => {
                    let issued_now = state.tokens.iter().any(|issued| {
                        issued.token == *token
                            && issued.kind == TokenKind::Access
                            && issued.issued_at == state.now
                            && issued.grant_id == request.grant_id
                    });
                    if !issued_now {
                        return invalid("access-token is not one issued in this call");
                    }
                    Some(crate::testing::signing::left_half_sha256(token))
                }
            };
            let Some((subject, auth_time)) = state.sign_ins.get(&request.grant_id).cloned() else {
                return invalid("the grant has no sign-in record");
            };
            let client_id = state.client.client_id.clone();
            let mut claims = serde_json::Map::new();
            claims.insert("sub".into(), subject.into());
            claims.insert("aud".into(), serde_json::json!([client_id]));
            claims.insert("azp".into(), client_id.into());
            claims.insert("iat".into(), state.now.into());
            claims.insert(
                "exp".into(),
                (state.now + state.access_token_lifetime).into(),
            );
            claims.insert("auth_time".into(), auth_time.into());
            claims.insert("amr".into(), serde_json::json!(["pwd"]));
            if let Some(nonce) = &request.nonce {
                claims.insert("nonce".into(), nonce.as_str().into());
            }
            if let Some(at_hash) = at_hash {
                claims.insert("at_hash".into(), at_hash.into());
            }
            let jwt = crate::testing::signing::sign(
                "JWT",
                &serde_json::Value::Object(claims).to_string(),
                &state.issuer,
                state.now,
                state.access_token_lifetime,
            )?;
            state.id_tokens.push(jwt.clone());
            Ok(jwt)
        })
    }
}
