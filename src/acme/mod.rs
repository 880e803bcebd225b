//! The only code that touches instant-acme.

/// ACME accounts by issuer, so that orders and challenges reuse one registered account.
#[derive(Default)]
pub struct AccountCache {}
