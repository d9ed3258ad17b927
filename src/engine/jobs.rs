//! Executing jobs: each distinct layer blob of a plan streamed once through its transform
//! (encrypt, decrypt, rotate) into a new blob of the destination, or its wrapped keys
//! rewritten; then every blob the result needs and the destination lacks copied over.
//!
//! Decrypted data is published only after the HMAC over the whole ciphertext and the source
//! digest and size have been checked; a failed job leaves no blob behind.

use std::collections::HashSet;

use rayon::prelude::*;

use crate::cipher::{Decryptor, Encryptor, LayerSecrets, public_options};
use crate::digest::Digest;
use crate::error::{Error, LayerError};
use crate::format::{PUBOPTS_ANNOTATION, encode_base64, is_foreign};
use crate::image::Descriptor;
use crate::keywrap::{Recipient, wrap_for};
use crate::pipeline;
use crate::plan::Operation;
use crate::plan::{Job, JobWork, Plan};
use crate::progress::Item;
use crate::store::{BlobSink, StoreError};

use super::{Event, Execution};

/// The result of one job: the new blob and what its descriptor must say.
#[derive(Debug)]
pub(super) struct JobOutput {
    pub(super) digest: Digest,
    pub(super) size: u64,
    pub(super) media_type: String,
    /// Annotations to add (encryption); decryption only removes.
    pub(super) annotations: Vec<(String, String)>,
}

impl Execution<'_> {
    /// Run every job of `plan`, in parallel on the current pool; the outputs come in job
    /// order.
    pub(super) fn run_jobs(&self, plan: &Plan) -> Result<Vec<JobOutput>, Error> {
        // Declared sizes, which a hostile descriptor may set to anything: add without overflow.
        let streamed = plan.jobs.iter().filter(|j| j.work.streams_data());
        self.progress.expect(
            streamed.clone().count(),
            streamed.map(|j| j.source.size).fold(0, u64::saturating_add),
        );
        plan.jobs.par_iter().map(|job| self.run_job(job)).collect()
    }

    /// Tell the user now, and keep the warning for the report.
    pub(super) fn warn(&self, message: String) {
        (self.events)(Event::Warning(message.clone()));
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(message);
    }

    fn run_job(&self, job: &Job) -> Result<JobOutput, Error> {
        let layer_err = |source| Error::layer(&job.at, source);
        match (&job.work, self.operation) {
            (JobWork::Encrypt { media_type }, Operation::Encrypt { recipients }) => {
                let secrets =
                    LayerSecrets::generate().map_err(|e| layer_err(LayerError::Cipher(e)))?;
                // Wrap first: it needs only the key, nonce and source digest, and a recipient
                // problem should fail before any data is written.
                let private = secrets.private_options(&job.source.digest.to_string());
                let mut annotations = wrap_for(self.registry, recipients, &private.to_json())
                    .map_err(|e| layer_err(LayerError::Wrap(e)))?;
                let mut encryptor = Encryptor::new(&secrets);
                let (digest, size) = self
                    .stream(job, |chunk| encryptor.apply(chunk))
                    .map_err(layer_err)?
                    .commit()
                    .map_err(|e| layer_err(LayerError::Store(e)))?;
                let hmac = encryptor.finish();
                annotations.push((
                    PUBOPTS_ANNOTATION.to_string(),
                    encode_base64(&public_options(hmac).to_json()),
                ));
                annotations.sort();
                (self.events)(Event::Detail(format!("{}: encrypted to {digest}", job.at)));
                Ok(JobOutput {
                    digest,
                    size,
                    media_type: media_type.clone(),
                    annotations,
                })
            }
            (
                JobWork::Decrypt {
                    params,
                    media_type,
                    recorded_digest,
                    opened_with,
                },
                // Also `rekey --rotate` of an empty layer, which it stores plain.
                Operation::Decrypt { .. } | Operation::Rekey { .. },
            ) => {
                (self.events)(Event::Detail(format!(
                    "{}: opened with {opened_with}",
                    job.at
                )));
                let mut decryptor = Decryptor::new(params);
                let sink = self
                    .stream(job, |chunk| decryptor.apply(chunk))
                    .map_err(layer_err)?;
                // The HMAC is checked before the plaintext is published; on failure the
                // temporary file is dropped and removed.
                decryptor
                    .verify()
                    .map_err(|e| layer_err(LayerError::Cipher(e)))?;
                let (digest, size) = sink.commit().map_err(|e| layer_err(LayerError::Store(e)))?;
                if !recorded_digest.is_empty() && *recorded_digest != digest.to_string() {
                    self.warn(format!(
                        "{}: decrypted blob is {digest}, but the encrypting tool recorded {recorded_digest} (skopeo records the source digest even when it recompressed)",
                        job.at
                    ));
                }
                Ok(JobOutput {
                    digest,
                    size,
                    media_type: media_type.clone(),
                    annotations: Vec::new(),
                })
            }
            (
                JobWork::Rewrap {
                    keys,
                    other,
                    options,
                    wrap,
                },
                Operation::Rekey { add, set, .. },
            ) => {
                let from = if set.is_empty() { add } else { set };
                let recipients: Vec<Recipient> = wrap.iter().map(|&i| from[i].clone()).collect();
                let mut edited = keys.clone();
                if !recipients.is_empty() {
                    let wrapped = wrap_for(self.registry, &recipients, &options.options)
                        .map_err(|e| layer_err(LayerError::Wrap(e)))?;
                    edited
                        .append(wrapped)
                        .map_err(|e| layer_err(LayerError::Rekey(e)))?;
                }
                let mut annotations = edited.annotations;
                annotations.extend(other.iter().cloned());
                annotations.sort();
                (self.events)(Event::Detail(format!(
                    "{}: opened with {} key {}; wrapped keys rewritten, data untouched",
                    job.at, options.scheme, options.key
                )));
                Ok(JobOutput {
                    digest: job.source.digest.clone(),
                    size: job.source.size,
                    media_type: job.source.media_type.clone(),
                    annotations,
                })
            }
            (
                JobWork::Rotate {
                    params,
                    media_type,
                    opened_with,
                },
                Operation::Rekey { set, .. },
            ) => {
                (self.events)(Event::Detail(format!(
                    "{}: opened with {opened_with}",
                    job.at
                )));
                let secrets =
                    LayerSecrets::generate().map_err(|e| layer_err(LayerError::Cipher(e)))?;
                let mut decryptor = Decryptor::new(params);
                let mut encryptor = Encryptor::new(&secrets);
                let mut plain = crate::digest::Hasher::new(crate::digest::Algorithm::Sha256);
                let sink = self
                    .stream(job, |chunk| {
                        decryptor.apply(chunk);
                        plain.update(chunk);
                        encryptor.apply(chunk);
                    })
                    .map_err(layer_err)?;
                // The old HMAC is checked before the new blob is published; on failure the
                // temporary file is dropped and removed.
                decryptor
                    .verify()
                    .map_err(|e| layer_err(LayerError::Cipher(e)))?;
                let private = secrets.private_options(&plain.finish().to_string());
                let mut annotations = wrap_for(self.registry, set, &private.to_json())
                    .map_err(|e| layer_err(LayerError::Wrap(e)))?;
                let (digest, size) = sink.commit().map_err(|e| layer_err(LayerError::Store(e)))?;
                annotations.push((
                    PUBOPTS_ANNOTATION.to_string(),
                    encode_base64(&public_options(encryptor.finish()).to_json()),
                ));
                annotations.sort();
                (self.events)(Event::Detail(format!(
                    "{}: re-encrypted to {digest}",
                    job.at
                )));
                Ok(JobOutput {
                    digest,
                    size,
                    media_type: media_type.clone(),
                    annotations,
                })
            }
            _ => unreachable!("jobs are planned for the request's operation"),
        }
    }

    /// Stream a job's source blob through `transform` into a new destination blob, returned
    /// unpublished. The source is verified (digest and size) when its end is reached.
    fn stream(
        &self,
        job: &Job,
        mut transform: impl FnMut(&mut [u8]) + Send,
    ) -> Result<Box<dyn BlobSink + '_>, LayerError> {
        let digest = &job.source.digest;
        let mut reader = self
            .source
            .open_blob(digest, job.source.size)
            .map_err(LayerError::Store)?;
        let mut sink = self
            .dest
            // The transform works in place: the new blob has the source's size.
            .create_blob_sized(crate::digest::Algorithm::Sha256, job.source.size)
            .map_err(LayerError::Store)?;
        let mut progress = self.progress.start(Item::Layer(&job.at), job.source.size);
        let mut step = |chunk: &mut [u8]| {
            transform(chunk);
            progress.advance(chunk.len() as u64);
        };
        pipeline::pump(&mut *reader, &mut *sink, job.source.size, &mut step).map_err(
            |e| match e {
                pipeline::PumpError::Read(e) => {
                    LayerError::Store(StoreError::from_blob_read(self.source.name(), digest, e))
                }
                pipeline::PumpError::Write(e) => LayerError::Store(StoreError::io(
                    "writing to",
                    self.dest.name().to_string(),
                    e,
                )),
            },
        )?;
        progress.finish();
        Ok(sink)
    }
}

impl Execution<'_> {
    /// Copy from the source every needed blob the destination lacks.
    pub(super) fn copy_missing(&self, needed: &[Descriptor]) -> Result<(), Error> {
        let mut seen = HashSet::new();
        let missing: Vec<&Descriptor> = needed
            .iter()
            .filter(|d| seen.insert(d.digest.clone()) && !self.dest.has_blob(&d.digest))
            // A foreign layer's blob lives at its `urls`; copy it only if it is here anyway.
            .filter(|d| !is_foreign(&d.json) || self.source.has_blob(&d.digest))
            .collect();
        self.progress.expect(
            missing.len(),
            missing.iter().map(|d| d.size).fold(0, u64::saturating_add),
        );
        missing.par_iter().try_for_each(|desc| {
            let mut reader = self.source.open_blob(&desc.digest, desc.size)?;
            let mut sink = self
                .dest
                .create_blob_sized(desc.digest.algorithm(), desc.size)?;
            let mut progress = self.progress.start(Item::Copy(&desc.digest), desc.size);
            // Reading verifies the source digest and writing hashes the copy: two hashes that
            // the pipeline runs on two threads for a large blob.
            let mut step = |chunk: &mut [u8]| progress.advance(chunk.len() as u64);
            pipeline::pump(&mut *reader, &mut *sink, desc.size, &mut step).map_err(
                |e| match e {
                    pipeline::PumpError::Read(e) => {
                        StoreError::from_blob_read(self.source.name(), &desc.digest, e)
                    }
                    pipeline::PumpError::Write(e) => {
                        StoreError::io("writing to", self.dest.name().to_string(), e)
                    }
                },
            )?;
            progress.finish();
            sink.commit()?;
            (self.events)(Event::Detail(format!("copied {}", desc.digest)));
            Ok::<(), StoreError>(())
        })?;
        Ok(())
    }
}
