//! OpenID Connect over the real binary, on the backend the run uses: the
//! host keeps the sign-in record of a family whose code was issued for
//! `openid` (who signed in, when, how), which the family's ID tokens state.
//! One shared server for the module.

use std::sync::OnceLock;

use crate::harness::{Browser, PASSWORD, Server, allow, query_integer, redirect_params, user_add};

const CALLBACK: &str = "http://127.0.0.1:9999/cb";

/// The module's shared server, with alice and the client `rp`.
fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let server = Server::start();
        user_add(&server, "alice", PASSWORD);
        server
            .client_add(&[
                "rp",
                "--redirect-uri",
                CALLBACK,
                "--grant-type",
                "authorization_code",
                "--grant-type",
                "refresh_token",
                "--scope",
                "openid",
                "--scope",
                "profile",
                "--scope",
                "read",
            ])
            .expect("rp gets a secret");
        server
    })
}

/// Signs alice in with a fresh browser and approves `rp`'s request for
/// `scope`; returns the code and the seconds between which alice signed in.
fn code_for(server: &Server, scope: &str) -> (String, (i64, i64)) {
    let browser = Browser::new();
    let url = server.url(&format!(
        "/authorize?response_type=code&client_id=rp&redirect_uri={CALLBACK}&state=s&scope={scope}"
    ));
    let first = browser.get(&url);
    assert_eq!(first.status, 302, "{}", first.body);
    let before = unix_now();
    let signed_in = browser.sign_in(server, &first.location(), "alice", PASSWORD);
    let after = unix_now();
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let page = browser.get(&server.url(&signed_in.location()));
    let done = match page.status {
        200 => allow(&browser, server, &page),
        _ => page,
    };
    let params = redirect_params(&done.location(), false);
    let code = params
        .get("code")
        .unwrap_or_else(|| panic!("a code: {params:?}"))
        .clone();
    (code, (before, after))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

#[test]
fn a_code_for_openid_keeps_when_and_how_the_user_signed_in() {
    let server = server();
    let records = |condition: &str| {
        query_integer(
            server,
            &format!("SELECT COUNT(*) FROM sign_ins WHERE client_id = 'rp' AND {condition}"),
        )
    };
    let before = records("1 = 1");
    let (_code, (signed_in_from, signed_in_until)) = code_for(server, "openid%20profile");
    assert_eq!(records("1 = 1"), before + 1);
    assert_eq!(
        records(&format!(
            "auth_time BETWEEN {signed_in_from} AND {signed_in_until} \
             AND amr = '[\"pwd\"]' AND acr IS NULL \
             AND subject = (SELECT subject FROM users WHERE username = 'alice')"
        )),
        before + 1
    );
    // It outlives every token of the family: the code lifetime plus the
    // refresh token absolute lifetime.
    assert_eq!(
        records(&format!(
            "expires_at > {}",
            signed_in_until + 30 * 24 * 3600 - 1
        )),
        before + 1
    );

    // A code without `openid` has no sign-in record: nothing will ask for
    // an ID token of its family.
    let count = records("1 = 1");
    code_for(server, "read");
    assert_eq!(records("1 = 1"), count);
}
