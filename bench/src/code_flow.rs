//! `code-flow`: the load generator of `bench/run.sh`'s `code_flow` scenario,
//! the whole authorization code flow of a signed-in user, end to end:
//! `GET /authorize` → the consent step → the decision → the code on the
//! redirect → `POST /token`. `CONNS` virtual users run it in a loop, each
//! with its own cookie jar and connection, signed in once before the clock
//! starts. Against Grantbox the consent step is the HTML page
//! (`prompt=consent`, so it is shown every time), whose hidden
//! `transaction_id` and `csrf_token` the decision posts back, with PKCE S256;
//! against the OAuth2orize anchor it is the anchor's JSON document and
//! `POST /decision` (the anchor has no PKCE). A flow counts when its token
//! response carries an access token; anything else is an error, counted and
//! reported, and the virtual user starts the next flow.
//!
//! Prints one `BENCHJSON {…}` line in the shape of `wrk/token_load.lua`'s,
//! where a "request" is a whole flow, plus `http_requests`.
//!
//! ```text
//! code-flow grantbox|oauth2orize PORT SECONDS CONNS CLIENT_ID SECRET REDIRECT_URI USERNAME PASSWORD
//! ```
//! `SECONDS` 0 runs one flow per virtual user and fails unless each worked
//! (the check before a run).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::LOCATION;
use reqwest::{Client, Response, StatusCode};
use sha2::{Digest, Sha256};

mod latency;
use latency::{Latencies, micros};

/// The server the flow is driven against.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Server {
    Grantbox,
    Oauth2orize,
}

struct Config {
    server: Server,
    base: String,
    client_id: String,
    secret: String,
    redirect_uri: String,
    username: String,
    password: String,
}

/// The PKCE verifier every flow uses (RFC 7636 §4.1: 43 to 128 characters).
const CODE_VERIFIER: &str = "code-flow-bench-verifier-0123456789-abcdefghijklmnop";

/// Why a flow failed: a transport error or an answer the flow did not expect.
#[derive(Debug)]
enum Failure {
    Transport(String),
    Status(String),
}

impl From<reqwest::Error> for Failure {
    fn from(error: reqwest::Error) -> Self {
        Failure::Transport(error.to_string())
    }
}

/// Counts of one virtual user.
#[derive(Default)]
struct Tally {
    flows: u64,
    http_requests: u64,
    latencies_us: Vec<u32>,
    err_status: u64,
    err_transport: u64,
    last_error: Option<String>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [
        server,
        port,
        seconds,
        conns,
        client_id,
        secret,
        redirect_uri,
        username,
        password,
    ] = args.as_slice()
    else {
        eprintln!(
            "usage: code-flow grantbox|oauth2orize PORT SECONDS CONNS CLIENT_ID SECRET REDIRECT_URI USERNAME PASSWORD"
        );
        std::process::exit(2);
    };
    let server = match server.as_str() {
        "grantbox" => Server::Grantbox,
        "oauth2orize" => Server::Oauth2orize,
        other => {
            eprintln!("code-flow: unknown server {other:?}");
            std::process::exit(2);
        }
    };
    let seconds: u64 = seconds.parse().expect("SECONDS is a number");
    let conns: usize = conns.parse().expect("CONNS is a number");
    let config = Arc::new(Config {
        server,
        base: format!("http://127.0.0.1:{port}"),
        client_id: client_id.clone(),
        secret: secret.clone(),
        redirect_uri: redirect_uri.clone(),
        username: username.clone(),
        password: password.clone(),
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let code = runtime.block_on(run(config, seconds, conns));
    std::process::exit(code);
}

async fn run(config: Arc<Config>, seconds: u64, conns: usize) -> i32 {
    // Every virtual user signs in (and so opens its connection) first.
    let mut users = Vec::with_capacity(conns);
    for _ in 0..conns {
        let client = Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client");
        if let Err(failure) = sign_in(&config, &client).await {
            eprintln!("code-flow: signing in failed: {failure:?}");
            return 1;
        }
        users.push(client);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let started_flows = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = users
        .into_iter()
        .map(|client| {
            let (config, stop, started_flows) =
                (config.clone(), stop.clone(), started_flows.clone());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                loop {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    started_flows.fetch_add(1, Ordering::Relaxed);
                    let began = Instant::now();
                    match flow(&config, &client, &mut tally.http_requests).await {
                        Ok(()) => {
                            tally.flows += 1;
                            tally.latencies_us.push(micros(began.elapsed()));
                        }
                        Err(Failure::Status(why)) => {
                            tally.err_status += 1;
                            tally.last_error = Some(why);
                        }
                        Err(Failure::Transport(why)) => {
                            tally.err_transport += 1;
                            tally.last_error = Some(why);
                        }
                    }
                    if seconds == 0 {
                        break;
                    }
                }
                tally
            })
        })
        .collect();
    if seconds > 0 {
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, Ordering::Relaxed);
    }
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await.expect("a virtual user");
        total.flows += tally.flows;
        total.http_requests += tally.http_requests;
        total.latencies_us.extend(tally.latencies_us);
        total.err_status += tally.err_status;
        total.err_transport += tally.err_transport;
        total.last_error = tally.last_error.or(total.last_error);
    }
    let elapsed = start.elapsed();
    report(&total, elapsed);
    if let Some(why) = &total.last_error {
        eprintln!("code-flow: last error: {why}");
    }
    if seconds == 0 && (total.err_status + total.err_transport > 0 || total.flows == 0) {
        return 1;
    }
    0
}

fn report(total: &Tally, elapsed: Duration) {
    let latencies = Latencies::new(total.latencies_us.clone());
    println!(
        "BENCHJSON {{\"requests\":{},\"duration_us\":{},\"rps\":{:.1},{},\"err_connect\":0,\"err_read\":{},\"err_write\":0,\"err_status\":{},\"err_timeout\":0,\"http_requests\":{}}}",
        total.flows,
        elapsed.as_micros(),
        total.flows as f64 / elapsed.as_secs_f64(),
        latencies.json_members(),
        total.err_transport,
        total.err_status,
        total.http_requests,
    );
}

/// Signs the virtual user in: Grantbox's login form (with its CSRF token),
/// the anchor's `POST /login`.
async fn sign_in(config: &Config, client: &Client) -> Result<(), Failure> {
    let csrf = match config.server {
        Server::Grantbox => {
            let login = client.get(format!("{}/login", config.base)).send().await?;
            Some(hidden_input(&expect_page(login).await?, "csrf_token")?)
        }
        Server::Oauth2orize => None,
    };
    let mut form = vec![
        ("username", config.username.as_str()),
        ("password", config.password.as_str()),
    ];
    if let Some(csrf) = &csrf {
        form.push(("csrf_token", csrf));
    }
    let signed_in = (client.post(format!("{}/login", config.base)).form(&form))
        .send()
        .await?;
    // Grantbox redirects to the signed-in page; the anchor answers JSON.
    if !(signed_in.status().is_redirection() || signed_in.status() == StatusCode::OK) {
        return Err(Failure::Status(format!("login: {}", signed_in.status())));
    }
    Ok(())
}

/// One whole flow; `requests` counts the HTTP requests it sent.
async fn flow(config: &Config, client: &Client, requests: &mut u64) -> Result<(), Failure> {
    let code = match config.server {
        Server::Grantbox => grantbox_code(config, client, requests).await?,
        Server::Oauth2orize => anchor_code(config, client, requests).await?,
    };
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", config.redirect_uri.as_str()),
    ];
    if config.server == Server::Grantbox {
        form.push(("code_verifier", CODE_VERIFIER));
    }
    *requests += 1;
    let token = client
        .post(format!("{}/token", config.base))
        .basic_auth(&config.client_id, Some(&config.secret))
        .form(&form)
        .send()
        .await?;
    let status = token.status();
    let body = token.text().await?;
    if status != StatusCode::OK || !body.contains("\"access_token\"") {
        return Err(Failure::Status(format!("token: {status} {body}")));
    }
    Ok(())
}

/// Grantbox: `GET /authorize` with `prompt=consent` shows the consent page
/// to the signed-in user; the decision's redirect carries the code.
async fn grantbox_code(
    config: &Config,
    client: &Client,
    requests: &mut u64,
) -> Result<String, Failure> {
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(CODE_VERIFIER.as_bytes()));
    let query = [
        ("response_type", "code"),
        ("client_id", config.client_id.as_str()),
        ("redirect_uri", config.redirect_uri.as_str()),
        ("scope", "read"),
        ("state", "bench"),
        ("prompt", "consent"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    *requests += 1;
    let consent = (client
        .get(format!("{}/authorize", config.base))
        .query(&query))
    .send()
    .await?;
    let page = expect_page(consent).await?;
    let transaction_id = hidden_input(&page, "transaction_id")?;
    let csrf = hidden_input(&page, "csrf_token")?;
    let form = [
        ("transaction_id", transaction_id.as_str()),
        ("csrf_token", csrf.as_str()),
        ("allow", "1"),
    ];
    *requests += 1;
    let decided = (client
        .post(format!("{}/authorize/decision", config.base))
        .form(&form))
    .send()
    .await?;
    code_of(config, &decided)
}

/// The anchor: `GET /authorize` answers the transaction as JSON, and
/// `POST /decision` redirects with the code.
async fn anchor_code(
    config: &Config,
    client: &Client,
    requests: &mut u64,
) -> Result<String, Failure> {
    let query = [
        ("response_type", "code"),
        ("client_id", config.client_id.as_str()),
        ("redirect_uri", config.redirect_uri.as_str()),
        ("scope", "read"),
        ("state", "bench"),
    ];
    *requests += 1;
    let transaction = (client
        .get(format!("{}/authorize", config.base))
        .query(&query))
    .send()
    .await?;
    let status = transaction.status();
    let body = transaction.text().await?;
    if status != StatusCode::OK {
        return Err(Failure::Status(format!("authorize: {status} {body}")));
    }
    let transaction_id = json_string(&body, "transaction_id")
        .ok_or_else(|| Failure::Status(format!("authorize: no transaction_id in {body}")))?;
    *requests += 1;
    let decided = (client.post(format!("{}/decision", config.base)))
        .form(&[("transaction_id", transaction_id.as_str())])
        .send()
        .await?;
    code_of(config, &decided)
}

/// The `code` of a redirect to the client's redirect URI.
fn code_of(config: &Config, response: &Response) -> Result<String, Failure> {
    let location = (response.headers().get(LOCATION))
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if !response.status().is_redirection() || !location.starts_with(&config.redirect_uri) {
        return Err(Failure::Status(format!(
            "decision: {} to {location:?}",
            response.status()
        )));
    }
    let query = location.split_once('?').map_or("", |(_, query)| query);
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "code")
        .map(|(_, code)| code.into_owned())
        .ok_or_else(|| Failure::Status(format!("decision: no code in {location}")))
}

async fn expect_page(response: Response) -> Result<String, Failure> {
    let status = response.status();
    let body = response.text().await?;
    if status != StatusCode::OK {
        return Err(Failure::Status(format!("expected a page: {status} {body}")));
    }
    Ok(body)
}

/// The value of a hidden input of a Grantbox page.
fn hidden_input(page: &str, name: &str) -> Result<String, Failure> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .ok_or_else(|| Failure::Status(format!("no {name} on the page")))?
        + marker.len();
    let end = page[start..]
        .find('"')
        .ok_or_else(|| Failure::Status(format!("an unclosed {name}")))?;
    Ok(page[start..start + end].to_owned())
}

/// A string member of a flat JSON object, without a JSON parser's cost in
/// the load generator.
fn json_string(body: &str, name: &str) -> Option<String> {
    let marker = format!("\"{name}\":\"");
    let start = body.find(&marker)? + marker.len();
    let end = body[start..].find('"')?;
    Some(body[start..start + end].to_owned())
}
