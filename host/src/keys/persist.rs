//! The signing keys in the store: finding the key-encryption key
//! (`GRANTBOX_KEY_ENCRYPTION_KEY`, `[keys] key_encryption_key_file`, or on
//! SQLite a key file beside the database, created on first start), loading
//! the keys at start (refusing a wrong or missing key-encryption key),
//! creating one per configured algorithm, reloading them periodically, and
//! the `keys rotate` and `keys retire` operations.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use super::{Alg, KeyEncryptionKey, KeyInfo, Keys, SigningKey, signing_key};
use crate::config::KeysConfig;
use crate::store::{SigningKeyRow, Store};

/// The environment variable holding the key-encryption key (32 bytes, base64url).
pub const KEY_ENCRYPTION_KEY_ENV: &str = "GRANTBOX_KEY_ENCRYPTION_KEY";

/// Where the key-encryption key came from, for messages (never the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KekSource {
    Environment,
    /// `[keys] key_encryption_key_file`.
    ConfigFile(PathBuf),
    /// The key file beside a SQLite database.
    DefaultFile(PathBuf),
}

impl std::fmt::Display for KekSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KekSource::Environment => write!(f, "{KEY_ENCRYPTION_KEY_ENV}"),
            KekSource::ConfigFile(path) => {
                write!(f, "[keys] key_encryption_key_file {}", path.display())
            }
            KekSource::DefaultFile(path) => write!(f, "the key file {}", path.display()),
        }
    }
}

/// The key file beside a SQLite database (`grantbox.db` →
/// `grantbox.db.key-encryption-key`); `None` for PostgreSQL or an in-memory
/// database.
pub fn default_key_file(db: &str) -> Option<PathBuf> {
    let rest = db
        .strip_prefix("sqlite://")
        .or_else(|| db.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    let mut name = Path::new(path).file_name()?.to_os_string();
    name.push(".key-encryption-key");
    Some(Path::new(path).with_file_name(name))
}

/// The key-encryption key given by the operator (environment, then the
/// configured file, then the default file beside a SQLite database if it
/// exists); `None` when there is none.
pub fn find_key_encryption_key(
    config: &KeysConfig,
    db: &str,
    environment: Option<&str>,
) -> anyhow::Result<Option<(KeyEncryptionKey, KekSource)>> {
    if let Some(text) = environment.filter(|t| !t.trim().is_empty()) {
        let kek = KeyEncryptionKey::parse(text).map_err(|e| {
            anyhow::anyhow!("{KEY_ENCRYPTION_KEY_ENV} {e}: give 32 random bytes, base64url")
        })?;
        return Ok(Some((kek, KekSource::Environment)));
    }
    if let Some(path) = &config.key_encryption_key_file {
        let source = KekSource::ConfigFile(path.clone());
        let kek = read_key_file(path).with_context(|| format!("{source}"))?;
        return Ok(Some((kek, source)));
    }
    if let Some(path) = default_key_file(db)
        && path.exists()
    {
        let source = KekSource::DefaultFile(path.clone());
        let kek = read_key_file(&path).with_context(|| format!("{source}"))?;
        return Ok(Some((kek, source)));
    }
    Ok(None)
}

fn read_key_file(path: &Path) -> anyhow::Result<KeyEncryptionKey> {
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).context("cannot read")?);
    KeyEncryptionKey::parse(&text)
        .map_err(|e| anyhow::anyhow!("the key {e}: it must hold 32 random bytes, base64url"))
}

/// Writes a fresh key-encryption key to `path`, readable by its owner only
/// (mode 0600); fails if the file exists.
pub fn create_key_file(path: &Path) -> anyhow::Result<KeyEncryptionKey> {
    use std::io::Write as _;
    let kek = KeyEncryptionKey::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create the key file {}", path.display()))?;
    file.write_all(kek.encode().as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write the key file {}", path.display()))?;
    Ok(kek)
}

/// What [`open`] did, for the start-up log.
#[derive(Debug)]
pub struct Opened {
    pub keys: Keys,
    pub source: KekSource,
    /// The key file was created by this start.
    pub created_key_file: bool,
    /// Keys created by this start (first start, or an algorithm newly configured).
    pub created: Vec<KeyInfo>,
}

/// Loads the signing keys for `serve`: finds the key-encryption key
/// (creating the key file beside a SQLite database on first start), refuses
/// one that is not the key the stored keys were sealed under, opens the
/// published keys, and creates a key, signing at once, for each configured
/// algorithm that has none.
pub async fn open(
    store: &Store,
    config: &KeysConfig,
    db: &str,
    environment: Option<&str>,
    now: i64,
) -> anyhow::Result<Opened> {
    let (kek, source, created_key_file, rows) =
        key_encryption_key_and_rows(store, config, db, environment).await?;
    let keys = Keys::new(kek, config.default_alg, Vec::new());
    keys.replace(unseal_published(&rows, &keys, now)?);
    let mut created = Vec::new();
    let mut attempted = false;
    for alg in &config.algorithms {
        let usable = keys
            .infos()
            .iter()
            .any(|info| info.alg == *alg && info.retired_at.is_none());
        if !usable {
            // Nothing was signed with this algorithm yet: it signs at once.
            // Stored only if no other instance starting at the same time
            // stored one first (the store serialises the check and insert).
            let key = SigningKey::generate(*alg, now, now);
            let stored = store
                .insert_first_signing_key(&row(&key, keys.key_encryption_key()))
                .await
                .with_context(|| format!("cannot store the new {alg} signing key"))?;
            if stored {
                created.push(key.info.clone());
            }
            attempted = true;
        }
    }
    if attempted {
        // Read back: the key another instance made may be the one stored.
        reload(store, &keys, now).await?;
    }
    Ok(Opened {
        keys,
        source,
        created_key_file,
        created,
    })
}

/// The key-encryption key as `serve` finds it, for `client add` (which
/// seals a `client_secret_jwt` client's secret): from the environment or
/// the configured file, or on SQLite the key file beside the database
/// (created on first use); refused, with `serve`'s errors, when it is
/// missing or is not the key the stored signing keys were sealed under.
/// Also says where it came from and whether the key file was just created.
pub async fn open_key_encryption_key(
    store: &Store,
    config: &KeysConfig,
    db: &str,
    environment: Option<&str>,
) -> anyhow::Result<(KeyEncryptionKey, KekSource, bool)> {
    let (kek, source, created_key_file, _) =
        key_encryption_key_and_rows(store, config, db, environment).await?;
    Ok((kek, source, created_key_file))
}

async fn key_encryption_key_and_rows(
    store: &Store,
    config: &KeysConfig,
    db: &str,
    environment: Option<&str>,
) -> anyhow::Result<(KeyEncryptionKey, KekSource, bool, Vec<SigningKeyRow>)> {
    let rows = store
        .list_signing_keys()
        .await
        .context("cannot read the signing keys")?;
    let (kek, source, created_key_file) = match find_key_encryption_key(config, db, environment)? {
        Some((kek, source)) => (kek, source, false),
        None if !rows.is_empty() => bail!(
            "the database holds {} signing keys but no key-encryption key was given: set {KEY_ENCRYPTION_KEY_ENV} or [keys] key_encryption_key_file to the key they were sealed under{}",
            rows.len(),
            default_key_file(db)
                .map(|p| format!(" (the key file {} is missing)", p.display()))
                .unwrap_or_default()
        ),
        None => match default_key_file(db) {
            Some(path) => {
                let kek = create_key_file(&path)?;
                (kek, KekSource::DefaultFile(path), true)
            }
            None => bail!(
                "no key-encryption key: on PostgreSQL set {KEY_ENCRYPTION_KEY_ENV} (32 random bytes, base64url, the same on every instance) or [keys] key_encryption_key_file"
            ),
        },
    };
    check_key_encryption_key(&rows, &kek, &source)?;
    Ok((kek, source, created_key_file, rows))
}

/// Replaces the key set with the store's (the periodic reload): keys already
/// held keep their opened private key, new ones are opened, unpublished ones
/// dropped.
pub async fn reload(store: &Store, keys: &Keys, now: i64) -> anyhow::Result<()> {
    let rows = store
        .list_signing_keys()
        .await
        .context("cannot read the signing keys")?;
    keys.replace(unseal_published(&rows, keys, now)?);
    Ok(())
}

/// `keys rotate`: a new key of `alg`, published at once and signing after
/// the activation delay; the keys of `alg` that sign now stop signing when
/// it starts and stay published until the tokens they signed have expired.
pub async fn rotate(
    store: &Store,
    kek: &KeyEncryptionKey,
    source: &KekSource,
    alg: Alg,
    activation_delay: i64,
    longest_token_lifetime: i64,
    now: i64,
) -> anyhow::Result<(KeyInfo, Vec<String>)> {
    let rows = store.list_signing_keys().await?;
    check_key_encryption_key(&rows, kek, source)?;
    let key = SigningKey::generate(alg, now, now + activation_delay);
    store
        .insert_signing_key(&row(&key, kek))
        .await
        .with_context(|| format!("cannot store the new {alg} signing key"))?;
    let mut retired = Vec::new();
    for old in rows.iter().filter(|r| r.alg == alg.name()) {
        let scheduled = old.retired_at.is_some_and(|at| at <= key.info.activates_at);
        if !scheduled
            && store
                .retire_signing_key(
                    &old.kid,
                    key.info.activates_at,
                    key.info.activates_at + longest_token_lifetime,
                )
                .await?
        {
            retired.push(old.kid.clone());
        }
    }
    Ok((key.info, retired))
}

/// `keys retire KID`: stops it signing now and unpublishes it once every
/// token it signed has expired. Refused for an unknown or retired key, and
/// for the last key of its algorithm (rotate first).
pub async fn retire(
    store: &Store,
    kid: &str,
    longest_token_lifetime: i64,
    now: i64,
) -> anyhow::Result<KeyInfo> {
    let rows = store.list_signing_keys().await?;
    let infos = rows.iter().map(info).collect::<anyhow::Result<Vec<_>>>()?;
    let Some(target) = infos.iter().find(|i| i.kid == kid) else {
        bail!("no signing key {kid:?} (see `grantbox keys list`)");
    };
    if target.retired_at.is_some_and(|at| at <= now) {
        bail!("signing key {kid} is already retired");
    }
    let successor = infos.iter().any(|i| {
        i.alg == target.alg && i.kid != target.kid && i.retired_at.is_none_or(|at| at > now)
    });
    if !successor {
        bail!(
            "signing key {kid} is the last {} key: run `grantbox keys rotate --alg {}` first",
            target.alg,
            target.alg
        );
    }
    let published_until = now + longest_token_lifetime;
    if !store.retire_signing_key(kid, now, published_until).await? {
        bail!("signing key {kid} is already retired");
    }
    Ok(KeyInfo {
        retired_at: Some(now),
        published_until: Some(published_until),
        ..target.clone()
    })
}

/// Every stored key's description, oldest first (`keys list`).
pub async fn list(store: &Store) -> anyhow::Result<Vec<KeyInfo>> {
    store.list_signing_keys().await?.iter().map(info).collect()
}

/// The kid that signs for each algorithm at `now` among `infos`.
pub fn signing_kids(infos: &[KeyInfo], now: i64) -> Vec<String> {
    Alg::ALL
        .into_iter()
        .filter_map(|alg| signing_key(infos, alg, now).map(|i| i.kid.clone()))
        .collect()
}

/// Fails unless every stored key was sealed under `kek`.
pub fn check_key_encryption_key(
    rows: &[SigningKeyRow],
    kek: &KeyEncryptionKey,
    source: &KekSource,
) -> anyhow::Result<()> {
    let check = kek.check_value();
    if let Some(other) = rows.iter().find(|r| r.kek_check != check) {
        bail!(
            "the key-encryption key from {source} is not the one signing key {} was sealed under (check value {check}, the key's {}): give the key the keys were created with",
            other.kid,
            other.kek_check
        );
    }
    Ok(())
}

fn unseal_published(
    rows: &[SigningKeyRow],
    keys: &Keys,
    now: i64,
) -> anyhow::Result<Vec<SigningKey>> {
    let held = keys.keys.load();
    let mut opened = Vec::new();
    for row in rows {
        let info = info(row)?;
        if !info.published(now) {
            continue;
        }
        match held.iter().find(|k| k.info.kid == info.kid) {
            Some(key) => opened.push(key.with_info(info)),
            None => {
                if row.kek_check != keys.key_encryption_key().check_value() {
                    bail!(
                        "signing key {} was sealed under another key-encryption key (check value {})",
                        row.kid,
                        row.kek_check
                    );
                }
                let key = SigningKey::unseal(info, &row.private_sealed, keys.key_encryption_key())
                    .map_err(|e| anyhow::anyhow!("cannot open signing {e}"))?;
                opened.push(key);
            }
        }
    }
    Ok(opened)
}

fn info(row: &SigningKeyRow) -> anyhow::Result<KeyInfo> {
    Ok(KeyInfo {
        kid: row.kid.clone(),
        alg: Alg::parse(&row.alg)
            .with_context(|| format!("signing key {} has an unknown alg {:?}", row.kid, row.alg))?,
        created_at: row.created_at,
        activates_at: row.activates_at,
        retired_at: row.retired_at,
        published_until: row.published_until,
    })
}

fn row(key: &SigningKey, kek: &KeyEncryptionKey) -> SigningKeyRow {
    SigningKeyRow {
        kid: key.info.kid.clone(),
        alg: key.info.alg.name().to_string(),
        public_jwk: key.public_jwk.to_string(),
        private_sealed: key.seal_private(kek),
        kek_check: kek.check_value(),
        created_at: key.info.created_at,
        activates_at: key.info.activates_at,
        retired_at: key.info.retired_at,
        published_until: key.info.published_until,
    }
}
