//! Edits a `plugin.toml` in place with `toml_edit`: reads `[wasm] file` and
//! writes the wasm's SHA-256, keeping the author's layout and comments. It
//! knows only std and `toml_edit`, because `host/build.rs` includes this file
//! through `#[path]` to fill in the bundled manifests the same way.

use std::fmt;

use toml_edit::{DocumentMut, Item, TableLike, Value};

/// A manifest that cannot be edited; names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditError {
    pub field: &'static str,
    pub message: String,
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for EditError {}

/// The `[wasm] file` of manifest text, as written (not yet validated).
pub fn wasm_file(manifest: &str) -> Result<String, EditError> {
    let document = parse(manifest)?;
    let wasm = wasm_table(document.as_item())?;
    wasm.get("file")
        .and_then(Item::as_str)
        .map(str::to_owned)
        .ok_or_else(|| EditError {
            field: "wasm.file",
            message: "is missing or not a string".into(),
        })
}

/// The manifest text with `[wasm] sha256` set to `sha256`: added after the
/// table's last key when absent, replaced (keeping its comment) when present.
pub fn with_sha256(manifest: &str, sha256: &str) -> Result<String, EditError> {
    let mut document = parse(manifest)?;
    let wasm = wasm_table_mut(document.as_item_mut())?;
    match wasm.get_mut("sha256").and_then(Item::as_value_mut) {
        Some(existing) => {
            let decor = existing.decor().clone();
            *existing = Value::from(sha256);
            *existing.decor_mut() = decor;
        }
        None => {
            wasm.insert("sha256", toml_edit::value(sha256));
        }
    }
    Ok(document.to_string())
}

fn parse(manifest: &str) -> Result<DocumentMut, EditError> {
    manifest.parse::<DocumentMut>().map_err(|e| {
        let line = e
            .span()
            .map(|span| manifest[..span.start].lines().count().max(1));
        EditError {
            field: "(toml)",
            message: match line {
                Some(line) => format!("line {line}: {}", e.message().trim_end()),
                None => e.message().trim_end().to_owned(),
            },
        }
    })
}

fn no_wasm_table() -> EditError {
    EditError {
        field: "wasm",
        message: "there is no [wasm] table".into(),
    }
}

fn wasm_table(root: &Item) -> Result<&dyn TableLike, EditError> {
    root.get("wasm")
        .and_then(Item::as_table_like)
        .ok_or_else(no_wasm_table)
}

fn wasm_table_mut(root: &mut Item) -> Result<&mut dyn TableLike, EditError> {
    root.get_mut("wasm")
        .and_then(Item::as_table_like_mut)
        .ok_or_else(no_wasm_table)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn adds_sha256_and_keeps_comments_and_layout() {
        let manifest = "# my plugin\n[plugin]\nname = \"x\"   # aligned\n\n[wasm]\n# the component\nfile = \"x.wasm\"\n\n[config]\nkey = 1 # why\n";
        let edited = with_sha256(manifest, SHA).unwrap();
        assert_eq!(
            edited,
            format!(
                "# my plugin\n[plugin]\nname = \"x\"   # aligned\n\n[wasm]\n# the component\nfile = \"x.wasm\"\nsha256 = \"{SHA}\"\n\n[config]\nkey = 1 # why\n"
            )
        );
        assert_eq!(wasm_file(&edited).unwrap(), "x.wasm");
    }

    #[test]
    fn replaces_an_old_sha256_in_place() {
        let manifest = "[wasm]\nsha256 = \"old\"  # filled in by the build\nfile = \"x.wasm\"\n";
        let edited = with_sha256(manifest, SHA).unwrap();
        assert_eq!(
            edited,
            format!("[wasm]\nsha256 = \"{SHA}\"  # filled in by the build\nfile = \"x.wasm\"\n")
        );
    }

    #[test]
    fn an_inline_wasm_table_works_too() {
        let edited = with_sha256("wasm = { file = \"x.wasm\" }\n", SHA).unwrap();
        assert!(edited.contains(&format!("sha256 = \"{SHA}\"")), "{edited}");
        assert_eq!(wasm_file(&edited).unwrap(), "x.wasm");
    }

    #[test]
    fn errors_name_the_field() {
        let error = with_sha256("[plugin]\nname = \"x\"\n", SHA).unwrap_err();
        assert_eq!(error.field, "wasm");
        let error = wasm_file("[wasm]\nfile = 3\n").unwrap_err();
        assert_eq!(error.field, "wasm.file");
        let error = wasm_file("[wasm\n").unwrap_err();
        assert_eq!(error.field, "(toml)");
    }
}
