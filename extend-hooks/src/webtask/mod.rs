//! Discovery and management through the Webtask management API: a typed
//! client of the API ([`api`]), cached discovery on it ([`discovery`]) and the
//! management calls a platform offers its tenants ([`management`]).

mod api;
mod discovery;
mod error;
mod installed;
mod management;
mod options;
mod watch;

pub(crate) use api::WebtaskApi;
pub(crate) use discovery::WebtaskDiscovery;
pub use error::{ManagementError, ManagementErrorKind};
pub use installed::InstalledExtension;
pub use management::{BrokenExtension, Management, PublishError, PublishedCatalog};
pub use options::WebtaskOptions;
pub(crate) use watch::start as watch_changes;
