//! The pages people see: login, consent, sign-out (and the RP-initiated
//! logout's confirmation and signed-out pages), error, the form_post
//! carrier, and a user step's code entry and done pages, rendered with
//! minijinja (HTML auto-escaped). Defaults are built in; an operator's
//! template directory overrides them file by file.

use std::path::Path;

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The templates every deployment has; a template directory may replace any.
const TEMPLATES: [(&str, &str); 10] = [
    ("base.html", include_str!("ui/base.html")),
    ("login.html", include_str!("ui/login.html")),
    ("consent.html", include_str!("ui/consent.html")),
    ("error.html", include_str!("ui/error.html")),
    ("signed_in.html", include_str!("ui/signed_in.html")),
    ("end_session.html", include_str!("ui/end_session.html")),
    ("signed_out.html", include_str!("ui/signed_out.html")),
    ("form_post.html", include_str!("ui/form_post.html")),
    ("user_code.html", include_str!("ui/user_code.html")),
    (
        "user_code_done.html",
        include_str!("ui/user_code_done.html"),
    ),
];
const DEFAULT_CSS: &str = include_str!("ui/grantbox.css");
/// The one script Grantbox serves: the form_post auto-submit, allowed by hash.
pub const FORM_POST_SCRIPT: &str = "document.forms[0].submit()";

/// Loaded templates and stylesheet.
#[derive(Debug)]
pub struct Ui {
    env: minijinja::Environment<'static>,
    pub css: String,
    /// `'sha256-…'` of [`FORM_POST_SCRIPT`] for the CSP of form_post pages.
    pub form_post_script_hash: String,
}

/// A template that could not be loaded or rendered.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UiError(pub String);

impl Ui {
    /// Loads the built-in templates, then `dir/*.html` and `dir/grantbox.css` over them.
    /// A template syntax error names the file and the line.
    pub fn load(dir: Option<&Path>) -> Result<Self, UiError> {
        let mut env = minijinja::Environment::new();
        for (name, source) in TEMPLATES {
            let source = match dir.map(|d| d.join(name)).filter(|p| p.is_file()) {
                Some(path) => std::fs::read_to_string(&path)
                    .map_err(|e| UiError(format!("{}: cannot read: {e}", path.display())))?,
                None => source.to_owned(),
            };
            env.add_template_owned(name, source).map_err(|e| {
                let file = dir
                    .map(|d| d.join(name).display().to_string())
                    .unwrap_or_else(|| name.to_owned());
                UiError(format!(
                    "{file}: line {}: {}",
                    e.line().unwrap_or(0),
                    e.detail().unwrap_or("syntax error")
                ))
            })?;
        }
        let css = match dir.map(|d| d.join("grantbox.css")).filter(|p| p.is_file()) {
            Some(path) => std::fs::read_to_string(&path)
                .map_err(|e| UiError(format!("{}: cannot read: {e}", path.display())))?,
            None => DEFAULT_CSS.to_owned(),
        };
        let digest = Sha256::digest(FORM_POST_SCRIPT.as_bytes());
        let ui = Self {
            env,
            css,
            form_post_script_hash: format!(
                "'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            ),
        };
        // Render every page once so a broken override fails at start, not for a user.
        for (name, _) in TEMPLATES {
            ui.render(name, minijinja::context! { title => "t", message => "m", scopes => [["s", "d"]], params => [["a", "b"]] })?;
        }
        Ok(ui)
    }

    pub fn render(&self, name: &str, context: minijinja::Value) -> Result<String, UiError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(context))
            .map_err(|e| UiError(format!("{name}: line {}: {e}", e.line().unwrap_or(0))))
    }
}

#[cfg(test)]
mod tests;
