//! `grantbox plugins new`: writes a standalone plugin crate — `Cargo.toml`
//! depending on the SDK by path, `plugin.toml`, a working extension grant in
//! `src/lib.rs` with native tests, `.gitignore` and a README — from the
//! templates in `scaffold/`. It never overwrites an existing directory.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// The SDK source this binary was built beside, used when no `--sdk` is given.
const BUILT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugin-sdk");

/// The namespace of the generated grant type: an absolute URI, as RFC 6749
/// §4.5 asks of extension grants, under the `example` URN namespace the
/// author replaces with one of their own.
const GRANT_TYPE_PREFIX: &str = "urn:example:params:oauth:grant-type:";

const TEMPLATES: [(&str, &str); 6] = [
    ("Cargo.toml", include_str!("scaffold/Cargo.toml.in")),
    ("plugin.toml", include_str!("scaffold/plugin.toml.in")),
    ("src/lib.rs", include_str!("scaffold/lib.rs.in")),
    ("src/tests.rs", include_str!("scaffold/tests.rs.in")),
    (".gitignore", include_str!("scaffold/gitignore.in")),
    ("README.md", include_str!("scaffold/README.md.in")),
];

/// What `plugins new` was asked for.
#[derive(Debug, Clone)]
pub struct ScaffoldRequest {
    /// The plugin's name: the folder, the package and `[plugin] name`.
    pub name: String,
    /// Where the plugin's folder goes.
    pub parent: PathBuf,
    /// The SDK source; `None` takes the one this binary was built beside.
    pub sdk: Option<PathBuf>,
}

/// A plugin crate that was written.
#[derive(Debug, Clone)]
pub struct Scaffolded {
    pub dir: PathBuf,
    pub grant_type: String,
    pub files: Vec<&'static str>,
}

/// Writes the plugin crate `parent/name`.
pub fn create(request: &ScaffoldRequest) -> anyhow::Result<Scaffolded> {
    check_name(&request.name)?;
    let sdk = sdk_path(request.sdk.as_deref())?;
    let dir = request.parent.join(&request.name);
    if dir.exists() || dir.is_symlink() {
        bail!(
            "{}: already exists; plugins new writes only a new directory",
            dir.display()
        );
    }
    let files = render(&request.name, &sdk)?;
    // Create the directory itself without `create_dir_all`, so a directory
    // made in the meantime is refused rather than written into.
    std::fs::create_dir_all(&request.parent)
        .with_context(|| format!("creating {}", request.parent.display()))?;
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for (path, text) in &files {
        let target = dir.join(path);
        if let Some(folder) = target.parent() {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("creating {}", folder.display()))?;
        }
        std::fs::write(&target, text).with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(Scaffolded {
        dir,
        grant_type: grant_type(&request.name),
        files: files.iter().map(|(path, _)| *path).collect(),
    })
}

/// A plugin name is a Cargo package name and a manifest `[plugin] name`:
/// a lowercase letter, then lowercase letters, digits, `-` or `_`.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with(['-', '_'])
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !valid {
        bail!(
            "plugin name {name:?}: must start with a lowercase letter and hold only lowercase \
             letters, digits, - or _ (at most 64, not ending in - or _), e.g. grant-hello"
        );
    }
    let crate_name = crate_name(name);
    if RESERVED.contains(&crate_name.as_str()) {
        bail!("plugin name {name:?}: {crate_name} is a Rust keyword or a standard crate");
    }
    Ok(())
}

/// Names Cargo refuses as a library crate's name.
const RESERVED: [&str; 56] = [
    "abstract",
    "alloc",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "core",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "proc_macro",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "std",
    "struct",
    "super",
    "test",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
];

/// The SDK directory: `--sdk`, else the one this binary was built beside;
/// either must hold the SDK's `Cargo.toml`.
fn sdk_path(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let (candidate, origin) = match explicit {
        Some(path) => (path.to_owned(), "--sdk"),
        None => (
            PathBuf::from(BUILT_SDK),
            "the SDK this binary was built from",
        ),
    };
    let canonical = candidate.canonicalize().ok().filter(|dir| {
        std::fs::read_to_string(dir.join("Cargo.toml"))
            .is_ok_and(|text| text.contains("name = \"grantbox-sdk\""))
    });
    match canonical {
        Some(dir) => Ok(dir),
        None => bail!(
            "{}: {origin} is not the grantbox-sdk source (no Cargo.toml of package grantbox-sdk there); \
             pass --sdk PATH with the plugin-sdk folder of a Grantbox checkout",
            candidate.display()
        ),
    }
}

/// The generated grant type: the name without a leading `grant-`, under
/// [`GRANT_TYPE_PREFIX`].
pub fn grant_type(name: &str) -> String {
    let short = name
        .strip_prefix("grant-")
        .or_else(|| name.strip_prefix("grant_"))
        .filter(|rest| !rest.is_empty())
        .unwrap_or(name);
    format!("{GRANT_TYPE_PREFIX}{short}")
}

/// The Rust crate name: `-` becomes `_`, as Cargo does (and as the `.wasm` is named).
fn crate_name(name: &str) -> String {
    name.replace('-', "_")
}

/// The grant's type name: the words of the name without `grant-`, in
/// UpperCamelCase, then `Grant` (`grant-hello` → `HelloGrant`).
fn type_name(name: &str) -> String {
    let camel = |text: &str| -> String {
        text.split(['-', '_'])
            .filter(|word| !word.is_empty())
            .map(|word| {
                let mut chars = word.chars();
                chars
                    .next()
                    .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect()
    };
    let short = name
        .strip_prefix("grant-")
        .or_else(|| name.strip_prefix("grant_"))
        .map(camel)
        .filter(|short| short.starts_with(|c: char| c.is_ascii_uppercase()))
        .unwrap_or_else(|| camel(name));
    format!("{short}Grant")
}

/// Every file of the crate, relative to its directory.
fn render(name: &str, sdk: &Path) -> anyhow::Result<Vec<(&'static str, String)>> {
    let sdk_text = sdk
        .to_str()
        .with_context(|| format!("{}: the SDK path is not UTF-8", sdk.display()))?;
    // A TOML basic string, escaped by the TOML writer.
    let sdk_toml = toml_edit::Value::from(sdk_text).to_string();
    let grant_type = grant_type(name);
    let type_name = type_name(name);
    let crate_name = crate_name(name);
    Ok(TEMPLATES
        .iter()
        .map(|(path, template)| {
            let text = template
                .replace("@NAME@", name)
                .replace("@CRATE@", &crate_name)
                .replace("@TYPE@", &type_name)
                .replace("@GRANT_TYPE@", &grant_type)
                .replace("@SDK_PATH@", sdk_toml.trim())
                .replace("@SDK_DIR@", sdk_text);
            (*path, text)
        })
        .collect())
}

#[cfg(test)]
mod tests;
