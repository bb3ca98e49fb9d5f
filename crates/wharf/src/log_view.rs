//! Log lines as Docker Compose shows them: `web-1  | line`, the prefix padded to the longest
//! instance name, one colour per service; no colour when standard output is not a terminal or
//! NO_COLOR is set.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

use wharf_api::message::LogEntry;

/// Compose's palette: cyan, yellow, green, magenta, blue, then their bright forms.
const COLOURS: [&str; 10] = ["36", "33", "32", "35", "34", "96", "93", "92", "95", "94"];

/// Whether output to standard output may be coloured.
pub fn colour_enabled() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub struct LogPrinter {
    project: String,
    colour: bool,
    timestamps: bool,
    width: usize,
    colours: BTreeMap<String, &'static str>,
}

impl LogPrinter {
    /// A printer for `project`, with the instance names known so far (more may come).
    pub fn new<'a>(
        project: &str,
        services: impl IntoIterator<Item = &'a str>,
        instances: impl IntoIterator<Item = &'a str>,
        timestamps: bool,
    ) -> Self {
        let mut printer = LogPrinter {
            project: project.to_string(),
            colour: colour_enabled(),
            timestamps,
            width: 0,
            colours: BTreeMap::new(),
        };
        let mut services: Vec<&str> = services.into_iter().collect();
        services.sort_unstable();
        for s in services {
            printer.colour_of(s);
        }
        for i in instances {
            let short = printer.short(i).chars().count();
            printer.width = printer.width.max(short);
        }
        printer
    }

    fn colour_of(&mut self, service: &str) -> &'static str {
        let next = COLOURS[self.colours.len() % COLOURS.len()];
        self.colours.entry(service.to_string()).or_insert(next)
    }

    /// `web-1` for `project-web-1`, as Compose shows it.
    fn short<'a>(&self, instance: &'a str) -> &'a str {
        instance
            .strip_prefix(self.project.as_str())
            .and_then(|r| r.strip_prefix('-'))
            .unwrap_or(instance)
    }

    /// The line as printed, without the line end.
    pub fn format(&mut self, entry: &LogEntry) -> String {
        let name = self.short(&entry.instance).to_string();
        self.width = self.width.max(name.chars().count());
        let prefix = format!("{name:<width$} |", width = self.width);
        let prefix = if self.colour {
            let colour = self.colour_of(&entry.service);
            format!("\x1b[{colour}m{prefix}\x1b[0m")
        } else {
            prefix
        };
        if self.timestamps {
            format!("{prefix} {} {}", entry.time, entry.line)
        } else {
            format!("{prefix} {}", entry.line)
        }
    }

    pub fn print(&mut self, entry: &LogEntry) {
        let line = self.format(entry);
        let mut out = std::io::stdout().lock();
        // A closed pipe (`wharf logs | head`) ends the output; nothing to report.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use wharf_api::message::LogStream;

    use super::*;

    fn entry(instance: &str, line: &str) -> LogEntry {
        LogEntry {
            project: "shop".into(),
            service: "web".into(),
            instance: instance.into(),
            time: "2026-11-03T10:04:05.123Z".into(),
            stream: LogStream::Stdout,
            line: line.into(),
        }
    }

    #[test]
    fn prefixes_are_padded_to_the_longest_name() {
        let mut p = LogPrinter::new(
            "shop",
            ["web", "worker"],
            ["shop-web-1", "shop-worker-1"],
            false,
        );
        p.colour = false;
        assert_eq!(p.format(&entry("shop-web-1", "hi")), "web-1    | hi");
        assert_eq!(p.format(&entry("shop-worker-1", "yo")), "worker-1 | yo");
        // A longer name that comes later widens the column from then on.
        assert_eq!(p.format(&entry("shop-web-10000", "x")), "web-10000 | x");
        p.timestamps = true;
        assert_eq!(
            p.format(&entry("shop-web-1", "t")),
            "web-1     | 2026-11-03T10:04:05.123Z t"
        );
    }

    #[test]
    fn each_service_has_its_colour() {
        let mut p = LogPrinter::new("shop", ["web", "db"], ["shop-web-1"], false);
        p.colour = true;
        // Services are coloured in name order: db cyan, web yellow.
        assert_eq!(
            p.format(&entry("shop-web-1", "hi")),
            "\x1b[33mweb-1 |\x1b[0m hi"
        );
    }
}
