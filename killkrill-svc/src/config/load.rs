//! Reading the layers (defaults, file, environment, flags) into one
//! [`ServeConfig`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use super::{ENV_PREFIX, ServeConfig, TEST_ENV_PREFIX};

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The TOML file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(p) => write!(f, "from {}", p.display()),
            Origin::Env(v) => write!(f, "from {v}"),
            Origin::Flag(n) => write!(f, "from --{n}"),
        }
    }
}

/// A configuration problem, naming the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The dotted key (`syslog.max_connections`), or the file for file-level
    /// problems.
    pub key: String,
    /// Where the value came from, when known.
    pub origin: Option<Origin>,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(o) => write!(f, "{} ({o}): {}", self.key, self.problem),
            None => write!(f, "{}: {}", self.key, self.problem),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The layers before merging.
#[derive(Debug, Default, Clone)]
pub struct Layers {
    /// The config file, if any.
    pub file: Option<PathBuf>,
    /// `(name, value)` of the environment (only `KILLKRILL_*` is read).
    pub env: Vec<(String, String)>,
    /// `(key, value, flag name)` from the command line.
    pub flags: Vec<(String, String, String)>,
    /// `(key, value)` defaults of the command, below every other layer
    /// (`killkrill worker` defaults `queue.kind` to `redis`).
    pub defaults: Vec<(String, String)>,
}

impl ServeConfig {
    /// Merges the layers and validates the result.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key, the layer and the problem.
    pub fn load(layers: &Layers) -> Result<ServeConfig, ConfigError> {
        let mut table = toml::Table::new();
        let mut origins: BTreeMap<String, Origin> = BTreeMap::new();
        for (key, value) in &layers.defaults {
            let path: Vec<String> = key.split('.').map(str::to_owned).collect();
            set_path(&mut table, &path, toml::Value::String(value.clone())).map_err(|problem| {
                ConfigError {
                    key: key.clone(),
                    origin: None,
                    problem,
                }
            })?;
        }
        if let Some(path) = &layers.file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                key: path.display().to_string(),
                origin: None,
                problem: format!("cannot read the config file: {e}"),
            })?;
            let file: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError {
                key: path.display().to_string(),
                origin: None,
                problem: format!("not valid TOML: {}", e.message()),
            })?;
            record_origins(&file, "", &Origin::File(path.clone()), &mut origins);
            merge_tables(&mut table, file);
        }
        for (name, value) in &layers.env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if name.starts_with(TEST_ENV_PREFIX) {
                continue; // the test suites' database URLs, not configuration
            }
            if rest.is_empty() {
                continue;
            }
            let key: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
            let dotted = key.join(".");
            set_path(&mut table, &key, env_value(value)).map_err(|problem| ConfigError {
                key: dotted.clone(),
                origin: Some(Origin::Env(name.clone())),
                problem,
            })?;
            origins.insert(dotted, Origin::Env(name.clone()));
        }
        for (key, value, flag) in &layers.flags {
            let path: Vec<String> = key.split('.').map(str::to_owned).collect();
            set_path(&mut table, &path, toml::Value::String(value.clone())).map_err(|problem| {
                ConfigError {
                    key: key.clone(),
                    origin: Some(Origin::Flag(flag.clone())),
                    problem,
                }
            })?;
            origins.insert(key.clone(), Origin::Flag(flag.clone()));
        }
        let mut cfg: ServeConfig = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                let key = match e.path().to_string() {
                    p if p == "." => "(top level)".to_owned(),
                    p => p,
                };
                let origin = origin_of(&origins, &key);
                ConfigError {
                    key,
                    origin,
                    problem: e.into_inner().to_string(),
                }
            })?;
        cfg.auth.read_env(&layers.env);
        cfg.license.read_env(&layers.env);
        cfg.oidc.read_env(&layers.env);
        cfg.smtp.read_env(&layers.env);
        if cfg.queue.redis.url.is_none()
            && let Some((_, url)) = layers.env.iter().find(|(k, _)| k == "REDIS_URL")
            && !url.is_empty()
        {
            cfg.queue.redis.url = Some(url.clone());
            origins.insert("queue.redis.url".into(), Origin::Env("REDIS_URL".into()));
        }
        cfg.validate(&origins)?;
        Ok(cfg)
    }
}

pub(super) fn origin_of(origins: &BTreeMap<String, Origin>, key: &str) -> Option<Origin> {
    // The error path may point inside a value (`syslog.max_connections`) or
    // at a section (`syslog`): take the longest recorded prefix.
    let mut k = key;
    loop {
        if let Some(o) = origins.get(k) {
            return Some(o.clone());
        }
        match k.rfind('.') {
            Some(i) => k = &k[..i],
            None => return None,
        }
    }
}

fn record_origins(
    t: &toml::Table,
    prefix: &str,
    origin: &Origin,
    out: &mut BTreeMap<String, Origin>,
) {
    for (k, v) in t {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if let toml::Value::Table(inner) = v {
            record_origins(inner, &key, origin, out);
        }
        out.insert(key, origin.clone());
    }
}

/// An environment value as TOML: a number or boolean when it reads as one,
/// else a string.
fn env_value(v: &str) -> toml::Value {
    let t = v.trim();
    if let Ok(i) = t.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    if t.contains('.')
        && t.chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
        && let Ok(f) = t.parse::<f64>()
    {
        return toml::Value::Float(f);
    }
    match t {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(v.to_owned()),
    }
}

/// Merges `over` into `base`, recursing into tables present in both.
fn merge_tables(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_tables(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("empty key".into());
    };
    let mut t = table;
    for p in parents {
        let entry = t
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = match entry {
            toml::Value::Table(inner) => inner,
            _ => return Err(format!("{p} is not a section")),
        };
    }
    t.insert(last.clone(), value);
    Ok(())
}
