//! Webtask tokens: their claims ([`claims`]), their wire form ([`jwt`]) and
//! the rules for issuing them ([`issue`]).

mod claims;
mod issue;
mod jwt;

pub(crate) use claims::Claims;
pub(crate) use issue::{IssueRequest, derive};
pub(crate) use jwt::{decode, encode};
