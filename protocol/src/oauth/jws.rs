//! The JWS compact serialization as the rules read it: a segment's JSON
//! object, before any signature is checked (RFC 7515 §7.1).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// Segment `index` (0: header, 1: payload) of a three-segment compact JWS,
/// when it is base64url of a JSON object.
pub fn segment(jws: &str, index: usize) -> Option<Map<String, Value>> {
    let segments: Vec<&str> = jws.split('.').collect();
    if segments.len() != 3 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(segments.get(index)?).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_is_a_json_object_of_three() {
        let object = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256"}"#);
        let array = URL_SAFE_NO_PAD.encode(b"[1]");
        let jws = format!("{object}.{object}.sig");
        assert_eq!(segment(&jws, 0).unwrap()["alg"], "ES256");
        assert_eq!(segment(&format!("{object}.{object}"), 0), None);
        assert_eq!(segment(&format!("{array}.{object}.sig"), 0), None);
        assert_eq!(segment(&format!("!!.{object}.sig"), 0), None);
    }
}
