//! The operations on an in-memory store: what each refuses and names, what
//! a change keeps, and that the audit trail holds no secret.

use super::*;
use crate::registration::ClientRegistration;

const NOW: i64 = 1_700_000_000;

async fn store_with_svc() -> (Store, String) {
    let store = Store::open(":memory:").await.expect("store");
    let registration = ClientRegistration {
        client_id: "svc".into(),
        redirect_uris: Vec::new(),
        grant_types: vec!["client_credentials".into()],
        scopes: vec!["read".into()],
        public: false,
        trusted: false,
        introspection: false,
        name: None,
        secret: None,
        client_uri: None,
        auth_method: None,
        jwks: None,
        resources: Vec::new(),
        access_token_format: String::new(),
        post_logout_redirect_uris: Vec::new(),
        id_token_signed_response_alg: None,
        profile: None,
        require_pushed_authorization_requests: false,
        dpop_bound_access_tokens: false,
    };
    let (client, secret) = registration::validate(registration, NOW).expect("valid");
    store.insert_client(&client).await.expect("insert");
    (store, secret.expect("a generated secret"))
}

#[tokio::test]
async fn rotation_keeps_the_old_secret_only_for_its_grace() {
    let (store, old_secret) = store_with_svc().await;
    let refused = client_rotate_secret(&store, &Actor::Cli, "svc", -1, NOW).await;
    assert!(matches!(
        refused,
        Err(ManageError::Invalid { field: "grace", .. })
    ));
    let refused = client_rotate_secret(&store, &Actor::Cli, "nobody", 0, NOW).await;
    assert_eq!(
        refused.unwrap_err().to_string(),
        "client \"nobody\" does not exist"
    );

    let rotated = client_rotate_secret(&store, &Actor::Cli, "svc", 600, NOW)
        .await
        .expect("rotated");
    assert_eq!(rotated.previous_secret_expires_at, Some(NOW + 600));
    let client = store.find_client("svc").await.unwrap().expect("svc");
    let previous = client.auth.previous_secret.expect("kept for the grace");
    assert!(secret::secret_matches(&old_secret, &previous.secret_hash));
    assert!(secret::secret_matches(
        &rotated.client_secret,
        client.secret_hash.as_deref().unwrap()
    ));

    let again = client_rotate_secret(&store, &Actor::Cli, "svc", 0, NOW + 1)
        .await
        .expect("rotated");
    let client = store.find_client("svc").await.unwrap().expect("svc");
    assert_eq!(client.auth.previous_secret, None, "no grace: nothing kept");

    let trail =
        serde_json::to_string(&audit_list(&store, &AuditFilter::default()).await.unwrap()).unwrap();
    for secret in [&old_secret, &rotated.client_secret, &again.client_secret] {
        assert!(!trail.contains(secret.as_str()), "{trail}");
    }
    let hash = hex::encode(secret::token_hash(&old_secret));
    assert!(!trail.contains(&hash), "{trail}");
}

#[tokio::test]
async fn an_update_goes_through_the_registration_checks_and_keeps_the_secret() {
    let (store, secret) = store_with_svc().await;
    let invalid = ClientUpdate {
        redirect_uris: Some(vec!["https://app.example/cb#fragment".into()]),
        ..ClientUpdate::default()
    };
    let refused = client_update(&store, &Actor::Cli, "svc", invalid, NOW).await;
    assert!(
        matches!(
            refused,
            Err(ManageError::Invalid {
                field: "redirect_uris",
                ..
            })
        ),
        "{refused:?}"
    );
    let change = ClientUpdate {
        scopes: Some(vec!["read".into(), "write".into()]),
        client_name: Some("Service".into()),
        ..ClientUpdate::default()
    };
    let actor = Actor::AdminToken { id: "t1".into() };
    let after = client_update(&store, &actor, "svc", change, NOW + 5)
        .await
        .expect("updated");
    assert_eq!(after.scopes, ["read", "write"]);
    assert_eq!(after.created_at, NOW, "the creation time stays");
    let client = store.find_client("svc").await.unwrap().expect("svc");
    assert!(secret::secret_matches(
        &secret,
        client.secret_hash.as_deref().unwrap()
    ));

    let trail = audit_list(&store, &AuditFilter::default()).await.unwrap();
    assert_eq!(trail.len(), 1, "one record per change, none for a refusal");
    assert_eq!(trail[0].actor, "admin-token:t1");
    assert_eq!(trail[0].at, NOW + 5);
    assert_eq!(
        trail[0].before.as_ref().unwrap()["scopes"],
        serde_json::json!(["read"])
    );
    assert_eq!(trail[0].after.as_ref().unwrap()["client_name"], "Service");
}

#[tokio::test]
async fn user_operations_name_a_missing_user_and_disabling_twice_keeps_the_first_time() {
    let store = Store::open(":memory:").await.expect("store");
    let missing = user_disable(&store, &Actor::Cli, "carol", NOW).await;
    assert_eq!(
        missing.unwrap_err().to_string(),
        "user \"carol\" does not exist"
    );
    let user = registration::validate_user("alice", "correct horse", &[], NOW).expect("valid");
    store.insert_user(&user).await.expect("insert");
    user_disable(&store, &Actor::Cli, "alice", NOW + 1)
        .await
        .expect("disabled");
    user_disable(&store, &Actor::Cli, "alice", NOW + 2)
        .await
        .expect("disabled");
    let shown = user_show(&store, "alice").await.expect("alice");
    assert_eq!(shown.disabled_at, Some(NOW + 1));
    let short = user_set_password(&store, &Actor::Cli, "alice", "short", NOW).await;
    assert!(matches!(
        short,
        Err(ManageError::Invalid {
            field: "password",
            ..
        })
    ));
    let enabled = user_enable(&store, &Actor::Cli, "alice", NOW + 3)
        .await
        .expect("enabled");
    assert_eq!(enabled.disabled_at, None);
}

#[tokio::test]
async fn a_client_secret_jwt_client_keeps_its_sealed_secret_through_an_update() {
    let store = Store::open(":memory:").await.expect("store");
    let kek = crate::keys::KeyEncryptionKey::generate();
    let registration = ClientRegistration {
        client_id: "hmac".into(),
        grant_types: vec!["client_credentials".into()],
        scopes: vec!["read".into()],
        auth_method: Some(AuthMethod::ClientSecretJwt),
        ..ClientRegistration::default()
    };
    let (client, secret) =
        registration::validate_sealing(registration, NOW, Some(&kek)).expect("valid");
    let sealed = client.auth.secret_sealed.clone().expect("sealed");
    store.insert_client(&client).await.expect("insert");

    let change = ClientUpdate {
        scopes: Some(vec!["read".into(), "write".into()]),
        ..ClientUpdate::default()
    };
    client_update(&store, &Actor::Cli, "hmac", change, NOW + 1)
        .await
        .expect("updated");
    let after = store.find_client("hmac").await.unwrap().expect("hmac");
    assert_eq!(after.auth.method, Some(AuthMethod::ClientSecretJwt));
    assert_eq!(after.auth.secret_sealed.as_deref(), Some(sealed.as_slice()));
    let opened = kek.open_client_secret("hmac", &sealed).expect("opens");
    assert_eq!(opened.as_slice(), secret.expect("generated").as_bytes());

    let refused = client_rotate_secret(&store, &Actor::Cli, "hmac", 0, NOW + 2).await;
    assert!(
        refused
            .unwrap_err()
            .to_string()
            .contains("client_secret_jwt"),
        "a rotation would leave the sealed secret behind"
    );
    let (svc_store, _) = store_with_svc().await;
    let switch = ClientUpdate {
        token_endpoint_auth_method: Some("client_secret_jwt".into()),
        ..ClientUpdate::default()
    };
    let refused = client_update(&svc_store, &Actor::Cli, "svc", switch, NOW).await;
    assert!(
        matches!(
            refused,
            Err(ManageError::Invalid {
                field: "token_endpoint_auth_method",
                ..
            })
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_profiles_requirements_cannot_be_switched_off() {
    let (store, _) = store_with_svc().await;
    let jwks = r#"{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
    let registration = ClientRegistration {
        client_id: "bank".into(),
        redirect_uris: vec!["https://bank.example/cb".into()],
        grant_types: vec!["authorization_code".into()],
        auth_method: Some(AuthMethod::PrivateKeyJwt),
        jwks: Some(jwks.into()),
        profile: Some("fapi2".into()),
        ..ClientRegistration::default()
    };
    client_add(&store, &Actor::Cli, registration, None, &[], NOW)
        .await
        .expect("a fapi2 client");
    for update in [
        ClientUpdate {
            dpop_bound_access_tokens: Some(false),
            ..ClientUpdate::default()
        },
        ClientUpdate {
            require_pushed_authorization_requests: Some(false),
            ..ClientUpdate::default()
        },
    ] {
        let refused = client_update(&store, &Actor::Cli, "bank", update, NOW).await;
        assert!(
            matches!(
                refused,
                Err(ManageError::Invalid {
                    field: "profile",
                    ..
                })
            ),
            "{refused:?}"
        );
    }
    // Other changes go through, and the requirements stay on.
    let renamed = ClientUpdate {
        client_name: Some("Bank".into()),
        ..ClientUpdate::default()
    };
    let after = client_update(&store, &Actor::Cli, "bank", renamed, NOW)
        .await
        .expect("updated");
    assert!(after.require_pushed_authorization_requests && after.dpop_bound_access_tokens);
    assert_eq!(after.profile.as_deref(), Some("fapi2"));
}
