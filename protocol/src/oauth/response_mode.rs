//! The response mode: how an authorization response travels back to the
//! client (OAuth 2.0 Multiple Response Types §2.1, Form Post Response Mode).

/// How a response travels back to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}
