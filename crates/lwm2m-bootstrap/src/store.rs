//! Where bootstrap configurations live: the [`ConfigStore`] trait, an in-memory store
//! ([`MemoryConfigStore`]) and a file-backed one ([`FileConfigStore`], TOML or JSON).
//!
//! The file store loads its file when opened and writes the whole file again after every change: to a
//! temporary file in the same directory, flushed to disk, then renamed over the old one. A crash leaves
//! either the old or the new file, never half of one, so nothing acknowledged is lost on restart.
//!
//! File layout (TOML; JSON has the same shape):
//!
//! ```toml
//! [default]                      # optional: used for endpoints without an entry
//! [[default.servers]]
//! ssid = 1
//! uri = "coap://dm.example.com"
//!
//! [endpoints."urn:imei:490154203237511"]
//! credentials = { mode = "psk", identity = "urn:imei:490154203237511", key = "000102030405060708090a0b0c0d0e0f" }
//! [[endpoints."urn:imei:490154203237511".servers]]
//! ssid = 101
//! uri = "coaps://dm.example.com:5684"
//! security = { mode = "psk", identity = "dev-1", key = "00112233445566778899aabbccddeeff" }
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Mutex, RwLock};

use serde::{Deserialize, Serialize};

use crate::config::{BootstrapConfig, ConfigError};

/// The contents of a configuration file (and of a [`MemoryConfigStore`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigFile {
    /// The configuration for endpoints that have none of their own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<BootstrapConfig>,
    /// Per-endpoint configurations, by endpoint name.
    pub endpoints: BTreeMap<String, BootstrapConfig>,
}

/// Storage of bootstrap configurations. Implementations validate on `put` and are safe to share between
/// threads.
pub trait ConfigStore: Send + Sync {
    /// Every configured endpoint name, sorted.
    fn list(&self) -> Vec<String>;
    /// The configuration of `endpoint`.
    fn get(&self, endpoint: &str) -> Option<BootstrapConfig>;
    /// Adds or replaces the configuration of `endpoint` (validated first); returns the previous one.
    fn put(&self, endpoint: &str, config: BootstrapConfig) -> Result<Option<BootstrapConfig>, ConfigError>;
    /// Removes the configuration of `endpoint`; returns it.
    fn delete(&self, endpoint: &str) -> Result<Option<BootstrapConfig>, ConfigError>;
    /// The configuration for endpoints without an entry.
    fn default_config(&self) -> Option<BootstrapConfig>;
    /// Sets or clears the default configuration; returns the previous one.
    fn set_default(&self, config: Option<BootstrapConfig>) -> Result<Option<BootstrapConfig>, ConfigError>;

    /// The configuration that applies to `endpoint`: its own, else the default (`true` in the second
    /// field when it is the default).
    fn resolve(&self, endpoint: &str) -> Option<(BootstrapConfig, bool)> {
        match self.get(endpoint) {
            Some(c) => Some((c, false)),
            None => self.default_config().map(|c| (c, true)),
        }
    }
}

fn check_put(endpoint: &str, config: &BootstrapConfig) -> Result<(), ConfigError> {
    if endpoint.is_empty() {
        return Err(ConfigError::EmptyEndpoint);
    }
    config.validate()
}

fn check_default(config: &Option<BootstrapConfig>) -> Result<(), ConfigError> {
    if let Some(c) = config {
        if c.credentials.is_some() {
            return Err(ConfigError::Invalid(
                "the default configuration cannot carry credentials (unknown endpoints have none stored)".into(),
            ));
        }
        c.validate()?;
    }
    Ok(())
}

/// An in-memory configuration store.
#[derive(Debug, Default)]
pub struct MemoryConfigStore {
    inner: RwLock<ConfigFile>,
}

impl MemoryConfigStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `contents` (validated).
    pub fn from_contents(contents: ConfigFile) -> Result<Self, ConfigError> {
        check_default(&contents.default)?;
        for (ep, c) in &contents.endpoints {
            check_put(ep, c)?;
        }
        Ok(MemoryConfigStore {
            inner: RwLock::new(contents),
        })
    }

    /// Everything, as a file would hold it.
    pub fn contents(&self) -> ConfigFile {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl ConfigStore for MemoryConfigStore {
    fn list(&self) -> Vec<String> {
        let g = self.inner.read().unwrap_or_else(|p| p.into_inner());
        g.endpoints.keys().cloned().collect()
    }
    fn get(&self, endpoint: &str) -> Option<BootstrapConfig> {
        let g = self.inner.read().unwrap_or_else(|p| p.into_inner());
        g.endpoints.get(endpoint).cloned()
    }
    fn put(&self, endpoint: &str, config: BootstrapConfig) -> Result<Option<BootstrapConfig>, ConfigError> {
        check_put(endpoint, &config)?;
        let mut g = self.inner.write().unwrap_or_else(|p| p.into_inner());
        Ok(g.endpoints.insert(endpoint.to_string(), config))
    }
    fn delete(&self, endpoint: &str) -> Result<Option<BootstrapConfig>, ConfigError> {
        let mut g = self.inner.write().unwrap_or_else(|p| p.into_inner());
        Ok(g.endpoints.remove(endpoint))
    }
    fn default_config(&self) -> Option<BootstrapConfig> {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).default.clone()
    }
    fn set_default(&self, config: Option<BootstrapConfig>) -> Result<Option<BootstrapConfig>, ConfigError> {
        check_default(&config)?;
        let mut g = self.inner.write().unwrap_or_else(|p| p.into_inner());
        Ok(std::mem::replace(&mut g.default, config))
    }
}

/// The file's syntax, from its extension: `.json` is JSON, anything else TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// TOML.
    Toml,
    /// JSON (pretty-printed).
    Json,
}

impl FileFormat {
    /// The format of `path` (by extension).
    pub fn of(path: &FsPath) -> FileFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => FileFormat::Json,
            _ => FileFormat::Toml,
        }
    }

    /// Parses file contents.
    pub fn parse(self, text: &str) -> Result<ConfigFile, String> {
        match self {
            FileFormat::Toml => toml::from_str(text).map_err(|e| e.to_string()),
            FileFormat::Json => serde_json::from_str(text).map_err(|e| e.to_string()),
        }
    }

    /// Renders file contents.
    pub fn render(self, contents: &ConfigFile) -> Result<String, String> {
        match self {
            FileFormat::Toml => toml::to_string_pretty(contents).map_err(|e| e.to_string()),
            FileFormat::Json => serde_json::to_string_pretty(contents)
                .map(|mut s| {
                    s.push('\n');
                    s
                })
                .map_err(|e| e.to_string()),
        }
    }
}

/// A configuration store kept in one TOML or JSON file (see the module docs). Changes are written
/// atomically before the call returns; a change that cannot be written is not applied.
#[derive(Debug)]
pub struct FileConfigStore {
    path: PathBuf,
    format: FileFormat,
    // The lock also serializes the file writes.
    inner: Mutex<ConfigFile>,
}

impl FileConfigStore {
    /// Opens `path`: loads it when it exists (every entry is validated), else starts empty (the file is
    /// created by the first change).
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, ConfigError> {
        let path = path.into();
        let format = FileFormat::of(&path);
        let file = path.display().to_string();
        let contents = match fs::read_to_string(&path) {
            Ok(text) => {
                let c = format.parse(&text).map_err(|reason| ConfigError::Format {
                    file: file.clone(),
                    reason,
                })?;
                check_default(&c.default).map_err(|e| ConfigError::Format {
                    file: file.clone(),
                    reason: format!("[default]: {e}"),
                })?;
                for (ep, cfg) in &c.endpoints {
                    check_put(ep, cfg).map_err(|e| ConfigError::Format {
                        file: file.clone(),
                        reason: format!("endpoint {ep:?}: {e}"),
                    })?;
                }
                c
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ConfigFile::default(),
            Err(e) => {
                return Err(ConfigError::Io {
                    file,
                    reason: e.to_string(),
                })
            }
        };
        Ok(FileConfigStore {
            path,
            format,
            inner: Mutex::new(contents),
        })
    }

    /// The file.
    pub fn path(&self) -> &FsPath {
        &self.path
    }

    /// Everything the file holds.
    pub fn contents(&self) -> ConfigFile {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Applies `change` to a copy, writes the copy, and keeps it only if the write succeeded.
    fn change<R>(&self, change: impl FnOnce(&mut ConfigFile) -> R) -> Result<R, ConfigError> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = g.clone();
        let r = change(&mut next);
        self.write(&next)?;
        *g = next;
        Ok(r)
    }

    fn write(&self, contents: &ConfigFile) -> Result<(), ConfigError> {
        let file = self.path.display().to_string();
        let text = self.format.render(contents).map_err(|reason| ConfigError::Format {
            file: file.clone(),
            reason,
        })?;
        let io = |e: std::io::Error| ConfigError::Io {
            file: file.clone(),
            reason: e.to_string(),
        };
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "bootstrap".into());
        let tmp = self.path.with_file_name(format!(".{name}.tmp"));
        {
            let mut f = fs::File::create(&tmp).map_err(io)?;
            f.write_all(text.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        if let Err(e) = fs::rename(&tmp, &self.path) {
            let _ = fs::remove_file(&tmp);
            return Err(io(e));
        }
        // Make the rename itself durable (best effort: not every platform can open a directory).
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl ConfigStore for FileConfigStore {
    fn list(&self) -> Vec<String> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.endpoints.keys().cloned().collect()
    }
    fn get(&self, endpoint: &str) -> Option<BootstrapConfig> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.endpoints.get(endpoint).cloned()
    }
    fn put(&self, endpoint: &str, config: BootstrapConfig) -> Result<Option<BootstrapConfig>, ConfigError> {
        check_put(endpoint, &config)?;
        self.change(|c| c.endpoints.insert(endpoint.to_string(), config))
    }
    fn delete(&self, endpoint: &str) -> Result<Option<BootstrapConfig>, ConfigError> {
        if self.get(endpoint).is_none() {
            return Ok(None);
        }
        self.change(|c| c.endpoints.remove(endpoint))
    }
    fn default_config(&self) -> Option<BootstrapConfig> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).default.clone()
    }
    fn set_default(&self, config: Option<BootstrapConfig>) -> Result<Option<BootstrapConfig>, ConfigError> {
        check_default(&config)?;
        self.change(|c| std::mem::replace(&mut c.default, config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AclEntry, BootstrapCredential, Bytes, ExtraWrite, Rights, SecurityConfig, ServerAccount};

    fn tmp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lwm2m-bootstrap-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn sample() -> BootstrapConfig {
        let mut a = ServerAccount::new(101, "coaps://dm.example.com:5684", 300);
        a.security = SecurityConfig::Psk {
            identity: "dev-1".into(),
            key: Bytes(vec![7; 16]),
        };
        a.registration_priority_order = Some(1);
        BootstrapConfig {
            credentials: Some(BootstrapCredential::Psk {
                identity: "bs-dev-1".into(),
                key: Bytes(vec![9; 16]),
            }),
            servers: vec![a, ServerAccount::new(102, "coap://other", 60)],
            acls: vec![AclEntry::new(3, 0, 101).with(102, Rights::READ)],
            writes: vec![ExtraWrite {
                path: "/3/0".into(),
                value: serde_json::json!({"14": "+01:00"}),
            }],
            ..BootstrapConfig::default()
        }
    }

    fn crud(store: &dyn ConfigStore) {
        assert!(store.list().is_empty());
        assert_eq!(store.put("dev-1", sample()).unwrap(), None);
        assert_eq!(store.put("dev-1", sample()).unwrap(), Some(sample()));
        let mut other = sample();
        other.credentials = None;
        other.servers.truncate(1);
        store.put("dev-2", other.clone()).unwrap();
        assert_eq!(store.list(), ["dev-1", "dev-2"]);
        assert_eq!(store.get("dev-2"), Some(other.clone()));
        assert_eq!(store.resolve("dev-2"), Some((other.clone(), false)));
        assert_eq!(store.resolve("nobody"), None);
        assert_eq!(store.set_default(Some(other.clone())).unwrap(), None);
        assert_eq!(store.resolve("nobody"), Some((other.clone(), true)));
        assert_eq!(store.delete("dev-2").unwrap(), Some(other));
        assert_eq!(store.delete("dev-2").unwrap(), None);
        assert_eq!(store.list(), ["dev-1"]);
        // Invalid configurations are refused and change nothing.
        let mut bad = sample();
        bad.servers[1].ssid = 101;
        assert!(matches!(store.put("dev-3", bad), Err(ConfigError::Invalid(_))));
        assert_eq!(store.put("", sample()), Err(ConfigError::EmptyEndpoint));
        assert!(store.set_default(Some(sample())).is_err(), "credentials in the default");
        assert_eq!(store.list(), ["dev-1"]);
    }

    #[test]
    fn the_documented_example_is_valid() {
        let doc = include_str!("../../../docs/bootstrap.md");
        let from = doc.find("### Complete example").expect("the example section");
        let start = doc[from..].find("```toml\n").expect("a toml block") + from + "```toml\n".len();
        let len = doc[start..].find("```").expect("the block's end");
        let contents = FileFormat::Toml
            .parse(&doc[start..start + len])
            .expect("the example parses");
        let store = MemoryConfigStore::from_contents(contents).expect("the example is valid");
        let c = store.get("urn:imei:490154203237511").unwrap();
        assert_eq!(c.servers.len(), 2);
        assert_eq!(c.servers[1].registration_priority_order, Some(2));
        assert_eq!(c.acls[1].rights[1].rights, Rights::CREATE);
        assert_eq!(c.repair.last_bootstrapped_older_than_s, Some(2_592_000));
        assert!(store.default_config().is_some());
        // It survives a write and a reload unchanged.
        let again = FileFormat::Toml
            .parse(&FileFormat::Toml.render(&store.contents()).unwrap())
            .unwrap();
        assert_eq!(again, store.contents());
    }

    #[test]
    fn memory_store_crud() {
        crud(&MemoryConfigStore::new());
    }

    #[test]
    fn file_store_crud_and_restart() {
        for name in ["bs.toml", "bs.json"] {
            let dir = tmp_dir(&format!("crud-{name}"));
            let path = dir.join(name);
            let store = FileConfigStore::open(&path).unwrap();
            assert!(!path.exists(), "created by the first change");
            crud(&store);
            let before = store.contents();
            drop(store);
            // Reopen: the same contents.
            let again = FileConfigStore::open(&path).unwrap();
            assert_eq!(again.contents(), before);
            assert_eq!(again.get("dev-1"), Some(sample()));
            // No temporary file is left behind.
            let names: Vec<String> = fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(names, [name.to_string()]);
            fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn broken_files_are_reported_not_overwritten() {
        let dir = tmp_dir("broken");
        let path = dir.join("bs.toml");
        fs::write(&path, "endpoints = 5").unwrap();
        let e = FileConfigStore::open(&path).unwrap_err();
        assert!(matches!(e, ConfigError::Format { .. }), "{e}");
        // Parses, but an entry is invalid: named in the error.
        fs::write(
            &path,
            "[endpoints.dev]\n[[endpoints.dev.servers]]\nssid = 0\nuri = \"coap://x\"\n",
        )
        .unwrap();
        let e = FileConfigStore::open(&path).unwrap_err().to_string();
        assert!(e.contains("endpoint \"dev\"") && e.contains("1..=65534"), "{e}");
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "[endpoints.dev]\n[[endpoints.dev.servers]]\nssid = 0\nuri = \"coap://x\"\n"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failed_write_keeps_the_old_state() {
        let dir = tmp_dir("ro");
        let path = dir.join("missing-dir").join("bs.toml");
        let store = FileConfigStore::open(&path).unwrap();
        let e = store.put("dev-1", sample()).unwrap_err();
        assert!(matches!(e, ConfigError::Io { .. }), "{e}");
        assert!(store.list().is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }
}
