//! Diagnostics: what went wrong, where (file:line:column, with the offending line quoted), and what to
//! do about it.
//!
//! Rendering is written here rather than taken from miette or annotate-snippets: every position we
//! have is a line and column on one line, the output is a handful of lines, and the format is part of
//! what our tests pin down.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::node::{FileId, Span};

/// The text of every file read while loading a project, so that diagnostics can quote it.
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The path as the user would recognise it (relative to the working directory when possible).
    pub path: PathBuf,
    pub text: String,
}

impl SourceMap {
    pub fn add(&mut self, path: PathBuf, text: String) -> FileId {
        self.files.push(SourceFile { path, text });
        FileId(u32::try_from(self.files.len() - 1).unwrap_or(u32::MAX))
    }

    /// The id the next added file will get.
    pub fn next_id(&self) -> FileId {
        FileId(u32::try_from(self.files.len()).unwrap_or(u32::MAX))
    }

    pub fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }

    pub fn path(&self, id: FileId) -> Option<&Path> {
        self.get(id).map(|f| f.path.as_path())
    }

    /// `file:line:col` of a span, or `None` for synthetic spans.
    pub fn locate(&self, span: Span) -> Option<String> {
        if span.is_synthetic() {
            return None;
        }
        let file = self.get(span.file)?;
        Some(format!(
            "{}:{}:{}",
            file.path.display(),
            span.line,
            span.col
        ))
    }

    fn line(&self, span: Span) -> Option<&str> {
        let file = self.get(span.file)?;
        file.text.lines().nth((span.line as usize).checked_sub(1)?)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in the user's files.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    /// Where the problem is; `None` when it is about the project as a whole.
    pub span: Option<Span>,
    /// What to do about it ("did you mean `command`?").
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>, span: Span) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span: (!span.is_synthetic()).then_some(span),
            help: None,
        }
    }

    /// An error about the project as a whole, with no place in a file.
    pub fn global(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span: None,
            help: None,
        }
    }

    pub fn warning(message: impl Into<String>, span: Span) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message, span)
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Renders the diagnostic with its location and the quoted line:
    ///
    /// ```text
    /// error: unknown key `comand` in service `web`
    ///   --> compose.yaml:5:5
    ///    |
    ///  5 |     comand: ["x"]
    ///    |     ^^^^^^
    ///    = help: did you mean `command`?
    /// ```
    pub fn render(&self, sources: &SourceMap) -> String {
        let mut out = String::new();
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        out.push_str(&format!("{level}: {}\n", self.message));
        let mut gutter = 2;
        if let Some(span) = self.span
            && let Some(location) = sources.locate(span)
        {
            let number = span.line.to_string();
            gutter = number.len() + 1;
            let pad = " ".repeat(gutter);
            out.push_str(&format!("{pad}--> {location}\n"));
            if let Some(line) = sources.line(span) {
                let line = line.trim_end_matches('\r');
                out.push_str(&format!("{pad}|\n"));
                out.push_str(&format!("{number:>w$} | {line}\n", w = gutter - 1));
                let col = (span.col as usize).saturating_sub(1);
                let indent: String = line
                    .chars()
                    .take(col)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let width = (span.len as usize)
                    .min(line.chars().count().saturating_sub(col))
                    .max(1);
                out.push_str(&format!("{pad}| {indent}{}\n", "^".repeat(width)));
            }
        }
        if let Some(help) = &self.help {
            out.push_str(&format!("{}= help: {help}\n", " ".repeat(gutter)));
        }
        out
    }
}

/// Every problem found while loading, with the sources needed to show them.
#[derive(Clone, Debug)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
    pub sources: SourceMap,
}

impl Diagnostics {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Error)
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", d.render(&self.sources))?;
        }
        let errors = self.errors().count();
        if errors > 1 {
            writeln!(f, "\n{errors} errors")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The closest candidate to a misspelt name, when one is close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        let score = strsim::jaro_winkler(word, candidate);
        if score > 0.8 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_location_line_and_caret() {
        let mut sources = SourceMap::default();
        let file = sources.add(
            "compose.yaml".into(),
            "services:\n  web:\n    comand: [x]\n".into(),
        );
        let d = Diagnostic::error("unknown key `comand`", Span::new(file, 3, 5, 6))
            .with_help("did you mean `command`?");
        assert_eq!(
            d.render(&sources),
            "error: unknown key `comand`\n  --> compose.yaml:3:5\n  |\n3 |     comand: [x]\n  |     ^^^^^^\n  = help: did you mean `command`?\n"
        );
    }

    #[test]
    fn suggests_close_names_only() {
        let keys = ["command", "entrypoint", "environment"];
        assert_eq!(suggest("comand", keys), Some("command"));
        assert_eq!(suggest("enviroment", keys), Some("environment"));
        assert_eq!(suggest("zzz", keys), None);
    }
}
