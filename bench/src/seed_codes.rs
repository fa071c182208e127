//! `seed-codes`: authorization codes for the `authorization_code` load scenario
//! of `bench/run.sh`, written through Grantbox's own store (`Store::insert_code`)
//! exactly as the bundled code grant's `codes.issue` stores them, with a PKCE
//! S256 challenge (RFC 7636) of one verifier. Going through `/authorize`, the
//! login and the consent page for each of ~100,000 codes would take longer than
//! the measured run; the redemption, which is what the scenario measures, is
//! the real one.
//!
//!     seed-codes DB CLIENT_ID REDIRECT_URI VERIFIER COUNT OUT_FILE
//!
//! Writes one code a line to OUT_FILE. The codes live 15 minutes.

use std::io::Write as _;

use base64::Engine as _;
use grantbox::clock::Clock;
use grantbox::secret;
use grantbox::store::{NewCode, Store};
use sha2::{Digest as _, Sha256};

const LIFETIME_SECONDS: i64 = 900;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db, client_id, redirect_uri, verifier, count, out] = args.as_slice() else {
        return Err("usage: seed-codes DB CLIENT_ID REDIRECT_URI VERIFIER COUNT OUT_FILE".into());
    };
    let count: usize = count.parse().map_err(|e| format!("COUNT: {e}"))?;
    let challenge =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier));
    let store = Store::open(db).await?;
    let now = Clock::system().now();
    let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
    for _ in 0..count {
        let code = secret::new_token();
        store
            .insert_code(&NewCode {
                code_hash: secret::token_hash(&code),
                client_id: client_id.clone(),
                subject: "alice".into(),
                redirect_uri: redirect_uri.clone(),
                scope: vec!["read".into(), "write".into()],
                data: vec![
                    ("code_challenge".into(), challenge.clone()),
                    ("code_challenge_method".into(), "S256".into()),
                ],
                grant_id: secret::new_token(),
                issued_at: now,
                expires_at: now + LIFETIME_SECONDS,
                resources: Vec::new(),
                dpop_jkt: None,
            })
            .await?;
        writeln!(file, "{code}")?;
    }
    file.flush()?;
    store.close().await;
    Ok(())
}
