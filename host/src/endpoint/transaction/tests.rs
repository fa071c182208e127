//! The transaction kinds in one session: each lookup finds only its kind,
//! expiry and removal apply to both, and sessions saved before user steps
//! existed still read.

use std::sync::Arc;

use super::*;

const NOW: i64 = 1_000_000;

/// A fresh session: nothing is loaded from or saved to its store here, so a
/// lazily connected in-memory database never opens.
fn session() -> Session {
    let pool = sqlx::SqlitePool::connect_lazy("sqlite::memory:").expect("a lazy pool");
    let store = tower_sessions_sqlx_store::SqliteStore::new(pool);
    Session::new(None, Arc::new(store), None)
}

fn authorization(id: &str, expires_at: i64) -> Transaction {
    Transaction {
        id: id.into(),
        csrf_token: "csrf".into(),
        expires_at,
        client_id: "web".into(),
        redirect_uri: "https://app.example/cb".into(),
        sent_redirect_uri: None,
        response_type: vec!["code".into()],
        response_mode: ResponseMode::Query,
        scope: vec!["read".into()],
        resources: vec![],
        state: None,
        data: vec![],
        plugin: None,
        requested_at: NOW,
        sign_in: SignInRequest::default(),
        signed_in_for_it: false,
        dpop_jkt: None,
    }
}

fn user_step(id: &str, expires_at: i64) -> UserStepTransaction {
    UserStepTransaction {
        id: id.into(),
        csrf_token: "csrf".into(),
        expires_at,
        step: "/step".into(),
        plugin_name: "a-plugin".into(),
        plugin: "fingerprint".into(),
        client_id: "tv".into(),
        scope: vec!["read".into()],
        data: vec![("handle".into(), "h1".into())],
    }
}

#[tokio::test]
async fn each_lookup_finds_only_its_kind() {
    let session = session();
    save(&session, authorization("a1", NOW + 60), NOW)
        .await
        .unwrap();
    save(&session, user_step("u1", NOW + 60), NOW)
        .await
        .unwrap();

    assert!(find(&session, "a1", NOW).await.unwrap().is_some());
    assert!(find(&session, "u1", NOW).await.unwrap().is_none());
    let step = find_user_step(&session, "u1", NOW).await.unwrap();
    assert_eq!(
        step.map(|s| s.data),
        Some(vec![("handle".into(), "h1".into())])
    );
    assert!(find_user_step(&session, "a1", NOW).await.unwrap().is_none());

    remove(&session, "u1").await.unwrap();
    assert!(find_user_step(&session, "u1", NOW).await.unwrap().is_none());
    assert!(
        find(&session, "a1", NOW).await.unwrap().is_some(),
        "the other stays"
    );
}

#[tokio::test]
async fn an_expired_user_step_is_gone() {
    let session = session();
    save(&session, user_step("u1", NOW + 60), NOW)
        .await
        .unwrap();
    assert!(
        find_user_step(&session, "u1", NOW + 59)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        find_user_step(&session, "u1", NOW + 60)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn both_kinds_share_the_cap_on_open_transactions() {
    let session = session();
    save(&session, authorization("first", NOW + 60), NOW)
        .await
        .unwrap();
    for n in 0..MAX_TRANSACTIONS {
        save(&session, user_step(&format!("u{n}"), NOW + 60), NOW)
            .await
            .unwrap();
    }
    assert!(
        find(&session, "first", NOW).await.unwrap().is_none(),
        "the oldest went"
    );
    assert_eq!(stored(&session).await.unwrap().len(), MAX_TRANSACTIONS);
}

#[test]
fn sessions_saved_before_user_steps_still_read() {
    // The stored form of sessions of earlier releases: a list of bare authorization transactions.
    let old = serde_json::to_value(vec![authorization("a1", NOW + 60)]).unwrap();
    let read: Transactions = serde_json::from_value(old).unwrap();
    assert!(matches!(&read[..], [Stored::Authorization(t)] if t.id == "a1"));

    let mixed = serde_json::to_value(vec![
        Stored::from(user_step("u1", NOW + 60)),
        Stored::from(authorization("a1", NOW + 60)),
    ])
    .unwrap();
    let read: Transactions = serde_json::from_value(mixed).unwrap();
    assert!(
        matches!(&read[..], [Stored::UserStep(u), Stored::Authorization(a)] if u.id == "u1" && a.id == "a1")
    );
}

#[tokio::test]
async fn the_throttle_key_survives_signing_in() {
    // Signing in deletes the old session id from the store: a real one here.
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .expect("an in-memory database");
    let store = tower_sessions_sqlx_store::SqliteStore::new(pool);
    store.migrate().await.expect("the session table");
    let session = Session::new(None, Arc::new(store), None);
    let key = throttle_key(&session).await.unwrap();
    assert_eq!(throttle_key(&session).await.unwrap(), key, "made once");
    let user = SessionUser {
        subject: "s".into(),
        username: "alice".into(),
        auth_time: NOW,
    };
    sign_in(&session, user).await.unwrap();
    assert_eq!(throttle_key(&session).await.unwrap(), key);
    assert_ne!(
        csrf_token(&session).await.unwrap(),
        key,
        "not the CSRF token"
    );
}

#[test]
fn a_user_step_with_too_much_plugin_data_is_refused() {
    let mut step = user_step("u1", NOW + 60);
    assert!(check_user_step_size(&step).is_ok());
    step.data = vec![("blob".into(), "x".repeat(MAX_TRANSACTION_BYTES))];
    let error = check_user_step_size(&step).expect_err("too large");
    assert!(error.to_string().contains("larger than"), "{error}");
}

/// A transaction saved before the OpenID Connect parameters existed reads
/// as one that asked nothing of the sign-in.
#[test]
fn transactions_saved_before_the_sign_in_parameters_still_read() {
    let mut old = serde_json::to_value(authorization("a1", NOW + 60)).unwrap();
    let object = old.as_object_mut().unwrap();
    object.remove("requested_at");
    object.remove("sign_in");
    let read: Transaction = serde_json::from_value(old).unwrap();
    assert_eq!(read.sign_in, SignInRequest::default());
    let user = SessionUser {
        subject: "s".into(),
        username: "alice".into(),
        auth_time: 0,
    };
    assert!(read.sign_in_is_fresh(&user));
}

#[test]
fn prompt_login_and_max_age_ask_for_a_sign_in_after_the_request() {
    let user = |auth_time| SessionUser {
        subject: "s".into(),
        username: "alice".into(),
        auth_time,
    };
    let mut transaction = authorization("a1", NOW + 60);
    assert!(transaction.sign_in_is_fresh(&user(NOW - 86_400)));
    transaction.sign_in.prompt_login = true;
    assert!(!transaction.sign_in_is_fresh(&user(NOW - 1)));
    // A sign-in in the request's own second may have come before it: only
    // a sign-in on the page the transaction led to is after it.
    assert!(!transaction.sign_in_is_fresh(&user(NOW)));
    transaction.signed_in_for_it = true;
    assert!(transaction.sign_in_is_fresh(&user(NOW)));
    transaction.signed_in_for_it = false;
    transaction.sign_in.prompt_login = false;
    transaction.sign_in.max_age = Some(60);
    assert!(transaction.sign_in_is_fresh(&user(NOW - 60)));
    assert!(!transaction.sign_in_is_fresh(&user(NOW - 61)));
    transaction.sign_in.max_age = Some(0);
    assert!(!transaction.sign_in_is_fresh(&user(NOW)));
}

#[test]
fn the_sign_in_record_states_acr_only_when_the_request_asked() {
    let user = SessionUser {
        subject: "s".into(),
        username: "alice".into(),
        auth_time: NOW - 30,
    };
    let mut transaction = authorization("a1", NOW + 60);
    let plain = transaction.authentication(&user);
    assert_eq!(plain.auth_time, NOW - 30);
    assert_eq!(plain.amr, ["pwd"]);
    assert_eq!(plain.acr, None);
    transaction.sign_in.acr_requested = true;
    assert_eq!(
        transaction.authentication(&user).acr.as_deref(),
        Some("urn:grantbox:acr:password")
    );
}
