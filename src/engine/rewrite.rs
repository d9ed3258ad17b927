//! Rewriting: the image graph after the jobs, bottom-up, as umoci's mutator does it: each
//! layer descriptor pointed at its job's output, each manifest and index whose content changed
//! written anew (a Docker manifest that gains encrypted layers becomes an OCI one, and its list
//! an OCI index, as containers/image does), the others kept byte for byte.
//!
//! Only small blobs (manifests, indexes) are written here; layer data never.

use crate::error::Error;
use crate::format::json::JsonObject;
use crate::format::{
    DOCKER_CONFIG, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, ENC_ANNOTATION_PREFIX, OCI_CONFIG,
    OCI_INDEX, OCI_MANIFEST, REF_NAME_ANNOTATION,
};
use crate::image::{Descriptor, ImageError, Node, TopIndex, reachable};
use crate::plan::{self, ImagePlan, LayerAction, Operation, Output, Plan};
use crate::store::{Overlay, StoreError};

use super::Execution;
use super::jobs::JobOutput;
use super::report::{Change, ImageReport, LayerReport, ManifestReport, Report, action_name};

/// The images of a plan after rewriting.
pub(super) struct Rewritten {
    /// Each image's new index entry, with its position in the source index.
    pub entries: Vec<(usize, Descriptor)>,
    /// Every blob the new images use, as its descriptor names it.
    needed: Vec<Descriptor>,
}

impl Rewritten {
    /// The blobs an output other than the source must hold: all those the new images use, or,
    /// for an output that holds one manifest per image, those its chosen manifests reach.
    pub(super) fn needed_by_output(
        &self,
        output: &Output,
        execution: &Execution<'_>,
        source_top: &TopIndex,
    ) -> Result<Vec<Descriptor>, Error> {
        let mut needed = self.needed.clone();
        if !output.capabilities.multi_platform {
            let overlay = Overlay {
                top: execution.dest,
                bottom: execution.source,
            };
            let entries: Vec<Descriptor> = self.entries.iter().map(|(_, e)| e.clone()).collect();
            let chosen = TopIndex::parse(&source_top.to_bytes_with(&entries))
                .map_err(ImageError::from)
                .and_then(|index| reachable(&overlay, &index))
                .map_err(|e| Error::image(execution.source.name(), e))?;
            needed.retain(|d| chosen.contains(&d.digest));
        }
        Ok(needed)
    }
}

impl Execution<'_> {
    /// Rewrite every image of `plan` with the job `outputs`, adding each image's report to
    /// `report`. An output that holds one manifest per image gets that manifest as the
    /// image's entry.
    pub(super) fn rewrite_images(
        &self,
        plan: &Plan,
        outputs: &[JobOutput],
        report: &mut Report,
        output: &Output,
    ) -> Result<Rewritten, Error> {
        let mut needed = Vec::new();
        let mut entries = Vec::with_capacity(plan.images.len());
        for image in &plan.images {
            let (mut entry, image_report) = self.rewrite_image(image, outputs, &mut needed)?;
            if !output.capabilities.multi_platform {
                entry = single_manifest_entry(image, &image_report, &entry)?;
            }
            entries.push((image.image.position, entry));
            report.images.push(image_report);
        }
        Ok(Rewritten { entries, needed })
    }

    /// Rewrite one image's graph with the job outputs. Returns the new top-level descriptor
    /// and the image's report; adds to `needed` every descriptor whose blob the destination
    /// must hold.
    fn rewrite_image(
        &self,
        image: &ImagePlan,
        outputs: &[JobOutput],
        needed: &mut Vec<Descriptor>,
    ) -> Result<(Descriptor, ImageReport), Error> {
        let mut report = ImageReport {
            name: image.name.clone(),
            reference: image.image.ref_name.clone(),
            old_digest: image.image.root.descriptor().digest.clone(),
            new_digest: image.image.root.descriptor().digest.clone(),
            indexes: Vec::new(),
            manifests: Vec::new(),
        };
        let mut manifests = image.manifests.iter();
        let (desc, _) = self.rewrite_node(
            &image.name,
            &image.image.root,
            &mut manifests,
            outputs,
            needed,
            &mut report,
        )?;
        report.new_digest = desc.digest.clone();
        Ok((desc, report))
    }

    /// Rewrite a node; returns its new descriptor and whether its manifest type changed to
    /// OCI (so a parent Docker list must become an OCI index).
    fn rewrite_node<'p>(
        &self,
        image: &str,
        node: &Node,
        manifests: &mut impl Iterator<Item = &'p plan::ManifestPlan>,
        outputs: &[JobOutput],
        needed: &mut Vec<Descriptor>,
        report: &mut ImageReport,
    ) -> Result<(Descriptor, bool), Error> {
        let store_err = |source: StoreError| Error::image(image.to_string(), source);
        match node {
            Node::Other(desc) => {
                needed.push(desc.clone());
                Ok((desc.clone(), false))
            }
            Node::Manifest(m) => {
                let mp = manifests.next().expect("one plan per manifest, in order");
                needed.push(m.config.clone());
                let mut layer_reports = Vec::with_capacity(m.layers.len());
                let mut layers = Vec::with_capacity(m.layers.len());
                for (lp, desc) in mp.layers.iter().zip(&m.layers) {
                    let mut new = desc.clone();
                    match lp.action {
                        LayerAction::Encrypt(job) => {
                            apply_output(&mut new, &outputs[job]);
                            let dropped = drop_chunked_annotations(&mut new);
                            if !dropped.is_empty() {
                                self.warn(format!(
                                    "{image}: layer {} ({}): dropped its partial-pull annotations ({}): an encrypted layer cannot be read in chunks, and they would reveal the layout of the encrypted data; it stays a valid {} stream",
                                    lp.index,
                                    mp.platform,
                                    dropped.join(", "),
                                    if desc.media_type.ends_with("zstd") { "zstd" } else { "gzip" },
                                ));
                            }
                        }
                        LayerAction::Decrypt(job) | LayerAction::Rotate(job) => {
                            apply_output(&mut new, &outputs[job])
                        }
                        LayerAction::Rewrap(job) => {
                            // Same blob, new annotations: the blob itself is copied as it is.
                            apply_output(&mut new, &outputs[job]);
                            needed.push(desc.clone());
                        }
                        LayerAction::Keep(_) => needed.push(desc.clone()),
                    }
                    layer_reports.push(LayerReport {
                        index: lp.index,
                        action: action_name(lp.action),
                        reason: match lp.action {
                            LayerAction::Keep(r) => Some(r),
                            _ => None,
                        },
                        note: lp.note.clone(),
                        old: desc.into(),
                        new: (!matches!(lp.action, LayerAction::Keep(_))).then(|| (&new).into()),
                    });
                    layers.push(new);
                }
                if !mp.changes() {
                    needed.push(m.desc.clone());
                    report.manifests.push(ManifestReport {
                        platform: mp.platform.clone(),
                        old: (&m.desc).into(),
                        new: (&m.desc).into(),
                        layers: layer_reports,
                    });
                    return Ok((m.desc.clone(), false));
                }
                let mut doc = m.doc.clone();
                let mut converted = false;
                if m.desc.media_type == DOCKER_MANIFEST
                    && matches!(self.operation, Operation::Encrypt { .. })
                {
                    // Only an OCI manifest can carry encrypted layers (as containers/image does).
                    converted = true;
                    doc.set_after("mediaType", OCI_MANIFEST, &["schemaVersion"]);
                    let mut config = m.config.clone();
                    if config.media_type == DOCKER_CONFIG {
                        config.set_media_type(OCI_CONFIG);
                    }
                    doc.set_object("config", &config.json);
                    for layer in &mut layers {
                        if let Some(oci) = crate::format::docker_layer_to_oci(&layer.media_type) {
                            layer.set_media_type(oci);
                        }
                    }
                }
                let items: Vec<JsonObject> = layers.iter().map(|l| l.json.clone()).collect();
                doc.set_object_array("layers", &items);
                let (digest, size) = self.dest.put_blob(&doc.to_go_bytes()).map_err(store_err)?;
                let mut desc = m.desc.clone();
                desc.set_content(&digest, size);
                if converted {
                    desc.set_media_type(OCI_MANIFEST);
                }
                report.manifests.push(ManifestReport {
                    platform: mp.platform.clone(),
                    old: (&m.desc).into(),
                    new: (&desc).into(),
                    layers: layer_reports,
                });
                Ok((desc, converted))
            }
            Node::Index(ix) => {
                let mut children = Vec::with_capacity(ix.children.len());
                let mut changed = false;
                let mut any_converted = false;
                for child in &ix.children {
                    let (desc, converted) =
                        self.rewrite_node(image, child, manifests, outputs, needed, report)?;
                    changed |= desc.digest != child.descriptor().digest;
                    any_converted |= converted;
                    children.push(desc);
                }
                if !changed {
                    needed.push(ix.desc.clone());
                    return Ok((ix.desc.clone(), false));
                }
                let mut doc = ix.doc.clone();
                let converted = any_converted && ix.desc.media_type == DOCKER_MANIFEST_LIST;
                if converted {
                    doc.set_after("mediaType", OCI_INDEX, &["schemaVersion"]);
                }
                let items: Vec<JsonObject> = children.iter().map(|c| c.json.clone()).collect();
                doc.set_object_array("manifests", &items);
                let (digest, size) = self.dest.put_blob(&doc.to_go_bytes()).map_err(store_err)?;
                let mut desc = ix.desc.clone();
                desc.set_content(&digest, size);
                if converted {
                    desc.set_media_type(OCI_INDEX);
                }
                report.indexes.push(Change {
                    old: (&ix.desc).into(),
                    new: (&desc).into(),
                });
                Ok((desc, converted))
            }
        }
    }
}

/// Annotation prefixes of partial-pull formats (zstd:chunked, eStargz): they locate the
/// table of contents inside the compressed stream and are meaningless, and revealing, once
/// the stream is encrypted. containers/image likewise refuses to keep zstd:chunked when it
/// encrypts.
const CHUNKED_ANNOTATION_PREFIXES: &[&str] = &[
    "io.github.containers.zstd-chunked.",
    "containerd.io/snapshot/stargz/",
    "io.containers.estargz.",
];

/// Remove partial-pull annotations from an encrypted layer's descriptor; returns their keys.
fn drop_chunked_annotations(desc: &mut Descriptor) -> Vec<String> {
    let Ok(mut annotations) = desc.annotations() else {
        return Vec::new();
    };
    let dropped: Vec<String> = annotations
        .keys()
        .filter(|k| CHUNKED_ANNOTATION_PREFIXES.iter().any(|p| k.starts_with(p)))
        .map(str::to_string)
        .collect();
    if !dropped.is_empty() {
        annotations.retain(|k| !CHUNKED_ANNOTATION_PREFIXES.iter().any(|p| k.starts_with(p)));
        desc.set_annotations(&annotations);
    }
    dropped
}

/// Point a layer descriptor at a job's output and fix its media type and annotations.
pub(super) fn apply_output(desc: &mut Descriptor, output: &JobOutput) {
    let mut annotations = desc.annotations().unwrap_or_default();
    annotations.retain(|k| !k.starts_with(ENC_ANNOTATION_PREFIX));
    if !output.annotations.is_empty() {
        for (k, v) in &output.annotations {
            annotations.set(k, v);
        }
        // Go writes map[string]string with sorted keys.
        annotations.sort_keys();
    }
    desc.set_media_type(&output.media_type);
    desc.set_content(&output.digest, output.size);
    desc.set_annotations(&annotations);
}

/// The index entry of an image written to an output that holds one manifest per image: its
/// one selected manifest (the plan made sure there is exactly one), named like the image's
/// entry.
fn single_manifest_entry(
    image: &ImagePlan,
    report: &ImageReport,
    entry: &Descriptor,
) -> Result<Descriptor, Error> {
    let position = image
        .manifests
        .iter()
        .position(|m| m.selected)
        .expect("planned: one selected manifest");
    let chosen = &report.manifests[position].new;
    let mut json = JsonObject::new();
    json.set("mediaType", &chosen.media_type);
    json.set("digest", &chosen.digest.to_string());
    json.set("size", &chosen.size);
    let mut desc = Descriptor::parse(json, "manifest descriptor")
        .map_err(|e| Error::image(image.name.clone(), ImageError::from(e)))?;
    if let Some(name) = entry.ref_name() {
        let mut annotations = JsonObject::new();
        annotations.set(REF_NAME_ANNOTATION, &name);
        desc.set_annotations(&annotations);
    }
    Ok(desc)
}
