//! The translation report: every Compose key that did not translate exactly, per service (and per
//! network, volume, secret and config), so that nothing is dropped without a word.

use std::collections::BTreeMap;
use std::fmt;

/// How well a key translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Translated; how it was done is worth knowing (a shared Pod, a Secret with copied values).
    Note,
    /// Translated to something that behaves differently in a way that can matter.
    Approximate,
    /// Left out of the manifests.
    NotTranslated,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Note => "note",
            Kind::Approximate => "approximate",
            Kind::NotTranslated => "not translated",
        }
    }
}

/// What a finding is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Project,
    Service(String),
    Network(String),
    Volume(String),
    Secret(String),
    Config(String),
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Section::Project => f.write_str("project"),
            Section::Service(s) => write!(f, "service {s}"),
            Section::Network(s) => write!(f, "network {s}"),
            Section::Volume(s) => write!(f, "volume {s}"),
            Section::Secret(s) => write!(f, "secret {s}"),
            Section::Config(s) => write!(f, "config {s}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub section: Section,
    /// The Compose key (`stop_signal`, `deploy.placement`, `labels.wharf.http.allow_from`).
    pub key: String,
    pub kind: Kind,
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The first line: project, namespace, Kubernetes version.
    pub title: String,
    /// Objects written per kind, in the order they are applied.
    pub counts: Vec<(&'static str, usize)>,
    pub findings: Vec<Finding>,
}

impl Report {
    pub(crate) fn add(&mut self, section: Section, key: &str, kind: Kind, message: String) {
        self.findings.push(Finding {
            section,
            key: key.to_string(),
            kind,
            message,
        });
    }

    /// The findings about one service.
    pub fn service(&self, name: &str) -> Vec<&Finding> {
        self.findings
            .iter()
            .filter(|f| f.section == Section::Service(name.to_string()))
            .collect()
    }

    /// Whether some finding about `section` is on `key` (or a key below it).
    pub fn mentions(&self, section: &Section, key: &str) -> bool {
        self.findings.iter().any(|f| {
            &f.section == section && (f.key == key || f.key.starts_with(&format!("{key}.")))
        })
    }

    pub fn count(&self, kind: Kind) -> usize {
        self.findings.iter().filter(|f| f.kind == kind).count()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.title)?;
        let counts: Vec<String> = self
            .counts
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect();
        writeln!(f, "objects: {}", counts.join(", "))?;
        let mut sections: BTreeMap<&Section, Vec<&Finding>> = BTreeMap::new();
        for finding in &self.findings {
            sections.entry(&finding.section).or_default().push(finding);
        }
        for (section, mut findings) in sections {
            findings.sort_by(|a, b| a.key.cmp(&b.key));
            writeln!(f, "\n{section}")?;
            for finding in findings {
                writeln!(
                    f,
                    "  {:<15}{}: {}",
                    finding.kind.as_str(),
                    finding.key,
                    finding.message
                )?;
            }
        }
        writeln!(
            f,
            "\n{} approximate, {} not translated, {} notes",
            self.count(Kind::Approximate),
            self.count(Kind::NotTranslated),
            self.count(Kind::Note)
        )
    }
}
