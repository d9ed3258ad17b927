//! Registry references as skopeo writes them: `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`,
//! normalised as Docker normalises names (`docker://alpine` is `docker.io/library/alpine`).
//! A reference with neither tag nor digest names every tag of the repository.
//!
//! Pure string work: no I/O, no panic on any input.

use std::fmt;

use crate::digest::Digest;
use crate::format::docker_reference::split_reference;

/// An image, or every image, of one repository in a registry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RegistryRef {
    /// The registry as named, `host[:port]` (`docker.io` for Docker Hub).
    pub registry: String,
    /// The repository path inside it (`library/alpine`).
    pub repository: String,
    /// The tag, if one was named.
    pub tag: Option<String>,
    /// The digest, if one was named (then the tag, if any, is only informative, as in
    /// skopeo).
    pub digest: Option<Digest>,
}

impl RegistryRef {
    /// Parse what follows `docker://`.
    pub fn parse(text: &str) -> Result<RegistryRef, String> {
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => {
                let digest: Digest = digest
                    .parse()
                    .map_err(|e| format!("the digest `{digest}` is not valid: {e}"))?;
                (name, Some(digest))
            }
            None => (text, None),
        };
        if name.is_empty() {
            return Err("the repository name is empty".into());
        }
        let (full, tag) = split_reference(name).map_err(|e| e.reason)?;
        let (registry, repository) = full
            .split_once('/')
            .ok_or_else(|| "a repository must follow the registry host".to_string())?;
        Ok(RegistryRef {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// The host (and port) the registry's API answers on: Docker Hub's API is not on
    /// `docker.io` itself.
    pub fn api_host(&self) -> &str {
        if self.registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// `host/repository`, without tag or digest.
    pub fn repository_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository with `tag` (and no digest).
    pub fn with_tag(&self, tag: &str) -> RegistryRef {
        RegistryRef {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// Whether both name the same repository of the same registry.
    pub fn same_repository(&self, other: &RegistryRef) -> bool {
        self.registry == other.registry && self.repository == other.repository
    }

    /// The tag, or the digest, as the registry's manifest endpoint takes it; `None` for a
    /// whole repository.
    pub fn manifest_reference(&self) -> Option<String> {
        match (&self.digest, &self.tag) {
            (Some(d), _) => Some(d.to_string()),
            (None, Some(t)) => Some(t.clone()),
            (None, None) => None,
        }
    }
}

impl fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "docker://{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_as_skopeo_writes_them() {
        let r = RegistryRef::parse("127.0.0.1:5000/team/app:v1").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.to_string(), "docker://127.0.0.1:5000/team/app:v1");
        let hub = RegistryRef::parse("alpine").unwrap();
        assert_eq!(hub.repository_name(), "docker.io/library/alpine");
        assert_eq!(hub.api_host(), "registry-1.docker.io");
        assert_eq!(hub.tag, None);
        assert_eq!(hub.manifest_reference(), None);
        let d = format!("sha256:{}", "a".repeat(64));
        let pinned = RegistryRef::parse(&format!("localhost:5000/app@{d}")).unwrap();
        assert_eq!(pinned.manifest_reference(), Some(d.clone()));
        assert_eq!(pinned.tag, None);
        for bad in [
            "",
            "host:5000/",
            "host:5000/App",
            "host:5000/app:",
            "host:5000/app@sha256:zz",
            "host:5000/app:-x",
        ] {
            assert!(RegistryRef::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
