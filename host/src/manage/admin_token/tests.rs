//! Admin tokens on an in-memory store: only the hash is stored, a token
//! verifies until it expires or is revoked, and the trail names its id only.

use super::*;
use crate::store::AuditFilter;

const NOW: i64 = 1_700_000_000;

#[tokio::test]
async fn a_token_verifies_until_it_expires_or_is_revoked_and_only_its_hash_is_stored() {
    let store = Store::open(":memory:").await.expect("store");
    let lasting = admin_token_create(&store, &Actor::Cli, AdminTokenRequest::default(), NOW)
        .await
        .unwrap();
    let request = AdminTokenRequest {
        name: Some("ci".into()),
        expires_in: Some(60),
    };
    let brief = admin_token_create(&store, &Actor::Cli, request, NOW)
        .await
        .unwrap();
    assert!(lasting.token.starts_with(ADMIN_TOKEN_PREFIX));
    assert_eq!(brief.expires_at, Some(NOW + 60));

    let rows = store.list_admin_tokens().await.unwrap();
    assert_eq!(rows.len(), 2);
    let stored = rows.iter().find(|row| row.id == lasting.id).unwrap();
    assert_eq!(
        stored.token_hash,
        secret::token_hash(&lasting.token).to_vec()
    );

    assert_eq!(
        admin_token_verify(&store, &brief.token, NOW + 59)
            .await
            .unwrap(),
        Some(brief.id.clone())
    );
    assert_eq!(
        admin_token_verify(&store, &brief.token, NOW + 60)
            .await
            .unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        admin_token_verify(&store, &lasting.token[1..], NOW)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        admin_token_verify(&store, "gbadm_unknown", NOW)
            .await
            .unwrap(),
        None
    );

    let revoked = admin_token_revoke(&store, &Actor::Cli, &lasting.id, NOW + 5)
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(NOW + 5));
    assert_eq!(
        admin_token_verify(&store, &lasting.token, NOW + 6)
            .await
            .unwrap(),
        None,
        "revoked"
    );
    assert!(matches!(
        admin_token_revoke(&store, &Actor::Cli, "nothing", NOW).await,
        Err(ManageError::NotFound {
            what: "admin token",
            ..
        })
    ));
    let refused = AdminTokenRequest {
        name: None,
        expires_in: Some(0),
    };
    assert!(matches!(
        admin_token_create(&store, &Actor::Cli, refused, NOW).await,
        Err(ManageError::Invalid {
            field: "expires_in",
            ..
        })
    ));

    let trail = store.list_audit(&AuditFilter::default()).await.unwrap();
    let actions: Vec<&str> = trail.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "admin_token.create",
            "admin_token.create",
            "admin_token.revoke"
        ]
    );
    let text = format!("{trail:?}");
    assert!(!text.contains(&lasting.token) && !text.contains(&brief.token));
    assert!(!text.contains(&hex::encode(secret::token_hash(&lasting.token))));
}
