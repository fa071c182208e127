//! `Params::parse` on arbitrary bytes (a form body or query string): never
//! panics; on success `get` fails exactly for repeated names,
//! `first_repeated` agrees, and re-encoding the pairs parses back to them.

#![no_main]

use grantbox_protocol::oauth::Params;
use libfuzzer_sys::fuzz_target;

/// Names the endpoints read, so `get` also runs on names that are absent.
const KNOWN: &[&str] = &[
    "grant_type",
    "code",
    "redirect_uri",
    "client_id",
    "client_secret",
    "scope",
    "state",
    "code_verifier",
    "response_type",
    "",
];

fuzz_target!(|data: &[u8]| {
    let Ok(params) = Params::parse(data) else {
        return;
    };
    let pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let count = |name: &str| pairs.iter().filter(|(k, _)| k == name).count();

    for name in pairs
        .iter()
        .map(|(k, _)| k.as_str())
        .chain(KNOWN.iter().copied())
    {
        let n = count(name);
        match params.get(name) {
            Err(error) => {
                assert!(n > 1, "get({name:?}) failed for a name seen {n} times");
                assert_eq!(error.code.as_str(), "invalid_request");
            }
            Ok(value) => {
                assert!(n <= 1, "get({name:?}) succeeded for a name seen {n} times");
                let expected = pairs
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
                    .filter(|v| !v.is_empty());
                assert_eq!(value, expected);
                assert_eq!(params.require(name).ok(), expected);
            }
        }
        assert_eq!(params.contains(name), n > 0);
    }

    match params.first_repeated() {
        Some(name) => assert!(count(name) > 1, "{name:?} is not repeated"),
        None => assert!(pairs.iter().all(|(k, _)| count(k) == 1)),
    }

    // Encoding what was decoded and decoding again is the identity.
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in &pairs {
        serializer.append_pair(name, value);
    }
    let again = Params::parse(serializer.finish().as_bytes()).expect("re-encoded pairs parse");
    assert_eq!(again, Params::from_pairs(pairs.clone()));

    let kept = params.without(&["client_id", "client_secret"]);
    assert!(
        kept.iter()
            .all(|(k, _)| k != "client_id" && k != "client_secret")
    );
});
