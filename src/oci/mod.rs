//! OCI core: references, platforms, image formats, the registry client and its auth,
//! OCI layouts and archives, and the `imagetools` commands built on them.
//!
//! Nothing here prints or exits: every failure is an [`OciError`] value that the CLI turns
//! into a diagnostic.
//!
//! # For the engine
//!
//! ```no_run
//! # async fn f() -> Result<(), kiln::oci::OciError> {
//! use kiln::oci::{layout::Layout, transfer, Client, ClientConfig, Platform, Reference};
//! let client = Client::new(ClientConfig::from_env())?; // reads $DOCKER_CONFIG/config.json
//! let base: Reference = "alpine:3.20".parse()?;       // docker.io/library/alpine:3.20
//! let platform = Platform::parse("linux/arm64")?;
//! // manifest + config only (lazy base images):
//! let img = transfer::resolve_image(&client, &base, &platform).await?;
//! // or everything into a layout (blobs streamed and verified):
//! let layout = Layout::create("/tmp/store")?;
//! transfer::pull_to_layout(&client, &base, &platform, &layout, Some("base")).await?;
//! // push an image or index written into a layout; base layers are mounted, not uploaded:
//! let target: Reference = "registry.example/app:1".parse()?;
//! let from = [Reference::repo(base.registry(), base.repository())];
//! transfer::push_from_layout(&client, &layout, &img.descriptor, &target, &from).await?;
//! # Ok(()) }
//! ```
//!
//! Lower level: [`Client`] (`get_manifest`, `head_manifest`, `put_manifest`, `get_blob`,
//! `blob_to_file`, `blob_exists`, `mount_blob`, `push_blob`, `push_blob_file`), and
//! [`archive`] for OCI tars and `docker load` archives.

pub mod archive;
pub mod auth;
pub mod digest;
pub mod docker_engine;
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
