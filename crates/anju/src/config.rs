//! Process configuration, layered: the embedded `config/default.toml`, then
//! an optional file (`--config FILE` or `ANJU_CONFIG`), then `ANJU_*`
//! environment variables, then command-line flags.
//!
//! The site file says *what* is monitored; this says *how* this process runs.

use anyhow::{bail, Context};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The embedded defaults; `anju default-config` prints them.
pub const DEFAULT_CONFIG: &str = include_str!("../../../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the embedded SQLite database, the edge outbox and snapshots live.
    pub data_dir: PathBuf,
    /// Database URL; empty = `sqlite://{data_dir}/anju.db`.
    #[serde(default)]
    pub db: String,
    /// API listen address.
    pub listen: String,
    /// MQTT broker URL for edge workers.
    pub mqtt: String,
    /// `text` or `json`.
    pub log_format: String,
    /// tracing filter, e.g. `info,anju=debug`.
    pub log: String,
    /// How late a device's event may arrive (hours) before it is a dead
    /// letter `ts_out_of_range` (readers upload what they stored offline).
    #[serde(default = "default_ts_max_delay_hours")]
    pub ts_max_delay_hours: u32,
    /// How far ahead of the receiver's clock a device's `ts` may be
    /// (seconds).
    #[serde(default = "default_ts_max_ahead_s")]
    pub ts_max_ahead_s: u32,
    /// The header a reverse proxy in front of the API puts the client's
    /// address in (e.g. `X-Forwarded-For`); empty: the connection's peer.
    #[serde(default)]
    pub client_ip_header: String,
    /// The proxies whose `client_ip_header` is believed.
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

fn default_ts_max_delay_hours() -> u32 {
    168
}

fn default_ts_max_ahead_s() -> u32 {
    300
}

impl Config {
    /// Loads the layers below the command line.
    ///
    /// # Errors
    /// A config file that cannot be read or parsed, or a bad value.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut merged: toml::Table =
            toml::from_str(DEFAULT_CONFIG).context("embedded default config")?;
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("ANJU_CONFIG").map(PathBuf::from));
        if let Some(path) = file {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            let over: toml::Table = toml::from_str(&text)
                .with_context(|| format!("config file {} is not valid TOML", path.display()))?;
            for (k, v) in over {
                merged.insert(k, v);
            }
        }
        for (key, env) in [
            ("data_dir", "ANJU_DATA_DIR"),
            ("db", "ANJU_DB"),
            ("listen", "ANJU_LISTEN"),
            ("mqtt", "ANJU_MQTT"),
            ("log_format", "ANJU_LOG_FORMAT"),
            ("log", "ANJU_LOG"),
        ] {
            if let Ok(v) = std::env::var(env) {
                merged.insert(key.into(), toml::Value::String(v));
            }
        }
        let cfg: Config = toml::Value::Table(merged)
            .try_into()
            .context("invalid configuration")?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if !matches!(self.log_format.as_str(), "text" | "json") {
            bail!(
                "log_format must be \"text\" or \"json\", not {:?}",
                self.log_format
            );
        }
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            bail!(
                "listen must be an address like 127.0.0.1:8080, not {:?}",
                self.listen
            );
        }
        if !self.client_ip_header.is_empty() && self.trusted_proxies.is_empty() {
            bail!("client_ip_header is set but trusted_proxies is empty: the header would never be read");
        }
        if !self.db.is_empty() {
            anju_store::Backend::from_url(&self.db)?;
        }
        Ok(())
    }

    /// The window around a receiver's clock in which device timestamps
    /// are believed (DESIGN §6a).
    pub fn ts_window(&self) -> anju_core::TsWindow {
        anju_core::TsWindow {
            past: chrono::Duration::hours(i64::from(self.ts_max_delay_hours)),
            future: chrono::Duration::seconds(i64::from(self.ts_max_ahead_s)),
        }
    }

    /// The database URL: the flag, else the configured one, else the
    /// embedded SQLite file.
    pub fn db_url(&self, flag: Option<&str>) -> String {
        match flag {
            Some(u) => u.to_owned(),
            None if !self.db.is_empty() => self.db.clone(),
            None => format!("sqlite://{}", self.data_dir.join("anju.db").display()),
        }
    }
}
