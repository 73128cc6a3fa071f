//! OCI core: references, platforms, image formats, the registry client and its auth,
//! OCI layouts, and the `imagetools` commands built on them.
//!
//! Nothing here prints or exits: every failure is an [`OciError`] value that the CLI turns
//! into a diagnostic.

pub mod archive;
pub mod auth;
pub mod digest;
pub mod error;
pub mod image;
pub mod imagetools;
pub mod layout;
pub mod platform;
pub mod reference;
pub mod registry;
pub mod transfer;

pub use digest::Digest;
pub use error::OciError;
pub use image::{Descriptor, Image, ImageIndex, ImageManifest, MediaType};
pub use platform::Platform;
pub use reference::Reference;
pub use registry::{Client, ClientConfig, FetchedManifest};
