//! Configuration errors and where they are: TOML and serde errors at toml's span, checks after
//! parsing at the key's path in the right table ([`hybridlab_model::located`]).

use hybridlab_model::located::{Located, TomlSource};

/// Errors loading a configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// TOML syntax, a value of the wrong shape, an unknown key, a missing key: placed at the span
    /// toml reports, naming the key (``file:line:col: field `key`: message``).
    #[error(transparent)]
    Toml(Located),
    /// A value that parses but is inconsistent with the rest (duplicate names, no TLS version...):
    /// placed at the key its dotted path names, in the right `[[array]]` entry
    /// (`file:line:col: eop.tenants[2].name: message`).
    #[error(transparent)]
    Invalid(Located),
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The path as given.
        file: String,
        /// Why reading failed.
        source: std::io::Error,
    },
}

impl ConfigError {
    /// Where the error is and what it says (`None` for a file that could not be read).
    pub fn located(&self) -> Option<&Located> {
        match self {
            Self::Toml(l) | Self::Invalid(l) => Some(l),
            Self::Io { .. } => None,
        }
    }
}

/// A check that failed after parsing, before it is placed in a file: the key's dotted path and
/// the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct Invalid {
    /// Dotted path of the offending key relative to `[eop]`, with array indices
    /// (`tenants[2].inbound_connectors[0].name`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Invalid {
    pub(super) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Places the failure in `file`, whose text is `src`; `prefix` is prepended to the path
    /// (`"eop."` when the config sits under `[eop]`).
    pub fn into_error(self, src: &str, file: &str, prefix: &str) -> ConfigError {
        let path = format!("{prefix}{}", self.path);
        ConfigError::Invalid(TomlSource::new(file, src).at_path(&path, self.message))
    }
}
