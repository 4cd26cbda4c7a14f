//! [`Scope`]: the first parameter of every extension point, anything that
//! names the [`Container`] an invocation runs in.

use std::sync::Arc;

use crate::client::Container;

/// The isolation scope of an invocation: anything that can name the
/// [`Container`] whose extension should run.
///
/// [`Container`] is one; a platform may implement it on its own tenant type so
/// that points take `tenant: &Tenant` directly:
///
/// ```
/// # use extend_hooks::{Container, Scope};
/// struct Tenant { id: u64, extensions: Container }
/// impl Scope for Tenant {
///     fn container(&self) -> &Container { &self.extensions }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an extension scope",
    label = "the first parameter of an extension point must be its scope",
    note = "use `&extend_hooks::Container`, or implement `extend_hooks::Scope` for your tenant type"
)]
pub trait Scope {
    /// The container the invocation runs in.
    fn container(&self) -> &Container;
}

impl Scope for Container {
    fn container(&self) -> &Container {
        self
    }
}

impl<T: Scope + ?Sized> Scope for &T {
    fn container(&self) -> &Container {
        (**self).container()
    }
}

impl<T: Scope + ?Sized> Scope for Arc<T> {
    fn container(&self) -> &Container {
        (**self).container()
    }
}
