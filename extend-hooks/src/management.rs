//! What a platform offers its tenants through the webtask host's management
//! API: [`Management`] (from [`Extend::management`](crate::Extend::management))
//! installs, lists, toggles and removes extensions, issues tenant tokens and
//! publishes the catalog; the types it answers with; and its errors.

pub use crate::webtask::{
    BrokenExtension, InstalledExtension, Management, ManagementError, ManagementErrorKind,
    PublishError, PublishedCatalog,
};
