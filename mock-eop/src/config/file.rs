//! The file `mock-eop serve --config` reads: `[eop]` and `[[faults]]`, parsed, checked and
//! located.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{ConfigError, EopConfig};
use crate::fault::Fault;
use hybridlab_model::located::TomlSource;

/// The file `mock-eop serve --config` reads: the `[eop]` tables and the `[[faults]]` of a scenario.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MockFile {
    /// The endpoint, its tenants and the behaviour settings (`[eop]`).
    pub eop: EopConfig,
    /// The faults every session may meet, in file order (`[[faults]]`).
    pub faults: Vec<Fault>,
}

impl MockFile {
    /// Parses and validates TOML text; `file` labels errors.
    ///
    /// # Errors
    /// [`ConfigError::Toml`] for text serde refuses, [`ConfigError::Invalid`] for a check of
    /// [`EopConfig::validate`] or [`Fault::validate`]; both name the file, line and column of the
    /// key concerned.
    pub fn from_toml(src: &str, file: &str) -> Result<Self, ConfigError> {
        let source = TomlSource::new(file, src);
        let parsed: Self = source.deserialize().map_err(ConfigError::Toml)?;
        parsed
            .eop
            .validate()
            .map_err(|e| e.into_error(src, file, "eop."))?;
        for (i, f) in parsed.faults.iter().enumerate() {
            f.validate().map_err(|message| {
                ConfigError::Invalid(source.at_path(&format!("faults[{i}]"), message))
            })?;
        }
        Ok(parsed)
    }

    /// Reads, parses and validates a file.
    ///
    /// # Errors
    /// [`ConfigError::Io`] when the file cannot be read, else as [`MockFile::from_toml`].
    pub fn from_path(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let src = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            file: file.clone(),
            source,
        })?;
        Self::from_toml(&src, &file)
    }
}
