//! `wharf_model::load` end to end (read, parse, schema validation, interpolation, canonicalisation,
//! merge, decode, validation) on generated projects: one file of 1,000 services in 10 `depends_on`
//! chains of 100, and a 200-service base file with an override file. `parse/1000_services` times
//! the YAML parse alone of the 1,000-service file, the floor under the first.
//!
//! Run with `cargo bench -p wharf-benches --bench load`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};

/// The allocator of the `wharf` binary, so that the numbers are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use wharf_benches::{Shape, compose_file, environment, override_file};
use wharf_model::LoadOptions;
use wharf_model::node::FileId;

fn options(dir: &Path, files: &[&str]) -> LoadOptions {
    LoadOptions {
        files: files.iter().map(Into::into).collect(),
        working_dir: dir.to_path_buf(),
        environment: environment(),
        ..Default::default()
    }
}

/// Loads once outside the measurement, so that a project that fails to load stops the benchmark
/// instead of timing the error path.
fn check(options: &LoadOptions, services: usize) {
    match wharf_model::load(options) {
        Ok(loaded) => assert_eq!(loaded.project.services.len(), services),
        Err(d) => panic!("the generated project does not load: {d:?}"),
    }
}

fn load(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");

    let big = Shape {
        chains: 10,
        chain_len: 100,
    };
    let big_text = compose_file(big);
    std::fs::write(dir.path().join("compose.yaml"), &big_text).expect("write compose.yaml");
    let single = options(dir.path(), &["compose.yaml"]);
    check(&single, big.services());

    let small = Shape {
        chains: 4,
        chain_len: 50,
    };
    std::fs::write(dir.path().join("base.yaml"), compose_file(small)).expect("write base.yaml");
    std::fs::write(dir.path().join("override.yaml"), override_file(small))
        .expect("write override.yaml");
    let layered = options(dir.path(), &["base.yaml", "override.yaml"]);
    check(&layered, small.services());

    let mut group = c.benchmark_group("load");
    group.sample_size(20);
    group.bench_function("1000_services", |b| {
        b.iter(|| wharf_model::load(black_box(&single)))
    });
    group.bench_function("200_services_base_override", |b| {
        b.iter(|| wharf_model::load(black_box(&layered)))
    });
    group.finish();

    let mut group = c.benchmark_group("parse");
    group.sample_size(20);
    group.bench_function("1000_services", |b| {
        b.iter(|| wharf_model::yaml::parse(black_box(&big_text), FileId(0)))
    });
    group.finish();
}

criterion_group!(benches, load);
criterion_main!(benches);
