//! The planner's base-image resolver, backed by the puller; remembers what it resolved so
//! layers can be fetched later.

use crate::engine::plan::{BaseImage, BaseResolver, PlanError};
use crate::engine::pull::{PulledImage, Puller};
use crate::oci::Platform;
use std::collections::HashMap;

pub struct PullResolver<'p> {
    pub puller: &'p Puller,
    /// Resolved images by manifest digest.
    pub pulled: HashMap<String, PulledImage>,
    cache: HashMap<(String, String), BaseImage>,
}

impl<'p> PullResolver<'p> {
    pub fn new(puller: &'p Puller) -> Self {
        PullResolver {
            puller,
            pulled: HashMap::new(),
            cache: HashMap::new(),
        }
    }
}

impl BaseResolver for PullResolver<'_> {
    fn resolve(&mut self, reference: &str, platform: &Platform) -> Result<BaseImage, PlanError> {
        let k = (reference.to_string(), platform.to_string());
        if let Some(b) = self.cache.get(&k) {
            return Ok(b.clone());
        }
        let p = self
            .puller
            .resolve(reference, platform)
            .map_err(|e| match e {
                crate::engine::pull::PullError::NoPlatform {
                    reference,
                    platform,
                    available,
                } => PlanError::PlatformMissing {
                    reference,
                    platform,
                    available: available.split(", ").map(str::to_string).collect(),
                },
                other => PlanError::Resolve {
                    reference: reference.to_string(),
                    message: other.to_string(),
                },
            })?;
        let base = BaseImage {
            reference: p.reference.clone(),
            digest: p.manifest_digest.to_string(),
            config: p.config.clone(),
            layers: p.manifest.layers.clone(),
        };
        self.pulled.insert(base.digest.clone(), p);
        self.cache.insert(k, base.clone());
        Ok(base)
    }
}
