//! Configuration errors: each one names the file, line, column and YAML path it is about.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::tree::{Node, YamlPath};

/// One problem found in the configuration, printed as `file:line:col: yaml.path: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line (0 when the problem is not inside the file's text, e.g. it cannot be read).
    pub line: u64,
    /// 1-based column.
    pub col: u64,
    /// The YAML path of the offending value.
    pub path: YamlPath,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.path,
            self.message
        )
    }
}

/// Every problem of one load, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The problems, at least one.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// A parsed file: its name and located tree.
#[derive(Debug)]
pub(crate) struct Source {
    pub(crate) file: PathBuf,
    pub(crate) root: Node,
}

/// Where a config item was defined: the file and the YAML path of the item inside it.
#[derive(Debug, Clone)]
pub struct Origin {
    pub(crate) source: Arc<Source>,
    pub(crate) path: YamlPath,
}

impl Origin {
    /// The file this item came from.
    #[must_use]
    pub fn file(&self) -> &std::path::Path {
        &self.source.file
    }

    /// The YAML path of the item inside its file.
    #[must_use]
    pub fn path(&self) -> &YamlPath {
        &self.path
    }

    /// The origin of a value below this item.
    #[must_use]
    pub fn at(&self, rel: &[&str]) -> Origin {
        let mut path = self.path.clone();
        for seg in rel {
            path = match seg.parse::<usize>() {
                Ok(n) => path.index(n),
                Err(_) => path.key(seg),
            };
        }
        Origin {
            source: Arc::clone(&self.source),
            path,
        }
    }
}

/// Collects every diagnostic of a load so all of them are reported in one run.
#[derive(Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Records a problem with the value at `origin`.
    pub fn error(&mut self, origin: &Origin, message: impl Into<String>) {
        let (line, col) = origin.source.root.locate(&origin.path.0);
        self.items.push(Diagnostic {
            file: origin.source.file.clone(),
            line,
            col,
            path: origin.path.clone(),
            message: message.into(),
        });
    }

    /// Records a problem with the value at `rel` below `origin`.
    pub fn error_at(&mut self, origin: &Origin, rel: &[&str], message: impl Into<String>) {
        self.error(&origin.at(rel), message);
    }

    pub(crate) fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    /// True when nothing was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(crate) fn into_result<T>(self, value: T) -> Result<T, ConfigError> {
        if self.items.is_empty() {
            Ok(value)
        } else {
            let mut diagnostics = self.items;
            diagnostics.sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
            Err(ConfigError { diagnostics })
        }
    }
}

impl Diagnostics {
    /// How many problems were recorded so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }
}
