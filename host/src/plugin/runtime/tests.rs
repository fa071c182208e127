//! A plugin version's fingerprint: its endpoints and user steps are part of
//! it, and a plugin without any keeps the fingerprint it had before they
//! existed. The key-value estimate admits only writes its upper bound fits.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use super::context::{KeyValueEstimate, KeyValueQuota};
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

#[test]
fn the_key_value_estimate_admits_only_what_its_bound_fits() {
    let quota = KeyValueQuota {
        keys: 12,
        bytes: 200,
        write_bytes_per_call: 1000,
    };
    let estimate = KeyValueEstimate::default();
    assert!(!estimate.admit(quota, 1), "nothing measured yet");
    estimate.record(10, 100);
    assert!(estimate.admit(quota, 50), "11 keys, 150 bytes");
    assert!(!estimate.admit(quota, 51), "would be 201 bytes");
    assert!(estimate.admit(quota, 10), "12 keys, 160 bytes");
    assert!(!estimate.admit(quota, 1), "a 13th key might not fit");
    estimate.record(3, 30);
    assert!(estimate.admit(quota, 1), "a new measurement starts again");
}
