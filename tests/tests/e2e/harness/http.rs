//! Plain HTTP against a running server: a client that follows no redirect,
//! the token request with HTTP Basic authentication, a cookie-keeping
//! [`Browser`] whose every step the test inspects, and redirect parameters.

use std::time::Duration;

use super::server::Server;

pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

/// A token request with HTTP Basic client authentication.
pub fn token_request(
    server: &Server,
    client_id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let response = http()
        .post(server.url("/token"))
        .basic_auth(client_id, Some(secret))
        .form(form)
        .send()
        .expect("the token endpoint answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().unwrap_or(serde_json::Value::Null);
    (status, body, headers)
}

/// A cookie-keeping client that follows nothing by itself, like a browser
/// whose every step the test inspects.
pub struct Browser {
    client: reqwest::blocking::Client,
}

/// One response as the test sees it.
pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> String {
        location(&self.headers)
    }

    /// The value of a hidden input of the page's form.
    pub fn input(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no input {name} in:\n{}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').expect("a closed attribute") + start;
        self.body[start..end].to_owned()
    }
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        Self {
            client: reqwest::blocking::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
        }
    }

    fn page(response: reqwest::blocking::Response) -> Page {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().unwrap_or_default();
        Page {
            status,
            headers,
            body,
        }
    }

    pub fn get(&self, url: &str) -> Page {
        Self::page(self.client.get(url).send().expect("the server answers"))
    }

    pub fn post(&self, url: &str, form: &[(&str, &str)]) -> Page {
        Self::page(
            self.client
                .post(url)
                .form(form)
                .send()
                .expect("the server answers"),
        )
    }

    /// Signs in on the login page the server redirected to; returns the next page.
    pub fn sign_in(
        &self,
        server: &Server,
        login_location: &str,
        username: &str,
        password: &str,
    ) -> Page {
        let login = self.get(&server.url(login_location));
        assert_eq!(login.status, 200, "{}", login.body);
        let csrf = login.input("csrf_token");
        let mut form = vec![
            ("username", username),
            ("password", password),
            ("csrf_token", csrf.as_str()),
        ];
        let transaction = login
            .body
            .contains("name=\"transaction_id\"")
            .then(|| login.input("transaction_id"));
        if let Some(transaction) = &transaction {
            form.push(("transaction_id", transaction));
        }
        self.post(&server.url("/login"), &form)
    }
}

/// The `Location` header, or an empty string when there is none.
pub fn location(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The query (or fragment) parameters of a redirect.
pub fn redirect_params(
    location: &str,
    fragment: bool,
) -> std::collections::HashMap<String, String> {
    let url = url::Url::parse(location).unwrap_or_else(|e| panic!("{location}: {e}"));
    let part = if fragment {
        url.fragment().unwrap_or_default().to_owned()
    } else {
        url.query().unwrap_or_default().to_owned()
    };
    url::form_urlencoded::parse(part.as_bytes())
        .into_owned()
        .collect()
}
