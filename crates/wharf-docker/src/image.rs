//! Images: the local one when present, `build:` through the Engine's build API, a pull when
//! missing, as `pull_policy` says (Compose's `always`, `never`, `missing`/`if_not_present`,
//! `build`; `missing` by default).

use std::collections::HashMap;
use std::path::Path;

use bollard::Docker;
use bollard::query_parameters::{BuildImageOptionsBuilder, CreateImageOptionsBuilder};
use futures_util::StreamExt;
use wharf_model::Project;
use wharf_model::project::Service;

use crate::{DockerError, Progress, labels};

/// `pull_policy`, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    Never,
    Missing,
    Build,
}

impl PullPolicy {
    pub fn of(service: &Service) -> Result<PullPolicy, DockerError> {
        match service.extra.get("pull_policy").and_then(|v| v.as_str()) {
            None | Some("missing") | Some("if_not_present") => Ok(PullPolicy::Missing),
            Some("always") => Ok(PullPolicy::Always),
            Some("never") => Ok(PullPolicy::Never),
            Some("build") => Ok(PullPolicy::Build),
            Some(other) => Err(DockerError::Service {
                service: service.name.clone(),
                reason: format!(
                    "unknown pull_policy `{other}`; use always, never, missing or build"
                ),
            }),
        }
    }
}

async fn exists(docker: &Docker, image: &str) -> Result<bool, DockerError> {
    match docker.inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(e) => Err(DockerError::Engine(format!(
            "cannot inspect image {image}: {e}"
        ))),
    }
}

/// Makes the image of `service` present: built, pulled or already there.
pub async fn ensure(
    docker: &Docker,
    project: &Project,
    service: &Service,
    progress: &Progress,
) -> Result<String, DockerError> {
    let progress = &|line: &str| progress(&project.name, line);
    let image = labels::image_name(project, service);
    let policy = PullPolicy::of(service)?;
    if let Some(build) = &service.build {
        if policy == PullPolicy::Build || !exists(docker, &image).await? {
            self::build(docker, service, build, &image, progress).await?;
        }
        return Ok(image);
    }
    if service.image.is_none() {
        return Err(DockerError::Service {
            service: service.name.clone(),
            reason: "has neither `image` nor `build`; add one of them".into(),
        });
    }
    let present = exists(docker, &image).await?;
    match policy {
        PullPolicy::Never if !present => Err(DockerError::Service {
            service: service.name.clone(),
            reason: format!(
                "image {image} is not on this machine and pull_policy is never; build or load it (`docker load`), or allow a pull"
            ),
        }),
        PullPolicy::Always => pull(docker, service, &image, progress)
            .await
            .map(|()| image),
        _ if !present => pull(docker, service, &image, progress)
            .await
            .map(|()| image),
        _ => Ok(image),
    }
}

async fn build(
    docker: &Docker,
    service: &Service,
    build: &wharf_model::project::Build,
    image: &str,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), DockerError> {
    let context = Path::new(&build.context);
    if !context.is_absolute() {
        return Err(DockerError::Service {
            service: service.name.clone(),
            reason: format!(
                "build context `{}` is not a local directory; the Docker runtime builds from local contexts only",
                build.context
            ),
        });
    }
    let dockerfile = build
        .dockerfile
        .clone()
        .unwrap_or_else(|| "Dockerfile".to_string());
    let dir = context.to_path_buf();
    let file = dockerfile.clone();
    let tar = tokio::task::spawn_blocking(move || crate::context::context_tar(&dir, &file))
        .await
        .map_err(|e| DockerError::Engine(format!("packing the build context failed: {e}")))??;
    let args: HashMap<String, String> = build
        .args
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
        .collect();
    let labels: HashMap<String, String> = build
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut options = BuildImageOptionsBuilder::default()
        .dockerfile(&dockerfile)
        .t(image)
        .rm(true)
        .buildargs(&args)
        .labels(&labels);
    if let Some(target) = &build.target {
        options = options.target(target);
    }
    progress(&format!(
        "{}: building {image} from {}",
        service.name, build.context
    ));
    let mut stream = docker.build_image(
        options.build(),
        None,
        Some(bollard::body_full(bytes::Bytes::from(tar))),
    );
    let mut last = Vec::new();
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| DockerError::Service {
            service: service.name.clone(),
            reason: format!("building {image} failed: {e}"),
        })?;
        if let Some(detail) = info.error_detail {
            let message = detail.message.unwrap_or_default();
            return Err(DockerError::Service {
                service: service.name.clone(),
                reason: format!(
                    "building {image} failed: {message}{}",
                    if last.is_empty() {
                        String::new()
                    } else {
                        format!("\n  last build output:\n    | {}", last.join("\n    | "))
                    }
                ),
            });
        }
        if let Some(line) = info.stream {
            for l in line.lines().filter(|l| !l.trim().is_empty()) {
                progress(&format!("{}: {l}", service.name));
                if last.len() == 10 {
                    last.remove(0);
                }
                last.push(l.to_string());
            }
        }
    }
    Ok(())
}

async fn pull(
    docker: &Docker,
    service: &Service,
    image: &str,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), DockerError> {
    let (name, tag) = split_reference(image);
    progress(&format!("{}: pulling {image}", service.name));
    let options = CreateImageOptionsBuilder::default()
        .from_image(name)
        .tag(tag)
        .build();
    let mut stream = docker.create_image(Some(options), None, None);
    while let Some(item) = stream.next().await {
        let failed = |reason: String| DockerError::Service {
            service: service.name.clone(),
            reason: format!(
                "cannot pull image {image}: {reason}; when no registry can be reached, build the image locally (`build:`) or load it (`docker load`), and set pull_policy: never"
            ),
        };
        let info = item.map_err(|e| failed(e.to_string()))?;
        if let Some(detail) = info.error_detail {
            return Err(failed(detail.message.unwrap_or_default()));
        }
        if let Some(status) = info.status {
            let id = info.id.map(|i| format!("{i}: ")).unwrap_or_default();
            progress(&format!("{}: {id}{status}", service.name));
        }
    }
    Ok(())
}

/// `name[:tag]` or `name@digest`, with `latest` as the default tag; a registry port
/// (`host:5000/x`) is not a tag.
pub fn split_reference(image: &str) -> (&str, &str) {
    if let Some((name, digest)) = image.split_once('@') {
        return (name, digest);
    }
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (image, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::split_reference;

    #[test]
    fn references_split_into_name_and_tag() {
        assert_eq!(split_reference("busybox"), ("busybox", "latest"));
        assert_eq!(split_reference("redis:7"), ("redis", "7"));
        assert_eq!(
            split_reference("host:5000/app"),
            ("host:5000/app", "latest")
        );
        assert_eq!(
            split_reference("host:5000/app:1.2"),
            ("host:5000/app", "1.2")
        );
        assert_eq!(split_reference("a@sha256:00"), ("a", "sha256:00"));
    }
}
