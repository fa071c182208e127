//! A plugin version's fingerprint: its endpoints and user steps are part of
//! it, and a plugin without any keeps the fingerprint it had before they
//! existed.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use super::fingerprint;
use crate::plugin::{Capability, LimitCaps, Manifest};

fn manifest(tables: &str) -> Manifest {
    let text = format!(
        r#"
[plugin]
name = "grant-x"
version = "0.1.0"
interface = "grantbox:plugin@1.3.0"
capabilities = ["tokens"]

[wasm]
file = "grant_x.wasm"
sha256 = "{}"

[provides]
grant_types = ["urn:x"]

[config]
level = 3
{tables}"#,
        "a".repeat(64)
    );
    Manifest::parse(&text, "p", LimitCaps::DEFAULT).unwrap()
}

#[test]
fn endpoints_and_user_steps_are_part_of_the_fingerprint() {
    let capabilities: BTreeSet<Capability> = [Capability::Tokens].into();
    let plain = manifest("");
    // How fingerprints were made before plugins had endpoints: a plugin
    // without any keeps its fingerprint, so the transactions it began before
    // the host was upgraded are still decided by it.
    let before = serde_json::json!([
        plain.name,
        plain.version,
        plain.wasm_sha256,
        ["tokens"],
        plain.config,
    ]);
    assert_eq!(
        fingerprint(&plain, &capabilities),
        hex::encode(Sha256::digest(before.to_string()))
    );

    let variants = [
        "",
        "[[provides.endpoints]]\npath = \"/a\"\n",
        "[[provides.endpoints]]\npath = \"/b\"\n",
        "[[provides.endpoints]]\npath = \"/a\"\nauthenticate_client = false\n",
        "[[provides.endpoints]]\npath = \"/a\"\nmetadata = \"a_endpoint\"\n",
        "[[provides.user_steps]]\npath = \"/a\"\n",
    ];
    let fingerprints: BTreeSet<String> = variants
        .iter()
        .map(|tables| fingerprint(&manifest(tables), &capabilities))
        .collect();
    assert_eq!(fingerprints.len(), variants.len(), "{fingerprints:?}");
}
