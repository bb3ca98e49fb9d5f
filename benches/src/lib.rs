//! Inputs for the benchmarks in `benches/benches/`: generated Compose projects of a realistic
//! shape, so that a benchmark measures the loader on the kind of file users write, at scale.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The shape of a generated project.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Number of `depends_on` chains.
    pub chains: usize,
    /// Services per chain: service `i` of a chain depends on service `i - 1`.
    pub chain_len: usize,
}

impl Shape {
    /// The number of services of the project.
    pub fn services(&self) -> usize {
        self.chains * self.chain_len
    }
}

/// The name of service `index` of chain `chain`.
pub fn service_name(chain: usize, index: usize) -> String {
    format!("svc-{chain:02}-{index:03}")
}

/// The first host port; service `n` (counting from 0 over all chains) publishes `BASE_PORT + n`.
pub const BASE_PORT: usize = 20_000;

/// A Compose file with [`Shape::services`] services in `chains` `depends_on` chains.
///
/// Each service has an image, a command, an environment with `${VAR:-default}` interpolation, a
/// published port on a host port of its own, a healthcheck, labels, two networks and a named
/// volume. Every fifth dependency uses the long syntax with `condition: service_healthy`.
pub fn compose_file(shape: Shape) -> String {
    let mut out = String::with_capacity(shape.services() * 900);
    out.push_str("name: bench\n\n");
    out.push_str("x-logging: &logging\n  driver: json-file\n  options:\n    max-size: 10m\n\n");
    out.push_str("services:\n");
    for chain in 0..shape.chains {
        for index in 0..shape.chain_len {
            let n = chain * shape.chain_len + index;
            let name = service_name(chain, index);
            let port = BASE_PORT + n;
            // `writeln!` into a String cannot fail.
            let _ = writeln!(
                out,
                r#"  {name}:
    image: "${{REGISTRY:-registry.example.com}}/team/{name}:${{TAG:-1.2.3}}"
    command: ["serve", "--port", "8080", "--name", "{name}"]
    environment:
      SERVICE_NAME: {name}
      LOG_LEVEL: ${{LOG_LEVEL:-info}}
      DATABASE_URL: "postgres://${{DB_USER:-app}}:${{DB_PASSWORD:-secret}}@db:5432/app"
      CHAIN: "{chain}"
      LITERAL: "$${{NOT_INTERPOLATED}}"
    ports:
      - "127.0.0.1:{port}:8080"
    healthcheck:
      test: ["CMD", "curl", "-fsS", "http://localhost:8080/health"]
      interval: 10s
      timeout: 2s
      retries: 3
      start_period: 5s
    labels:
      com.example.service: {name}
      com.example.chain: "{chain}"
      com.example.owner: "${{OWNER:-platform}}"
    networks:
      - front
      - back
    volumes:
      - data-{chain:02}:/var/lib/{name}
      - ./config/{name}.yaml:/etc/app/config.yaml:ro
    logging: *logging
    restart: unless-stopped"#
            );
            if index > 0 {
                let dep = service_name(chain, index - 1);
                if index % 5 == 0 {
                    let _ = writeln!(
                        out,
                        "    depends_on:\n      {dep}:\n        condition: service_healthy\n        restart: true"
                    );
                } else {
                    let _ = writeln!(out, "    depends_on:\n      - {dep}");
                }
            }
        }
    }
    out.push_str("\nnetworks:\n  front:\n  back:\n    internal: true\n\nvolumes:\n");
    for chain in 0..shape.chains {
        let _ = writeln!(
            out,
            "  data-{chain:02}:\n    labels:\n      com.example.chain: \"{chain}\""
        );
    }
    out
}

/// An override file for a project of `shape`: changes every tenth service's image tag,
/// environment and ports (merged by target), adds a label, and resets one service's healthcheck.
pub fn override_file(shape: Shape) -> String {
    let mut out = String::from("services:\n");
    for chain in 0..shape.chains {
        for index in (0..shape.chain_len).step_by(10) {
            let name = service_name(chain, index);
            let _ = writeln!(
                out,
                r#"  {name}:
    image: "registry.example.com/team/{name}:${{OVERRIDE_TAG:-2.0.0}}"
    environment:
      LOG_LEVEL: debug
      EXTRA: "${{EXTRA:-yes}}"
    labels:
      com.example.override: "true""#
            );
            if index == 0 {
                out.push_str("    healthcheck: !reset null\n");
            }
        }
    }
    out
}

/// The process environment given to the loader: some variables set, most left to their defaults.
pub fn environment() -> BTreeMap<String, String> {
    [
        ("TAG", "3.4.5"),
        ("LOG_LEVEL", "warn"),
        ("HOME", "/home/bench"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generated files load without errors (a benchmark of a failing load would measure the
    /// wrong thing), with the dependencies and interpolation they are meant to have.
    #[test]
    fn generated_project_loads() {
        let shape = Shape {
            chains: 3,
            chain_len: 12,
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("compose.yaml"), compose_file(shape)).unwrap();
        std::fs::write(
            dir.path().join("compose.override.yaml"),
            override_file(shape),
        )
        .unwrap();
        let options = wharf_model::LoadOptions {
            files: vec!["compose.yaml".into(), "compose.override.yaml".into()],
            working_dir: dir.path().to_path_buf(),
            environment: environment(),
            ..Default::default()
        };
        let loaded = match wharf_model::load(&options) {
            Ok(l) => l,
            Err(d) => panic!("generated project does not load: {d:?}"),
        };
        let p = &loaded.project;
        assert_eq!(p.services.len(), shape.services());
        let last = &p.services[&service_name(2, 11)];
        assert!(last.depends_on.contains_key(&service_name(2, 10)));
        assert_eq!(
            last.image.as_deref(),
            Some("registry.example.com/team/svc-02-011:3.4.5")
        );
        let first = &p.services[&service_name(0, 0)];
        assert_eq!(
            first.image.as_deref(),
            Some("registry.example.com/team/svc-00-000:2.0.0")
        );
        assert!(first.healthcheck.is_none());
    }
}
